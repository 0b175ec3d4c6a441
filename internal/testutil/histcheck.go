package testutil

import (
	"fmt"
	"slices"
)

// Delivered is one message a subscriber of a history channel received:
// its offset in the channel's stream and its data.
//
// Concurrency: a value.
type Delivered struct {
	Offset uint64
	Data   string
}

// CheckHistory is the history checker's rule for one subscriber of a
// channel (README: History and recovery), shared by the engine's
// checker (lws/gateway/cluster) and the process tier (cmd/clustertest).
// acked is every offset the channel's publishes were acknowledged with,
// sorted; start is the subscriber's position when it first joined; got
// is what it received, in order. Every acknowledged offset after start
// must be in got, in increasing order, once, and nothing else: no offset
// that was never acknowledged, and no message twice under two offsets
// (a retried publish must be stored once). It returns what is wrong,
// nothing when all is well.
func CheckHistory(acked []uint64, start uint64, got []Delivered) []string {
	var bad []string
	for i := 1; i < len(got); i++ {
		if got[i].Offset <= got[i-1].Offset {
			bad = append(bad, fmt.Sprintf("offset %d after %d: out of order or repeated", got[i].Offset, got[i-1].Offset))
		}
	}
	have := make(map[uint64]bool, len(got))
	for _, d := range got {
		have[d.Offset] = true
	}
	from, _ := slices.BinarySearch(acked, start+1)
	var missing []uint64
	for _, o := range acked[from:] {
		if !have[o] {
			missing = append(missing, o)
		}
	}
	if len(missing) > 0 {
		bad = append(bad, fmt.Sprintf("misses %d of %d acknowledged offsets: %v", len(missing), len(acked)-from, missing[:min(10, len(missing))]))
	}
	seen := make(map[string]uint64, len(got))
	for _, d := range got {
		if _, found := slices.BinarySearch(acked, d.Offset); !found {
			bad = append(bad, fmt.Sprintf("got offset %d (%q), never acknowledged", d.Offset, d.Data))
		}
		if o, dup := seen[d.Data]; dup && o != d.Offset {
			bad = append(bad, fmt.Sprintf("got %q twice, at offsets %d and %d", d.Data, o, d.Offset))
		}
		seen[d.Data] = d.Offset
	}
	return bad
}
