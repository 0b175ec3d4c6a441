package gateway

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
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
	chromium, err := exec.LookPath("chromium")
	if err != nil {
		if os.Getenv("LWSGATE_REQUIRE_CHROMIUM") != "" {
			t.Fatal("chromium not found (make test installs it with scripts/test-deps.sh)")
		}
		t.Skip("chromium not installed; make test installs it")
	}
	g := startGW(t, "", nil)

	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium),
		chromedp.NoSandbox, // tests may run as root
		chromedp.Flag("headless", "new"),
		chromedp.DisableGPU,
	)
	actx, cancel := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancel()
	ctx, cancel := chromedp.NewContext(actx)
	defer cancel()
	ctx, cancel = context.WithTimeout(ctx, 90*time.Second)
	defer cancel()

	poll := func(expr string) chromedp.Action[chromedp.Void] {
		return into(new(bool), chromedp.Poll[bool](expr, chromedp.WithPollingTimeout(20*time.Second)))
	}
	logHas := func(s string) chromedp.Action[chromedp.Void] {
		return poll(fmt.Sprintf(`document.getElementById("log").textContent.includes(%q)`, s))
	}
	var status, link string
	require.NoError(t, chromedp.Do(ctx,
		chromedp.Navigate("http://"+g.pub+"/"),
		poll(`document.getElementById("status").textContent === "open" && document.getElementById("link").textContent !== "?"`),
		into(&status, chromedp.Text(chromedp.CSS("#status"))),
		into(&link, chromedp.Text(chromedp.CSS("#link"))),
	), "page log: %s", g.logs)
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

// into runs a and stores its value in dst, so that actions with values
// can be sequenced by chromedp.Do.
func into[T any](dst *T, a chromedp.Action[T]) chromedp.Action[chromedp.Void] {
	return func(ctx context.Context, t *chromedp.Target) (chromedp.Void, error) {
		v, err := a(ctx, t)
		if err != nil {
			return chromedp.Void{}, err
		}
		*dst = v
		return chromedp.Void{}, nil
	}
}
