package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/gorilla/websocket"
	"github.com/lwsgate/lwsgate/internal/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// startGateway runs lwsgate in-process with args on 127.0.0.1:0 and stops
// it (checking a clean exit) when the test ends.
func startGateway(t *testing.T, args ...string) (addr string, logs *testutil.Buffer) {
	t.Helper()
	addrs, logs := startGatewayAddrs(t, args...)
	return addrs[0].String(), logs
}

// startGatewayAddrs is startGateway returning every listener's address,
// the admin listener's last.
func startGatewayAddrs(t *testing.T, args ...string) (addrs []net.Addr, logs *testutil.Buffer) {
	t.Helper()
	logs = &testutil.Buffer{}
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan []net.Addr, 1)
	code := make(chan int, 1)
	go func() {
		code <- run(ctx, append([]string{"-listen", "127.0.0.1:0", "-admin", "127.0.0.1:0"}, args...), io.Discard, logs, func(a []net.Addr) { ready <- a })
	}()
	select {
	case addrs = <-ready:
	case c := <-code:
		t.Fatalf("lwsgate exited with %d:\n%s", c, logs)
	case <-time.After(10 * time.Second):
		t.Fatal("lwsgate did not start")
	}
	t.Cleanup(func() {
		cancel()
		select {
		case c := <-code:
			assert.Equal(t, 0, c, "exit code; log:\n%s", logs)
		case <-time.After(15 * time.Second):
			t.Error("lwsgate did not stop")
		}
	})
	return addrs, logs
}

func TestEchoAndCreateToken(t *testing.T) {
	t.Setenv("LWSGATE_TOKEN_SECRET", "test-secret")
	addr, logs := startGateway(t)

	d := websocket.Dialer{Subprotocols: []string{"lws-gate"}, HandshakeTimeout: 5 * time.Second}
	ws, resp, err := d.Dial("ws://"+addr+"/", nil)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, "lws-gate", ws.Subprotocol())
	_ = ws.SetReadDeadline(time.Now().Add(10 * time.Second))
	require.NoError(t, ws.WriteMessage(websocket.TextMessage, []byte("hello world")))
	typ, got, err := ws.ReadMessage()
	require.NoError(t, err)
	assert.Equal(t, websocket.TextMessage, typ)
	assert.Equal(t, "hello world", string(got))
	require.NoError(t, ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(1000, "bye"), time.Now().Add(time.Second)))
	_, _, err = ws.ReadMessage()
	assert.True(t, websocket.IsCloseError(err, 1000), "close echoed: %v", err)
	ws.Close()

	body := `{"UserName": "keda", "RequestId": "1614738418531"}`
	r, err := http.Post("http://"+addr+"/v1/api/createtoken", "application/json", strings.NewReader(body))
	require.NoError(t, err)
	defer r.Body.Close()
	assert.Equal(t, 200, r.StatusCode)
	assert.Equal(t, "application/json", r.Header.Get("Content-Type"))
	var out struct {
		Code      int
		RequestID string `json:"RequestId"`
		Token     string
	}
	require.NoError(t, json.NewDecoder(r.Body).Decode(&out))
	assert.Equal(t, 0, out.Code)
	assert.Equal(t, "1614738418531", out.RequestID)
	tok, err := jwt.Parse(out.Token, func(*jwt.Token) (any, error) { return []byte("test-secret"), nil },
		jwt.WithValidMethods([]string{"HS256"}), jwt.WithExpirationRequired())
	require.NoError(t, err, "token verifies with the configured secret")
	sub, _ := tok.Claims.GetSubject()
	assert.Equal(t, "keda", sub)

	// Every line of the reason log has the documented shape, and the
	// WebSocket link's life is in it.
	line := regexp.MustCompile(`^\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}\]\[DEBUG\] cb ctx:\d+ wsi:\d+ reason:\d+ LWS_CALLBACK_[A-Z0-9_]+$`)
	http.DefaultClient.CloseIdleConnections() // so the HTTP link ends too
	// Both links' ends: they may be on different workers, each logging
	// on its own thread.
	require.Eventually(t, func() bool {
		s := logs.String()
		return strings.Contains(s, "LWS_CALLBACK_CLOSED_HTTP") && strings.Contains(s, "LWS_CALLBACK_CLOSED\n")
	}, 10*time.Second, 10*time.Millisecond)
	var reasons []string
	for _, l := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
		if strings.Contains(l, "] cb ctx:") {
			assert.Regexp(t, line, l)
			reasons = append(reasons, l[strings.LastIndex(l, " ")+1:])
		}
	}
	all := strings.Join(reasons, " ")
	for _, want := range []string{"LWS_CALLBACK_ESTABLISHED", "LWS_CALLBACK_RECEIVE", "LWS_CALLBACK_SERVER_WRITEABLE",
		"LWS_CALLBACK_WS_PEER_INITIATED_CLOSE", "LWS_CALLBACK_CLOSED", "LWS_CALLBACK_HTTP", "LWS_CALLBACK_HTTP_BODY_COMPLETION",
		"LWS_CALLBACK_HTTP_WRITEABLE", "LWS_CALLBACK_WSI_DESTROY"} {
		assert.Contains(t, reasons, want, "reason log: %s", all)
	}
}

func TestCreateTokenErrors(t *testing.T) {
	addr, _ := startGateway(t, "-trace=false")
	cases := []struct {
		name, method, body string
		status             int
	}{
		{"not json", "POST", "{", 400},
		{"no user", "POST", `{"RequestId":"1"}`, 400},
		{"unknown field", "POST", `{"UserName":"a","Bogus":1}`, 400},
		{"wrong method", "GET", "", 405},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(tc.method, "http://"+addr+"/v1/api/createtoken", strings.NewReader(tc.body))
			r, err := http.DefaultClient.Do(req)
			require.NoError(t, err)
			defer r.Body.Close()
			assert.Equal(t, tc.status, r.StatusCode)
			var e struct {
				Code  int
				Error string
			}
			require.NoError(t, json.NewDecoder(r.Body).Decode(&e))
			assert.Equal(t, tc.status, e.Code)
			assert.NotEmpty(t, e.Error)
		})
	}
}

func TestBadFlagsExit2WithOneLine(t *testing.T) {
	for _, args := range [][]string{{"-bogus"}, {"-links", "udp"}, {"-log-level", "loud"}, {"-max-message", "0"}, {"-listen", "nohostport"}, {"extra"}} {
		var stderr bytes.Buffer
		code := run(context.Background(), args, io.Discard, &stderr, nil)
		assert.Equal(t, 2, code, "%v", args)
		out := strings.TrimSpace(stderr.String())
		assert.Equal(t, 1, strings.Count(out, "\n")+1, "one line for %v: %q", args, out)
		assert.True(t, strings.HasPrefix(out, "lwsgate: "), out)
	}
}

func TestPortInUse(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	var stderr bytes.Buffer
	code := run(context.Background(), []string{"-listen", ln.Addr().String(), "-trace=false"}, io.Discard, &stderr, nil)
	assert.Equal(t, 1, code)
	assert.Contains(t, stderr.String(), "address already in use")
	assert.Contains(t, stderr.String(), ln.Addr().String())
}

func TestVersion(t *testing.T) {
	var out bytes.Buffer
	require.Equal(t, 0, run(context.Background(), []string{"-version"}, &out, io.Discard, nil))
	assert.Regexp(t, `(?m)^libwebsockets \d+\.\d+\.\d+`, out.String())
	assert.Contains(t, out.String(), "pkg-config")
}

func TestLinkTableEmptiesAfterDisconnects(t *testing.T) {
	addr, logs := startGateway(t, "-trace=false", "-log-level", "debug")
	for i := 0; i < 20; i++ {
		ws, resp, err := websocket.DefaultDialer.Dial("ws://"+addr+"/", nil)
		require.NoError(t, err)
		resp.Body.Close()
		if i%2 == 0 {
			ws.Close() // abrupt: no close frame
		} else {
			_ = ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(1000, ""), time.Now().Add(time.Second))
			_, _, _ = ws.ReadMessage()
			ws.Close()
		}
	}
	// healthz reports the live link count: only the healthz request's own link.
	require.Eventually(t, func() bool {
		r, err := http.Get("http://" + addr + "/healthz")
		if err != nil {
			return false
		}
		defer r.Body.Close()
		var h struct{ Links int }
		_ = json.NewDecoder(r.Body).Decode(&h)
		return h.Links == 1
	}, 10*time.Second, 20*time.Millisecond, "log:\n%s", logs)
	// The table drops a link before its "link del" line is written: wait
	// for the lines as well, then count them exactly.
	lines := func(re string) int {
		return len(regexp.MustCompile(re).FindAllStringIndex(logs.String(), -1))
	}
	const added, deleted = `link add link=\d+ type=tcplisten`, `link del link=\d+ type=tcplisten`
	require.Eventually(t, func() bool { return lines(deleted) >= 20 }, 5*time.Second, 10*time.Millisecond, "log:\n%s", logs)
	assert.Equal(t, 20, lines(added), "ws links added")
	assert.Equal(t, 20, lines(deleted), "ws links deleted")
}
