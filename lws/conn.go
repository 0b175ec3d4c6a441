package lws

import (
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"unicode/utf8"

	"github.com/lwsgate/lwsgate/cgo"
)

// Conn is one WebSocket link.
//
// Concurrency: Send, Ping, Close, Link, Request, Queued, SetValue and Value
// are safe from any goroutine. The Handler's methods receive the Conn on the service
// goroutine.
//
// Memory: an idle link is its Conn and its rec (256 bytes each, which
// TestLinkStateSize holds them to), the upgrade request's raw bytes, its
// address and its handle: about 0.8 KB
// of Go heap, besides what libwebsockets holds for it in C (see
// serviceBufferSize). Nothing is kept per link that it does not need:
// queues, buffers and the parsed request are made when used.
type Conn struct {
	r *rec // r.link is the Link: set before the Conn, never changed after
	// o is the link's settings: its Dial's, or its listener's, which
	// SetListenerLimits replaces (on the service goroutine) while the
	// link is open.
	o atomic.Pointer[linkOpts]

	// req is the parsed upgrade request while OnOpen runs, or once
	// Request was called after it; raw is what it is parsed from, kept
	// for the link's life ("" for a link this side dialled).
	req atomic.Pointer[Request]
	raw string
	// val is what SetValue attached (nil: nothing): read at every
	// message by a handler that keeps its state there, without a lock.
	val atomic.Pointer[any]

	mu          sync.Mutex
	txq         []*frame // queued by Send, not yet taken by the writer
	pingq       []*frame // queued by Ping
	queued      int64    // bytes in txq and wq
	closeCode   StatusCode
	closeReason string
	closed      *CloseError // set when the link is closed or closing
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
	rxf    *frame   // the message being assembled, after cgo.Pre of headroom (conn_rx.go)
	lendN  int      // while OnMessage runs with a lent message: its length (lend)
	rxType MessageType
	rxUTF8 int // bytes of a text message in rx checked as UTF-8
	peer   *CloseError
	held   cgo.HeldFrame // the payload of the last write, when deflate
}

// linkOpts are the settings of a link: its listener's, or its Dial's. They
// do not change: new limits are new linkOpts (SetListenerLimits).
type linkOpts struct {
	handler      Handler
	maxMessage   int64 // < 0: no limit
	maxQueue     int64
	slowConsumer SlowConsumerPolicy
}

func newConn(r *rec, o *linkOpts, client bool) *Conn {
	c := &Conn{r: r, client: client, deflate: r.link.Compression}
	c.o.Store(o)
	if u := r.up; u != nil {
		c.req.Store(&u.Request)
		c.raw = u.raw
		if u.val != nil {
			v := u.val // Request.SetValue, from CheckUpgrade
			c.val.Store(&v)
		}
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
// backend link for it (from a goroutine of its own: Dial waits for the
// service goroutine, which runs the handlers).
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
// OnOpen return equal Requests, not the same pointer (and only the first
// carries the value CheckUpgrade set on it: Conn.Value keeps that).
func (c *Conn) Request() *Request {
	if req := c.req.Load(); req != nil || c.raw == "" {
		return req
	}
	l := &c.r.link
	req := new(Request)
	if err := parseRequest(req, c.raw, l.Remote, l.ID, l.Listener); err != nil {
		return nil // cannot happen: the same bytes parsed at the upgrade
	}
	checkFraming(req) // sets ContentLength, as it did at the upgrade
	if !c.req.CompareAndSwap(nil, req) {
		return c.req.Load()
	}
	return req
}

// SetValue attaches an application value to the link (for example its
// session), in place of the one it had: the value Listener.CheckUpgrade
// set on the upgrade request (Request.SetValue), or nil. Safe from any
// goroutine.
func (c *Conn) SetValue(v any) { c.val.Store(&v) }

// Value returns what SetValue attached, or nil. Safe from any goroutine.
func (c *Conn) Value() any {
	if p := c.val.Load(); p != nil {
		return *p
	}
	return nil
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
// One exception to the copy: an OnMessage that sends the message it was
// given back on its own link (an echo) of more than 16 KiB hands over the
// buffer the message was assembled in instead, which is then queued as it
// is. The handler must not change data after such a Send.
//
// It returns ErrSendQueueFull when the link's queue would exceed
// Listener.MaxSendQueue (see SlowConsumerPolicy), and an error matching
// ErrClosed (and carrying the *CloseError) once the link is closing.
func (c *Conn) Send(typ MessageType, data []byte) error {
	if typ != TextMessage && typ != BinaryMessage {
		return fmt.Errorf("lws: Send: invalid message type %d", typ)
	}
	o := c.o.Load()
	f := c.lent(data)
	lent := f != nil
	if !lent {
		f = newFrame(len(data))
		copy(f.buf[cgo.Pre:], data)
	}
	f.typ = typ
	drop := func() {
		if lent {
			c.rxf, c.lendN = f, len(data) // still OnMessage's
		} else {
			f.release()
		}
	}
	c.mu.Lock()
	if c.closed != nil || c.closeReq {
		err := c.closedErr()
		c.mu.Unlock()
		drop()
		return err
	}
	if c.queued+int64(len(data)) > o.maxQueue {
		if o.slowConsumer == CloseSlowConsumer {
			c.closeReq, c.closeCode, c.closeReason = true, StatusPolicyViolation, "send queue full"
		}
		report := !c.fullSeen
		c.fullSeen = true
		c.mu.Unlock()
		drop()
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
// implements PongHandler, unless its payload is the one of the binding's
// keepalive pings on server links ("lwsgate-keepalive", keepalive.go).
// Safe from any goroutine.
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
// ErrClosed if the link is already closing. The reason is cut to
// MaxCloseReason bytes.
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
	c.closeReq, c.closeCode, c.closeReason = true, code, truncateUTF8(reason, MaxCloseReason)
	c.mu.Unlock()
	c.closeTimeout.Store(true)
	c.r.ctx.schedule(c.r)
	return nil
}

// boundClose bounds the closing handshake Close asked for (see
// closeTimeout): the service goroutine does it when it takes the link
// from the queue (drain). Not once the link is closing in libwebsockets
// (closed is set when the close frame goes out, or the peer's came in):
// lws then waits 5 s for the answer itself, a wait the link's one timeout
// would replace. A WRITEABLE asked for before Close can send the close
// frame before the link is taken from the queue.
func (c *Conn) boundClose() {
	if !c.closeTimeout.Swap(false) {
		return
	}
	c.mu.Lock()
	closing := c.closed != nil
	c.mu.Unlock()
	if !closing {
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
	if h := c.o.Load().handler; h != nil {
		return h
	}
	return HandlerFuncs{}
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
	if c.rxf != nil {
		c.rxf.release()
		c.rxf = nil
	}
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
