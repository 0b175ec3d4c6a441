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

// clientReq is one request of a Transport: its dial's (dialState.hc), then,
// once its response arrived, the role of its client link, which streams
// the response body to the caller (respBody). Service goroutine only,
// except rb.
type clientReq struct {
	r       *rec
	d       *dialState // its dial, done once the response arrived
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
	ci, body, err := t.connectInfo(req, tg)
	if err != nil {
		return nil, err
	}
	dialTimeout := t.DialTimeout
	if dialTimeout <= 0 {
		dialTimeout = c.cfg.NetworkTimeout
	}
	ctx := req.Context()
	dctx, cancel := context.WithTimeoutCause(ctx, dialTimeout, os.ErrDeadlineExceeded)
	ci.Address, err = resolve(dctx, tg.host)
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
	hc, err := t.newClientReq(req, body)
	if err != nil {
		return nil, err
	}
	return hc.run(c, tg, ci, dialTimeout)
}

// connectInfo checks req's method and headers, reads its body (on the
// caller's goroutine) and describes the connection for the C layer, all
// but its address.
func (t *Transport) connectInfo(req *http.Request, tg *target) (cgo.ConnectInfo, []byte, error) {
	method := req.Method
	if method == "" {
		method = http.MethodGet
	}
	if !validHeaderName(method) {
		return cgo.ConnectInfo{}, nil, fmt.Errorf("lws: RoundTrip: invalid method %q", method)
	}
	maxReq := t.MaxRequestBodySize
	if maxReq == 0 {
		maxReq = 64 << 20
	}
	var body []byte
	if req.Body != nil && req.Body != http.NoBody {
		var err error
		body, err = io.ReadAll(io.LimitReader(req.Body, maxReq+1))
		_ = req.Body.Close()
		if err != nil {
			return cgo.ConnectInfo{}, nil, fmt.Errorf("lws: reading request body: %w", err)
		}
		if int64(len(body)) > maxReq {
			return cgo.ConnectInfo{}, nil, fmt.Errorf("lws: request body over Transport.MaxRequestBodySize (%d bytes)", maxReq)
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
		return cgo.ConnectInfo{}, nil, fmt.Errorf("lws: Request.Header: %w", err)
	}
	if len(body) > 0 || method == http.MethodPost || method == http.MethodPut || method == http.MethodPatch {
		hdrs = append(hdrs, "content-length\x00"...)
		hdrs = strconv.AppendInt(hdrs, int64(len(body)), 10)
		hdrs = append(hdrs, 0)
	}
	return cgo.ConnectInfo{
		Port:   tg.port,
		Path:   tg.path,
		Host:   tg.hostHd,
		Method: method,
		TLS:    tg.tls,
		// h2 would multiplex; one request per connection is the model.
		ALPN:     "http/1.1",
		Insecure: t.TLS != nil && t.TLS.InsecureSkipVerify,
		Headers:  hdrs,
		Body:     len(body) > 0,
	}, body, nil
}

// newClientReq makes the request's state, its body cut into frames.
func (t *Transport) newClientReq(req *http.Request, body []byte) (*clientReq, error) {
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
	return hc, nil
}

// run makes the request on c and waits for its response.
func (hc *clientReq) run(c *Context, tg *target, ci cgo.ConnectInfo, dialTimeout time.Duration) (*http.Response, error) {
	type result struct {
		resp *http.Response
		err  error
	}
	res := make(chan result, 1)
	ok := c.post(func() {
		d, err := c.newDial(tg, hc.t.TLS, false, &ci)
		if err != nil {
			res <- result{err: err}
			return
		}
		hc.r, hc.d, d.hc = d.r, d, hc
		d.onDone = func(err error) {
			if err != nil {
				hc.releaseBody()
				res <- result{err: err}
				return
			}
			res <- result{resp: hc.rb.resp}
		}
		d.arm(dialTimeout)
		c.connect(d, ci)
	})
	if !ok {
		hc.releaseBody()
		return nil, &DialError{URL: tg.url, Kind: DialClosed, Err: ErrClosed}
	}
	// The request's context ends the request at any point, body included.
	ctx := hc.req.Context()
	stop := context.AfterFunc(ctx, func() {
		cause := context.Cause(ctx)
		c.post(func() {
			if hc.d != nil {
				hc.abort(cause)
			}
		})
	})
	select {
	case out := <-res:
		if out.err != nil {
			stop()
			return nil, out.err
		}
		out.resp.Request = hc.req
		hc.rb.setStop(stop)
		return out.resp, nil
	case <-c.done:
		stop()
		return nil, &DialError{URL: tg.url, Kind: DialClosed, Err: ErrClosed}
	}
}

func (hc *clientReq) releaseBody() {
	for _, f := range hc.body {
		f.release()
	}
	hc.body = nil
}

// on handles the callbacks of a request whose response arrived: its body
// streams to the reader, paused while the reader is behind.
func (hc *clientReq) on(ev *callbacks.Event) int {
	switch ev.Reason {
	case callbacks.ClientHTTPWriteable:
		return hc.writeBody()
	case callbacks.EstablishedClientHTTP:
		return -1 // a second response
	case callbacks.ReceiveClientHTTP:
		if hc.rb.pauseIfFull() {
			hc.r.wsi.RxFlow(false)
			return 1
		}
	case callbacks.ReceiveClientHTTPRead:
		hc.got += int64(len(ev.Data))
		if hc.maxBody >= 0 && hc.got > hc.maxBody {
			hc.rb.fail(ErrBodyTooLarge)
			return -1
		}
		if !hc.rb.push(ev.Data) {
			return -1 // the reader closed the body
		}
	case callbacks.CompletedClientHTTP:
		hc.rb.fail(io.EOF)
		// One request per connection.
		return -1
	}
	return 0
}

// destroy is WSI_DESTROY after the response arrived: the body ends,
// cleanly only when its end could not be known otherwise.
func (hc *clientReq) destroy() CloseError {
	hc.releaseBody()
	if hc.bodyTmr != nil {
		// Else it would keep the request for BodyTimeout.
		hc.bodyTmr.Stop()
	}
	if hc.delim || hc.rb.aborted() {
		hc.rb.fail(io.ErrUnexpectedEOF)
	} else {
		// No length and not chunked: the body ends with the
		// connection.
		hc.rb.fail(io.EOF)
	}
	return CloseError{}
}

func (hc *clientReq) busy() bool { return true }
func (hc *clientReq) stop()      { hc.abort(ErrClosed) }

// abort ends the request for cause, before or after its response arrived.
func (hc *clientReq) abort(cause error) {
	if !hc.d.done {
		hc.d.abort(cause)
		return
	}
	if hc.rb != nil && hc.r.wsi != 0 && hc.rb.fail(cause) {
		hc.r.kill()
	}
}

func (hc *clientReq) headerTimeout(c *Context) time.Duration {
	if hc.t.ResponseHeaderTimeout > 0 {
		return hc.t.ResponseHeaderTimeout
	}
	return c.cfg.NetworkTimeout
}

// writeBody writes the request body until the pipe chokes.
func (hc *clientReq) writeBody() int {
	wsi := hc.r.wsi
	var gate chokeGate
	for len(hc.body) > 0 {
		f := hc.body[0]
		last := len(hc.body) == 1
		res := wsi.WriteHTTP(f.buf, cgo.Pre, f.payloadLen(), last, gate.ask(f.payloadLen(), !last))
		if res == cgo.WriteFailed {
			return -1
		}
		f.release()
		hc.body[0] = nil
		hc.body = hc.body[1:]
		if res == cgo.WriteChoked && len(hc.body) > 0 {
			wsi.CallbackOnWritable()
			return 0
		}
	}
	hc.body = nil
	wsi.ClientBodyDone()
	return 0
}

// onResponse is ESTABLISHED_CLIENT_HTTP: the response headers arrived, the
// dial is done, and the request is the link's role from now on.
func (hc *clientReq) onResponse() int {
	r, d := hc.r, hc.d
	c := r.ctx
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
	resp := hc.response(buf)
	hc.rb = &respBody{c: c, r: r, resp: resp, wake: make(chan struct{}, 1)}
	resp.Body = hc.rb
	if hc.req.Method == http.MethodHead || resp.StatusCode == http.StatusNoContent || resp.StatusCode == http.StatusNotModified || resp.ContentLength == 0 {
		hc.rb.fail(io.EOF)
	}
	r.role = hc
	d.finish(nil)
	if bt := hc.t.BodyTimeout; bt > 0 {
		rb := hc.rb
		hc.bodyTmr = time.AfterFunc(bt, func() {
			c.post(func() {
				if r.wsi != 0 && r.role == role(hc) && rb.fail(&DialError{URL: d.t.url, Kind: DialTimeout, Detail: "response body", Err: os.ErrDeadlineExceeded}) {
					r.kill()
				}
			})
		})
	}
	return 0
}

// response makes the http.Response of the status and headers in buf (what
// cgo.WSI.ClientResponse read), and notes whether its body's end is known.
func (hc *clientReq) response(buf []byte) *http.Response {
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
	return resp
}
