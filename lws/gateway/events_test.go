package gateway

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const consoleToken = "console-token"

// dialEvents opens the console's event stream with hdr and subprotocols.
func (g *testGW) dialEvents(hdr http.Header, protos ...string) (*websocket.Conn, *http.Response, error) {
	d := websocket.Dialer{HandshakeTimeout: 5 * time.Second, Subprotocols: protos}
	ws, resp, err := d.Dial("ws://"+g.admin+eventsPath, hdr)
	if resp != nil && resp.Body != nil {
		resp.Body.Close()
	}
	if ws != nil {
		_ = ws.SetReadDeadline(time.Now().Add(20 * time.Second))
	}
	return ws, resp, err
}

// ticket asks the admin API for a console ticket.
func (g *testGW) ticket(t *testing.T) string {
	t.Helper()
	resp, body := g.rawAPI(t, "POST", "/v1/api/events/ticket", consoleToken, "")
	require.Equal(t, 200, resp.StatusCode, body)
	var ans struct{ Ticket, Subprotocol string }
	require.NoError(t, json.Unmarshal([]byte(body), &ans))
	require.Equal(t, ticketProtocol+ans.Ticket, ans.Subprotocol)
	return ans.Ticket
}

// TestEventsAuth: the event stream has the admin API's auth. Without
// the token or a ticket the upgrade is refused with 401 before any 101;
// a ticket works once, offered as a subprotocol, and the answer names
// the stream's own subprotocol; other paths are 404 and a plain GET 426.
func TestEventsAuth(t *testing.T) {
	g := startGW(t, "admin: {addr: 127.0.0.1:0, token: "+consoleToken+"}\n", nil)
	status := func(resp *http.Response) int {
		if resp == nil {
			return 0
		}
		return resp.StatusCode
	}

	_, resp, err := g.dialEvents(nil, eventsProtocol)
	require.Error(t, err)
	assert.Equal(t, 401, status(resp), "no token")
	require.NotNil(t, resp)
	assert.Equal(t, adminChallenge, resp.Header.Get("WWW-Authenticate"), "the admin API's challenge")
	_, resp, err = g.dialEvents(bearer("wrong"), eventsProtocol)
	require.Error(t, err)
	assert.Equal(t, 401, status(resp), "a wrong token")
	_, resp, err = g.dialEvents(nil, eventsProtocol, ticketProtocol+"AAAAAAAAAAAAAAAAAAAAAA")
	require.Error(t, err)
	assert.Equal(t, 401, status(resp), "a ticket never issued")

	ws, _, err := g.dialEvents(bearer(consoleToken))
	require.NoError(t, err, "the admin token, as a non-browser client sends it")
	ws.Close()

	tk := g.ticket(t)
	ws, resp, err = g.dialEvents(nil, eventsProtocol, ticketProtocol+tk)
	require.NoError(t, err, "a ticket")
	assert.Equal(t, eventsProtocol, resp.Header.Get("Sec-WebSocket-Protocol"))
	var hello struct{ Type, Node string }
	require.NoError(t, ws.ReadJSON(&hello))
	assert.Equal(t, "hello", hello.Type)
	assert.Equal(t, g.self.name, hello.Node)
	ws.Close()
	_, resp, err = g.dialEvents(nil, eventsProtocol, ticketProtocol+tk)
	require.Error(t, err)
	assert.Equal(t, 401, status(resp), "a ticket works once")

	d := websocket.Dialer{HandshakeTimeout: 5 * time.Second}
	_, resp, err = d.Dial("ws://"+g.admin+"/v1/api/links", bearer(consoleToken))
	require.Error(t, err)
	assert.Equal(t, 404, status(resp), "the stream is the admin listener's one WebSocket route")

	r, body := g.rawAPI(t, "GET", eventsPath, consoleToken, "")
	assert.Equal(t, 426, r.StatusCode, body)
	assert.Equal(t, "websocket", r.Header.Get("Upgrade"))
	r, _ = g.rawAPI(t, "POST", "/v1/api/events/ticket", "", "")
	assert.Equal(t, 401, r.StatusCode, "a ticket needs the token")
}

// TestEventsTooMany: at most maxStreams consoles; one more is refused
// with 503 before the 101.
func TestEventsTooMany(t *testing.T) {
	g := startGW(t, "", nil)
	for range maxStreams {
		ws, _, err := g.dialEvents(nil, eventsProtocol)
		require.NoError(t, err)
		t.Cleanup(func() { ws.Close() })
		var hello struct{ Type string }
		require.NoError(t, ws.ReadJSON(&hello)) // open: counted
	}
	_, resp, err := g.dialEvents(nil, eventsProtocol)
	require.Error(t, err)
	require.NotNil(t, resp)
	assert.Equal(t, 503, resp.StatusCode)
	assert.Equal(t, strconv.Itoa(streamsRetry), resp.Header.Get("Retry-After"))
}

// streamMsg is any message of the stream.
type streamMsg struct {
	Type     string
	Gen      uint64
	Samples  []Sample
	Links    *LinkPage
	Error    string
	Skipped  int
	Channels *channelsView
	Nodes    []NodeInfo
	Missing  []string
	// "link"
	ID     uint64
	State  string
	Link   *LinkInfo
	Closed *ClosedLink
	Trace  []traceEntry
}

// readUntil reads the stream until ok accepts a message.
func readUntil(t *testing.T, ws *websocket.Conn, what string, ok func(m streamMsg) bool) streamMsg {
	t.Helper()
	for {
		var m streamMsg
		require.NoError(t, ws.ReadJSON(&m), "waiting for %s", what)
		require.NotEqual(t, "error", m.Type, "%s: %s", what, m.Error)
		if ok(m) {
			return m
		}
	}
}

func traceNames(tr []traceEntry) []string {
	var out []string
	for _, e := range tr {
		out = append(out, strings.TrimPrefix(e.Name, "LWS_CALLBACK_"))
	}
	return out
}

// TestEventsStream: what a console watches comes over the stream: the
// samples each second, a page of the link table with a new link in it,
// a link with its trace growing live as it sends and then its close,
// the end of its trace included; a bad command is answered with an
// error and changes nothing.
func TestEventsStream(t *testing.T) {
	g := startGW(t, "", nil)
	ws, _, err := g.dialEvents(nil, eventsProtocol)
	require.NoError(t, err)
	defer ws.Close()
	readUntil(t, ws, "hello", func(m streamMsg) bool { return m.Type == "hello" })

	cli := g.dial(t, "/", nil)
	id := linkID(t, cli)
	require.NoError(t, ws.WriteJSON(map[string]any{"watch": map[string]any{"links": map[string]any{"order": "desc", "limit": 10}}}))
	m := readUntil(t, ws, "a page with the link", func(m streamMsg) bool { return m.Gen == 1 && m.Links != nil })
	require.NotEmpty(t, m.Links.Links)
	assert.Equal(t, id, m.Links.Links[0].ID)
	assert.Equal(t, 1, m.Links.Total)

	samples := readUntil(t, ws, "two samples", func(m streamMsg) bool { return len(m.Samples) > 0 && m.Samples[len(m.Samples)-1].Seq >= 2 })
	last := samples.Samples[len(samples.Samples)-1]
	assert.Equal(t, 1, last.Links[TypeTCPListen])

	require.NoError(t, ws.WriteJSON(map[string]any{"watch": map[string]any{"link": id}}))
	m = readUntil(t, ws, "the link", func(m streamMsg) bool { return m.Type == "link" && m.ID == id })
	assert.Equal(t, "open", m.State)
	assert.Contains(t, traceNames(m.Trace), "ESTABLISHED")
	send(t, cli, "hello")
	require.Equal(t, "hello", read(t, cli))
	m = readUntil(t, ws, "the echo in the trace", func(m streamMsg) bool {
		return m.Type == "link" && m.Link != nil && m.Link.MessagesIn == 2
	})
	names := traceNames(m.Trace)
	assert.Equal(t, "SERVER_WRITEABLE", names[len(names)-1], "%v", names)

	// A change that is neither traffic nor a callback (a subscribe from
	// the admin API) is shown too.
	require.Equal(t, 200, g.api(t, "POST", fmt.Sprintf("/v1/api/links/%d/subscribe", id), `{"channel":"room-watched"}`, nil))
	m = readUntil(t, ws, "the link's new channel", func(m streamMsg) bool {
		return m.Type == "link" && m.Link != nil && slices.Contains(m.Link.Channels, "room-watched")
	})

	require.NoError(t, cli.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(4100, "bye"), time.Now().Add(time.Second)))
	m = readUntil(t, ws, "the close", func(m streamMsg) bool { return m.Type == "link" && m.State == "closed" })
	require.NotNil(t, m.Closed)
	assert.Equal(t, ClosedLink{Code: 4100, Reason: "bye", By: "peer", At: m.Closed.At}, *m.Closed)
	names = traceNames(m.Trace)
	assert.Equal(t, "WSI_DESTROY", names[len(names)-1], "%v", names)
	require.NotNil(t, m.Link, "the last snapshot")
	assert.Equal(t, int64(2), m.Link.MessagesIn)

	// A page that cannot be made is still what the console looks at:
	// its updates say why (the third command taken).
	require.NoError(t, ws.WriteMessage(websocket.TextMessage, []byte(`{"watch":{"links":{"sort":"age"}}}`)))
	m = readUntil(t, ws, "the page's error", func(m streamMsg) bool { return m.Type == "update" && m.Gen == 3 })
	assert.Equal(t, `watch.links.sort "age": want one of `+sortNames(), m.Error)
	assert.Nil(t, m.Links)

	// A command that is not one is answered with an error and taken not.
	require.NoError(t, ws.WriteMessage(websocket.TextMessage, []byte(`{"watch":{"linkz":{}}}`)))
	var e streamMsg
	for e.Type != "error" {
		e = streamMsg{}
		require.NoError(t, ws.ReadJSON(&e))
		require.LessOrEqual(t, e.Gen, uint64(3), "no command taken")
	}
	assert.Equal(t, `command: json: unknown field "linkz"`, e.Error)
	require.NoError(t, ws.WriteJSON(map[string]any{"watch": map[string]any{"links": map[string]any{}}}))
	m = readUntil(t, ws, "the next command's page", func(m streamMsg) bool { return m.Gen == 4 && m.Type == "update" })
	assert.Empty(t, m.Error)
	require.NotNil(t, m.Links)
}

// TestEventsSlowConsole: a console that does not read costs the
// gateway at most eventsBudget plus one update: the stream leaves
// updates out instead of queueing them (it is not closed as a slow
// consumer), and once the console reads again the next update says how
// many it missed.
func TestEventsSlowConsole(t *testing.T) {
	defer func(d time.Duration) { streamTick = d }(streamTick)
	streamTick = 5 * time.Millisecond // many updates, fast
	g := startGW(t, "", nil)
	for range 100 {
		g.dial(t, "/"+strings.Repeat("p", 200), nil) // long paths: big rows
	}
	require.Eventually(t, func() bool { return g.links.count(TypeTCPListen) == 100 }, 20*time.Second, 10*time.Millisecond)

	// A console that stops reading (once the kernel's buffers are
	// full, a few MB, what the stream sends waits in its queue).
	ws, _, err := g.dialEvents(nil, eventsProtocol)
	require.NoError(t, err)
	defer ws.Close()
	require.NoError(t, ws.WriteJSON(map[string]any{"watch": map[string]any{"links": map[string]any{"limit": 200}}}))

	var s *stream
	require.Eventually(t, func() bool {
		ss := g.console.list()
		if len(ss) != 1 {
			return false
		}
		s = ss[0]
		return true
	}, 5*time.Second, time.Millisecond)
	var most int64
	deadline := time.Now().Add(30 * time.Second)
	for s.skips.Load() < 20 && time.Now().Before(deadline) {
		most = max(most, s.c.Queued())
		time.Sleep(time.Millisecond)
	}
	require.GreaterOrEqual(t, s.skips.Load(), int64(20), "updates left out; queued %d", most)
	// An update of 100 rows is about 60 KB: what one may add beyond the
	// budget.
	assert.LessOrEqual(t, most, int64(eventsBudget+128<<10), "queued to the console")
	t.Logf("most queued to a console that does not read: %d bytes (budget %d); %d updates left out", most, eventsBudget, s.skips.Load())

	// Reading again: the stream is still open and says what was missed.
	_ = ws.SetReadDeadline(time.Now().Add(30 * time.Second))
	for {
		var m streamMsg
		require.NoError(t, ws.ReadJSON(&m), "the stream is still open")
		if m.Skipped > 0 {
			break
		}
	}
	assert.Len(t, g.console.list(), 1)
}
