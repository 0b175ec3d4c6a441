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
// up to 1 MiB allocates nothing; larger frames are left to the GC. Pools
// are emptied by the GC, so idle capacity does not stay pinned.
var frameClasses = [...]int{256, 4 << 10, 64<<10 + cgo.Pre, 1<<20 + cgo.Pre}

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

// rxKeep is the largest reassembly buffer a link keeps between messages;
// bigger ones go back to rxPools, shared by all links, when the message
// has been delivered (OnMessage's data is only valid until it returns).
const rxKeep = 64 << 10

// rxPools hold reassembly buffers of 128 KiB, 256 KiB ... 16 MiB.
var rxPools [8]sync.Pool

func rxClass(n int) int {
	c := 0
	for size := 128 << 10; size < n; size <<= 1 {
		c++
	}
	return c
}

// growRx returns a buffer holding buf's bytes with room for need bytes:
// a power of two up to rxKeep (kept by the link), else a pooled class.
func growRx(buf []byte, need int) []byte {
	if need <= rxKeep {
		size := max(2*cap(buf), 256)
		for size < need {
			size <<= 1
		}
		nb := make([]byte, len(buf), min(size, rxKeep))
		copy(nb, buf)
		return nb
	}
	c := rxClass(need)
	if c >= len(rxPools) {
		nb := make([]byte, len(buf), need)
		copy(nb, buf)
		putRx(buf)
		return nb
	}
	nb, _ := rxPools[c].Get().([]byte)
	if nb == nil {
		nb = make([]byte, 0, (128<<10)<<c)
	}
	nb = append(nb[:0], buf...)
	putRx(buf)
	return nb
}

// putRx returns a big reassembly buffer to its pool.
func putRx(buf []byte) {
	n := cap(buf)
	if n <= rxKeep {
		return
	}
	c := rxClass(n)
	if c < len(rxPools) && (128<<10)<<c == n {
		rxPools[c].Put(buf[:0]) // boxing the header costs 24 B per big message
	}
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
