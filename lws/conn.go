package lws

import (
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"unicode/utf8"

	"github.com/lwsgate/lwsgate/callbacks"
	"github.com/lwsgate/lwsgate/cgo"
)

// Conn is one WebSocket link.
//
// Concurrency: Send, Ping, Close, Link, Request, Queued, SetValue and Value
// are safe from any goroutine. The Handler's methods receive the Conn on the service
// goroutine.
//
// Memory: an idle link is its Conn and its rec (256 and 288 bytes), the
// upgrade request's raw bytes, its address and its handle: about 0.8 KB
// of Go heap, besides what libwebsockets holds for it in C (see
// serviceBufferSize). Nothing is kept per link that it does not need:
// queues, buffers and the parsed request are made when used.
type Conn struct {
	r *rec // r.link is the Link: set before the Conn, never changed after
	o *linkOpts

	// req is the parsed upgrade request while OnOpen runs, or once
	// Request was called after it; raw is what it is parsed from, kept
	// for the link's life ("" for a link this side dialled).
	req atomic.Pointer[Request]
	raw string

	mu          sync.Mutex
	txq         []*frame // queued by Send, not yet taken by the writer
	pingq       []*frame // queued by Ping
	queued      int64    // bytes in txq and wq
	closeCode   StatusCode
	closeReason string
	closed      *CloseError // set when the link is closed or closing
	val         any         // SetValue
	closeReq    bool
	fullSeen    bool // send_queue reported since the last Send that fit

	// Service goroutine only.
	notified bool // OnClose was called
	client   bool // this side dialled the link: its frames are masked
	deflate  bool // permessage-deflate is on: one write per WRITEABLE
	failRx   bool // receive refused a message: close at WRITEABLE
	// failing: the link is being failed (RFC 6455 section 7.1.7), not
	// closed: TCP closes once the close frame is out (onWritable).
	failing bool

	// closeTimeout asks the service goroutine to bound the close: a peer
	// that never reads would otherwise hold a closing link forever.
	closeTimeout atomic.Bool

	// Service goroutine only.
	wq     []*frame // being written, in order, before txq
	rx     []byte
	rxType MessageType
	rxUTF8 int // bytes of a text message in rx checked as UTF-8
	peer   *CloseError
	held   cgo.HeldFrame // the payload of the last write, when deflate
}

// linkOpts are the settings of a link: its listener's, or its Dial's.
type linkOpts struct {
	handler      Handler
	maxMessage   int64 // < 0: no limit
	maxQueue     int64
	slowConsumer SlowConsumerPolicy
}

func newConn(r *rec, o *linkOpts, client bool) *Conn {
	c := &Conn{r: r, o: o, client: client, deflate: r.link.Compression}
	if r.req != nil {
		c.req.Store(r.req)
		c.raw = r.req.raw
	}
	if c.deflate && o.maxMessage >= 0 {
		r.wsi.SetCompressedLimit(maxCompressed(o.maxMessage))
	}
	return c
}

// maxCompressed bounds the compressed bytes of one message on a link with
// permessage-deflate whose inflated size may reach maxMessage: deflate
// adds a few bytes per block to data it cannot compress, a sender that
// flushes at each fragment 5 bytes per fragment, and only a stream of
// empty blocks, which inflates to nothing, goes much further.
func maxCompressed(maxMessage int64) int64 {
	return maxMessage + maxMessage/8 + 4<<10
}

// Link describes the link.
func (c *Conn) Link() Link { return c.r.link }

// Context returns the Context the link belongs to, for example to dial a
// backend link from a handler.
func (c *Conn) Context() *Context { return c.r.ctx }

// ID returns Link().ID.
func (c *Conn) ID() uint64 { return c.r.link.ID }

// RemoteAddr returns Link().Remote.
func (c *Conn) RemoteAddr() net.Addr { return c.r.link.Remote }

// Request returns the HTTP upgrade request (method, path, query, headers)
// the link was opened with, or nil for a link this side dialled. It must
// not be modified. Safe from any goroutine.
//
// The link keeps the request's raw bytes, not the parsed Request, which is
// several times larger: the Request OnOpen sees is let go when OnOpen
// returns, and a call after that parses the bytes again once (the link
// then keeps that Request). So a handler that needs the request later
// should keep what it needs from it in OnOpen; calls before and after
// OnOpen return equal Requests, not the same pointer.
func (c *Conn) Request() *Request {
	if req := c.req.Load(); req != nil || c.raw == "" {
		return req
	}
	l := &c.r.link
	req, err := parseRequest(c.raw, l.Remote, l.ID, l.Listener)
	if err != nil {
		return nil // cannot happen: the same bytes parsed at the upgrade
	}
	checkFraming(req) // sets ContentLength, as it did at the upgrade
	if !c.req.CompareAndSwap(nil, req) {
		return c.req.Load()
	}
	return req
}

// SetValue attaches an application value to the link (for example its
// session). Safe from any goroutine.
func (c *Conn) SetValue(v any) {
	c.mu.Lock()
	c.val = v
	c.mu.Unlock()
}

// Value returns what SetValue attached, or nil.
func (c *Conn) Value() any {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.val
}

// Queued returns the bytes sent but not yet handed to the socket.
func (c *Conn) Queued() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.queued
}

// Send queues one message. It copies data, so the caller may reuse it at
// once, and returns without waiting for the write. Send is safe from any
// goroutine; messages from one goroutine go out in the order sent.
//
// It returns ErrSendQueueFull when the link's queue would exceed
// Listener.MaxSendQueue (see SlowConsumerPolicy), and an error matching
// ErrClosed (and carrying the *CloseError) once the link is closing.
func (c *Conn) Send(typ MessageType, data []byte) error {
	if typ != TextMessage && typ != BinaryMessage {
		return fmt.Errorf("lws: Send: invalid message type %d", typ)
	}
	o := c.o
	f := newFrame(len(data))
	copy(f.buf[cgo.Pre:], data)
	f.typ = typ
	c.mu.Lock()
	if c.closed != nil || c.closeReq {
		err := c.closedErr()
		c.mu.Unlock()
		f.release()
		return err
	}
	if c.queued+int64(len(data)) > o.maxQueue {
		if o.slowConsumer == CloseSlowConsumer {
			c.closeReq, c.closeCode, c.closeReason = true, StatusPolicyViolation, "send queue full"
		}
		report := !c.fullSeen
		c.fullSeen = true
		c.mu.Unlock()
		f.release()
		if report {
			// Once per full queue, not per refused Send: a sender
			// that keeps trying must not flood the service queue.
			r := c.r
			r.ctx.post(func() { r.ctx.limitHitOn(r.lis, r.id, LimitSendQueue) })
		}
		if o.slowConsumer == CloseSlowConsumer {
			// Bound the close as Close does: a reader that is stuck
			// will never take the queue, nor the close frame after it.
			c.closeTimeout.Store(true)
			c.r.ctx.schedule(c.r)
		}
		return ErrSendQueueFull
	}
	c.txq = append(c.txq, f)
	c.queued += int64(len(data))
	c.fullSeen = false
	c.mu.Unlock()
	c.r.ctx.schedule(c.r)
	return nil
}

// Ping queues a ping with payload data (at most 125 bytes), written ahead of
// queued messages. The peer's pong reaches the Handler's OnPong if it
// implements PongHandler. Safe from any goroutine.
func (c *Conn) Ping(data []byte) error {
	if len(data) > 125 {
		return fmt.Errorf("lws: Ping: payload of %d bytes (at most 125)", len(data))
	}
	f := newFrame(len(data))
	copy(f.buf[cgo.Pre:], data)
	c.mu.Lock()
	if c.closed != nil || c.closeReq {
		err := c.closedErr()
		c.mu.Unlock()
		f.release()
		return err
	}
	c.pingq = append(c.pingq, f)
	c.mu.Unlock()
	c.r.ctx.schedule(c.r)
	return nil
}

// SendText sends a text message.
func (c *Conn) SendText(s string) error {
	return c.Send(TextMessage, []byte(s))
}

// Close starts the closing handshake with code and reason once everything
// already queued is written. It is safe from any goroutine and returns
// ErrClosed if the link is already closing. The reason is cut to 123 bytes.
func (c *Conn) Close(code StatusCode, reason string) error {
	if !code.Sendable() {
		return fmt.Errorf("%w: %d", ErrInvalidCloseCode, int(code))
	}
	c.mu.Lock()
	if c.closed != nil || c.closeReq {
		err := c.closedErr()
		c.mu.Unlock()
		return err
	}
	c.closeReq, c.closeCode, c.closeReason = true, code, truncateUTF8(reason, 123)
	c.mu.Unlock()
	c.closeTimeout.Store(true)
	c.r.ctx.schedule(c.r)
	return nil
}

// boundClose bounds the closing handshake Close asked for (see
// closeTimeout): the service goroutine does it when it takes the link
// from the queue (drain).
func (c *Conn) boundClose() {
	if c.closeTimeout.Swap(false) {
		c.r.wsi.SetTimeout(c.r.ctx.closeTimeoutSecs())
	}
}

// requestClose is Close ignoring a link that is already closing.
func (c *Conn) requestClose(code StatusCode, reason string) { _ = c.Close(code, reason) }

// closedErr describes why Send and Close fail; c.mu is held.
func (c *Conn) closedErr() error {
	if c.closed != nil {
		return fmt.Errorf("%w: %w", ErrClosed, c.closed)
	}
	return fmt.Errorf("%w: closing", ErrClosed)
}

func truncateUTF8(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

func (c *Conn) handler() Handler {
	if h := c.o.handler; h != nil {
		return h
	}
	return HandlerFuncs{}
}

// onReceive assembles messages from RECEIVE chunks (service goroutine).
func (c *Conn) onReceive(ev *callbacks.Event) int {
	if ev.Len > 0 && c.o.maxMessage >= 0 && int64(ev.Len) > maxCompressed(c.o.maxMessage) {
		c.r.limitHit(LimitMaxCompressed)
		return c.closeNow(StatusMessageTooBig, "message too big")
	}
	if ev.Flags&callbacks.FirstFragment != 0 {
		c.rx = c.rx[:0]
		c.rxUTF8 = 0
		c.rxType = TextMessage
		if ev.Flags&callbacks.Binary != 0 {
			c.rxType = BinaryMessage
		}
	}
	if max := c.o.maxMessage; max >= 0 && int64(len(c.rx)+len(ev.Data)) > max {
		c.r.limitHit(LimitMaxMessage)
		return c.closeNow(StatusMessageTooBig, "message too big")
	}
	if need := len(c.rx) + len(ev.Data); need > cap(c.rx) {
		c.rx = growRx(c.rx, need)
	}
	c.rx = append(c.rx, ev.Data...)
	if c.rxType == TextMessage && !c.r.ctx.cfg.DisableUTF8Validation {
		// Checked as it arrives, so that an invalid message fails at
		// its first bad chunk (the binding, not libwebsockets, checks
		// UTF-8: see Context.run).
		n, bad := utf8Prefix(c.rx[c.rxUTF8:])
		c.rxUTF8 += n
		if bad || ev.Flags.Complete() && c.rxUTF8 != len(c.rx) {
			c.r.limitHit(LimitBadUTF8)
			return c.closeNow(StatusInvalidPayloadData, "invalid UTF-8")
		}
	}
	if !ev.Flags.Complete() {
		return 0
	}
	msg := c.rx
	c.callMessage(msg)
	if cap(c.rx) > rxKeep {
		// Don't pin one big message's buffer to the link: hand it
		// to the next big message of any link.
		putRx(c.rx)
		c.rx = nil
	} else {
		c.rx = c.rx[:0]
	}
	return 0
}

// receive is RECEIVE and CLIENT_RECEIVE: onReceive, except that a link it
// refuses is closed at the WRITEABLE callback asked for here, with the
// code closeNow recorded, and never by returning -1, which libwebsockets
// (4.1.6 to its main branch) mishandles:
//
//   - its client parser (client-parser-ws.c) returns from a CLIENT_RECEIVE
//     that asks to close without emptying its frame buffer, and writes what
//     more of a long frame arrives during the closing handshake past the
//     end of that buffer: a heap overflow (a 1 MiB frame against
//     MaxMessageSize 64 KiB crashed the process);
//   - with permessage-deflate, its server parser (ops-ws.c lws_ws_rx_sm)
//     goes on inflating the rest of the chunk it read, one RECEIVE per
//     piece, and keeps only the last callback's result, so the -1 is lost
//     unless every later piece returns -1 too; and once its close has
//     begun, a RECEIVE that returns -1 again (frames read before the close
//     frame went out) makes it kill the link without sending that frame.
//
// What arrives until the WRITEABLE callback is dropped.
func (c *Conn) receive(ev *callbacks.Event) int {
	if c.failRx {
		return 0
	}
	if c.onReceive(ev) < 0 {
		c.failRx, c.failing = true, true
		c.r.wsi.CallbackOnWritable()
	}
	return 0
}

// closeNow closes from inside this link's callback: lws sends the close
// frame when the callback returns -1.
func (c *Conn) closeNow(code StatusCode, reason string) int {
	c.r.wsi.CloseReason(int(code), reason)
	c.mu.Lock()
	if c.closed == nil {
		c.closed = &CloseError{Code: code, Reason: reason, Local: true}
	}
	c.mu.Unlock()
	return -1
}

// onWritable writes queued frames until the pipe chokes (service goroutine).
func (c *Conn) onWritable() int {
	if c.failRx {
		// The first time, libwebsockets starts the close (failing is
		// set with failRx): set the reason again, as a ping's payload
		// may have taken the buffer libwebsockets keeps it in.
		c.mu.Lock()
		ce := *c.closed
		c.mu.Unlock()
		c.r.wsi.CloseReason(int(ce.Code), ce.Reason)
		return -1
	}
	c.mu.Lock()
	if c.closed != nil {
		c.mu.Unlock()
		// libwebsockets is closing the link: it lets a WRITEABLE
		// through only once its close frame is out (the frame goes
		// first in rops_handle_POLLOUT_ws, 4.1.6 and 4.3.5).
		if c.failing {
			// A failed link ends now. Left to libwebsockets it would
			// wait 5 s for the peer's answer, which it does not
			// even see after some protocol errors (its frame parser
			// stops mid-frame and takes the answer for payload), or
			// for a second close from a peer that already sent its
			// own (a close frame refused by onPeerClose).
			return -1
		}
		// A close this side asked for: returning -1 would drop TCP
		// before the peer's close reply.
		return 0
	}
	if len(c.txq) > 0 {
		c.wq = append(c.wq, c.txq...)
		clear(c.txq)
		c.txq = c.txq[:0]
	}
	pings := c.pingq
	c.pingq = nil
	c.mu.Unlock()

	for _, f := range pings {
		// Control frames may go between the fragments of a message.
		res := c.r.wsi.Ping(f.buf)
		f.release()
		if res == cgo.WriteFailed {
			return -1
		}
	}

	var written int64
	var gate chokeGate
	done := 0
	choked := false
	wrote := false
	batch := !c.deflate && !c.client
	for done < len(c.wq) && !choked {
		if batch {
			if k, size := batchRun(c.wq[done:]); k >= 2 {
				b := c.r.ctx.wbatch[:0]
				if cap(b) < size {
					b = make([]byte, 0, max(size, 4<<10))
				}
				for _, f := range c.wq[done : done+k] {
					b = appendFrame(b, f)
				}
				c.r.ctx.wbatch = b[:0]
				c.r.ctx.batches.Add(1)
				res := c.r.wsi.WriteWSRaw(b, gate.ask(len(b), done+k < len(c.wq)))
				if res == cgo.WriteFailed {
					return -1
				}
				for _, f := range c.wq[done : done+k] {
					written += int64(f.payloadLen())
					f.release()
				}
				clear(c.wq[done : done+k])
				done += k
				choked = res == cgo.WriteChoked
				continue
			}
		}
		f := c.wq[done]
		n := f.payloadLen()
		for f.off < n || n == 0 {
			chunk := min(n-f.off, txPacketSize)
			last := f.off+chunk == n
			var res cgo.WriteResult
			if c.deflate && n == 0 {
				// Around libwebsockets' deflate, which aborts the
				// process on an empty message (see emptyFrame).
				res = c.r.wsi.WriteWSRaw(emptyFrame(f.typ, c.client), false)
			} else if c.deflate {
				// libwebsockets compresses what zlib cannot take
				// at once over WRITEABLE rounds of its own, and
				// calls back here only when it has all of it.
				res = c.r.wsi.WriteWSHeld(&c.held, f.buf[cgo.Pre+f.off:cgo.Pre+f.off+chunk], f.typ == BinaryMessage, f.off == 0, last, false)
				wrote, choked = true, true
			} else {
				more := !last || done+1 < len(c.wq)
				res = c.r.wsi.WriteWS(f.buf, cgo.Pre+f.off, chunk, f.typ == BinaryMessage, f.off == 0, last, gate.ask(chunk, more))
			}
			if res == cgo.WriteFailed {
				return -1
			}
			f.off += chunk
			if res == cgo.WriteChoked {
				choked = true
			}
			if f.off == n || choked {
				break
			}
			// n > 0 here: a zero-length message is one write.
		}
		if f.off == n {
			written += int64(n)
			f.release()
			c.wq[done] = nil
			done++
		}
	}
	c.wq = c.wq[:copy(c.wq, c.wq[done:])]

	if c.deflate && !wrote {
		// Nothing written this round, so libwebsockets has compressed
		// all of the last payload: its copy can go.
		c.held.Free()
	}

	c.mu.Lock()
	c.queued -= written
	// After a compressed write, one more round: it frees the copy, and a
	// close waits until libwebsockets has sent all of the message.
	more := len(c.wq) > 0 || len(c.txq) > 0 || wrote
	closing := c.closeReq && !more
	code, reason := c.closeCode, c.closeReason
	c.mu.Unlock()
	if more {
		c.r.wsi.CallbackOnWritable()
		return 0
	}
	if closing {
		return c.closeNow(code, reason)
	}
	return 0
}

// onPeerClose is WS_PEER_INITIATED_CLOSE: it records the peer's close
// frame payload (2-byte code, reason) and returns what the callback
// returns. libwebsockets echoes the payload when the callback returns 0,
// whatever it holds (a 1-byte payload, a code that may not be sent, a
// reason that is not UTF-8); such a close is answered with 1002 or 1007
// instead. libwebsockets has already replaced the codes it considers
// invalid (below 1000, 1004-1006, 1012-1015, 1016-2999) with 1002, so
// those arrive here as 1002: a 1002 is answered with a plain 1002 rather
// than echoed with the peer's reason.
//
// A close answered with a code of its own fails the link: the peer's close
// frame has come, so once the answer is out TCP closes (onWritable).
func (c *Conn) onPeerClose(p []byte) int {
	if code, ok := checkClosePayload(p, !c.r.ctx.cfg.DisableUTF8Validation); !ok {
		c.r.limitHit(LimitBadClose)
		c.failing = true
		return c.closeNow(code, "invalid close frame")
	}
	ce := &CloseError{Code: StatusNoStatusRcvd}
	if len(p) >= 2 {
		ce.Code = StatusCode(int(p[0])<<8 | int(p[1]))
		ce.Reason = string(p[2:])
	}
	c.peer = ce
	if ce.Code == StatusProtocolError {
		c.r.wsi.CloseReason(int(StatusProtocolError), "")
		c.failing = true
		return -1
	}
	return 0
}

// markClosed is CLOSED and DROP_PROTOCOL: from now on Send fails. A
// DROP_PROTOCOL before anything closed the link means libwebsockets itself
// is failing it (a protocol error in a frame: it sends its own close
// 1002).
func (c *Conn) markClosed() {
	c.mu.Lock()
	if c.closed == nil {
		c.closed = c.endState()
		c.failing = c.failing || c.peer == nil
	}
	c.mu.Unlock()
}

// endState says how the link ended; c.mu is held.
func (c *Conn) endState() *CloseError {
	if c.peer != nil {
		return c.peer
	}
	if c.closed != nil {
		return c.closed
	}
	if c.closeReq {
		// A close was asked for but its frame never went out (the
		// close timed out behind a peer that does not read): report
		// why the link was closed rather than 1006.
		return &CloseError{Code: c.closeCode, Reason: c.closeReason, Local: true}
	}
	return &CloseError{Code: StatusAbnormalClosure}
}

// finish is WSI_DESTROY: release queued frames, tell the handler once.
func (c *Conn) finish() CloseError {
	c.mu.Lock()
	ce := c.endState()
	c.closed = ce
	for _, f := range c.txq {
		f.release()
	}
	for _, f := range c.pingq {
		f.release()
	}
	c.txq, c.pingq = nil, nil
	c.queued = 0
	c.mu.Unlock()
	for _, f := range c.wq {
		f.release()
	}
	c.wq = nil
	c.held.Free()
	c.rx = nil
	c.callClose(*ce)
	return *ce
}

func (c *Conn) callOpen() {
	defer c.recoverHandler("OnOpen")
	c.handler().OnOpen(c)
}

func (c *Conn) callMessage(msg []byte) {
	defer c.recoverHandler("OnMessage")
	c.handler().OnMessage(c, c.rxType, msg)
}

func (c *Conn) callPong(data []byte) {
	if h, ok := c.handler().(PongHandler); ok {
		defer c.recoverHandler("OnPong")
		h.OnPong(c, data)
	}
}

func (c *Conn) callClose(ce CloseError) {
	if c.notified {
		return
	}
	c.notified = true
	defer c.recoverHandler("OnClose")
	c.handler().OnClose(c, ce)
}

// recoverHandler turns a handler panic into closing this link with 1011.
func (c *Conn) recoverHandler(method string) {
	p := recover()
	if p == nil {
		return
	}
	c.r.ctx.log.Error("lws: handler panicked; closing its link", "method", method, "link", c.r.link.ID, "panic", fmt.Sprint(p))
	c.mu.Lock()
	if c.closed == nil && !c.closeReq {
		c.closeReq, c.closeCode, c.closeReason = true, StatusInternalError, "internal error"
		for i, f := range c.txq {
			c.queued -= int64(f.payloadLen())
			f.release()
			c.txq[i] = nil
		}
		c.txq = c.txq[:0]
	}
	c.mu.Unlock()
	if c.r.wsi != 0 && method != "OnClose" {
		c.r.wsi.CallbackOnWritable()
	}
}
