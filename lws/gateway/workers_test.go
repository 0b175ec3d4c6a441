package gateway

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestWorkers runs the gateway with 2 and 4 workers: links spread evenly
// over them (lwsgate_worker_links says so), and echo, connect hooks,
// publish to members on every worker (from a link and from the API),
// admin send and close by id, relay (the upstream link on its client
// link's worker), reload and the shutdown drain all behave as with one.
func TestWorkers(t *testing.T) {
	for _, n := range []int{2, 4} {
		t.Run(fmt.Sprint(n), func(t *testing.T) { testWorkers(t, n) })
	}
}

func testWorkers(t *testing.T, n int) {
	backend := wsBackend(t, "up:")
	hs := newHookServer(t)
	g := startGW(t, fmt.Sprintf(`
workers: %d
shutdown: {drain: 200ms, deadline: 5s}
hooks: {connect: %q}
backends:
  - {name: chat, url: "%s/"}
rules:
  - {match: {path: /relay}, action: relay, backend: chat}
  - {match: {field: action, value: info}, action: info}
  - {match: {field: action, value: subscribe}, action: subscribe, channel_field: channel}
  - {match: {field: action, value: publish}, action: publish, channel_field: channel}
  - {action: echo}
`, n, hs.URL+"/c", backend), nil)
	require.Len(t, g.workers, n)

	// Two links per worker, each on the worker with the fewest.
	var links []*websocket.Conn
	var ids []uint64
	for range 2 * n {
		ws := g.dial(t, "/", nil)
		links = append(links, ws)
		ids = append(ids, linkID(t, ws)) // answered once the hook let it through
	}
	perWorker := map[int][]int{} // worker: indexes into links
	for i, id := range ids {
		l, err := g.record(id)
		require.NoError(t, err)
		require.Same(t, l.w.ctx, l.conn.Context(), "link %d: its record names the worker it lives on", id)
		var info LinkInfo
		require.Equal(t, 200, g.api(t, "GET", fmt.Sprintf("/v1/api/links/%d", id), "", &info))
		assert.Equal(t, l.w.id, info.Worker, "link %d: the admin API names its worker", id)
		perWorker[l.w.id] = append(perWorker[l.w.id], i)
	}
	metrics := g.metricsText(t)
	for w := range n {
		assert.Len(t, perWorker[w], 2, "worker %d's links", w)
		assert.Equal(t, int64(2), g.workers[w].links.Load(), "worker %d's link count", w)
		assert.Contains(t, metrics, fmt.Sprintf("lwsgate_worker_links{worker=\"%d\"} 2\n", w))
	}
	assert.Len(t, hs.byEvent("connect"), 2*n)
	var nodes []NodeInfo
	require.Equal(t, 200, g.api(t, "GET", "/v1/api/nodes", "", &nodes))
	require.Len(t, nodes, 1)
	assert.Equal(t, n, nodes[0].Workers)
	for w, wi := range nodes[0].WorkerList {
		assert.Equal(t, WorkerInfo{ID: w, Links: 2}, wi, "GET /v1/api/nodes: worker %d", w)
	}

	// Echo on every worker.
	for i, ws := range links {
		send(t, ws, fmt.Sprint("echo ", i))
		assert.Equal(t, fmt.Sprint("echo ", i), read(t, ws))
	}
	// Each worker counts its own messages (an info and an echo per
	// link); /metrics adds them up. The routing step of the first of a
	// worker's 4 is timed (one in routeSample).
	counted := func(want ...string) {
		t.Helper()
		var m strings.Builder // the counters' lines, to keep a failure short
		for _, l := range strings.SplitAfter(g.metricsText(t), "\n") {
			if strings.Contains(l, "messages_total{") || strings.HasPrefix(l, "lwsgate_rule_matches_total") || strings.HasPrefix(l, "lwsgate_route_seconds_count") {
				m.WriteString(l)
			}
		}
		for _, w := range want {
			assert.Contains(t, m.String(), w+"\n")
		}
	}
	var want []string
	for w := range n {
		want = append(want, fmt.Sprintf("lwsgate_worker_messages_total{worker=\"%d\"} 4", w))
	}
	counted(append(want, fmt.Sprintf(`lwsgate_messages_total{direction="in"} %d`, 4*n),
		fmt.Sprintf(`lwsgate_messages_total{direction="out"} %d`, 4*n),
		fmt.Sprintf(`lwsgate_rule_matches_total{action="echo",rule="rule 5"} %d`, 2*n),
		fmt.Sprintf(`lwsgate_rule_matches_total{action="info",rule="rule 2"} %d`, 2*n),
		fmt.Sprintf(`lwsgate_route_seconds_count %d`, n))...)

	// Publish reaches the members on every worker, from a link's rule
	// (on one worker) and from the API (a batch per worker).
	for _, ws := range links {
		send(t, ws, `{"action":"subscribe","channel":"room"}`)
		require.JSONEq(t, `{"type":"subscribed","channel":"room"}`, read(t, ws))
	}
	msg := `{"action":"publish","channel":"room","text":"hi"}`
	send(t, links[0], msg)
	for _, ws := range links {
		assert.JSONEq(t, msg, read(t, ws))
	}
	var res PublishResult
	require.Equal(t, 200, g.api(t, "POST", "/v1/api/publish", `{"channel":"room","data":"from backend"}`, &res))
	assert.Equal(t, PublishResult{Delivered: 2 * n}, res)
	for _, ws := range links {
		assert.Equal(t, "from backend", read(t, ws))
	}

	// Admin send and trace by id reach the link on its worker.
	for i, id := range ids {
		require.Equal(t, 200, g.api(t, "POST", fmt.Sprintf("/v1/api/links/%d/send", id), fmt.Sprint("pushed ", i), nil))
		assert.Equal(t, fmt.Sprint("pushed ", i), read(t, links[i]))
		require.Equal(t, 200, g.api(t, "GET", fmt.Sprintf("/v1/api/links/%d/trace", id), "", nil))
	}

	// Relay: each client link's upstream link lives on its worker.
	for range n {
		ws := g.dial(t, "/relay", nil)
		send(t, ws, "x")
		assert.Equal(t, "up:x", read(t, ws))
		links = append(links, ws)
	}
	ups := g.links.list(func(l *LinkRecord) bool { return l.Type == TypeTCPConnect })
	require.Len(t, ups, n)
	for _, up := range ups {
		assert.Same(t, up.w.ctx, up.conn.Context(), "upstream link %d dialled from its client link's worker", up.ID)
	}

	// Reload reaches every worker: new rules, and a lower max_message
	// that closes one link per worker with 1009.
	cfg := g.Config()
	cfg.Rules = []RuleConfig{{Action: "reply", Reply: "reloaded"}}
	require.NoError(t, g.Reload(cfg))
	for _, ws := range links {
		send(t, ws, "a")
		assert.Equal(t, "reloaded", read(t, ws))
	}
	// The old rules' counts stay (a counter never goes back); the new
	// rule counts its own.
	counted(fmt.Sprintf(`lwsgate_rule_matches_total{action="echo",rule="rule 5"} %d`, 2*n),
		fmt.Sprintf(`lwsgate_rule_matches_total{action="reply",rule="rule 1"} %d`, len(links)))
	low := g.Config()
	low.Listeners[0].Limits.MaxMessage = 4
	require.NoError(t, g.Reload(low))
	closed := map[int]bool{}
	for w := range n {
		i := perWorker[w][0]
		send(t, links[i], "12345")
		code, _ := closeCode(t, links[i])
		assert.Equal(t, 1009, code, "worker %d's link", w)
		closed[i] = true
	}

	// Admin close by id, on the second link of worker n-1.
	i := perWorker[n-1][1]
	require.Equal(t, 202, g.api(t, "POST", fmt.Sprintf("/v1/api/links/%d/close", ids[i]), `{"code":4001,"reason":"kicked"}`, nil))
	code, reason := closeCode(t, links[i])
	assert.Equal(t, 4001, code)
	assert.Equal(t, "kicked", reason)
	closed[i] = true

	// Shutdown drains the links left on every worker with 1001.
	done := make(chan error, 1)
	go func() { done <- g.Shutdown(context.Background()) }()
	var open []*websocket.Conn
	for i, ws := range links {
		if !closed[i] {
			open = append(open, ws)
		}
	}
	drained(t, open, done)
	<-g.Done()
}

// metricsText returns the admin API's /metrics.
func (g *testGW) metricsText(t *testing.T) string {
	t.Helper()
	resp, err := http.Get("http://" + g.admin + "/metrics")
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return string(b)
}

// TestWorkersConfig: workers is checked, and a change needs a restart.
func TestWorkersConfig(t *testing.T) {
	_, err := ParseConfig("w.yaml", []byte("workers: -1\n"))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "workers")
	g := startGW(t, "workers: 1\n", nil)
	require.Len(t, g.workers, 1)
	cfg := g.Config()
	cfg.Workers = 2
	err = g.Reload(cfg)
	require.Error(t, err)
	assert.True(t, strings.Contains(err.Error(), "workers"), err.Error())
}

// TestWorkersRouteAtOnce: links on different workers routed at the same
// time each get their own messages back (the routing scratch is the
// worker's, not shared).
func TestWorkersRouteAtOnce(t *testing.T) {
	g := startGW(t, "workers: 2\nrules:\n  - {action: echo}\n", nil)
	const links, msgs = 4, 300
	var wss []*websocket.Conn
	for range links {
		wss = append(wss, g.dial(t, "/", nil))
	}
	require.Eventually(t, func() bool { return g.workers[0].links.Load() == 2 && g.workers[1].links.Load() == 2 }, 5*time.Second, time.Millisecond)
	errs := make(chan error, links)
	for i, ws := range wss {
		go func() {
			go func() {
				for j := range msgs {
					if err := ws.WriteMessage(websocket.TextMessage, fmt.Appendf(nil, "%d/%d", i, j)); err != nil {
						return
					}
				}
			}()
			for j := range msgs {
				_, p, err := ws.ReadMessage()
				if err == nil && string(p) != fmt.Sprintf("%d/%d", i, j) {
					err = fmt.Errorf("link %d: got %q, want %d/%d", i, p, i, j)
				}
				if err != nil {
					errs <- err
					return
				}
			}
			errs <- nil
		}()
	}
	for range links {
		require.NoError(t, <-errs)
	}
}

// TestWorkersTwoListeners: with several workers, each listener keeps its
// own subprotocols (a Group per listener: libwebsockets would bind every
// request of a second adopting vhost in a context to the first); the
// admin API's event stream, with its own subprotocol, too.
func TestWorkersTwoListeners(t *testing.T) {
	g := startGW(t, `
workers: 2
listeners:
  - {name: a, addr: "127.0.0.1:0", subprotocols: [proto-a]}
  - {name: b, addr: "127.0.0.1:0", subprotocols: [proto-b]}
rules:
  - {action: echo}
`, nil)
	require.Len(t, g.workers, 4, "two per listener")
	for _, name := range []string{"a", "b"} {
		for range 2 {
			d := websocket.Dialer{HandshakeTimeout: 5 * time.Second, Subprotocols: []string{"proto-" + name}}
			ws, resp, err := d.Dial("ws://"+g.Addrs()[name].String()+"/", nil)
			require.NoError(t, err, "listener %s", name)
			assert.Equal(t, "proto-"+name, resp.Header.Get("Sec-WebSocket-Protocol"))
			send(t, ws, "hi "+name)
			assert.Equal(t, "hi "+name, read(t, ws))
			ws.Close()
		}
	}
	ws, _, err := g.dialEvents(nil, eventsProtocol)
	require.NoError(t, err, "the console's stream on the admin listener")
	ws.Close()
}

// TestWorkersDefaultStable: workers: 0 is the CPUs the process started
// with, however many gateways raised GOMAXPROCS since (each raises it to
// workers + 1).
func TestWorkersDefaultStable(t *testing.T) {
	a := startGW(t, "", nil)
	b := startGW(t, "", nil)
	assert.Equal(t, processCPUs, len(a.workers))
	assert.Equal(t, len(a.workers), len(b.workers), "the second gateway's default")
}
