// Command clusterbench measures channel fan-out on the memory engine (one
// lwsgate) and across a three-node cluster (three lwsgate processes on
// this machine, embedded NATS), in one run (make bench-cluster). Its
// control, memory3, is three lwsgate processes on the memory engine that
// know nothing of each other, a publisher link on each and every publish
// sent on all three: the cost of three processes sharing the cores, with
// no NATS, so that the cluster's ratio to one node can be split into the
// shape's part and NATS' part.
//
// For each setup it opens -subs subscribers of one channel, spread
// round-robin over the nodes, and one publisher link on the first node,
// which publishes by the default publish rule. Three phases follow, each
// after a warm-up:
//
//	paced  -rate publishes a second for -d: the publish-to-delivery
//	       latency (p50, p99) on the publisher's node and on the others
//	       (every message carries its send time; one clock, one machine)
//	load   -load-rate publishes a second for -d, the same offered load
//	       for every setup, well under what each can carry
//	max    at most -window publishes in flight (a publish is done when
//	       every subscriber has it) for -d: publishes and deliveries a
//	       second
//
// and, for each, the servers' CPU per delivery: utime+stime of every
// lwsgate process from /proc/PID/stat over the phase, divided by the
// deliveries the subscribers counted. Then the hop phase (hop.go): the
// paced phase alone, with -hop-subs subscribers, for the latency of one
// message between nodes without a large fan-out in it. On a shared machine that is the
// figure to trust; rates and latencies move with the load (the load
// average is printed). The load (subscribers, publisher) runs in this
// process, on the same cores as the servers.
//
// Which CPU per delivery the target (three nodes at most 1.25x
// one node) is judged on: the load phase's. A delivery's cost falls as
// the load rises, because a link written less often gets more messages
// in one send(2), and on loopback each send also pays for waking the
// reader (the load generator's subscriber threads). So CPU per delivery
// compares two setups only at the same load. The paced phase is that
// too, but at 20,000 deliveries a second the cluster's idle CPU (leases,
// RAFT heartbeats) is most of what it costs more than one node there; it
// is printed with and without it. The max phase is not: with a fixed number
// of publishes in flight, a setup whose deliveries take longer (a hop
// between nodes) has fewer of them waiting at the servers, so it writes
// each link in shorter runs; its CPU per delivery moves with -window as
// much as with the code (one node 1,001-1,019 ns at 16 in flight against
// 831-849 at 64, three nodes 1.47-1.56x of that against 1.26-1.37x:
// two runs of each, interleaved, 2026-12-07).
//
// Why a command of its own rather than a wsload mode: wsload measures
// one server with echo round trips, and benchrun starts one server per
// scenario pinned to one CPU; this is one-to-many, against one process
// or three, with the latency taken at the receiver.
package main

import (
	"flag"
	"fmt"
	"os"
	"strings"
	"time"
)

// The setups (-engines).
const (
	engineMemory  = "memory"  // one node
	engineNATS    = "nats"    // three nodes, embedded NATS
	engineMemory3 = "memory3" // three memory nodes unaware of each other
)

// publisherOnEach reports whether engine's setup has a publisher link on
// every node, each publish sent on all of them (memory3: its nodes share
// nothing), rather than one on the first node.
func publisherOnEach(engine string) bool { return engine == engineMemory3 }

// config is the run's settings, from the flags. Concurrency: set in main,
// then read only.
type config struct {
	bin           string
	subs, window  int
	rate          int
	loadRate      int // 0: no load phase
	workers       int
	size          int
	dur, warmup   time.Duration
	rounds        int
	latencyOnly   bool // the paced phase alone (the hop phase)
	engines       []string
	dir           string
	loadavgBefore string
}

func main() {
	var cfg config
	var engines string
	flag.StringVar(&cfg.bin, "lwsgate", "bin/lwsgate", "the lwsgate binary")
	flag.IntVar(&cfg.subs, "subs", 1000, "subscribers, spread over the nodes")
	flag.IntVar(&cfg.rate, "rate", 20, "publishes a second in the paced phase")
	flag.IntVar(&cfg.workers, "workers", 0, "each node's service threads (lwsgate's workers); 0: its default, one per CPU")
	flag.IntVar(&cfg.loadRate, "load-rate", 300, "publishes a second in the load phase, the same for every setup; 0: skip it")
	flag.IntVar(&cfg.window, "window", 16, "publishes in flight in the max phase")
	flag.IntVar(&cfg.size, "size", 64, "bytes of padding in each published message")
	flag.DurationVar(&cfg.dur, "d", 5*time.Second, "measured duration of each phase")
	flag.DurationVar(&cfg.warmup, "warmup", time.Second, "warm-up before each phase")
	flag.IntVar(&cfg.rounds, "rounds", 1, "rounds; each runs every engine, the order alternating")
	flag.StringVar(&engines, "engines", "memory,nats,memory3", "setups to measure: memory (one node), nats (three nodes), memory3 (three memory nodes unaware of each other, a publisher on each: three processes without NATS); none: only the history phases")
	flag.Parse()
	if engines != "none" {
		cfg.engines = strings.Split(engines, ",")
	}
	if cfg.subs < 3 || cfg.rate < 1 || cfg.loadRate < 0 || cfg.window < 1 || cfg.size < 0 || cfg.dur <= 0 || cfg.rounds < 1 || cfg.workers < 0 {
		fmt.Fprintln(os.Stderr, "clusterbench: -subs >= 3, -rate >= 1, -load-rate >= 0, -window >= 1, -size >= 0, -d > 0, -rounds >= 1, -workers >= 0")
		os.Exit(2)
	}
	for _, e := range cfg.engines {
		if e != engineMemory && e != engineNATS && e != engineMemory3 {
			fmt.Fprintf(os.Stderr, "clusterbench: -engines: %q is not memory, nats or memory3\n", e)
			os.Exit(2)
		}
	}
	dir, err := os.MkdirTemp("", "clusterbench-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "clusterbench:", err)
		os.Exit(1)
	}
	defer os.RemoveAll(dir)
	cfg.dir = dir

	fmt.Printf("clusterbench: %d subscribers, paced %d publishes/s, load phase %d publishes/s, max phase %d in flight, %v per phase; load average before: %s\n",
		cfg.subs, cfg.rate, cfg.loadRate, cfg.window, cfg.dur, loadavg())
	var results []*result
	for r := range cfg.rounds {
		order := cfg.engines
		if r%2 == 1 {
			order = reversed(order)
		}
		for _, e := range order {
			res, err := run(cfg, e, r)
			if err != nil {
				fmt.Fprintf(os.Stderr, "clusterbench: %s, round %d: %v\n", e, r+1, err)
				os.Exit(1)
			}
			results = append(results, res)
		}
	}
	if len(results) > 0 {
		report(os.Stdout, results)
	}
	if *hopSubs > 0 && len(cfg.engines) > 0 {
		if err := runHop(cfg, os.Stdout); err != nil {
			fmt.Fprintln(os.Stderr, "clusterbench: hop:", err)
			os.Exit(1)
		}
	}
	if *histOn {
		if err := runHistory(cfg, os.Stdout); err != nil {
			fmt.Fprintln(os.Stderr, "clusterbench: history:", err)
			os.Exit(1)
		}
	}
	fmt.Printf("load average after: %s\n", loadavg())
}

func reversed(s []string) []string {
	out := make([]string, len(s))
	for i, v := range s {
		out[len(s)-1-i] = v
	}
	return out
}

func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}
