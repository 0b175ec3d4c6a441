package interop

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/lwsgate/lwsgate/internal/testutil"
)

// chromiumClient is Debian's chromium, headless, driven with chromedp:
// each session is a new tab of one browser that loads clients/browser.js
// from a page server of this test (http://127.0.0.1 is a secure context,
// so the page has crypto.subtle) and runs it.
//
// wss: the browser trusts the test's certificate by its public key
// (--ignore-certificate-errors-spki-list), not by a CA store: Chromium on
// Linux reads CAs from an NSS database, which would need certutil.
func chromiumClient(t *testing.T, dir string, cert *testutil.Cert) client {
	cl := client{name: "chromium"}
	path, err := exec.LookPath("chromium")
	if err != nil {
		cl.missing = "chromium is not installed"
		return cl
	}
	if out, err := exec.Command(path, "--version").Output(); err == nil {
		cl.version = strings.TrimPrefix(strings.Fields(string(out) + " ? ?")[1], "Chromium ")
	}
	pages := http.NewServeMux()
	pages.HandleFunc("GET /{$}", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprint(w, `<!doctype html><meta charset="utf-8"><title>lwsgate interop</title><script src="/browser.js"></script>`)
	})
	pages.HandleFunc("GET /browser.js", func(w http.ResponseWriter, r *http.Request) {
		http.ServeFile(w, r, "clients/browser.js")
	})
	pages.HandleFunc("GET /payload/{name}", func(w http.ResponseWriter, r *http.Request) {
		name := r.PathValue("name")
		if !strings.HasPrefix(name, "text-") && !strings.HasPrefix(name, "binary-") {
			http.NotFound(w, r)
			return
		}
		http.ServeFile(w, r, filepath.Join(dir, name))
	})
	srv := httptest.NewServer(pages)
	t.Cleanup(srv.Close)

	spki := sha256.Sum256(cert.Pair.Leaf.RawSubjectPublicKeyInfo)
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.NoSandbox, // tests may run as root
		chromedp.Flag("headless", "new"),
		chromedp.DisableGPU,
		chromedp.Flag("ignore-certificate-errors-spki-list", base64.StdEncoding.EncodeToString(spki[:])),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	bctx, cancelBrowser := chromedp.NewContext(actx)
	t.Cleanup(func() { cancelBrowser(); cancelAlloc() })
	// Start the browser now: each session's tab is opened in it.
	if err := chromedp.Do(bctx); err != nil {
		cl.run = func(context.Context, *caseJSON, chan<- event) error { return fmt.Errorf("starting chromium: %w", err) }
		return cl
	}
	cl.run = func(ctx context.Context, c *caseJSON, events chan<- event) error {
		arg, err := json.Marshal(c)
		if err != nil {
			return err
		}
		tab, cancel := chromedp.NewContext(bctx)
		defer cancel()
		stop := context.AfterFunc(ctx, cancel)
		defer stop()
		if err := chromedp.Do(tab,
			chromedp.ExposeFunc("lwsEmit", func(_ context.Context, ev event) (chromedp.Void, error) {
				return chromedp.Void{}, emit(ctx, events, ev)
			}),
			chromedp.Navigate(srv.URL+"/"),
		); err != nil {
			return fmt.Errorf("chromium: %w", err)
		}
		ok, err := chromedp.Run(tab, chromedp.Evaluate[bool]("runCase("+string(arg)+")", chromedp.EvalAwaitPromise))
		if err != nil {
			return fmt.Errorf("chromium: %w", err)
		}
		if !ok {
			return fmt.Errorf("chromium: the session did not run")
		}
		return nil
	}
	return cl
}
