package gateway

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// headerRecorder is an http or ws backend that hands each request's
// headers to the test.
func headerRecorder(t *testing.T, ws bool) (*httptest.Server, chan http.Header) {
	got := make(chan http.Header, 16)
	up := websocket.Upgrader{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got <- r.Header.Clone()
		if !ws {
			w.WriteHeader(http.StatusNoContent)
			return
		}
		c, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer c.Close()
		for {
			if _, _, err := c.ReadMessage(); err != nil {
				return
			}
		}
	}))
	t.Cleanup(srv.Close)
	return srv, got
}

func nextHeader(t *testing.T, got chan http.Header) http.Header {
	t.Helper()
	select {
	case h := <-got:
		return h
	case <-time.After(10 * time.Second):
		t.Fatal("the backend got no request")
		return nil
	}
}

// assertHeaders checks that h has want (name: value) and none of absent.
func assertHeaders(t *testing.T, what string, h http.Header, want map[string]string, absent ...string) {
	t.Helper()
	for k, v := range want {
		assert.Equal(t, []string{v}, h.Values(k), "%s: %s", what, k)
	}
	for _, k := range absent {
		assert.Empty(t, h.Values(k), "%s: %s passed", what, k)
	}
}

// TestForwardHeadersHTTP: a forward prefix passes the client's headers
// its backend's forward_headers names, and its static headers over the
// client's; hop-by-hop ones, those Connection names and the gateway's own
// never pass; without a list, every other header passes, as before.
func TestForwardHeadersHTTP(t *testing.T) {
	srv, got := headerRecorder(t, false)
	g := startGW(t, fmt.Sprintf(`
backends:
  - name: api
    url: %[1]s
    forward_headers: [cookie, user-agent, x-request-id]
    headers: {x-api-key: k-123, cookie: static=1}
  - name: all
    url: %[1]s
listeners:
  - addr: 127.0.0.1:0
    forward:
      - {prefix: /api/, backend: api}
      - {prefix: /all/, backend: all}
`, srv.URL), nil)
	req := func(path string) string {
		return "POST " + path + " HTTP/1.1\r\nHost: test\r\n" +
			"Cookie: session=abc\r\nUser-Agent: test-agent/1\r\nX-Request-Id: rid-7\r\n" +
			"Accept-Language: fr\r\nAuthorization: Bearer client-token\r\n" +
			"If-None-Match: \"v1\"\r\nConnection: keep-alive, If-None-Match\r\nTE: trailers\r\nTrailer: X-Sum\r\nProxy-Authorization: Basic eDp5\r\n" +
			"X-Forwarded-For: 6.6.6.6\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"
	}
	require.Equal(t, http.StatusNoContent, rawHTTP(t, g.pub, req("/api/x")))
	h := nextHeader(t, got)
	assertHeaders(t, "allow-listed", h, map[string]string{
		"Cookie": "static=1", "User-Agent": "test-agent/1", "X-Request-Id": "rid-7", "X-Api-Key": "k-123",
		"Content-Type": "application/json", "X-Forwarded-For": "127.0.0.1",
	}, "Accept-Language", "Authorization", "If-None-Match", "Keep-Alive")

	require.Equal(t, http.StatusNoContent, rawHTTP(t, g.pub, req("/all/x")))
	h = nextHeader(t, got)
	assertHeaders(t, "no list", h, map[string]string{
		"Cookie": "session=abc", "Accept-Language": "fr", "Authorization": "Bearer client-token",
		"Content-Type": "application/json", "X-Forwarded-For": "127.0.0.1",
	}, "If-None-Match", "X-Api-Key", "Te", "Trailer", "Proxy-Authorization")
}

// rawHTTP sends one request on its own connection and returns the
// response's status.
func rawHTTP(t *testing.T, addr, req string) int {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	require.NoError(t, err)
	defer c.Close()
	require.NoError(t, c.SetDeadline(time.Now().Add(10*time.Second)))
	_, err = c.Write([]byte(req))
	require.NoError(t, err)
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	require.NoError(t, err)
	resp.Body.Close()
	return resp.StatusCode
}

// TestForwardHeadersFromLinks: the forward and relay actions and the
// hooks pass the headers of a link's upgrade request their lists name,
// and their static headers; not the others, not the handshake's (the
// client's Sec-WebSocket-Protocol may hold its token).
func TestForwardHeadersFromLinks(t *testing.T) {
	httpSrv, httpGot := headerRecorder(t, false)
	wsSrv, wsGot := headerRecorder(t, true)
	hookSrv, hookGot := headerRecorder(t, false)
	g := startGW(t, fmt.Sprintf(`
backends:
  - name: fwd
    url: %s
    forward_headers: [cookie, user-agent, x-request-id]
    headers: {x-api-key: k-1}
  - name: relay
    url: %s
    forward_headers: [cookie, origin, x-request-id]
    headers: {x-api-key: k-2}
hooks:
  connect: %s
  forward_headers: [cookie]
  headers: {x-hook-key: k-3}
rules:
  - {match: {prefix: fwd}, action: forward, backend: fwd}
  - {match: {prefix: relay}, action: relay, backend: relay}
`, httpSrv.URL, "ws"+strings.TrimPrefix(wsSrv.URL, "http"), hookSrv.URL), nil)
	hdr := http.Header{
		"Cookie": {"session=abc"}, "User-Agent": {"test-agent/1"}, "X-Request-Id": {"rid-7"},
		"Accept-Language": {"fr"}, "Authorization": {"Bearer client-token"}, "Origin": {"http://app.test"},
	}
	ws, _, body := g.upgrade(t, "/", hdr, "lws-gate")
	require.NotNil(t, ws, body)

	h := nextHeader(t, hookGot)
	assertHeaders(t, "connect hook", h, map[string]string{"Cookie": "session=abc", "X-Hook-Key": "k-3", "X-Forwarded-For": "127.0.0.1", "X-Lwsgate-Event": "connect"},
		"User-Agent", "X-Request-Id", "Accept-Language", "Authorization", "Origin", "Sec-Websocket-Protocol")

	send(t, ws, "fwd this")
	h = nextHeader(t, httpGot)
	assertHeaders(t, "forward action", h, map[string]string{
		"Cookie": "session=abc", "User-Agent": "test-agent/1", "X-Request-Id": "rid-7", "X-Api-Key": "k-1",
		"X-Forwarded-For": "127.0.0.1", "Content-Type": "text/plain; charset=utf-8",
	}, "Accept-Language", "Authorization", "Origin", "Sec-Websocket-Protocol", "Sec-Websocket-Key")

	send(t, ws, "relay this")
	h = nextHeader(t, wsGot)
	assertHeaders(t, "relay upgrade", h, map[string]string{
		"Cookie": "session=abc", "Origin": "http://app.test", "X-Request-Id": "rid-7", "X-Api-Key": "k-2", "X-Forwarded-For": "127.0.0.1",
	}, "Accept-Language", "Authorization", "Sec-Websocket-Protocol")
	assert.NotEqual(t, "test-agent/1", h.Get("User-Agent"))
}

// TestForwardHeadersReload: a reload may narrow the lists, but a header
// the listeners were not started keeping needs a restart.
func TestForwardHeadersReload(t *testing.T) {
	g := startGW(t, "backends:\n  - {name: api, url: \"http://127.0.0.1:1\", forward_headers: [cookie, x-request-id]}\n", nil)
	cfg := g.Config()
	cfg.Backends[0].ForwardHeaders = []string{"cookie"}
	require.NoError(t, g.Reload(cfg))
	cfg.Backends[0].ForwardHeaders = []string{"cookie", "x-tenant"}
	err := g.Reload(cfg)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "X-Tenant is not among the headers the listeners keep")
}
