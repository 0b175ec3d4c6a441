package main

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

// atLoad is a result whose phases all delivered every publish to subs
// subscribers at cpu per delivery, 100 publishes in 1 s.
func atLoad(engine string, nodes, subs int, cpu time.Duration) *result {
	ph := phase{publishes: 100, delivered: int64(100 * subs), elapsed: time.Second, driven: time.Second}
	ph.cpu = cpu * time.Duration(ph.delivered)
	return &result{engine: engine, nodes: nodes, subs: subs, round: 1, paced: ph, load: ph, max: ph}
}

// TestReportVerdict: the target's verdict compares the load phases, and
// is withheld when a setup did not make its deliveries there.
func TestReportVerdict(t *testing.T) {
	for _, tc := range []struct {
		name     string
		nats     time.Duration // CPU per delivery at -load-rate; memory's is 1,000 ns
		behind   bool          // nats made 90% of its deliveries
		want     string
		wantLoad string
	}{
		{name: "met", nats: 1200 * time.Nanosecond, want: "target at -load-rate <= 1.25x: met", wantLoad: "at -load-rate 1.20x"},
		{name: "bound", nats: 1250 * time.Nanosecond, want: "target at -load-rate <= 1.25x: met", wantLoad: "at -load-rate 1.25x"},
		{name: "missed", nats: 1300 * time.Nanosecond, want: "target at -load-rate <= 1.25x: missed", wantLoad: "at -load-rate 1.30x"},
		{name: "behind", nats: 1000 * time.Nanosecond, behind: true, want: "fell behind: no verdict"},
		{name: "no load phase", nats: 0, want: "(no load phase: no verdict)", wantLoad: "at -load-rate -,"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mem := atLoad(engineMemory, 1, 1000, 1000*time.Nanosecond)
			nats := atLoad(engineNATS, 3, 1000, tc.nats)
			if tc.nats == 0 { // -load-rate 0: no load phase, as in run
				mem.load, nats.load = phase{}, phase{}
				nats.paced.cpu, nats.max.cpu = mem.paced.cpu, mem.max.cpu
			}
			// The other phases differ, so that a verdict taken from
			// them would show.
			nats.max.cpu *= 2
			nats.paced.cpu *= 3
			if tc.behind {
				nats.load.delivered = nats.load.delivered * 9 / 10
				nats.load.cpu = tc.nats * time.Duration(nats.load.delivered)
			}
			var b bytes.Buffer
			report(&b, []*result{mem, nats})
			var line string
			for l := range strings.Lines(b.String()) {
				if strings.HasPrefix(l, "round 1: CPU per delivery, nats / memory") {
					line = l
				}
			}
			if !strings.Contains(line, tc.want) {
				t.Fatalf("verdict line %q, want %q in it; report:\n%s", line, tc.want, b.String())
			}
			if tc.wantLoad != "" && !strings.Contains(line, tc.wantLoad) {
				t.Fatalf("verdict line %q, want %q in it", line, tc.wantLoad)
			}
			if !strings.Contains(line, "max 2.") || !strings.Contains(line, "paced 3.") {
				t.Fatalf("verdict line %q: the paced and max ratios are not the phases'", line)
			}
		})
	}
}

func TestKept(t *testing.T) {
	p := phase{publishes: 10, delivered: 995}
	if got := p.kept(100); got != 0.995 {
		t.Fatalf("kept(100) = %v, want 0.995", got)
	}
	if got := (phase{}).kept(100); got != 0 {
		t.Fatalf("kept of an empty phase = %v, want 0", got)
	}
}
