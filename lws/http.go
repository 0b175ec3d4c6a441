package lws

import (
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/lwsgate/lwsgate/callbacks"
	"github.com/lwsgate/lwsgate/cgo"
)

// Request is an HTTP request, or the upgrade request of a WebSocket link.
// Handlers may keep it; it is not reused.
type Request struct {
	// Method is "GET", "POST"...
	Method string
	// Path is the request path as libwebsockets delivers it: URL-decoded
	// and normalised ("/a/../b" arrives as "/b").
	Path string
	// RawQuery is the query: libwebsockets decodes each "name=value"
	// argument, and they are joined here with '&' (values that contained
	// an encoded '&' are therefore ambiguous).
	RawQuery string
	// Proto is the protocol version of the request line, "HTTP/1.1" or
	// "HTTP/1.0".
	Proto string
	// Header holds the request headers libwebsockets parsed, with
	// canonical names, plus Listener.ExtraHeaders.
	Header http.Header
	// Body is the whole request body (at most Listener.MaxBodySize).
	Body []byte
	// Remote is the client's address: the peer's, or behind a proxy
	// (Listener.TrustedProxies, ProxyProtocol) the client it names.
	Remote net.Addr
	// LinkID is the ID of the link (connection) the request came on.
	LinkID uint64
	// Listener is the name of the listener that accepted it.
	Listener string
	// ContentLength is the Content-Length header's value, or -1 when the
	// request has none.
	ContentLength int64

	raw string // what the request was parsed from (parseRequest)
}

// Query parses RawQuery.
func (r *Request) Query() url.Values {
	v := url.Values{}
	for _, kv := range strings.Split(r.RawQuery, "&") {
		if kv == "" {
			continue
		}
		k, val, _ := strings.Cut(kv, "=")
		v.Add(k, val)
	}
	return v
}

// readRequest reads the request headers of r's wsi (service goroutine).
func (c *Context) readRequest(r *rec) (*Request, error) {
	buf, err := r.wsi.HTTPRequest(c.hbuf, r.lis.extra)
	if err != nil {
		return nil, err
	}
	if cap(buf) <= 64<<10 {
		c.hbuf = buf[:0]
	}
	var remote net.Addr
	switch {
	case r.peer != nil:
		// A proxy's: each request names its client (below).
	case r.link.Remote != nil:
		// A keep-alive connection's peer does not change: ask the
		// kernel once per connection.
		remote = r.link.Remote
	default:
		remote = r.wsi.RemoteAddr()
	}
	req, err := parseRequest(string(buf), remote, r.id, r.lis.cfg.Name)
	if err == nil && r.peer != nil {
		req.Remote = tcpAddr(c.requestClient(r, req.Header))
	}
	return req, err
}

// parseRequest makes a Request of raw, what cgo.WSI.HTTPRequest read. The
// request's strings are all slices of raw, and its header's values share
// one backing array: a request is a few allocations, not one per field.
// A WebSocket link keeps only raw for its life and parses it again if
// asked after OnOpen (Conn.Request).
func parseRequest(raw string, remote net.Addr, linkID uint64, listener string) (*Request, error) {
	s := raw
	var f [4]string // method, path, query, protocol
	for i := range f {
		j := strings.IndexByte(s, 0)
		if j < 0 {
			return nil, fmt.Errorf("lws: malformed request info")
		}
		f[i], s = s[:j], s[j+1:]
	}
	n := strings.Count(s, "\x00") / 2
	req := &Request{
		Method:        f[0],
		Path:          f[1],
		RawQuery:      f[2],
		Proto:         f[3],
		Header:        make(http.Header, n),
		Remote:        remote,
		LinkID:        linkID,
		Listener:      listener,
		ContentLength: -1,
		raw:           raw,
	}
	vals := make([]string, n)
	for i := range n {
		name, rest, _ := strings.Cut(s, "\x00")
		val, rest, _ := strings.Cut(rest, "\x00")
		s = rest
		key := http.CanonicalHeaderKey(name)
		if old, ok := req.Header[key]; ok {
			req.Header[key] = append(old, val) // a repeated header
			continue
		}
		vals[i] = val
		req.Header[key] = vals[i : i+1 : i+1]
	}
	return req, nil
}

// httpConn is the state of one HTTP connection (service goroutine), which
// carries one transaction after another on keep-alive.
//
// Pipelining. A client may send its next request before the answer to the
// last (RFC 9112 section 9.3.2), and libwebsockets mishandles the bytes of
// that request whenever they arrive while a transaction is open:
//
//   - When they came in the same read as the end of a request, lws keeps
//     them in the connection's buflist, and after
//     lws_http_transaction_completed parses the next request from there.
//     For a request with a body lws_http_action then reads that buflist
//     segment again from its start, the request's own headers, as its body
//     (lib/roles/http/server/server.c: 1811-1828 in v4.1.6, 2044-2061 in
//     v4.3.5). On 4.1.6, once that "body" is complete, lws_read_h1 consumes
//     nothing more and the loop never ends: the service thread spins inside
//     one lws_service call, deaf even to SIGTERM. On 4.3.5 the handler would
//     get a wrong body.
//   - 4.3.5 reads the socket while a request without a body is being
//     answered (lib/roles/h1/ops-h1.c:372, state LRS_DOING_TRANSACTION,
//     added in 4.3.1) and lws_read_h1 has no case for that state: it
//     closes the connection without the answer ("Unhandled state",
//     ops-h1.c:299). 4.1.6 does not read in that state but, with bytes in
//     the buflist, polls without waiting until the answer is out.
//   - 4.3.5 passes every byte of a read to HTTP_BODY once a body has begun
//     (ops-h1.c:135-144: content_length_given is never set for h1, until
//     5.0), so the next request becomes part of this one's body, the
//     remaining length wraps around and BODY_COMPLETION never comes.
//     4.1.6 calls HTTP_BODY_COMPLETION again for every read after the body.
//
// So the binding keeps libwebsockets from reading while a request is being
// answered: rx is paused from the callback that completes a request (HTTP
// for one without a body, HTTP_BODY_COMPLETION) until the answer is ready,
// and the answer is then written at once (Context.answer), before the event
// loop looks at the socket again; what the socket does not take at once is
// written on the same way, rx paused in between. Bytes that arrive meanwhile
// wait in the kernel and are read as a fresh request once the transaction
// is complete: served, in order. Bytes lws had already read with the
// request stay in its buflist, and once rx resumes lws reports input it can
// process without the network (cgo.Context.ForcedService). Then, as when
// lws hands the binding bytes past a body (the 4.3.5 and 4.1.6 signs above),
// the answer carries "connection: close" and the connection ends after it,
// so that lws never parses a request from its buflist. The report is for
// the whole context: another connection's pending input closes this one
// too, needlessly but safely (a few reconnects while some client pipelines,
// or while TLS or inflated data waits on another link).
type httpConn struct {
	r   *rec
	txn *ResponseWriter // the transaction in progress, or nil
}

// complete is called when w's request is complete: libwebsockets reads no
// more until its answer is written (see httpConn).
func (h *httpConn) complete(w *ResponseWriter) {
	w.paused = true
	h.r.wsi.RxFlow(false)
}

func (h *httpConn) idle() bool { return h.txn == nil }

// ResponseWriter sends the response to one HTTP request.
//
// Concurrency: Header and Respond may be called from any goroutine, but
// not concurrently with each other; Respond at most once.
type ResponseWriter struct {
	h      *httpConn
	req    *Request
	header http.Header

	mu        sync.Mutex
	state     respState
	responded bool // Respond (or an error answer) was accepted once
	status    int
	hdrs      []byte // NUL-separated name, value pairs for the C layer
	body      []byte // cgo.Pre headroom + body
	close     bool   // close the connection after the response

	// Service goroutine only.
	expectBody bool
	tooBig     bool
	served     bool // handler called (or error answered)
	hdrSent    bool
	off        int
	paused     bool // rx paused until the answer is written (httpConn)
	deferred   bool // the handler answered later: check the client is still there
	pipelined  bool // lws read past this request: close after the answer
}

type respState uint8

const (
	respOpen  respState = iota // handler has not responded
	respReady                  // response queued for HTTP_WRITEABLE
	respDone                   // written, or the connection is gone
)

// Context returns the Context the request arrived on, for example to make
// a client request from the handler. Safe from any goroutine.
func (w *ResponseWriter) Context() *Context { return w.h.r.ctx }

// Header returns the response headers to set before Respond.
func (w *ResponseWriter) Header() http.Header { return w.header }

// Respond sends status, the headers set with Header, and body, which it
// copies. Content-Length is set from body. It returns ErrAlreadyResponded on
// a second call and ErrClosed when the connection has gone.
func (w *ResponseWriter) Respond(status int, body []byte) error {
	if status < 100 || status > 999 {
		return fmt.Errorf("lws: Respond: invalid status %d", status)
	}
	var hb []byte
	closeAfter := false
	for k, vs := range w.header {
		if !validHeaderName(k) {
			return fmt.Errorf("lws: Respond: invalid header name %q", k)
		}
		switch http.CanonicalHeaderKey(k) {
		case "Content-Length", "Transfer-Encoding":
			continue // set from body
		case "Connection":
			for _, v := range vs {
				if strings.EqualFold(strings.TrimSpace(v), "close") {
					closeAfter = true
				}
			}
			continue
		}
		for _, v := range vs {
			if strings.ContainsAny(v, "\r\n\x00") {
				return fmt.Errorf("lws: Respond: header %s: value contains CR, LF or NUL", k)
			}
			hb = append(hb, strings.ToLower(k)...)
			hb = append(hb, 0)
			hb = append(hb, v...)
			hb = append(hb, 0)
		}
	}
	buf := make([]byte, cgo.Pre+len(body))
	copy(buf[cgo.Pre:], body)
	return w.queue(status, hb, buf, closeAfter)
}

func (w *ResponseWriter) queue(status int, hdrs, body []byte, closeAfter bool) error {
	w.mu.Lock()
	switch {
	case w.responded:
		// Also once the response is written (state respDone).
		w.mu.Unlock()
		return ErrAlreadyResponded
	case w.state == respDone:
		w.mu.Unlock()
		return fmt.Errorf("%w: connection gone", ErrClosed)
	}
	w.responded = true
	w.close = w.close || closeAfter
	w.state, w.status, w.hdrs, w.body = respReady, status, hdrs, body
	w.mu.Unlock()
	w.h.r.ctx.schedule(w.h.r)
	return nil
}

// CheckHeader checks a request header as the binding sends one
// (DialOptions.Header, Transport): a name that is an HTTP token, and a
// value without CR, LF or NUL, which could split the request. For callers
// that check a config before any link starts.
func CheckHeader(name, value string) error {
	if !validHeaderName(name) {
		return fmt.Errorf("%q is not a header name", name)
	}
	if strings.ContainsAny(value, "\r\n\x00") {
		return fmt.Errorf("header %s: value contains CR, LF or NUL", name)
	}
	return nil
}

func validHeaderName(k string) bool {
	if k == "" {
		return false
	}
	for i := 0; i < len(k); i++ {
		c := k[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte("()<>@,;:\\\"/[]?={}", c) >= 0 {
			return false
		}
	}
	return true
}

// respondError answers with a plain-text error from the service goroutine.
func (w *ResponseWriter) respondError(status int, closeAfter bool) {
	w.respondErrorText(status, "", closeAfter)
}

// respondErrorText is respondError with why after the status text.
func (w *ResponseWriter) respondErrorText(status int, why string, closeAfter bool) {
	w.served = true
	w.close = w.close || closeAfter
	text := strconv.Itoa(status) + " " + http.StatusText(status) + "\n"
	if why != "" {
		text = strconv.Itoa(status) + " " + http.StatusText(status) + ": " + why + "\n"
	}
	hb := []byte("content-type\x00text/plain; charset=utf-8\x00")
	if status == http.StatusUpgradeRequired {
		hb = append(hb, "upgrade\x00websocket\x00"...)
	}
	buf := make([]byte, cgo.Pre+len(text))
	copy(buf[cgo.Pre:], text)
	_ = w.queue(status, hb, buf, closeAfter)
}

// refuseNow answers the request from its LWS_CALLBACK_HTTP with a
// plain-text error and "connection: close", written at once, and returns
// -1 so that libwebsockets closes the connection once the answer is out.
// Written now, not at the next HTTP_WRITEABLE: libwebsockets 4.3 goes on
// reading whatever follows the headers as the next request, and closes the
// connection without the answer when that does not parse.
func (w *ResponseWriter) refuseNow(status int, why string) int {
	w.served = true
	w.mu.Lock()
	w.responded = true
	w.state = respDone
	w.mu.Unlock()
	w.h.txn = nil
	text := strconv.Itoa(status) + " " + http.StatusText(status) + "\n"
	if why != "" {
		text = strconv.Itoa(status) + " " + http.StatusText(status) + ": " + why + "\n"
	}
	w.h.r.wsi.RefuseHTTP(status, nil, []byte(text))
	return -1
}

// onHTTP is LWS_CALLBACK_HTTP: the headers of a request arrived.
func (c *Context) onHTTP(r *rec, ev *callbacks.Event) int {
	if r.refuse != admitted {
		return c.answerRefused(r, false)
	}
	if r.http == nil {
		r.kind = recHTTP
		r.http = &httpConn{r: r}
	}
	c.setTimer(r, timerNone, 0) // the headers are in
	if r.http.txn != nil {
		// Not expected: rx is paused while a transaction is open.
		c.log.Warn("lws: HTTP request while another is being answered; closing", "link", r.id)
		return -1
	}
	req, err := c.readRequest(r)
	if err != nil {
		c.log.Warn("lws: reading request", "link", r.id, "err", err)
		return -1
	}
	if !r.opened {
		r.link = Link{ID: r.id, Kind: LinkHTTP, Listener: r.lis.cfg.Name, Remote: req.Remote, Path: req.Path, Opened: time.Now()}
		c.openLink(r)
	}
	w := &ResponseWriter{h: r.http, req: req, header: http.Header{}}
	r.http.txn = w
	lis := r.lis.cfg
	bodyMethod := req.Method == "POST" || req.Method == "PUT" || req.Method == "PATCH"
	framing := checkFraming(req)
	switch {
	case !framing.ok():
		// libwebsockets reads the body by its own reading of the
		// request (atoll, no Transfer-Encoding): close after the
		// answer, so that what it reads as the next request never is.
		c.limitHit(r, LimitBadRequest)
		return w.refuseNow(framing.status, framing.why)
	case c.stopping:
		return w.refuseNow(http.StatusServiceUnavailable, "")
	case lis.Accept&AcceptHTTP == 0:
		r.http.complete(w)
		w.respondError(http.StatusUpgradeRequired, false)
	case bodyMethod && req.ContentLength < 0:
		// Answered at HTTP_WRITEABLE, like a 413: libwebsockets goes
		// on reading what the client is sending meanwhile, so that a
		// close does not reset the connection under the answer.
		c.limitHit(r, LimitBadRequest)
		w.respondError(http.StatusLengthRequired, true)
	case req.ContentLength > lis.MaxBodySize:
		c.limitHit(r, LimitMaxBody)
		w.tooBig = true
		w.respondError(http.StatusRequestEntityTooLarge, true)
	case req.ContentLength > 0 || (req.Method == "POST" && req.ContentLength == 0):
		// The body follows (lws delivers an empty BODY and BODY_COMPLETION
		// for an explicit zero-length POST). libwebsockets only bounds
		// the wait for each chunk: bound the whole body.
		w.expectBody = true
		if d := lis.BodyTimeout; d > 0 {
			c.setTimer(r, timerBody, d)
		}
	default:
		r.http.complete(w)
		c.serve(w)
	}
	return 0
}

func (c *Context) serve(w *ResponseWriter) {
	w.served = true
	h := w.h.r.lis.cfg.HTTPHandler
	if h == nil {
		w.respondError(http.StatusNotFound, false)
		return
	}
	func() {
		defer func() {
			if p := recover(); p != nil {
				c.log.Error("lws: HTTP handler panicked", "link", w.h.r.id, "path", w.req.Path, "panic", fmt.Sprint(p))
				w.mu.Lock()
				open := w.state == respOpen
				w.mu.Unlock()
				if open {
					w.respondError(http.StatusInternalServerError, true)
				}
			}
		}()
		h.ServeHTTP(w, w.req)
	}()
	w.mu.Lock()
	w.deferred = w.state == respOpen
	w.mu.Unlock()
}

func (h *httpConn) onBody(p []byte) int {
	w := h.txn
	if w == nil || !w.expectBody || w.tooBig {
		return 0
	}
	if w.served {
		// libwebsockets 4.3 reads what follows a body as more of it.
		w.pipelined = true
		return 0
	}
	if room := w.req.ContentLength - int64(len(w.req.Body)); int64(len(p)) > room {
		// 4.3 again, the next request in the same read as the end of
		// this body: it never calls BODY_COMPLETION for this one.
		p = p[:room]
		w.pipelined = true
	}
	if int64(len(w.req.Body)+len(p)) > h.r.lis.cfg.MaxBodySize {
		h.r.ctx.limitHit(h.r, LimitMaxBody)
		w.tooBig = true
		w.req.Body = nil
		w.respondError(http.StatusRequestEntityTooLarge, true)
		return 0
	}
	w.req.Body = append(w.req.Body, p...)
	if w.pipelined {
		return h.onBodyComplete()
	}
	return 0
}

func (h *httpConn) onBodyComplete() int {
	if h.r.timer == timerBody {
		h.r.ctx.setTimer(h.r, timerNone, 0)
	}
	w := h.txn
	if w == nil {
		return 0
	}
	if w.served {
		if w.expectBody && !w.tooBig {
			// libwebsockets 4.1 calls again for each read after the
			// body: bytes of a next request.
			w.pipelined = true
		}
		return 0
	}
	if w.req.Body == nil {
		w.req.Body = []byte{}
	}
	h.complete(w)
	h.r.ctx.serve(w)
	return 0
}

// onWritable writes the queued response (HTTP_WRITEABLE).
func (h *httpConn) onWritable() int {
	w := h.txn
	if w == nil {
		return 0
	}
	w.mu.Lock()
	ready := w.state == respReady
	closeAfter := w.close || w.pipelined
	w.mu.Unlock()
	if !ready {
		return 0
	}
	wsi := h.r.wsi
	n := len(w.body) - cgo.Pre
	head := w.req.Method == "HEAD"
	if !w.hdrSent && w.deferred && wsi.PeerClosed() {
		// The client left while the reply was being prepared.
		return -1
	}
	var gate chokeGate
	if !w.hdrSent {
		if closeAfter {
			// The connection ends after this response: say so, or a
			// keep-alive client may send its next request into it.
			w.hdrs = append(w.hdrs, "connection\x00close\x00"...)
		}
		// A body that fits in one write follows unasked.
		res := wsi.WriteHTTPHeaders(w.status, w.hdrs, int64(n), n > txPacketSize && !head)
		if res == cgo.WriteFailed {
			return -1
		}
		w.hdrSent = true
		if res == cgo.WriteChoked && n > 0 && !head {
			wsi.CallbackOnWritable()
			return 0
		}
	}
	for !head && w.off < n {
		chunk := min(n-w.off, txPacketSize)
		final := w.off+chunk == n
		res := wsi.WriteHTTP(w.body, cgo.Pre+w.off, chunk, final, gate.ask(chunk, !final))
		if res == cgo.WriteFailed {
			return -1
		}
		w.off += chunk
		if res == cgo.WriteChoked && !final {
			wsi.CallbackOnWritable()
			return 0
		}
	}
	w.mu.Lock()
	w.state = respDone
	w.body = nil
	w.mu.Unlock()
	h.txn = nil
	if closeAfter || w.expectBody && !w.served {
		// The request body was not read: the connection cannot carry
		// another request.
		return -1
	}
	if wsi.HTTPTransactionCompleted() {
		return -1
	}
	return 0
}

// abandon marks the transaction dead: the connection is going away.
func (h *httpConn) abandon() {
	if w := h.txn; w != nil {
		w.mu.Lock()
		w.state = respDone
		w.body = nil
		w.mu.Unlock()
		h.txn = nil
	}
}
