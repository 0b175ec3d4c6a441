package lws

import (
	"fmt"
	"net/http"
	"time"

	"github.com/lwsgate/lwsgate/callbacks"
	"github.com/lwsgate/lwsgate/cgo"
)

// httpConn is the role of an accepted connection carrying HTTP requests
// (server HTTP), one transaction after another on keep-alive, from its
// first request (accepted.on) until an upgrade makes it a WebSocket link or
// it ends. Service goroutine only.
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
// process without the network (cgo.WSI.ResumeHTTP). Then, as when
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

// oneWriteMax is the largest body an answer carries in the same write as
// its status line and headers (one send instead of two); a larger one is
// written after them, in chunks of txPacketSize, as the socket takes it.
const oneWriteMax = 16 << 10

// complete is called when w's request is complete: libwebsockets reads no
// more until its answer is written (see httpConn).
func (h *httpConn) complete(w *ResponseWriter) {
	w.paused = true
	h.r.wsi.RxFlow(false)
}

func (h *httpConn) idle() bool { return h.txn == nil }

// on handles the callbacks of an HTTP connection: one request after
// another (HTTP, HTTP_BODY, HTTP_BODY_COMPLETION, then the answer at
// HTTP_WRITEABLE), and what every accepted connection gets (the timer, an
// upgrade: onConnection).
func (h *httpConn) on(ev *callbacks.Event) int {
	switch ev.Reason {
	case callbacks.HTTP:
		return h.onRequest()
	case callbacks.HTTPBody:
		return h.onBody(ev.Data)
	case callbacks.HTTPBodyCompletion:
		return h.onBodyComplete()
	case callbacks.HTTPWriteable:
		return h.onWritable()
	case callbacks.HTTPDropProtocol, callbacks.ClosedHTTP:
		h.abandon()
		return 0
	}
	return h.r.onConnection(ev)
}

func (h *httpConn) destroy() CloseError {
	h.abandon()
	return CloseError{Code: StatusNormalClosure}
}

func (h *httpConn) busy() bool { return true }

// stop ends an idle keep-alive connection at once: it has nothing to
// finish. One answering a request is left to finish it.
func (h *httpConn) stop() {
	if h.idle() {
		h.r.wsi.Kill(false)
	}
}

// onHTTP is LWS_CALLBACK_HTTP on an accepted connection: its first
// request makes it an HTTP connection, unless an admission limit refused
// it.
func (r *rec) onHTTP() int {
	if r.refuse != admitted {
		return r.answerRefused(false)
	}
	h := &httpConn{r: r}
	r.role = h
	return h.onRequest()
}

// onRequest is LWS_CALLBACK_HTTP: the headers of a request arrived.
func (h *httpConn) onRequest() int {
	r := h.r
	c := r.ctx
	r.setTimer(timerNone, 0) // the headers are in
	if h.txn != nil {
		// Not expected: rx is paused while a transaction is open.
		c.log.Warn("lws: HTTP request while another is being answered; closing", "link", r.id)
		return -1
	}
	w := &ResponseWriter{h: h}
	req := &w.rq
	w.req = req
	if _, err := r.readRequest(req); err != nil {
		c.log.Warn("lws: reading request", "link", r.id, "err", err)
		return -1
	}
	if !r.opened {
		r.link = Link{ID: r.id, Kind: LinkHTTP, Listener: r.lis.cfg.Name, Remote: req.Remote, Path: req.Path, Opened: time.Now()}
		c.openLink(r)
	}
	h.txn = w
	lis := &r.lis.cfg
	bodyMethod := req.Method == "POST" || req.Method == "PUT" || req.Method == "PATCH"
	framing := checkFraming(req)
	switch {
	case !framing.ok():
		// libwebsockets reads the body by its own reading of the
		// request (atoll, no Transfer-Encoding): close after the
		// answer, so that what it reads as the next request never is.
		r.limitHit(LimitBadRequest)
		return w.refuseNow(framing.status, framing.why)
	case c.stopping:
		return w.refuseNow(http.StatusServiceUnavailable, "")
	case lis.Accept&AcceptHTTP == 0:
		h.complete(w)
		w.respondError(http.StatusUpgradeRequired, false)
	case bodyMethod && req.ContentLength < 0:
		// Answered at HTTP_WRITEABLE, like a 413: libwebsockets goes
		// on reading what the client is sending meanwhile, so that a
		// close does not reset the connection under the answer.
		r.limitHit(LimitBadRequest)
		w.respondError(http.StatusLengthRequired, true)
	case req.ContentLength > lis.MaxBodySize:
		r.limitHit(LimitMaxBody)
		w.tooBig = true
		w.respondError(http.StatusRequestEntityTooLarge, true)
	case req.ContentLength > 0 || (req.Method == "POST" && req.ContentLength == 0):
		// The body follows (lws delivers an empty BODY and BODY_COMPLETION
		// for an explicit zero-length POST). libwebsockets only bounds
		// the wait for each chunk: bound the whole body.
		w.expectBody = true
		if lis.BodyTimeout > 0 {
			// Armed before the next service pass, if the body is not
			// in by then (armBodyTimers): most come in the same read
			// as their headers, and need no timer.
			c.bodyWait = append(c.bodyWait, r)
		}
	default:
		h.complete(w)
		h.serve(w)
	}
	return 0
}

// armBodyTimers arms the body timer of each request whose headers came
// since the last service pass began and whose body is not all in yet
// (service goroutine, before lws_service). The timer counts from now, the
// end of the pass that read those headers: not from the pass's start, which
// may be long before them (lws_service sleeps until something happens).
func (c *Context) armBodyTimers() {
	for i, r := range c.bodyWait {
		c.bodyWait[i] = nil
		h, _ := r.role.(*httpConn)
		if r.wsi == 0 || h == nil || h.txn == nil || r.timer != timerNone {
			continue
		}
		if w, d := h.txn, r.lis.cfg.BodyTimeout; w.expectBody && !w.served && !w.tooBig && d > 0 {
			r.setTimer(timerBody, d)
		}
	}
	c.bodyWait = c.bodyWait[:0]
}

// serve hands a complete request to the listener's HTTPHandler.
func (h *httpConn) serve(w *ResponseWriter) {
	c := h.r.ctx
	w.served = true
	handler := h.r.lis.cfg.HTTPHandler
	if handler == nil {
		w.respondError(http.StatusNotFound, false)
		return
	}
	func() {
		defer func() {
			if p := recover(); p != nil {
				c.log.Error("lws: HTTP handler panicked", "link", h.r.id, "path", w.req.Path, "panic", fmt.Sprint(p))
				w.mu.Lock()
				open := w.state == respOpen
				w.mu.Unlock()
				if open {
					w.respondError(http.StatusInternalServerError, true)
				}
			}
		}()
		handler.ServeHTTP(w, w.req)
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
		h.r.limitHit(LimitMaxBody)
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
		h.r.setTimer(timerNone, 0)
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
	h.serve(w)
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
	if hdrs, body, end, ok := w.oneWrite(closeAfter); ok {
		res := wsi.RespondHTTP(w.status, hdrs, body, int64(n), end)
		h.finish(w)
		if res != 0 || !end {
			return -1
		}
		return 0
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
	h.finish(w)
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

// oneWrite reports whether w's answer, ready and not begun, goes in one
// write (a body of at most oneWriteMax, or a HEAD's none), and what that
// write takes: the headers, with "connection: close" when the connection
// ends after the answer (closeAfter), the body, and whether the
// transaction ends with it (end), which it does not while a body the
// handler did not wait for is still coming. Service goroutine.
func (w *ResponseWriter) oneWrite(closeAfter bool) (hdrs, body []byte, end, ok bool) {
	n := len(w.body) - cgo.Pre
	head := w.req.Method == "HEAD"
	if w.hdrSent || !head && n > oneWriteMax {
		return nil, nil, false, false
	}
	hdrs = w.hdrs
	if closeAfter {
		hdrs = append(hdrs, "connection\x00close\x00"...)
	}
	if !head {
		body = w.body[cgo.Pre:]
	}
	return hdrs, body, !closeAfter && (!w.expectBody || w.served), true
}

// answerAlone delivers the HTTP_WRITEABLE callback that answer delivers
// when all it would do is write the whole answer in one write (oneWrite),
// to a client that did not have to wait for it (deferred): the answer goes
// with the call (cgo.WSI.ServiceRespond), the C layer writes it from the
// callback, and the callback does not cross into Go. It reports whether
// it made that call; the answer is written unless libwebsockets had its
// own to send first, in which case it still waits (h.txn is w). Not while
// the reason log is on (the caller's check), which has a line for each
// callback. Service goroutine, outside callbacks.
func (h *httpConn) answerAlone(w *ResponseWriter) bool {
	w.mu.Lock()
	ready := w.state == respReady
	closeAfter := w.close || w.pipelined
	w.mu.Unlock()
	if !ready || w.deferred {
		return false
	}
	hdrs, body, end, ok := w.oneWrite(closeAfter)
	if !ok {
		return false
	}
	r := h.r
	res := r.wsi.ServiceRespond(w.status, hdrs, body, int64(len(w.body)-cgo.Pre), end)
	if res == cgo.WriteNotCalled {
		return true
	}
	r.ctx.aloneAnswers++
	if r.trace != nil {
		r.trace.add(r.ctx.traceClock(), callbacks.HTTPWriteable, r.ctx.cfg.LinkTrace)
	}
	if h.txn == w {
		// Also when the connection closed with the answer (WSI_DESTROY
		// abandons it first).
		h.finish(w)
	}
	return true
}

// finish marks w written: the connection is free for the next request.
func (h *httpConn) finish(w *ResponseWriter) {
	w.mu.Lock()
	w.state = respDone
	w.body = nil
	w.mu.Unlock()
	h.txn = nil
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
