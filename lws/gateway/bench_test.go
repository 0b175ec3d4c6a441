package gateway

import (
	"io"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/require"

	"github.com/lwsgate/lwsgate/lws"
)

// BenchmarkFanout1000 publishes one 64-byte message to 1,000 links per
// iteration, as POST /v1/api/publish does; the clients discard what they read at the TCP level, so the
// figure is the gateway's: deliveries/s until every queue is written out.
func BenchmarkFanout1000(b *testing.B) {
	benchFanout(b, "", func(g *testGW, msg []byte, n int) {
		if res := g.publishOnService("all", lws.TextMessage, msg); res.Delivered != n {
			b.Fatalf("delivered to %d", res.Delivered)
		}
	})
}

// BenchmarkRemoteFanout1000 delivers one 64-byte message of another
// node to 1,000 links on two workers per iteration, as the cluster
// engine's delivery goroutine does (deliverRemote: the workers' backlogs
// and drains, which the figure waits for).
func BenchmarkRemoteFanout1000(b *testing.B) {
	benchFanout(b, "workers: 2\n", func(g *testGW, msg []byte, _ int) { deliverN(g, "all", msg) })
}

// benchFanout opens 1,000 links subscribed to channel all on a gateway
// of config conf, then runs publish b.N times, each with one 64-byte
// message; the clients discard what they read at the TCP level, so the
// figure is the gateway's: deliveries/s and CPU until every queue is
// written out.
func benchFanout(b *testing.B, conf string, publish func(g *testGW, msg []byte, n int)) {
	g := startGW(b, "log: {level: warn}\n"+conf, &Options{Logger: newDiscard()})
	const n = 1000
	for i := 0; i < n; i++ {
		ws := g.dial(b, "/", nil)
		send(b, ws, `{"action":"subscribe","channel":"all"}`)
		read(b, ws)
		go func() { _, _ = io.Copy(io.Discard, ws.UnderlyingConn()) }()
	}
	links := g.links.list(func(l *LinkRecord) bool { return l.Type == TypeTCPListen })
	require.Len(b, links, n)
	msg := make([]byte, 64)
	b.ReportAllocs()
	b.ResetTimer()
	start, cpu := time.Now(), startCPU()
	for i := 0; i < b.N; i++ {
		publish(g, msg, n)
	}
	// Until every worker has run what was posted to it, and everything
	// is written to the sockets.
	for _, w := range g.workers {
		require.NoError(b, w.ctx.Do(func() {}))
	}
	for _, l := range links {
		for l.conn.Queued() > 0 {
			time.Sleep(100 * time.Microsecond)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N*n)/time.Since(start).Seconds(), "deliveries/s")
	b.ReportMetric(float64(cpu.since())/float64(b.N), "cpu-ns/op")
}

// benchMessages runs the gateway's per-message step (wsHandler.OnMessage:
// the listener's limits, the routing step and its action) b.N times on
// one link's messages, on the service goroutine as libwebsockets would,
// in batches so that what the action sends is written out between them.
// The client discards what it reads at the TCP level.
func benchMessages(b *testing.B, msg string, setup func(g *testGW, ws *websocket.Conn)) {
	g := startGW(b, "log: {level: warn}\n", &Options{Logger: newDiscard()})
	ws := g.dial(b, "/", nil)
	send(b, ws, "open?") // answered once the link is in the table
	read(b, ws)
	if setup != nil {
		setup(g, ws)
	}
	go func() { _, _ = io.Copy(io.Discard, ws.UnderlyingConn()) }()
	links := g.links.list(func(l *LinkRecord) bool { return l.Type == TypeTCPListen })
	require.Len(b, links, 1)
	c, h, data := links[0].conn, wsHandler{g.Gateway, links[0].w}, []byte(msg)
	const batch = 64
	b.ReportAllocs()
	b.ResetTimer()
	cpu := startCPU()
	for i := 0; i < b.N; i += batch {
		n := min(batch, b.N-i)
		require.NoError(b, links[0].w.ctx.Do(func() {
			for range n {
				h.OnMessage(c, lws.TextMessage, data)
			}
		}))
	}
	b.StopTimer()
	b.ReportMetric(float64(cpu.since())/float64(b.N), "cpu-ns/op")
}

// BenchmarkMessageEcho: a text message that is not JSON, through the
// default rules to the echo action.
func BenchmarkMessageEcho(b *testing.B) { benchMessages(b, "hello, gateway", nil) }

// BenchmarkMessagePublish: a JSON message matched by a field rule whose
// action publishes it to a channel taken from the message (one member).
func BenchmarkMessagePublish(b *testing.B) {
	benchMessages(b, `{"action":"publish","channel":"c","data":"x"}`, func(g *testGW, ws *websocket.Conn) {
		send(b, ws, `{"action":"subscribe","channel":"c"}`)
		read(b, ws)
	})
}

// cpuClock is this process's CPU time (user and system, every thread) at
// a start: the figure that does not count waiting on a loaded machine.
type cpuClock int64

func startCPU() cpuClock { return cpuClock(processCPU()) }

// since returns the process's CPU nanoseconds since c.
func (c cpuClock) since() int64 { return processCPU() - int64(c) }

func processCPU() int64 {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return ru.Utime.Nano() + ru.Stime.Nano()
}

// BenchmarkMessageEchoWorkers2: BenchmarkMessageEcho on two workers at
// once, one link each, both service goroutines routing at the same time:
// what each message costs when every core runs a worker. A counter or lock
// the workers share shows here as more CPU per message than on one.
func BenchmarkMessageEchoWorkers2(b *testing.B) {
	g := startGW(b, "workers: 2\nlog: {level: warn}\n", &Options{Logger: newDiscard()})
	type one struct {
		l *LinkRecord
		h wsHandler
	}
	var on []one
	for range 2 {
		ws := g.dial(b, "/", nil)
		send(b, ws, "open?")
		read(b, ws)
		go func() { _, _ = io.Copy(io.Discard, ws.UnderlyingConn()) }()
	}
	for _, l := range g.links.list(func(l *LinkRecord) bool { return l.Type == TypeTCPListen }) {
		on = append(on, one{l, wsHandler{g.Gateway, l.w}})
	}
	require.Len(b, on, 2)
	require.NotEqual(b, on[0].l.w.id, on[1].l.w.id, "one link on each worker")
	data := []byte("hello, gateway")
	const batch = 64
	b.ReportAllocs()
	b.ResetTimer()
	cpu := startCPU()
	var wg sync.WaitGroup
	for _, o := range on {
		wg.Go(func() {
			for i := 0; i < b.N; i += 2 * batch {
				n := min(batch, (b.N-i+1)/2)
				require.NoError(b, o.l.w.ctx.Do(func() {
					for range n {
						o.h.OnMessage(o.l.conn, lws.TextMessage, data)
					}
				}))
			}
		})
	}
	wg.Wait()
	b.StopTimer()
	b.ReportMetric(float64(cpu.since())/float64(b.N), "cpu-ns/op")
}

// BenchmarkCreateToken: one keep-alive POST /v1/api/createtoken and its
// answer per iteration, from a raw TCP client that allocates nothing, so
// that allocs/op are the gateway's and package lws' for a request.
func BenchmarkCreateToken(b *testing.B) {
	g := startGW(b, "log: {level: warn}\ntokens: {secret: bench-secret-bench-secret-bench}\n", &Options{Logger: newDiscard()})
	roundTrip := createTokenClient(b, g.pub)
	roundTrip() // the link's first request opens it
	b.ReportAllocs()
	cpu := startCPU()
	for b.Loop() {
		roundTrip()
	}
	b.ReportMetric(float64(cpu.since())/float64(b.N), "cpu-ns/op")
}
