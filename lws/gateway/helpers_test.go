package gateway

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/require"
)

// The package's test helpers, in one place: a gateway on loopback ports
// (startGW) and its clients (dial, api, rawAPI), a hook server, a ws
// backend, and small helpers the tests share.

// testGW is a gateway on loopback ports for one test.
type testGW struct {
	*Gateway
	pub, admin string // host:port
	logs       *syncBuffer
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// startGW runs a gateway from YAML; listeners and admin use 127.0.0.1:0
// unless the YAML says otherwise, and what it leaves out is the default
// (the rules ending in echo). It is shut down when the test ends.
func startGW(t testing.TB, yaml string, opts *Options) *testGW {
	t.Helper()
	if !strings.Contains(yaml, "listeners:") {
		yaml += "\nlisteners:\n  - addr: 127.0.0.1:0\n    subprotocols: [lws-gate]\n"
	}
	if !strings.Contains(yaml, "admin:") {
		yaml += "\nadmin:\n  addr: 127.0.0.1:0\n"
	}
	cfg, err := ParseConfig(t.Name()+".yaml", []byte(yaml))
	require.NoError(t, err)
	logs := &syncBuffer{}
	if opts == nil {
		opts = &Options{}
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	g, err := New(cfg, opts)
	require.NoError(t, err)
	t.Cleanup(func() {
		if err := g.Close(); err != nil {
			t.Errorf("gateway close: %v\n%s", err, logs)
		}
	})
	tg := &testGW{Gateway: g, pub: g.Addrs()[cfg.Listeners[0].Name].String(), logs: logs}
	if a, ok := g.Addrs()[AdminListener]; ok {
		tg.admin = a.String()
	}
	return tg
}

// dial opens a WebSocket link to the gateway's first listener.
func (g *testGW) dial(t testing.TB, path string, hdr http.Header) *websocket.Conn {
	t.Helper()
	ws, err := g.tryDial(path, hdr)
	require.NoError(t, err)
	t.Cleanup(func() { ws.Close() })
	return ws
}

func (g *testGW) tryDial(path string, hdr http.Header) (*websocket.Conn, error) {
	d := websocket.Dialer{HandshakeTimeout: 5 * time.Second}
	ws, resp, err := d.Dial("ws://"+g.pub+path, hdr)
	if resp != nil && resp.Body != nil {
		resp.Body.Close()
	}
	if err != nil {
		if resp != nil {
			return nil, &dialStatus{resp.StatusCode, err}
		}
		return nil, err
	}
	_ = ws.SetReadDeadline(time.Now().Add(20 * time.Second))
	return ws, nil
}

type dialStatus struct {
	status int
	err    error
}

func (d *dialStatus) Error() string { return d.err.Error() }

// api calls the admin API and decodes a JSON answer into out (if non-nil).
func (g *testGW) api(t testing.TB, method, path, body string, out any) int {
	t.Helper()
	req, err := http.NewRequest(method, "http://"+g.admin+path, strings.NewReader(body))
	require.NoError(t, err)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if out != nil && resp.StatusCode/100 == 2 {
		require.NoError(t, json.Unmarshal(b, out), "%s %s: %s", method, path, b)
	}
	return resp.StatusCode
}

// read reads one text message.
func read(t testing.TB, ws *websocket.Conn) string {
	t.Helper()
	_, p, err := ws.ReadMessage()
	require.NoError(t, err)
	return string(p)
}

func send(t testing.TB, ws *websocket.Conn, s string) {
	t.Helper()
	require.NoError(t, ws.WriteMessage(websocket.TextMessage, []byte(s)))
}

// closeCode reads until the link closes and returns the close code.
func closeCode(t testing.TB, ws *websocket.Conn) (int, string) {
	t.Helper()
	for {
		_, _, err := ws.ReadMessage()
		if err != nil {
			var ce *websocket.CloseError
			if ok := asClose(err, &ce); ok {
				return ce.Code, ce.Text
			}
			return 1006, err.Error()
		}
	}
}

func asClose(err error, ce **websocket.CloseError) bool {
	c, ok := err.(*websocket.CloseError)
	if ok {
		*ce = c
	}
	return ok
}

// linkID asks the link for its id (the info action of the default rules).
func linkID(t testing.TB, ws *websocket.Conn) uint64 {
	t.Helper()
	send(t, ws, `{"action":"info"}`)
	var m struct {
		Type string
		Link uint64
	}
	require.NoError(t, json.Unmarshal([]byte(read(t, ws)), &m))
	require.Equal(t, "info", m.Type)
	return m.Link
}

// waitEmpty waits (bounded) until the link, route and channel tables are
// empty.
func (g *testGW) waitEmpty(t testing.TB) {
	t.Helper()
	require.Eventually(t, func() bool {
		return g.links.len() == 0 && g.routes.len() == 0 && g.hub.len() == 0
	}, 20*time.Second, 10*time.Millisecond, "links %d routes %d channels %d", g.links.len(), g.routes.len(), g.hub.len())
}

func newDiscard() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// stringOf is n bytes b.
func stringOf(b byte, n int) string { return string(bytes.Repeat([]byte{b}, n)) }

// reflectPointer is a function's code pointer, to tell which one a rule
// was compiled with.
func reflectPointer(f any) uintptr { return reflect.ValueOf(f).Pointer() }

// rawAPI calls the admin API and returns the response with its body read.
func (g *testGW) rawAPI(t testing.TB, method, path, token, body string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, "http://"+g.admin+path, strings.NewReader(body))
	require.NoError(t, err)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp, string(b)
}

// hookServer records webhook calls; connect is refused for paths with
// "deny".
type hookServer struct {
	*httptest.Server
	mu     sync.Mutex
	events []hookEvent
}

func newHookServer(t *testing.T) *hookServer {
	h := &hookServer{}
	h.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var ev hookEvent
		if err := json.NewDecoder(r.Body).Decode(&ev); err != nil {
			http.Error(w, err.Error(), 400)
			return
		}
		h.mu.Lock()
		h.events = append(h.events, ev)
		h.mu.Unlock()
		if ev.Event == "connect" && strings.Contains(ev.Link.Path, "deny") {
			http.Error(w, "denied", http.StatusForbidden)
			return
		}
		if ev.Event == "connect" && strings.Contains(ev.Link.Path, "slow") {
			time.Sleep(300 * time.Millisecond) // messages wait meanwhile
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(h.Close)
	return h
}

func (h *hookServer) byEvent(name string) []hookEvent {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []hookEvent
	for _, e := range h.events {
		if e.Event == name {
			out = append(out, e)
		}
	}
	return out
}

func hostOf(hostport string) string {
	h, _, err := net.SplitHostPort(hostport)
	if err != nil {
		return hostport
	}
	return h
}

// wsBackend is a Go WebSocket backend that echoes each message with
// prefix before it.
func wsBackend(t testing.TB, prefix string) string {
	up := websocket.Upgrader{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer c.Close()
		for {
			mt, p, err := c.ReadMessage()
			if err != nil {
				return
			}
			_ = c.WriteMessage(mt, append([]byte(prefix), p...))
		}
	}))
	t.Cleanup(srv.Close)
	return "ws" + strings.TrimPrefix(srv.URL, "http")
}

// rssKiB returns this process's resident set size.
func rssKiB(t testing.TB) int64 {
	b, err := os.ReadFile("/proc/self/status")
	require.NoError(t, err)
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			var kib int64
			_, err := fmt.Sscanf(strings.TrimSpace(v), "%d kB", &kib)
			require.NoError(t, err)
			return kib
		}
	}
	t.Fatal("no VmRSS")
	return 0
}

func sortedByPeer(r []Route) []Route {
	out := append([]Route(nil), r...)
	for i := range out {
		for j := i + 1; j < len(out); j++ {
			if out[j].Peer < out[i].Peer {
				out[i], out[j] = out[j], out[i]
			}
		}
	}
	return out
}

// createTokenClient connects a raw TCP client that allocates nothing to
// the public listener at addr and returns its round trip: one keep-alive
// POST /v1/api/createtoken and the whole answer, which must be a 200.
func createTokenClient(tb testing.TB, addr string) (roundTrip func()) {
	nc, err := net.DialTimeout("tcp", addr, 5*time.Second)
	require.NoError(tb, err)
	tb.Cleanup(func() { nc.Close() })
	body := `{"UserName":"keda","RequestId":"1614738418531"}`
	req := []byte("POST /v1/api/createtoken HTTP/1.1\r\nHost: bench\r\nContent-Type: application/json\r\nContent-Length: " +
		strconv.Itoa(len(body)) + "\r\n\r\n" + body)
	buf := make([]byte, 4096)
	// An answer is its headers and a body of Content-Length bytes.
	return func() {
		_, err := nc.Write(req)
		require.NoError(tb, err)
		n, end, size := 0, -1, 0
		for end < 0 || n < end+size {
			m, err := nc.Read(buf[n:])
			require.NoError(tb, err)
			n += m
			if end < 0 {
				if i := bytes.Index(buf[:n], []byte("\r\n\r\n")); i >= 0 {
					end = i + 4
					_, cl, ok := bytes.Cut(buf[:i], []byte("content-length: "))
					cl, _, _ = bytes.Cut(cl, []byte("\r\n"))
					size, err = strconv.Atoi(string(cl))
					if !ok || err != nil || !bytes.HasPrefix(buf, []byte("HTTP/1.1 200 ")) {
						tb.Fatalf("answer %q", buf[:n]) // boxing buf costs an allocation: only here
					}
				}
			}
		}
	}
}
