package gateway

import (
	"maps"
	"sync"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
)

// counterCache is a CounterVec whose counters are looked up once per key
// K: WithLabelValues hashes the label values and takes the vector's lock,
// which every link paid twice (opened, closed), and a close code had to
// be formatted for it each time.
//
// The cache is a map replaced whole when a key is added, so that a hit
// takes no lock; it stops growing at counterCacheMax keys (a peer picks
// its close code), and later keys go to the vector each time.
//
// Concurrency: safe from any goroutine. Nothing may delete the vector's
// counters (DeleteLabelValues, Reset), which would leave the cached ones
// counting where no scrape sees them.
type counterCache[K comparable] struct {
	vec    *prometheus.CounterVec
	labels func(K) []string // the label values of a key, in the vector's order
	m      atomic.Pointer[map[K]prometheus.Counter]
	mu     sync.Mutex // adding a key
}

// counterCacheMax is how many keys a counterCache keeps.
const counterCacheMax = 256

// get returns the counter of key k.
func (c *counterCache[K]) get(k K) prometheus.Counter {
	if m := c.m.Load(); m != nil {
		if ctr, ok := (*m)[k]; ok {
			return ctr
		}
	}
	ctr := c.vec.WithLabelValues(c.labels(k)...)
	c.mu.Lock()
	defer c.mu.Unlock()
	old := c.m.Load()
	m := map[K]prometheus.Counter{}
	if old != nil {
		if len(*old) >= counterCacheMax {
			return ctr
		}
		m = maps.Clone(*old)
	}
	m[k] = ctr
	c.m.Store(&m)
	return ctr
}
