package gateway

import (
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// The per-message counters (issue 16): each worker counts its own
// messages, bytes, rule matches and routing times on cache lines no other
// worker writes, and /metrics sums them at scrape time. A Prometheus
// counter or histogram shared by every worker costs each message an atomic
// add on a line the other cores also write; with one worker per core that
// line moves between caches on every message.

// cacheLine is the size the counters are padded to (x86-64 and most
// arm64 cores).
const cacheLine = 64

// padded is a counter alone on its cache line.
type padded struct {
	atomic.Uint64
	_ [cacheLine - 8]byte
}

// msgCounters are one worker's WebSocket messages and payload bytes, in
// (its service goroutine counts them) and out (whoever queued the send:
// its service goroutine, a publish batch, the admin API).
//
// Concurrency: atomic; any goroutine.
type msgCounters struct {
	msgsIn, bytesIn, msgsOut, bytesOut padded
}

func (c *msgCounters) in(n int) {
	c.msgsIn.Add(1)
	c.bytesIn.Add(uint64(n))
}

func (c *msgCounters) out(n int) {
	c.msgsOut.Add(1)
	c.bytesOut.Add(uint64(n))
}

// msgSums is every worker's msgCounters added up.
type msgSums struct{ msgsIn, bytesIn, msgsOut, bytesOut uint64 }

func (g *Gateway) msgTotals() msgSums {
	var s msgSums
	for _, w := range g.workers {
		s.msgsIn += w.ctr.msgsIn.Load()
		s.bytesIn += w.ctr.bytesIn.Load()
		s.msgsOut += w.ctr.msgsOut.Load()
		s.bytesOut += w.ctr.bytesOut.Load()
	}
	return s
}

// ruleKey names a series of lwsgate_rule_matches_total.
type ruleKey struct{ rule, action string }

// ruleCounts holds lwsgate_rule_matches_total: for each rule and action,
// a counter per worker. A series outlives the rule set it was made for:
// a reload that keeps a rule's name and action counts on, so a counter
// never goes back.
//
// Concurrency: mu guards the map; the counters are atomic.
type ruleCounts struct {
	mu    sync.Mutex
	m     map[ruleKey][]padded
	order []ruleKey
}

// of returns the per-worker counters of (rule, action), made for workers
// workers on first use.
func (rc *ruleCounts) of(rule, action string, workers int) []padded {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	k := ruleKey{rule, action}
	c, ok := rc.m[k]
	if !ok {
		if rc.m == nil {
			rc.m = map[ruleKey][]padded{}
		}
		c = make([]padded, workers)
		rc.m[k] = c
		rc.order = append(rc.order, k)
	}
	return c
}

// counterCollector reports the per-worker counters, summed.
type counterCollector struct {
	g     *Gateway
	rules *ruleCounts
}

var (
	descMessages     = prometheus.NewDesc("lwsgate_messages_total", "WebSocket messages received (in) and queued to links (out).", []string{"direction"}, nil)
	descMessageBytes = prometheus.NewDesc("lwsgate_message_bytes_total", "Payload bytes of WebSocket messages, in and out.", []string{"direction"}, nil)
	descRuleHits     = prometheus.NewDesc("lwsgate_rule_matches_total", "Messages routed, by rule and action.", []string{"rule", "action"}, nil)
	descRouteSeconds = prometheus.NewDesc("lwsgate_route_seconds", "Time in the routing step per message (service goroutine), sampled: the first message, then one in "+strconv.Itoa(routeSample)+", on each worker.", nil, nil)
	// routeBuckets are lwsgate_route_seconds' upper bounds: 1 µs to 65 ms.
	routeBuckets = prometheus.ExponentialBuckets(1e-6, 4, 9)
)

// routeSample: one routing step in routeSample is timed (route).
const routeSample = 16

// newRouteHistogram is a worker's own lwsgate_route_seconds; it is not
// registered, the collector merges every worker's.
func newRouteHistogram() prometheus.Histogram {
	return prometheus.NewHistogram(prometheus.HistogramOpts{Name: "lwsgate_route_seconds", Buckets: routeBuckets})
}

func (c *counterCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descMessages, descMessageBytes, descRuleHits, descRouteSeconds, descWorkerMsgs} {
		ch <- d
	}
}

func (c *counterCollector) Collect(ch chan<- prometheus.Metric) {
	var count, sum = uint64(0), 0.0
	buckets := make(map[float64]uint64, len(routeBuckets))
	for _, w := range c.g.workers {
		ch <- prometheus.MustNewConstMetric(descWorkerMsgs, prometheus.CounterValue, float64(w.ctr.msgsIn.Load()), strconv.Itoa(w.id))
		var m dto.Metric
		if w.route.Write(&m) != nil || m.Histogram == nil {
			continue
		}
		count += m.Histogram.GetSampleCount()
		sum += m.Histogram.GetSampleSum()
		for _, b := range m.Histogram.Bucket {
			buckets[b.GetUpperBound()] += b.GetCumulativeCount()
		}
	}
	t := c.g.msgTotals()
	ch <- prometheus.MustNewConstMetric(descMessages, prometheus.CounterValue, float64(t.msgsIn), "in")
	ch <- prometheus.MustNewConstMetric(descMessages, prometheus.CounterValue, float64(t.msgsOut), "out")
	ch <- prometheus.MustNewConstMetric(descMessageBytes, prometheus.CounterValue, float64(t.bytesIn), "in")
	ch <- prometheus.MustNewConstMetric(descMessageBytes, prometheus.CounterValue, float64(t.bytesOut), "out")
	ch <- prometheus.MustNewConstHistogram(descRouteSeconds, count, sum, buckets)

	c.rules.mu.Lock()
	defer c.rules.mu.Unlock()
	for _, k := range c.rules.order {
		var n uint64
		for i := range c.rules.m[k] {
			n += c.rules.m[k][i].Load()
		}
		ch <- prometheus.MustNewConstMetric(descRuleHits, prometheus.CounterValue, float64(n), k.rule, k.action)
	}
}
