package gateway

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/require"

	"github.com/lwsgate/lwsgate/lws"
)

// fitsWidth is true when the page is no wider than the window (nothing
// to scroll sideways).
const fitsWidth = `document.documentElement.scrollWidth <= window.innerWidth`

// signIn opens the console and signs in with the admin token.
func signIn(ctx context.Context, t *testing.T, g *testGW, token string) {
	t.Helper()
	run(ctx, t,
		chromedp.Navigate("http://"+g.admin+"/console"),
		poll(`!document.getElementById("login").hidden`),
		chromedp.SetValue(chromedp.CSS("#login-token"), token),
		chromedp.Click(chromedp.CSS("#login-form button[type=submit]")),
		poll(`document.getElementById("conn").textContent === "Live"`),
	)
}

// TestConsoleInChromium drives the console in a real headless Chromium,
// signed in with the admin token: a link a test client opens appears in
// the link table; its page draws its trace with ESTABLISHED, then
// RECEIVE and SERVER_WRITEABLE for a message it sent; a message sent
// from the page reaches the client (another write in the trace); a subscribe and a
// publish from the console reach the client; the charts move; a close
// from the console closes the client with the chosen code and reason,
// and the page then shows the end of its trace. Nothing it loaded came
// from elsewhere.
func TestConsoleInChromium(t *testing.T) {
	ctx := chromium(t, 120*time.Second)
	g := startGW(t, "admin: {addr: 127.0.0.1:0, token: "+consoleToken+"}\n", nil)
	signIn(ctx, t, g, consoleToken)
	// The token is in the tab's session storage, never in the address.
	require.NotContains(t, evalJS[string](ctx, t, `location.href`), consoleToken)

	cli := g.dial(t, "/chat", nil)
	id := linkID(t, cli)
	row := fmt.Sprintf(`document.querySelector('#links-table tr[data-id="%d"]')`, id)
	run(ctx, t,
		chromedp.Navigate("http://"+g.admin+"/console#/links"),
		poll(row+` !== null`),
	)
	require.Contains(t, evalJS[string](ctx, t, row+`.textContent`), "tcplisten")

	// The link's page: open it from the table, as a person would.
	trace := func(name string) string {
		return fmt.Sprintf(`document.querySelector('#trace li[data-name="%s"]') !== null`, name)
	}
	run(ctx, t,
		chromedp.Click(chromedp.CSS(fmt.Sprintf(`#links-table tr[data-id="%d"] a`, id))),
		poll(fmt.Sprintf(`location.hash === "#/links/%d"`, id)),
		poll(trace("ESTABLISHED")),
		poll(`document.getElementById("link-state").textContent === "open"`),
	)
	send(t, cli, "hello from the test client")
	require.Equal(t, "hello from the test client", read(t, cli))
	run(ctx, t, poll(trace("RECEIVE")), poll(trace("SERVER_WRITEABLE")))
	names := evalJS[[]string](ctx, t, `[...document.querySelectorAll('#trace li[data-name]')].map(li => li.dataset.name)`)
	require.Equal(t, "SERVER_WRITEABLE", names[len(names)-1], "the echo's write is the newest: %v", names)
	// The timeline draws the same callbacks.
	require.Positive(t, evalJS[int](ctx, t, `document.querySelectorAll('#timeline circle[data-name="RECEIVE"]').length`))
	// On a phone the page fits its width: a timeline of a full trace
	// (link_trace callbacks, far wider than a phone) scrolls, not the
	// page, and keeps its newest callbacks in view as the window narrows.
	for i := range 40 {
		send(t, cli, fmt.Sprint("burst ", i))
		read(t, cli)
	}
	full := fmt.Sprintf(`document.querySelectorAll('#trace li[data-name]').length === %d`, linkTrace(g.cfg.Load()))
	newest := `(p => p.scrollLeft + p.clientWidth >= p.scrollWidth - 2)(document.querySelector('#timeline .plot'))`
	run(ctx, t, poll(full), poll(newest), chromedp.EmulateViewport(390, 844), poll(fitsWidth), poll(newest))
	run(ctx, t, chromedp.EmulateViewport(1280, 800))

	// Send from the link's page: the client gets it, and the trace
	// shows the write.
	writes := `document.querySelectorAll('#trace li[data-name="SERVER_WRITEABLE"]').length`
	before := evalJS[int](ctx, t, writes)
	run(ctx, t,
		chromedp.SetValue(chromedp.CSS("#send-text"), "sent from the console"),
		chromedp.Click(chromedp.CSS("#send-btn")),
	)
	require.Equal(t, "sent from the console", read(t, cli))
	run(ctx, t, poll(fmt.Sprintf(`%s > %d`, writes, before)))

	// Subscribe from the link's page, publish from the channels page.
	run(ctx, t,
		chromedp.SetValue(chromedp.CSS("#sub-channel"), "room-e2e"),
		chromedp.Click(chromedp.CSS("#sub-btn")),
		poll(`[...document.querySelectorAll('.chips li')].some(li => li.textContent.startsWith("room-e2e"))`),
		chromedp.Navigate("http://"+g.admin+"/console#/channels"),
		poll(`document.querySelector('#channels-table tr[data-channel="room-e2e"]') !== null`),
		chromedp.SetValue(chromedp.CSS("#pub-channel"), "room-e2e"),
		chromedp.SetValue(chromedp.CSS("#pub-data"), "published from the console"),
		chromedp.Click(chromedp.CSS("#pub-btn")),
		poll(`document.querySelector('#pub-btn').closest('form').textContent.includes("Delivered to 1 link.")`),
	)
	require.Equal(t, "published from the console", read(t, cli))

	// The charts move: samples arrive each second, and the messages
	// chart has seen the messages.
	run(ctx, t,
		chromedp.Navigate("http://"+g.admin+"/console#/"),
		poll(`document.querySelector('[data-chart="msgs"] svg') !== null`),
	)
	points := `Number(document.querySelector('[data-chart="msgs"] svg').dataset.points)`
	drawn := evalJS[int](ctx, t, points)
	run(ctx, t,
		poll(fmt.Sprintf(`%s >= %d`, points, drawn+2)),
		poll(`Number(document.querySelector('[data-chart="msgs"] svg').dataset.max) > 0`),
		poll(`Number(document.querySelector('[data-chart="links"] svg').dataset.max) >= 1`),
	)

	// Close from the console with a chosen code and reason.
	run(ctx, t,
		chromedp.Navigate(fmt.Sprintf("http://%s/console#/links/%d", g.admin, id)),
		poll(`document.getElementById("link-state") && document.getElementById("link-state").textContent === "open"`),
		chromedp.SetValue(chromedp.CSS("#close-code"), "4321"),
		chromedp.SetValue(chromedp.CSS("#close-reason"), "closed from the console"),
		chromedp.Click(chromedp.CSS("#close-btn")),
	)
	code, reason := closeCode(t, cli)
	require.Equal(t, 4321, code)
	require.Equal(t, "closed from the console", reason)
	run(ctx, t,
		poll(`document.getElementById("link-state").textContent === "closed 4321"`),
		poll(trace("WSI_DESTROY")),
		poll(`document.querySelector('.endcard').textContent.includes("closed from the console")`),
	)

	// A view the gateway cannot show (a bookmarked address with a sort
	// it does not have) says why where the table would be, and the
	// next one works.
	run(ctx, t,
		chromedp.Navigate("http://"+g.admin+"/console#/links?sort=age"),
		poll(`document.querySelector('#main .error[role=alert]') !== null && document.querySelector('#main .error[role=alert]').textContent.includes('sort "age"')`),
		chromedp.Navigate("http://"+g.admin+"/console#/links?sort=user"),
		poll(`document.querySelector('#main .pager .count').textContent.includes("link")`),
	)

	// Everything the page loaded came from the gateway.
	loaded := evalJS[[]string](ctx, t, `performance.getEntriesByType("resource").map(e => e.name)`)
	require.NotEmpty(t, loaded)
	for _, u := range loaded {
		require.True(t, strings.HasPrefix(u, "http://"+g.admin+"/"), "a fetch from elsewhere: %s", u)
	}
}

// TestConsoleSignIn: a wrong token is refused on the sign-in form, and
// signing out ends the stream.
func TestConsoleSignIn(t *testing.T) {
	ctx := chromium(t, 60*time.Second)
	g := startGW(t, "admin: {addr: 127.0.0.1:0, token: "+consoleToken+"}\n", nil)
	run(ctx, t,
		chromedp.Navigate("http://"+g.admin+"/console"),
		poll(`!document.getElementById("login").hidden`),
		chromedp.SetValue(chromedp.CSS("#login-token"), "not the token"),
		chromedp.Click(chromedp.CSS("#login-form button[type=submit]")),
		poll(`document.getElementById("login-error").textContent === "The token was refused."`),
	)
	require.Empty(t, g.console.list(), "no stream without the token")
	signIn(ctx, t, g, consoleToken)
	require.Eventually(t, func() bool { return len(g.console.list()) == 1 }, 10*time.Second, 10*time.Millisecond)
	run(ctx, t,
		chromedp.Click(chromedp.CSS("#signout")),
		poll(`!document.getElementById("login").hidden`),
	)
	require.Eventually(t, func() bool { return len(g.console.list()) == 0 }, 10*time.Second, 10*time.Millisecond)
}

// TestConsoleShots writes screenshots of each page of the console at
// 1280x800 and 390x844 into LWSGATE_CONSOLE_SHOTS (make console-shots:
// bin/console-shots/), over a gateway with some traffic: users,
// channels, messages, closes with several codes, refused upgrades.
func TestConsoleShots(t *testing.T) {
	dir := os.Getenv("LWSGATE_CONSOLE_SHOTS")
	if dir == "" {
		t.Skip("LWSGATE_CONSOLE_SHOTS not set (make console-shots)")
	}
	require.NoError(t, os.MkdirAll(dir, 0o755))
	ctx := chromium(t, 4*time.Minute)
	g := startGW(t, `
admin: {addr: 127.0.0.1:0, token: `+consoleToken+`}
tokens: {secret: console-shots-secret}
listeners:
  - {name: public, addr: 127.0.0.1:0, subprotocols: [lws-gate], auth: {require_token: true}}
`, &Options{Version: "v0.19.0"})
	traffic := newShotTraffic(t, g)
	defer traffic.stop()

	// Before signing in: the sign-in form.
	shoot := func(name string) {
		t.Helper()
		for _, vp := range []struct {
			w, h   int64
			suffix string
		}{{1280, 800, "1280"}, {390, 844, "390"}} {
			var png []byte
			run(ctx, t,
				chromedp.EmulateViewport(vp.w, vp.h),
				chromedp.Sleep(400*time.Millisecond), // a frame at the new size (charts redraw on resize)
				into(&png, chromedp.CaptureScreenshot()),
			)
			require.True(t, evalJS[bool](ctx, t, fitsWidth), "%s at %d px is wider than the window", name, vp.w)
			require.NoError(t, os.WriteFile(filepath.Join(dir, name+"-"+vp.suffix+".png"), png, 0o644))
			if vp.w == 390 {
				run(ctx, t, into(&png, chromedp.FullScreenshot(100)))
				require.NoError(t, os.WriteFile(filepath.Join(dir, name+"-390-full.png"), png, 0o644))
			}
		}
		run(ctx, t, chromedp.EmulateViewport(1280, 800))
	}
	run(ctx, t,
		chromedp.EmulateViewport(1280, 800),
		chromedp.Navigate("http://"+g.admin+"/console"),
		poll(`!document.getElementById("login").hidden`),
	)
	shoot("0-sign-in")
	signIn(ctx, t, g, consoleToken)

	traffic.run(45 * time.Second) // the charts' first 45 seconds
	run(ctx, t,
		chromedp.Navigate("http://"+g.admin+"/console#/"),
		poll(`document.querySelector('[data-chart="msgs"] svg') && Number(document.querySelector('[data-chart="msgs"] svg').dataset.points) > 30`),
		chromedp.Click(chromedp.CSS(`.seg button:first-child`)), // the last minute
	)
	shoot("1-overview")
	run(ctx, t,
		chromedp.Navigate("http://"+g.admin+"/console#/links"),
		poll(`document.querySelectorAll('#links-table tbody tr').length > 5`),
	)
	shoot("2-links")
	busy := traffic.busiest()
	run(ctx, t,
		chromedp.Navigate(fmt.Sprintf("http://%s/console#/links/%d", g.admin, busy)),
		poll(`document.querySelectorAll('#trace li[data-name]').length > 10`),
	)
	shoot("3-link-open")
	closed := traffic.closeOne(busy, 4001, "kicked by the operator")
	run(ctx, t,
		chromedp.Navigate(fmt.Sprintf("http://%s/console#/links/%d", g.admin, closed)),
		poll(`document.getElementById("link-state") && document.getElementById("link-state").textContent.startsWith("closed")`),
	)
	shoot("4-link-closed")
	run(ctx, t,
		chromedp.Navigate("http://"+g.admin+"/console#/channels"),
		poll(`document.querySelectorAll('#channels-table tbody tr').length >= 3`),
	)
	shoot("5-channels")
	run(ctx, t,
		chromedp.Navigate("http://"+g.admin+"/console#/nodes"),
		poll(`document.querySelector('[data-node]') !== null`),
	)
	shoot("6-nodes")
	run(ctx, t,
		chromedp.Navigate("http://"+g.admin+"/console#/links?user=nobody"),
		poll(`document.querySelector('.empty') && !document.querySelector('.empty').hidden`),
	)
	shoot("7-links-empty")
	t.Logf("screenshots in %s", dir)
}

// shotTraffic is what the screenshots show: users on links, channels,
// messages at changing rates, links that close with several codes,
// upgrades refused for want of a token.
type shotTraffic struct {
	t     *testing.T
	g     *testGW
	mu    sync.Mutex
	links map[uint64]*websocket.Conn
	users []string
}

func newShotTraffic(t *testing.T, g *testGW) *shotTraffic {
	s := &shotTraffic{t: t, g: g, links: map[uint64]*websocket.Conn{},
		users: []string{"alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi"}}
	for i := range 24 {
		s.open(s.users[i%len(s.users)], []string{"room:lobby", "room:ops", "alerts:eu", "room:lobby"}[i%4])
	}
	return s
}

// open opens a link for user with a token, subscribed to channel.
func (s *shotTraffic) open(user, channel string) uint64 {
	t := s.t
	var tok struct{ Token string }
	req := fmt.Sprintf(`{"UserName":%q,"RequestId":"%d"}`, user, time.Now().UnixNano())
	resp, err := http.Post("http://"+s.g.pub+"/v1/api/createtoken", "application/json", strings.NewReader(req))
	require.NoError(t, err)
	defer resp.Body.Close()
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&tok))
	ws := s.g.dial(t, "/chat?token="+tok.Token, nil)
	id := linkID(t, ws)
	send(t, ws, fmt.Sprintf(`{"action":"subscribe","channel":%q}`, channel))
	read(t, ws)
	s.mu.Lock()
	s.links[id] = ws
	s.mu.Unlock()
	return id
}

// run makes traffic for d: a wave of messages, publishes, a link that
// closes or opens now and then, a refused upgrade.
func (s *shotTraffic) run(d time.Duration) {
	end := time.Now().Add(d)
	codes := []int{1000, 1001, 4001, 1000, 1006}
	for i := 0; time.Now().Before(end); i++ {
		s.mu.Lock()
		var ids []uint64
		for id := range s.links {
			ids = append(ids, id)
		}
		s.mu.Unlock()
		// A rate that rises and falls: 1 to 9 messages per link a tick.
		n := 1 + (i/10)%9
		for k, id := range ids {
			if k%3 != i%3 {
				continue
			}
			ws := s.conn(id)
			for range n {
				send(s.t, ws, strings.Repeat("m", 40+20*k))
				s.read(ws)
			}
		}
		if i%7 == 0 {
			s.g.publishOnService("room:lobby", lws.TextMessage, []byte(`{"type":"news","text":"a publish to the lobby"}`))
			s.drain()
		}
		if i%9 == 4 && len(ids) > 12 {
			s.closeOne(ids[i%len(ids)], codes[(i/9)%len(codes)], "")
		}
		if i%9 == 8 {
			s.open(s.users[i%len(s.users)], "room:ops")
		}
		if i%11 == 5 {
			_, _ = s.g.tryDial("/chat", nil) // no token: 401
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// read reads a message (the dial's read deadline is long past).
func (s *shotTraffic) read(ws *websocket.Conn) {
	_ = ws.SetReadDeadline(time.Now().Add(10 * time.Second))
	read(s.t, ws)
}

func (s *shotTraffic) conn(id uint64) *websocket.Conn {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.links[id]
}

// drain reads what publishes sent to the lobby's members.
func (s *shotTraffic) drain() {
	for _, l := range s.g.hub.members("room:lobby") {
		if ws := s.conn(l.ID); ws != nil {
			s.read(ws)
		}
	}
}

// busiest returns the link that has received the most messages.
func (s *shotTraffic) busiest() uint64 {
	var best uint64
	var most int64 = -1
	for _, l := range s.g.links.list(func(l *LinkRecord) bool { return l.Type == TypeTCPListen }) {
		if n := l.msgsIn.Load(); n > most {
			best, most = l.ID, n
		}
	}
	return best
}

// closeOne closes a link: from the client with code (1006: cut without
// a close frame), and returns its id.
func (s *shotTraffic) closeOne(id uint64, code int, reason string) uint64 {
	s.mu.Lock()
	ws := s.links[id]
	delete(s.links, id)
	s.mu.Unlock()
	if ws == nil {
		return id
	}
	if code == 1006 {
		ws.UnderlyingConn().Close()
	} else {
		_ = ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(code, reason), time.Now().Add(time.Second))
		_ = ws.SetReadDeadline(time.Now().Add(10 * time.Second))
		closeCode(s.t, ws)
	}
	require.Eventually(s.t, func() bool { _, err := s.g.Link(id); return err != nil }, 10*time.Second, 5*time.Millisecond)
	return id
}

func (s *shotTraffic) stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for id, ws := range s.links {
		ws.Close()
		delete(s.links, id)
	}
}
