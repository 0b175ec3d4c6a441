package cluster

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// startExternal runs a standalone nats-server (JetStream on) in this
// process, as an external NATS the engines reach by URL.
func startExternal(t *testing.T) *server.Server {
	t.Helper()
	ns, err := server.NewServer(&server.Options{
		ServerName: "external", Host: "127.0.0.1", Port: server.RANDOM_PORT,
		JetStream: true, StoreDir: t.TempDir(), NoSigs: true, DisableJetStreamBanner: true,
		JetStreamMaxMemory: 64 << 20, JetStreamMaxStore: 256 << 20,
	})
	if err != nil {
		t.Fatal(err)
	}
	ns.SetLoggerV2(serverLog{testLogger(t, "external")}, false, false, false)
	go ns.Start()
	if !ns.ReadyForConnections(10 * time.Second) {
		t.Fatal("external server not ready")
	}
	t.Cleanup(func() {
		ns.Shutdown()
		ns.WaitForShutdown()
	})
	return ns
}

func externalNode(t *testing.T, ns *server.Server, name string) *tnode {
	t.Helper()
	n := &tnode{name: name, cfg: Config{
		Engine: EngineNATS, Name: "x", Node: name,
		Lease: testLease, ReapAfter: testGrace, SurveyTimeout: 500 * time.Millisecond,
		CallTimeout: time.Second, Linger: -1,
		NATS: NATSConfig{URL: ns.ClientURL()},
	}}
	n.rec = newRecorder()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	e, err := Open(ctx, n.cfg, n.rec.hooks(t, name))
	if err != nil {
		t.Fatalf("open %s: %v", name, err)
	}
	n.eng = e.(*natsEngine)
	t.Cleanup(n.eng.kill)
	return n
}

// The same engine against an external NATS (a standalone server the
// nodes connect to by URL): channels, calls, surveys, a name clash
// refused, an abrupt death reaped once, a restart.
func TestExternalNATS(t *testing.T) {
	t.Parallel()
	ns := startExternal(t)
	a, b, c := externalNode(t, ns, "a"), externalNode(t, ns, "b"), externalNode(t, ns, "c")
	serveWhoami(a, b, c)
	all := []*tnode{a, b, c}
	for _, n := range all {
		n.rec.waitFor(t, 5*time.Second, n.name+" to see three nodes", func(r *recorder) bool {
			ups := 0
			for _, ev := range r.events {
				if ev.Kind == NodeUp {
					ups++
				}
			}
			return ups == 3
		})
	}
	ctx := stepCtx(t)

	// Only b subscribes to the channel: the server holds that one
	// subscription, b's.
	if err := b.eng.Interest("news", true); err != nil {
		t.Fatal(err)
	}
	if err := b.eng.nc.Flush(); err != nil {
		t.Fatal(err)
	}
	bcid, _ := b.eng.nc.GetClientID()
	sz, err := ns.Subsz(&server.SubszOptions{Subscriptions: true, Test: "lws.x.ch.news"})
	if err != nil || len(sz.Subs) != 1 || sz.Subs[0].Cid != bcid {
		t.Fatalf("subscriptions on the channel: %+v, %v; want b's (cid %d) alone", sz.Subs, err, bcid)
	}
	for _, from := range []*tnode{a, c} {
		if _, err := from.eng.Publish(ctx, "news", Message{Data: []byte(from.name)}); err != nil {
			t.Fatal(err)
		}
	}
	b.rec.waitFor(t, 5*time.Second, "b's two deliveries", func(r *recorder) bool { return len(r.deliveries) == 2 })
	if len(a.rec.delivered("news"))+len(c.rec.delivered("news")) != 0 {
		t.Fatal("a node without interest got a delivery")
	}
	// Linger -1: the last member out unsubscribes at once.
	if err := b.eng.Interest("news", false); err != nil {
		t.Fatal(err)
	}
	_ = b.eng.nc.Flush()
	if sz, _ := ns.Subsz(&server.SubszOptions{Subscriptions: true, Test: "lws.x.ch.news"}); len(sz.Subs) != 0 {
		t.Fatalf("still subscribed: %+v", sz.Subs)
	}

	if out, err := a.eng.Call(ctx, c.eng.Incarnation(), "whoami", []byte("q")); err != nil || string(out) != "c:q" {
		t.Fatalf("call: %q, %v", out, err)
	}
	if res, err := b.eng.Survey(ctx, "whoami", nil); err != nil || res.Partial() || len(res.Replies) != 3 {
		t.Fatalf("survey: %+v, %v", res, err)
	}

	// A second live node named "a" is refused.
	ctx2, cancel := context.WithTimeout(ctx, 10*time.Second)
	_, err = Open(ctx2, a.cfg, Hooks{Logger: testLogger(t, "a-twin")})
	cancel()
	var inUse *ErrNameInUse
	if !errors.As(err, &inUse) || inUse.Inc != a.eng.Incarnation() {
		t.Fatalf("a second node named a: %v, want ErrNameInUse naming incarnation %d", err, a.eng.Incarnation())
	}

	// c dies without goodbye (its connection simply goes).
	incC := c.eng.Incarnation()
	ids := openLinks(t, c, 1)
	c.eng.kill()
	short, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	_, err = a.eng.Call(short, incC, "whoami", nil)
	cancel()
	callErr(t, err, ErrUnreachable)
	for _, n := range []*tnode{a, b} {
		n.rec.waitFor(t, 5*time.Second, n.name+" to see c down", func(r *recorder) bool { return r.has(NodeDown, incC) })
	}
	_, err = a.eng.Call(ctx, incC, "whoami", nil)
	callErr(t, err, ErrGone)
	if ev, _ := theReap(t, 10*time.Second, incC, a, b); len(ev.Links) != 1 || ev.Links[0].ID != ids[0] || string(ev.Links[0].Data) != "link 1" {
		t.Fatalf("reap: %+v", ev)
	}

	// c comes back: a new incarnation, its name free again.
	c2 := externalNode(t, ns, "c")
	if c2.eng.Incarnation() <= incC {
		t.Fatalf("restarted c: incarnation %d, after %d", c2.eng.Incarnation(), incC)
	}
}

// Link records survive lost acknowledgements: a LinkOpened retried after
// its write succeeded, a LinkClosed retried after its settlement
// succeeded, answer as the first attempt would have.
func TestLinkRecordRetries(t *testing.T) {
	t.Parallel()
	ns := startExternal(t)
	a := externalNode(t, ns, "a")
	ctx := stepCtx(t)
	id, _ := LinkID(a.eng.Incarnation(), 5)
	if err := a.eng.LinkOpened(ctx, id, []byte("five")); err != nil {
		t.Fatal(err)
	}
	if err := a.eng.LinkOpened(ctx, id, []byte("five")); err != nil {
		t.Fatalf("a retried LinkOpened: %v", err)
	}
	if err := a.eng.LinkOpened(ctx, id, []byte("other")); err == nil {
		t.Fatal("another record under a recorded id was accepted")
	}
	// The acknowledgement of LinkOpened lost: the engine never learnt
	// the revision.
	a.eng.rec.mu.Lock()
	delete(a.eng.rec.revs, id)
	a.eng.rec.mu.Unlock()
	if ok, err := a.eng.LinkClosed(ctx, id, Disconnect{}); !ok || err != nil {
		t.Fatalf("closing a record whose revision was lost: %v, %v", ok, err)
	}
	// The acknowledgement of the settlement lost: the retry finds its own
	// tombstone.
	if ok, err := a.eng.LinkClosed(ctx, id, Disconnect{}); !ok || err != nil {
		t.Fatalf("a retried LinkClosed: %v, %v", ok, err)
	}
	// Settled by someone else: not ours.
	id2, _ := LinkID(a.eng.Incarnation(), 6)
	if err := a.eng.LinkOpened(ctx, id2, nil); err != nil {
		t.Fatal(err)
	}
	a.eng.rec.mu.Lock()
	rev := a.eng.rec.revs[id2]
	a.eng.rec.mu.Unlock()
	if won, err := a.eng.settle(ctx, recordKey(a.eng.Incarnation(), 6), rev, "reap.99"); !won || err != nil {
		t.Fatalf("a reaper's settlement: %v, %v", won, err)
	}
	if ok, err := a.eng.LinkClosed(ctx, id2, Disconnect{}); ok || err != nil {
		t.Fatalf("closing a reaped record: %v, %v; want false", ok, err)
	}
}
