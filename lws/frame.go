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

// Frames are pooled by capacity class so that a steady stream of small
// messages allocates nothing; large frames are left to the GC so that one
// big message does not pin memory.
var frameClasses = [...]int{256, 4 << 10, 64 << 10}

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
