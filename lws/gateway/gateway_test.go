package gateway

import (
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

	"github.com/lwsgate/lwsgate/lws"
)

func TestLinkTableAndAdminAPI(t *testing.T) {
	g := startGW(t, "", nil)
	ws := g.dial(t, "/chat", nil)
	id := linkID(t, ws)
	send(t, ws, "hello")
	require.Equal(t, "hello", read(t, ws))

	var in LinkInfo
	require.Equal(t, 200, g.api(t, "GET", fmt.Sprintf("/v1/api/links/%d", id), "", &in))
	assert.Equal(t, TypeTCPListen, in.Type)
	assert.Equal(t, "/chat", in.Path)
	assert.Equal(t, "main", in.Listener)
	assert.Contains(t, in.Remote, "127.0.0.1:")
	assert.Equal(t, int64(2), in.MessagesIn)
	assert.Equal(t, int64(2), in.MessagesOut)
	assert.Equal(t, int64(len(`{"action":"info"}`)+5), in.BytesIn)
	assert.False(t, in.LastActivity.Before(in.Opened))

	var list []LinkInfo
	require.Equal(t, 200, g.api(t, "GET", "/v1/api/links?type=tcplisten", "", &list))
	require.Len(t, list, 1)
	assert.Equal(t, id, list[0].ID)

	// Send to the link from the API.
	require.Equal(t, 200, g.api(t, "POST", fmt.Sprintf("/v1/api/links/%d/send", id), "pushed", nil))
	require.Equal(t, "pushed", read(t, ws))
	require.Equal(t, 200, g.api(t, "POST", fmt.Sprintf("/v1/api/links/%d/send?type=binary", id), "\x00\x01", nil))
	mt, p, err := ws.ReadMessage()
	require.NoError(t, err)
	assert.Equal(t, websocket.BinaryMessage, mt)
	assert.Equal(t, []byte{0, 1}, p)

	// Its reason trace.
	var tr struct {
		Reasons []struct {
			Reason int
			Name   string
		}
	}
	require.Equal(t, 200, g.api(t, "GET", fmt.Sprintf("/v1/api/links/%d/trace", id), "", &tr))
	var names []string
	for _, r := range tr.Reasons {
		names = append(names, r.Name)
	}
	assert.Contains(t, names, "LWS_CALLBACK_ESTABLISHED")
	assert.Contains(t, names, "LWS_CALLBACK_RECEIVE")
	assert.Contains(t, names, "LWS_CALLBACK_SERVER_WRITEABLE")

	// Bad requests name what is wrong.
	assert.Equal(t, 400, g.api(t, "GET", "/v1/api/links/abc", "", nil))
	assert.Equal(t, 400, g.api(t, "POST", fmt.Sprintf("/v1/api/links/%d/close", id), `{"code":1005}`, nil))
	assert.Equal(t, 400, g.api(t, "POST", fmt.Sprintf("/v1/api/links/%d/close", id), `{"code":`, nil))
	assert.Equal(t, 404, g.api(t, "GET", "/v1/api/nothing", "", nil))

	// Close it from the API with a code and reason.
	require.Equal(t, 202, g.api(t, "POST", fmt.Sprintf("/v1/api/links/%d/close", id), `{"code":4001,"reason":"kicked"}`, nil))
	code, reason := closeCode(t, ws)
	assert.Equal(t, 4001, code)
	assert.Equal(t, "kicked", reason)
	g.waitEmpty(t)

	// A link that is gone answers 410, as AWS's @connections does; an id
	// never issued, 404.
	assert.Equal(t, 410, g.api(t, "POST", fmt.Sprintf("/v1/api/links/%d/send", id), "late", nil))
	assert.Equal(t, 410, g.api(t, "GET", fmt.Sprintf("/v1/api/links/%d", id), "", nil))
	assert.Equal(t, 410, g.api(t, "GET", fmt.Sprintf("/v1/api/links/%d/trace", id), "", nil))
	assert.Equal(t, 410, g.api(t, "DELETE", fmt.Sprintf("/v1/api/links/%d", id), "", nil))
	assert.Equal(t, 404, g.api(t, "POST", "/v1/api/links/999999/send", "x", nil))
}

func TestAdminToken(t *testing.T) {
	g := startGW(t, "admin:\n  addr: 127.0.0.1:0\n  token: s3cret\n", nil)
	assert.Equal(t, 401, g.api(t, "GET", "/v1/api/links", "", nil))
	req, _ := http.NewRequest("GET", "http://"+g.admin+"/v1/api/links", nil)
	req.Header.Set("Authorization", "Bearer s3cret")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, 200, resp.StatusCode)
	// Probes need no token.
	assert.Equal(t, 200, g.api(t, "GET", "/healthz", "", nil))
	assert.Equal(t, 200, g.api(t, "GET", "/readyz", "", nil))
}

func TestChannelsAndPublish(t *testing.T) {
	g := startGW(t, "", nil)
	a, b, c := g.dial(t, "/", nil), g.dial(t, "/", nil), g.dial(t, "/", nil)
	for _, ws := range []*websocket.Conn{a, b} {
		send(t, ws, `{"action":"subscribe","channel":"room1"}`)
		require.JSONEq(t, `{"type":"subscribed","channel":"room1"}`, read(t, ws))
	}
	// Subscribe c by the API.
	cid := linkID(t, c)
	require.Equal(t, 200, g.api(t, "POST", fmt.Sprintf("/v1/api/links/%d/subscribe", cid), `{"channel":"room1"}`, nil))
	var chans []ChannelInfo
	require.Equal(t, 200, g.api(t, "GET", "/v1/api/channels", "", &chans))
	assert.Equal(t, []ChannelInfo{{"room1", 3, 0}}, chans)

	// Publish from a link (a rule) and from the API.
	send(t, a, `{"action":"publish","channel":"room1","text":"hi"}`)
	for _, ws := range []*websocket.Conn{a, b, c} {
		assert.JSONEq(t, `{"action":"publish","channel":"room1","text":"hi"}`, read(t, ws))
	}
	var res PublishResult
	require.Equal(t, 200, g.api(t, "POST", "/v1/api/publish", `{"channel":"room1","data":"from backend"}`, &res))
	assert.Equal(t, PublishResult{Delivered: 3}, res)
	for _, ws := range []*websocket.Conn{a, b, c} {
		assert.Equal(t, "from backend", read(t, ws))
	}
	require.Equal(t, 200, g.api(t, "POST", "/v1/api/publish", `{"channel":"room1","data_base64":"AAE="}`, &res))
	for _, ws := range []*websocket.Conn{a, b, c} {
		mt, p, err := ws.ReadMessage()
		require.NoError(t, err)
		assert.Equal(t, websocket.BinaryMessage, mt)
		assert.Equal(t, []byte{0, 1}, p)
	}
	assert.Equal(t, 400, g.api(t, "POST", "/v1/api/publish", `{"data":"x"}`, nil), "no channel")
	assert.Equal(t, 400, g.api(t, "POST", "/v1/api/publish", `{"channel":"x","bogus":1}`, nil), "unknown field")

	// Unsubscribe b; a leaves by closing.
	send(t, b, `{"action":"unsubscribe","channel":"room1"}`)
	require.JSONEq(t, `{"type":"unsubscribed","channel":"room1"}`, read(t, b))
	a.Close()
	require.Eventually(t, func() bool {
		cs := g.Channels()
		return len(cs) == 1 && cs[0].Members == 1
	}, 10*time.Second, 10*time.Millisecond)
	require.Equal(t, 200, g.api(t, "POST", "/v1/api/publish", `{"channel":"room1","data":"only c"}`, &res))
	assert.Equal(t, 1, res.Delivered)
	assert.Equal(t, "only c", read(t, c))
	b.Close()
	c.Close()
	g.waitEmpty(t)
}

func TestRules(t *testing.T) {
	// An http backend for the forward action.
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		if strings.Contains(string(b), "fail") {
			http.Error(w, "no", http.StatusTeapot)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"backend":"saw","body":%q,"link":%q,"user":%q}`, b, r.Header.Get("X-Lwsgate-Link"), r.Header.Get("X-Lwsgate-User"))
	}))
	defer api.Close()
	g := startGW(t, `
backends:
  - {name: api, url: "`+api.URL+`/hook"}
rules:
  - {name: admin-path, match: {path: "/admin*"}, action: reply, reply: "admin area"}
  - {name: bin, match: {type: binary}, action: drop}
  - {name: ping, match: {field: action, value: ping}, action: reply, reply: '{"action":"pong"}'}
  - {name: nested, match: {field: data.kind, value: "42"}, action: reply, reply: nested}
  - {name: ask, match: {field: action, value: ask}, action: forward, backend: api}
  - {name: bye, match: {prefix: "bye"}, action: close, code: 4002, reason: "see you"}
  - {name: close-cmd, match: {prefix: "/close "}, action: close}
`, nil)
	ws := g.dial(t, "/", nil)
	send(t, ws, `{"action":"ping"}`)
	assert.Equal(t, `{"action":"pong"}`, read(t, ws))
	send(t, ws, `{"data":{"kind":42}}`)
	assert.Equal(t, "nested", read(t, ws))

	// Forward: the backend's answer comes back to this link.
	send(t, ws, `{"action":"ask","q":1}`)
	var fw map[string]string
	require.NoError(t, json.Unmarshal([]byte(read(t, ws)), &fw))
	assert.Equal(t, `{"action":"ask","q":1}`, fw["body"])
	assert.NotEmpty(t, fw["link"])
	send(t, ws, `{"action":"ask","fail":1}`)
	assert.JSONEq(t, `{"type":"error","error":"backend answered 418","rule":"ask"}`, read(t, ws))

	// Binary is dropped; unknown and malformed messages get an error
	// message and the link carries on.
	require.NoError(t, ws.WriteMessage(websocket.BinaryMessage, []byte{1, 2, 3}))
	send(t, ws, `{"action":"unknown"}`)
	assert.JSONEq(t, `{"type":"error","error":"no route for this message"}`, read(t, ws))
	send(t, ws, `{"action":`)
	var e errorMessage
	require.NoError(t, json.Unmarshal([]byte(read(t, ws)), &e))
	assert.Equal(t, "error", e.Type)
	assert.Contains(t, e.Error, "not JSON")
	send(t, ws, "/close 99")
	require.NoError(t, json.Unmarshal([]byte(read(t, ws)), &e))
	assert.Contains(t, e.Error, "close code")
	assert.Contains(t, g.logs.String(), "msg unknown")

	// Path match.
	adm := g.dial(t, "/admin/x", nil)
	send(t, adm, "anything")
	assert.Equal(t, "admin area", read(t, adm))

	send(t, ws, "bye now")
	code, reason := closeCode(t, ws)
	assert.Equal(t, 4002, code)
	assert.Equal(t, "see you", reason)
	ws2 := g.dial(t, "/", nil)
	send(t, ws2, "/close 4100 done")
	code, reason = closeCode(t, ws2)
	assert.Equal(t, 4100, code)
	assert.Equal(t, "done", reason)
}

func TestRouterInProcess(t *testing.T) {
	var seen []string
	var mu sync.Mutex
	r := RouterFunc(func(g *Gateway, m *Message) bool {
		mu.Lock()
		seen = append(seen, string(m.Data))
		mu.Unlock()
		if v, ok := m.Field("op"); ok && v == "upper" {
			_ = g.Send(m.Link.ID, lws.TextMessage, []byte(strings.ToUpper(string(m.Data))))
			return true
		}
		return false // on to the rules
	})
	g := startGW(t, "", &Options{Router: r})
	ws := g.dial(t, "/", nil)
	send(t, ws, `{"op":"upper"}`)
	assert.Equal(t, `{"OP":"UPPER"}`, read(t, ws))
	send(t, ws, "plain")
	assert.Equal(t, "plain", read(t, ws), "not handled: the rules echo it")
	mu.Lock()
	assert.Equal(t, []string{`{"op":"upper"}`, "plain"}, seen)
	mu.Unlock()
}

func TestRelayRuleBindsFriends(t *testing.T) {
	backend := wsBackend(t, "up:")
	g := startGW(t, `
backends:
  - {name: chat, url: "`+backend+`/"}
rules:
  - {match: {path: /chat}, action: relay, backend: chat}
  - {action: echo}
`, nil)
	ws := g.dial(t, "/chat", nil)
	send(t, ws, "one")
	assert.Equal(t, "up:one", read(t, ws))
	var routes []Route
	require.Equal(t, 200, g.api(t, "GET", "/v1/api/routes", "", &routes))
	require.Len(t, routes, 2, "downstream and upstream are friends both ways")
	assert.Equal(t, 0, routes[0].Depth)
	var links []LinkInfo
	require.Equal(t, 200, g.api(t, "GET", "/v1/api/links?type=tcpconnect", "", &links))
	require.Len(t, links, 1)
	assert.Contains(t, links[0].URL, "ws://127.0.0.1:")
	ws.Close()
	g.waitEmpty(t)
}

func TestRouteTableDepths(t *testing.T) {
	rt := newRouteTable(newDiscard())
	rt.bindFriend(1, 2) // client 1 <-> gateway link 2
	rt.bindFriend(2, 3) // link 2 <-> backend link 3: 1 reaches 3 in one more hop
	assert.Equal(t, []Route{{1, 2, 0}, {1, 3, 1}}, rt.peers(1))
	assert.Equal(t, []Route{{3, 1, 1}, {3, 2, 0}}, sortedByPeer(rt.peers(3)))
	rt.del(2)
	assert.Equal(t, []Route{{1, 3, 1}}, rt.peers(1))
	rt.del(1)
	rt.del(3)
	assert.Equal(t, 0, rt.len())
}

func TestAuthAtUpgrade(t *testing.T) {
	g := startGW(t, `
tokens: {secret: test-secret, ttl: 1m}
listeners:
  - addr: 127.0.0.1:0
    auth:
      require_token: true
      origins: ["https://app.example.com"]
`, nil)
	good := http.Header{"Origin": {"https://app.example.com"}}
	_, err := g.tryDial("/", good)
	require.Error(t, err)
	var ds *dialStatus
	require.ErrorAs(t, err, &ds)
	assert.Equal(t, 401, ds.status, "no token")

	_, err = g.tryDial("/?token=not.a.jwt", good)
	require.ErrorAs(t, err, &ds)
	assert.Equal(t, 401, ds.status, "bad token")

	// A token from createtoken, signed with another secret: 401.
	other := newTokens([]byte("other"), time.Minute)
	forged, _, _ := other.issue("mallory", "")
	_, err = g.tryDial("/?token="+forged, good)
	require.ErrorAs(t, err, &ds)
	assert.Equal(t, 401, ds.status, "forged token")
	expired := newTokens([]byte("test-secret"), -time.Minute)
	old, _, _ := expired.issue("keda", "")
	_, err = g.tryDial("/?token="+old, good)
	require.ErrorAs(t, err, &ds)
	assert.Equal(t, 401, ds.status, "expired token")

	hc := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := hc.Post("http://"+g.pub+"/v1/api/createtoken", "application/json", strings.NewReader(`{"UserName":"keda","RequestId":"7"}`))
	require.NoError(t, err)
	var tok struct{ Token string }
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&tok))
	resp.Body.Close()

	_, err = g.tryDial("/?token="+tok.Token, http.Header{"Origin": {"https://evil.example.com"}})
	require.ErrorAs(t, err, &ds)
	assert.Equal(t, 403, ds.status, "origin not allowed")

	ws, err := g.tryDial("/?token="+tok.Token, good)
	require.NoError(t, err)
	defer ws.Close()
	send(t, ws, `{"action":"info"}`)
	info := read(t, ws)
	ws1 := g.links.list(func(l *LinkRecord) bool { return l.Type == TypeTCPListen })
	require.Len(t, ws1, 1)
	assert.JSONEq(t, fmt.Sprintf(`{"type":"info","link":%d,"user":"keda","listener":"main"}`, ws1[0].ID), info)
	h := http.Header{"Origin": {"https://app.example.com"}, "Authorization": {"Bearer " + tok.Token}}
	ws2, err := g.tryDial("/", h)
	require.NoError(t, err, "token in the Authorization header")
	ws2.Close()

	// None of the refused upgrades became a link.
	ws.Close()
	g.waitEmpty(t)
	assert.Equal(t, 2, strings.Count(g.logs.String(), `msg="link add" link=`)-strings.Count(g.logs.String(), "type=httplisten listener"))
	assert.Contains(t, g.logs.String(), `msg="upgrade refused"`)
}

func TestUnroutableWithNoRules(t *testing.T) {
	g := startGW(t, "rules: []\n", nil)
	ws := g.dial(t, "/", nil)
	send(t, ws, "anything")
	assert.JSONEq(t, `{"type":"error","error":"no route for this message"}`, read(t, ws))
	send(t, ws, "still here")
	assert.JSONEq(t, `{"type":"error","error":"no route for this message"}`, read(t, ws))
}

func TestOversizeMessageClosesWith1009(t *testing.T) {
	g := startGW(t, "listeners:\n  - addr: 127.0.0.1:0\n    limits: {max_message: 1KiB}\n", nil)
	ws := g.dial(t, "/", nil)
	send(t, ws, strings.Repeat("x", 1024))
	assert.Len(t, read(t, ws), 1024)
	send(t, ws, strings.Repeat("x", 1025))
	code, _ := closeCode(t, ws)
	assert.Equal(t, 1009, code)
	// The gateway is fine.
	ws2 := g.dial(t, "/", nil)
	send(t, ws2, "ok")
	assert.Equal(t, "ok", read(t, ws2))
}

// TestListenerCompression: compression: true on a listener agrees
// permessage-deflate with a client that offers it, and max_message bounds
// the inflated message; without it (the default) the offer is ignored.
func TestListenerCompression(t *testing.T) {
	for _, on := range []bool{true, false} {
		g := startGW(t, fmt.Sprintf("listeners:\n  - addr: 127.0.0.1:0\n    compression: %v\n    limits: {max_message: 64KiB}\n", on), nil)
		d := websocket.Dialer{EnableCompression: true}
		ws, resp, err := d.Dial("ws://"+g.pub+"/", nil)
		require.NoError(t, err)
		defer ws.Close()
		assert.Equal(t, on, resp.Header.Get("Sec-WebSocket-Extensions") != "", "compression: %v", on)
		msg := strings.Repeat("compressible ", 5000) // 65000 bytes
		send(t, ws, msg)
		assert.Equal(t, msg, read(t, ws))
		send(t, ws, msg+strings.Repeat("x", 600))
		code, _ := closeCode(t, ws)
		assert.Equal(t, 1009, code)
	}
}

func TestPortInUseNamesTheAddress(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	cfg, err := ParseConfig("x", []byte("listeners:\n  - addr: "+ln.Addr().String()+"\nadmin: {addr: 127.0.0.1:0}\n"))
	require.NoError(t, err)
	_, err = New(cfg, &Options{Logger: newDiscard()})
	require.Error(t, err)
	assert.Contains(t, err.Error(), ln.Addr().String())
}

func TestTwoListenersAndLinkTypes(t *testing.T) {
	g := startGW(t, `
listeners:
  - {name: ws, addr: "127.0.0.1:0", links: [tcplisten]}
  - {name: http, addr: "127.0.0.1:0", links: [httplisten]}
rules:
  - {match: {listener: ws}, action: reply, reply: "from ws"}
`, nil)
	httpAddr := g.Addrs()["http"].String()
	ws := g.dial(t, "/", nil)
	send(t, ws, "x")
	assert.Equal(t, "from ws", read(t, ws))

	// The ws-only listener answers no HTTP request; the http-only one no
	// upgrade.
	resp, err := http.Get("http://" + g.pub + "/healthz")
	if err == nil {
		assert.NotEqual(t, 200, resp.StatusCode)
		resp.Body.Close()
	}
	hc := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err = hc.Get("http://" + httpAddr + "/healthz")
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, 200, resp.StatusCode)
	_, _, err = websocket.DefaultDialer.Dial("ws://"+httpAddr+"/", nil)
	assert.Error(t, err, "no upgrade on an httplisten-only listener")

	var links []LinkInfo
	require.Equal(t, 200, g.api(t, "GET", "/v1/api/links?type=tcplisten", "", &links))
	require.Len(t, links, 1)
	assert.Equal(t, "ws", links[0].Listener)
}
