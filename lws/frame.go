package lws

import (
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
// (one WRITEABLE callback; the zero value is ready).
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
