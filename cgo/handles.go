package cgo

import (
	rtcgo "runtime/cgo"
	"sync/atomic"
)

// Handle is a runtime/cgo.Handle that the package counts, so that tests can
// prove every per-connection and per-context handle is released.
//
// NewHandle and Delete may be called from any goroutine.
type Handle uintptr

var liveHandles atomic.Int64

// NewHandle returns a handle for v. It must be deleted exactly once.
func NewHandle(v any) Handle {
	liveHandles.Add(1)
	return Handle(rtcgo.NewHandle(v))
}

// Value returns the value the handle was created for.
func (h Handle) Value() any { return rtcgo.Handle(h).Value() }

// Delete releases the handle.
func (h Handle) Delete() {
	rtcgo.Handle(h).Delete()
	liveHandles.Add(-1)
}

// LiveHandles returns how many handles exist now.
func LiveHandles() int64 { return liveHandles.Load() }
