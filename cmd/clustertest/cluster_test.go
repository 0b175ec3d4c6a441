package clustertest

// Three bin/lwsgate processes, each embedding a NATS server routed to the
// others on 127.0.0.1, a lease of 1s and a grace period of 12s (a node
// paused or killed may lead the registry's RAFT group; the grace period
// must outlast the election of another leader, or every node fences), the
// disconnect hook pointed at this test. The scenarios run in order on
// the one cluster, keeping two of three nodes up at every step (the
// registry needs a majority):
//
//  1. a publish through one node's admin API reaches the members on all
//     three; an operation by id through another node reaches the link;
//  2. SIGSTOP n2 past the grace period: its ids answer 410, a survivor
//     fires one disconnect hook (1006) per link of n2; after SIGCONT, n2
//     finds itself reaped, closes its links with 1012, is unready, then
//     rejoins under a new incarnation: no second hook;
//  3. kill -9 n3: one disconnect hook per link of n3, none twice.

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
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

	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// node is one running bin/lwsgate.
//
// Concurrency: its fields are set by start; log is safe from any
// goroutine.
type node struct {
	name       string
	cmd        *exec.Cmd
	pub, admin string
	log        *lockedLog
	done       chan struct{}
}

type lockedLog struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedLog) add(s string) {
	l.mu.Lock()
	l.b.WriteString(s + "\n")
	l.mu.Unlock()
}

func (l *lockedLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

var listening = regexp.MustCompile(`lwsgate listening addr=(\S+) .*admin=(\S+)`)

// lwsgateBin is $LWSGATE_BIN (make passes bin/lwsgate), else one built
// from this checkout.
func lwsgateBin(t *testing.T) string {
	if b := os.Getenv("LWSGATE_BIN"); b != "" {
		return b
	}
	bin := filepath.Join(t.TempDir(), "lwsgate")
	out, err := exec.Command("go", "build", "-o", bin, "../lwsgate").CombinedOutput()
	require.NoError(t, err, "%s", out)
	return bin
}

// start runs bin with cfg and waits until it listens.
func start(t *testing.T, bin, dir, name, cfg string) *node {
	file := filepath.Join(dir, name+".yaml")
	require.NoError(t, os.WriteFile(file, []byte(cfg), 0o600))
	n := &node{name: name, cmd: exec.Command(bin, "-config", file), log: &lockedLog{}, done: make(chan struct{})}
	stderr, err := n.cmd.StderrPipe()
	require.NoError(t, err)
	require.NoError(t, n.cmd.Start())
	addrs := make(chan [2]string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			n.log.add(sc.Text())
			if m := listening.FindStringSubmatch(sc.Text()); m != nil {
				addrs <- [2]string{m[1], m[2]}
			}
		}
	}()
	go func() { _ = n.cmd.Wait(); close(n.done) }()
	t.Cleanup(func() {
		_ = n.cmd.Process.Signal(syscall.SIGCONT)
		_ = n.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-n.done:
		case <-time.After(15 * time.Second):
			_ = n.cmd.Process.Kill()
			<-n.done
		}
		if ps := n.cmd.ProcessState; ps != nil {
			t.Logf("%s: CPU %v user, %v system", name, ps.UserTime().Round(time.Millisecond), ps.SystemTime().Round(time.Millisecond))
		}
		if t.Failed() {
			t.Logf("%s's log:\n%s", name, n.log)
		}
	})
	select {
	case a := <-addrs:
		n.pub, n.admin = a[0], a[1]
	case <-n.done:
		t.Fatalf("%s exited at start:\n%s", name, n.log)
	case <-time.After(60 * time.Second):
		t.Fatalf("%s not listening after 60s:\n%s", name, n.log)
	}
	return n
}

// api calls n's admin API; out, if set, gets a 2xx answer's JSON.
func (n *node) api(t *testing.T, method, path, body string, out any) (int, http.Header) {
	t.Helper()
	req, err := http.NewRequest(method, "http://"+n.admin+path, strings.NewReader(body))
	require.NoError(t, err)
	c := http.Client{Timeout: 10 * time.Second}
	resp, err := c.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if out != nil && resp.StatusCode/100 == 2 {
		require.NoError(t, json.Unmarshal(b, out), "%s", b)
	}
	return resp.StatusCode, resp.Header
}

// client is a WebSocket link whose messages a goroutine reads.
type client struct {
	id   uint64
	msgs chan string
	code chan int
}

// join opens a link to n, asks its id and subscribes it to room (the
// default rules).
func join(t *testing.T, n *node) *client {
	t.Helper()
	ws, _, err := websocket.DefaultDialer.Dial("ws://"+n.pub+"/", nil)
	require.NoError(t, err)
	t.Cleanup(func() { ws.Close() })
	require.NoError(t, ws.WriteMessage(websocket.TextMessage, []byte(`{"action":"info"}`)))
	_ = ws.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, p, err := ws.ReadMessage()
	require.NoError(t, err)
	var info struct{ Link uint64 }
	require.NoError(t, json.Unmarshal(p, &info))
	require.NoError(t, ws.WriteMessage(websocket.TextMessage, []byte(`{"action":"subscribe","channel":"room"}`)))
	_, p, err = ws.ReadMessage()
	require.NoError(t, err)
	require.Contains(t, string(p), "subscribed")
	_ = ws.SetReadDeadline(time.Time{})
	c := &client{id: info.Link, msgs: make(chan string, 256), code: make(chan int, 1)}
	go func() {
		for {
			_, p, err := ws.ReadMessage()
			if err != nil {
				code := 1006
				if ce, ok := err.(*websocket.CloseError); ok {
					code = ce.Code
				}
				c.code <- code
				return
			}
			c.msgs <- string(p)
		}
	}()
	return c
}

// hookSink records disconnect hooks by link id.
//
// Concurrency: safe from any goroutine.
type hookSink struct {
	mu  sync.Mutex
	evs map[uint64][]hookEvent
}

type hookEvent struct {
	Code   int
	Reason string
	Link   struct{ ID uint64 }
}

func (h *hookSink) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var ev hookEvent
	if err := json.NewDecoder(r.Body).Decode(&ev); err != nil {
		http.Error(w, err.Error(), 400)
		return
	}
	h.mu.Lock()
	h.evs[ev.Link.ID] = append(h.evs[ev.Link.ID], ev)
	h.mu.Unlock()
	w.WriteHeader(204)
}

func (h *hookSink) total() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := 0
	for _, evs := range h.evs {
		n += len(evs)
	}
	return n
}

func (h *hookSink) of(id uint64) []hookEvent {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]hookEvent(nil), h.evs[id]...)
}

// metric reads one unlabelled metric of n's /metrics.
func (n *node) metric(t *testing.T, name string) float64 {
	t.Helper()
	resp, err := http.Get("http://" + n.admin + "/metrics")
	require.NoError(t, err)
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		var v float64
		if strings.HasPrefix(sc.Text(), name+" ") {
			_, err := fmt.Sscan(strings.TrimPrefix(sc.Text(), name+" "), &v)
			require.NoError(t, err)
			return v
		}
	}
	return 0
}

// mark is the hooks received, and those the survivors' queue runners
// had delivered, before a fault.
type mark struct{ received, delivered int }

func markHooks(t *testing.T, hooks *hookSink, survivors ...*node) mark {
	return mark{hooks.total(), delivered(t, survivors...)}
}

// delivered sums the nodes' lwsgate_cluster_hooks_delivered_total.
func delivered(t *testing.T, nodes ...*node) int {
	var n float64
	for _, s := range nodes {
		n += s.metric(t, "lwsgate_cluster_hooks_delivered_total")
	}
	return int(n)
}

// hooksOnce waits until each link of cs has had its disconnect hook and
// every hook the survivors delivered since m has arrived (the lost node
// delivers none), then checks each link had exactly one, 1006, naming
// the lost node.
func hooksOnce(t *testing.T, hooks *hookSink, m mark, cs []*client, lost string, survivors ...*node) {
	t.Helper()
	require.Eventually(t, func() bool {
		for _, c := range cs {
			if len(hooks.of(c.id)) == 0 {
				return false
			}
		}
		return hooks.total()-m.received == delivered(t, survivors...)-m.delivered
	}, 40*time.Second, 50*time.Millisecond, "the disconnect hooks of %s's links", lost)
	for _, c := range cs {
		evs := hooks.of(c.id)
		require.Len(t, evs, 1, "link %d of %s", c.id, lost)
		assert.Equal(t, 1006, evs[0].Code)
		assert.Equal(t, "gateway node lost: "+lost, evs[0].Reason)
	}
}

func TestClusterProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("three lwsgate processes for about 45s")
	}
	bin := lwsgateBin(t)
	dir := t.TempDir()
	hooks := &hookSink{evs: map[uint64][]hookEvent{}}
	hookSrv := httptest.NewServer(hooks)
	t.Cleanup(hookSrv.Close)

	// Route ports: chosen by the kernel, released for the nodes.
	var ports, routes []string
	for range 3 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		ports = append(ports, ln.Addr().String())
		routes = append(routes, "nats://"+ln.Addr().String())
		ln.Close()
	}
	nodes := make([]*node, 3)
	var wg sync.WaitGroup
	for i := range 3 {
		name := fmt.Sprintf("n%d", i+1)
		cfg := fmt.Sprintf(`
log: {trace: false}
listeners: [{addr: "127.0.0.1:0"}]
admin: {addr: "127.0.0.1:0"}
tokens: {secret: process-tier-secret}
hooks: {disconnect: "%s", retries: 0, timeout: 2s}
shutdown: {drain: 100ms, deadline: 2s}
cluster:
  engine: nats
  name: proc
  node: %s
  lease: 1s
  reap_after: 12s      # longer than a JetStream leader election (a paused leader)
  survey_timeout: 1s
  nats:
    embedded:
      cluster_listen: "%s"
      routes: [%s]
      store_dir: "%s"
      ping_interval: 250ms
      max_pings_out: 2
`, hookSrv.URL, name, ports[i], strings.Join(routes, ", "), filepath.Join(dir, name))
		wg.Add(1)
		go func() { defer wg.Done(); nodes[i] = start(t, bin, dir, name, cfg) }()
	}
	wg.Wait()
	for _, n := range nodes {
		require.NotNil(t, n, "a node did not start")
	}
	n1, n2, n3 := nodes[0], nodes[1], nodes[2]
	for _, n := range nodes {
		require.Eventually(t, func() bool {
			var ns []map[string]any
			code, h := n.api(t, "GET", "/v1/api/nodes", "", &ns)
			return code == 200 && h.Get("Lwsgate-Partial") == "" && len(ns) == 3
		}, 30*time.Second, 50*time.Millisecond, "%s to see three nodes", n.name)
	}

	byNode := map[*node][]*client{}
	for _, n := range nodes {
		for range 3 {
			byNode[n] = append(byNode[n], join(t, n))
		}
	}

	// 1. Publish through n1 reaches every node (probes until the
	// interest has crossed the routes); an operation by id through n3
	// reaches a link of n2.
	for _, n := range []*node{n2, n3} {
		c := byNode[n][0]
		require.Eventually(t, func() bool {
			code, _ := n1.api(t, "POST", "/v1/api/publish", `{"channel":"room","data":"probe"}`, nil)
			require.Equal(t, 200, code)
			select {
			case <-c.msgs:
				return true
			case <-time.After(50 * time.Millisecond):
				return false
			}
		}, 10*time.Second, time.Millisecond)
	}
	code, _ := n1.api(t, "POST", "/v1/api/publish", `{"channel":"room","data":"all"}`, nil)
	require.Equal(t, 200, code)
	for _, n := range nodes {
		for _, c := range byNode[n] {
			waitMsg(t, c, "all")
		}
	}
	target := byNode[n2][1]
	code, _ = n3.api(t, "POST", fmt.Sprintf("/v1/api/links/%d/send", target.id), "direct", nil)
	require.Equal(t, 200, code)
	waitMsg(t, target, "direct")

	// 2. SIGSTOP n2 past the grace period: the others reap it.
	m := markHooks(t, hooks, n1, n3)
	require.NoError(t, n2.cmd.Process.Signal(syscall.SIGSTOP))
	stopped := time.Now()
	hooksOnce(t, hooks, m, byNode[n2], "n2", n1, n3)
	t.Logf("n2's hooks fired %v after SIGSTOP", time.Since(stopped).Round(time.Millisecond))
	code, _ = n1.api(t, "GET", fmt.Sprintf("/v1/api/links/%d", target.id), "", nil)
	assert.Equal(t, 410, code, "a reaped node's link, asked elsewhere")
	// SIGCONT: n2 finds itself reaped, closes its links with 1012, and
	// rejoins (ready again); no hook fires twice.
	require.NoError(t, n2.cmd.Process.Signal(syscall.SIGCONT))
	for _, c := range byNode[n2] {
		select {
		case code := <-c.code:
			assert.Equal(t, 1012, code, "a fenced node closes its links with 1012")
		case <-time.After(20 * time.Second):
			t.Fatal("n2's links not closed after SIGCONT")
		}
	}
	require.Eventually(t, func() bool {
		code, _ := n2.api(t, "GET", "/readyz", "", nil)
		return code == 200
	}, 30*time.Second, 50*time.Millisecond, "n2 ready again")
	var n2nodes []map[string]any
	require.Eventually(t, func() bool {
		code, h := n1.api(t, "GET", "/v1/api/nodes", "", &n2nodes)
		return code == 200 && h.Get("Lwsgate-Partial") == "" && len(n2nodes) == 3
	}, 20*time.Second, 50*time.Millisecond, "n1 to see n2 back")
	after := join(t, n2)
	assert.NotEqual(t, target.id>>37, after.id>>37, "n2 rejoined under a new incarnation")
	// Every hook the nodes delivered has arrived (none on its way), and
	// n2's links still have one each.
	require.Eventually(t, func() bool { return delivered(t, nodes...) == hooks.total() }, 10*time.Second, 50*time.Millisecond)
	for _, c := range byNode[n2] {
		assert.Len(t, hooks.of(c.id), 1, "link %d: one hook, the reaper's", c.id)
	}

	// 3. kill -9 n3: one hook per link, by a survivor.
	m = markHooks(t, hooks, n1, n2)
	require.NoError(t, n3.cmd.Process.Kill())
	<-n3.done
	killed := time.Now()
	hooksOnce(t, hooks, m, byNode[n3], "n3", n1, n2)
	t.Logf("n3's hooks fired %v after kill -9", time.Since(killed).Round(time.Millisecond))
}

// waitMsg reads c's messages until want, failing the test after 10s.
func waitMsg(t *testing.T, c *client, want string) {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case m := <-c.msgs:
			if m == want {
				return
			}
		case <-deadline:
			t.Fatalf("link %d: no %q in 10s", c.id, want)
		}
	}
}
