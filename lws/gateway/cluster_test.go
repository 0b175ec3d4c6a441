package gateway

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lwsgate/lwsgate/internal/testutil"
	"github.com/lwsgate/lwsgate/lws/gateway/cluster"
)

// The cluster's fast tier: three gateways in this process, each with its
// own embedded nats-server routed to the others on 127.0.0.1, a lease of
// 1s and a grace period of 3s. The engine's own tests (package cluster)
// cover partitions, fencing and leader loss; these check the gateway on
// it: channels, link ids, the admin API and hooks across nodes.

// startClusterGWs starts n gateways of one cluster (g1, g2...), with
// extra YAML appended to each config, and waits until every node answers
// every other's listings.
func startClusterGWs(t *testing.T, n int, extra string) []*testGW {
	t.Helper()
	return startClusterGWsWith(t, n, "", extra)
}

// startClusterGWsWith is startClusterGWs with clusterExtra added to the
// cluster section (indented by two spaces).
func startClusterGWsWith(t *testing.T, n int, clusterExtra, extra string) []*testGW {
	t.Helper()
	ports := testutil.FreePorts(t, n)
	var routes []string
	for _, p := range ports {
		routes = append(routes, "nats://"+p)
	}
	dir := t.TempDir()
	gws := make([]*testGW, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		name := fmt.Sprintf("g%d", i+1)
		y := fmt.Sprintf(`
listeners:
  - addr: 127.0.0.1:0
    auth: {require_token: true}
admin:
  addr: 127.0.0.1:0
log:
  trace: false
tokens:
  secret: cluster-test-secret
shutdown:
  drain: 100ms
  deadline: 1s
cluster:
  engine: nats
  name: t
  node: %s
  lease: 1s
  reap_after: 3s
  survey_timeout: 1s
  call_timeout: 2s
  linger: 100ms
%s  nats:
    embedded:
      cluster_listen: %s
      routes: [%s]
      store_dir: %s
      max_memory: 64MiB
      max_store: 256MiB
      ping_interval: 250ms
      max_pings_out: 2
%s`, name, clusterExtra, ports[i], strings.Join(routes, ", "), filepath.Join(dir, name), extra)
		cfg, err := ParseConfig(name+".yaml", []byte(y))
		require.NoError(t, err)
		logs := &syncBuffer{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			g, err := New(cfg, &Options{Logger: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelInfo})).With("node", name)})
			if err != nil {
				// With its log: why its cluster did not form (a
				// clean-clone CI run once saw JetStream answer
				// "temporarily unavailable" for the whole 2 min).
				errs[i] = fmt.Errorf("%w\n%s's log:\n%s", err, name, logs.String())
				return
			}
			gws[i] = &testGW{Gateway: g, pub: g.Addrs()["main"].String(), admin: g.Addrs()[AdminListener].String(), logs: logs}
		}()
	}
	wg.Wait()
	// At the end all close at once, so that each can still mark its
	// lease "left" (the registry needs two of three nodes to write).
	t.Cleanup(func() {
		var wg sync.WaitGroup
		for i, g := range gws {
			if g == nil {
				continue
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := g.Close(); err != nil {
					t.Logf("g%d close: %v", i+1, err)
				}
			}()
		}
		wg.Wait()
		for i, g := range gws {
			if g != nil && t.Failed() {
				t.Logf("g%d logs:\n%s", i+1, g.logs)
			}
		}
	})
	for i, err := range errs {
		require.NoError(t, err, "g%d", i+1)
	}
	// Every node answers every other: the registry is seen and the
	// request subscriptions have reached every server.
	for _, g := range gws {
		require.Eventually(t, func() bool {
			resp, body := g.rawAPI(t, "GET", "/v1/api/nodes", "", "")
			var nodes []NodeInfo
			return resp.StatusCode == 200 && resp.Header.Get(PartialHeader) == "" &&
				json.Unmarshal([]byte(body), &nodes) == nil && len(nodes) == n
		}, 20*time.Second, 50*time.Millisecond, "every node to answer %s", g.self.name)
	}
	return gws
}

// wsReader is a WebSocket client whose messages a goroutine reads into
// a channel, closed with the link.
type wsReader struct {
	ws   *websocket.Conn
	msgs chan string
	code chan int // the close code, once
}

func readerOf(ws *websocket.Conn) *wsReader {
	r := &wsReader{ws: ws, msgs: make(chan string, 1024), code: make(chan int, 1)}
	go func() {
		defer close(r.msgs)
		for {
			_, p, err := ws.ReadMessage()
			if err != nil {
				var ce *websocket.CloseError
				if asClose(err, &ce) {
					r.code <- ce.Code
				} else {
					r.code <- 1006
				}
				return
			}
			r.msgs <- string(p)
		}
	}()
	return r
}

// next returns the next message, failing the test after 10s.
func (r *wsReader) next(t testing.TB) string {
	t.Helper()
	select {
	case m, ok := <-r.msgs:
		require.True(t, ok, "the link closed")
		return m
	case <-time.After(10 * time.Second):
		t.Fatal("no message in 10s")
		return ""
	}
}

// joined opens a link of user to g, with a token issued by issuer (any
// node: they share tokens.secret), subscribes it to channel with the
// default rules, and returns it and its id.
func joined(t *testing.T, g, issuer *testGW, user, channel string) (*wsReader, uint64) {
	t.Helper()
	tok, _, err := issuer.tokens.issue(user, "")
	require.NoError(t, err)
	ws := g.dial(t, "/", http.Header{"Authorization": {"Bearer " + tok}})
	id := linkID(t, ws)
	send(t, ws, `{"action":"subscribe","channel":"`+channel+`"}`)
	require.Contains(t, read(t, ws), "subscribed")
	return readerOf(ws), id
}

func TestClusterThreeGateways(t *testing.T) {
	if testing.Short() {
		t.Skip("starts three NATS servers")
	}
	hooks := newHookServer(t)
	start := time.Now()
	gws := startClusterGWs(t, 3, "hooks:\n  disconnect: "+hooks.URL+"\n  retries: 0\n  timeout: 1s\n")
	g1, g2, g3 := gws[0], gws[1], gws[2]
	t.Logf("three nodes up in %v", time.Since(start).Round(time.Millisecond))

	// Link ids carry their node's incarnation, and differ.
	// Tokens issued by one node open links on the others.
	a, idA := joined(t, g1, g3, "ann", "room")
	b, idB := joined(t, g2, g1, "ann", "room")
	c, idC := joined(t, g3, g2, "bob", "room")
	for _, p := range []struct {
		g  *testGW
		id uint64
	}{{g1, idA}, {g2, idB}, {g3, idC}} {
		inc, _, ok := cluster.SplitLinkID(p.id)
		require.True(t, ok)
		assert.Equal(t, p.g.eng.Incarnation(), inc, "link %d's high bits are its node's incarnation", p.id)
		assert.NotZero(t, inc)
	}

	t.Run("publish reaches every node", func(t *testing.T) {
		// Interest travels through the routes apart from the subscribe:
		// publish probes until each remote member got one.
		for _, r := range []*wsReader{b, c} {
			require.Eventually(t, func() bool {
				require.Equal(t, 200, g1.api(t, "POST", "/v1/api/publish", `{"channel":"room","data":"probe"}`, nil))
				select {
				case m := <-r.msgs:
					return m == "probe"
				case <-time.After(50 * time.Millisecond):
					return false
				}
			}, 10*time.Second, time.Millisecond)
		}
		drain := func(r *wsReader) {
			for {
				select {
				case <-r.msgs:
				case <-time.After(100 * time.Millisecond):
					return
				}
			}
		}
		for _, r := range []*wsReader{a, b, c} {
			drain(r)
		}
		// Numbered publishes through g2's admin API arrive, in order, on
		// all three nodes; a publish by rule from a link on g3 too.
		for i := range 20 {
			var res PublishResult
			require.Equal(t, 200, g2.api(t, "POST", "/v1/api/publish", fmt.Sprintf(`{"channel":"room","data":"m%d"}`, i), &res))
			assert.Equal(t, 1, res.Delivered, "the result counts the node's own members")
		}
		for _, r := range []*wsReader{a, b, c} {
			for i := range 20 {
				assert.Equal(t, fmt.Sprintf("m%d", i), r.next(t))
			}
		}
		rule := `{"action":"publish","channel":"room","n":1}`
		send(t, c.ws, rule)
		for _, r := range []*wsReader{a, b, c} {
			assert.Equal(t, rule, r.next(t))
		}
	})

	t.Run("presence and listings over the cluster", func(t *testing.T) {
		for _, g := range gws {
			var chans []ChannelInfo
			require.Equal(t, 200, g.api(t, "GET", "/v1/api/channels", "", &chans))
			assert.Equal(t, []ChannelInfo{{"room", 3, 2}}, chans, "asked of %s: three links, two users", g.self.name)
			var links []LinkInfo
			require.Equal(t, 200, g.api(t, "GET", "/v1/api/links?type=tcplisten&channel=room", "", &links))
			var ids []uint64
			for _, l := range links {
				ids = append(ids, l.ID)
			}
			assert.ElementsMatch(t, []uint64{idA, idB, idC}, ids)
		}
		// A page of the cluster's links, then the next, through g3: the
		// cursor is read by every node.
		resp, body := g3.rawAPI(t, "GET", "/v1/api/links?type=tcplisten&limit=2", "", "")
		require.Equal(t, 200, resp.StatusCode, body)
		var page []LinkInfo
		require.NoError(t, json.Unmarshal([]byte(body), &page))
		assert.Equal(t, "3", resp.Header.Get("X-Total-Count"))
		require.Len(t, page, 2)
		assert.Equal(t, []uint64{min(idA, idB, idC), page[1].ID}, []uint64{page[0].ID, page[1].ID})
		next := strings.TrimSuffix(strings.TrimPrefix(strings.Split(resp.Header.Get("Link"), ";")[0], "<"), ">")
		require.Contains(t, next, "after=")
		var rest []LinkInfo
		require.Equal(t, 200, g1.api(t, "GET", next, "", &rest))
		require.Len(t, rest, 1)
		assert.Equal(t, max(idA, idB, idC), rest[0].ID)

		var links []LinkInfo
		require.Equal(t, 200, g1.api(t, "GET", "/v1/api/links?type=tcplisten&node=g2", "", &links))
		require.Len(t, links, 1)
		assert.Equal(t, idB, links[0].ID)
		assert.Equal(t, 400, g1.api(t, "GET", "/v1/api/links?node=nope", "", nil))

		// The console's event stream shows the same cluster, from any node.
		ws, _, err := g2.dialEvents(nil, eventsProtocol)
		require.NoError(t, err)
		defer ws.Close()
		require.NoError(t, ws.WriteJSON(map[string]any{"watch": map[string]any{"channels": true, "nodes": true}}))
		m := readUntil(t, ws, "the cluster's channels and nodes", func(m streamMsg) bool { return m.Channels != nil && len(m.Nodes) == 3 })
		assert.Equal(t, []ChannelInfo{{"room", 3, 2}}, m.Channels.List)
		assert.Empty(t, m.Missing)
	})

	t.Run("admin by id through another node", func(t *testing.T) {
		var in LinkInfo
		require.Equal(t, 200, g1.api(t, "GET", fmt.Sprintf("/v1/api/links/%d", idB), "", &in))
		assert.Equal(t, idB, in.ID)
		assert.Equal(t, []string{"room"}, in.Channels)

		require.Equal(t, 200, g3.api(t, "POST", fmt.Sprintf("/v1/api/links/%d/send", idB), "direct", nil))
		assert.Equal(t, "direct", b.next(t))

		require.Equal(t, 200, g1.api(t, "POST", fmt.Sprintf("/v1/api/links/%d/subscribe", idB), `{"channel":"side"}`, nil))
		require.Equal(t, 200, g3.api(t, "GET", fmt.Sprintf("/v1/api/links/%d", idB), "", &in))
		assert.Equal(t, []string{"room", "side"}, in.Channels)
		require.Equal(t, 200, g3.api(t, "POST", fmt.Sprintf("/v1/api/links/%d/unsubscribe", idB), `{"channel":"side"}`, nil))

		var tr struct {
			Link    uint64
			Reasons []struct{ Name string }
		}
		require.Equal(t, 200, g1.api(t, "GET", fmt.Sprintf("/v1/api/links/%d/trace", idB), "", &tr))
		assert.Equal(t, idB, tr.Link)
		assert.NotEmpty(t, tr.Reasons)

		// A bad request is the owner's answer, as on the owner.
		assert.Equal(t, 400, g1.api(t, "POST", fmt.Sprintf("/v1/api/links/%d/close", idB), `{"code":1005}`, nil))
		// An incarnation never issued: 404, from any node.
		never, _ := cluster.LinkID(cluster.MaxIncarnation, 1)
		assert.Equal(t, 404, g2.api(t, "GET", fmt.Sprintf("/v1/api/links/%d", never), "", nil))
		assert.Equal(t, 404, g2.api(t, "GET", "/v1/api/links/7", "", nil), "incarnation 0 is the memory engine's")

		// Close through g1: the link closes with the code asked; then
		// it is gone, through any node.
		require.Equal(t, 202, g1.api(t, "POST", fmt.Sprintf("/v1/api/links/%d/close", idB), `{"code":4000,"reason":"bye"}`, nil))
		assert.Equal(t, 4000, <-b.code)
		require.Eventually(t, func() bool {
			return g3.api(t, "GET", fmt.Sprintf("/v1/api/links/%d", idB), "", nil) == 410
		}, 5*time.Second, 10*time.Millisecond)
		// Its disconnect hook fires once, from its own node.
		require.Eventually(t, func() bool { return len(hookEventsOf(hooks, idB)) == 1 }, 10*time.Second, 10*time.Millisecond)
		assert.Equal(t, 4000, hookEventsOf(hooks, idB)[0].Code)
	})

	t.Run("a node stopped abruptly: one disconnect hook per lost link", func(t *testing.T) {
		c2, idC2 := joined(t, g3, g1, "cy", "other")
		_ = c2
		// Both links are recorded in the cluster (a link that opens as
		// its node dies, before its record is written, has no hook).
		for _, id := range []uint64{idC, idC2} {
			l, _ := g3.links.get(id)
			require.NotNil(t, l)
			require.NotNil(t, l.rec, "a link with a disconnect hook has a record")
			select {
			case <-l.rec.done:
				require.True(t, l.rec.written)
			case <-time.After(10 * time.Second):
				t.Fatalf("link %d not recorded in 10s", id)
			}
		}
		// g3 dies without a goodbye: its engine stops with the links'
		// records unsettled (its lease is left to expire), then the
		// gateway, whose links can no longer settle theirs.
		require.NoError(t, g3.eng.Close(context.Background()))
		resp, body := g3.rawAPI(t, "GET", "/readyz", "", "")
		assert.Equal(t, 503, resp.StatusCode, "a node without its lease is not ready")
		assert.Contains(t, body, "cut off from the cluster")
		require.NoError(t, g3.Close())
		lost := time.Now()
		for _, id := range []uint64{idC, idC2} {
			require.Eventually(t, func() bool { return len(hookEventsOf(hooks, id)) > 0 }, 20*time.Second, 20*time.Millisecond,
				"the disconnect hook of link %d", id)
		}
		t.Logf("hooks of the lost links after %v", time.Since(lost).Round(time.Millisecond))
		// The reap is over, and every hook the nodes' queue runners
		// delivered has arrived: none is on its way.
		require.Eventually(t, func() bool {
			delivered := g1.eng.Stats().HooksDelivered + g2.eng.Stats().HooksDelivered + g3.eng.Stats().HooksDelivered
			return g1.eng.Stats().Reaped+g2.eng.Stats().Reaped == 1 && uint64(len(hooks.byEvent("disconnect"))) == delivered
		}, 10*time.Second, 20*time.Millisecond)
		for _, id := range []uint64{idC, idC2} {
			evs := hookEventsOf(hooks, id)
			require.Len(t, evs, 1, "link %d", id)
			assert.Equal(t, 1006, evs[0].Code)
			assert.Equal(t, "gateway node lost: g3", evs[0].Reason)
			assert.Equal(t, "tcplisten", evs[0].Link.Type)
		}
		assert.Equal(t, 410, g1.api(t, "GET", fmt.Sprintf("/v1/api/links/%d", idC), "", nil), "a dead node's link")
		// The survivors go on: a's channel still works, and listings
		// name two nodes.
		require.Equal(t, 200, g2.api(t, "POST", "/v1/api/publish", `{"channel":"room","data":"after"}`, nil))
		assert.Equal(t, "after", a.next(t))
		var nodes []NodeInfo
		require.Eventually(t, func() bool {
			return g1.api(t, "GET", "/v1/api/nodes", "", &nodes) == 200 && len(nodes) == 2
		}, 5*time.Second, 20*time.Millisecond)
		for _, n := range nodes {
			// Each node's own lease, renewed every fraction of a second.
			if assert.NotNil(t, n.LeaseAge, "node %s: lease_age", n.Name) {
				assert.Less(t, *n.LeaseAge, 5.0, "node %s: lease_age", n.Name)
			}
			assert.False(t, n.Fenced, "node %s", n.Name)
			assert.Equal(t, len(n.WorkerList), n.Workers, "node %s", n.Name)
		}
	})
}

// hookEventsOf returns the disconnect events of link id.
func hookEventsOf(h *hookServer, id uint64) []hookEvent {
	var out []hookEvent
	for _, ev := range h.byEvent("disconnect") {
		if ev.Link.ID == id {
			out = append(out, ev)
		}
	}
	return out
}
