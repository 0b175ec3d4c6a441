package lws

import (
	"syscall"

	"github.com/lwsgate/lwsgate/cgo"
)

// The hand-off queue: how other goroutines give the service goroutine
// work (post: a function; schedule: a link that has something to write)
// and wake it with lws_cancel_service, the one libwebsockets call that is
// safe from any thread; and how the service goroutine takes that work
// (drain) and writes the HTTP answers of connections that do not read
// (answer).

// post queues f for the service goroutine. It reports false when the
// Context is already stopped.
func (c *Context) post(f func()) bool {
	select {
	case <-c.done:
		return false
	default:
	}
	c.qmu.Lock()
	c.cmds = append(c.cmds, f)
	c.npend.Add(1)
	c.qmu.Unlock()
	c.kick(true)
	return true
}

// schedule asks for a WRITEABLE callback on r from any goroutine.
func (c *Context) schedule(r *rec) {
	if r.queued.Swap(true) {
		return
	}
	c.qmu.Lock()
	c.pending = append(c.pending, r)
	c.npend.Add(1)
	c.qmu.Unlock()
	c.kick(false)
}

// drainInCallbacks: on libwebsockets 4.1 the WRITEABLE requests queued
// during a callback are made at its end, inside lws_service, saving a
// wake-up per burst of sends; on 4.3 all queued work runs between
// lws_service calls.
//
// Posted functions (connects, aborts, timers, Do) never run inside a
// callback, on any version: once a callback returns, libwebsockets goes on
// using its wsi, so work that ends a wsi must not run at that point. A dial
// aborted there (its context canceled) killed the wsi of the callback that
// was ending, synchronously: libwebsockets then used the freed wsi
// (4.1.6 lib/roles/http/client/client-http.c:1215-1225, after
// CLIENT_APPEND_HANDSHAKE_HEADER), which crashed lwsgate's relay when a
// client's bad frame failed its link while the upstream link was being
// dialled.
const drainInCallbacks = cgo.HeaderVersionNumber < 4003000

// kick wakes the service goroutine unless it will look at the queue anyway:
// a WRITEABLE request made inside a callback is made when it returns
// (drainInCallbacks), or, on 4.3, by the service goroutine itself before
// it polls again (loop) when the request comes from its own callback; and
// when a wake-up is already in flight one is enough. A posted function
// (cmd) always needs the loop.
func (c *Context) kick(cmd bool) {
	if !cmd && c.inCb.Load() && (drainInCallbacks || c.onServiceThread()) {
		return
	}
	if c.armed.CompareAndSwap(false, true) {
		c.wake()
	}
}

// onServiceThread reports whether the caller runs on the service
// goroutine (a gettid(2), as in Conn.lent).
func (c *Context) onServiceThread() bool {
	return int32(syscall.Gettid()) == c.tid.Load()
}

func (c *Context) wake() {
	if lc := c.lcForWake(); lc != nil {
		lc.Wake()
	}
}

// lcForWake returns the cgo context once it exists. cgo.Context.Wake is
// itself safe after Destroy.
func (c *Context) lcForWake() *cgo.Context {
	return c.lcPtr.Load()
}

// drain runs queued work on the service goroutine: with all, between
// lws_service calls, everything; without, at the end of a callback, only
// the WRITEABLE requests (see drainInCallbacks).
func (c *Context) drain(all bool) {
	if c.draining {
		return
	}
	c.draining = true
	if all {
		c.armed.Store(false)
	}
	for {
		c.qmu.Lock()
		n := len(c.pending)
		if all {
			n += len(c.cmds)
		}
		if n == 0 {
			c.qmu.Unlock()
			break
		}
		recs := c.pending
		c.pending = c.spare[:0]
		var cmds []func()
		if all {
			cmds = c.cmds
			c.cmds = c.spareCmd[:0]
		}
		c.npend.Add(-int32(n))
		c.qmu.Unlock()
		for i, r := range recs {
			r.queued.Store(false)
			if r.wsi != 0 {
				c.wantWritable(r)
			}
			recs[i] = nil
		}
		for i, f := range cmds {
			f()
			cmds[i] = nil
		}
		c.spare = recs[:0]
		if all {
			c.spareCmd = cmds[:0]
		}
	}
	c.draining = false
}

// wantWritable asks for the WRITEABLE callback a link scheduled: bounding
// its closing handshake first when Close asked for that, listing a
// WebSocket link for writeNow (which asks libwebsockets for POLLOUT only
// if it could not deliver the callback), and leaving an answer on a
// connection that does not read (httpConn) to answer.
func (c *Context) wantWritable(r *rec) {
	switch ro := r.role.(type) {
	case wsServer:
		ro.boundClose()
		if c.writeSoon(r) {
			return
		}
	case wsClient:
		ro.boundClose()
		if c.writeSoon(r) {
			return
		}
	case *httpConn:
		if ro.txn != nil && ro.txn.paused {
			// Written by answer, outside callbacks.
			c.answers = append(c.answers, r)
			return
		}
	}
	r.wsi.CallbackOnWritable()
}

// writeSoon lists a WebSocket link for writeNow, which delivers its
// WRITEABLE callback after this lws_service pass, and reports whether it
// did: not while writeNow delivers, so that a link that asks again from
// its WRITEABLE callback (its socket took only part) waits for poll(2) to
// say the socket takes more.
func (c *Context) writeSoon(r *rec) bool {
	if c.inWrite {
		return false
	}
	if !r.outNow {
		r.outNow = true
		c.outNow = append(c.outNow, r)
	}
	return true
}

// writeNow delivers the WRITEABLE callbacks of the WebSocket links listed
// during the last lws_service pass and the drain after it, as poll(2)
// would report their sockets writable (WSI.ServiceWritable), instead of
// one more lws_service pass for them: the WRITEABLE requests made while a
// pass handles what the sockets brought (a RECEIVE's echo) would
// otherwise cost a second poll of every open descriptor, which returns at
// once with just those sockets writable. A socket that takes less than a
// write gives, lws keeps the rest and sends it first, as after a real
// poll (see cgo.WriteWS). A listed link has not asked libwebsockets for
// POLLOUT (lws_callback_on_writable: its bookkeeping and the event loop's
// watcher, on and off again, for every message): writeNow asks only for a
// link whose WRITEABLE libwebsockets did not deliver, because it had its
// own to send first (bytes a socket did not take, a pong, a close). A
// link that lws already called back is skipped (its WRITEABLE clears
// outNow). Outside callbacks only.
func (c *Context) writeNow() {
	rs := c.outNow
	c.outNow = c.spareOut[:0]
	c.inWrite = true
	for i, r := range rs {
		rs[i] = nil
		if !r.outNow || r.wsi == 0 {
			r.outNow = false
			continue
		}
		if ws, ok := r.role.(wsServer); ok && c.cfg.Trace == nil && ws.writeAlone() {
			continue
		}
		r.wsi.ServiceWritable() // may close the link
		if r.outNow && r.wsi != 0 {
			// Not called back: wait for the socket.
			r.outNow = false
			r.wsi.CallbackOnWritable()
		}
	}
	c.inWrite = false
	c.spareOut = rs[:0]
	c.flushTrace()
}

// midPass delivers, in the middle of a service pass that brings messages
// on many links, the WRITEABLE callbacks asked for so far (writeNow), so
// that the echoes of a thousand links do not all wait for the last of them
// to be read (see cgo/evloop.c). On 4.3 the requests of this pass'
// callbacks are still queued: they are taken first (drain, WRITEABLE
// requests only; posted functions wait for the end of the pass, as ever).
func (c *Context) midPass() {
	if c.depth != 0 || c.inWrite {
		return // only between callbacks, and not while writeNow runs
	}
	if c.npend.Load() > 0 {
		c.drain(false)
	}
	if len(c.outNow) > 0 {
		c.midWrites += uint64(len(c.outNow))
		c.writeNow()
	}
}

// answer writes the HTTP answers drain found ready on connections whose rx
// is paused (httpConn): rx resumes and HTTP_WRITEABLE is delivered at once,
// before lws_service polls the socket again and reads what the client sent
// meanwhile. An answer the socket does not take at once is paused again,
// to be written on from here once lws_service returns, which it does when
// the socket takes more (or anything else happens): libwebsockets 4.3
// would close the connection in the middle of the answer if it read the
// next request meanwhile. Outside callbacks only.
func (c *Context) answer() {
	rs := c.answers
	c.answers = c.spareAns[:0]
	for i, r := range rs {
		rs[i] = nil
		h, _ := r.role.(*httpConn)
		if r.wsi == 0 || h == nil || h.txn == nil || !h.txn.paused {
			continue
		}
		w := h.txn
		w.paused = false
		if r.wsi.ResumeHTTP(!w.hdrSent) {
			// lws holds input: maybe bytes it read past the request
			// (httpConn), maybe another connection's.
			w.pipelined = true
		}
		if r.wsi == 0 { // ResumeHTTP may run lws timers
			continue
		}
		if c.cfg.Trace != nil || !h.answerAlone(w) {
			r.wsi.ServiceWritable() // may close the connection
		}
		switch {
		case r.wsi == 0 || r.role != role(h):
			// Closed with the answer.
		case h.txn == w:
			// Not all out: the rest waits for the socket.
			w.paused = true
			r.wsi.RxFlow(false)
			r.wsi.CallbackOnWritable()
			c.answers = append(c.answers, r)
		case h.txn == nil:
			// Out, and the transaction ended on a connection that
			// stays open (lws_http_transaction_completed): lws reads
			// nothing more on it until POLLOUT "verifies" that it is
			// writable, and asks for POLLOUT
			// (lib/roles/http/server/server.c, LRS_DEFERRING_ACTION,
			// 4.1.6 and 4.3.5). It has just taken the answer: POLLOUT
			// now, as poll would report it. The event loop then sees
			// the request and its end in one pass and makes no
			// system call for them, where it made two epoll_ctl and
			// one more pass a request.
			r.wsi.ServiceWritable()
		}
	}
	c.spareAns = rs[:0]
	c.flushTrace()
}
