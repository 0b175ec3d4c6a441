package gateway

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestHooks(t *testing.T) {
	hs := newHookServer(t)
	g := startGW(t, fmt.Sprintf("hooks:\n  connect: %s/c\n  message: %s/m\n  disconnect: %s/d\n  timeout: 2s\n", hs.URL, hs.URL, hs.URL), nil)

	// Refused by the connect hook: closed with 4403.
	ws := g.dial(t, "/deny", nil)
	code, _ := closeCode(t, ws)
	assert.Equal(t, 4403, code)

	// Messages sent before the hook answers wait for it, in order.
	ws = g.dial(t, "/slow", nil)
	send(t, ws, "first")
	send(t, ws, "second")
	assert.Equal(t, "first", read(t, ws))
	assert.Equal(t, "second", read(t, ws))
	require.Eventually(t, func() bool { return len(hs.byEvent("message")) == 2 }, 10*time.Second, 10*time.Millisecond)
	// Fire and forget: in flight together, they may arrive in any order.
	var data []string
	for _, e := range hs.byEvent("message") {
		data = append(data, e.Data)
	}
	assert.ElementsMatch(t, []string{"first", "second"}, data)

	// Clean close, abrupt TCP loss, server close: one disconnect hook each.
	require.NoError(t, ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(4100, "bye"), time.Now().Add(time.Second)))
	closeCode(t, ws)
	ws2 := g.dial(t, "/", nil)
	id2 := linkID(t, ws2)
	ws2.UnderlyingConn().(*net.TCPConn).SetLinger(0)
	ws2.UnderlyingConn().Close() // RST, no close frame
	ws3 := g.dial(t, "/", nil)
	id3 := linkID(t, ws3)
	require.Equal(t, 202, g.api(t, "DELETE", fmt.Sprintf("/v1/api/links/%d", id3), "", nil))
	closeCode(t, ws3)

	g.waitEmpty(t)
	require.Eventually(t, func() bool { return len(hs.byEvent("disconnect")) == 4 }, 10*time.Second, 10*time.Millisecond)
	byID := map[uint64]hookEvent{}
	for _, e := range hs.byEvent("disconnect") {
		_, dup := byID[e.Link.ID]
		require.False(t, dup, "one disconnect hook per link")
		byID[e.Link.ID] = e
	}
	assert.Equal(t, 1006, byID[id2].Code, "abrupt loss is reported as 1006")
	assert.Equal(t, 1000, byID[id3].Code)
	codes := map[int]bool{}
	for _, e := range byID {
		codes[e.Code] = true
	}
	assert.True(t, codes[4100], "the client's close code: %v", byID)
	assert.Len(t, hs.byEvent("connect"), 4)
}

// TestClientBehindTrustedProxy: behind a trusted proxy the link table,
// the connect and disconnect hooks and the upgrade log name the client
// its X-Forwarded-For names; from another peer the header changes nothing.
func TestClientBehindTrustedProxy(t *testing.T) {
	for _, tc := range []struct {
		proxies, want string
	}{
		{"[127.0.0.0/8]", "203.0.113.9"},
		{"[10.0.0.0/8]", "127.0.0.1"},
	} {
		hs := newHookServer(t)
		g := startGW(t, fmt.Sprintf("hooks:\n  connect: %s/c\n  disconnect: %s/d\n  timeout: 2s\nlisteners:\n  - addr: 127.0.0.1:0\n    trusted_proxies: %s\n", hs.URL, hs.URL, tc.proxies), nil)
		ws := g.dial(t, "/", http.Header{"X-Forwarded-For": {"198.51.100.1, 203.0.113.9"}})
		id := linkID(t, ws)
		var info LinkInfo
		require.Equal(t, 200, g.api(t, "GET", fmt.Sprintf("/v1/api/links/%d", id), "", &info))
		assert.Equal(t, tc.want, hostOf(info.Remote), "link table, trusted %s", tc.proxies)
		ws.Close()
		g.waitEmpty(t)
		var connect, disconnect string
		require.Eventually(t, func() bool {
			for _, e := range hs.byEvent("connect") {
				if e.Link.ID == id {
					connect = e.Link.Remote
				}
			}
			for _, e := range hs.byEvent("disconnect") {
				if e.Link.ID == id {
					disconnect = e.Link.Remote
				}
			}
			return connect != "" && disconnect != ""
		}, 10*time.Second, 10*time.Millisecond)
		assert.Equal(t, tc.want, hostOf(connect), "connect hook")
		assert.Equal(t, tc.want, hostOf(disconnect), "disconnect hook")
	}
}

// TestProxyProtocolListener: on a proxy_protocol listener the link table
// names the client of the connection's PROXY header.
func TestProxyProtocolListener(t *testing.T) {
	g := startGW(t, "listeners:\n  - addr: 127.0.0.1:0\n    proxy_protocol: true\n", nil)
	d := websocket.Dialer{HandshakeTimeout: 5 * time.Second, NetDial: func(_, _ string) (net.Conn, error) {
		nc, err := net.Dial("tcp", g.pub)
		if err == nil {
			_, err = io.WriteString(nc, "PROXY TCP6 2001:db8::7 2001:db8::1 4711 443\r\n")
		}
		return nc, err
	}}
	ws, _, err := d.Dial("ws://"+g.pub+"/", nil)
	require.NoError(t, err)
	defer ws.Close()
	var info LinkInfo
	require.Equal(t, 200, g.api(t, "GET", fmt.Sprintf("/v1/api/links/%d", linkID(t, ws)), "", &info))
	assert.Equal(t, "[2001:db8::7]:4711", info.Remote)
	// Without the header the connection is closed, and logged.
	_, _, err = websocket.DefaultDialer.Dial("ws://"+g.pub+"/", nil)
	require.Error(t, err)
	require.Eventually(t, func() bool { return strings.Contains(g.logs.String(), "no valid PROXY protocol header") }, 5*time.Second, 10*time.Millisecond)
}

func TestDisconnectHookRetriesAndShutdownDelivers(t *testing.T) {
	var mu sync.Mutex
	fails := 1
	var got []hookEvent
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var ev hookEvent
		_ = json.NewDecoder(r.Body).Decode(&ev)
		mu.Lock()
		defer mu.Unlock()
		if fails > 0 {
			fails--
			http.Error(w, "busy", 503)
			return
		}
		got = append(got, ev)
	}))
	defer srv.Close()
	g := startGW(t, "hooks:\n  disconnect: "+srv.URL+"\n  retries: 2\nshutdown: {drain: 100ms, deadline: 10s}\n", nil)
	ws := g.dial(t, "/", nil)
	linkID(t, ws)
	// Shutdown closes the link with 1001 and delivers its hook (after one
	// failed attempt) before returning.
	require.NoError(t, g.Close())
	code, _ := closeCode(t, ws)
	assert.Equal(t, 1001, code)
	mu.Lock()
	defer mu.Unlock()
	require.Len(t, got, 1)
	assert.Equal(t, 1001, got[0].Code)
}

func TestDrainRefusesNewLinksAndClosesOldOnes(t *testing.T) {
	g := startGW(t, "shutdown: {drain: 300ms, deadline: 5s}\n", nil)
	assert.Equal(t, 200, g.api(t, "GET", "/readyz", "", nil))
	var links []*websocket.Conn
	for i := 0; i < 5; i++ {
		ws := g.dial(t, "/", nil)
		linkID(t, ws)
		links = append(links, ws)
	}
	done := make(chan error, 1)
	go func() { done <- g.Shutdown(context.Background()) }()
	require.Eventually(t, func() bool { return !g.Ready() }, 5*time.Second, time.Millisecond)
	assert.Equal(t, 503, g.api(t, "GET", "/readyz", "", nil), "readiness off while draining")
	_, err := g.tryDial("/", nil)
	var ds *dialStatus
	if assert.ErrorAs(t, err, &ds, "a new link while draining") {
		assert.Equal(t, 503, ds.status)
	}
	drained(t, links, done)
}

// drained checks that each of links was closed with 1001 by a shutdown,
// and that the shutdown (its result on done) finished without error.
func drained(t *testing.T, links []*websocket.Conn, done <-chan error) {
	t.Helper()
	for _, ws := range links {
		code, reason := closeCode(t, ws)
		assert.Equal(t, 1001, code)
		assert.Equal(t, "server shutting down", reason)
	}
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(10 * time.Second):
		t.Fatal("shutdown did not finish")
	}
}

func TestReloadKeepsLinks(t *testing.T) {
	g := startGW(t, "rules:\n  - {action: echo}\n", nil)
	ws := g.dial(t, "/", nil)
	send(t, ws, "a")
	assert.Equal(t, "a", read(t, ws))

	cfg := g.Config()
	cfg.Rules = []RuleConfig{{Action: "reply", Reply: "reloaded"}}
	cfg.Log.Level = "warn"
	require.NoError(t, g.Reload(cfg))
	send(t, ws, "b")
	assert.Equal(t, "reloaded", read(t, ws), "same link, new rules")

	bad := g.Config()
	bad.Listeners[0].Addr = "127.0.0.1:1"
	err := g.Reload(bad)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "listeners[0].addr")
	bad = g.Config()
	bad.Rules = []RuleConfig{{Action: "teleport"}}
	require.Error(t, g.Reload(bad))
	send(t, ws, "c")
	assert.Equal(t, "reloaded", read(t, ws), "a failed reload changes nothing")

	// Lowering max_message applies to links already open.
	low := g.Config()
	low.Listeners[0].Limits.MaxMessage = 4
	require.NoError(t, g.Reload(low))
	send(t, ws, "12345")
	code, _ := closeCode(t, ws)
	assert.Equal(t, 1009, code)
}

// A link's listener config is kept on the link (listenerOf) until a
// reload replaces the config, and then read again.
func TestListenerOfFollowsReload(t *testing.T) {
	g := startGW(t, "rules:\n  - {action: echo}\n", nil)
	l := &LinkRecord{Listener: g.Config().Listeners[0].Name}
	lc := g.listenerOf(l)
	require.NotNil(t, lc)
	assert.Same(t, lc, g.listenerOf(l), "kept between two messages")

	cfg := g.Config()
	cfg.Listeners[0].Limits.MaxMessage = 4
	require.NoError(t, g.Reload(cfg))
	after := g.listenerOf(l)
	require.NotNil(t, after)
	assert.NotSame(t, lc, after)
	assert.EqualValues(t, 4, after.Limits.MaxMessage, "the reloaded listener")
	assert.Nil(t, g.listenerOf(&LinkRecord{Listener: "no such listener"}))
}

// TestReloadLimits: limits raised or lowered by Reload apply to the links
// already open and to the next request, enforced by lws
// (Context.SetListenerLimits), each reported as a limit hit; a change of
// max_header_bytes, libwebsockets' own buffer, is refused.
func TestReloadLimits(t *testing.T) {
	g := startGW(t, "listeners:\n  - addr: 127.0.0.1:0\n    limits: {max_message: 1KiB, max_body: 1KiB}\nrules:\n  - {action: echo}\n", nil)
	ws := g.dial(t, "/", nil)
	post := func(n int) int {
		hc := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
		resp, err := hc.Post("http://"+g.pub+"/v1/api/createtoken", "application/json", strings.NewReader(strings.Repeat("x", n)))
		require.NoError(t, err)
		resp.Body.Close()
		return resp.StatusCode
	}
	require.Equal(t, http.StatusRequestEntityTooLarge, post(2<<10))

	up := g.Config()
	up.Listeners[0].Limits.MaxMessage = 64 << 10
	up.Listeners[0].Limits.MaxBody = 64 << 10
	require.NoError(t, g.Reload(up))
	big := strings.Repeat("x", 32<<10)
	send(t, ws, big)
	assert.Equal(t, big, read(t, ws), "max_message raised for the open link")
	assert.NotEqual(t, http.StatusRequestEntityTooLarge, post(2<<10), "max_body raised")

	down := g.Config()
	down.Listeners[0].Limits.MaxBody = 100
	require.NoError(t, g.Reload(down))
	assert.Equal(t, http.StatusRequestEntityTooLarge, post(101), "max_body lowered")

	bad := g.Config()
	bad.Listeners[0].Limits.MaxHeaderBytes = 8 << 10
	err := g.Reload(bad)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "listeners[0].limits.max_header_bytes")

	resp, err := http.Get("http://" + g.admin + "/metrics")
	require.NoError(t, err)
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	assert.Contains(t, string(b), `lwsgate_limit_hits_total{limit="max_body",listener="main"} 2`)
}

func TestMetrics(t *testing.T) {
	g := startGW(t, "", nil)
	ws := g.dial(t, "/", nil)
	send(t, ws, "x")
	read(t, ws)
	send(t, ws, `{"action":"nope"}`) // echoed by the default rules
	read(t, ws)
	require.NoError(t, ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(4000, ""), time.Now().Add(time.Second)))
	closeCode(t, ws)
	g.waitEmpty(t)

	resp, err := http.Get("http://" + g.admin + "/metrics")
	require.NoError(t, err)
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	m := string(b)
	for _, want := range []string{
		`lwsgate_links{type="tcplisten"} 0`,
		`lwsgate_links_opened_total{listener="main",type="tcplisten"} 1`,
		`lwsgate_links_closed_total{code="4000",type="tcplisten"} 1`,
		`lwsgate_messages_total{direction="in"} 2`,
		`lwsgate_messages_total{direction="out"} 2`,
		`lwsgate_rule_matches_total{action="echo",rule="echo"} 2`,
		`lwsgate_lws_callbacks_total{name="LWS_CALLBACK_ESTABLISHED",reason="0"} 1`,
		`lwsgate_lws_callbacks_total{name="LWS_CALLBACK_RECEIVE",reason="6"} 2`,
		`lwsgate_send_queue_bytes 0`,
		`lwsgate_ready 1`,
		`go_goroutines`,
		`process_resident_memory_bytes`,
	} {
		assert.Contains(t, m, want)
	}
}

func TestLimitHitsInMetrics(t *testing.T) {
	g := startGW(t, "listeners:\n  - addr: 127.0.0.1:0\n    limits: {max_body: 1KiB}\n", nil)
	hc := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := hc.Post("http://"+g.pub+"/v1/api/createtoken", "application/json", strings.NewReader(strings.Repeat("x", 4096)))
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusRequestEntityTooLarge, resp.StatusCode)
	resp, err = http.Get("http://" + g.admin + "/metrics")
	require.NoError(t, err)
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	assert.Contains(t, string(b), `lwsgate_limit_hits_total{limit="max_body",listener="main"} 1`)
}
