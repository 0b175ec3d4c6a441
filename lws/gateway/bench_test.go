package gateway

import (
	"io"
	"testing"
	"time"

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
	links := g.links.list(func(l *Link) bool { return l.Type == TypeTCPListen })
	require.Len(b, links, n)
	msg := make([]byte, 64)
	b.ResetTimer()
	start := time.Now()
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
}
