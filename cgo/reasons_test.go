package cgo

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lwsgate/lwsgate/callbacks"
)

// TestReasonsMatchHeaders checks every callbacks.Reason against the C
// enumerator of the headers this package was compiled against, both ways:
// every enumerator the headers define has a constant with the same name and
// value, and no constant claims a name the headers give another value.
func TestReasonsMatchHeaders(t *testing.T) {
	table := ReasonTable()
	require.NotEmpty(t, table)
	byName := map[string]callbacks.Reason{}
	for _, r := range callbacks.Reasons() {
		byName[r.String()] = r
	}
	for name, v := range table {
		r, ok := byName[name]
		if assert.True(t, ok, "%s (%d) has no callbacks constant", name, v) {
			assert.Equal(t, v, int(r), name)
		}
	}
	// Constants missing from these headers belong to other releases.
	missing := 0
	for name := range byName {
		if _, ok := table[name]; !ok {
			missing++
		}
	}
	assert.LessOrEqual(t, missing, 4, "only a handful of reasons are release-specific")
	t.Logf("libwebsockets headers %d: %d reasons checked, %d belong to other releases", HeaderVersionNumber, len(table), missing)
}

func TestPre(t *testing.T) {
	assert.Greater(t, Pre, 0)
	assert.Zero(t, Pre%8, "LWS_PRE is padded to the word size")
}

func TestVersionMatchesHeaders(t *testing.T) {
	v := Version()
	assert.NotEmpty(t, v)
	assert.Contains(t, LinkInfo, "pkg-config")
}

func TestFlagsMatchShim(t *testing.T) {
	for name, v := range shimFlags {
		assert.Equal(t, v[1], v[0], "callbacks.%s and its LWSGO_F_* bit", name)
	}
}
