package lws

import (
	"github.com/lwsgate/lwsgate/callbacks"
	"github.com/lwsgate/lwsgate/cgo"
)

// Writing a WebSocket link. At each WRITEABLE callback the link writes
// what Ping and Send queued, until the socket chokes, then asks for
// another round while anything is left, or closes when Close asked and
// everything is out. One step per function:
//
//	onWritable    the callback: a link refused input or closing ends
//	              here, else one round of the steps below
//	takeQueued    what Send queued (txq) goes behind what is being
//	              written (wq); the pings are taken
//	writePings    control frames first: they may go between fragments
//	writeQueue    wq in order: a run of small messages as one batch
//	              (writeBatch), any other message in chunks (writeFrame,
//	              writeChunk)
//	endRound      deflate's copy freed, the next round asked for, or the
//	              close
//
// writeAlone is the way round the callback when all it would do is write
// one whole message: writeNow hands the message over with the WRITEABLE
// it delivers, and the C layer writes it from the callback.

// txRound is one WRITEABLE callback's progress through the link's wq.
//
// Concurrency: service goroutine only (one WRITEABLE callback's scratch).
type txRound struct {
	gate    chokeGate
	done    int   // messages at the start of wq written whole
	written int64 // their payload bytes
	choked  bool  // the socket takes no more this round
	// held: libwebsockets holds a payload it compresses over WRITEABLE
	// rounds of its own (permessage-deflate: one write per round).
	held bool
}

// txScratch is the service goroutine's scratch for writing links: the
// buffer a run of small messages is framed into (writeBatch), and how
// many such batches went out. The count is what shows a test
// (TestBatchedWrites) that the write path batches at all, which the wire
// cannot show (TCP merges what writes send); it is a plain counter of
// the service goroutine, read through Context.Do: no atomic on the write
// path.
type txScratch struct {
	batch   []byte
	batches uint64
}

// onWritable is SERVER_WRITEABLE and CLIENT_WRITEABLE: it writes queued
// frames until the pipe chokes.
func (c *Conn) onWritable() int {
	if c.failRx {
		return c.endRefused()
	}
	pings, closed := c.takeQueued()
	if closed {
		return c.writableClosed()
	}
	if !c.writePings(pings) {
		return -1
	}
	var tx txRound
	if !c.writeQueue(&tx) {
		return -1
	}
	return c.endRound(&tx)
}

// endRefused ends a link whose input receive refused. The first time,
// libwebsockets starts the close (failing is set with failRx): the reason
// is set again, as a ping's payload may have taken the buffer
// libwebsockets keeps it in.
func (c *Conn) endRefused() int {
	c.mu.Lock()
	ce := *c.closed
	c.mu.Unlock()
	c.r.wsi.CloseReason(int(ce.Code), ce.Reason)
	return -1
}

// takeQueued puts the messages Send queued behind those being written and
// takes the pings, unless the link is closed (closed true).
func (c *Conn) takeQueued() (pings []*frame, closed bool) {
	c.mu.Lock()
	if c.closed != nil {
		c.mu.Unlock()
		return nil, true
	}
	if len(c.txq) > 0 {
		c.wq = append(c.wq, c.txq...)
		clear(c.txq)
		c.txq = c.txq[:0]
	}
	pings = c.pingq
	c.pingq = nil
	c.mu.Unlock()
	return pings, false
}

// writableClosed is WRITEABLE on a link libwebsockets is closing, which it
// lets through only once its close frame is out (the frame goes first in
// rops_handle_POLLOUT_ws, 4.1.6 and 4.3.5).
func (c *Conn) writableClosed() int {
	if c.failing {
		// A failed link ends now. Left to libwebsockets it would wait
		// 5 s for the peer's answer, which it does not even see after
		// some protocol errors (its frame parser stops mid-frame and
		// takes the answer for payload), or for a second close from a
		// peer that already sent its own (a close frame refused by
		// onPeerClose).
		return -1
	}
	// A close this side asked for: returning -1 would drop TCP before
	// the peer's close reply.
	return 0
}

// writePings writes the queued pings; false when a write failed.
func (c *Conn) writePings(pings []*frame) bool {
	for _, f := range pings {
		res := c.r.wsi.Ping(f.buf)
		f.release()
		if res == cgo.WriteFailed {
			return false
		}
	}
	return true
}

// writeQueue writes wq from its start until it is empty or the socket
// chokes, and drops what it wrote whole from wq; false when a write
// failed. A server link without permessage-deflate sends a run of small
// messages as one batch (see batchRun).
func (c *Conn) writeQueue(tx *txRound) bool {
	batch := !c.deflate && !c.client
	ok := true
	for ok && tx.done < len(c.wq) && !tx.choked {
		if batch {
			if k, size := batchRun(c.wq[tx.done:]); k >= 2 {
				ok = c.writeBatch(tx, k, size)
				continue
			}
		}
		ok = c.writeFrame(tx)
	}
	// Also after a failed write: the frames written before it are
	// released, and WSI_DESTROY releases what is left (finish).
	c.wq = c.wq[:copy(c.wq, c.wq[tx.done:])]
	return ok
}

// writeBatch frames the k messages at tx.done, size bytes framed, into one
// buffer and writes it raw: one send(2) for the run.
func (c *Conn) writeBatch(tx *txRound, k, size int) bool {
	run := c.wq[tx.done : tx.done+k]
	s := &c.r.ctx.tx
	b := s.batch[:0]
	if cap(b) < size {
		b = make([]byte, 0, max(size, 4<<10))
	}
	for _, f := range run {
		b = appendFrame(b, f)
	}
	s.batch = b[:0]
	s.batches++
	res := c.r.wsi.WriteWSRaw(b, tx.gate.ask(len(b), tx.done+k < len(c.wq)))
	if res == cgo.WriteFailed {
		return false
	}
	for _, f := range run {
		tx.written += int64(f.payloadLen())
		f.release()
	}
	clear(run)
	tx.done += k
	tx.choked = res == cgo.WriteChoked
	return true
}

// writeFrame writes the message at tx.done from where the last round left
// it, in chunks of at most txPacketSize, until it is out (it leaves wq's
// count) or the socket chokes.
func (c *Conn) writeFrame(tx *txRound) bool {
	f := c.wq[tx.done]
	n := f.payloadLen()
	for f.off < n || n == 0 {
		chunk := min(n-f.off, txPacketSize)
		res := c.writeChunk(tx, f, chunk)
		if res == cgo.WriteFailed {
			return false
		}
		f.off += chunk
		if res == cgo.WriteChoked {
			tx.choked = true
		}
		if f.off == n || tx.choked {
			break
		}
		// n > 0 here: a zero-length message is one write.
	}
	if f.off == n {
		tx.written += int64(n)
		f.release()
		c.wq[tx.done] = nil
		tx.done++
	}
	return true
}

// writeChunk hands libwebsockets chunk bytes of f's payload from f.off.
func (c *Conn) writeChunk(tx *txRound, f *frame, chunk int) cgo.WriteResult {
	n := f.payloadLen()
	first, last := f.off == 0, f.off+chunk == n
	binary := f.typ == BinaryMessage
	switch {
	case c.deflate && n == 0:
		// Around libwebsockets' deflate, which aborts the process on
		// an empty message (see emptyFrame).
		return c.r.wsi.WriteWSRaw(emptyFrame(f.typ, c.client), false)
	case c.deflate:
		// libwebsockets compresses what zlib cannot take at once over
		// WRITEABLE rounds of its own, and calls back here only when it
		// has all of it.
		tx.held, tx.choked = true, true
		return c.r.wsi.WriteWSHeld(&c.held, f.buf[cgo.Pre+f.off:cgo.Pre+f.off+chunk], binary, first, last, false)
	}
	more := !last || tx.done+1 < len(c.wq)
	return c.r.wsi.WriteWS(f.buf, cgo.Pre+f.off, chunk, binary, first, last, tx.gate.ask(chunk, more))
}

// endRound settles a round that wrote without failing: its bytes leave
// the queue's count, and the link asks for another round while anything
// is left, or closes when Close asked and everything is out.
func (c *Conn) endRound(tx *txRound) int {
	if c.deflate && !tx.held {
		// Nothing written this round, so libwebsockets has compressed
		// all of the last payload: its copy can go.
		c.held.Free()
	}
	c.mu.Lock()
	c.queued -= tx.written
	// After a compressed write, one more round: it frees the copy, and a
	// close waits until libwebsockets has sent all of the message.
	more := len(c.wq) > 0 || len(c.txq) > 0 || tx.held
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

// writeAlone delivers the WRITEABLE callback writeNow delivers to a server
// link (without permessage-deflate) whose callback would do nothing but
// write one whole message of at most txPacketSize: no other message, ping
// or close queued, none half written. The message goes with the call
// (cgo.WSI.ServiceWrite), the C layer writes it from the callback, and the
// callback does not cross into Go. It reports false, having done nothing,
// for any other link, and for every link while the reason log is on, which
// has a line for each callback. Service goroutine, outside callbacks.
func (c *Conn) writeAlone() bool {
	if c.client || c.deflate || c.failRx || len(c.wq) > 0 {
		return false
	}
	c.mu.Lock()
	if c.closed != nil || c.closeReq || len(c.pingq) > 0 || len(c.txq) != 1 ||
		c.txq[0].off != 0 || c.txq[0].payloadLen() > txPacketSize {
		c.mu.Unlock()
		return false
	}
	// As takeQueued: the message is being written (wq), so that what
	// libwebsockets calls back meanwhile finds it there.
	f := c.txq[0]
	c.wq = append(c.wq, f)
	c.txq[0] = nil
	c.txq = c.txq[:0]
	c.mu.Unlock()
	r := c.r
	n := f.payloadLen()
	res := r.wsi.ServiceWrite(f.buf, cgo.Pre, n, f.typ == BinaryMessage)
	if r.wsi == 0 || res == cgo.WriteFailed {
		// Closed: WSI_DESTROY releases what wq holds (finish).
		return true
	}
	if r.trace != nil && res != cgo.WriteNotCalled {
		r.trace.add(r.ctx.traceClock(), callbacks.ServerWriteable, r.ctx.cfg.LinkTrace)
	}
	r.outNow = false
	if res == cgo.WriteNotCalled {
		// libwebsockets had its own to send first: the message waits
		// in wq for the socket, as in writeNow.
		r.ctx.aloneWaits++
		r.wsi.CallbackOnWritable()
		return true
	}
	r.ctx.aloneWrites++
	c.wq[0] = nil
	c.wq = c.wq[:0]
	f.release()
	c.mu.Lock()
	c.queued -= int64(n)
	more := len(c.txq) > 0 || c.closeReq
	c.mu.Unlock()
	if more {
		// Sent since, or a close: the callback of the next round
		// writes it, or closes.
		r.wsi.CallbackOnWritable()
	}
	return true
}
