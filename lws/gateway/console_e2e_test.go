package gateway

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"
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
// and the page then shows the end of its trace.
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
	// (link_trace callbacks, far wider than a phone) scrolls, not the page.
	for i := range 40 {
		send(t, cli, fmt.Sprint("burst ", i))
		read(t, cli)
	}
	full := fmt.Sprintf(`document.querySelectorAll('#trace li[data-name]').length === %d`, linkTrace(g.cfg.Load()))
	run(ctx, t, poll(full), chromedp.EmulateViewport(390, 844), poll(fitsWidth))
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
