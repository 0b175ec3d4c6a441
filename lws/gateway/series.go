package gateway

import (
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// The console's charts come from the gateway itself: a sampler reads
// the gateway's own metrics (the counters /metrics shows) once a second
// and keeps the last seriesKeep samples, rates and counts per second, in
// a ring. No Prometheus server is needed, and nothing on the message
// path changes: the sampler reads counters that are there anyway.

const (
	seriesEvery = time.Second
	seriesKeep  = 600 // ten minutes
)

// Sample is one second of the gateway, as the console charts it.
//
// Concurrency: a value.
type Sample struct {
	Seq  uint64 `json:"seq"` // 1 for the first sample, then one more each
	Time int64  `json:"t"`   // unix milliseconds
	// Links by type, at the sample's time.
	Links map[string]int `json:"links"`
	// Rates over the second before: links opened, WebSocket messages
	// and their payload bytes received (in) and queued to links (out).
	Opened   float64 `json:"opened"`
	MsgsIn   float64 `json:"msgs_in"`
	MsgsOut  float64 `json:"msgs_out"`
	BytesIn  float64 `json:"bytes_in"`
	BytesOut float64 `json:"bytes_out"`
	// Counts over the second before: links closed by close code, and
	// connections refused: upgrades by HTTP status ("401", "403",
	// "503"), admission limits by name ("max_links", "accept_rate"...).
	Closes  map[string]int `json:"closes,omitempty"`
	Refused map[string]int `json:"refused,omitempty"`
}

// series samples the gateway once a second.
//
// Concurrency: safe from any goroutine; sample runs on the sampler's.
type series struct {
	mu   sync.Mutex
	ring [seriesKeep]Sample
	n    uint64 // samples taken; the last is ring[(n-1)%seriesKeep]

	// The sampler's previous reading (its goroutine only).
	prev     counterReading
	prevTime time.Time
}

// counterReading is the cumulative counters a sample is the difference
// of.
type counterReading struct {
	opened, msgsIn, msgsOut, bytesIn, bytesOut float64
	closes, refused                            map[string]float64
}

// read reads the gateway's counters now.
func (g *Gateway) readCounters() counterReading {
	m := g.metrics
	t := g.msgTotals()
	r := counterReading{
		opened: sumVec(m.linksOpened), msgsIn: float64(t.msgsIn), msgsOut: float64(t.msgsOut),
		bytesIn: float64(t.bytesIn), bytesOut: float64(t.bytesOut),
		closes: byLabel(m.linksClosed, "code"), refused: byLabel(m.upgradeRefused, "status"),
	}
	for k, v := range byLabel(m.limitHits, "limit") {
		r.refused[k] += v
	}
	return r
}

// run samples every seriesEvery until stop is closed.
func (s *series) run(g *Gateway, stop <-chan struct{}) {
	t := time.NewTicker(seriesEvery)
	defer t.Stop()
	s.sample(g, time.Now())
	for {
		select {
		case now := <-t.C:
			s.sample(g, now)
		case <-stop:
			return
		}
	}
}

// sample takes one sample: the state now, and the rates since the last.
func (s *series) sample(g *Gateway, now time.Time) {
	cur := g.readCounters()
	sm := Sample{Time: now.UnixMilli(), Links: map[string]int{}}
	for _, t := range linkTypes {
		sm.Links[t] = g.links.count(t)
	}
	if !s.prevTime.IsZero() {
		secs := now.Sub(s.prevTime).Seconds()
		rate := func(a, b float64) float64 { return (a - b) / secs }
		sm.Opened = rate(cur.opened, s.prev.opened)
		sm.MsgsIn, sm.MsgsOut = rate(cur.msgsIn, s.prev.msgsIn), rate(cur.msgsOut, s.prev.msgsOut)
		sm.BytesIn, sm.BytesOut = rate(cur.bytesIn, s.prev.bytesIn), rate(cur.bytesOut, s.prev.bytesOut)
		sm.Closes, sm.Refused = deltas(cur.closes, s.prev.closes), deltas(cur.refused, s.prev.refused)
	}
	s.prev, s.prevTime = cur, now
	s.mu.Lock()
	s.n++
	sm.Seq = s.n
	s.ring[(s.n-1)%seriesKeep] = sm
	s.mu.Unlock()
}

// since returns the samples after seq that the ring still has, oldest
// first, and the last seq.
func (s *series) since(seq uint64) ([]Sample, uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	first := max(seq+1, 1)
	if s.n > seriesKeep {
		first = max(first, s.n-seriesKeep+1)
	}
	var out []Sample
	for k := first; k <= s.n; k++ {
		out = append(out, s.ring[(k-1)%seriesKeep])
	}
	return out, s.n
}

// deltas returns the counts that grew from prev to cur, by label.
func deltas(cur, prev map[string]float64) map[string]int {
	var out map[string]int
	for k, v := range cur {
		if d := int(v - prev[k]); d > 0 {
			if out == nil {
				out = map[string]int{}
			}
			out[k] = d
		}
	}
	return out
}

// byLabel sums a counter vector's counters by the value of one label.
func byLabel(v *prometheus.CounterVec, label string) map[string]float64 {
	out := map[string]float64{}
	ch := make(chan prometheus.Metric, 64)
	go func() { v.Collect(ch); close(ch) }()
	for pm := range ch {
		var m dto.Metric
		if pm.Write(&m) != nil {
			continue
		}
		key := ""
		for _, lp := range m.GetLabel() {
			if lp.GetName() == label {
				key = lp.GetValue()
			}
		}
		out[key] += m.GetCounter().GetValue()
	}
	return out
}

// sumVec sums a counter vector.
func sumVec(v *prometheus.CounterVec) float64 {
	return byLabel(v, "")[""]
}
