package cgo

// This file holds every //export of the module. A file with //export may
// only declare in its preamble (cmd/cgo), so the C side is in the .c files
// (shim.c lists them).
//
// Each trampoline is short: recover, find the Go object, dispatch, return.
// A panic must never unwind through libwebsockets' C frames; it is turned
// into "close this wsi" (-1) and logged.

/*
#include <stdint.h>
#include <stddef.h>
*/
import "C"

import (
	"fmt"
	"runtime/debug"
	"unsafe"

	"github.com/lwsgate/lwsgate/callbacks"
)

//export goLwsCallback
func goLwsCallback(ctxh C.uintptr_t, wsi C.uintptr_t, user C.uintptr_t, reason C.int,
	in unsafe.Pointer, length C.size_t, dlen C.size_t, flags C.int, proto C.int) (ret C.int) {
	defer func() {
		if r := recover(); r != nil {
			logPanic(callbacks.Reason(reason), r)
			ret = -1
		}
	}()
	c, ok := Handle(ctxh).Value().(*Context)
	if !ok {
		return -1
	}
	return C.int(c.dispatch(uintptr(wsi), uintptr(user), callbacks.Reason(reason), in,
		int(length), int(dlen), callbacks.Flags(flags), int(proto)))
}

//export goLwsMidPass
func goLwsMidPass(ctxh C.uintptr_t) {
	defer func() {
		if r := recover(); r != nil {
			emitLog(LogErr, fmt.Sprintf("lwsgate: panic in the middle of a service pass: %v\n%s", r, debug.Stack()))
		}
	}()
	c, ok := Handle(ctxh).Value().(*Context)
	if !ok {
		return
	}
	if mp, ok := c.d.(callbacks.MidPasser); ok {
		mp.MidPass()
	}
}

//export goLwsLog
func goLwsLog(level C.int, line *C.char) {
	defer func() { _ = recover() }()
	emitLog(int(level), C.GoString(line))
}

func logPanic(r callbacks.Reason, v any) {
	emitLog(LogErr, fmt.Sprintf("lwsgate: panic in callback %s (connection closed): %v\n%s", r, v, debug.Stack()))
}
