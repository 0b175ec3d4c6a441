package lws

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// upgradeRequest is a valid WebSocket upgrade request for path, with extra
// header lines ("Name: value\r\n" each).
func upgradeRequest(path, extra string) string {
	return "GET " + path + " HTTP/1.1\r\nHost: test\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n" + extra + "\r\n"
}

// rawExchange writes request on a new TCP connection and reads until the
// server closes it (bounded by hangTimeout). It returns everything read and
// whether the server closed the connection (EOF or reset) rather than the
// read timing out.
func rawExchange(t testing.TB, addr, request string) (string, bool) {
	t.Helper()
	nc, err := net.DialTimeout("tcp", addr, 5*time.Second)
	require.NoError(t, err)
	defer nc.Close()
	require.NoError(t, nc.SetDeadline(time.Now().Add(hangTimeout)))
	_, err = io.WriteString(nc, request)
	require.NoError(t, err)
	b, err := io.ReadAll(nc)
	var ne net.Error
	timedOut := errors.As(err, &ne) && ne.Timeout()
	return string(b), !timedOut
}

// parseRaw parses the first response in raw.
func parseRaw(t testing.TB, raw string) (*http.Response, string) {
	t.Helper()
	resp, err := http.ReadResponse(bufio.NewReader(strings.NewReader(raw)), nil)
	require.NoError(t, err, "response %q", raw)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err, "response %q", raw)
	return resp, string(b)
}

func TestCheckUpgrade(t *testing.T) {
	rec := newRecorder()
	opened := make(chan Link, 16)
	closed := make(chan Link, 16)
	seen := make(chan *Request, 16)
	_, addr := startServer(t, Listener{
		Handler:      rec,
		HTTPHandler:  HTTPHandlerFunc(func(w *ResponseWriter, r *Request) { _ = w.Respond(http.StatusOK, nil) }),
		ExtraHeaders: []string{"X-Extra"},
		CheckUpgrade: func(r *Request) error {
			seen <- r
			switch r.Path {
			case "/401":
				return &HTTPError{Status: http.StatusUnauthorized, Message: "no token"}
			case "/wrapped":
				return fmt.Errorf("auth: %w", &HTTPError{Status: http.StatusTooManyRequests})
			case "/plain":
				return errors.New("nope")
			case "/badstatus":
				return &HTTPError{Status: 302, Message: "elsewhere"}
			case "/panic":
				panic("check upgrade panicked")
			case "/challenge":
				return &HTTPError{Status: http.StatusUnauthorized, Message: "token expired", Header: http.Header{
					"Www-Authenticate": {`Bearer error="invalid_token"`},
					"Content-Type":     {"text/html"}, // the binding's own: dropped
				}}
			case "/badheader":
				return &HTTPError{Status: http.StatusUnauthorized, Header: http.Header{"X-Split": {"a\r\nX-Injected: 1"}}}
			}
			return nil
		},
	}, func(c *Config) {
		c.OnLinkOpen = func(l Link) { opened <- l }
		c.OnLinkClose = func(l Link, _ CloseError) { closed <- l }
	})

	for _, tc := range []struct {
		path   string
		status int
		body   string
		www    string // WWW-Authenticate
	}{
		{"/401", 401, "no token\n", ""},
		{"/challenge", 401, "token expired\n", `Bearer error="invalid_token"`},
		{"/badheader", 500, "Internal Server Error\n", ""},
		{"/wrapped", 429, "Too Many Requests\n", ""},
		{"/plain", 403, "Forbidden\n", ""},
		{"/badstatus", 500, "Internal Server Error\n", ""},
		{"/panic", 500, "Internal Server Error\n", ""},
	} {
		t.Run(tc.path, func(t *testing.T) {
			raw, closedByServer := rawExchange(t, addr, upgradeRequest(tc.path, "X-Extra: 1\r\n"))
			assert.True(t, closedByServer, "connection left open after the refusal")
			assert.NotContains(t, raw, " 101 ")
			resp, body := parseRaw(t, raw)
			assert.Equal(t, tc.status, resp.StatusCode)
			assert.Equal(t, tc.body, body)
			assert.True(t, resp.Close, "no Connection: close")
			assert.Equal(t, []string{"text/plain; charset=utf-8"}, resp.Header.Values("Content-Type"))
			assert.Equal(t, tc.www, resp.Header.Get("WWW-Authenticate"))
			assert.Empty(t, resp.Header.Values("X-Injected"))
			r := waitFor(t, seen, "CheckUpgrade")
			assert.Equal(t, tc.path, r.Path)
			assert.Equal(t, "GET", r.Method)
			assert.Equal(t, "1", r.Header.Get("X-Extra"))
		})
	}

	// A gorilla client sees the status; an allowed upgrade still works and
	// is the first link the hooks hear about.
	_, resp, err := dialWith(t, &websocket.Dialer{}, addr, "/401", nil)
	require.ErrorIs(t, err, websocket.ErrBadHandshake)
	require.NotNil(t, resp)
	assert.Equal(t, http.StatusUnauthorized, resp.StatusCode)
	waitFor(t, seen, "CheckUpgrade")
	ws := dial(t, addr, nil)
	waitFor(t, seen, "CheckUpgrade")
	echo(t, ws, "allowed")
	c := waitFor(t, rec.opens, "OnOpen")
	l := waitFor(t, opened, "OnLinkOpen")
	assert.Equal(t, c.ID(), l.ID, "a refused upgrade reached OnLinkOpen")
	assert.Empty(t, rec.opens)
	assert.Empty(t, closed, "OnLinkClose called for a refused upgrade")

	// An upgrade refused on a keep-alive connection that already carried
	// an HTTP request: the HTTP link opened and closes; no WebSocket link.
	// (The upgrade is sent after the first response: libwebsockets 4.3
	// closes a connection whose next request arrives, pipelined, before
	// the binding wrote the answer to the first.)
	rest := keepAliveThen(t, addr, "GET /first HTTP/1.1\r\nHost: test\r\n\r\n", upgradeRequest("/401", ""))
	assert.NotContains(t, rest, " 101 ")
	assert.Contains(t, rest, " 401 Unauthorized\r\n")
	waitFor(t, seen, "CheckUpgrade")
	hl := waitFor(t, opened, "OnLinkOpen of the HTTP link")
	assert.Equal(t, LinkHTTP, hl.Kind)
	assert.Equal(t, hl.ID, waitFor(t, closed, "OnLinkClose of the HTTP link").ID)
	assert.Empty(t, rec.opens)
}
