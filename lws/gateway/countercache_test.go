package gateway

import (
	"strconv"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestCounterCache: what is counted through the cache is counted in the
// vector, for keys past counterCacheMax too, where the cache stops
// growing.
func TestCounterCache(t *testing.T) {
	vec := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "t_total"}, []string{"k"})
	c := counterCache[int]{vec: vec, labels: func(k int) []string { return []string{strconv.Itoa(k)} }}
	for k := range counterCacheMax + 10 {
		for range k%3 + 1 {
			c.get(k).Inc()
		}
	}
	for k := range counterCacheMax + 10 {
		var m dto.Metric
		require.NoError(t, vec.WithLabelValues(strconv.Itoa(k)).Write(&m))
		assert.Equal(t, float64(k%3+1), m.GetCounter().GetValue(), "key %d", k)
	}
	assert.Len(t, *c.m.Load(), counterCacheMax, "the cache stops growing")
}
