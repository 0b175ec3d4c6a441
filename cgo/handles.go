package cgo

import (
	"sync"
	"sync/atomic"
)

// Handle is an integer that stands for a Go value where C keeps it (a
// wsi's opaque user data, a context's user pointer), as runtime/cgo.Handle
// does. It is 0 for "none" and must be deleted exactly once; the package
// counts live handles so that tests can prove every one is released.
//
// Unlike runtime/cgo.Handle, whose Value is a lookup in a sync.Map (a hash
// of an interface key and compares; two per callback were 3-5% of the
// server's CPU in an echo), a Handle is an index into a table of slots:
// Value is two atomic loads. Slots are reused, so a handle carries the
// slot's generation too, and Value of a deleted handle panics as
// runtime/cgo's does instead of finding the slot's next value.
//
// NewHandle, Value and Delete may be called from any goroutine.
type Handle uintptr

// The table: chunks of slots, allocated as needed and never moved, so
// readers need no lock. A handle is generation<<32 | (slot index + 1).
const (
	chunkBits = 10
	chunkSize = 1 << chunkBits
	maxChunks = 1 << 14 // 16M live handles
)

type handleEntry struct {
	gen uint32
	v   any
}

type handleChunk struct {
	slots [chunkSize]atomic.Pointer[handleEntry]
	gens  [chunkSize]uint32 // last generation given out; handles.mu
}

// genBits is how many bits of a handle carry the generation: 32 where
// uintptr has 64, none on 32-bit platforms.
const genBits = 32 * (^uintptr(0) >> 63)

var handles struct {
	chunks [maxChunks]atomic.Pointer[handleChunk]

	mu   sync.Mutex // guards what follows and the chunks' gens
	free []uint32   // deleted slots
	next uint32     // slots ever used
}

var liveHandles atomic.Int64

// NewHandle returns a handle for v. It must be deleted exactly once.
func NewHandle(v any) Handle {
	handles.mu.Lock()
	var idx uint32
	if n := len(handles.free); n > 0 {
		idx = handles.free[n-1]
		handles.free = handles.free[:n-1]
	} else {
		idx = handles.next
		if idx >= maxChunks*chunkSize {
			handles.mu.Unlock()
			panic("cgo: too many live handles")
		}
		handles.next++
		if idx%chunkSize == 0 {
			handles.chunks[idx/chunkSize].Store(new(handleChunk))
		}
	}
	ch := handles.chunks[idx/chunkSize].Load()
	gen := uint32(0)
	if genBits > 0 {
		gen = ch.gens[idx%chunkSize] + 1
		ch.gens[idx%chunkSize] = gen
	}
	ch.slots[idx%chunkSize].Store(&handleEntry{gen: gen, v: v})
	handles.mu.Unlock()
	liveHandles.Add(1)
	return Handle(uintptr(gen)<<genBits | uintptr(idx+1))
}

// index returns the slot number of h (-1 if none) and its generation.
func (h Handle) index() (int, uint32) {
	i := int(uint64(h)&(1<<32-1)) - 1
	if genBits == 0 {
		i = int(h) - 1
	}
	if i < 0 || i >= maxChunks*chunkSize {
		return -1, 0
	}
	return i, uint32(uint64(h) >> 32)
}

// slot returns h's slot, or nil if h is not a handle NewHandle made.
func (h Handle) slot() (*atomic.Pointer[handleEntry], uint32) {
	i, gen := h.index()
	if i < 0 {
		return nil, 0
	}
	ch := handles.chunks[i/chunkSize].Load()
	if ch == nil {
		return nil, 0
	}
	return &ch.slots[i%chunkSize], gen
}

// Value returns the value the handle was created for. It panics if the
// handle was deleted (or never made).
func (h Handle) Value() any {
	if s, gen := h.slot(); s != nil {
		if e := s.Load(); e != nil && e.gen == gen {
			return e.v
		}
	}
	panic("cgo: misuse of an invalid Handle")
}

// Delete releases the handle. It panics if the handle is not live.
func (h Handle) Delete() {
	s, gen := h.slot()
	if s == nil {
		panic("cgo: misuse of an invalid Handle")
	}
	i, _ := h.index()
	handles.mu.Lock()
	if e := s.Load(); e == nil || e.gen != gen {
		handles.mu.Unlock()
		panic("cgo: misuse of an invalid Handle")
	}
	s.Store(nil)
	handles.free = append(handles.free, uint32(i))
	handles.mu.Unlock()
	liveHandles.Add(-1)
}

// LiveHandles returns how many handles exist now.
func LiveHandles() int64 { return liveHandles.Load() }
