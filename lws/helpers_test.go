package lws

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/require"
)

// testLogger writes the binding's log to the test log.
func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo}))
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(string(bytes.TrimRight(p, "\n")))
	return len(p), nil
}

// lockedBuffer is a goroutine-safe bytes.Buffer for reason logs.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// startServer runs a Context with one listener on 127.0.0.1:0 and closes
// it when the test ends. It returns the context and "127.0.0.1:port".
func startServer(t testing.TB, l Listener, mod ...func(*Config)) (*Context, string) {
	t.Helper()
	if l.Addr == "" {
		l.Addr = "127.0.0.1:0"
	}
	cfg := &Config{Listeners: []Listener{l}, Logger: testLogger(t)}
	for _, m := range mod {
		m(cfg)
	}
	c, err := New(cfg)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, c.Close()) })
	return c, c.Addrs()[0].String()
}

// dial opens a gorilla client link to addr.
func dial(t testing.TB, addr string, hdr http.Header) *websocket.Conn {
	t.Helper()
	d := websocket.Dialer{HandshakeTimeout: 5 * time.Second, ReadBufferSize: 64 << 10, WriteBufferSize: 64 << 10}
	ws, resp, err := d.Dial(fmt.Sprintf("ws://%s/", addr), hdr)
	require.NoError(t, err)
	if resp != nil && resp.Body != nil {
		resp.Body.Close()
	}
	t.Cleanup(func() { ws.Close() })
	_ = ws.SetReadDeadline(time.Now().Add(20 * time.Second))
	return ws
}

// threadCPU returns the CPU time (user and system) OS thread tid of this
// process has used, from /proc/self/task/TID/stat, in clock ticks of 10 ms.
func threadCPU(t testing.TB, tid int) time.Duration {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/self/task/%d/stat", tid))
	require.NoError(t, err)
	// The command name, field 2, is in parentheses and may hold spaces.
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	require.Greater(t, len(f), 12, "short stat line %q", s)
	utime, err := strconv.ParseInt(f[11], 10, 64) // field 14
	require.NoError(t, err)
	stime, err := strconv.ParseInt(f[12], 10, 64) // field 15
	require.NoError(t, err)
	return time.Duration(utime+stime) * 10 * time.Millisecond
}

// upgradesAtOnce sends req on n connections so that libwebsockets holds n
// header buffers at once (the first 40 bytes of each, then the rest of
// each), and returns each connection's response (headers only; the
// connections close when the test ends).
func upgradesAtOnce(t *testing.T, addr, req string, n int) []*http.Response {
	t.Helper()
	conns := make([]net.Conn, n)
	for i := range conns {
		nc, err := net.DialTimeout("tcp", addr, 5*time.Second)
		require.NoError(t, err)
		t.Cleanup(func() { nc.Close() })
		require.NoError(t, nc.SetDeadline(time.Now().Add(hangTimeout)))
		_, err = io.WriteString(nc, req[:40]) // lws takes a header buffer
		require.NoError(t, err)
		conns[i] = nc
	}
	for _, nc := range conns {
		_, err := io.WriteString(nc, req[40:])
		require.NoError(t, err)
	}
	out := make([]*http.Response, n)
	for i, nc := range conns {
		resp, err := http.ReadResponse(bufio.NewReader(nc), nil)
		require.NoError(t, err, "link %d", i)
		out[i] = resp
		nc.Close()
	}
	return out
}
