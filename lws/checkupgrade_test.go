package lws

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

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
			assert.Equal(t, "1", r.Header().Get("X-Extra"))
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

// TestCheckUpgradeValue: a value CheckUpgrade attaches to the upgrade
// request is the link's Conn.Value from the start (OnOpen sees it) until
// SetValue replaces it; a link whose CheckUpgrade attached none starts
// with nil, and a refused upgrade's value reaches no link.
func TestCheckUpgradeValue(t *testing.T) {
	type session struct{ user string }
	opens := make(chan any, 4)
	later := make(chan any, 4)
	_, addr := startServer(t, Listener{
		CheckUpgrade: func(r *Request) error {
			switch r.Path {
			case "/none":
				return nil
			case "/refused":
				r.SetValue(&session{"refused"})
				return &HTTPError{Status: http.StatusForbidden}
			}
			r.SetValue(&session{strings.TrimPrefix(r.Path, "/")})
			return nil
		},
		Handler: HandlerFuncs{
			Open: func(c *Conn) {
				opens <- c.Value()
				if c.Request().Path == "/replaced" {
					c.SetValue("replaced")
				}
			},
			Message: func(c *Conn, _ MessageType, _ []byte) { later <- c.Value() },
		},
	})
	_, resp, err := dialWith(t, &websocket.Dialer{}, addr, "/refused", nil)
	require.ErrorIs(t, err, websocket.ErrBadHandshake)
	require.Equal(t, http.StatusForbidden, resp.StatusCode)
	for _, tc := range []struct {
		path      string
		open, msg any
	}{
		{"/alice", &session{"alice"}, &session{"alice"}},
		{"/none", nil, nil},
		{"/replaced", &session{"replaced"}, "replaced"},
	} {
		ws, _, err := dialWith(t, &websocket.Dialer{}, addr, tc.path, nil)
		require.NoError(t, err, tc.path)
		assert.Equal(t, tc.open, waitFor(t, opens, "OnOpen "+tc.path), "value at OnOpen on %s", tc.path)
		require.NoError(t, ws.WriteMessage(websocket.TextMessage, []byte("x")))
		assert.Equal(t, tc.msg, waitFor(t, later, "OnMessage "+tc.path), "value at OnMessage on %s", tc.path)
	}
	assert.Empty(t, opens, "a refused upgrade opened a link")
}
