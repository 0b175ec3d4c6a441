package cluster

import "strconv"

// Incarnation numbers one run of one node: each start of the nats engine
// (and each Rejoin after fencing) takes the next number from a counter in
// the cluster's registry, so an incarnation is never reused, across nodes
// and across restarts. 0 is the memory engine's: it never leaves the
// process.
//
// Concurrency: a value.
type Incarnation uint16

func (i Incarnation) String() string { return strconv.FormatUint(uint64(i), 10) }

// A link id is the owner's incarnation in the high bits and the owner's
// local link number (the wsi number) in the low LocalBits:
//
//	id = uint64(incarnation)<<LocalBits | local
//
// 16 + 37 = 53 bits, so every id is exact as a JavaScript number, its
// owner is found without a lookup, and incarnation 0 (the memory engine)
// leaves today's single-node ids unchanged. 2^37 local numbers last 127
// days at 12,500 new links a second; MaxIncarnation starts are a crash
// every 10 s for a week, or a deploy a day for 179 years.
const (
	LocalBits      = 37
	MaxLocal       = 1<<LocalBits - 1
	MaxIncarnation = 1<<16 - 1
	MaxLinkID      = 1<<53 - 1
)

// LinkID returns the cluster-wide id of local link number local of
// incarnation inc; ok is false when local does not fit in LocalBits (the
// node must then take a new incarnation, see Engine.Rejoin).
func LinkID(inc Incarnation, local uint64) (id uint64, ok bool) {
	if local > MaxLocal {
		return 0, false
	}
	return uint64(inc)<<LocalBits | local, true
}

// SplitLinkID returns an id's owner and local number; ok is false for
// an id above MaxLinkID, which no node ever issues.
func SplitLinkID(id uint64) (inc Incarnation, local uint64, ok bool) {
	if id > MaxLinkID {
		return 0, 0, false
	}
	return Incarnation(id >> LocalBits), id & MaxLocal, true
}
