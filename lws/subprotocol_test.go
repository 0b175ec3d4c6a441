package lws

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lwsgate/lwsgate/cgo"
)

// TestLongSubprotocolLists: a Sec-WebSocket-Protocol list libwebsockets
// cannot read itself (over 126 bytes, or a name of 64 bytes or more before
// the one it binds), such as a browser's ["chat", "bearer.TOKEN"], gets a
// 101 naming the subprotocol chosen, and CheckUpgrade and the link's
// Request see the list as sent. On more than one line it is refused with
// 431, never dropped unanswered.
func TestLongSubprotocolLists(t *testing.T) {
	rec := newRecorder()
	seen := make(chan *Request, 64)
	_, addr := hostileServer(t, Listener{Handler: rec, Subprotocols: []string{"chat", "v2.chat"},
		CheckUpgrade: func(r *Request) error { seen <- r; return nil }})
	token := "bearer." + strings.Repeat("eyJhbGciOiJSUzI1NiJ9_-.", 40) // 927 bytes
	for _, tc := range []struct {
		name, list, chosen string
	}{
		{"a token after", "chat, " + token, "chat"},
		{"a token before", token + ", v2.chat", "v2.chat"},
		{"a long name before, short list", strings.Repeat("n", 70) + ", chat", "chat"},
		{"many names", strings.Repeat("other, ", 30) + "v2.chat, chat", "v2.chat"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			raw, closed := rawExchangeUntil(t, addr, upgradeRequest("/", "Sec-WebSocket-Protocol: "+tc.list+"\r\n"), "\r\n\r\n")
			require.False(t, closed, "closed: %q", raw)
			resp, _ := parseRaw(t, raw)
			assert.Equal(t, http.StatusSwitchingProtocols, resp.StatusCode)
			assert.Equal(t, []string{tc.chosen}, resp.Header.Values("Sec-WebSocket-Protocol"))
			r := waitFor(t, seen, "CheckUpgrade")
			assert.Equal(t, tc.list, r.Header().Get("Sec-WebSocket-Protocol"))
			c := waitFor(t, rec.opens, "OnOpen")
			assert.Equal(t, tc.chosen, c.Link().Subprotocol)
			assert.Equal(t, tc.list, c.Request().Header().Get("Sec-WebSocket-Protocol"))
		})
	}

	// A browser-like client.
	d := websocket.Dialer{HandshakeTimeout: 5 * time.Second, Subprotocols: []string{"chat", token}}
	ws, resp, err := d.Dial("ws://"+addr+"/", nil)
	require.NoError(t, err)
	defer ws.Close()
	assert.Equal(t, "chat", ws.Subprotocol())
	assert.Equal(t, []string{"chat"}, resp.Header.Values("Sec-WebSocket-Protocol"))
	echo(t, ws, "after a long list")
	waitFor(t, seen, "CheckUpgrade")
	waitFor(t, rec.opens, "OnOpen")

	// On two lines: refused, with why.
	raw, closed := rawExchange(t, addr, upgradeRequest("/", "Sec-WebSocket-Protocol: chat\r\nSec-WebSocket-Protocol: "+token+"\r\n"))
	assert.True(t, closed)
	resp, body := parseRaw(t, raw)
	assert.Equal(t, http.StatusRequestHeaderFieldsTooLarge, resp.StatusCode)
	assert.Regexp(t, `^Sec-WebSocket-Protocol: 9\d\d bytes, more than the 126 this server takes on more than one line\n$`, body)
	waitFor(t, seen, "CheckUpgrade")
	healthy(t, addr)
}

// TestLongSubprotocolListsManyLinks: 200 upgrades with long lists whose
// headers arrive together, so that libwebsockets holds 200 header
// buffers and structs at once: each gets its 101, the binding finds each
// one's among the others; none is recorded after the context closes.
func TestLongSubprotocolListsManyLinks(t *testing.T) {
	c, addr := startServer(t, Listener{Handler: EchoHandler{}, Subprotocols: []string{"chat"}, MaxLinksPerIP: -1})
	req := upgradeRequest("/", "Sec-WebSocket-Protocol: chat, bearer."+strings.Repeat("t", 400)+"\r\n")
	for i, resp := range upgradesAtOnce(t, addr, req, 200) {
		require.Equal(t, http.StatusSwitchingProtocols, resp.StatusCode, "link %d", i)
		require.Equal(t, "chat", resp.Header.Get("Sec-WebSocket-Protocol"), "link %d", i)
	}
	require.NoError(t, c.Close())
	assert.Zero(t, cgo.HeaderBuffers(), "header buffers or structs recorded after the context closed")
}
