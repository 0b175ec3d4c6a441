package lws

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/lwsgate/lwsgate/callbacks"
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

	// PingInterval and PingTimeout are as on Listener: libwebsockets pings
	// the server after PingInterval without a pong and drops the link
	// after PingTimeout without one. 0: libwebsockets' defaults (5 min,
	// 5 min 10 s).
	PingInterval, PingTimeout time.Duration

	// Compression offers permessage-deflate (RFC 7692) to the server; when
	// the server accepts, the link compresses as Listener.Compression
	// describes (Conn.Link().Compression is then true). false (the zero
	// value): nothing is offered.
	Compression bool
}

// target is a parsed client URL.
type target struct {
	url    string
	tls    bool
	host   string // name or IP, without brackets
	port   int
	hostHd string // Host header: host, or host:port when not the default
	path   string // path and query, at least "/"
}

func parseTarget(raw string, schemes map[string]bool) (*target, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("lws: bad URL %q: %w", raw, err)
	}
	sch := strings.ToLower(u.Scheme)
	if !schemes[sch] {
		var want []string
		for s := range schemes {
			want = append(want, s)
		}
		return nil, fmt.Errorf("lws: URL %q: scheme %q is not one of %s", raw, u.Scheme, strings.Join(sortStrings(want), ", "))
	}
	t := &target{url: raw, tls: sch == "wss" || sch == "https", host: u.Hostname()}
	if t.host == "" {
		return nil, fmt.Errorf("lws: URL %q has no host", raw)
	}
	t.port = 80
	if t.tls {
		t.port = 443
	}
	if p := u.Port(); p != "" {
		n, err := strconv.Atoi(p)
		if err != nil || n <= 0 || n > 65535 {
			return nil, fmt.Errorf("lws: URL %q: bad port %q", raw, p)
		}
		t.port = n
	}
	t.hostHd = u.Host
	if u.Port() != "" && ((t.tls && t.port == 443) || (!t.tls && t.port == 80)) {
		t.hostHd = u.Hostname()
		if strings.Contains(t.hostHd, ":") {
			t.hostHd = "[" + t.hostHd + "]"
		}
	}
	t.path = u.RequestURI()
	if t.path == "" {
		t.path = "/"
	}
	return t, nil
}

func sortStrings(s []string) []string {
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && s[j] < s[j-1]; j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
	return s
}

// resolve finds an address for t.host in Go, so that libwebsockets never
// blocks its service thread in getaddrinfo. IPv4 is preferred.
func resolve(ctx context.Context, host string) (string, error) {
	if ip := net.ParseIP(host); ip != nil {
		return ip.String(), nil
	}
	addrs, err := net.DefaultResolver.LookupIPAddr(ctx, host)
	if err != nil {
		return "", err
	}
	for _, a := range addrs {
		if a.IP.To4() != nil {
			return a.IP.String(), nil
		}
	}
	if len(addrs) == 0 {
		return "", fmt.Errorf("no address for %q", host)
	}
	return addrs[0].IP.String(), nil
}

// headerBlob turns headers into the "name\x00value\x00" pairs of the C
// layer, rejecting what could split the request.
func headerBlob(b []byte, h http.Header, skip func(string) bool) ([]byte, error) {
	for name, vals := range h {
		if !validHeaderName(name) {
			return nil, fmt.Errorf("lws: header name %q is not valid", name)
		}
		if skip != nil && skip(http.CanonicalHeaderKey(name)) {
			continue
		}
		for _, v := range vals {
			if strings.ContainsAny(v, "\r\n\x00") {
				return nil, fmt.Errorf("lws: header %s: value contains CR, LF or NUL", name)
			}
			b = append(b, strings.ToLower(name)...)
			b = append(b, 0)
			b = append(b, v...)
			b = append(b, 0)
		}
	}
	return b, nil
}

// clientProtocol is the name of the one protocol of client vhosts.
const clientProtocol = "lwsgo-client"

// clientIndex is the listener index carried by client vhosts' protocols.
const clientIndex = 0xffff

// clientVhost returns the client vhost for a TLS setting, creating it on
// first use (service goroutine). Links that offer permessage-deflate have
// vhosts of their own: libwebsockets offers a vhost's extensions on every
// link it makes.
func (c *Context) clientVhost(t *ClientTLS, compress bool) (cgo.VhostID, error) {
	var key ClientTLS
	if t != nil {
		key = ClientTLS{CAFile: t.CAFile, CertFile: t.CertFile, KeyFile: t.KeyFile}
	}
	vhosts := &c.clientVhosts
	name := "client%d"
	if compress {
		vhosts, name = &c.deflateVhosts, "client-deflate%d"
	}
	if id, ok := (*vhosts)[key]; ok {
		return id, nil
	}
	id, err := c.lc.NewClientVhost(cgo.VhostInfo{
		Index:          clientIndex,
		Name:           fmt.Sprintf(name, len(*vhosts)),
		Protocols:      []string{clientProtocol},
		Options:        cgo.OptionDoSSLGlobalInit,
		ClientCAPath:   key.CAFile,
		ClientCertPath: key.CertFile,
		ClientKeyPath:  key.KeyFile,
		TxPacketSize:   txPacketSize,
		Compression:    compress,
	})
	if err != nil {
		return 0, err
	}
	if *vhosts == nil {
		*vhosts = map[ClientTLS]cgo.VhostID{}
	}
	(*vhosts)[key] = id
	return id, nil
}

// dialState follows one client link from the connect call to its outcome.
// Service goroutine only.
type dialState struct {
	t      *target
	phase  int // bumped when a timer must no longer fire
	fail   dialFailure
	timer  *time.Timer
	onDone func(error) // service goroutine, once
	done   bool
}

// finishDial reports the outcome once (service goroutine).
func (c *Context) finishDial(d *dialState, err error) {
	if d.done {
		return
	}
	d.done = true
	d.phase++
	if d.timer != nil {
		d.timer.Stop()
	}
	d.onDone(err)
}

// armTimer makes the dial fail with os.ErrDeadlineExceeded after dt, unless
// the phase changed by then (any goroutine: the timer posts to the loop).
func (c *Context) armTimer(r *rec, d *dialState, dt time.Duration) {
	if d.timer != nil {
		d.timer.Stop()
		d.timer = nil
	}
	d.phase++
	if dt <= 0 {
		return
	}
	phase := d.phase
	d.timer = time.AfterFunc(dt, func() {
		c.post(func() {
			if d.phase == phase && !d.done {
				c.abortClient(r, os.ErrDeadlineExceeded)
			}
		})
	})
}

// abortClient ends a client link that has not finished, for cause
// (service goroutine).
func (c *Context) abortClient(r *rec, cause error) {
	d := r.dial
	if d == nil || d.done {
		return
	}
	if d.fail.cause == nil {
		d.fail.cause = cause
	}
	if r.wsi == 0 {
		return
	}
	c.kill(r)
}

// kill closes r's connection without a handshake: at once when r is not
// the wsi of a callback in progress, else when that callback returns.
func (c *Context) kill(r *rec) {
	for _, w := range c.stack[:min(c.depth, len(c.stack))] {
		if w == uintptr(r.wsi) {
			r.killMe = true
			r.wsi.Kill(false)
			return
		}
	}
	// Kills come from posted functions, which run between lws_service
	// calls (see drainInCallbacks), where a synchronous kill frees a wsi
	// nothing else is using; 4.3 makes the asynchronous kill immediate (a
	// zero-delay sul), so it needs no such call.
	r.wsi.Kill(!asyncKillIsPrompt)
}

// asyncKillIsPrompt: libwebsockets 4.3 runs a zero-second timeout on its
// next service pass; 4.1 checks timeouts once a second.
const asyncKillIsPrompt = cgo.HeaderVersionNumber >= 4003000

// newClientRec makes the rec of a client link about to be connected, or
// says why there cannot be one (service goroutine).
func (c *Context) newClientRec(kind recKind, t *target, tlsCfg *ClientTLS, compress bool, ci *cgo.ConnectInfo) (*rec, error) {
	if c.stopping {
		return nil, &DialError{URL: t.url, Kind: DialClosed, Err: ErrClosed}
	}
	vh, err := c.clientVhost(tlsCfg, compress)
	if err != nil {
		return nil, &DialError{URL: t.url, Kind: DialTLS, Err: err}
	}
	ci.Vhost = vh
	c.nextID++
	r := &rec{ctx: c, id: c.nextID, kind: kind}
	r.dial = &dialState{t: t}
	r.dial.fail.tls = t.tls
	return r, nil
}

// connect starts a client link for r (service goroutine). A link that
// fails at once has its outcome reported before connect returns.
func (c *Context) connect(r *rec, ci cgo.ConnectInfo) {
	r.h = cgo.NewHandle(r)
	c.recs[r.id] = r
	ci.Handle = r.h
	c.connecting = r
	w, cl, err := c.lc.Connect(ci)
	c.connecting = nil
	r.cc = cl
	if err != nil {
		r.dial.fail.lwsText = err.Error()
		c.release(r)
		c.finishDial(r.dial, r.dial.fail.classify(r.dial.t.url))
		return
	}
	if w == 0 {
		// Failed before any callback carried the handle (or after its
		// WSI_DESTROY already released it): release at the call site.
		if r.h != 0 {
			if r.dial.fail.lwsText == "" {
				r.dial.fail.lwsText = "lws_client_connect_via_info failed"
			}
			c.release(r)
		}
		c.finishDial(r.dial, r.dial.fail.classify(r.dial.t.url))
		return
	}
	if r.h != 0 {
		r.wsi = w
	}
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
	if err := opts.TLS.validate("DialOptions.TLS"); err != nil {
		return nil, err
	}
	if err := CheckKeepalive(opts.PingInterval, opts.PingTimeout); err != nil {
		return nil, fmt.Errorf("lws: DialOptions.%w", err)
	}
	if opts.Compression && !cgo.CompressionAvailable() {
		return nil, errors.New("lws: DialOptions.Compression: the libwebsockets this binary uses was built without extensions (LWS_WITHOUT_EXTENSIONS)")
	}
	for _, p := range opts.Subprotocols {
		if p == "" || !validHeaderName(p) {
			return nil, fmt.Errorf("lws: DialOptions.Subprotocols: %q is not a token", p)
		}
	}
	hdrs, err := headerBlob(nil, opts.Header, nil)
	if err != nil {
		return nil, fmt.Errorf("lws: DialOptions.Header: %w", err)
	}
	timeout := opts.HandshakeTimeout
	if timeout <= 0 {
		timeout = c.cfg.NetworkTimeout
	}
	ctx, cancel := context.WithTimeoutCause(ctx, timeout, os.ErrDeadlineExceeded)
	defer cancel()
	addr, err := resolve(ctx, t.host)
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
	ci := cgo.ConnectInfo{
		Address:   addr,
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

	type result struct {
		conn *Conn
		err  error
	}
	res := make(chan result, 1)
	var r *rec
	ok := c.post(func() {
		var err error
		if r, err = c.newClientRec(recWSClient, t, opts.TLS, opts.Compression, &ci); err != nil {
			res <- result{err: err}
			return
		}
		r.lo = lo
		r.dial.onDone = func(err error) {
			if err != nil {
				res <- result{err: err}
				return
			}
			res <- result{conn: r.conn}
		}
		c.connect(r, ci)
	})
	if !ok {
		return nil, &DialError{URL: rawURL, Kind: DialClosed, Err: ErrClosed}
	}
	var out result
	select {
	case out = <-res:
	case <-ctx.Done():
		cause := context.Cause(ctx)
		c.post(func() {
			if r != nil {
				c.abortClient(r, cause)
			}
		})
		select {
		case out = <-res:
		case <-c.done:
			return nil, &DialError{URL: rawURL, Kind: DialClosed, Err: ErrClosed}
		}
	case <-c.done:
		return nil, &DialError{URL: rawURL, Kind: DialClosed, Err: ErrClosed}
	}
	if out.err != nil {
		if cause := context.Cause(ctx); cause != nil {
			// The context ended while the dial was failing for
			// another reason (the peer hung up as the caller gave
			// up): the caller's reason wins, as with net.Dialer.
			return nil, (&dialFailure{cause: cause}).classify(rawURL)
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

// handleClient routes the callbacks of client links (service goroutine):
// first what every client link records about how its dial went, then the
// WebSocket or HTTP specifics.
func (c *Context) handleClient(ev *callbacks.Event, r *rec) int {
	d := r.dial // set for every client link, kept after it opened
	switch ev.Reason {
	case callbacks.ClientAppendHandshakeHeader:
		d.fail.connected = true // TCP and TLS are up
	case callbacks.OpenSSLPerformServerCertVerification:
		if ev.Len != 0 && d.fail.verifyErr == 0 {
			d.fail.verifyErr = ev.Len
			d.fail.verifyMsg = cgo.X509ErrorString(ev.Len)
		}
	case callbacks.ClientConnectionError:
		d.fail.lwsText = string(ev.Data)
		d.fail.status = r.responseStatus()
	}
	var ret int
	if r.kind == recHTTPClient {
		ret = c.handleHTTPClient(ev, r)
	} else {
		ret = c.handleWSClient(ev, r)
	}
	if r.killMe {
		return -1
	}
	return ret
}

// handleWSClient is handleClient for a WebSocket client link.
func (c *Context) handleWSClient(ev *callbacks.Event, r *rec) int {
	switch ev.Reason {
	case callbacks.ClientFilterPreEstablish:
		r.link.Subprotocol = r.responseHeader("sec-websocket-protocol")
	case callbacks.ClientEstablished:
		return c.onClientEstablished(r, ev.Flags&callbacks.Deflate != 0)
	case callbacks.ClientReceive:
		if r.conn != nil {
			return r.conn.receive(ev)
		}
	case callbacks.ClientReceivePong:
		if r.conn != nil {
			r.conn.callPong(ev.Data)
		}
	case callbacks.ClientWriteable:
		if r.conn != nil {
			return r.conn.onWritable()
		}
	case callbacks.WSPeerInitiatedClose:
		if r.conn != nil {
			return r.conn.onPeerClose(ev.Data)
		}
	case callbacks.ClientClosed, callbacks.WSClientDropProtocol:
		// DROP_PROTOCOL: see the server side in handle.
		if r.conn != nil {
			r.conn.markClosed()
		}
	}
	return 0
}

func (c *Context) onClientEstablished(r *rec, deflate bool) int {
	d := r.dial
	if d.done {
		// Aborted while the handshake completed.
		return -1
	}
	r.link = Link{
		ID:          r.id,
		Kind:        LinkWebSocket,
		Remote:      r.wsi.RemoteAddr(),
		Path:        d.t.path,
		Subprotocol: r.link.Subprotocol,
		Compression: deflate,
		Opened:      time.Now(),
		URL:         d.t.url,
	}
	r.conn = newConn(r, r.lo)
	c.openLink(r)
	r.conn.callOpen()
	c.finishDial(d, nil)
	return 0
}

// responseStatus is the HTTP status of the response a client link
// received, or 0.
func (r *rec) responseStatus() int {
	buf, err := r.wsi.ClientResponse(nil, "")
	if err != nil {
		return 0
	}
	s, _, _ := strings.Cut(string(buf), "\x00")
	n, _ := strconv.Atoi(s)
	return n
}

// responseHeader returns one header of a client link's response.
func (r *rec) responseHeader(name string) string {
	buf, err := r.wsi.ClientResponse(nil, "")
	if err != nil {
		return ""
	}
	parts := strings.Split(string(buf), "\x00")
	for i := 1; i+1 < len(parts); i += 2 {
		if parts[i] == name {
			return parts[i+1]
		}
	}
	return ""
}

// onClientDestroy is WSI_DESTROY of a client link.
func (c *Context) onClientDestroy(r *rec) {
	if d := r.dial; !d.done {
		c.finishDial(d, d.fail.classify(d.t.url))
	}
}

var (
	defaultMu  sync.Mutex
	defaultCtx *Context
	defaultErr error
)

// DefaultContext returns the package's default client Context, which the
// package-level Dial and a Transport without a Context use. It is started
// on first use with default settings (no listeners) and lives until
// CloseDefaultContext. It returns nil if it could not start.
func DefaultContext() *Context {
	defaultMu.Lock()
	defer defaultMu.Unlock()
	if defaultCtx == nil {
		defaultCtx, defaultErr = New(&Config{})
	}
	return defaultCtx
}

// CloseDefaultContext closes the default client Context, if it was started;
// the next DefaultContext starts a new one.
func CloseDefaultContext() error {
	defaultMu.Lock()
	c := defaultCtx
	defaultCtx = nil
	defaultMu.Unlock()
	if c == nil {
		return nil
	}
	return c.Close()
}
