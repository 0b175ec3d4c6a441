package gateway

import (
	"io"
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
	g := startGW(b, "log: {level: warn}\n", &Options{Logger: newDiscard()})
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
	b.ResetTimer()
	start, cpu := time.Now(), startCPU()
	for i := 0; i < b.N; i++ {
		if res := g.publishOnService("all", lws.TextMessage, msg); res.Delivered != n {
			b.Fatalf("delivered to %d", res.Delivered)
		}
	}
	// Until everything is written to the sockets.
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
