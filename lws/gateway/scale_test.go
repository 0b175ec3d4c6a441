package gateway

import (
	"context"
	"errors"
	"fmt"
	"net"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lwsgate/lwsgate/lws"
)

// TestChurn10k opens and drops 10,000 links: each subscribes to a channel,
// every tenth is relayed to a backend (two routes), half end with a close
// frame and half by a bare TCP close. Afterwards the link, route and
// channel tables are empty and the gateway's goroutines are back.
func TestChurn10k(t *testing.T) {
	backend := wsBackend(t, "")
	g := startGW(t, `
log: {level: info}
listeners:
  # 10,000 connections from 127.0.0.1 as fast as they go
  - {addr: "127.0.0.1:0", subprotocols: [lws-gate], limits: {max_links_per_ip: -1, accept_rate: -1}}
backends:
  - {name: echo, url: "`+backend+`"}
rules:
  - {match: {field: action, value: subscribe}, action: subscribe, channel_field: channel}
  - {match: {path: /relay}, action: relay, backend: echo}
  - {action: echo}
`, &Options{Logger: newDiscard()})
	before := runtime.NumGoroutine()
	const warm, n, workers = 1000, 10000, 8
	var next, relayed atomic.Int64
	cycles := func(upto int64) {
		var wg sync.WaitGroup
		errs := make(chan error, workers)
		for w := 0; w < workers; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				d := websocket.Dialer{HandshakeTimeout: 10 * time.Second}
				for {
					i := next.Add(1)
					if i > upto {
						return
					}
					if err := churnOne(&d, g.pub, i, &relayed); err != nil {
						errs <- fmt.Errorf("cycle %d: %w", i, err)
						return
					}
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			require.NoError(t, err)
		}
		next.Store(upto)
	}
	start := time.Now()
	cycles(warm)
	g.waitEmpty(t)
	rssWarm := rssKiB(t)
	cycles(n)
	took := time.Since(start)
	g.waitEmpty(t)
	rssEnd := rssKiB(t)
	t.Logf("%d cycles (%d relayed) in %v: %.0f cycles/s; tables empty: links %d routes %d channels %d; RSS (test process, clients included) %d KiB after %d cycles, %d KiB after %d",
		n, relayed.Load(), took.Round(time.Millisecond), n/took.Seconds(), g.links.len(), g.routes.len(), g.hub.len(), rssWarm, warm, rssEnd, n)
	// Nine times the cycles must not mean nine times the memory: a leak of
	// even 1 KiB per cycle would add 9 MiB.
	assert.Less(t, rssEnd-rssWarm, int64(32<<10), "RSS grew by %d KiB over %d cycles", rssEnd-rssWarm, n-warm)
	assert.Equal(t, uint64(n)+uint64(relayed.Load()), g.links.opened.Load(), "every link and upstream link was in the table")
	require.Eventually(t, func() bool { return runtime.NumGoroutine() <= before+2 }, 20*time.Second, 20*time.Millisecond,
		"goroutines %d, before %d", runtime.NumGoroutine(), before)
}

func churnOne(d *websocket.Dialer, addr string, i int64, relayed *atomic.Int64) error {
	path := "/"
	if i%10 == 0 {
		path = "/relay"
	}
	ws, resp, err := d.Dial("ws://"+addr+path, nil)
	if err != nil {
		return err
	}
	resp.Body.Close()
	defer ws.Close()
	_ = ws.SetReadDeadline(time.Now().Add(20 * time.Second))
	msg := fmt.Sprintf(`{"action":"subscribe","channel":"c%d"}`, i%50)
	if path == "/relay" {
		relayed.Add(1)
		msg = "through the backend"
	}
	if err := ws.WriteMessage(websocket.TextMessage, []byte(msg)); err != nil {
		return err
	}
	_, p, err := ws.ReadMessage()
	if err != nil {
		return err
	}
	if path == "/relay" && string(p) != msg || path == "/" && !strings.Contains(string(p), "subscribed") {
		return fmt.Errorf("unexpected reply %q", p)
	}
	if i%2 == 0 {
		_ = ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(1000, ""), time.Now().Add(5*time.Second))
		_, _, _ = ws.ReadMessage() // the close ack
	}
	return nil
}

// TestFanout1000 publishes to 1,000 links on one channel: every link gets
// every message, in order.
func TestFanout1000(t *testing.T) {
	// 1,000 links from 127.0.0.1
	g := startGW(t, "log: {level: info}\nlisteners:\n  - {addr: \"127.0.0.1:0\", subprotocols: [lws-gate], limits: {max_links_per_ip: -1}}\n",
		&Options{Logger: newDiscard()})
	const n, msgs = 1000, 50
	conns := make([]*websocket.Conn, n)
	for i := range conns {
		conns[i] = g.dial(t, "/", nil)
		send(t, conns[i], `{"action":"subscribe","channel":"all"}`)
	}
	for _, ws := range conns {
		require.Contains(t, read(t, ws), "subscribed")
	}
	var got, bad atomic.Int64
	var wg sync.WaitGroup
	for _, ws := range conns {
		wg.Add(1)
		go func(ws *websocket.Conn) {
			defer wg.Done()
			for i := 0; i < msgs; i++ {
				_, p, err := ws.ReadMessage()
				if err != nil {
					return
				}
				if string(p[:8]) != fmt.Sprintf("%08d", i) {
					bad.Add(1)
				}
				got.Add(1)
			}
		}(ws)
	}
	payload := []byte(strings.Repeat("p", 1024))
	start := time.Now()
	for i := 0; i < msgs; i++ {
		copy(payload, fmt.Sprintf("%08d", i))
		res := g.Publish("all", lws.TextMessage, payload)
		require.Equal(t, PublishResult{Delivered: n}, res)
	}
	published := time.Since(start)
	wg.Wait()
	took := time.Since(start)
	assert.Equal(t, int64(n*msgs), got.Load(), "every link got every message")
	assert.Zero(t, bad.Load(), "in order")
	t.Logf("fan-out: %d publishes of 1 KiB to %d links: Publish calls took %v, all delivered in %v: %.0f deliveries/s",
		msgs, n, published.Round(time.Millisecond), took.Round(time.Millisecond), float64(n*msgs)/took.Seconds())
}

// TestSlowConsumerIsCutOff publishes to 50 links and one that never reads:
// once the slow one's send queue is full it is closed with 1008, and the
// others get every message.
func TestSlowConsumerIsCutOff(t *testing.T) {
	g := startGW(t, `
log: {level: debug}
network_timeout: 2s
listeners:
  - addr: 127.0.0.1:0
    limits: {max_message: 64KiB, max_send_queue: 256KiB}
`, nil)
	slowD := websocket.Dialer{HandshakeTimeout: 10 * time.Second, NetDialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
		if err == nil {
			_ = c.(*net.TCPConn).SetReadBuffer(4096) // and nobody reads
		}
		return c, err
	}}
	slow, resp, err := slowD.Dial("ws://"+g.pub+"/", nil)
	require.NoError(t, err)
	resp.Body.Close()
	defer slow.Close()
	send(t, slow, `{"action":"subscribe","channel":"all"}`)
	read(t, slow)
	slowID := g.links.list(func(l *LinkRecord) bool { return l.Type == TypeTCPListen })[0].ID

	const n = 50
	conns := make([]*websocket.Conn, n)
	for i := range conns {
		conns[i] = g.dial(t, "/", nil)
		send(t, conns[i], `{"action":"subscribe","channel":"all"}`)
		require.Contains(t, read(t, conns[i]), "subscribed")
	}
	payload := []byte(strings.Repeat("s", 64<<10))
	sent, failed := 0, 0
	// Publish (paced by the fast readers) until a send to the slow link
	// fails: kernel buffers first, then its 256 KiB queue fill up.
	for sent < 1000 && failed == 0 {
		res := g.Publish("all", lws.BinaryMessage, payload)
		sent++
		failed = res.Failed
		require.Equal(t, n+1-failed, res.Delivered)
		for _, ws := range conns {
			_ = ws.SetReadDeadline(time.Now().Add(20 * time.Second))
			_, p, err := ws.ReadMessage()
			require.NoError(t, err)
			require.Len(t, p, len(payload))
		}
	}
	require.Equal(t, 1, failed, "only the slow link's send failed")
	// The gateway closes it with 1008; the close frame waits behind what
	// it did not read, so the link ends when the close times out.
	require.Eventually(t, func() bool { _, err := g.Link(slowID); return errors.Is(err, ErrGone) }, 40*time.Second, 50*time.Millisecond)
	assert.Regexp(t, fmt.Sprintf(`msg="link del" link=%d type=tcplisten code=1008 reason="send queue full"`, slowID), g.logs.String())
	t.Logf("slow consumer cut off after %d publishes of 64 KiB (%d MiB buffered by the kernel and its queue); the %d others got all of them", sent, sent*64>>10, n)
	// And the others carry on.
	g.Publish("all", lws.TextMessage, []byte("after"))
	for _, ws := range conns {
		_ = ws.SetReadDeadline(time.Now().Add(20 * time.Second))
		assert.Equal(t, "after", read(t, ws))
	}
}
