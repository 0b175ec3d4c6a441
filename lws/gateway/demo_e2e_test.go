package gateway

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"
)

// TestDemoPageInChromium drives the demo page at / in a real headless
// Chromium (Debian's chromium, installed by make test's test-deps): it
// connects over ws, sends and shows the echo, and shows pushes from the
// admin API to the link and to a channel it subscribed to.
func TestDemoPageInChromium(t *testing.T) {
	ctx := chromium(t, 90*time.Second)
	g := startGW(t, "", nil)

	logHas := func(s string) chromedp.Action[chromedp.Void] {
		return poll(fmt.Sprintf(`document.getElementById("log").textContent.includes(%q)`, s))
	}
	var status, link string
	run(ctx, t,
		chromedp.Navigate("http://"+g.pub+"/"),
		poll(`document.getElementById("status").textContent === "open" && document.getElementById("link").textContent !== "?"`),
		into(&status, chromedp.Text(chromedp.CSS("#status"))),
		into(&link, chromedp.Text(chromedp.CSS("#link"))),
	)
	require.Equal(t, "open", status)
	id, err := strconv.ParseUint(link, 10, 64)
	require.NoError(t, err, "the page shows its link id: %q", link)

	// Send: the default rules echo it back.
	require.NoError(t, chromedp.Do(ctx,
		chromedp.SetValue(chromedp.CSS("#msg"), "hello from chromium"),
		chromedp.Click(chromedp.CSS("#send")),
		logHas("reply: hello from chromium"),
	))
	// A push to this link from the admin API.
	require.Equal(t, http.StatusOK, g.api(t, "POST", fmt.Sprintf("/v1/api/links/%d/send", id), "pushed to the link", nil))
	require.NoError(t, chromedp.Do(ctx, logHas("push: pushed to the link")))
	// Subscribe from the page, publish from the API.
	require.NoError(t, chromedp.Do(ctx,
		chromedp.Click(chromedp.CSS("#subscribe")),
		logHas("subscribed demo"),
	))
	require.Equal(t, http.StatusOK, g.api(t, "POST", "/v1/api/publish", `{"channel":"demo","data":"published to demo"}`, nil))
	require.NoError(t, chromedp.Do(ctx, logHas("push: published to demo")))

	all, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("#log")))
	require.NoError(t, err)
	require.True(t, strings.Contains(all, "connected"), all)
	// The link is the browser's, with its upgrade path.
	in, err := g.Link(id)
	require.NoError(t, err)
	require.Equal(t, "/demo", in.Path)
}
