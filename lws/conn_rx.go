package lws

import (
	"syscall"

	"github.com/lwsgate/lwsgate/callbacks"
	"github.com/lwsgate/lwsgate/cgo"
)

// Receiving on a WebSocket link: RECEIVE chunks assembled into messages
// for the handler, within the link's limits, text checked as UTF-8 as it
// arrives; and the peer's close frame.
//
// A message is assembled in a frame (frame.go), after cgo.Pre bytes of
// headroom, so that an echo of it can be queued as it is: while OnMessage
// runs with a message longer than batchFrameMax, the message is lent, and
// a Send of exactly that slice on this link from the service goroutine
// takes the frame instead of copying it (Conn.lent). Shorter messages are
// copied into a batch when written (conn_tx.go), so lending them would
// save nothing.

// onReceive assembles messages from RECEIVE chunks (service goroutine).
func (c *Conn) onReceive(ev *callbacks.Event) int {
	maxMessage := c.o.Load().maxMessage
	if ev.Len > 0 && maxMessage >= 0 && int64(ev.Len) > maxCompressed(maxMessage) {
		c.r.limitHit(LimitMaxCompressed)
		return c.closeNow(StatusMessageTooBig, "message too big")
	}
	if ev.Flags&callbacks.FirstFragment != 0 {
		if c.rxf != nil {
			c.rxf.buf = c.rxf.buf[:cgo.Pre]
		}
		c.rxUTF8 = 0
		c.rxType = TextMessage
		if ev.Flags&callbacks.Binary != 0 {
			c.rxType = BinaryMessage
		}
	}
	have := 0
	if c.rxf != nil {
		have = c.rxf.payloadLen()
	}
	if maxMessage >= 0 && int64(have+len(ev.Data)) > maxMessage {
		c.r.limitHit(LimitMaxMessage)
		return c.closeNow(StatusMessageTooBig, "message too big")
	}
	if need := cgo.Pre + have + len(ev.Data); c.rxf == nil || need > cap(c.rxf.buf) {
		c.rxf = growRx(c.rxf, need)
	}
	c.rxf.buf = append(c.rxf.buf, ev.Data...)
	msg := c.rxf.buf[cgo.Pre:]
	if c.rxType == TextMessage && !c.r.ctx.cfg.DisableUTF8Validation {
		// Checked as it arrives, so that an invalid message fails at
		// its first bad chunk (the binding, not libwebsockets, checks
		// UTF-8: see Context.run).
		n, bad := utf8Prefix(msg[c.rxUTF8:])
		c.rxUTF8 += n
		if bad || ev.Flags.Complete() && c.rxUTF8 != len(msg) {
			c.r.limitHit(LimitBadUTF8)
			return c.closeNow(StatusInvalidPayloadData, "invalid UTF-8")
		}
	}
	if !ev.Flags.Complete() {
		return 0
	}
	if len(msg) > batchFrameMax {
		c.lendN = len(msg)
	}
	c.callMessage(msg)
	c.lendN = 0
	switch {
	case c.rxf == nil:
		// Sent: the frame is queued (lent).
	case cap(c.rxf.buf) > rxKeep:
		// Don't pin one big message's buffer to the link: hand it
		// to the next big message of any link.
		c.rxf.release()
		c.rxf = nil
	default:
		c.rxf.buf = c.rxf.buf[:cgo.Pre]
	}
	return 0
}

// lent returns the frame data was assembled in when data is the message
// OnMessage is running with on this link and this is its service
// goroutine (an echo of a message longer than batchFrameMax: see the top
// of this file), taking it from the link; else nil. The goroutine is told
// by its thread: the service goroutine is locked to its own, and a Send
// that may take the frame is one of more than 16 KiB, next to whose copy
// a gettid(2) is cheap.
func (c *Conn) lent(data []byte) *frame {
	if len(data) <= batchFrameMax || int32(syscall.Gettid()) != c.r.ctx.tid.Load() {
		return nil
	}
	// The service goroutine: rxf and lendN are this goroutine's.
	if c.lendN != len(data) || &c.rxf.buf[cgo.Pre] != &data[0] {
		return nil
	}
	f := c.rxf
	c.rxf, c.lendN = nil, 0
	return f
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

// onPeerClose is WS_PEER_INITIATED_CLOSE: it records the peer's close
// frame payload (2-byte code, reason) and returns what the callback
// returns. libwebsockets echoes the payload when the callback returns 0,
// whatever it holds (a 1-byte payload, a code that may not be sent, a
// reason that is not UTF-8); such a close is answered with 1002 or 1007
// instead. libwebsockets has already replaced the codes it considers
// invalid (below 1000, 1004-1006, 1012-1015, 1016-2999) with 1002, so
// those arrive here as 1002: a 1002 with a reason is answered with a
// plain 1002 rather than echoed with the peer's reason. A bare 1002 is
// echoed, which is the same frame: returning -1 for it would lose the
// answer when the close frame came in the same read as the 101 (lws
// keeps those bytes in the link's buflist and, on -1, neither consumes
// them nor resets its frame parser, so the service pass that retries the
// link parses them again as a 4-byte close payload; on poll the answer
// happens to go out first, on libev the retry comes first and the link
// is killed without it: conformance client case 7.7.3, 4.1.6).
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
	if ce.Code == StatusProtocolError && len(p) > 2 {
		c.r.wsi.CloseReason(int(StatusProtocolError), "")
		c.failing = true
		return -1
	}
	// libwebsockets answers the close frame and hangs up at the next
	// POLLOUT, which it asks for: writeNow delivers it after this pass,
	// as it does an echo's, instead of an epoll_ctl now, one more pass of
	// the event loop for the POLLOUT, and a second epoll_ctl then.
	c.r.ctx.writeSoon(c.r)
	return 0
}
