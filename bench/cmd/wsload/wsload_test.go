package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// The load tool against in-process servers: every mode must measure
// something and report no errors against a correct server, and report
// errors against a wrong one. A few seconds in all; this is what proves
// the harness's client works (go test in bench/, part of make test).

// echoServer is a gorilla echo whose small write buffer makes big echoes
// arrive as many fragments. corrupt flips a byte of every echo.
func echoServer(t *testing.T, corrupt bool) *httptest.Server {
	return echoServerSeeing(t, corrupt, nil)
}

// echoServerSeeing is echoServer calling seen (if not nil) as each message
// arrives, before its echo.
func echoServerSeeing(t *testing.T, corrupt bool, seen func()) *httptest.Server {
	up := websocket.Upgrader{WriteBufferSize: 1024}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == "POST" {
			_, _ = io.Copy(io.Discard, r.Body)
			_, _ = w.Write([]byte(`{"code":0}`))
			return
		}
		c, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer c.Close()
		for {
			typ, msg, err := c.ReadMessage()
			if err != nil {
				return
			}
			if seen != nil {
				seen()
			}
			if corrupt && len(msg) > 20 {
				msg[20] ^= 1
			}
			if err := c.WriteMessage(typ, msg); err != nil {
				return
			}
		}
	}))
	t.Cleanup(srv.Close)
	return srv
}

func wsURL(srv *httptest.Server) string { return "ws" + strings.TrimPrefix(srv.URL, "http") + "/" }

func quiet(t *testing.T) {
	// The modes print their result line; keep test output readable.
	old := os.Stdout
	f, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	os.Stdout = f
	t.Cleanup(func() { os.Stdout = old; f.Close() })
}

func cfgFor(url string) config {
	return config{url: url, conns: 2, depth: 1, size: 64, dur: 300 * time.Millisecond,
		warmup: 100 * time.Millisecond, binary: true, pid: os.Getpid()}
}

func TestEchoModes(t *testing.T) {
	quiet(t)
	srv := echoServer(t, false)
	for _, tc := range []struct {
		name               string
		conns, depth, size int
		binary             bool
	}{
		{"pingpong", 2, 1, 32, true},
		{"pipelined", 4, 16, 32, true},
		{"text", 2, 4, 100, false},
		{"fragmented", 2, 2, 70000, true},
		{"tiny", 1, 2, 3, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := cfgFor(wsURL(srv))
			cfg.conns, cfg.depth, cfg.size, cfg.binary = tc.conns, tc.depth, tc.size, tc.binary
			if rc := runEcho(cfg, "echo"); rc != 0 {
				t.Fatalf("runEcho = %d, want 0", rc)
			}
		})
	}
}

func TestEchoDetectsCorruption(t *testing.T) {
	quiet(t)
	srv := echoServer(t, true)
	if rc := runEcho(cfgFor(wsURL(srv)), "echo"); rc != 1 {
		t.Fatalf("runEcho against a corrupting server = %d, want 1", rc)
	}
}

// TestEchoURLList: with a comma-separated -url the links are spread over
// the servers, link i to URL i mod their number, and each server echoes
// its share; a list where one URL is not a WebSocket URL is refused.
func TestEchoURLList(t *testing.T) {
	quiet(t)
	var mu sync.Mutex
	seen := map[int]int{}
	count := func(i int) func() {
		return func() { mu.Lock(); seen[i]++; mu.Unlock() }
	}
	a, b := echoServerSeeing(t, false, count(0)), echoServerSeeing(t, false, count(1))
	cfg := cfgFor(wsURL(a) + "," + wsURL(b))
	cfg.conns = 4
	if rc := runEcho(cfg, "echo"); rc != 0 {
		t.Fatalf("runEcho over two URLs = %d, want 0", rc)
	}
	mu.Lock()
	defer mu.Unlock()
	if seen[0] == 0 || seen[1] == 0 {
		t.Errorf("messages per server %v: want both to echo", seen)
	}
	if _, err := parseTargets(wsURL(a)+",http://x/", "ws"); err == nil {
		t.Error("a list with an http URL was taken for the echo load")
	}
	if _, err := parseTarget(wsURL(a)+","+wsURL(b), "ws"); err == nil {
		t.Error("a list of URLs was taken where one is wanted")
	}
}

func TestConnectHTTPIdle(t *testing.T) {
	quiet(t)
	srv := echoServer(t, false)
	cfg := cfgFor(wsURL(srv))
	if rc := runConnect(cfg); rc != 0 {
		t.Errorf("runConnect = %d, want 0", rc)
	}
	cfg.url = srv.URL + "/v1/api/createtoken"
	if rc := runHTTP(cfg); rc != 0 {
		t.Errorf("runHTTP = %d, want 0", rc)
	}
	cfg.url, cfg.conns = wsURL(srv), 50
	if rc := runIdle(cfg); rc != 0 {
		t.Errorf("runIdle = %d, want 0", rc)
	}
}

func TestCPUTicks(t *testing.T) {
	a, err := cpuTicks(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	for end := time.Now().Add(50 * time.Millisecond); time.Now().Before(end); {
	}
	b, err := cpuTicks(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if b < a {
		t.Fatalf("CPU time went backwards: %d then %d", a, b)
	}
}

func TestHistogramQuantiles(t *testing.T) {
	var h histogram
	for v := uint64(1); v <= 1000; v++ {
		h.record(v * 1000)
	}
	for _, q := range []struct {
		q    float64
		want time.Duration
	}{{0.5, 500 * time.Microsecond}, {0.99, 990 * time.Microsecond}, {0.999, 999 * time.Microsecond}} {
		got := h.quantile(q.q)
		if got < q.want || float64(got) > float64(q.want)*1.07 {
			t.Errorf("quantile(%v) = %v, want %v (+7%%)", q.q, got, q.want)
		}
	}
}

// TestIdleSet: -idle's links open, stay open while held, come from further
// source addresses past idlePerSource, and close with the set.
func TestIdleSet(t *testing.T) {
	var mu sync.Mutex
	open := map[string]int{} // source IP -> links open
	up := websocket.Upgrader{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		ip, _, _ := net.SplitHostPort(r.RemoteAddr)
		mu.Lock()
		open[ip]++
		mu.Unlock()
		_, _, _ = c.ReadMessage() // until the client goes
		mu.Lock()
		open[ip]--
		mu.Unlock()
	}))
	t.Cleanup(srv.Close)
	tg, err := parseTarget(wsURL(srv), "ws")
	if err != nil {
		t.Fatal(err)
	}
	defer func(n int) { idlePerSource = n }(idlePerSource)
	idlePerSource = 10
	set := openIdle(tg, "", 25)
	if set.links != 25 || set.errs != 0 {
		t.Fatalf("openIdle(25): %d links, %d errors (first: %v)", set.links, set.errs, set.firstErr)
	}
	want := map[string]int{"127.0.0.1": 10, "127.0.0.2": 10, "127.0.0.3": 5}
	waitOpen := func(want map[string]int) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			mu.Lock()
			ok := true
			for ip, n := range want {
				ok = ok && open[ip] == n
			}
			got := fmt.Sprint(open)
			mu.Unlock()
			if ok {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("links open by source: %s, want %v", got, want)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	waitOpen(want)
	set.close()
	waitOpen(map[string]int{"127.0.0.1": 0, "127.0.0.2": 0, "127.0.0.3": 0})
}

// TestEchoPaced: with -rate the load offers that rate, whatever the
// server could take, and nothing falls behind against a quick server.
func TestEchoPaced(t *testing.T) {
	srv := echoServer(t, false)
	cfg := cfgFor(wsURL(srv))
	cfg.conns, cfg.depth, cfg.size, cfg.rate, cfg.json = 4, 4, 32, 2000, true
	cfg.dur = time.Second
	var r result
	out := stdoutOf(t, func() {
		if rc := runEcho(cfg, "pipelined"); rc != 0 {
			t.Errorf("runEcho = %d, want 0", rc)
		}
	})
	line := out[strings.LastIndexByte(strings.TrimSpace(out), '\n')+1:]
	if err := json.Unmarshal([]byte(line), &r); err != nil {
		t.Fatalf("result %q: %v", line, err)
	}
	// An unpaced run against this server gives tens of thousands a
	// second; paced, the rate is the one offered.
	if r.Rate < 1600 || r.Rate > 2200 || r.Offered != 2000 || r.Behind != 0 {
		t.Fatalf("paced at 2000/s: rate %.0f, offered %d, behind %d", r.Rate, r.Offered, r.Behind)
	}
}

// TestPacerBehind: messages that fall due while every link has -depth in
// flight are counted behind in the measured window and not sent later.
func TestPacerBehind(t *testing.T) {
	var mask [4]byte
	links := make([]*elink, 2)
	for i := range links {
		links[i] = &elink{econn: econn{fd: 100 + i}, pl: newPayload(32, true, mask), hdr: appendFrameHeader(nil, opBinary, 32, mask), op: opBinary}
	}
	cfg := config{depth: 3, size: 32}
	pc := pacer{rate: 1000, start: time.Now().Add(-time.Second)}
	var st stats
	pc.due(links, cfg, phaseMeasure, &st)
	for _, l := range links {
		if l.sent != 3 {
			t.Fatalf("link sent %d, want its depth, 3", l.sent)
		}
	}
	if pc.issued < 1000 || st.behind != pc.issued-6 {
		t.Fatalf("issued %d, behind %d: want at least 1000 due and all but 6 behind", pc.issued, st.behind)
	}
	// Echoes come back: the next messages due go out, the backlog does not.
	links[0].recvd, links[1].recvd = 3, 3
	pc.start = pc.start.Add(-10 * time.Millisecond) // 10 more due
	before := pc.issued
	pc.due(links, cfg, phaseWarmup, &st)
	if sent := links[0].sent + links[1].sent - 6; sent != 6 || pc.issued-before < 10 {
		t.Fatalf("after the echoes: %d sent of %d due, want the 6 the links can take", sent, pc.issued-before)
	}
}

// stdoutOf runs f and returns what it printed.
func stdoutOf(t *testing.T, f func()) string {
	t.Helper()
	old := os.Stdout
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	os.Stdout = w
	got := make(chan string)
	go func() { b, _ := io.ReadAll(r); got <- string(b) }()
	f()
	os.Stdout = old
	w.Close()
	return <-got
}

// TestEchoPacedTick: with -tick the messages due go out in bursts of
// rate x tick, one burst per tick, however fast the echoes come back;
// without it they go out as they fall due. A server that notes when each
// message arrives tells the two apart: at 2,000 a second over 4 links,
// -tick 50ms leaves gaps of about 50 ms between bursts, and no -tick none
// longer than a few milliseconds.
func TestEchoPacedTick(t *testing.T) {
	quiet(t)
	gaps := func(tick time.Duration) (long, msgs int) {
		var mu sync.Mutex
		var last time.Time
		srv := echoServerSeeing(t, false, func() {
			mu.Lock()
			defer mu.Unlock()
			now := time.Now()
			if !last.IsZero() && now.Sub(last) > 25*time.Millisecond {
				long++
			}
			last = now
			msgs++
		})
		cfg := cfgFor(wsURL(srv))
		cfg.conns, cfg.depth, cfg.size, cfg.rate, cfg.tick = 4, 200, 32, 2000, tick
		cfg.dur = time.Second
		if rc := runEcho(cfg, "pipelined"); rc != 0 {
			t.Errorf("-tick %v: runEcho = %d, want 0", tick, rc)
		}
		mu.Lock()
		defer mu.Unlock()
		return long, msgs
	}
	long, msgs := gaps(50 * time.Millisecond)
	// 1.1 s of warm-up and measure: about 22 ticks, less a few a busy
	// machine merges.
	if long < 12 || msgs < 1800 {
		t.Errorf("-tick 50ms: %d gaps over 25 ms in %d messages, want about 22 in about 2,200", long, msgs)
	}
	long, msgs = gaps(0)
	if long > 3 || msgs < 1800 {
		t.Errorf("no -tick: %d gaps over 25 ms in %d messages, want hardly any in about 2,200", long, msgs)
	}
}
