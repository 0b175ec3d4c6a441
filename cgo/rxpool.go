package cgo

/*
#include "shim.h"
*/
import "C"

// The counters of rxpool.c and offer.c. They are exported for the tests of
// package lws, which prove that what libwebsockets allocates per link is
// given back (lws.TestMain fails the run on a live header buffer, as on a
// live Handle). Go has no test-only export across packages, and a hook
// package would need an import "C" of its own over the same C functions:
// more surface, not less. Each reads a counter under the allocator's lock
// or with an atomic load, so they are safe from any goroutine and cost
// nothing unless called.

// PooledRxBuffers returns how many WebSocket links' receive buffers are in
// the pool now (rxpool.c).
func PooledRxBuffers() int64 { return int64(C.lwsgo_rxpool_live()) }

// HeaderBuffers returns how many request header buffers libwebsockets has
// allocated and not freed, as the allocator recorded them for
// WSI.SetExtensionOffer (offer.c).
func HeaderBuffers() int { return int(C.lwsgo_ah_data_live()) }

// RxPoolEnabled reports whether receive buffers come from the pool: not
// when its address range could not be reserved, nor under AddressSanitizer
// (which then guards them as malloc's). Meaningful once a Context exists.
func RxPoolEnabled() bool { return C.lwsgo_rxpool_enabled() != 0 }
