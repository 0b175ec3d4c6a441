package lws

import (
	"context"
	"fmt"
	"os"
	"strings"

	"github.com/lwsgate/lwsgate/cgo"
)

// DialErrorKind says which step of opening a client link failed.
type DialErrorKind uint8

// Dial error kinds.
const (
	// DialDNS: the host name did not resolve.
	DialDNS DialErrorKind = iota + 1
	// DialConnect: the TCP connection failed (refused, unreachable).
	DialConnect
	// DialTLS: the TLS handshake failed; Err is a *TLSError when the
	// server's certificate was rejected.
	DialTLS
	// DialStatus: the server answered a WebSocket upgrade with an HTTP
	// status other than 101 (DialError.Status).
	DialStatus
	// DialSubprotocol: the server chose a subprotocol that was not offered.
	DialSubprotocol
	// DialHandshake: the handshake failed otherwise (the peer closed
	// mid-handshake, a bad accept key, a malformed response).
	DialHandshake
	// DialTimeout: the link did not open within the timeout.
	DialTimeout
	// DialCanceled: the caller's context ended first.
	DialCanceled
	// DialClosed: the Context was closed.
	DialClosed
)

func (k DialErrorKind) String() string {
	switch k {
	case DialDNS:
		return "dns"
	case DialConnect:
		return "connect"
	case DialTLS:
		return "tls"
	case DialStatus:
		return "status"
	case DialSubprotocol:
		return "subprotocol"
	case DialHandshake:
		return "handshake"
	case DialTimeout:
		return "timeout"
	case DialCanceled:
		return "canceled"
	case DialClosed:
		return "closed"
	}
	return "unknown"
}

// DialError is the error of a client link that did not open: Dial's, and
// Transport.RoundTrip's before a response arrived. Like TLSError it is a
// value that is not changed after it is returned.
type DialError struct {
	// URL is the URL dialled.
	URL string
	// Kind says which step failed.
	Kind DialErrorKind
	// Status is the HTTP status of a refused WebSocket upgrade (DialStatus).
	Status int
	// Detail is libwebsockets' own description, when it gave one.
	Detail string
	// Err is the underlying error: the context's error for DialCanceled,
	// os.ErrDeadlineExceeded for DialTimeout, a *TLSError, a DNS error,
	// ErrClosed for DialClosed.
	Err error
}

func (e *DialError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "lws: dial %s: %s", e.URL, e.Kind)
	if e.Status != 0 {
		fmt.Fprintf(&b, " %d", e.Status)
	}
	if e.Err != nil {
		fmt.Fprintf(&b, ": %v", e.Err)
	}
	if e.Detail != "" {
		fmt.Fprintf(&b, " (%s)", e.Detail)
	}
	return b.String()
}

// Unwrap returns Err, so that errors.Is(err, context.Canceled) and
// errors.As(err, &tlsErr) work.
func (e *DialError) Unwrap() error { return e.Err }

// Timeout reports whether the dial timed out (as net.Error does).
func (e *DialError) Timeout() bool { return e.Kind == DialTimeout }

// TLSError is a server certificate the client rejected.
type TLSError struct {
	// Code is OpenSSL's X509_V_ERR_* code (e.g. 10 expired, 62 hostname
	// mismatch, 20 unknown issuer, 18 self-signed).
	Code int
	// Reason is OpenSSL's description of Code.
	Reason string
}

func (e *TLSError) Error() string {
	return fmt.Sprintf("certificate verify failed: %s (X509_V_ERR %d)", e.Reason, e.Code)
}

// Common TLSError codes (OpenSSL's X509_V_ERR_*).
const (
	X509CertNotYetValid          = cgo.X509CertNotYetValid
	X509CertHasExpired           = cgo.X509CertHasExpired
	X509DepthZeroSelfSigned      = cgo.X509DepthZeroSelfSigned
	X509SelfSignedCertInChain    = cgo.X509SelfSignedCertInChain
	X509UnableToGetIssuerLocally = cgo.X509UnableToGetIssuerLocally
	X509UnableToVerifyLeaf       = cgo.X509UnableToVerifyLeaf
	X509HostnameMismatch         = cgo.X509HostnameMismatch
	X509IPAddressMismatch        = cgo.X509IPAddressMismatch
)

// dialFailure is what the service goroutine learnt about a failed client
// link; classify turns it into a *DialError.
type dialFailure struct {
	cause     error  // set by a timeout, cancel or Context close
	lwsText   string // CLIENT_CONNECTION_ERROR's text
	status    int    // HTTP status of the response, if any
	verifyErr int    // first X509_V_ERR_* seen
	verifyMsg string
	tls       bool
	connected bool // the request was being written: TCP and TLS were up
}

func (f *dialFailure) classify(url string) *DialError {
	e := &DialError{URL: url, Detail: f.lwsText}
	switch {
	case f.cause != nil:
		e.Err = f.cause
		switch {
		case f.cause == os.ErrDeadlineExceeded:
			e.Kind = DialTimeout
		case f.cause == ErrClosed:
			e.Kind = DialClosed
		default:
			e.Kind = DialCanceled
			if f.cause == context.DeadlineExceeded {
				e.Kind = DialTimeout
			}
		}
	case f.verifyErr != 0:
		e.Kind = DialTLS
		e.Err = &TLSError{Code: f.verifyErr, Reason: f.verifyMsg}
	case strings.Contains(f.lwsText, "PROTOCOL malformed") || strings.Contains(f.lwsText, "protocol no match"):
		e.Kind = DialSubprotocol
	case f.status != 0 && f.status != 101:
		e.Kind = DialStatus
		e.Status = f.status
	case strings.Contains(f.lwsText, "Unable to connect") || strings.Contains(f.lwsText, "conn fail") ||
		strings.Contains(f.lwsText, "getaddrinfo"):
		// 4.1 says "Unable to connect", 4.3 "conn fail: ERRNO".
		e.Kind = DialConnect
	case strings.Contains(f.lwsText, "timeout") || strings.Contains(f.lwsText, "timed out"):
		e.Kind = DialTimeout
		e.Err = os.ErrDeadlineExceeded
	case f.tls && !f.connected:
		e.Kind = DialTLS
	default:
		e.Kind = DialHandshake
	}
	return e
}
