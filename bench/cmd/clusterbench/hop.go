package main

// The hop phase of make bench-cluster (-hop-subs, on by default): the
// paced phase again on each setup, with a handful of subscribers, for
// latency alone. With -subs 1000 a publish's deliveries take
// milliseconds to write and to read on two cores, so the paced phase's
// p99 is mostly the fan-out, on one node as on three; with a few
// subscribers it is the time a message takes from the publisher to a
// link on another node. Its CPU per delivery is not reported: with few
// members per node a publish's own cost (the hop itself) dominates it.

import (
	"flag"
	"fmt"
	"io"
	"time"
)

var (
	hopSubs = flag.Int("hop-subs", 30, "subscribers in the hop latency phase; 0: skip it")
	hopRate = flag.Int("hop-rate", 200, "publishes a second in the hop latency phase")
)

// hopTarget: issue 17's bound on the publish-to-delivery p99 on another
// node, on an idle machine.
const hopTarget = 2 * time.Millisecond

// runHop measures the hop phase on each of cfg's engines, once.
func runHop(cfg config, w io.Writer) error {
	if *hopSubs < 3 || *hopRate < 1 {
		return fmt.Errorf("-hop-subs: want at least 3 (or 0 to skip); -hop-rate: want at least 1")
	}
	hc := cfg
	hc.subs, hc.rate, hc.latencyOnly = *hopSubs, *hopRate, true
	fmt.Fprintf(w, "\nhop latency: %d subscribers, paced %d publishes/s, %v; load average before: %s\n\n", hc.subs, hc.rate, hc.dur, loadavg())
	fmt.Fprintln(w, "| engine | nodes | p50 / p99 same node | p50 / p99 other node | samples same / other |")
	fmt.Fprintln(w, "|---|---|---|---|---|")
	var verdicts []string // after the table
	for _, e := range hc.engines {
		if publisherOnEach(e) {
			continue // no hop between its nodes
		}
		r, err := run(hc, e, 0)
		if err != nil {
			return fmt.Errorf("%s: %w", e, err)
		}
		p := r.paced
		other := "-"
		if p.no > 0 {
			other = fmt.Sprintf("%v / %v", us(p.p50o), us(p.p99o))
		}
		fmt.Fprintf(w, "| %s | %d | %v / %v | %s | %d / %d |\n", r.engine, r.nodes, us(p.p50l), us(p.p99l), other, p.nl, p.no)
		if p.no > 0 {
			verdict := "met"
			if p.p99o > hopTarget {
				verdict = "missed"
			}
			verdicts = append(verdicts, fmt.Sprintf("%s: p99 on another node %v (target <= %v on an idle machine: %s)", r.engine, us(p.p99o), us(hopTarget), verdict))
		}
	}
	for _, v := range verdicts {
		fmt.Fprintln(w, v)
	}
	return nil
}
