// Package cgo is the binding's one crossing into libwebsockets. It owns an
// lws_context and its vhosts (Context), speaks for a connection (WSI), and
// hands every callback libwebsockets makes to a callbacks.Dispatcher as a
// callbacks.Event: one crossing from C to Go per callback, with what Go
// needs computed on the C side. The C side answers a few callbacks itself
// and counts them (SkipCounter): with the reason log off, those Go does
// nothing with, and the WRITEABLE callbacks that WSI.ServiceWrite and
// WSI.ServiceRespond deliver with the one write each is to do, which the
// C side does from the callback. Package lws builds the binding's API on it;
// only lws imports it, and tests that count live Handles.
//
// The C side is the files shim.c lists in the comment at its top, which is
// the design document of both sides: what is decided in C, who owns each
// buffer, which thread runs what, and what every C function returns. This
// comment states the rules as a Go caller meets them.
//
// # Threads
//
// libwebsockets is single-threaded. A Context belongs to the goroutine
// that created it, locked to its OS thread (the service goroutine): it
// calls every Context method and every WSI method, and the Dispatcher runs
// on it, also nested inside some of those calls (writes, timeouts, Connect
// and Destroy may call back before they return).
// Two methods are safe from any goroutine: Context.Wake, which is
// lws_cancel_service, the one thread-safe libwebsockets call, and
// Context.SetReportAll. Handles, the log hooks (SetLogFunc, SetLogLevels)
// and the counters in rxpool.go are safe from any goroutine too; a LogFunc
// may be called on any goroutine. Every other goroutine that wants
// something done enqueues it and calls Wake; the service goroutine drains
// its queue at the EVENT_WAIT_CANCELLED callback flagged callbacks.Wake.
//
// # Buffers
//
// An Event's Data is libwebsockets' memory, valid until Dispatch returns:
// copy what you keep. Slices passed to WSI methods are read during the call
// only; the exception is a link with permessage-deflate, whose payloads go
// through HeldFrame, C memory that stays until the next write. Frames
// written with WriteWS and WriteHTTP carry Pre bytes of headroom before
// their payload, which libwebsockets writes into. Strings libwebsockets
// keeps for a vhost's life are C memory the Context frees at Destroy. No Go
// pointer is ever stored in C memory: a connection's Go value is reached
// through a Handle kept in the wsi, deleted by its owner at WSI_DESTROY.
//
// # Errors
//
// NewContext and the vhost constructors return an error that carries the
// lines libwebsockets logged while failing. Write methods return a
// WriteResult: WriteFailed means the connection must close, WriteChoked
// that the rest waits for the next WRITEABLE callback. Dispatch returns
// what a libwebsockets callback returns, 0 to go on and -1 to close the
// connection (for a few reasons the C side decides instead: see
// lwsgo_finish in shim.c); a panic in it is recovered, logged through the
// LogFunc, and closes the connection. Misuse is a programming error and panics: a frame without its
// headroom, the Value of a deleted Handle.
package cgo
