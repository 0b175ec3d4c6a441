package main

import (
	"fmt"
	"slices"
	"strings"
)

// reportScaling writes the scaling section (issue 16): lwsgate with two
// workers against one, native lws and gws, with server and load sharing
// both CPUs.
func reportScaling(b *strings.Builder, o *opts, srvs []server, scens []scenario, samples []sample) {
	p := func(format string, a ...any) { fmt.Fprintf(b, format, a...) }
	med := func(srv, scen string, f func(sample) float64) float64 { return medOf(samplesOf(samples, srv, scen), f) }
	cpu := func(s sample) float64 { return s.CPUusPerOp }
	rate := func(s sample) float64 { return s.Rate }
	cores := func(s sample) float64 { return s.ServerCPU }
	mark := func(ok bool) string {
		if ok {
			return "✓"
		}
		return "✗"
	}
	has := func(name string) bool {
		return slices.ContainsFunc(scens, func(sc scenario) bool { return sc.name == name })
	}
	running := func(sc string) []server {
		i := slices.IndexFunc(scens, func(s scenario) bool { return s.name == sc })
		var out []server
		for _, s := range srvs {
			if scens[i].runs(s) && len(samplesOf(samples, s.name, sc)) > 0 {
				out = append(out, s)
			}
		}
		return out
	}

	p("\n## Scaling over two cores (issue 16)\n\n")
	p("`lwsgate` runs one worker, `lwsgate-w2` two (two libwebsockets contexts, each on its own service thread, one port), native `lws` its one thread, `lws-w2` two (two contexts, a thread each, on two ports), `gws` a goroutine per link. But for (a), server and load tool share CPUs 0 and 1 (`taskset -c 0,1` for both), so these figures are of the whole machine, and `gws` runs on GOMAXPROCS 2; in (a), pinned to CPU 0, on GOMAXPROCS 1. Server CPU is in cores (1.00 = one core busy for the whole window).\n")

	if has("scale-paced") {
		const sc = "scale-paced"
		p("\n**(a) Cost at equal load.** %d messages a second offered in all over 100 links, released every %v (`wsload -tick`), which saturates neither core, the server on CPU 0 (both workers of `lwsgate-w2` too) and the load on CPU 1, as in the scenarios above: sharing both CPUs, the figure depended on whether the scheduler put a worker on the load tool's CPU (see the notes at the end); CPU per message with two workers against one (target: at most 1.05×). `behind`: messages due that no link could send because the server had not answered (0 when the server kept up).\n\n", o.paced, pacedTick)
		p("| server | msgs/s | behind | CPU µs/op | ×lwsgate | server CPU |\n|---|---|---|---|---|---|\n")
		base := med("lwsgate", sc, cpu)
		for _, s := range running(sc) {
			c := med(s.name, sc, cpu)
			p("| %s | %.0f | %.0f | %.2f | %s | %.2f |\n", s.name, med(s.name, sc, rate),
				med(s.name, sc, func(x sample) float64 { return float64(x.Behind) }), c, ratioOf(c, base), med(s.name, sc, cores))
		}
		if w1, w2 := base, med("lwsgate-w2", sc, cpu); w1 > 0 && w2 > 0 {
			p("\nTwo workers cost %.2f× one worker's CPU per message %s.\n", w2/w1, mark(w2/w1 <= 1.05))
		}
		if n1, n2 := med("lws", sc, cpu), med("lws-w2", sc, cpu); n1 > 0 && n2 > 0 {
			p("Native libwebsockets' two contexts cost %.2f× its one's: the same design in C, with no binding.\n", n2/n1)
		}
	}

	if has("scale-max") {
		const sc = "scale-max"
		p("\n**(b) Capacity per core.** 100 links pipelined as fast as they go, server and load sharing both cores: messages a second divided by the cores the server used (target: two workers within 10%% of one worker's figure, that is at least 0.90×).\n\n")
		p("| server | msgs/s | server CPU | msgs/s per core | ×lwsgate | load CPU |\n|---|---|---|---|---|---|\n")
		base := med("lwsgate", sc, perCore)
		for _, s := range running(sc) {
			v := med(s.name, sc, perCore)
			p("| %s | %.0f | %.2f | %.0f | %s | %.2f |\n", s.name, med(s.name, sc, rate), med(s.name, sc, cores), v, ratioOf(v, base),
				med(s.name, sc, func(x sample) float64 { return x.LoadCPU }))
		}
		if w1, w2 := base, med("lwsgate-w2", sc, perCore); w1 > 0 && w2 > 0 {
			p("\nTwo workers give %.2f× one worker's messages per core %s.\n", w2/w1, mark(w2/w1 >= 0.90))
		}
		if n1, n2 := med("lws", sc, perCore), med("lws-w2", sc, perCore); n1 > 0 && n2 > 0 {
			p("Native libwebsockets' two contexts give %.2f× its one's.\n", n2/n1)
		}
	}

	projection(p, med)

	var bal []scenario
	for _, sc := range scens {
		if sc.balance {
			bal = append(bal, sc)
		}
	}
	if len(bal) > 0 {
		p("\n**(c) Balance.** `lwsgate-w2`'s links and messages per worker, read from its `lwsgate_worker_links` and `lwsgate_worker_messages_total` while every link was open (the load tool's links ping-pong 32 B); busiest ÷ mean, per round (target: at most 1.2).\n\n")
		p("| links | round | links per worker | busiest ÷ mean | messages per worker | busiest ÷ mean |\n|---|---|---|---|---|---|\n")
		for _, sc := range bal {
			for _, s := range samples {
				if s.Scenario != sc.name || s.Server != "lwsgate-w2" || s.Failed != "" {
					continue
				}
				l, m := make([]float64, len(s.Workers)), make([]float64, len(s.Workers))
				for i, w := range s.Workers {
					l[i], m[i] = w.Links, w.Messages
				}
				lb, mb := busiest(l), busiest(m)
				p("| %s | %d | %s | %.2f %s | %s | %.2f %s |\n", strings.TrimPrefix(sc.name, "balance-"), s.Round,
					joinCounts(l), lb, mark(lb <= 1.2), joinCounts(m), mb, mark(mb <= 1.2))
			}
		}
	}
}

// busiest is the largest of v over their mean (1 when even).
func busiest(v []float64) float64 {
	var sum, most float64
	for _, x := range v {
		sum += x
		most = max(most, x)
	}
	if sum == 0 {
		return 0
	}
	return most / (sum / float64(len(v)))
}

func joinCounts(v []float64) string {
	out := make([]string, len(v))
	for i, x := range v {
		out[i] = fmt.Sprintf("%.0f", x)
	}
	return strings.Join(out, " / ")
}

// projection says what 16 cores should give, from (a) and (b), and what
// these runs cannot show.
func projection(p func(string, ...any), med func(srv, scen string, f func(sample) float64) float64) {
	w1, w2 := med("lwsgate", "scale-max", perCore), med("lwsgate-w2", "scale-max", perCore)
	c1, c2 := med("lwsgate", "scale-paced", func(s sample) float64 { return s.CPUusPerOp }), med("lwsgate-w2", "scale-paced", func(s sample) float64 { return s.CPUusPerOp })
	if w1 == 0 || w2 == 0 || c1 == 0 || c2 == 0 {
		return
	}
	p("\n**What 16 cores should give.** On this machine a second worker kept %.2f× one worker's messages per core and cost %.2f× its CPU per message at equal load. A worker shares nothing with the others on an echoed message (its own lws context, service thread, routing scratch and counters; frame buffers come from sync.Pool, whose caches are per core), so if that held from 2 workers to 16, `workers: 16` would give about 16 × %.0f ≈ %.1f million 32-byte echoes a second, the load coming from other machines. That is a projection from two cores, not a measurement. What these runs cannot show: the state still shared by the workers (the link table, the channel hub and the route table, each behind one mutex, taken when a link opens or closes and on subscribe and publish, never on an echoed message), the acceptor (one goroutine accepts every connection of a listener and hands it to the least-loaded worker, so the connect rate does not grow with workers), and what the kernel, memory bandwidth and the network card give at that rate.\n",
		w2/w1, c2/c1, w2, 16*w2/1e6)
}

// perCore is a sample's operations a second per core the server used.
func perCore(s sample) float64 {
	if s.ServerCPU == 0 {
		return 0
	}
	return s.Rate / s.ServerCPU
}
