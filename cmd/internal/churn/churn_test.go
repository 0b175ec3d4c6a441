package churn

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"os"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/require"

	"github.com/lwsgate/lwsgate/cgo"
	"github.com/lwsgate/lwsgate/lws"
)

var (
	soakFor   = flag.Duration("soak", 0, "run TestSoak for this long (0: skip it)")
	soakKinds = flag.String("soak.kinds", "", "comma-separated kinds of link TestSoak plays, e.g. lws-clean,http-get (default: all)")
)

// kind is one way a link is opened, used and dropped.
type kind int

const (
	wsClean          kind = iota // 3 messages echoed, then the closing handshake
	wsDropTCP                    // a message echoed, then TCP closed without a close frame
	wsReset                      // a message echoed, then a TCP reset
	wsMidFrame                   // a frame announcing 1000 bytes, 10 sent, then TCP closed
	wsUnread                     // a 256 KiB message, closed before its echo is read
	wsServerClose                // the server closes the link (4001) when asked
	wsHandshakeAbort             // half an upgrade request, then TCP closed
	lwsClean                     // an lws.Dial link: a message echoed, closed with 1000
	lwsServerClose               // an lws.Dial link the server closes (4001)
	httpGet                      // an HTTP request answered 200, Connection: close
	httpAbort                    // an HTTP POST whose body stops halfway, then TCP closed
	numKinds
)

var kindNames = [numKinds]string{
	"ws-clean", "ws-drop-tcp", "ws-reset", "ws-mid-frame", "ws-unread", "ws-server-close",
	"ws-handshake-abort", "lws-clean", "lws-server-close", "http-get", "http-abort",
}

// rig is the in-process side: an lws server (WebSocket echo and HTTP) and
// an lws client context for the lws.Dial links.
type rig struct {
	kinds    []kind // played in turn
	srv, cli *lws.Context
	addr     string
	srvOpen  atomic.Int64 // server links open (OnLinkOpen minus OnLinkClose)
	cliOpen  atomic.Int64
	mu       sync.Mutex
	srvEnds  map[lws.StatusCode]int64 // how the server's links ended
	done     [numKinds]atomic.Int64
	failures atomic.Int64
	firstErr atomic.Pointer[string]
}

func newRig(t testing.TB) *rig {
	r := &rig{srvEnds: map[lws.StatusCode]int64{}}
	for k := range numKinds {
		r.kinds = append(r.kinds, k)
	}
	quiet := slog.New(slog.DiscardHandler)
	echo := lws.HandlerFuncs{Message: func(c *lws.Conn, typ lws.MessageType, data []byte) {
		if string(data) == "close-me" {
			_ = c.Close(4001, "bye")
			return
		}
		_ = c.Send(typ, data)
	}}
	var err error
	r.srv, err = lws.New(&lws.Config{
		Logger:     quiet,
		OnLinkOpen: func(lws.Link) { r.srvOpen.Add(1) },
		OnLinkClose: func(_ lws.Link, ce lws.CloseError) {
			r.mu.Lock()
			r.srvEnds[ce.Code]++
			r.mu.Unlock()
			r.srvOpen.Add(-1)
		},
		// A link that stops reading while its close is pending is held
		// that long: keep it short so that the counts settle.
		NetworkTimeout: 2 * time.Second,
		Listeners: []lws.Listener{{
			Addr:    "127.0.0.1:0",
			Handler: echo,
			// Thousands of links a second from one address: this is a
			// leak test, not one of the connection limits.
			MaxLinksPerIP: -1,
			AcceptRate:    -1,
			HTTPHandler: lws.HTTPHandlerFunc(func(w *lws.ResponseWriter, _ *lws.Request) {
				_ = w.Respond(200, []byte("ok\n"))
			}),
		}},
	})
	require.NoError(t, err)
	r.cli, err = lws.New(&lws.Config{
		Logger:      quiet,
		OnLinkOpen:  func(lws.Link) { r.cliOpen.Add(1) },
		OnLinkClose: func(lws.Link, lws.CloseError) { r.cliOpen.Add(-1) },
	})
	if err != nil {
		r.srv.Close()
		require.NoError(t, err)
	}
	r.addr = r.srv.Addrs()[0].String()
	return r
}

func (r *rig) close() error { return errors.Join(r.cli.Close(), r.srv.Close()) }

func (r *rig) fail(k kind, err error) {
	r.failures.Add(1)
	msg := kindNames[k] + ": " + err.Error()
	r.firstErr.CompareAndSwap(nil, &msg)
}

// run plays n episodes from start on, with workers in parallel.
func (r *rig) run(start, n int64, workers int) {
	var next atomic.Int64
	next.Store(start)
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1) - 1
				if i >= start+n {
					return
				}
				k := r.kinds[i%int64(len(r.kinds))]
				if err := r.episode(k, i); err != nil {
					r.fail(k, err)
				}
				r.done[k].Add(1)
			}
		}()
	}
	wg.Wait()
}

const episodeTimeout = 10 * time.Second

// episode opens, uses and drops one link of kind k.
func (r *rig) episode(k kind, i int64) error {
	switch k {
	case lwsClean, lwsServerClose:
		return r.lwsEpisode(k == lwsServerClose)
	case httpGet, httpAbort, wsMidFrame, wsHandshakeAbort:
		return r.rawEpisode(k)
	}
	d := websocket.Dialer{HandshakeTimeout: episodeTimeout}
	ws, resp, err := d.Dial("ws://"+r.addr+"/churn", nil)
	if err != nil {
		return fmt.Errorf("dial: %w", err)
	}
	if resp.Body != nil {
		resp.Body.Close()
	}
	defer ws.Close()
	_ = ws.SetReadDeadline(time.Now().Add(episodeTimeout))
	_ = ws.SetWriteDeadline(time.Now().Add(episodeTimeout))
	roundTrip := func(typ int, p []byte) error {
		if err := ws.WriteMessage(typ, p); err != nil {
			return err
		}
		gt, got, err := ws.ReadMessage()
		if err != nil {
			return err
		}
		if gt != typ || !bytes.Equal(got, p) {
			return fmt.Errorf("echo of %d bytes came back as %d bytes", len(p), len(got))
		}
		return nil
	}
	msg := []byte(fmt.Sprintf("episode %d", i))
	switch k {
	case wsClean:
		for _, p := range [][]byte{msg, bytes.Repeat([]byte{'t'}, 1<<10), bytes.Repeat([]byte{0xb5}, 64<<10)} {
			typ := websocket.TextMessage
			if p[0] == 0xb5 {
				typ = websocket.BinaryMessage
			}
			if err := roundTrip(typ, p); err != nil {
				return err
			}
		}
		if err := ws.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(1000, "")); err != nil {
			return err
		}
		if _, _, err := ws.ReadMessage(); !websocket.IsCloseError(err, 1000) {
			return fmt.Errorf("close answered with %v", err)
		}
		return nil
	case wsDropTCP:
		return roundTrip(websocket.TextMessage, msg)
	case wsReset:
		if err := roundTrip(websocket.BinaryMessage, msg); err != nil {
			return err
		}
		if tc, ok := ws.NetConn().(*net.TCPConn); ok {
			_ = tc.SetLinger(0)
		}
		return nil
	case wsUnread:
		return ws.WriteMessage(websocket.BinaryMessage, bytes.Repeat([]byte{0x5a}, 256<<10))
	case wsServerClose:
		if err := roundTrip(websocket.TextMessage, msg); err != nil {
			return err
		}
		if err := ws.WriteMessage(websocket.TextMessage, []byte("close-me")); err != nil {
			return err
		}
		if _, _, err := ws.ReadMessage(); !websocket.IsCloseError(err, 4001) {
			return fmt.Errorf("server close came as %v", err)
		}
		return nil
	}
	return fmt.Errorf("unknown kind %d", k)
}

// rawEpisode is a link played with raw bytes.
func (r *rig) rawEpisode(k kind) error {
	conn, err := net.DialTimeout("tcp", r.addr, episodeTimeout)
	if err != nil {
		return err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(episodeTimeout))
	upgrade := "GET /churn HTTP/1.1\r\nHost: " + r.addr + "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
	switch k {
	case wsHandshakeAbort:
		_, err := io.WriteString(conn, upgrade[:len(upgrade)/2])
		return err
	case httpAbort:
		_, err := io.WriteString(conn, "POST /churn HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n0123456789")
		return err
	case httpGet:
		if _, err := io.WriteString(conn, "GET /churn HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"); err != nil {
			return err
		}
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			return err
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != 200 || string(body) != "ok\n" {
			return fmt.Errorf("GET: %v %q %v", resp.Status, body, err)
		}
		return nil
	case wsMidFrame:
		if _, err := io.WriteString(conn, upgrade); err != nil {
			return err
		}
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			return err
		}
		if resp.StatusCode != 101 {
			return fmt.Errorf("upgrade: %s", resp.Status)
		}
		// A masked binary frame of 1000 bytes, of which 10 come.
		frame := []byte{0x82, 0x80 | 126, 1000 >> 8, 1000 & 0xff, 1, 2, 3, 4}
		_, err = conn.Write(append(frame, "0123456789"...))
		return err
	}
	return fmt.Errorf("unknown kind %d", k)
}

// lwsEpisode is a link dialled with lws.Dial from the client context.
func (r *rig) lwsEpisode(serverCloses bool) error {
	got := make(chan []byte, 1)
	closed := make(chan lws.CloseError, 1)
	h := lws.HandlerFuncs{
		Message: func(_ *lws.Conn, _ lws.MessageType, data []byte) {
			select {
			case got <- bytes.Clone(data):
			default:
			}
		},
		Close: func(_ *lws.Conn, ce lws.CloseError) { closed <- ce },
	}
	ctx, cancel := context.WithTimeout(context.Background(), episodeTimeout)
	defer cancel()
	c, err := r.cli.Dial(ctx, "ws://"+r.addr+"/churn", &lws.DialOptions{Handler: h})
	if err != nil {
		return err
	}
	if err := c.SendText("hello"); err != nil {
		return err
	}
	select {
	case p := <-got:
		if string(p) != "hello" {
			return fmt.Errorf("echo %q", p)
		}
	case <-ctx.Done():
		return errors.New("no echo")
	}
	want := lws.StatusNormalClosure
	if serverCloses {
		want = 4001
		err = c.SendText("close-me")
	} else {
		err = c.Close(lws.StatusNormalClosure, "")
	}
	if err != nil {
		return err
	}
	select {
	case ce := <-closed:
		if ce.Code != want {
			return fmt.Errorf("closed with %v, want %v", ce.Code, want)
		}
	case <-ctx.Done():
		return errors.New("OnClose never came")
	}
	return nil
}

// settle waits (bounded) until no link is open on either context.
func (r *rig) settle() error {
	deadline := time.Now().Add(30 * time.Second)
	for r.srvOpen.Load() != 0 || r.cliOpen.Load() != 0 {
		if time.Now().After(deadline) {
			return fmt.Errorf("links still open: server %d, client %d", r.srvOpen.Load(), r.cliOpen.Load())
		}
		time.Sleep(20 * time.Millisecond)
	}
	return nil
}

// sample is the process's state at one point.
type sample struct {
	rss        int64 // VmRSS, bytes
	handles    int64
	goroutines int
	heap       uint64 // Go heap in use
}

func (s sample) String() string {
	return fmt.Sprintf("RSS %.1f MiB (Go heap %.1f MiB), %d cgo handles, %d goroutines",
		float64(s.rss)/(1<<20), float64(s.heap)/(1<<20), s.handles, s.goroutines)
}

// measure settles the links, collects garbage and samples. Goroutines that
// served dropped links (gorilla's, the dialers') are waited for, bounded,
// down to want when want > 0.
func (r *rig) measure(t testing.TB, wantGoroutines int) sample {
	t.Helper()
	require.NoError(t, r.settle())
	deadline := time.Now().Add(10 * time.Second)
	for wantGoroutines > 0 && runtime.NumGoroutine() > wantGoroutines && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	runtime.GC()
	debug.FreeOSMemory()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return sample{rss: rss(t), handles: cgo.LiveHandles(), goroutines: runtime.NumGoroutine(), heap: ms.HeapInuse}
}

// rss reads the resident set size from /proc/self/status.
func rss(t testing.TB) int64 {
	b, err := os.ReadFile("/proc/self/status")
	require.NoError(t, err)
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			require.NoError(t, err)
			return kb << 10
		}
	}
	t.Fatal("no VmRSS in /proc/self/status")
	return 0
}

func (r *rig) counts() string {
	var b strings.Builder
	for k := range numKinds {
		fmt.Fprintf(&b, " %s=%d", kindNames[k], r.done[k].Load())
	}
	return strings.TrimSpace(b.String())
}

// rssBound is how much the resident set may grow between the sample after
// the warm-up and the last one. It is generous (glibc keeps freed memory,
// Go's heap target moves, the race detector adds its own): over TestChurn's
// links it only catches a leak of kilobytes per link. The handle and
// goroutine counts are the exact checks; TestSoak's many more links make
// the RSS check finer.
func rssBound(base int64) int64 { return max(16<<20, base/4) }

// ends returns how the server's links ended, per close code.
func (r *rig) ends() map[lws.StatusCode]int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := map[lws.StatusCode]int64{}
	for k, v := range r.srvEnds {
		out[k] = v
	}
	return out
}

// TestChurn opens, uses and drops thousands of links of every kind.
func TestChurn(t *testing.T) {
	per := int64(600) // links of each kind after the warm-up
	if testing.Short() {
		per = 200
	}
	warmup, measured := 100*int64(numKinds), per*int64(numKinds)
	before := cgo.LiveHandles()
	goroutines0 := runtime.NumGoroutine()
	r := newRig(t)
	start := time.Now()
	r.run(0, warmup, 16)
	warm := r.measure(t, 0)
	r.run(warmup, measured/2, 16)
	mid := r.measure(t, warm.goroutines)
	r.run(warmup+measured/2, measured-measured/2, 16)
	after := r.measure(t, warm.goroutines)
	elapsed := time.Since(start)
	ends := r.ends()
	t.Logf("%d links in %v: %s", warmup+measured, elapsed.Round(time.Millisecond), r.counts())
	t.Logf("server links ended with: %v", ends)
	t.Logf("after %5d links (warm-up): %s", warmup, warm)
	t.Logf("after %5d links:           %s", warmup+measured/2, mid)
	t.Logf("after %5d links:           %s", warmup+measured, after)
	t.Logf("RSS growth after the warm-up %+.1f MiB (bound %.0f MiB)", float64(after.rss-warm.rss)/(1<<20), float64(rssBound(warm.rss))/(1<<20))
	if p := r.firstErr.Load(); p != nil {
		t.Errorf("%d episodes failed; the first: %s", r.failures.Load(), *p)
	}
	require.NoError(t, r.close())

	// Every kind ended as it should on the server: the abrupt ones as
	// lost links (1006), the others with their close code (an HTTP
	// link's is 1000); an abandoned upgrade never became a link.
	n := func(ks ...kind) int64 {
		var sum int64
		for _, k := range ks {
			sum += r.done[k].Load()
		}
		return sum
	}
	want := map[lws.StatusCode]int64{
		lws.StatusAbnormalClosure: n(wsDropTCP, wsReset, wsMidFrame, wsUnread),
		lws.StatusNormalClosure:   n(wsClean, lwsClean, httpGet, httpAbort),
		4001:                      n(wsServerClose, lwsServerClose),
	}
	if !maps.Equal(want, ends) {
		t.Errorf("server links ended with %v, want %v", ends, want)
	}
	if after.rss-warm.rss > rssBound(warm.rss) {
		t.Errorf("RSS grew by %d bytes over %d links (bound %d)", after.rss-warm.rss, measured, rssBound(warm.rss))
	}
	if mid.handles != warm.handles || after.handles != warm.handles {
		t.Errorf("cgo handles: %d after the warm-up, then %d and %d", warm.handles, mid.handles, after.handles)
	}
	if mid.goroutines > warm.goroutines || after.goroutines > warm.goroutines {
		t.Errorf("goroutines: %d after the warm-up, then %d and %d", warm.goroutines, mid.goroutines, after.goroutines)
	}
	if n := cgo.LiveHandles(); n != before {
		t.Errorf("%d cgo handles live once both contexts closed, want %d", n, before)
	}
	if err := waitGoroutines(goroutines0); err != nil {
		t.Error(err)
	}
}

// TestSoak is TestChurn for -soak long, printing a sample every 10 s.
func TestSoak(t *testing.T) {
	if *soakFor <= 0 {
		t.Skip("run with -soak DURATION (make soak)")
	}
	before := cgo.LiveHandles()
	goroutines0 := runtime.NumGoroutine()
	r := newRig(t)
	if *soakKinds != "" {
		r.kinds = nil
		for _, name := range strings.Split(*soakKinds, ",") {
			i := slices.Index(kindNames[:], strings.TrimSpace(name))
			if i < 0 {
				r.close()
				t.Fatalf("-soak.kinds: unknown kind %q (want some of %s)", name, strings.Join(kindNames[:], ","))
			}
			r.kinds = append(r.kinds, kind(i))
		}
	}
	const batch = 2200 // episodes between samples: 200 of each kind
	start := time.Now()
	var n int64
	r.run(n, batch, 32)
	n += batch
	warm := r.measure(t, 0)
	fmt.Printf("%8s %9s %9s %9s %8s %10s %8s\n", "elapsed", "links", "RSS MiB", "heap MiB", "handles", "goroutines", "failures")
	line := func(s sample) {
		fmt.Printf("%8s %9d %9.1f %9.1f %8d %10d %8d\n", time.Since(start).Round(time.Second), n,
			float64(s.rss)/(1<<20), float64(s.heap)/(1<<20), s.handles, s.goroutines, r.failures.Load())
	}
	line(warm)
	peak := warm
	last := warm
	nextPrint := time.Now().Add(10 * time.Second)
	for time.Since(start) < *soakFor {
		r.run(n, batch, 32)
		n += batch
		if time.Now().After(nextPrint) {
			last = r.measure(t, warm.goroutines)
			peak.rss = max(peak.rss, last.rss)
			line(last)
			nextPrint = time.Now().Add(10 * time.Second)
		}
	}
	last = r.measure(t, warm.goroutines)
	peak.rss = max(peak.rss, last.rss)
	line(last)
	fmt.Printf("%d links in %v (%s)\nserver links ended with: %v\n", n, time.Since(start).Round(time.Second), r.counts(), r.ends())
	fmt.Printf("RSS %.1f MiB after the warm-up, %.1f MiB at the end, %.1f MiB at the highest sample\n",
		float64(warm.rss)/(1<<20), float64(last.rss)/(1<<20), float64(peak.rss)/(1<<20))
	if p := r.firstErr.Load(); p != nil {
		t.Errorf("%d episodes failed; the first: %s", r.failures.Load(), *p)
	}
	require.NoError(t, r.close())
	if last.rss-warm.rss > rssBound(warm.rss) {
		t.Errorf("RSS grew by %d bytes (bound %d)", last.rss-warm.rss, rssBound(warm.rss))
	}
	if last.handles != warm.handles {
		t.Errorf("cgo handles: %d after the warm-up, %d at the end", warm.handles, last.handles)
	}
	if n := cgo.LiveHandles(); n != before {
		t.Errorf("%d cgo handles live once both contexts closed, want %d", n, before)
	}
	if err := waitGoroutines(goroutines0); err != nil {
		t.Error(err)
	}
}

// waitGoroutines waits (bounded) for the goroutine count to come back to
// base, and describes them if it does not.
func waitGoroutines(base int) error {
	deadline := time.Now().Add(10 * time.Second)
	for runtime.NumGoroutine() > base {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			return fmt.Errorf("%d goroutines, want <= %d:\n%s", runtime.NumGoroutine(), base, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(20 * time.Millisecond)
	}
	return nil
}
