package main

import (
	"fmt"
	"io"
	"time"
)

// result is one setup's figures in one round. Concurrency: a value.
type result struct {
	engine string
	nodes  int
	subs   int
	round  int
	idle   float64 // the servers' CPU with no traffic, cores
	paced  phase
	load   phase // -load-rate, the same offered load for every setup
	max    phase
}

// phase is what one phase measured. Concurrency: a value.
type phase struct {
	publishes, delivered int64
	elapsed              time.Duration   // the CPU's span: driven and the last deliveries' 100 ms
	driven               time.Duration   // publishing: the rates' span
	cpu                  time.Duration   // the servers'
	cpuEach              []time.Duration // each server's, the publisher's first
	p50l, p99l           time.Duration   // on the publisher's node
	p50o, p99o           time.Duration   // on the others
	nl, no               int             // latency samples
}

// kept is the share of the deliveries due (every publish to each of subs
// subscribers) that the subscribers counted.
func (p phase) kept(subs int) float64 {
	if p.publishes == 0 || subs == 0 {
		return 0
	}
	return float64(p.delivered) / float64(p.publishes*int64(subs))
}

func (p phase) perDelivery() time.Duration {
	if p.delivered == 0 {
		return 0
	}
	return p.cpu / time.Duration(p.delivered)
}

// netPerDelivery is perDelivery without the servers' idle CPU (cores)
// over the phase.
func (p phase) netPerDelivery(idle float64) time.Duration {
	if p.delivered == 0 {
		return 0
	}
	return (p.cpu - time.Duration(idle*float64(p.elapsed))) / time.Duration(p.delivered)
}

func run(cfg config, engine string, round int) (*result, error) {
	nodes, err := startNodes(cfg, engine, round)
	if err != nil {
		return nil, err
	}
	defer stopNodes(nodes)
	l, err := openLoad(cfg, engine, nodes)
	if err != nil {
		return nil, err
	}
	defer l.close()
	res := &result{engine: engine, nodes: len(nodes), subs: cfg.subs, round: round + 1}
	if res.idle, err = idle(cfg, nodes); err != nil {
		return nil, err
	}
	l.sampling.Store(true)
	res.paced, err = measure(cfg, l, nodes, pacedAt(cfg.rate))
	l.sampling.Store(false)
	if err != nil {
		return nil, err
	}
	if !cfg.latencyOnly {
		if cfg.loadRate > 0 {
			if res.load, err = measure(cfg, l, nodes, pacedAt(cfg.loadRate)); err != nil {
				return nil, err
			}
		}
		if res.max, err = measure(cfg, l, nodes, saturated); err != nil {
			return nil, err
		}
	}
	if e := l.firstErr.Load(); e != nil {
		return nil, *e
	}
	return res, nil
}

// A driver publishes from seq on until stop, returning the next seq.
type driver func(cfg config, l *load, seq uint64, stop time.Time) (uint64, error)

// pacedAt publishes rate a second, whatever the servers make of it (an
// open loop: a setup that falls behind shows in its deliveries).
func pacedAt(rate int) driver {
	return func(_ config, l *load, seq uint64, stop time.Time) (uint64, error) {
		every := time.Second / time.Duration(rate)
		next := time.Now()
		for time.Now().Before(stop) {
			if err := l.publish(seq); err != nil {
				return seq, err
			}
			seq++
			next = next.Add(every)
			time.Sleep(time.Until(next))
		}
		return seq, nil
	}
}

// saturated keeps cfg.window publishes in flight.
func saturated(cfg config, l *load, seq uint64, stop time.Time) (uint64, error) {
	inflight := 0
	for time.Now().Before(stop) {
		for ; inflight < cfg.window; inflight++ {
			if err := l.publish(seq); err != nil {
				return seq, err
			}
			seq++
		}
		select {
		case <-l.done:
			inflight--
		case <-time.After(5 * time.Second):
			return seq, fmt.Errorf("no publish reached every subscriber in 5s (%d in flight): a message lost?", inflight)
		}
	}
	// Let the last ones land before the next phase.
	for ; inflight > 0; inflight-- {
		select {
		case <-l.done:
		case <-time.After(5 * time.Second):
			return seq, fmt.Errorf("%d publishes never reached every subscriber", inflight)
		}
	}
	return seq, nil
}

// idle is the servers' CPU, in cores, over a second of no traffic (the
// cluster's leases and RAFT heartbeats): it is in every phase's figure.
func idle(cfg config, nodes []*node) (float64, error) {
	c0, err := cpuTime(nodes)
	if err != nil {
		return 0, err
	}
	start := time.Now()
	time.Sleep(max(time.Second, cfg.dur/2))
	c1, err := cpuTime(nodes)
	if err != nil {
		return 0, err
	}
	_, sum := since(c0, c1)
	return sum.Seconds() / time.Since(start).Seconds(), nil
}

var seqs uint64 // the next publish's seq, across phases

// measure runs drive for a warm-up, then for cfg.dur while recording.
func measure(cfg config, l *load, nodes []*node, drive driver) (phase, error) {
	var ph phase
	var err error
	l.reset()
	if seqs, err = drive(cfg, l, seqs, time.Now().Add(cfg.warmup)); err != nil {
		return ph, err
	}
	time.Sleep(100 * time.Millisecond) // the warm-up's last deliveries
	l.reset()
	cpu0, err := cpuTime(nodes)
	if err != nil {
		return ph, err
	}
	first := seqs
	start := time.Now()
	l.recording.Store(true)
	if seqs, err = drive(cfg, l, seqs, start.Add(cfg.dur)); err != nil {
		return ph, err
	}
	ph.driven = time.Since(start)
	// Deliveries of the last publishes, for the paced phase (the max
	// phase has waited for them).
	time.Sleep(100 * time.Millisecond)
	l.recording.Store(false)
	ph.elapsed = time.Since(start)
	cpu1, err := cpuTime(nodes)
	if err != nil {
		return ph, err
	}
	ph.cpuEach, ph.cpu = since(cpu0, cpu1)
	ph.publishes = int64(seqs - first)
	ph.delivered = l.delivered.Load()
	l.mu.Lock()
	ph.nl, ph.no = len(l.local), len(l.other)
	ph.p50l, ph.p99l = quantiles(l.local)
	ph.p50o, ph.p99o = quantiles(l.other)
	l.mu.Unlock()
	return ph, nil
}

func report(w io.Writer, rs []*result) {
	fmt.Fprintln(w, "\n| engine | nodes | round | idle CPU | paced publishes/s | deliveries/s | p50 / p99 same node | p50 / p99 other node | server CPU/delivery (net of idle) | at -load-rate: publishes/s, delivered, server CPU/delivery | max publishes/s | max deliveries/s | server CPU/delivery at max |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|---|---|---|---|---|---|")
	for _, r := range rs {
		p, ld, m := r.paced, r.load, r.max
		other := "-"
		if p.no > 0 {
			other = fmt.Sprintf("%v / %v", us(p.p50o), us(p.p99o))
		}
		atLoad := "-"
		if ld.publishes > 0 {
			atLoad = fmt.Sprintf("%.0f, %.1f%%, %v", rate(ld.publishes, ld.driven), 100*ld.kept(r.subs), ns(ld.perDelivery()))
		}
		fmt.Fprintf(w, "| %s | %d | %d | %.1f%% | %.0f | %.0f | %v / %v | %s | %v (%v) | %s | %.0f | %.0f | %v |\n",
			r.engine, r.nodes, r.round, 100*r.idle, rate(p.publishes, p.driven), rate(p.delivered, p.driven),
			us(p.p50l), us(p.p99l), other, ns(p.perDelivery()), ns(p.netPerDelivery(r.idle)), atLoad,
			rate(m.publishes, m.driven), rate(m.delivered, m.driven), ns(m.perDelivery()))
	}
	for _, r := range rs {
		if r.nodes > 1 {
			fmt.Fprintf(w, "%s round %d, server CPU per node (the publisher's first): paced %v, at -load-rate %v, max %v\n",
				r.engine, r.round, r.paced.cpuEach, r.load.cpuEach, r.max.cpuEach)
		}
	}
	// The target: cross-node CPU per delivery at most 1.25x
	// single-node, judged on each round's pair at the same offered load
	// (-load-rate; see the package comment for why not the max phase).
	byRound := map[int]map[string]*result{}
	for _, r := range rs {
		if byRound[r.round] == nil {
			byRound[r.round] = map[string]*result{}
		}
		byRound[r.round][r.engine] = r
	}
	ratio := func(a, b time.Duration) string {
		if a == 0 || b == 0 {
			return "-"
		}
		return fmt.Sprintf("%.2fx", float64(a)/float64(b))
	}
	for round := 1; round <= len(byRound); round++ {
		mem := byRound[round][engineMemory]
		if mem == nil || mem.paced.perDelivery() == 0 {
			continue
		}
		for _, e := range []string{engineNATS, engineMemory3} {
			r := byRound[round][e]
			if r == nil {
				continue
			}
			var verdict string
			switch {
			case e == engineMemory3:
				verdict = " (three processes and no NATS: the shape's own cost)"
			case r.load.perDelivery() == 0 || mem.load.perDelivery() == 0:
				verdict = " (no load phase: no verdict)"
			default:
				verdict = " (target at -load-rate <= 1.25x: missed)"
				if float64(r.load.perDelivery()) <= 1.25*float64(mem.load.perDelivery()) {
					verdict = " (target at -load-rate <= 1.25x: met)"
				}
				if r.load.kept(r.subs) < keptEnough || mem.load.kept(mem.subs) < keptEnough {
					verdict = " (at -load-rate a setup fell behind: no verdict; lower -load-rate)"
				}
			}
			fmt.Fprintf(w, "round %d: CPU per delivery, %s / memory: paced %s (net of idle %s), at -load-rate %s, max %s%s\n", round, e,
				ratio(r.paced.perDelivery(), mem.paced.perDelivery()),
				ratio(r.paced.netPerDelivery(r.idle), mem.paced.netPerDelivery(mem.idle)),
				ratio(r.load.perDelivery(), mem.load.perDelivery()),
				ratio(r.max.perDelivery(), mem.max.perDelivery()), verdict)
		}
	}
}

// keptEnough is the share of a paced phase's deliveries (publishes times
// subscribers) a setup must make for its CPU per delivery to count: one
// that falls behind is measured at a lower load than the others.
const keptEnough = 0.99

func rate(n int64, d time.Duration) float64 { return float64(n) / d.Seconds() }

func us(d time.Duration) string { return fmt.Sprintf("%.0fus", float64(d)/1e3) }

func ns(d time.Duration) string { return fmt.Sprintf("%dns", d.Nanoseconds()) }
