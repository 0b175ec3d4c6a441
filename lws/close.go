package lws

import (
	"errors"
	"fmt"
	"strconv"
)

// StatusCode is a WebSocket close code (RFC 6455 section 7.4).
type StatusCode int

// Close codes. Codes 1005, 1006 and 1015 are never sent on the wire; they
// describe how a connection ended.
const (
	StatusNormalClosure      StatusCode = 1000
	StatusGoingAway          StatusCode = 1001
	StatusProtocolError      StatusCode = 1002
	StatusUnsupportedData    StatusCode = 1003
	StatusNoStatusRcvd       StatusCode = 1005
	StatusAbnormalClosure    StatusCode = 1006
	StatusInvalidPayloadData StatusCode = 1007
	StatusPolicyViolation    StatusCode = 1008
	StatusMessageTooBig      StatusCode = 1009
	StatusMandatoryExtension StatusCode = 1010
	StatusInternalError      StatusCode = 1011
	StatusServiceRestart     StatusCode = 1012
	StatusTryAgainLater      StatusCode = 1013
	StatusBadGateway         StatusCode = 1014
	StatusTLSHandshake       StatusCode = 1015
)

var statusNames = map[StatusCode]string{
	StatusNormalClosure: "NormalClosure", StatusGoingAway: "GoingAway",
	StatusProtocolError: "ProtocolError", StatusUnsupportedData: "UnsupportedData",
	StatusNoStatusRcvd: "NoStatusRcvd", StatusAbnormalClosure: "AbnormalClosure",
	StatusInvalidPayloadData: "InvalidPayloadData", StatusPolicyViolation: "PolicyViolation",
	StatusMessageTooBig: "MessageTooBig", StatusMandatoryExtension: "MandatoryExtension",
	StatusInternalError: "InternalError", StatusServiceRestart: "ServiceRestart",
	StatusTryAgainLater: "TryAgainLater", StatusBadGateway: "BadGateway",
	StatusTLSHandshake: "TLSHandshake",
}

// String returns e.g. "1000 NormalClosure", or just the number.
func (s StatusCode) String() string {
	if n, ok := statusNames[s]; ok {
		return strconv.Itoa(int(s)) + " " + n
	}
	return strconv.Itoa(int(s))
}

// MaxCloseReason is the longest close reason, in bytes, a close frame
// carries: a control frame's 125 bytes of payload less the 2 of the code
// (RFC 6455 section 5.5). Conn.Close cuts a longer one.
const MaxCloseReason = 123

// Sendable reports whether s may appear in a close frame: 1000-1003,
// 1007-1014, or 3000-4999 (RFC 6455 section 7.4 and the IANA registry).
func (s StatusCode) Sendable() bool {
	switch {
	case s >= 1000 && s <= 1003, s >= 1007 && s <= 1014:
		return true
	case s >= 3000 && s <= 4999:
		return true
	}
	return false
}

// CloseError says how a WebSocket link ended: the close code and reason
// the peer sent, or StatusAbnormalClosure when the link was lost without a
// close frame. It is what Handler.OnClose receives and what Send returns
// once the link is closed.
type CloseError struct {
	Code   StatusCode
	Reason string
	// Local is true when this side started the close.
	Local bool
}

func (e *CloseError) Error() string {
	side := "peer"
	if e.Local {
		side = "local"
	}
	if e.Reason == "" {
		return fmt.Sprintf("lws: link closed by %s: %s", side, e.Code)
	}
	return fmt.Sprintf("lws: link closed by %s: %s: %q", side, e.Code, e.Reason)
}

// CloseStatus returns the close code of the first *CloseError in err's
// chain, or -1 when there is none.
func CloseStatus(err error) StatusCode {
	var ce *CloseError
	if errors.As(err, &ce) {
		return ce.Code
	}
	return -1
}
