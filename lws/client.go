package lws

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/lwsgate/lwsgate/cgo"
)

// ClientTLS configures the TLS side of client links (wss, https).
// A nil *ClientTLS means: verify the server against the operating system's
// certificate store and the URL's host name. It must not change while a
// Dial or request using it is in progress.
type ClientTLS struct {
	// CAFile is a PEM file of the certificate authorities to trust instead
	// of the operating system's store. "": the system store.
	CAFile string
	// CertFile and KeyFile are a client certificate and its key, sent when
	// the server asks for one (mutual TLS). "": none.
	CertFile, KeyFile string
	// InsecureSkipVerify accepts any server certificate: self-signed,
	// untrusted, expired or for another name. For tests only.
	InsecureSkipVerify bool
}

func (t *ClientTLS) validate(field string) error {
	if t == nil {
		return nil
	}
	for _, f := range []struct{ name, path string }{{"CAFile", t.CAFile}, {"CertFile", t.CertFile}, {"KeyFile", t.KeyFile}} {
		if f.path == "" {
			continue
		}
		if err := CheckReadable(f.path); err != nil {
			return fmt.Errorf("lws: %s.%s: %v", field, f.name, err)
		}
	}
	if (t.CertFile == "") != (t.KeyFile == "") {
		return fmt.Errorf("lws: %s: CertFile and KeyFile go together", field)
	}
	return nil
}

// DialOptions configure Dial. A nil *DialOptions means all defaults; the
// zero value of each field is documented on it. Dial reads them before it
// returns and keeps no reference, so they may be reused at once.
type DialOptions struct {
	// Context makes the link; nil: the package's default client Context,
	// started on first use (see DefaultContext).
	Context *Context

	// Handler receives the link's messages and its close, like a
	// listener's; OnOpen is called before Dial returns the Conn.
	// nil: messages are dropped.
	Handler Handler

	// Subprotocols are offered in Sec-WebSocket-Protocol, in order. The
	// server's choice is Conn.Link().Subprotocol; a choice that was not
	// offered fails the dial with DialSubprotocol.
	Subprotocols []string
	// Header holds extra handshake request headers. Host, Origin, and the
	// WebSocket headers are set by libwebsockets and must not be here.
	Header http.Header
	// Origin is the Origin header. "": none.
	Origin string

	// TLS configures wss:// links (see ClientTLS). nil: system trust.
	TLS *ClientTLS

	// HandshakeTimeout bounds DNS, connect, TLS and the upgrade together.
	// 0: the Context's NetworkTimeout.
	HandshakeTimeout time.Duration

	// MaxMessageSize, MaxSendQueue and SlowConsumer are as on Listener,
	// with the same defaults.
	MaxMessageSize int64
	MaxSendQueue   int64
	SlowConsumer   SlowConsumerPolicy

	// PingInterval and PingTimeout are as on Listener, but carried out by
	// libwebsockets' own idle policy (a dialled link is one of few):
	// libwebsockets pings the server after PingInterval without a pong,
	// with no payload, and drops the link after PingTimeout without one.
	// 0: libwebsockets' defaults (5 min, 5 min 10 s).
	PingInterval, PingTimeout time.Duration

	// Compression offers permessage-deflate (RFC 7692) to the server; when
	// the server accepts, the link compresses as Listener.Compression
	// describes (Conn.Link().Compression is then true). false (the zero
	// value): nothing is offered.
	Compression bool
}

// Dial opens a WebSocket client link to a ws:// or wss:// URL on the
// package's default Context, or on opts.Context. It is safe from any
// goroutine and returns when the link is open (the Handler's OnOpen has
// run) or has failed with a *DialError.
func Dial(ctx context.Context, rawURL string, opts *DialOptions) (*Conn, error) {
	c := DefaultContext()
	if opts != nil && opts.Context != nil {
		c = opts.Context
	}
	if c == nil {
		return nil, &DialError{URL: rawURL, Kind: DialClosed, Err: defaultErr}
	}
	return c.Dial(ctx, rawURL, opts)
}

// Dial opens a WebSocket client link on c; see the package-level Dial.
func (c *Context) Dial(ctx context.Context, rawURL string, opts *DialOptions) (*Conn, error) {
	if opts == nil {
		opts = &DialOptions{}
	}
	t, err := parseTarget(rawURL, map[string]bool{"ws": true, "wss": true})
	if err != nil {
		return nil, err
	}
	ci, err := opts.connectInfo(t)
	if err != nil {
		return nil, err
	}
	timeout := opts.HandshakeTimeout
	if timeout <= 0 {
		timeout = c.cfg.NetworkTimeout
	}
	ctx, cancel := context.WithTimeoutCause(ctx, timeout, os.ErrDeadlineExceeded)
	defer cancel()
	ci.Address, err = resolve(ctx, t.host)
	if err != nil {
		if cause := context.Cause(ctx); cause != nil {
			return nil, (&dialFailure{cause: cause}).classify(rawURL)
		}
		return nil, &DialError{URL: rawURL, Kind: DialDNS, Err: err}
	}
	// An IP literal resolves without looking at ctx: a dial whose context
	// already ended must not connect.
	if cause := context.Cause(ctx); cause != nil {
		return nil, (&dialFailure{cause: cause}).classify(rawURL)
	}
	lo := &linkOpts{handler: opts.Handler, maxMessage: opts.MaxMessageSize, maxQueue: opts.MaxSendQueue, slowConsumer: opts.SlowConsumer}
	lo.withDefaults()
	return c.dial(ctx, t, opts, ci, lo)
}

// connectInfo checks the options and describes the connection to t for
// the C layer, all but its address.
func (opts *DialOptions) connectInfo(t *target) (cgo.ConnectInfo, error) {
	if err := opts.TLS.validate("DialOptions.TLS"); err != nil {
		return cgo.ConnectInfo{}, err
	}
	if err := CheckKeepalive(opts.PingInterval, opts.PingTimeout); err != nil {
		return cgo.ConnectInfo{}, fmt.Errorf("lws: DialOptions.%w", err)
	}
	if opts.Compression && !cgo.CompressionAvailable() {
		return cgo.ConnectInfo{}, errors.New("lws: DialOptions.Compression: the libwebsockets this binary uses was built without extensions (LWS_WITHOUT_EXTENSIONS)")
	}
	for _, p := range opts.Subprotocols {
		if p == "" || !validHeaderName(p) {
			return cgo.ConnectInfo{}, fmt.Errorf("lws: DialOptions.Subprotocols: %q is not a token", p)
		}
	}
	hdrs, err := headerBlob(nil, opts.Header, nil)
	if err != nil {
		return cgo.ConnectInfo{}, fmt.Errorf("lws: DialOptions.Header: %w", err)
	}
	ci := cgo.ConnectInfo{
		Port:      t.port,
		Path:      t.path,
		Host:      t.hostHd,
		Origin:    opts.Origin,
		Protocols: strings.Join(opts.Subprotocols, ","),
		TLS:       t.tls,
		Insecure:  opts.TLS != nil && opts.TLS.InsecureSkipVerify,
		Headers:   hdrs,
	}
	if t.tls {
		ci.ALPN = "http/1.1"
	}
	if opts.PingInterval > 0 {
		ci.PingSecs, ci.HangupSecs = keepaliveSecs(opts.PingInterval, opts.PingTimeout)
	}
	return ci, nil
}

// dial makes the link on the service goroutine and waits until it is open
// or has failed, or ctx ends (which aborts it).
func (c *Context) dial(ctx context.Context, t *target, opts *DialOptions, ci cgo.ConnectInfo, lo *linkOpts) (*Conn, error) {
	type result struct {
		conn *Conn
		err  error
	}
	res := make(chan result, 1)
	var d *dialState
	ok := c.post(func() {
		var err error
		if d, err = c.newDial(t, opts.TLS, opts.Compression, &ci); err != nil {
			res <- result{err: err}
			return
		}
		d.lo = lo
		d.onDone = func(err error) {
			if err != nil {
				res <- result{err: err}
				return
			}
			res <- result{conn: d.r.conn()}
		}
		c.connect(d, ci)
	})
	if !ok {
		return nil, &DialError{URL: t.url, Kind: DialClosed, Err: ErrClosed}
	}
	var out result
	select {
	case out = <-res:
	case <-ctx.Done():
		cause := context.Cause(ctx)
		c.post(func() {
			if d != nil {
				d.abort(cause)
			}
		})
		select {
		case out = <-res:
		case <-c.done:
			return nil, &DialError{URL: t.url, Kind: DialClosed, Err: ErrClosed}
		}
	case <-c.done:
		return nil, &DialError{URL: t.url, Kind: DialClosed, Err: ErrClosed}
	}
	if out.err != nil {
		if cause := context.Cause(ctx); cause != nil {
			// The context ended while the dial was failing for
			// another reason (the peer hung up as the caller gave
			// up): the caller's reason wins, as with net.Dialer.
			return nil, (&dialFailure{cause: cause}).classify(t.url)
		}
	}
	return out.conn, out.err
}

func (o *linkOpts) withDefaults() {
	if o.maxMessage == 0 {
		o.maxMessage = DefaultMaxMessageSize
	}
	if o.maxQueue == 0 {
		o.maxQueue = DefaultMaxSendQueue(o.maxMessage)
	}
}

// keepaliveSecs turns PingInterval and PingTimeout into libwebsockets'
// secs_since_valid_ping and secs_since_valid_hangup.
func keepaliveSecs(ping, timeout time.Duration) (int, int) {
	return int(ping / time.Second), int(pingTimeout(ping, timeout) / time.Second)
}
