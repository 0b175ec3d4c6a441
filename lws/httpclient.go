package lws

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/lwsgate/lwsgate/callbacks"
	"github.com/lwsgate/lwsgate/cgo"
)

// Transport is an http.RoundTripper that makes each request on its own
// libwebsockets client connection (HTTP/1.1, "connection: close"), so that
// a program can use libwebsockets through net/http's Client:
//
//	client := &http.Client{Transport: &lws.Transport{Context: c}}
//
// RoundTrip follows no redirects; http.Client follows them as its
// CheckRedirect says. Host names are resolved in Go, so the service
// goroutine never blocks on DNS. The request body is read into memory
// before the connection is made (at most MaxRequestBodySize); the response
// body is streamed: libwebsockets stops reading from the socket while more
// than 256 KiB wait for the caller.
//
// What libwebsockets 4.1 imposes: every request also carries its
// "Pragma: no-cache" and "Cache-Control: no-cache" headers; the request
// headers must fit in about 4 KiB and the response headers in
// Config.MaxHeaderBytes (8 KiB by default), or the request fails with
// DialHandshake;
// response headers it does not know are only returned when named in
// ExtraHeaders (first value only); and a server that answers before it has
// read the whole request body (a 413, say) fails the request with
// DialHandshake rather than returning that response.
//
// Concurrency: a Transport is safe for concurrent use by any number of
// goroutines, and must not be modified after first use.
type Transport struct {
	// Context makes the connections. nil: DefaultContext().
	Context *Context
	// TLS configures https:// requests. nil: verify against the system's
	// store and the URL's host name.
	TLS *ClientTLS
	// DialTimeout bounds DNS, connect and TLS. 0: the Context's
	// NetworkTimeout.
	DialTimeout time.Duration
	// ResponseHeaderTimeout bounds writing the request (body included)
	// and waiting for the response headers, from the moment the
	// connection is up. 0: the Context's NetworkTimeout.
	ResponseHeaderTimeout time.Duration
	// BodyTimeout bounds reading the whole response body. 0: no bound
	// beyond the request's context.
	BodyTimeout time.Duration
	// MaxResponseBodySize is the largest response body read; beyond it
	// Read fails with ErrBodyTooLarge and the connection is dropped.
	// 0: 64 MiB. Negative: no limit.
	MaxResponseBodySize int64
	// MaxRequestBodySize is the largest request body sent. 0: 64 MiB.
	MaxRequestBodySize int64
	// ExtraHeaders are response header names, beyond the ones
	// libwebsockets knows, to return in Response.Header (libwebsockets 4.1
	// cannot list unknown headers).
	ExtraHeaders []string
}

// ErrBodyTooLarge is returned by a response body's Read when the body
// exceeds Transport.MaxResponseBodySize.
var ErrBodyTooLarge = errors.New("lws: response body too large")

// errBodyClosed is returned by Read after Close, as net/http does.
var errBodyClosed = errors.New("lws: read on closed response body")

// rxWindow is how much response body may wait for the reader before
// libwebsockets stops reading from the socket.
const rxWindow = 256 << 10

// clientReq is the state of one request on a client link. Service
// goroutine only, except rb.
type clientReq struct {
	t       *Transport
	req     *http.Request
	body    []*frame // request body, written at CLIENT_HTTP_WRITEABLE
	custom  string
	maxBody int64
	rb      *respBody
	got     int64
	delim   bool        // the body's end is known (Content-Length or chunked)
	bodyTmr *time.Timer // BodyTimeout, stopped when the link ends
}

// RoundTrip implements http.RoundTripper.
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.roundTrip(req)
	if err != nil && req.Body != nil {
		_ = req.Body.Close()
	}
	return resp, err
}

func (t *Transport) roundTrip(req *http.Request) (*http.Response, error) {
	c := t.Context
	if c == nil {
		c = DefaultContext()
		if c == nil {
			return nil, &DialError{URL: req.URL.String(), Kind: DialClosed, Err: ErrClosed}
		}
	}
	if req.URL == nil {
		return nil, errors.New("lws: RoundTrip: nil Request.URL")
	}
	rawURL := req.URL.String()
	tg, err := parseTarget(rawURL, map[string]bool{"http": true, "https": true})
	if err != nil {
		return nil, err
	}
	if req.Host != "" {
		tg.hostHd = req.Host
	}
	if err := t.TLS.validate("Transport.TLS"); err != nil {
		return nil, err
	}
	method := req.Method
	if method == "" {
		method = http.MethodGet
	}
	if !validHeaderName(method) {
		return nil, fmt.Errorf("lws: RoundTrip: invalid method %q", method)
	}

	// The body, read here on the caller's goroutine.
	maxReq := t.MaxRequestBodySize
	if maxReq == 0 {
		maxReq = 64 << 20
	}
	var body []byte
	if req.Body != nil && req.Body != http.NoBody {
		body, err = io.ReadAll(io.LimitReader(req.Body, maxReq+1))
		_ = req.Body.Close()
		if err != nil {
			return nil, fmt.Errorf("lws: reading request body: %w", err)
		}
		if int64(len(body)) > maxReq {
			return nil, fmt.Errorf("lws: request body over Transport.MaxRequestBodySize (%d bytes)", maxReq)
		}
	}
	skip := func(k string) bool {
		switch k {
		case "Host", "Content-Length", "Connection", "Transfer-Encoding", "Upgrade", "Origin":
			return true
		}
		return false
	}
	hdrs, err := headerBlob(nil, req.Header, skip)
	if err != nil {
		return nil, fmt.Errorf("lws: Request.Header: %w", err)
	}
	if len(body) > 0 || method == http.MethodPost || method == http.MethodPut || method == http.MethodPatch {
		hdrs = append(hdrs, "content-length\x00"...)
		hdrs = strconv.AppendInt(hdrs, int64(len(body)), 10)
		hdrs = append(hdrs, 0)
	}

	dialTimeout := t.DialTimeout
	if dialTimeout <= 0 {
		dialTimeout = c.cfg.NetworkTimeout
	}
	ctx := req.Context()
	dctx, cancel := context.WithTimeoutCause(ctx, dialTimeout, os.ErrDeadlineExceeded)
	addr, err := resolve(dctx, tg.host)
	// The cause must be read before cancel, which sets it to
	// context.Canceled.
	cause := context.Cause(dctx)
	cancel()
	if err != nil {
		if cause != nil {
			return nil, (&dialFailure{cause: cause}).classify(rawURL)
		}
		return nil, &DialError{URL: rawURL, Kind: DialDNS, Err: err}
	}
	// An IP literal resolves without looking at ctx: a request whose
	// context already ended must not connect (nor race its connect's
	// outcome against the cancel).
	if cause := context.Cause(ctx); cause != nil {
		return nil, (&dialFailure{cause: cause}).classify(rawURL)
	}

	hc := &clientReq{t: t, req: req, maxBody: t.MaxResponseBodySize}
	if hc.maxBody == 0 {
		hc.maxBody = 64 << 20
	}
	for _, h := range t.ExtraHeaders {
		if !validHeaderName(h) {
			return nil, fmt.Errorf("lws: Transport.ExtraHeaders: %q is not a header name", h)
		}
		hc.custom += strings.ToLower(h) + ":\x00"
	}
	for off := 0; off < len(body); off += txPacketSize {
		n := min(len(body)-off, txPacketSize)
		f := newFrame(n)
		copy(f.buf[cgo.Pre:], body[off:off+n])
		hc.body = append(hc.body, f)
	}
	ci := cgo.ConnectInfo{
		Address: addr,
		Port:    tg.port,
		Path:    tg.path,
		Host:    tg.hostHd,
		Method:  method,
		TLS:     tg.tls,
		// h2 would multiplex; one request per connection is the model.
		ALPN:     "http/1.1",
		Insecure: t.TLS != nil && t.TLS.InsecureSkipVerify,
		Headers:  hdrs,
		Body:     len(body) > 0,
	}

	type result struct {
		resp *http.Response
		err  error
	}
	res := make(chan result, 1)
	var r *rec
	ok := c.post(func() {
		var err error
		if r, err = c.newClientRec(recHTTPClient, tg, t.TLS, false, &ci); err != nil {
			res <- result{err: err}
			return
		}
		r.hc = hc
		r.dial.onDone = func(err error) {
			if err != nil {
				hc.releaseBody()
				res <- result{err: err}
				return
			}
			res <- result{resp: hc.rb.resp}
		}
		c.armTimer(r, r.dial, dialTimeout)
		c.connect(r, ci)
	})
	if !ok {
		hc.releaseBody()
		return nil, &DialError{URL: rawURL, Kind: DialClosed, Err: ErrClosed}
	}
	// The request's context ends the request at any point, body included.
	var stop func() bool
	stop = context.AfterFunc(ctx, func() {
		cause := context.Cause(ctx)
		c.post(func() {
			if r != nil {
				c.abortHTTP(r, cause)
			}
		})
	})
	select {
	case out := <-res:
		if out.err != nil {
			stop()
			return nil, out.err
		}
		out.resp.Request = req
		hc.rb.setStop(stop)
		return out.resp, nil
	case <-c.done:
		stop()
		return nil, &DialError{URL: rawURL, Kind: DialClosed, Err: ErrClosed}
	}
}

func (hc *clientReq) releaseBody() {
	for _, f := range hc.body {
		f.release()
	}
	hc.body = nil
}

// abortHTTP ends a request for cause, before or after its response
// arrived (service goroutine).
func (c *Context) abortHTTP(r *rec, cause error) {
	if r.dial != nil && !r.dial.done {
		c.abortClient(r, cause)
		return
	}
	if hc := r.hc; hc != nil && hc.rb != nil && r.wsi != 0 {
		if hc.rb.fail(cause) {
			c.kill(r)
		}
	}
}

// handleHTTPClient is handleClient for an HTTP request.
func (c *Context) handleHTTPClient(ev *callbacks.Event, r *rec) int {
	hc, d := r.hc, r.dial
	switch ev.Reason {
	case callbacks.ClientAppendHandshakeHeader:
		// connected: from now on the request and the response headers
		c.armTimer(r, d, c.headerTimeout(hc.t))
	case callbacks.ClientHTTPWriteable:
		return c.writeRequestBody(r)
	case callbacks.EstablishedClientHTTP:
		return c.onHTTPResponse(r)
	case callbacks.ReceiveClientHTTP:
		if hc.rb == nil {
			return -1
		}
		if hc.rb.pauseIfFull() {
			r.wsi.RxFlow(false)
			return 1
		}
	case callbacks.ReceiveClientHTTPRead:
		if hc.rb == nil {
			return -1
		}
		hc.got += int64(len(ev.Data))
		if hc.maxBody >= 0 && hc.got > hc.maxBody {
			hc.rb.fail(ErrBodyTooLarge)
			return -1
		}
		if !hc.rb.push(ev.Data) {
			return -1 // the reader closed the body
		}
	case callbacks.CompletedClientHTTP:
		if hc.rb != nil {
			hc.rb.fail(io.EOF)
		}
		// One request per connection.
		return -1
	}
	return 0
}

func (c *Context) headerTimeout(t *Transport) time.Duration {
	if t.ResponseHeaderTimeout > 0 {
		return t.ResponseHeaderTimeout
	}
	return c.cfg.NetworkTimeout
}

// writeRequestBody writes the request body until the pipe chokes.
func (c *Context) writeRequestBody(r *rec) int {
	hc := r.hc
	var gate chokeGate
	for len(hc.body) > 0 {
		f := hc.body[0]
		last := len(hc.body) == 1
		res := r.wsi.WriteHTTP(f.buf, cgo.Pre, f.payloadLen(), last, gate.ask(f.payloadLen(), !last))
		if res == cgo.WriteFailed {
			return -1
		}
		f.release()
		hc.body[0] = nil
		hc.body = hc.body[1:]
		if res == cgo.WriteChoked && len(hc.body) > 0 {
			r.wsi.CallbackOnWritable()
			return 0
		}
	}
	hc.body = nil
	r.wsi.ClientBodyDone()
	return 0
}

func (c *Context) onHTTPResponse(r *rec) int {
	hc, d := r.hc, r.dial
	if d.done {
		return -1
	}
	buf, err := r.wsi.ClientResponse(c.hbuf, hc.custom)
	if err != nil {
		d.fail.lwsText = err.Error()
		return -1
	}
	if cap(buf) <= 64<<10 {
		c.hbuf = buf[:0]
	}
	parts := bytes.Split(buf, []byte{0})
	status, _ := strconv.Atoi(string(parts[0]))
	resp := &http.Response{
		Status:        fmt.Sprintf("%d %s", status, http.StatusText(status)),
		StatusCode:    status,
		Proto:         "HTTP/1.1",
		ProtoMajor:    1,
		ProtoMinor:    1,
		Header:        http.Header{},
		ContentLength: -1,
		Close:         true,
	}
	for i := 1; i+1 < len(parts); i += 2 {
		resp.Header.Add(http.CanonicalHeaderKey(string(parts[i])), string(parts[i+1]))
	}
	if cl := resp.Header.Get("Content-Length"); cl != "" {
		if n, err := strconv.ParseInt(cl, 10, 64); err == nil && n >= 0 {
			resp.ContentLength = n
			hc.delim = true
		}
	}
	if te := resp.Header.Get("Transfer-Encoding"); strings.EqualFold(te, "chunked") {
		resp.TransferEncoding = []string{"chunked"}
		resp.Header.Del("Transfer-Encoding")
		resp.ContentLength = -1
		hc.delim = true
	}
	hc.rb = &respBody{c: c, r: r, resp: resp, wake: make(chan struct{}, 1)}
	resp.Body = hc.rb
	if hc.req.Method == http.MethodHead || status == http.StatusNoContent || status == http.StatusNotModified || resp.ContentLength == 0 {
		hc.rb.fail(io.EOF)
	}
	c.finishDial(d, nil)
	if bt := hc.t.BodyTimeout; bt > 0 {
		rb := hc.rb
		hc.bodyTmr = time.AfterFunc(bt, func() {
			c.post(func() {
				if r.wsi != 0 && r.hc == hc && rb.fail(&DialError{URL: d.t.url, Kind: DialTimeout, Detail: "response body", Err: os.ErrDeadlineExceeded}) {
					c.kill(r)
				}
			})
		})
	}
	return 0
}

// onHTTPClientDestroy is WSI_DESTROY of an HTTP client link.
func (c *Context) onHTTPClientDestroy(r *rec) {
	hc := r.hc
	hc.releaseBody()
	if hc.bodyTmr != nil {
		// Else it would keep the request for BodyTimeout.
		hc.bodyTmr.Stop()
	}
	if d := r.dial; !d.done {
		c.finishDial(d, d.fail.classify(d.t.url))
		return
	}
	if hc.rb != nil {
		if hc.delim || hc.rb.aborted() {
			hc.rb.fail(io.ErrUnexpectedEOF)
		} else {
			// No length and not chunked: the body ends with the
			// connection.
			hc.rb.fail(io.EOF)
		}
	}
}

// respBody is a response body streamed from the service goroutine to the
// caller.
//
// Concurrency: Read and Close are for the caller's goroutine (as for any
// http.Response.Body); push, fail and pauseIfFull for the service goroutine.
type respBody struct {
	c    *Context
	r    *rec
	resp *http.Response
	wake chan struct{} // cap 1: something changed

	mu       sync.Mutex
	chunks   [][]byte
	buffered int
	err      error // io.EOF at the end, or why the body failed
	closed   bool
	paused   bool
	stop     func() bool // stops the request context's watcher
}

func (b *respBody) setStop(stop func() bool) {
	b.mu.Lock()
	done := b.err != nil && b.buffered == 0
	b.stop = stop
	b.mu.Unlock()
	if done {
		stop()
	}
}

func (b *respBody) signal() {
	select {
	case b.wake <- struct{}{}:
	default:
	}
}

// push appends a copy of p; false when the reader is gone.
func (b *respBody) push(p []byte) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed || b.err != nil {
		return !b.closed
	}
	b.chunks = append(b.chunks, append([]byte(nil), p...))
	b.buffered += len(p)
	b.signal()
	return true
}

// fail ends the body with err (io.EOF for a clean end). It reports whether
// this call ended it.
func (b *respBody) fail(err error) bool {
	b.mu.Lock()
	if b.err != nil {
		b.mu.Unlock()
		return false
	}
	b.err = err
	stop := b.stop
	b.signal()
	b.mu.Unlock()
	if stop != nil && err != io.EOF {
		stop()
	}
	return true
}

func (b *respBody) aborted() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.err != nil && b.err != io.EOF
}

// pauseIfFull reports whether reading must pause until the reader catches up.
func (b *respBody) pauseIfFull() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.buffered >= rxWindow && !b.closed {
		b.paused = true
		return true
	}
	return false
}

// Read implements io.Reader.
func (b *respBody) Read(p []byte) (int, error) {
	for {
		b.mu.Lock()
		if b.closed {
			b.mu.Unlock()
			return 0, errBodyClosed
		}
		if len(b.chunks) > 0 {
			n := 0
			for n < len(p) && len(b.chunks) > 0 {
				m := copy(p[n:], b.chunks[0])
				n += m
				if m == len(b.chunks[0]) {
					b.chunks[0] = nil
					b.chunks = b.chunks[1:]
				} else {
					b.chunks[0] = b.chunks[0][m:]
				}
			}
			b.buffered -= n
			resume := b.paused && b.buffered < rxWindow/2
			if resume {
				b.paused = false
			}
			end := len(b.chunks) == 0 && b.err == io.EOF
			stop := b.stop
			b.mu.Unlock()
			if resume {
				b.c.post(func() {
					if b.r.wsi != 0 && b.r.hc != nil && b.r.hc.rb == b {
						b.r.wsi.RxFlow(true)
					}
				})
			}
			if end {
				if stop != nil {
					stop()
				}
				return n, io.EOF
			}
			return n, nil
		}
		if b.err != nil {
			err := b.err
			stop := b.stop
			b.mu.Unlock()
			if stop != nil {
				stop()
			}
			return 0, err
		}
		b.mu.Unlock()
		select {
		case <-b.wake:
		case <-b.c.done:
			b.fail(io.ErrUnexpectedEOF)
		}
	}
}

// Close implements io.Closer. Closing before the end drops the connection.
func (b *respBody) Close() error {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return nil
	}
	b.closed = true
	unfinished := b.err == nil
	b.chunks, b.buffered = nil, 0
	stop := b.stop
	b.mu.Unlock()
	if stop != nil {
		stop()
	}
	if unfinished {
		b.c.post(func() {
			if b.r.wsi != 0 && b.r.hc != nil && b.r.hc.rb == b && b.fail(errBodyClosed) {
				b.c.kill(b.r)
			}
		})
	}
	return nil
}
