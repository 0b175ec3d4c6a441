// Command lwspkgecho is the smallest echo server on package lws: the
// binding without the gateway around it (no link table, no JWT, no reason
// log, no limits on links per address). WebSocket messages go to
// lws.EchoHandler; POST /v1/api/createtoken gets ref.Reply, the answer of
// every reference server. Comparing it with
// the lwsgate binary separates what the binding costs from what the
// gateway's own work costs.
package main

import (
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"runtime/pprof"
	"syscall"

	"github.com/lwsgate/lwsgate/bench/internal/ref"
	"github.com/lwsgate/lwsgate/lws"
)

func main() {
	cpuprofile := flag.String("cpuprofile", "", "write a CPU profile of the whole run to this file (for go tool pprof)")
	ln := ref.Listen() // only to parse -listen and check the port is free
	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err == nil {
			err = pprof.StartCPUProfile(f)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "-cpuprofile:", err)
			os.Exit(1)
		}
		defer pprof.StopCPUProfile()
	}
	addr := ln.Addr().String()
	ln.Close()
	ctx, err := lws.New(&lws.Config{
		Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
		Listeners: []lws.Listener{{
			Addr:           addr,
			Handler:        lws.EchoHandler{},
			Subprotocols:   []string{"lws-gate"},
			MaxMessageSize: 16 << 20,
			// One client address opens every link of the benchmark;
			// no other server limits links per address or accepts.
			MaxLinks: -1, MaxLinksPerIP: -1, AcceptRate: -1,
			HTTPHandler: lws.HTTPHandlerFunc(func(w *lws.ResponseWriter, r *lws.Request) {
				if r.Method != "POST" || r.Path != ref.CreateTokenPath {
					_ = w.Respond(404, []byte("not found\n"))
					return
				}
				w.SetHeader("Content-Type", "application/json")
				_ = w.Respond(200, ref.Reply(r.Body))
			}),
		}},
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	select {
	case <-sig:
	case <-ctx.Done():
	}
	_ = ctx.Close()
}
