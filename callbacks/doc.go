// Package callbacks names libwebsockets' callback reasons and defines the
// event a callback becomes on the Go side, and the Dispatcher that receives it.
//
// It is pure Go: it imports nothing from this module and no C. Package cgo
// turns every libwebsockets callback into one Event and hands it to a
// Dispatcher; package lws implements the Dispatcher.
//
// # Concurrency
//
// Dispatch is called on the libwebsockets service goroutine, one event at a
// time, never concurrently for the same context. A Dispatcher must not block.
//
// # Buffer ownership
//
// Event.Data aliases memory owned by libwebsockets. It is valid only until
// Dispatch returns: copy what you keep.
//
// # Regenerating
//
// reason_gen.go is generated from the lws-callbacks.h of several libwebsockets
// releases; see generate.go.
package callbacks
