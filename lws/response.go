package lws

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"

	"github.com/lwsgate/lwsgate/cgo"
)

// ResponseWriter sends the response to one HTTP request.
//
// Concurrency: Header and Respond may be called from any goroutine, but
// not concurrently with each other; Respond (or RespondAppend) at most
// once.
type ResponseWriter struct {
	h   *httpConn
	req *Request
	rq  Request // what req points to: one allocation for both

	mu        sync.Mutex
	header    http.Header  // made by Header
	pairs     [4][2]string // set by SetHeader while there is no header
	npairs    int
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

// Header returns the response headers to set before Respond. The map is
// made on the first call, with what SetHeader set before.
func (w *ResponseWriter) Header() http.Header {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.headerLocked()
}

func (w *ResponseWriter) headerLocked() http.Header {
	if w.header == nil {
		w.header = make(http.Header, w.npairs)
		for _, kv := range w.pairs[:w.npairs] {
			w.header[kv[0]] = []string{kv[1]}
		}
		w.pairs, w.npairs = [4][2]string{}, 0
	}
	return w.header
}

// SetHeader sets the response header name to value, replacing any value it
// had: Header().Set(name, value), without making the Header map for the
// first few headers.
func (w *ResponseWriter) SetHeader(name, value string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.header == nil {
		name = http.CanonicalHeaderKey(name)
		for i := range w.npairs {
			if w.pairs[i][0] == name {
				w.pairs[i][1] = value
				return
			}
		}
		if w.npairs < len(w.pairs) {
			w.pairs[w.npairs] = [2]string{name, value}
			w.npairs++
			return
		}
	}
	w.headerLocked().Set(name, value)
}

// Respond sends status, the headers set with Header or SetHeader, and
// body, which it copies. Content-Length is set from body. It returns
// ErrAlreadyResponded on a second call and ErrClosed when the connection
// has gone.
func (w *ResponseWriter) Respond(status int, body []byte) error {
	return w.respond(status, len(body), body, nil)
}

// RespondAppend is Respond for a body made to be sent: appendBody appends
// it to the empty buffer it is given, which has room for size bytes
// (more is allowed, at the cost of a copy) and becomes the response
// without the copy Respond makes of its body. appendBody is called once,
// before RespondAppend returns, on the caller's goroutine; it must not
// keep the buffer.
func (w *ResponseWriter) RespondAppend(status, size int, appendBody func(dst []byte) []byte) error {
	return w.respond(status, max(size, 0), nil, appendBody)
}

// respond is Respond with body, or RespondAppend with appendBody and
// size.
func (w *ResponseWriter) respond(status, size int, body []byte, appendBody func([]byte) []byte) error {
	if status < 100 || status > 999 {
		return fmt.Errorf("lws: Respond: invalid status %d", status)
	}
	w.mu.Lock()
	pairs, header := w.pairs, w.header
	pairList := pairs[:w.npairs]
	w.mu.Unlock()
	// One buffer: cgo.Pre headroom, the body, then the header pairs.
	n := 0
	for _, kv := range pairList {
		n += len(kv[0]) + len(kv[1]) + 2
	}
	for k, vs := range header {
		for _, v := range vs {
			n += len(k) + len(v) + 2
		}
	}
	buf := make([]byte, cgo.Pre, cgo.Pre+size+n)
	if appendBody == nil {
		buf = append(buf, body...)
	} else if b := appendBody(buf[cgo.Pre:cgo.Pre]); len(b) > 0 {
		if cap(buf) > cgo.Pre && &b[0] == &buf[:cgo.Pre+1][cgo.Pre] {
			buf = buf[:cgo.Pre+len(b)] // appended in place
		} else {
			// Grown past the room given, or another buffer: the
			// headroom is not before it.
			buf = append(make([]byte, cgo.Pre, cgo.Pre+len(b)+n), b...)
		}
	}
	hb := buf[len(buf):]
	closeAfter := false
	var err error
	for _, kv := range pairList {
		if hb, err = appendHeader(hb, kv[0], kv[1], &closeAfter); err != nil {
			break
		}
	}
	for k, vs := range header {
		for _, v := range vs {
			if err != nil {
				break
			}
			hb, err = appendHeader(hb, k, v, &closeAfter)
		}
	}
	if err != nil {
		return err
	}
	return w.queue(status, hb, buf, closeAfter)
}

// appendHeader appends a response header line for Respond to hb, as the
// C layer takes them: the name in lower case, NUL, the value, NUL. It
// checks both, leaves out what Respond sets itself (Content-Length,
// Transfer-Encoding), and notes "Connection: close" in closeAfter instead.
func appendHeader(hb []byte, k, v string, closeAfter *bool) ([]byte, error) {
	if !validHeaderName(k) {
		return hb, fmt.Errorf("lws: Respond: invalid header name %q", k)
	}
	switch http.CanonicalHeaderKey(k) {
	case "Content-Length", "Transfer-Encoding":
		return hb, nil // set from body
	case "Connection":
		if strings.EqualFold(strings.TrimSpace(v), "close") {
			*closeAfter = true
		}
		return hb, nil
	}
	if strings.ContainsAny(v, "\r\n\x00") {
		return hb, fmt.Errorf("lws: Respond: header %s: value contains CR, LF or NUL", k)
	}
	for i := 0; i < len(k); i++ {
		c := k[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		hb = append(hb, c)
	}
	hb = append(hb, 0)
	hb = append(hb, v...)
	return append(hb, 0), nil
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
