package cgo

/*
#include "shim.h"
*/
import "C"

import "github.com/lwsgate/lwsgate/callbacks"

// shimFlags pairs each callbacks.Flags constant with the bit the C side sets
// for it, so that a test can hold the two definitions together.
var shimFlags = map[string][2]uint32{
	"FirstFragment": {uint32(callbacks.FirstFragment), C.LWSGO_F_FIRST},
	"FinalFragment": {uint32(callbacks.FinalFragment), C.LWSGO_F_FINAL},
	"Binary":        {uint32(callbacks.Binary), C.LWSGO_F_BINARY},
	"NoRemaining":   {uint32(callbacks.NoRemaining), C.LWSGO_F_NOREMAIN},
	"Wake":          {uint32(callbacks.Wake), C.LWSGO_F_WAKE},
	"StaleData":     {uint32(callbacks.StaleData), C.LWSGO_F_STALE},
	"Deflate":       {uint32(callbacks.Deflate), C.LWSGO_F_DEFLATE},
}
