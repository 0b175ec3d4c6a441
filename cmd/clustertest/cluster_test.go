package clustertest

// Three bin/lwsgate processes, each embedding a NATS server routed to the
// others on 127.0.0.1 through a TCP proxy per node (proxy_test.go: pass,
// black hole or reset, partitions without root), a lease of 1s and a
// grace period of 12s (a node paused, cut off or killed may lead the
// registry's RAFT group; the grace period must outlast the election of
// another leader, or every node fences), the disconnect hook pointed at
// this test. The scenarios run in order on the one cluster, keeping two
// of three nodes up at every step (the registry needs a majority):
//
//  1. a publish through one node's admin API reaches the members on all
//     three; an operation by id through another node reaches the link;
//  2. n1 cut off (reset) for 3s to 9s (until its lease renewals fail
//     and n2's listing misses it), within the grace period: nothing is
//     fenced or reaped, no hook fires, no link closes (looked at after
//     step 3, once they would have come);
//  3. SIGSTOP n2 past the grace period: its ids answer 410, a survivor
//     fires one disconnect hook (1006) per link of n2; after SIGCONT, n2
//     finds itself reaped, closes its links with 1012, is unready, then
//     rejoins under a new incarnation: no second hook;
//  4. n3 black-holed past the grace period: it closes its links (1012)
//     and is unready, then the survivors fire one hook per link, each
//     after the link closed; after the heal it rejoins;
//  5. kill -9 n3: one disconnect hook per link of n3, none twice;
//  6. n3 restarted on its store: a new incarnation, no id issued twice
//     in the whole run, its old ids answer 410.

import (
	"bufio"
	"context"
	"encoding/json"
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

	"github.com/gorilla/websocket"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lwsgate/lwsgate/internal/testutil"
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
	id     uint64
	msgs   chan string
	closed chan closeEv
}

// closeEv is how and when a link ended, seen by its client.
type closeEv struct {
	code int
	at   time.Time
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
	c := &client{id: info.Link, msgs: make(chan string, 256), closed: make(chan closeEv, 1)}
	go func() {
		for {
			_, p, err := ws.ReadMessage()
			if err != nil {
				code := 1006
				if ce, ok := err.(*websocket.CloseError); ok {
					code = ce.Code
				}
				c.closed <- closeEv{code, time.Now()}
				return
			}
			c.msgs <- string(p)
		}
	}()
	return c
}

// hookSink records the disconnect hooks it accepted, by link id. Each
// node's hooks come to the path of its name (/n1...). While stalled, a
// hook waits for a verdict (release): the first one held names its
// sender on first.
//
// Concurrency: safe from any goroutine.
type hookSink struct {
	mu    sync.Mutex
	evs   map[uint64][]hookEvent
	stall bool
	held  []heldHook
	first chan string
}

type hookEvent struct {
	Code   int
	Reason string
	Link   struct{ ID uint64 }
	at     time.Time // when it arrived
	from   string    // the node that sent it
}

// heldHook is a hook waiting for release's verdict: accepted or not.
type heldHook struct {
	from    string
	link    uint64
	verdict chan bool
}

// newHookSink serves a hookSink until the test ends; it returns the
// sink and its URL.
func newHookSink(t *testing.T) (*hookSink, string) {
	hooks := &hookSink{evs: map[uint64][]hookEvent{}}
	srv := httptest.NewServer(hooks)
	t.Cleanup(srv.Close)
	return hooks, srv.URL
}

func (h *hookSink) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var ev hookEvent
	if err := json.NewDecoder(r.Body).Decode(&ev); err != nil {
		http.Error(w, err.Error(), 400)
		return
	}
	ev.from = strings.TrimPrefix(r.URL.Path, "/")
	h.mu.Lock()
	if h.stall {
		hh := heldHook{from: ev.from, link: ev.Link.ID, verdict: make(chan bool, 1)}
		h.held = append(h.held, hh)
		select {
		case h.first <- ev.from:
		default:
		}
		h.mu.Unlock()
		select {
		case ok := <-hh.verdict:
			if !ok || r.Context().Err() != nil {
				http.Error(w, "refused", 503)
				return // not accepted: its sender died, or gave up on it
			}
		case <-r.Context().Done():
			return
		}
		h.mu.Lock()
	}
	ev.at = time.Now()
	h.evs[ev.Link.ID] = append(h.evs[ev.Link.ID], ev)
	h.mu.Unlock()
	w.WriteHeader(204)
}

// stallNext holds every hook from now until release, and returns where
// the first one's sender is named.
func (h *hookSink) stallNext() <-chan string {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.stall, h.first = true, make(chan string, 1)
	return h.first
}

// release ends a stall: the hooks held are accepted, but those of dead
// (whose sender was killed holding them), whose links it returns.
func (h *hookSink) release(dead string) []uint64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	var refused []uint64
	for _, hh := range h.held {
		hh.verdict <- hh.from != dead
		if hh.from == dead {
			refused = append(refused, hh.link)
		}
	}
	h.stall, h.held = false, nil
	return refused
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
	if !assert.Eventually(t, func() bool {
		for _, c := range cs {
			if len(hooks.of(c.id)) == 0 {
				return false
			}
		}
		return hooks.total()-m.received == delivered(t, survivors...)-m.delivered
	}, 40*time.Second, 50*time.Millisecond, "the disconnect hooks of %s's links", lost) {
		for _, c := range cs {
			t.Logf("link %d of %s: hooks %+v", c.id, lost, hooks.of(c.id))
		}
		t.Fatalf("hooks received since the fault %d, delivered by the survivors %d",
			hooks.total()-m.received, delivered(t, survivors...)-m.delivered)
	}
	for _, c := range cs {
		evs := hooks.of(c.id)
		require.Len(t, evs, 1, "link %d of %s", c.id, lost)
		assert.Equal(t, 1006, evs[0].Code)
		assert.Equal(t, "gateway node lost: "+lost, evs[0].Reason)
	}
}

// cluster is the three nodes of TestClusterProcesses and what starts
// them again.
type cluster struct {
	bin, dir string
	cfgs     []string // each node's config
	clients  []string // each node's NATS client address
	nodes    []*node
	net      *proxies
}

func (c *cluster) start(t *testing.T, i int) *node {
	n := start(t, c.bin, c.dir, fmt.Sprintf("n%d", i+1), c.cfgs[i])
	c.nodes[i] = n
	return n
}

// sees waits until n lists the three nodes, every one answering.
func sees(t *testing.T, n *node, within time.Duration) {
	t.Helper()
	require.Eventually(t, func() bool {
		var ns []map[string]any
		code, h := n.api(t, "GET", "/v1/api/nodes", "", &ns)
		return code == 200 && h.Get("Lwsgate-Partial") == "" && len(ns) == 3
	}, within, 50*time.Millisecond, "%s to see three nodes", n.name)
}

// lists reports whether n's listing of the nodes has name (answering).
func lists(t *testing.T, n *node, name string) bool {
	t.Helper()
	var ns []struct{ Name string }
	code, _ := n.api(t, "GET", "/v1/api/nodes", "", &ns)
	require.Equal(t, 200, code)
	for _, x := range ns {
		if x.Name == name {
			return true
		}
	}
	return false
}

// recorded waits until each link of cs has its durable record in the
// cluster's links bucket, read through node i's NATS client port. The
// nodes write a link's record in the background, retrying while the
// cluster cannot take it (a node just rejoined, its streams electing
// leaders); a link whose node dies before that has no hook (README), so
// the faults wait for it.
func (c *cluster) recorded(t *testing.T, i int, cs []*client) {
	t.Helper()
	nc, err := nats.Connect("nats://"+c.clients[i], nats.Timeout(5*time.Second))
	require.NoError(t, err)
	defer nc.Close()
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	const localBits = 37 // README: incarnation << 37 | wsi
	for _, cl := range cs {
		key := fmt.Sprintf("%d.%d", cl.id>>localBits, cl.id&(1<<localBits-1))
		require.Eventually(t, func() bool {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			kv, err := js.KeyValue(ctx, "lws_proc_links")
			if err != nil {
				return false
			}
			_, err = kv.Get(ctx, key)
			return err == nil
		}, 30*time.Second, 50*time.Millisecond, "the record of link %d (%s)", cl.id, key)
	}
}

// ready waits until n's /readyz answers want.
func ready(t *testing.T, n *node, want int, within time.Duration) {
	t.Helper()
	require.Eventually(t, func() bool {
		code, _ := n.api(t, "GET", "/readyz", "", nil)
		return code == want
	}, within, 50*time.Millisecond, "%s's /readyz to answer %d", n.name, want)
}

// open reports whether c's link is still open.
func (c *client) open() bool { return len(c.closed) == 0 }

// incOf is the incarnation of a link id (README: incarnation << 37 | wsi).
func incOf(id uint64) uint64 { return id >> 37 }

// startCluster starts three nodes whose disconnect hooks go to hookURL,
// with extra (YAML lines of the cluster section, indented by two
// spaces) added to each one's cluster section, and waits until each
// sees the three.
func startCluster(t *testing.T, hookURL, extra string) *cluster {
	t.Helper()
	began := time.Now()
	c := &cluster{bin: lwsgateBin(t), dir: t.TempDir(), nodes: make([]*node, 3), net: newProxies(t)}
	// Cluster and client ports: free below the ephemeral range
	// (testutil.FreePorts), released for the nodes (a node restarted
	// binds its own again). Each node advertises its proxy, and the seed
	// routes are the proxies.
	free := testutil.FreePorts(t, 6)
	ports := free[:3]
	c.clients = free[3:]
	var proxied, routes []string
	for i := range 3 {
		proxied = append(proxied, c.net.listen(fmt.Sprintf("n%d", i+1), ports[i]))
		routes = append(routes, "nats://"+proxied[i])
	}
	for i := range 3 {
		c.cfgs = append(c.cfgs, fmt.Sprintf(`
log: {trace: false}
listeners: [{addr: "127.0.0.1:0"}]
admin: {addr: "127.0.0.1:0"}
tokens: {secret: process-tier-secret}
hooks: {disconnect: "%s/n%d", retries: 0, timeout: 2s}
shutdown: {drain: 100ms, deadline: 2s}
cluster:
  engine: nats
  name: proc
  node: n%d
  lease: 1s
  reap_after: 12s      # longer than a JetStream leader election (a paused leader)
  survey_timeout: 1s
%s
  nats:
    embedded:
      cluster_listen: "%s"
      advertise: "%s"
      routes: [%s]
      client_listen: "%s"  # the test reads the link records there
      store_dir: "%s"
      ping_interval: 250ms
      max_pings_out: 2
`, hookURL, i+1, i+1, extra, ports[i], proxied[i], strings.Join(routes, ", "), c.clients[i], filepath.Join(c.dir, fmt.Sprintf("n%d", i+1))))
	}
	var wg sync.WaitGroup
	for i := range 3 {
		wg.Add(1)
		go func() { defer wg.Done(); c.start(t, i) }()
	}
	wg.Wait()
	for _, n := range c.nodes {
		require.NotNil(t, n, "a node did not start")
	}
	for _, n := range c.nodes {
		sees(t, n, 30*time.Second)
	}
	t.Logf("three nodes up after %v", time.Since(began).Round(time.Millisecond))
	return c
}

func TestClusterProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("three lwsgate processes for about a minute")
	}
	began := time.Now()
	hooks, hookURL := newHookSink(t)
	c := startCluster(t, hookURL, "")
	n1, n2, n3 := c.nodes[0], c.nodes[1], c.nodes[2]

	byNode := map[*node][]*client{}
	seen := map[uint64]bool{} // every link id issued
	for _, n := range c.nodes {
		for range 3 {
			cl := join(t, n)
			byNode[n] = append(byNode[n], cl)
			require.False(t, seen[cl.id], "id %d issued twice", cl.id)
			seen[cl.id] = true
		}
	}

	// 1. Publish through n1 reaches every node (probes until the
	// interest has crossed the routes); an operation by id through n3
	// reaches a link of n2.
	for _, n := range []*node{n2, n3} {
		cl := byNode[n][0]
		require.Eventually(t, func() bool {
			code, _ := n1.api(t, "POST", "/v1/api/publish", `{"channel":"room","data":"probe"}`, nil)
			require.Equal(t, 200, code)
			select {
			case <-cl.msgs:
				return true
			case <-time.After(50 * time.Millisecond):
				return false
			}
		}, 10*time.Second, time.Millisecond)
	}
	code, _ := n1.api(t, "POST", "/v1/api/publish", `{"channel":"room","data":"all"}`, nil)
	require.Equal(t, 200, code)
	for _, n := range c.nodes {
		for _, cl := range byNode[n] {
			waitMsg(t, cl, "all")
		}
	}
	target := byNode[n2][1]
	code, _ = n3.api(t, "POST", fmt.Sprintf("/v1/api/links/%d/send", target.id), "direct", nil)
	require.Equal(t, 200, code)
	waitMsg(t, target, "direct")

	// 2. n1 cut off (its routes reset, new ones refused) for at least 3s
	// and at most 9s, within the grace period: its renewals fail and n2
	// stops listing it, then both recover.
	// What must not follow (a fence, a reap, a hook, a closed link) is
	// looked for after step 3, when it would have come.
	n1inc := n1.metric(t, "lwsgate_cluster_incarnation")
	failures := n1.metric(t, "lwsgate_cluster_lease_failures_total")
	cutAt := time.Now()
	c.net.set("n1", reset)
	require.Eventually(t, func() bool { return n1.metric(t, "lwsgate_cluster_lease_failures_total") > failures },
		8*time.Second, 50*time.Millisecond, "n1's renewals to fail while cut off")
	require.Eventually(t, func() bool { return !lists(t, n2, "n1") }, 8*time.Second, 50*time.Millisecond,
		"n2's listing of the nodes to miss n1 while it is cut off")
	require.Less(t, time.Since(cutAt), 9*time.Second, "the short partition outlasted its bound")
	time.Sleep(time.Until(cutAt.Add(3 * time.Second)))
	c.net.set("n1", pass)
	renewals := n1.metric(t, "lwsgate_cluster_lease_renewals_total")
	require.Eventually(t, func() bool { return n1.metric(t, "lwsgate_cluster_lease_renewals_total") > renewals },
		10*time.Second, 50*time.Millisecond, "n1 to renew its lease after the heal")
	for _, n := range c.nodes {
		sees(t, n, 20*time.Second)
	}
	t.Logf("short partition of n1 healed after %v", time.Since(cutAt).Round(time.Millisecond))

	// 3. SIGSTOP n2 past the grace period: the others reap it.
	c.recorded(t, 0, byNode[n2])
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
	closedWith(t, byNode[n2], 1012, 20*time.Second, "n2")
	ready(t, n2, 200, 30*time.Second)
	for _, n := range c.nodes {
		sees(t, n, 20*time.Second)
	}
	after := join(t, n2)
	seen[after.id] = true
	assert.NotEqual(t, incOf(target.id), incOf(after.id), "n2 rejoined under a new incarnation")
	// Every hook the nodes delivered has arrived (none on its way), and
	// n2's links still have one each.
	require.Eventually(t, func() bool { return delivered(t, c.nodes...) == hooks.total() }, 10*time.Second, 50*time.Millisecond)
	for _, cl := range byNode[n2] {
		assert.Len(t, hooks.of(cl.id), 1, "link %d: one hook, the reaper's", cl.id)
	}

	// 2, continued: by now a fence or a reap of n1 would have come (the
	// grace period, the lease and its one-second tick, and 2s more).
	time.Sleep(time.Until(cutAt.Add(12*time.Second + 4*time.Second)))
	assert.Equal(t, 0.0, n1.metric(t, "lwsgate_cluster_fenced"), "n1 fenced after a short partition")
	assert.Equal(t, n1inc, n1.metric(t, "lwsgate_cluster_incarnation"), "n1's incarnation after a short partition")
	reaped := 0.0
	for _, n := range c.nodes {
		reaped += n.metric(t, "lwsgate_cluster_reaped_nodes_total")
	}
	assert.Equal(t, 1.0, reaped, "nodes reaped: n2 alone, never n1")
	for _, cl := range byNode[n1] {
		assert.True(t, cl.open(), "link %d of n1 closed by a short partition", cl.id)
		assert.Empty(t, hooks.of(cl.id), "link %d of n1: a hook after a short partition", cl.id)
	}
	code, _ = n3.api(t, "POST", "/v1/api/publish", `{"channel":"room","data":"still"}`, nil)
	require.Equal(t, 200, code)
	for _, cl := range byNode[n1] {
		waitMsg(t, cl, "still")
	}

	// 4. n3 black-holed past the grace period: it closes its own links
	// with 1012 and goes unready; then the survivors fire one hook (1006)
	// per link, each after its link closed; after the heal n3 rejoins.
	c.recorded(t, 0, byNode[n3])
	renewals = n3.metric(t, "lwsgate_cluster_lease_renewals_total")
	require.Eventually(t, func() bool { return n3.metric(t, "lwsgate_cluster_lease_renewals_total") > renewals },
		20*time.Second, 50*time.Millisecond, "n3 to renew its lease before the cut")
	m = markHooks(t, hooks, n1, n2)
	c.net.set("n3", blackHole)
	cut := time.Now()
	closedWith(t, byNode[n3], 1012, 40*time.Second, "n3")
	t.Logf("n3 closed its links %v after the cut", time.Since(cut).Round(time.Millisecond))
	ready(t, n3, 503, 10*time.Second)
	hooksOnce(t, hooks, m, byNode[n3], "n3", n1, n2)
	for _, cl := range byNode[n3] {
		ev := <-cl.closed
		cl.closed <- ev
		assert.True(t, ev.at.Before(hooks.of(cl.id)[0].at), "link %d: its hook came before it closed", cl.id)
	}
	t.Logf("n3's hooks fired %v after the cut", time.Since(cut).Round(time.Millisecond))
	c.net.set("n3", pass)
	ready(t, n3, 200, 30*time.Second)
	for _, n := range c.nodes {
		sees(t, n, 20*time.Second)
	}
	require.Eventually(t, func() bool { return delivered(t, c.nodes...) == hooks.total() }, 10*time.Second, 50*time.Millisecond)
	for _, cl := range byNode[n3] {
		assert.Len(t, hooks.of(cl.id), 1, "link %d: one hook, the reaper's", cl.id)
	}
	var fresh []*client
	for range 3 {
		cl := join(t, n3)
		require.False(t, seen[cl.id], "id %d issued twice", cl.id)
		seen[cl.id] = true
		fresh = append(fresh, cl)
	}
	assert.NotEqual(t, incOf(byNode[n3][0].id), incOf(fresh[0].id), "n3 rejoined under a new incarnation")

	// 5. kill -9 n3: one hook per link, by a survivor.
	c.recorded(t, 0, fresh)
	m = markHooks(t, hooks, n1, n2)
	require.NoError(t, n3.cmd.Process.Kill())
	<-n3.done
	killed := time.Now()
	hooksOnce(t, hooks, m, fresh, "n3", n1, n2)
	t.Logf("n3's hooks fired %v after kill -9", time.Since(killed).Round(time.Millisecond))

	// 6. n3 started again on its store: a new incarnation, ids never
	// issued before, its old ids gone.
	n3 = c.start(t, 2)
	for _, n := range c.nodes {
		sees(t, n, 30*time.Second)
	}
	for range 3 {
		cl := join(t, n3)
		require.False(t, seen[cl.id], "id %d issued twice (after a restart)", cl.id)
		require.Less(t, cl.id, uint64(1)<<53)
		seen[cl.id] = true
		assert.Greater(t, incOf(cl.id), incOf(fresh[0].id), "the restarted node's incarnation")
	}
	code, _ = n1.api(t, "GET", fmt.Sprintf("/v1/api/links/%d", fresh[0].id), "", nil)
	assert.Equal(t, 410, code, "a killed node's link, after its node restarted")
	t.Logf("%d ids, all distinct; process tier %v", len(seen), time.Since(began).Round(time.Millisecond))
}

// closedWith waits until every link of cs has closed, each with code.
func closedWith(t *testing.T, cs []*client, code int, within time.Duration, who string) {
	t.Helper()
	deadline := time.After(within)
	for _, cl := range cs {
		select {
		case ev := <-cl.closed:
			cl.closed <- ev // kept for later looks
			assert.Equal(t, code, ev.code, "link %d of %s", cl.id, who)
		case <-deadline:
			t.Fatalf("%s's links not closed in %v", who, within)
		}
	}
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
