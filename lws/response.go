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
