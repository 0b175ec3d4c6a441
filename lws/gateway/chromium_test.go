package gateway

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"
)

// Driving pages in a real headless Chromium: the demo page's test and
// the console's.

// chromium starts a headless Chromium (Debian's chromium, which make
// test's test-deps installs) for the test, and returns its context.
// Without one the test is skipped, or fails with
// LWSGATE_REQUIRE_CHROMIUM set (make test sets it).
func chromium(t *testing.T, timeout time.Duration) context.Context {
	t.Helper()
	path, err := exec.LookPath("chromium")
	if err != nil {
		if os.Getenv("LWSGATE_REQUIRE_CHROMIUM") != "" {
			t.Fatal("chromium not found (make test installs it with scripts/test-deps.sh)")
		}
		t.Skip("chromium not installed; make test installs it")
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.NoSandbox, // tests may run as root
		chromedp.Flag("headless", "new"),
		chromedp.DisableGPU,
	)
	actx, cancelA := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancelA)
	ctx, cancelC := chromedp.NewContext(actx)
	t.Cleanup(cancelC)
	ctx, cancelT := context.WithTimeout(ctx, timeout)
	t.Cleanup(cancelT)
	// A script error on a page fails the test, and so does anything the
	// page's Content-Security-Policy blocked (a fetch from elsewhere).
	var mu sync.Mutex
	var thrown []string
	require.NoError(t, chromedp.Listen(ctx, func(ev any) {
		mu.Lock()
		defer mu.Unlock()
		switch e := ev.(type) {
		case *runtime.EventExceptionThrown:
			d := e.ExceptionDetails
			msg := d.Text
			if d.Exception != nil {
				msg += " " + d.Exception.Description
			}
			thrown = append(thrown, fmt.Sprintf("%s:%d:%d: %s", d.URL, d.LineNumber+1, d.ColumnNumber+1, msg))
		case *log.EventEntryAdded:
			if e.Entry.Source == log.EntrySourceSecurity {
				thrown = append(thrown, fmt.Sprintf("%s: %s", e.Entry.URL, e.Entry.Text))
			}
		}
	}))
	t.Cleanup(func() {
		mu.Lock()
		defer mu.Unlock()
		require.Empty(t, thrown, "script errors or blocked fetches on the page")
	})
	return ctx
}

// poll waits (bounded) until a JavaScript expression is true.
func poll(expr string) chromedp.Action[chromedp.Void] {
	return into(new(bool), chromedp.Poll[bool](expr, chromedp.WithPollingTimeout(20*time.Second)))
}

// run runs actions on the page; when one fails (a poll that timed
// out, mostly) the failure shows what the page showed.
func run(ctx context.Context, t *testing.T, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	err := chromedp.Do(ctx, actions...)
	if err == nil {
		return
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	page, perr := chromedp.Run(sctx, chromedp.Evaluate[string](`location.hash + "\n" + document.body.innerText`))
	if perr != nil {
		page = "(the page could not be read: " + perr.Error() + ")"
	}
	t.Fatalf("%v\nthe page showed:\n%s", err, page)
}

// evalJS evaluates a JavaScript expression.
func evalJS[T any](ctx context.Context, t *testing.T, expr string) T {
	t.Helper()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr))
	require.NoError(t, err, expr)
	return v
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
