package cluster

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// Test timings: a lease of 1s renewed every 200ms, a grace period of
// 3s, routes pinged every 250ms (a silent peer is dropped after about
// 0.5s).
const (
	testLease = time.Second
	testGrace = 3 * time.Second
)

// recorder keeps what the hooks of one engine received and wakes
// waiters on every change.
//
// Concurrency: safe from any goroutine.
type recorder struct {
	onDeliver  func(Delivery) // when set, deliveries go there, unrecorded
	mu         sync.Mutex
	deliveries []Delivery
	events     []Event
	eventAt    []time.Time
	changed    chan struct{}
}

func newRecorder() *recorder { return &recorder{changed: make(chan struct{})} }

func (r *recorder) notifyLocked() {
	close(r.changed)
	r.changed = make(chan struct{})
}

func (r *recorder) hooks(t testing.TB, node string) Hooks {
	return Hooks{
		Deliver: func(d Delivery) {
			if r.onDeliver != nil {
				r.onDeliver(d)
				return
			}
			r.mu.Lock()
			r.deliveries = append(r.deliveries, d)
			r.notifyLocked()
			r.mu.Unlock()
		},
		Event: func(ev Event) {
			r.mu.Lock()
			r.events = append(r.events, ev)
			r.eventAt = append(r.eventAt, time.Now())
			r.notifyLocked()
			r.mu.Unlock()
		},
		Logger: testLogger(t, node),
	}
}

// waitFor waits until cond (called with r locked) holds, woken by every
// delivery and event; it fails the test after d.
func (r *recorder) waitFor(t testing.TB, d time.Duration, what string, cond func(r *recorder) bool) {
	t.Helper()
	if !awaitChange(d, &r.mu, &r.changed, func() bool { return cond(r) }) {
		t.Fatalf("after %v, still waiting for %s", d, what)
	}
}

// awaitChange waits until cond, called with mu held, holds: it checks
// again each time *changed (guarded by mu) is closed. false: d passed
// first.
func awaitChange(d time.Duration, mu *sync.Mutex, changed *chan struct{}, cond func() bool) bool {
	deadline := time.NewTimer(d)
	defer deadline.Stop()
	for {
		mu.Lock()
		ok, ch := cond(), *changed
		mu.Unlock()
		if ok {
			return true
		}
		select {
		case <-ch:
		case <-deadline.C:
			return false
		}
	}
}

// eventsOf returns the events of kind, and when each came.
func (r *recorder) eventsOf(kind EventKind) (evs []Event, at []time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for i, ev := range r.events {
		if ev.Kind == kind {
			evs = append(evs, ev)
			at = append(at, r.eventAt[i])
		}
	}
	return evs, at
}

func (r *recorder) has(kind EventKind, inc Incarnation) bool {
	for _, ev := range r.events {
		if ev.Kind == kind && ev.Node.Inc == inc {
			return true
		}
	}
	return false
}

func (r *recorder) delivered(channel string) []Delivery {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []Delivery
	for _, d := range r.deliveries {
		if d.Channel == channel {
			out = append(out, d)
		}
	}
	return out
}

// testLogger logs through t until the test's cleanup ends.
func testLogger(t testing.TB, node string) *slog.Logger {
	w := &testWriter{t: t}
	t.Cleanup(func() {
		w.mu.Lock()
		w.done = true
		w.mu.Unlock()
	})
	level := slog.LevelInfo
	if os.Getenv("LWSGATE_CLUSTER_DEBUG") != "" {
		level = slog.LevelDebug
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: level})).With("test_node", node)
}

// testWriter writes log lines to t. Concurrency: safe from any goroutine.
type testWriter struct {
	t    testing.TB
	mu   sync.Mutex
	done bool
}

func (w *testWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.done {
		w.t.Logf("%s", p)
	}
	return len(p), nil
}

// tnode is one embedded node of a test cluster.
// Concurrency: the test goroutine's (its engine is safe from any).
type tnode struct {
	name    string
	cfg     Config
	gate    *gate
	rec     *recorder
	eng     *natsEngine
	deliver func(Delivery) // when set, takes the deliveries instead of rec
}

// tcluster is n embedded nodes forming one NATS and JetStream cluster
// through a fabric. Concurrency: the test goroutine's.
type tcluster struct {
	t     testing.TB
	f     *fabric
	nodes []*tnode
}

// startCluster starts n nodes (n1, n2, …) with a grace period of grace;
// each option may adjust a node before it opens.
func startCluster(t testing.TB, n int, grace time.Duration, options ...func(*tnode)) *tcluster {
	t.Helper()
	c := &tcluster{t: t, f: newFabric(t)}
	var routes []string
	for i := range n {
		name := fmt.Sprintf("n%d", i+1)
		g := c.f.gate(name)
		routes = append(routes, "nats://"+g.addr())
		c.nodes = append(c.nodes, &tnode{name: name, gate: g})
	}
	base := t.TempDir()
	for _, nd := range c.nodes {
		nd.cfg = Config{
			Engine:        EngineNATS,
			Name:          "t",
			Node:          nd.name,
			Lease:         testLease,
			ReapAfter:     grace,
			SurveyTimeout: 500 * time.Millisecond,
			CallTimeout:   time.Second,
			Linger:        100 * time.Millisecond,
			NATS: NATSConfig{Embedded: EmbeddedConfig{
				ClusterListen: "127.0.0.1:0",
				Advertise:     nd.gate.addr(),
				Routes:        routes,
				StoreDir:      filepath.Join(base, nd.name),
				MaxMemory:     64 << 20,
				MaxStore:      256 << 20,
				PingInterval:  250 * time.Millisecond,
				MaxPingsOut:   2,
			}},
		}
		nd.cfg.testServer = nd.gate.attach
		for _, o := range options {
			o(nd)
		}
	}
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i, nd := range c.nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = c.open(nd)
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("open %s: %v", c.nodes[i].name, err)
		}
	}
	t.Cleanup(func() {
		for _, nd := range c.nodes {
			if nd.eng != nil {
				nd.eng.kill()
			}
		}
	})
	// Every node sees every other.
	for _, nd := range c.nodes {
		nd.rec.waitFor(t, 10*time.Second, nd.name+" to see every node", func(r *recorder) bool {
			ups := 0
			for _, ev := range r.events {
				if ev.Kind == NodeUp {
					ups++
				}
			}
			return ups >= n
		})
	}
	c.waitConnected()
	return c
}

// waitConnected waits until every node answers every other's ping:
// route interest travels apart from the registry, so a node can be seen
// up before its subscriptions reach every server.
func (c *tcluster) waitConnected() {
	c.t.Helper()
	eventually(c.t, 10*time.Second, "every node to reach every other", func() bool {
		for _, a := range c.nodes {
			for _, b := range c.nodes {
				if a != b && !a.eng.answers(context.Background(), b.eng.Incarnation()) {
					return false
				}
			}
		}
		return true
	})
}

// open (re)starts nd's engine with a fresh recorder.
func (c *tcluster) open(nd *tnode) error {
	nd.rec = newRecorder()
	nd.rec.onDeliver = nd.deliver
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	start := time.Now()
	e, err := Open(ctx, nd.cfg, nd.rec.hooks(c.t, nd.name))
	if err != nil {
		return err
	}
	nd.eng = e.(*natsEngine)
	c.t.Logf("%s: incarnation %d, open in %v", nd.name, nd.eng.Incarnation(), time.Since(start).Round(time.Millisecond))
	return nil
}

func (c *tcluster) node(name string) *tnode {
	for _, nd := range c.nodes {
		if nd.name == name {
			return nd
		}
	}
	c.t.Fatalf("no node %s", name)
	return nil
}

func (c *tcluster) byInc(inc Incarnation) *tnode {
	for _, nd := range c.nodes {
		if nd.eng != nil && nd.eng.Incarnation() == inc {
			return nd
		}
	}
	return nil
}

// others returns the two nodes of a three-node cluster that are not n.
func (c *tcluster) others(n *tnode) (*tnode, *tnode) {
	var out []*tnode
	for _, nd := range c.nodes {
		if nd != n {
			out = append(out, nd)
		}
	}
	return out[0], out[1]
}

// registryLeader returns the node whose server leads the registry.
func (c *tcluster) registryLeader() *tnode {
	c.t.Helper()
	var pick *tnode
	eventually(c.t, 10*time.Second, "a registry leader", func() bool {
		for _, nd := range c.nodes {
			if nd.eng.srv.ns.JetStreamIsStreamLeader("$G", "KV_lws_t") {
				pick = nd
				return true
			}
		}
		return false
	})
	return pick
}

// leads returns the step-down requests of the JetStream groups nd leads
// but the meta group: the registry, the link records, the hook queue
// and its consumer, the history streams.
func (c *tcluster) leads(nd *tnode) (subjects []string) {
	streams := []string{"KV_lws_t", "KV_lws_t_links", nd.eng.hq.stream}
	for _, hs := range nd.eng.hist.all() {
		streams = append(streams, hs.name)
	}
	for _, s := range streams {
		if nd.eng.srv.ns.JetStreamIsStreamLeader("$G", s) {
			subjects = append(subjects, "$JS.API.STREAM.LEADER.STEPDOWN."+s)
		}
	}
	if nd.eng.srv.ns.JetStreamIsConsumerLeader("$G", nd.eng.hq.stream, hookConsumer) {
		subjects = append(subjects, "$JS.API.CONSUMER.LEADER.STEPDOWN."+nd.eng.hq.stream+"."+hookConsumer)
	}
	return subjects
}

// waitCurrent waits until nd's server (just restarted, say) has caught
// up with the meta group and every stream it replicates: until then a
// group it belongs to may have no quorum without it.
func (c *tcluster) waitCurrent(nd *tnode) {
	c.t.Helper()
	streams := []string{"KV_lws_t", "KV_lws_t_links", nd.eng.hq.stream}
	for _, hs := range nd.eng.hist.all() {
		streams = append(streams, hs.name)
	}
	eventually(c.t, 20*time.Second, nd.name+" to be current", func() bool {
		if !nd.eng.srv.ns.JetStreamIsCurrent() {
			return false
		}
		for _, s := range streams {
			if !nd.eng.srv.ns.JetStreamIsStreamCurrent("$G", s) {
				return false
			}
		}
		return true
	})
}

// relinquish makes nd lead no stream or consumer, as a node about to
// stop would: killed as it is, a leader costs the survivors an election
// (4 to 9s), longer than the tests' grace period. (The meta group only
// serves the JetStream API, not reads and writes.)
func (c *tcluster) relinquish(nd *tnode) {
	c.t.Helper()
	eventually(c.t, 20*time.Second, nd.name+" to lead nothing", func() bool {
		subjects := c.leads(nd)
		for _, subj := range subjects {
			_, _ = nd.eng.nc.Request(subj, nil, time.Second)
		}
		return len(subjects) == 0
	})
}

// follower returns a node that leads no JetStream group (the meta group,
// the registry, the link records, the hook queue and its consumer, the
// history streams), asking leaders to step down if every node leads
// something.
func (c *tcluster) follower() *tnode {
	c.t.Helper()
	leads := c.leads
	var pick *tnode
	eventually(c.t, 20*time.Second, "a node that leads nothing", func() bool {
		for _, nd := range c.nodes {
			if !nd.eng.srv.ns.JetStreamIsLeader() && len(leads(nd)) == 0 {
				pick = nd
				return true
			}
		}
		for _, nd := range c.nodes {
			if nd.eng.srv.ns.JetStreamIsLeader() {
				continue
			}
			for _, subj := range leads(nd) {
				_, _ = nd.eng.nc.Request(subj, nil, time.Second)
			}
			return false
		}
		return false
	})
	c.t.Logf("%s leads no JetStream group", pick.name)
	return pick
}

// theReap waits, up to d, until a survivor reaped and none has a reap
// waiting or running (so no other can ever come), checks that there was
// exactly one, of incarnation inc, and returns it and when it came.
func theReap(t testing.TB, d time.Duration, inc Incarnation, survivors ...*tnode) (Event, time.Time) {
	t.Helper()
	all := func() (evs []Event, at []time.Time) {
		for _, n := range survivors {
			e, a := n.rec.eventsOf(Reap)
			evs, at = append(evs, e...), append(at, a...)
		}
		return evs, at
	}
	eventually(t, d, "a reap, and no other pending", func() bool {
		if evs, _ := all(); len(evs) == 0 {
			return false
		}
		for _, n := range survivors {
			if n.eng.pendingReaps() != 0 {
				return false
			}
		}
		return true
	})
	evs, at := all()
	if len(evs) != 1 || evs[0].Node.Inc != inc {
		t.Fatalf("reaps %+v, want exactly one, of incarnation %d", evs, inc)
	}
	return evs[0], at[0]
}

// openLinks records links 1 to count of n's incarnation, with data
// "link <local>", and returns their ids.
func openLinks(t testing.TB, n *tnode, count int) []uint64 {
	t.Helper()
	ctx := stepCtx(t)
	var ids []uint64
	for local := uint64(1); local <= uint64(count); local++ {
		id, _ := LinkID(n.eng.Incarnation(), local)
		if err := n.eng.LinkOpened(ctx, id, []byte(fmt.Sprint("link ", local))); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	return ids
}

// ctx is a context bounded for one step of a test.
func stepCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}
