package gateway

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// hubLinks are n links on two workers, the even ones on worker 0.
func hubLinks(n int) []*LinkRecord {
	ws := []*worker{{id: 0}, {id: 1}}
	out := make([]*LinkRecord, n)
	for i := range out {
		out[i] = &LinkRecord{ID: uint64(i + 1), w: ws[i%2]}
	}
	return out
}

// TestMembersByFollowsChanges: membersBy, which keeps a channel's
// members by worker between publishes, gives the members as they are
// after each kind of change: a subscribe, an unsubscribe, a link that
// leaves every channel, the last member gone and a new first one.
func TestMembersByFollowsChanges(t *testing.T) {
	h := newHub()
	l := hubLinks(4)
	check := func(step string, w0, w1 []*LinkRecord) {
		t.Helper()
		got := h.membersBy("c", 2)
		require.Len(t, got, 2, step)
		assert.ElementsMatch(t, w0, got[0], "%s: worker 0", step)
		assert.ElementsMatch(t, w1, got[1], "%s: worker 1", step)
		assert.Equal(t, got, h.membersBy("c", 2), "%s: asked again", step)
	}
	check("no channel", nil, nil)
	h.subscribe(l[0], "c")
	h.subscribe(l[1], "c")
	check("two members", l[0:1], l[1:2])
	h.subscribe(l[2], "c")
	check("a subscribe", []*LinkRecord{l[0], l[2]}, l[1:2])
	h.subscribe(l[3], "other")
	check("another channel's subscribe", []*LinkRecord{l[0], l[2]}, l[1:2])
	h.unsubscribe(l[0], "c")
	check("an unsubscribe", l[2:3], l[1:2])
	h.leave(l[1])
	check("a link gone", l[2:3], nil)
	h.unsubscribe(l[2], "c")
	check("the last gone", nil, nil)
	assert.Zero(t, h.len()-1, "channel c is gone, other is left")
	h.subscribe(l[3], "c")
	check("a new first member", nil, l[3:4])
}

// TestMembersByShared: publishes to a channel whose members did not
// change copy no member set (before, each publish, local or from another
// node, copied the set by worker, growing each worker's slice).
func TestMembersByShared(t *testing.T) {
	h := newHub()
	for _, l := range hubLinks(1000) {
		h.subscribe(l, "c")
	}
	first := h.membersBy("c", 2)
	require.Len(t, first[0], 500)
	require.Len(t, first[1], 500)
	allocs := testing.AllocsPerRun(100, func() { _ = h.membersBy("c", 2) })
	assert.Zero(t, allocs, "allocations per membersBy of an unchanged channel")
}
