package lws

import (
	"crypto/rand"
	"sync"

	"github.com/lwsgate/lwsgate/cgo"
)

// frame is one queued outgoing message: Pre bytes of headroom for the
// WebSocket (or HTTP) framing libwebsockets writes in front of the payload,
// then the payload. Frames are binding-owned copies, never the caller's
// slice: libwebsockets writes into the headroom (and, for client links,
// masks the payload in place).
type frame struct {
	buf []byte // len = cgo.Pre + payload length
	typ MessageType
	off int // payload bytes already handed to libwebsockets
}

func (f *frame) payloadLen() int { return len(f.buf) - cgo.Pre }

// Frames are pooled by capacity class so that a steady stream of messages
// up to 16 MiB allocates nothing; larger frames are left to the GC. Pools
// are emptied by the GC, so idle capacity does not stay pinned. A link
// assembles what it receives in a frame too (conn_rx.go).
var frameClasses = [...]int{256, 4 << 10, 64<<10 + cgo.Pre, 256<<10 + cgo.Pre, 1<<20 + cgo.Pre, 4<<20 + cgo.Pre, 16<<20 + cgo.Pre}

var framePools [len(frameClasses)]sync.Pool

func newFrame(n int) *frame {
	need := cgo.Pre + n
	for i, c := range frameClasses {
		if need <= c {
			if f, ok := framePools[i].Get().(*frame); ok {
				f.buf = f.buf[:need]
				f.off = 0
				return f
			}
			return &frame{buf: make([]byte, need, c)}
		}
	}
	return &frame{buf: make([]byte, need)}
}

func (f *frame) release() {
	c := cap(f.buf)
	for i, cc := range frameClasses {
		if c == cc {
			framePools[i].Put(f)
			return
		}
	}
}

// rxKeep is the largest frame a link keeps to assemble its next message
// in; bigger ones go back to their pool, shared by all links, when the
// message has been delivered (OnMessage's data is only valid until it
// returns).
const rxKeep = 64<<10 + cgo.Pre

// growRx returns a frame holding f's bytes (headroom and the message so
// far; f may be nil: headroom only) with room for need bytes in all: the
// pooled class that takes need, or, past the largest class, twice what f
// had. f goes back to its pool.
func growRx(f *frame, need int) *frame {
	have := cgo.Pre
	if f != nil {
		have = len(f.buf)
	}
	var nf *frame
	if last := frameClasses[len(frameClasses)-1]; need > last {
		size := need
		if f != nil {
			size = max(need, 2*cap(f.buf))
		}
		nf = &frame{buf: make([]byte, size)}
	} else {
		nf = newFrame(need - cgo.Pre)
	}
	if f != nil {
		copy(nf.buf, f.buf)
		f.release()
	}
	nf.buf = nf.buf[:have]
	return nf
}

// chokeCheckBytes is how much a write loop hands libwebsockets between two
// questions whether the socket can take more. Each question is a poll(2)
// of the socket (lws_send_pipe_choked): asked after every frame, as
// libwebsockets' examples do, it is one system call per message on top of
// the send. The kernel's socket buffer takes far more than this at once,
// and what it does not take libwebsockets keeps and sends first, so
// writing on unasked is correct and, below this much, cheaper than asking.
const chokeCheckBytes = 64 << 10

// chokeGate counts the bytes a write loop has written since it last asked
// (a local of one WRITEABLE callback, so service goroutine only; the zero
// value is ready).
type chokeGate struct{ since int }

// ask reports whether to ask after a write of n bytes that more follows
// (more false: nothing else to write in this callback, so never).
func (g *chokeGate) ask(n int, more bool) bool {
	g.since += n
	if !more || g.since < chokeCheckBytes {
		return false
	}
	g.since = 0
	return true
}

// Write batching. A link's queued messages go to libwebsockets one
// lws_write each, and each lws_write is a send(2): with 10 small echoes
// queued, 10 system calls, which were 70% of the gateway's CPU in the
// pipelined benchmark. So a server link without permessage-deflate frames
// a run of small whole messages itself (unmasked, FIN set) into one buffer
// and writes it raw (cgo.WSI.WriteWSRaw): one send for the run.
const (
	batchFrameMax = 16 << 10 // largest payload put in a batch
	batchMax      = 64 << 10 // most bytes in one batch
)

// batchRun returns how many frames from the start of q can go in one
// batch and the bytes they take framed; fewer than 2 is not worth it.
func batchRun(q []*frame) (k, size int) {
	for _, f := range q {
		n := f.payloadLen()
		if f.off != 0 || n > batchFrameMax || size+batchHeaderLen(n)+n > batchMax {
			break
		}
		size += batchHeaderLen(n) + n
		k++
	}
	return k, size
}

// batchHeaderLen is the frame header before a batched payload of n bytes:
// batchFrameMax keeps every batched payload within the 16-bit length.
func batchHeaderLen(n int) int {
	if n < 126 {
		return 2
	}
	return 4
}

// The 16-bit length covers every batched payload (a compile-time check).
var _ [0xffff - batchFrameMax]struct{}

// appendFrame appends f, a batched message (at most batchFrameMax bytes),
// as one whole unmasked frame with the shortest length (RFC 6455 section
// 5.2).
func appendFrame(b []byte, f *frame) []byte {
	op := byte(0x2)
	if f.typ == TextMessage {
		op = 0x1
	}
	n := f.payloadLen()
	b = append(b, 0x80|op)
	if n < 126 {
		b = append(b, byte(n))
	} else {
		b = append(b, 126, byte(n>>8), byte(n))
	}
	return append(b, f.buf[cgo.Pre:]...)
}

// emptyFrame is a whole empty message for a link with permessage-deflate,
// sent uncompressed (RSV1 clear; RFC 7692 lets any message go so) and
// written raw, around libwebsockets' deflate: with context takeover the
// sync flush of an empty message after an earlier one gives zlib nothing
// to write, and libwebsockets 4.1.6 and 4.3.5 then abort the process
// (assert(0) after "FAIL want to trim out length 0",
// extension-permessage-deflate.c). A client's frame is masked, with a key
// from crypto/rand as RFC 6455 section 5.3 asks, though no payload
// follows it.
func emptyFrame(typ MessageType, client bool) []byte {
	op := byte(0x2)
	if typ == TextMessage {
		op = 0x1
	}
	if !client {
		return []byte{0x80 | op, 0}
	}
	b := []byte{0x80 | op, 0x80, 0, 0, 0, 0}
	_, _ = rand.Read(b[2:]) // never fails (Go 1.24)
	return b
}
