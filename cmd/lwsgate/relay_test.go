package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/require"
)

// upstreamEcho is a Go WebSocket backend that echoes with a prefix, closes
// with 4000 on "bye", and reports the closes it sees.
func upstreamEcho(t *testing.T) (*httptest.Server, chan int) {
	closes := make(chan int, 16)
	up := websocket.Upgrader{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer ws.Close()
		for {
			mt, p, err := ws.ReadMessage()
			if err != nil {
				code := 1006
				if ce, ok := err.(*websocket.CloseError); ok {
					code = ce.Code
				}
				closes <- code
				return
			}
			if string(p) == "bye" {
				_ = ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(4000, "backend bye"), time.Now().Add(time.Second))
				_, _, _ = ws.ReadMessage()
				return
			}
			_ = ws.WriteMessage(mt, append([]byte("up:"), p...))
		}
	}))
	t.Cleanup(srv.Close)
	return srv, closes
}

func healthz(t *testing.T, addr string) map[string]any {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/healthz")
	require.NoError(t, err)
	defer resp.Body.Close()
	var v map[string]any
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&v))
	return v
}

// waitHealth polls /healthz until links and routes reach the wanted counts.
func waitHealth(t *testing.T, addr string, links, routes float64) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		h := healthz(t, addr)
		// /healthz itself is one HTTP link while it is served.
		if h["links"].(float64) <= links+1 && h["routes"].(float64) == routes {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("healthz %v, want links %v routes %v", h, links, routes)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestRelayToUpstream(t *testing.T) {
	srv, upCloses := upstreamEcho(t)
	addr, logs := startGateway(t, "-log-level", "debug", "-upstream", "ws"+strings.TrimPrefix(srv.URL, "http")+"/backend")

	d := websocket.Dialer{HandshakeTimeout: 5 * time.Second}
	ws, resp, err := d.Dial("ws://"+addr+"/", nil)
	require.NoError(t, err)
	resp.Body.Close()
	defer ws.Close()
	_ = ws.SetReadDeadline(time.Now().Add(10 * time.Second))
	// Sent at once: the gateway holds it until the upstream link is open.
	for i := 0; i < 3; i++ {
		require.NoError(t, ws.WriteMessage(websocket.TextMessage, []byte(fmt.Sprintf("hello %d", i))))
	}
	for i := 0; i < 3; i++ {
		_, p, err := ws.ReadMessage()
		require.NoError(t, err)
		require.Equal(t, fmt.Sprintf("up:hello %d", i), string(p))
	}
	big := strings.Repeat("x", 1<<20)
	require.NoError(t, ws.WriteMessage(websocket.BinaryMessage, []byte(big)))
	mt, p, err := ws.ReadMessage()
	require.NoError(t, err)
	require.Equal(t, websocket.BinaryMessage, mt)
	require.Equal(t, "up:"+big, string(p))
	waitHealth(t, addr, 2, 2)
	require.Contains(t, logs.String(), "type=tcpconnect")

	// Client closes with 4100: the backend sees 4100.
	require.NoError(t, ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(4100, "client bye"), time.Now().Add(time.Second)))
	_, _, err = ws.ReadMessage()
	var ce *websocket.CloseError
	require.ErrorAs(t, err, &ce)
	require.Equal(t, 4100, ce.Code)
	select {
	case code := <-upCloses:
		require.Equal(t, 4100, code)
	case <-time.After(10 * time.Second):
		t.Fatal("backend saw no close")
	}
	waitHealth(t, addr, 0, 0)

	// Backend closes with 4000: the client sees 4000.
	ws2, resp, err := d.Dial("ws://"+addr+"/", nil)
	require.NoError(t, err)
	resp.Body.Close()
	defer ws2.Close()
	_ = ws2.SetReadDeadline(time.Now().Add(10 * time.Second))
	require.NoError(t, ws2.WriteMessage(websocket.TextMessage, []byte("bye")))
	_, _, err = ws2.ReadMessage()
	require.ErrorAs(t, err, &ce)
	require.Equal(t, 4000, ce.Code)
	require.Equal(t, "backend bye", ce.Text)
	waitHealth(t, addr, 0, 0)
}

func TestRelayUpstreamDown(t *testing.T) {
	srv, _ := upstreamEcho(t)
	url := "ws" + strings.TrimPrefix(srv.URL, "http")
	srv.Close() // nothing listens there now
	addr, _ := startGateway(t, "-upstream", url, "-upstream-timeout", "1s")
	d := websocket.Dialer{HandshakeTimeout: 5 * time.Second}
	ws, resp, err := d.Dial("ws://"+addr+"/", nil)
	require.NoError(t, err)
	resp.Body.Close()
	defer ws.Close()
	_ = ws.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, _, err = ws.ReadMessage()
	var ce *websocket.CloseError
	require.ErrorAs(t, err, &ce)
	require.Equal(t, 1013, ce.Code)
	waitHealth(t, addr, 0, 0)
}

func TestForwardHTTP(t *testing.T) {
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		w.Header().Set("Content-Type", "text/plain")
		w.WriteHeader(http.StatusCreated)
		fmt.Fprintf(w, "%s %s q=%s body=%s xff=%s", r.Method, r.URL.Path, r.URL.Query().Get("q"), b, r.Header.Get("X-Forwarded-For"))
	}))
	defer backend.Close()
	addr, _ := startGateway(t, "-forward", "/v1/backend/="+backend.URL)

	resp, err := http.Post("http://"+addr+"/v1/backend/items?q=a+b", "text/plain", strings.NewReader("payload"))
	require.NoError(t, err)
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Equal(t, http.StatusCreated, resp.StatusCode)
	require.Equal(t, "text/plain", resp.Header.Get("Content-Type"))
	require.Equal(t, "POST /v1/backend/items q=a b body=payload xff=127.0.0.1", string(b))

	// Other paths are not forwarded.
	resp, err = http.Get("http://" + addr + "/healthz")
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)

	// A backend that is down gives 502.
	backend.Close()
	resp, err = http.Get("http://" + addr + "/v1/backend/x")
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusBadGateway, resp.StatusCode)
}

func TestRelayFlagErrors(t *testing.T) {
	for _, args := range [][]string{
		{"-upstream", "http://x/"},
		{"-forward", "nope"},
		{"-forward", "/a=ftp://x"},
		{"-tls-cert", "a.pem"},
	} {
		var stderr strings.Builder
		code := run(t.Context(), args, io.Discard, &stderr, nil)
		require.Equal(t, 2, code, "%v", args)
		require.Contains(t, stderr.String(), args[0], "%v", args)
	}
}
