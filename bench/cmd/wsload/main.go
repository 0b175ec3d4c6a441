// Command wsload is a WebSocket and HTTP load generator for lwsgate and the
// reference servers of the benchmark harness (bench/README.md).
//
// Modes (-mode):
//
//	echo       -c links, each keeping -depth messages of -size bytes in
//	           flight: -depth 1 is ping-pong, more is pipelined; with
//	           -rate R, R messages a second in all instead (paced: the
//	           offered load is fixed, so CPU per message compares servers
//	           that are not saturated); -tick P sends what is due only
//	           every P, so the load's shape does not follow the server's
//	pipelined  echo, named for the report (set -depth)
//	idle       open -c silent links; the server's RSS growth per link (-pid)
//	connect    -c workers open a link and close it, over and over
//	http       -c keep-alive workers POST -size bytes (or -body) to -url
//
// Every mode but idle measures for -d after a -warmup and prints one line:
//
//	msgs/s=123456 p50=41.0us p99=80.5us p999=120.2us errors=0 server_cpu/op=3.10us server_cpu=98%
//
// (connects/s or req/s for connect and http), plus, with -json, the same
// figures as one JSON object. The latency is per message round trip (echo,
// measured from a send timestamp carried in the first 8 bytes, so -size >= 8
// for latencies), per handshake, or per request. With -pid the server's CPU
// time over the measured window is read from /proc/PID/stat (utime+stime):
// server_cpu/op is CPU per message, handshake or request, the steadier
// figure on a shared machine. The exit status is non-zero if any error
// occurred.
//
// The client speaks just enough WebSocket (ws.go) to stay out of the way:
// it writes all the messages it owes a link with one write, pre-masked, and
// parses every echo out of one read. Each echo is checked for type, length,
// content and sequence number: echoes arrive in send order (one TCP stream,
// a FIFO server queue).
package main

import (
	"flag"
	"fmt"
	"os"
	"time"
)

type config struct {
	url, subprotocol   string
	conns, depth, size int
	dur, warmup        time.Duration
	binary, json       bool
	body               string
	pid                int
	idle               int // -idle: links to hold open while measuring
	idleOpen           int // how many of them opened
	rate               int // -rate: messages a second in all (echo, pipelined); 0: as fast as echoes return
	// tick: with -rate, the messages due are sent only on a tick of this
	// period (a timerfd), in bursts of rate x tick; 0: whenever the loop
	// wakes (an echo, or a 1 ms timeout), so the bursts' size depends on
	// how fast the server answers.
	tick time.Duration
}

func main() {
	var cfg config
	flag.StringVar(&cfg.url, "url", "ws://127.0.0.1:8090/", "WebSocket URL (http://... for -mode http); echo and pipelined: a comma-separated list spreads the links over the URLs")
	flag.StringVar(&cfg.subprotocol, "subprotocol", "", "Sec-WebSocket-Protocol to request (e.g. lws-gate)")
	flag.IntVar(&cfg.conns, "c", 1, "links (echo, idle) or workers (connect, http)")
	flag.IntVar(&cfg.depth, "depth", 1, "messages in flight per link (1 = ping-pong)")
	flag.IntVar(&cfg.size, "size", 64, "message (or request body) size in bytes")
	flag.DurationVar(&cfg.dur, "d", 5*time.Second, "measured duration")
	flag.DurationVar(&cfg.warmup, "warmup", time.Second, "warm-up before measuring (idle: settle time before reading RSS)")
	flag.BoolVar(&cfg.binary, "binary", true, "binary messages (false: text)")
	flag.BoolVar(&cfg.json, "json", false, "also print the result as a JSON line")
	mode := flag.String("mode", "echo", "echo, pipelined, idle, connect or http")
	flag.IntVar(&cfg.pid, "pid", 0, "server process id: its CPU per operation (and RSS for -mode idle) from /proc")
	flag.StringVar(&cfg.body, "body", "", "request body for -mode http (default: -size bytes of 'x')")
	flag.IntVar(&cfg.rate, "rate", 0, "echo and pipelined: send this many messages a second in all, spread over the links (each still at most -depth in flight); 0: a link sends again as soon as an echo returns")
	flag.DurationVar(&cfg.tick, "tick", 0, "with -rate: send the messages due only every `period` (bursts of rate x period, whatever the server's speed); 0: whenever an echo or a 1 ms timeout wakes the load tool")
	flag.IntVar(&cfg.idle, "idle", 0, "echo and pipelined: first open this many links that send nothing and hold them while measuring (the cost of a message as links grow); past 20,000 they come from 127.0.0.2, .3, ...")
	flag.Parse()
	if cfg.conns < 1 || cfg.depth < 1 || cfg.size < 0 || cfg.dur <= 0 || cfg.warmup < 0 || cfg.rate < 0 || cfg.tick < 0 || (cfg.tick > 0 && cfg.rate == 0) {
		fmt.Fprintln(os.Stderr, "wsload: -c and -depth must be >= 1, -size >= 0, -d > 0, -warmup >= 0, -rate >= 0, -tick >= 0 and only with -rate")
		os.Exit(2)
	}
	switch *mode {
	case "echo", "pipelined":
		if cfg.idle > 0 {
			t, err := parseTarget(cfg.url, "ws")
			if err != nil {
				fmt.Fprintln(os.Stderr, "wsload:", err)
				os.Exit(2)
			}
			held := openIdle(t, cfg.subprotocol, cfg.idle)
			if held.links < cfg.idle {
				fmt.Fprintf(os.Stderr, "wsload: -idle %d: %d links opened (%d errors; first: %v)\n", cfg.idle, held.links, held.errs, held.firstErr)
				held.close()
				os.Exit(1)
			}
			cfg.idleOpen = held.links
			rc := runEcho(cfg, *mode)
			held.close()
			os.Exit(rc)
		}
		os.Exit(runEcho(cfg, *mode))
	case "idle":
		os.Exit(runIdle(cfg))
	case "connect":
		os.Exit(runConnect(cfg))
	case "http":
		os.Exit(runHTTP(cfg))
	}
	fmt.Fprintf(os.Stderr, "wsload: -mode %q: want echo, pipelined, idle, connect or http\n", *mode)
	os.Exit(2)
}
