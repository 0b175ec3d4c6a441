package lws

import (
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/lwsgate/lwsgate/cgo"
	"github.com/lwsgate/lwsgate/internal/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The test helpers of package lws are the helpers*_test.go files: this one
// (logs, contexts, waiting, limits, handles), helpers_ws_test.go (WebSocket
// peers made with gorilla, handlers that record), helpers_raw_test.go
// (hand-driven WebSocket and HTTP peers), helpers_http_test.go (HTTP
// clients and servers) and helpers_tls_test.go (certificates, TLS servers
// and clients). What only one test uses stays next to it. Helpers shared
// with other packages are in internal/testutil.

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

// hangTimeout turns a hang into a failure; it is never a performance bound.
const hangTimeout = 20 * time.Second

// waitFor receives from ch, failing the test if nothing arrives in time.
func waitFor[T any](t testing.TB, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(hangTimeout):
		require.FailNow(t, "timed out waiting for "+what)
		panic("unreachable")
	}
}

// newClientContext starts a Context without listeners for client links.
func newClientContext(t testing.TB, mod ...func(*Config)) *Context {
	t.Helper()
	cfg := &Config{Logger: testLogger(t)}
	for _, m := range mod {
		m(cfg)
	}
	c, err := New(cfg)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, c.Close()) })
	return c
}

// quickClose bounds Close's wait for links that never finish their
// closing handshake (their raw peers stop reading).
func quickClose(c *Config) { c.ShutdownTimeout = time.Second }

// limitLog records Config.OnLimit calls.
type limitLog struct {
	ch chan string
}

func newLimitLog() *limitLog { return &limitLog{ch: make(chan string, 1024)} }

func (l *limitLog) hook(c *Config) {
	c.OnLimit = func(listener string, limit Limit) { l.ch <- listener + ":" + string(limit) }
}

// expect waits for the next OnLimit call and checks it.
func (l *limitLog) expect(t *testing.T, listener string, limit Limit) {
	t.Helper()
	assert.Equal(t, listener+":"+string(limit), waitFor(t, l.ch, "OnLimit "+string(limit)))
}

// none checks that nothing more was reported so far.
func (l *limitLog) none(t *testing.T) {
	t.Helper()
	select {
	case s := <-l.ch:
		t.Errorf("unexpected OnLimit %s", s)
	default:
	}
}

// logTo sends the binding's log to buf as well as to the test log.
func logTo(t *testing.T, buf *testutil.Buffer) func(*Config) {
	return func(c *Config) {
		c.Logger = slog.New(slog.NewTextHandler(io.MultiWriter(buf, testWriter{t}), nil))
	}
}

// waitHandles polls (for at most 10 s) until the live cgo handles are back
// to base or below, and returns how many there are then: more is a leak
// (what says when it was seen); fewer means that a link of an earlier test
// finished meanwhile.
func waitHandles(t testing.TB, base int64, what string) int64 {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		n := cgo.LiveHandles()
		if n <= base {
			return n
		}
		if time.Now().After(deadline) {
			require.FailNowf(t, "cgo handles leaked", "%s: %d live handles, want %d", what, n, base)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
