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
	"strconv"
	"strings"
)

// What benchrun measures: the servers and the scenarios.

// server is one reference server or lwsgate.
type server struct {
	name, bin, what string
	args            func(port int) []string
	env             []string
}

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
		{name: "lws-tuned", bin: "lwsecho", what: "native libwebsockets (C), pt_serv_buf_size and tx_packet_size 64 KiB",
			args: func(p int) []string { return []string{"-p", port(p), "-s", "65536", "-t", "65536"} }},
		{name: "lwsgate", bin: "lwsgate", what: "the lwsgate binary, one worker, at its default config (echo rule, link table, metrics) without its per-address link limits (lwsgate.yaml, made by scripts/bench.sh), reason log and admin API off; its createtoken signs a JWT",
			// One worker, as the native programs and the base
			// revisions (which have no -workers) have one thread.
			args: gate(bin, "-workers", "1"), env: gateEnv},
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
				args: listen})
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
}

const createTokenBody = `{"UserName":"keda","RequestId":"1614738418531"}`

// scenarios are the scenarios measured; grow lists the idle-link counts
// of the "as links grow" scenarios (1 link ping-pong and 100 links
// pipelined, each while that many links are open and silent).
func scenarios(grow []int) []scenario {
	out := []scenario{
		{"pingpong-32", "1 link ping-pong, 32 B", func(o *opts) []string {
			return []string{"-mode", "echo", "-c", "1", "-depth", "1", "-size", "32"}
		}, "msgs/s", 0},
		{"pipelined-32", "100 links pipelined, 32 B", func(o *opts) []string {
			return []string{"-mode", "pipelined", "-c", "100", "-depth", strconv.Itoa(o.depth), "-size", "32"}
		}, "msgs/s", 0},
		{"pingpong-1k", "1,000 links ping-pong, 1 KiB", func(o *opts) []string {
			return []string{"-mode", "echo", "-c", "1000", "-depth", "1", "-size", "1024"}
		}, "msgs/s", 0},
		{"big-64k", "10 links, 64 KiB messages (ping-pong)", func(o *opts) []string {
			return []string{"-mode", "echo", "-c", "10", "-depth", "1", "-size", "65536"}
		}, "msgs/s", 0},
		{"idle", "idle links: server RSS growth per link", func(o *opts) []string {
			return []string{"-mode", "idle", "-c", strconv.Itoa(o.idleLinks)}
		}, "", 0},
		{"connect", "connect rate: handshake + close handshake", func(o *opts) []string {
			return []string{"-mode", "connect", "-c", "16"}
		}, "connects/s", 0},
		{"http", "HTTP POST /v1/api/createtoken, keep-alive", func(o *opts) []string {
			return []string{"-mode", "http", "-c", "16", "-body", createTokenBody}
		}, "req/s", 0},
	}
	for _, n := range grow {
		idle := strconv.Itoa(n)
		out = append(out,
			scenario{"pingpong-32+idle" + idle, fmt.Sprintf("1 link ping-pong, 32 B, with %d idle links open", n), func(o *opts) []string {
				return []string{"-mode", "echo", "-c", "1", "-depth", "1", "-size", "32", "-idle", idle}
			}, "msgs/s", n},
			scenario{"pipelined-32+idle" + idle, fmt.Sprintf("100 links pipelined, 32 B, with %d idle links open", n), func(o *opts) []string {
				return []string{"-mode", "pipelined", "-c", "100", "-depth", strconv.Itoa(o.depth), "-size", "32", "-idle", idle}
			}, "msgs/s", n})
	}
	return out
}

// parseGrow reads -grow: idle-link counts, comma-separated ("" for none).
func parseGrow(v string) ([]int, error) {
	var out []int
	for f := range strings.SplitSeq(v, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		n, err := strconv.Atoi(f)
		if err != nil || n < 1 {
			return nil, fmt.Errorf("-grow: %q is not a count of links", f)
		}
		out = append(out, n)
	}
	return out, nil
}
