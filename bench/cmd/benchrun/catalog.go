// Command benchrun is the benchmark harness behind make bench (issue 6):
// it runs every scenario against every server, one fresh server process
// per measurement pinned to one core and the load tool (wsload) pinned to
// the other, interleaving the servers round by round (A B C, B C A, ...),
// and prints the medians with each server's ratio to native libwebsockets
// at its defaults. With -out it writes the report (BENCHMARKS.md).
//
// It does not build anything: scripts/bench.sh builds the servers and the
// load tool into -bin and then runs this.
package main

import (
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// What benchrun measures: the servers and the scenarios.

// server is one reference server or lwsgate.
type server struct {
	name, bin, what string
	args            func(port int) []string
	env             []string
	// scaleOnly: measured only in the scenarios that name it (the
	// scaling section), not in the one-core scenarios.
	scaleOnly bool
	// ports is how many ports the server listens on, from the one it is
	// given up (0 means 1): the load spreads its links over them.
	ports int
	// admin: in the balance scenarios the server (an lwsgate) serves its
	// admin API (adminAt's arguments), where they read each worker's
	// links and messages (metricsAt). Only there: lwsgate's admin API
	// turns on each link's trace of its callbacks (log.link_trace), a
	// clock read and a ring entry a callback, which the other scenarios
	// must not charge a server that runs without it elsewhere.
	admin bool
}

// adminPort is where a server started on port p serves its admin API
// (and /metrics), when it has one in the benchmark: adminAt's arguments
// to lwsgate, metricsAt the address.
func adminPort(p int) int { return p + 5000 }

func adminAt(p int) []string { return []string{"-admin", fmt.Sprintf("127.0.0.1:%d", adminPort(p))} }

func metricsAt(p int) string { return fmt.Sprintf("http://127.0.0.1:%d/metrics", adminPort(p)) }

// servers are the servers measured; with base (a directory holding an
// earlier build of lwsgate, lwspkgecho and lwsgate.yaml, made by
// scripts/bench.sh for BENCH_BASE) also lwsgate-base and lws-pkg-base, so
// that a change is measured against what it changes in one interleaved
// run.
func servers(bin, base string) []server {
	port := func(p int) string { return strconv.Itoa(p) }
	listen := func(p int) []string { return []string{"-listen", "127.0.0.1:" + port(p)} }
	gate := func(dir string, extra ...string) func(int) []string {
		return func(p int) []string {
			a := append([]string{"-config", filepath.Join(dir, "lwsgate.yaml")}, append(listen(p), "-trace=false", "-log-level", "warn", "-admin", "off")...)
			return append(a, extra...)
		}
	}
	gateEnv := []string{"LWSGATE_TOKEN_SECRET=bench-secret-bench-secret-bench"}
	out := []server{
		{name: "lws", bin: "lwsecho", what: "native libwebsockets (C), lws defaults: 4 KiB reads, RECEIVE chunks and sends",
			args: func(p int) []string { return []string{"-p", port(p)} }},
		{name: "lws-w2", bin: "lwsecho", what: "native libwebsockets as `lws` with two contexts, each on its own thread, on two ports (4.1.6 cannot share one), the load's links spread over both; measured in the scaling section only: what the same design costs in C",
			args: func(p int) []string { return []string{"-p", port(p), "-w", "2"} }, ports: 2, scaleOnly: true},
		{name: "lws-tuned", bin: "lwsecho", what: "native libwebsockets (C), pt_serv_buf_size and tx_packet_size 64 KiB",
			args: func(p int) []string { return []string{"-p", port(p), "-s", "65536", "-t", "65536"} }},
		{name: "lwsgate", bin: "lwsgate", what: "the lwsgate binary, one worker, at its default config (echo rule, link table, metrics) without its per-address link limits (lwsgate.yaml, made by scripts/bench.sh), reason log and admin API off; its createtoken signs a JWT",
			// One worker, as the native programs and the base
			// revisions (which have no -workers) have one thread.
			args: gate(bin, "-workers", "1"), env: gateEnv},
		{name: "lwsgate-w2", bin: "lwsgate", what: "lwsgate as above with two workers (two libwebsockets contexts, each on its own service thread, behind one port), and in the balance scenarios its admin API on port+5000 for /metrics; measured in the scaling section only",
			args: gate(bin, "-workers", "2"), env: gateEnv, scaleOnly: true,
			admin: true},
		{name: "lws-pkg", bin: "lwspkgecho", what: "package lws alone: lws.EchoHandler, the reference HTTP answer",
			args: listen},
		{name: "gorilla", bin: "gorillaecho", what: "gorilla/websocket on net/http, goroutine per link", args: listen},
		{name: "gws", bin: "gwsecho", what: "lxzan/gws Upgrader on net/http, ReadLoop goroutine per link", args: listen},
		{name: "epoll", bin: "epollecho", what: "raw epoll echo (C): the machine's limit",
			args: func(p int) []string { return []string{"-p", port(p)} }},
	}
	if base != "" {
		out = append(out,
			server{name: "lwsgate-base", bin: filepath.Join(base, "lwsgate"), what: "lwsgate as above, built from the base revision (BENCH_BASE)",
				args: gate(base), env: gateEnv},
			server{name: "lws-pkg-base", bin: filepath.Join(base, "lwspkgecho"), what: "package lws alone as above, built from the base revision (BENCH_BASE)",
				args: listen},
			// The scaling section's pair from the base revision, which
			// must know -workers (issue 16 and later).
			server{name: "lwsgate-base-w1", bin: filepath.Join(base, "lwsgate"), what: "lwsgate as above with one worker, built from the base revision (BENCH_BASE); the scaling section only",
				args: gate(base, "-workers", "1"), env: gateEnv, scaleOnly: true},
			server{name: "lwsgate-base-w2", bin: filepath.Join(base, "lwsgate"), what: "lwsgate-w2 as above, built from the base revision (BENCH_BASE); the scaling section only",
				args: gate(base, "-workers", "2"), env: gateEnv, scaleOnly: true,
				admin: true})
	}
	return out
}

// binPath is where s's binary is: bin names are relative to -bin, base
// binaries are paths of their own.
func binPath(o *opts, s server) string {
	if filepath.IsAbs(s.bin) || strings.ContainsRune(s.bin, filepath.Separator) {
		return s.bin
	}
	return filepath.Join(o.bin, s.bin)
}

// scenario is one row group of the report.
type scenario struct {
	name, title string
	args        func(o *opts) []string
	unit        string // what the rate counts; "" for idle
	idle        int    // links held open, sending nothing, while it runs

	// The scaling section (issue 16): server and load tool share the
	// CPUs in cpus, only the servers named run it, and balance reads
	// the per-worker split from the server's metrics.
	scaling bool
	cpus    string
	servers []string
	balance bool
}

// runs reports whether s is measured in sc.
func (sc scenario) runs(s server) bool {
	if len(sc.servers) > 0 {
		return slices.Contains(sc.servers, s.name)
	}
	return !s.scaleOnly
}

// scalingServers are the servers of the scaling section: lwsgate on one
// worker and on two, native lws on one context and on two (the same
// design in C) and gws (Go: on GOMAXPROCS 2 where it has both CPUs).
// With -base, also lwsgate-base-w1 and lwsgate-base-w2.
var scalingServers = []string{"lwsgate", "lwsgate-w2", "lws", "lws-w2", "gws", "lwsgate-base-w1", "lwsgate-base-w2"}

// pacedTick is how often scale-paced releases the messages due: 100 us,
// 3 messages a tick at the default 30,000 a second, near what independent
// clients send.
const pacedTick = 100 * time.Microsecond

// scalingScenarios are the scaling section's scenarios; paced is the
// offered rate of scale-paced, and balance the link counts at which the
// per-worker split is read.
func scalingScenarios(paced int, balance []int) []scenario {
	const both = "0,1"
	out := []scenario{
		// The load is released every pacedTick whatever the server's
		// speed: without a tick of its own, wsload sends what is due
		// whenever an echo wakes it, and a run fell by chance into
		// bursts of one message or of 30 (1 ms), at 14.5 or 5.3 us of
		// lwsgate's CPU a message. And the server is on CPU 0, the
		// load on CPU 1, as in the other scenarios: sharing both, the
		// scheduler put one worker on the load tool's CPU in some runs
		// and not in others, and a wake-up across CPUs costs about 6 us
		// more (5.2 against 11.2 us a message, bench/NOTES.md).
		{name: "scale-paced", title: fmt.Sprintf("2 cores: 100 links, 32 B, paced at %d msgs/s in all, released every %v", paced, pacedTick), args: func(o *opts) []string {
			return []string{"-mode", "pipelined", "-c", "100", "-depth", strconv.Itoa(o.depth), "-size", "32", "-rate", strconv.Itoa(paced), "-tick", pacedTick.String()}
		}, unit: "msgs/s", scaling: true, servers: scalingServers},
		{name: "scale-max", title: "2 cores: 100 links pipelined, 32 B, as fast as they go", args: func(o *opts) []string {
			return []string{"-mode", "pipelined", "-c", "100", "-depth", strconv.Itoa(o.depth), "-size", "32"}
		}, unit: "msgs/s", scaling: true, cpus: both, servers: scalingServers},
	}
	for _, n := range balance {
		c := strconv.Itoa(n)
		out = append(out, scenario{name: "balance-" + c, title: fmt.Sprintf("2 workers: how %d links ping-ponging 32 B split", n), args: func(o *opts) []string {
			return []string{"-mode", "echo", "-c", c, "-depth", "1", "-size", "32"}
		}, unit: "msgs/s", scaling: true, cpus: both, servers: []string{"lwsgate-w2"}, balance: true})
	}
	return out
}

const createTokenBody = `{"UserName":"keda","RequestId":"1614738418531"}`

// scenarios are the scenarios measured; grow lists the idle-link counts
// of the "as links grow" scenarios (1 link ping-pong and 100 links
// pipelined, each while that many links are open and silent).
func scenarios(grow []int) []scenario {
	out := []scenario{
		{name: "pingpong-32", title: "1 link ping-pong, 32 B", args: func(o *opts) []string {
			return []string{"-mode", "echo", "-c", "1", "-depth", "1", "-size", "32"}
		}, unit: "msgs/s"},
		{name: "pipelined-32", title: "100 links pipelined, 32 B", args: func(o *opts) []string {
			return []string{"-mode", "pipelined", "-c", "100", "-depth", strconv.Itoa(o.depth), "-size", "32"}
		}, unit: "msgs/s"},
		{name: "pingpong-1k", title: "1,000 links ping-pong, 1 KiB", args: func(o *opts) []string {
			return []string{"-mode", "echo", "-c", "1000", "-depth", "1", "-size", "1024"}
		}, unit: "msgs/s"},
		{name: "big-64k", title: "10 links, 64 KiB messages (ping-pong)", args: func(o *opts) []string {
			return []string{"-mode", "echo", "-c", "10", "-depth", "1", "-size", "65536"}
		}, unit: "msgs/s"},
		{name: "idle", title: "idle links: server RSS growth and CPU per link", args: func(o *opts) []string {
			return []string{"-mode", "idle", "-c", strconv.Itoa(o.idleLinks)}
		}, unit: ""},
		{name: "connect", title: "connect rate: handshake + close handshake", args: func(o *opts) []string {
			return []string{"-mode", "connect", "-c", "16"}
		}, unit: "connects/s"},
		{name: "http", title: "HTTP POST /v1/api/createtoken, keep-alive", args: func(o *opts) []string {
			return []string{"-mode", "http", "-c", "16", "-body", createTokenBody}
		}, unit: "req/s"},
	}
	for _, n := range grow {
		idle := strconv.Itoa(n)
		out = append(out,
			scenario{name: "pingpong-32+idle" + idle, title: fmt.Sprintf("1 link ping-pong, 32 B, with %d idle links open", n), args: func(o *opts) []string {
				return []string{"-mode", "echo", "-c", "1", "-depth", "1", "-size", "32", "-idle", idle}
			}, unit: "msgs/s", idle: n},
			scenario{name: "pipelined-32+idle" + idle, title: fmt.Sprintf("100 links pipelined, 32 B, with %d idle links open", n), args: func(o *opts) []string {
				return []string{"-mode", "pipelined", "-c", "100", "-depth", strconv.Itoa(o.depth), "-size", "32", "-idle", idle}
			}, unit: "msgs/s", idle: n})
	}
	return out
}

// parseCounts reads a flag's comma-separated counts of links ("" for none).
func parseCounts(flag, v string) ([]int, error) {
	var out []int
	for f := range strings.SplitSeq(v, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		n, err := strconv.Atoi(f)
		if err != nil || n < 1 {
			return nil, fmt.Errorf("%s: %q is not a count of links", flag, f)
		}
		out = append(out, n)
	}
	return out, nil
}
