package gateway

import (
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lwsgate/lwsgate/lws"
	"github.com/lwsgate/lwsgate/lws/gateway/cluster"
)

// remoteLinks opens n links on a gateway of two workers, each a member
// of channels, and returns them with their workers and ids.
func remoteLinks(t *testing.T, g *testGW, n int, channels ...string) ([]*websocket.Conn, []int, []uint64) {
	t.Helper()
	var links []*websocket.Conn
	var workers []int
	var ids []uint64
	for range n {
		ws := g.dial(t, "/", nil)
		id := linkID(t, ws)
		for _, ch := range channels {
			require.NoError(t, g.Subscribe(id, ch))
		}
		l, err := g.record(id)
		require.NoError(t, err)
		links, workers, ids = append(links, ws), append(workers, l.w.id), append(ids, id)
	}
	return links, workers, ids
}

// readRun reads the messages from, from+step, ... below to of a test's
// numbering (remoteMsgN) from ws, in order, each once.
func readRun(ws *websocket.Conn, name string, from, to, step int) error {
	_ = ws.SetReadDeadline(time.Now().Add(30 * time.Second))
	for i := from; i < to; i += step {
		_, p, err := ws.ReadMessage()
		if err != nil {
			return fmt.Errorf("%s: message %d: %w", name, i, err)
		}
		if want := fmt.Sprintf("%07d ", i); !strings.HasPrefix(string(p), want) {
			return fmt.Errorf("%s: message %d is %.20q…", name, i, p)
		}
	}
	return nil
}

// readSeq is readRun of each message from..to-1, on the test's goroutine.
func readSeq(t *testing.T, ws *websocket.Conn, name string, from, to int) {
	t.Helper()
	require.NoError(t, readRun(ws, name, from, to, 1))
}

// remoteMsgN is message i of a test's numbering, padded to pad bytes.
func remoteMsgN(i, pad int) []byte {
	return fmt.Appendf(nil, "%07d %s", i, strings.Repeat("x", pad))
}

func deliverN(g *testGW, ch string, data []byte) {
	g.deliverRemote(cluster.Delivery{Channel: ch, Message: cluster.Message{Kind: uint8(lws.TextMessage), Data: data}})
}

// TestRemoteBacklog: the messages of other nodes (deliverRemote, called
// as the engine's delivery goroutine calls it) are queued on each worker
// without waiting for it, up to its bound. With worker 0 stalled,
// deliveries go on (worker 1's links get theirs) until worker 0's
// backlog holds what fits in remoteBacklog bytes; then the delivery
// waits, and the backlog grows no further. Released, worker 0 sends its
// backlog in one post, and every link has every message once, in order.
// Before the bounded backlog, deliverRemote waited for each message's
// batch (no second message while stalled); with a backlog and no bound,
// every message is queued on the stalled worker.
func TestRemoteBacklog(t *testing.T) {
	g := startGW(t, "workers: 2\n", nil)
	links, workers, _ := remoteLinks(t, g, 4, "room")
	require.ElementsMatch(t, []int{0, 0, 1, 1}, workers, "two links per worker")

	w0 := g.workers[0]
	stalled, release := make(chan struct{}), make(chan struct{})
	unstall := sync.OnceFunc(func() { close(release) })
	t.Cleanup(unstall)
	require.NoError(t, w0.ctx.Post(func() { close(stalled); <-release }))
	<-stalled

	const pad = 1000
	fits := remoteBacklog / remoteCost(&remoteMsg{ls: make([]*LinkRecord, 2), data: remoteMsgN(0, pad)})
	n := 3 * fits
	var queued atomic.Int64 // deliverRemote calls returned
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range n {
			deliverN(g, "room", remoteMsgN(i, pad))
			queued.Store(int64(i + 1))
		}
	}()

	// The delivery goroutine ends up waiting for worker 0's room.
	b := &w0.remote
	state := func() (waiting bool, held, q, drains int) {
		b.mu.Lock()
		defer b.mu.Unlock()
		return b.waiting, b.held, len(b.q), b.drains
	}
	deadline := time.After(10 * time.Second)
	for waiting, _, _, _ := state(); !waiting; waiting, _, _, _ = state() {
		select {
		case <-done:
			_, held, q, _ := state()
			t.Fatalf("all %d messages were queued on the stalled worker (%d, %d bytes; the bound is %d)", n, q, held, remoteBacklog)
		case <-deadline:
			t.Fatalf("the delivery never waited for worker 0: %d of %d messages delivered", queued.Load(), n)
		case <-time.After(time.Millisecond):
		}
	}
	_, held, q, drains := state()
	assert.Equal(t, fits, q, "worker 0's backlog takes what fits")
	assert.LessOrEqual(t, held, remoteBacklog)
	assert.Equal(t, 0, drains, "worker 0 is stalled")
	assert.Equal(t, int64(fits), queued.Load(), "deliverRemote returned for each message queued, and waits on the next")
	var waits dto.Metric
	require.NoError(t, g.metrics.remoteWaits.Write(&waits))
	assert.Equal(t, 1.0, waits.GetCounter().GetValue(), "lwsgate_cluster_delivery_waits_total counts the wait")
	for i, ws := range links {
		if workers[i] == 1 {
			readSeq(t, ws, fmt.Sprintf("link %d (worker 1)", i), 0, fits)
		}
	}
	_, held2, q2, _ := state()
	assert.Equal(t, []int{q, held}, []int{q2, held2}, "the backlog stays at its bound while worker 0 is stalled")

	unstall()
	for i, ws := range links {
		from := 0
		if workers[i] == 1 {
			from = fits
		}
		readSeq(t, ws, fmt.Sprintf("link %d (worker %d)", i, workers[i]), from, n)
	}
	<-done
	_, held, q, drains = state()
	assert.Equal(t, []int{0, 0}, []int{held, q}, "backlog empty")
	assert.Less(t, drains, n-fits+1, "the stalled worker's backlog went out in one post")
}

// TestRemoteOrder: messages of other nodes on two channels, delivered
// as fast as the delivery goroutine goes, reach every member on both
// workers once each, in order, while a link joins and one closes
// midway (neither disturbs the others).
func TestRemoteOrder(t *testing.T) {
	g := startGW(t, "workers: 2\n", nil)
	links, workers, _ := remoteLinks(t, g, 4, "a", "b")
	require.ElementsMatch(t, []int{0, 0, 1, 1}, workers)
	solo, _, _ := remoteLinks(t, g, 1, "b") // on b alone, until it closes
	late, _, lateID := remoteLinks(t, g, 1) // joins a midway

	const n = 20000
	half := n / 2
	// readN is readRun on a goroutine of its own.
	readN := func(name string, ws *websocket.Conn, from, to, step int) <-chan error {
		res := make(chan error, 1)
		go func() { res <- readRun(ws, name, from, to, step) }()
		return res
	}
	var readers []<-chan error
	for i, ws := range links {
		readers = append(readers, readN(fmt.Sprintf("link %d", i), ws, 0, n, 1))
	}
	soloRead := readN("the link on b", solo[0], 1, half, 2)
	readers = append(readers, readN("the link joining a", late[0], half, n, 2))
	for i := range n {
		ch := "a"
		if i%2 == 1 {
			ch = "b"
		}
		if i == half {
			require.NoError(t, <-soloRead)
			solo[0].Close()
			require.NoError(t, g.Subscribe(lateID[0], "a"))
		}
		deliverN(g, ch, remoteMsgN(i, 16))
	}
	for _, r := range readers {
		require.NoError(t, <-r)
	}
	for _, w := range g.workers {
		w.remote.mu.Lock()
		t.Logf("worker %d: %d messages in %d posts", w.id, n, w.remote.drains)
		w.remote.mu.Unlock()
	}
}
