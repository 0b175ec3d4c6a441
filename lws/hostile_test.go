package lws

// The hostile-input suite: raw TCP clients on 127.0.0.1 send what a
// well-behaved client never would. Each case checks the outcome and ends
// with a health check: a fresh WebSocket echo and an HTTP request on the
// same listener still work.

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// hostileServer is a listener serving WebSocket echo and HTTP "ok".
func hostileServer(t *testing.T, l Listener, mod ...func(*Config)) (*Context, string) {
	t.Helper()
	if l.Handler == nil {
		l.Handler = EchoHandler{}
	}
	if l.HTTPHandler == nil {
		l.HTTPHandler = HTTPHandlerFunc(func(w *ResponseWriter, r *Request) {
			_ = w.Respond(http.StatusOK, []byte("ok"))
		})
	}
	return startServer(t, l, mod...)
}

// healthy checks that the listener at addr still serves a fresh WebSocket
// echo and an HTTP request.
func healthy(t *testing.T, addr string) {
	t.Helper()
	echo(t, dial(t, addr, nil), "still healthy")
	resp, body := rawHTTP(t, addr, "GET /health HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n")
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Equal(t, "ok", string(body))
}

// keepAliveThen sends first on a new connection, reads its response, and
// only then sends second, so that libwebsockets has released the first
// request's header table in between. It returns what followed the first
// response until the server closed the connection.
func keepAliveThen(t *testing.T, addr, first, second string) string {
	t.Helper()
	nc, err := net.DialTimeout("tcp", addr, 5*time.Second)
	require.NoError(t, err)
	defer nc.Close()
	require.NoError(t, nc.SetDeadline(time.Now().Add(hangTimeout)))
	_, err = io.WriteString(nc, first)
	require.NoError(t, err)
	resp, err := http.ReadResponse(newBufReader(nc), nil)
	require.NoError(t, err)
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	_, err = io.WriteString(nc, second)
	require.NoError(t, err)
	rest, err := io.ReadAll(nc)
	require.NoError(t, err, "connection not closed after the second request")
	return string(rest)
}

// TestHostileUnknownUpgradeKeepAlive is CVE-2025-11677's trigger: an
// unknown Upgrade value on a keep-alive connection makes libwebsockets
// before 4.3.7 answer 403, free the request and still call back with a
// pointer into it. The binding never reads it (make asan catches a read)
// and hangs up.
func TestHostileUnknownUpgradeKeepAlive(t *testing.T) {
	_, addr := hostileServer(t, Listener{})
	for _, up := range []string{"foo", "h2", "websocketx", "TLS/1.0"} {
		rest := keepAliveThen(t, addr, "GET /first HTTP/1.1\r\nHost: test\r\n\r\n",
			"GET / HTTP/1.1\r\nHost: test\r\nUpgrade: "+up+"\r\nConnection: Upgrade\r\n\r\n")
		assert.NotContains(t, rest, " 101 ", "Upgrade: %s", up)
		assert.Contains(t, rest, " 403 ", "Upgrade: %s", up)
	}
	healthy(t, addr)
}

// TestHostileUpgradeTokenCase: the Upgrade token is case-insensitive.
func TestHostileUpgradeTokenCase(t *testing.T) {
	_, addr := hostileServer(t, Listener{})
	raw, _ := rawExchangeUntil(t, addr, "GET / HTTP/1.1\r\nHost: test\r\nUpgrade: WebSocket\r\nConnection: Upgrade\r\n"+
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n", "\r\n\r\n")
	assert.Contains(t, raw, " 101 ")
	healthy(t, addr)
}

func newBufReader(r io.Reader) *bufio.Reader { return bufio.NewReader(r) }

// rawExchangeUntil writes request on a new connection and reads until the
// bytes read contain marker or the server closes the connection. It
// returns what was read and whether the server closed it.
func rawExchangeUntil(t testing.TB, addr, request, marker string) (string, bool) {
	t.Helper()
	nc, err := net.DialTimeout("tcp", addr, 5*time.Second)
	require.NoError(t, err)
	defer nc.Close()
	require.NoError(t, nc.SetDeadline(time.Now().Add(hangTimeout)))
	_, err = io.WriteString(nc, request)
	require.NoError(t, err)
	var got []byte
	buf := make([]byte, 4096)
	for !strings.Contains(string(got), marker) {
		n, err := nc.Read(buf)
		got = append(got, buf[:n]...)
		if err != nil {
			var ne net.Error
			require.False(t, errors.As(err, &ne) && ne.Timeout(), "timed out; read %q", got)
			return string(got), true
		}
	}
	return string(got), false
}
