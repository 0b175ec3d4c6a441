package interop

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/lwsgate/lwsgate/internal/testutil"
)

// The listeners the matrix runs against: each is the default config's
// listener with one thing changed.
const (
	lPlain      = "plain"      // as lwsgate defaultconfig prints it
	lDeflate    = "deflate"    // compression: true
	lTLS        = "tls"        // a certificate made at test time
	lTLSDeflate = "tlsdeflate" // both
	lKeepalive  = "keepalive"  // the server pings: ping_interval 1s, ping_timeout 2s
)

var listenerNames = []string{lPlain, lDeflate, lTLS, lTLSDeflate, lKeepalive}

// gate is a running bin/lwsgate: the default config (lwsgate
// defaultconfig) with the listeners above, the admin API on a port of its
// own and the disconnect hook pointed at this test.
//
// Concurrency: its methods are safe from any goroutine once start returns.
type gate struct {
	cmd   *exec.Cmd
	addr  map[string]string // listener name (and "admin") -> host:port bound
	hooks *hookSink
	log   *logTail
	done  chan struct{} // closed when the process has exited
	err   error         // its exit status, set before done closes
}

// lwsgateBin returns the binary to test: $LWSGATE_BIN (make passes
// bin/lwsgate), else one built from this checkout into dir.
func lwsgateBin(t *testing.T, dir string) string {
	if b := os.Getenv("LWSGATE_BIN"); b != "" {
		return b
	}
	bin := filepath.Join(dir, "lwsgate")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/lwsgate")
	cmd.Dir = "../.." // the main module, with its own go.sum
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("building lwsgate: %v\n%s", err, out)
	}
	return bin
}

// startGate writes the config and starts bin; it fails the test unless
// every listener is up within 30 s.
func startGate(t *testing.T, bin, dir string, cert *testutil.Cert) *gate {
	g := &gate{hooks: newHookSink(), log: &logTail{}, done: make(chan struct{})}
	hookSrv := httptest.NewServer(g.hooks)
	t.Cleanup(hookSrv.Close)

	cfgFile := filepath.Join(dir, "gate.yaml")
	if err := os.WriteFile(cfgFile, gateConfig(t, bin, cert, hookSrv.URL+"/disconnect"), 0o600); err != nil {
		t.Fatal(err)
	}
	logPath := os.Getenv("LWSGATE_INTEROP_LOG") // to keep the log; else it goes with the test's directory
	if logPath == "" {
		logPath = filepath.Join(dir, "lwsgate.log")
	}
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { logFile.Close() })
	g.cmd = exec.Command(bin, "-config", cfgFile)
	stderr, err := g.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	g.cmd.Stdout = logFile
	if err := g.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	addrs := make(chan map[string]string, 1)
	go g.readLog(stderr, logFile, addrs)
	go func() {
		g.err = g.cmd.Wait()
		close(g.done)
	}()
	t.Cleanup(func() { g.stop(t) })
	select {
	case g.addr = <-addrs:
	case <-g.done:
		t.Fatalf("lwsgate exited at start (%v):\n%s", g.err, g.log)
	case <-time.After(30 * time.Second):
		t.Fatalf("lwsgate not listening after 30 s:\n%s", g.log)
	}
	return g
}

// gateConfig is lwsgate's own default config with the matrix's
// listeners, the admin API on a port of its own and the disconnect hook.
func gateConfig(t *testing.T, bin string, cert *testutil.Cert, hookURL string) []byte {
	def, err := exec.Command(bin, "defaultconfig").Output()
	if err != nil {
		t.Fatalf("lwsgate defaultconfig: %v", err)
	}
	var cfg map[string]any
	if err := yaml.Unmarshal(def, &cfg); err != nil {
		t.Fatalf("lwsgate defaultconfig: %v", err)
	}
	base, err := yaml.Marshal(cfg["listeners"].([]any)[0])
	if err != nil {
		t.Fatal(err)
	}
	var ls []any
	for _, name := range listenerNames {
		var l map[string]any
		if err := yaml.Unmarshal(base, &l); err != nil {
			t.Fatal(err)
		}
		l["name"], l["addr"], l["demo"] = name, "127.0.0.1:0", false
		switch name {
		case lDeflate:
			l["compression"] = true
		case lTLS:
			l["tls"] = map[string]any{"cert": cert.CertFile, "key": cert.KeyFile}
		case lTLSDeflate:
			l["tls"] = map[string]any{"cert": cert.CertFile, "key": cert.KeyFile}
			l["compression"] = true
		case lKeepalive:
			l["keepalive"] = map[string]any{"ping_interval": "1s", "ping_timeout": "2s"}
		}
		ls = append(ls, l)
	}
	cfg["listeners"] = ls
	cfg["admin"].(map[string]any)["addr"] = "127.0.0.1:0"
	cfg["hooks"].(map[string]any)["disconnect"] = hookURL
	out, err := yaml.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

var (
	mainListening  = regexp.MustCompile(`lwsgate listening addr=(\S+) .*admin=(\S+)`)
	otherListening = regexp.MustCompile(`\] listening listener=(\S+) addr=(\S+)`)
	crashRE        = regexp.MustCompile(`panic:|SIGSEGV|fatal error:|AddressSanitizer|DATA RACE`)
)

// readLog copies lwsgate's log to w, keeps its tail and its crash lines,
// and sends the listeners' addresses once all are logged.
func (g *gate) readLog(r io.Reader, w io.Writer, addrs chan<- map[string]string) {
	got := map[string]string{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		fmt.Fprintln(w, line)
		g.log.add(line)
		if got == nil {
			continue
		}
		if m := mainListening.FindStringSubmatch(line); m != nil {
			got[listenerNames[0]], got["admin"] = m[1], m[2]
		} else if m := otherListening.FindStringSubmatch(line); m != nil {
			got[m[1]] = m[2]
		}
		if len(got) == len(listenerNames)+1 {
			addrs <- got
			got = nil
		}
	}
}

// stop sends SIGTERM (lwsgate drains, then exits 0) and fails the test on
// any other exit or a crash in the log.
func (g *gate) stop(t *testing.T) {
	select {
	case <-g.done:
	default:
		_ = g.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-g.done:
		case <-time.After(30 * time.Second):
			_ = g.cmd.Process.Kill()
			<-g.done
			t.Errorf("lwsgate did not stop within 30 s of SIGTERM:\n%s", g.log)
			return
		}
	}
	if g.err != nil {
		t.Errorf("lwsgate exited with %v:\n%s", g.err, g.log)
	}
	if ps := g.cmd.ProcessState; ps != nil {
		t.Logf("lwsgate's CPU time: %v user, %v system", ps.UserTime().Round(time.Millisecond), ps.SystemTime().Round(time.Millisecond))
	}
	if c := g.log.crashes(); c != "" {
		t.Errorf("lwsgate's log shows a crash:\n%s", c)
	}
}

// alive fails the test if lwsgate has exited.
func (g *gate) alive() error {
	select {
	case <-g.done:
		return fmt.Errorf("lwsgate exited (%v):\n%s", g.err, g.log)
	default:
		return nil
	}
}

// adminClose closes link id through the admin API.
func (g *gate) adminClose(ctx context.Context, id uint64, code int, reason string) error {
	body, _ := json.Marshal(map[string]any{"code": code, "reason": reason})
	req, err := http.NewRequestWithContext(ctx, "POST", fmt.Sprintf("http://%s/v1/api/links/%d/close", g.addr["admin"], id), bytes.NewReader(body))
	if err != nil {
		return err
	}
	r, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer r.Body.Close()
	b, _ := io.ReadAll(r.Body)
	if r.StatusCode/100 != 2 {
		return fmt.Errorf("admin close of link %d: %s: %s", id, r.Status, b)
	}
	return nil
}

// logTail keeps the last lines of lwsgate's log and every line that looks
// like a crash.
type logTail struct {
	mu    sync.Mutex
	lines []string
	crash []string
}

const tailLines = 60

func (l *logTail) add(line string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.lines) == 2*tailLines {
		l.lines = append(l.lines[:0], l.lines[tailLines:]...)
	}
	l.lines = append(l.lines, line)
	if crashRE.MatchString(line) || (len(l.crash) > 0 && len(l.crash) < 80) {
		l.crash = append(l.crash, line)
	}
}

func (l *logTail) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.lines[max(0, len(l.lines)-tailLines):], "\n")
}

func (l *logTail) crashes() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.crash, "\n")
}

// hookEvent is what lwsgate POSTs to hooks.disconnect (the fields the
// matrix checks).
type hookEvent struct {
	Event string `json:"event"`
	Link  struct {
		ID          uint64 `json:"id"`
		Listener    string `json:"listener"`
		BytesIn     int64  `json:"bytes_in"`
		BytesOut    int64  `json:"bytes_out"`
		MessagesIn  int64  `json:"messages_in"`
		MessagesOut int64  `json:"messages_out"`
	} `json:"link"`
	Code   int    `json:"code"`
	Reason string `json:"reason"`
}

// hookSink receives the disconnect hooks: what the server saw of each
// link's end.
//
// Concurrency: safe from any goroutine.
type hookSink struct {
	mu     sync.Mutex
	events map[uint64][]hookEvent
	wake   chan struct{} // closed and replaced on each event
}

func newHookSink() *hookSink {
	return &hookSink{events: map[uint64][]hookEvent{}, wake: make(chan struct{})}
}

func (h *hookSink) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var ev hookEvent
	if err := json.NewDecoder(r.Body).Decode(&ev); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	h.mu.Lock()
	h.events[ev.Link.ID] = append(h.events[ev.Link.ID], ev)
	close(h.wake)
	h.wake = make(chan struct{})
	h.mu.Unlock()
}

// disconnect waits for link id's disconnect hook.
func (h *hookSink) disconnect(ctx context.Context, id uint64) (hookEvent, error) {
	for {
		h.mu.Lock()
		evs, wake := h.events[id], h.wake
		h.mu.Unlock()
		if len(evs) > 1 {
			return evs[0], fmt.Errorf("link %d: %d disconnect hooks, want exactly one", id, len(evs))
		}
		if len(evs) == 1 {
			return evs[0], nil
		}
		select {
		case <-wake:
		case <-ctx.Done():
			return hookEvent{}, errors.New("no disconnect hook for the link")
		}
	}
}
