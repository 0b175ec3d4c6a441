package cgo

/*
#include "shim.h"
*/
import "C"

import (
	"strings"
	"sync"
	"sync/atomic"
)

// libwebsockets log levels (LLL_*), as passed to a LogFunc.
const (
	LogErr    = C.LLL_ERR
	LogWarn   = C.LLL_WARN
	LogNotice = C.LLL_NOTICE
	LogInfo   = C.LLL_INFO
	LogDebug  = C.LLL_DEBUG
)

// LogFunc receives one libwebsockets log line, without its trailing newline.
// It may be called on any goroutine and must not call into libwebsockets.
type LogFunc func(level int, line string)

var (
	logFunc  atomic.Pointer[LogFunc]
	logOnce  sync.Once
	logLevel atomic.Int32

	// captureMu serialises context and vhost creation so that the error
	// lines lws logs while failing can be attached to the returned error.
	captureMu sync.Mutex
	captureOn atomic.Bool
	capMu     sync.Mutex // guards captured
	captured  []string
)

// SetLogFunc routes libwebsockets' log output to f (nil discards it).
// libwebsockets' logging is process-wide, so this is too.
func SetLogFunc(f LogFunc) {
	if f == nil {
		logFunc.Store(nil)
		return
	}
	logFunc.Store(&f)
}

// SetLogLevels chooses which libwebsockets levels are emitted (an OR of
// Log* constants). It takes effect for contexts created afterwards.
func SetLogLevels(levels int) { logLevel.Store(int32(levels)) }

func init() { logLevel.Store(LogErr | LogWarn | LogNotice) }

func initLog() {
	// lws_set_log_level is global and not thread-safe; calling it before
	// the first context exists, and again only under captureMu, keeps it on
	// one thread at a time.
	C.lwsgo_log_init(C.int(logLevel.Load()))
}

func emitLog(level int, line string) {
	line = strings.TrimRight(line, "\n")
	if captureOn.Load() && level&(LogErr|LogWarn) != 0 {
		capMu.Lock()
		captured = append(captured, line)
		capMu.Unlock()
	}
	if f := logFunc.Load(); f != nil {
		(*f)(level, line)
	}
}

// captureErrors runs f, which creates a context or vhost, and returns the
// error and warning lines libwebsockets logged meanwhile.
func captureErrors(f func()) []string {
	captureMu.Lock()
	defer captureMu.Unlock()
	beginCapture()
	f()
	return endCapture()
}

// beginCapture starts collecting error lines; the caller holds captureMu.
func beginCapture() {
	initLog()
	capMu.Lock()
	captured = captured[:0]
	capMu.Unlock()
	captureOn.Store(true)
}

// endCapture stops collecting and returns what was logged.
func endCapture() []string {
	captureOn.Store(false)
	capMu.Lock()
	defer capMu.Unlock()
	out := append([]string(nil), captured...)
	captured = captured[:0]
	return out
}
