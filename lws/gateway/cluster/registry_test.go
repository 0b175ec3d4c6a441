package cluster

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"
)

func callErr(t *testing.T, err error, want error) {
	t.Helper()
	var ce *CallError
	if !errors.As(err, &ce) || !errors.Is(err, want) {
		t.Fatalf("got %v, want a *CallError wrapping %v", err, want)
	}
}

func serveWhoami(nodes ...*tnode) {
	for _, n := range nodes {
		name := n.name
		n.eng.Handle("whoami", func(_ context.Context, body []byte) ([]byte, error) {
			return []byte(name + ":" + string(body)), nil
		})
	}
}

// Calls and surveys between live nodes, and their errors.
func TestCallAndSurvey(t *testing.T) {
	t.Parallel()
	c := startCluster(t, 3, testGrace)
	n1, n2, n3 := c.nodes[0], c.nodes[1], c.nodes[2]
	serveWhoami(n1, n2, n3)
	release := make(chan struct{})
	defer close(release)
	n2.eng.Handle("fail", func(context.Context, []byte) ([]byte, error) { return nil, errors.New("boom") })
	n2.eng.Handle("slow", func(ctx context.Context, _ []byte) ([]byte, error) {
		select {
		case <-release:
		case <-ctx.Done():
		}
		return nil, nil
	})
	ctx := stepCtx(t)

	for _, to := range []*tnode{n2, n1} { // another node, and this one
		out, err := n1.eng.Call(ctx, to.eng.Incarnation(), "whoami", []byte("x"))
		if err != nil || string(out) != to.name+":x" {
			t.Fatalf("call to %s: %q, %v", to.name, out, err)
		}
	}
	_, err := n1.eng.Call(ctx, n2.eng.Incarnation(), "nosuch", nil)
	callErr(t, err, ErrNoHandler)
	_, err = n1.eng.Call(ctx, n2.eng.Incarnation(), "fail", nil)
	var re *RemoteError
	if !errors.As(err, &re) || re.Msg != "boom" {
		t.Fatalf("got %v, want the remote error boom", err)
	}
	_, err = n1.eng.Call(ctx, 999, "whoami", nil)
	callErr(t, err, ErrNotIssued)
	_, err = n1.eng.Call(ctx, 0, "whoami", nil)
	callErr(t, err, ErrNotIssued)
	// Alive, but no answer within the deadline.
	short, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	_, err = n1.eng.Call(short, n2.eng.Incarnation(), "slow", nil)
	cancel()
	callErr(t, err, ErrUnreachable)

	res, err := n3.eng.Survey(ctx, "whoami", []byte("s"))
	if err != nil || res.Partial() || len(res.Replies) != 3 {
		t.Fatalf("survey: %+v, %v", res, err)
	}
	for i, r := range res.Replies {
		n := c.byInc(r.Inc)
		if i > 0 && r.Inc <= res.Replies[i-1].Inc || n == nil ||
			r.Name != n.name || string(r.Body) != n.name+":s" || r.Self != (n == n3) {
			t.Errorf("reply %d: %+v (%s)", i, r, r.Body)
		}
	}
	// A node that answers with an error is missing too, with the error.
	res, err = n1.eng.Survey(ctx, "fail", nil)
	if err != nil || len(res.Replies) != 0 || len(res.Missing) != 3 {
		t.Fatalf("survey of fail: %+v, %v", res, err)
	}
	for _, m := range res.Missing {
		want := ErrNoHandler
		if m.Inc == n2.eng.Incarnation() {
			if !errors.As(m.Err, &re) {
				t.Errorf("%s: %v, want a remote error", m.Name, m.Err)
			}
			continue
		}
		if !errors.Is(m.Err, want) {
			t.Errorf("%s: %v, want %v", m.Name, m.Err, want)
		}
	}
	if s := n1.eng.Stats(); s.Surveys != 1 || s.PartialSurvey != 1 || s.Calls < 5 {
		t.Errorf("n1 stats: %+v", s)
	}
}

// A node killed without goodbye: calls to it answer 503 while its lease
// lives and 410 once it expired; a survey names it missing, then leaves
// it out; after the grace period exactly one survivor reaps it and
// settles the link records it left open, and the node's next start gets
// a new incarnation and its name back at once.
func TestAbruptDeathAndReap(t *testing.T) {
	t.Parallel()
	c := startCluster(t, 3, testGrace)
	// The victim leads no JetStream group: killing a leader stalls the
	// survivors' writes for an election (4 to 9s), longer than this
	// test's grace period (see Config.ReapAfter).
	n3 := c.follower()
	n1, n2 := c.others(n3)
	serveWhoami(n1, n2, n3)
	ctx := stepCtx(t)

	inc3 := n3.eng.Incarnation()
	ids := openLinks(t, n3, 3)
	if ok, err := n3.eng.LinkClosed(ctx, ids[2], Disconnect{}); !ok || err != nil {
		t.Fatalf("closing its own link: %v, %v", ok, err)
	}

	killed := time.Now()
	n3.eng.kill()
	// Its lease lives on for up to a second: it may be cut off, not
	// dead. (A call made as it died may wait for its deadline: a short
	// one, within the lease.)
	short, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	_, err := n1.eng.Call(short, inc3, "whoami", nil)
	cancel()
	callErr(t, err, ErrUnreachable)
	res, err := n1.eng.Survey(ctx, "whoami", nil)
	if err != nil || len(res.Replies) != 2 || len(res.Missing) != 1 || res.Missing[0].Inc != inc3 ||
		!errors.Is(res.Missing[0].Err, ErrUnreachable) {
		t.Fatalf("survey right after the kill: %+v, %v", res, err)
	}

	for _, n := range []*tnode{n1, n2} {
		n.rec.waitFor(t, 5*time.Second, n.name+" to see "+n3.name+" down", func(r *recorder) bool { return r.has(NodeDown, inc3) })
	}
	t.Logf("%s known dead %v after the kill (lease %v)", n3.name, time.Since(killed).Round(time.Millisecond), testLease)
	if evs, _ := n1.rec.eventsOf(NodeDown); evs[0].Reason != "expired" {
		t.Errorf("down reason %q, want expired", evs[0].Reason)
	}
	_, err = n1.eng.Call(ctx, inc3, "whoami", nil)
	callErr(t, err, ErrGone)
	res, err = n2.eng.Survey(ctx, "whoami", nil)
	if err != nil || res.Partial() || len(res.Replies) != 2 {
		t.Fatalf("survey after n3 is known dead: %+v, %v", res, err)
	}

	// One survivor reaps; then neither has a reap waiting or running
	// (the other lost the claim, or saw the "reaped" record first and
	// dropped its own), so exactly one reap event can ever come.
	got, _ := theReap(t, 10*time.Second, inc3, n1, n2)
	if got.Node.Name != n3.name || len(got.Links) != 2 {
		t.Fatalf("reap event: %+v", got)
	}
	slices.SortFunc(got.Links, func(a, b LinkRecord) int { return int(a.ID - b.ID) })
	for i, l := range got.Links {
		if l.ID != ids[i] || string(l.Data) != fmt.Sprint("link ", i+1) {
			t.Errorf("reaped link %d: %+v", i, l)
		}
	}
	if s := n1.eng.Stats(); s.Reaped+n2.eng.Stats().Reaped != 1 || s.ReapedLinks+n2.eng.Stats().ReapedLinks != 2 {
		t.Errorf("reap counters: n1 %+v, n2 %+v", s, n2.eng.Stats())
	}

	// The victim restarts at once: a new incarnation, its name back.
	ctx = stepCtx(t)
	if err := c.open(n3); err != nil {
		t.Fatal(err)
	}
	newInc := n3.eng.Incarnation()
	if newInc <= max(n1.eng.Incarnation(), n2.eng.Incarnation(), inc3) {
		t.Fatalf("the restarted node got incarnation %d, not above every earlier one", newInc)
	}
	n1.rec.waitFor(t, 5*time.Second, n1.name+" to see the restarted node", func(r *recorder) bool { return r.has(NodeUp, newInc) })
	// The records the reaper settled are not the new run's to settle.
	if ok, err := n3.eng.LinkClosed(ctx, ids[0], Disconnect{}); ok || err != nil {
		t.Fatalf("closing a reaped record: %v, %v; want false", ok, err)
	}
	_, err = n3.eng.Call(ctx, inc3, "whoami", nil)
	callErr(t, err, ErrGone)
}

// A node that closes leaves: the others see it down ("left") at once,
// never reap it, and its next run gets a new incarnation. A node that
// closes with a link record it could not settle does not leave: its
// lease expires and a survivor reaps the record.
func TestCloseLeavesAndRestartTakesANewIncarnation(t *testing.T) {
	t.Parallel()
	c := startCluster(t, 3, testGrace) // three: the buckets must outlive a node
	// The node that closes leads the registry: the others must go on
	// renewing their leases while it goes (nats-server hands the
	// leadership over on shutdown; a leader that vanishes costs an
	// election of 4 to 9s, longer than this test's grace period).
	n2 := c.registryLeader()
	n1, n3 := c.others(n2)
	seen := []Incarnation{n1.eng.Incarnation(), n2.eng.Incarnation(), n3.eng.Incarnation()}
	for round := 0; round < 2; round++ {
		old := n2.eng.Incarnation()
		ctx := stepCtx(t)
		if err := n2.eng.Close(ctx); err != nil {
			t.Fatal(err)
		}
		n1.rec.waitFor(t, 2*time.Second, "n1 to see the node leave", func(r *recorder) bool { return r.has(NodeDown, old) })
		if evs, _ := n1.rec.eventsOf(NodeDown); evs[len(evs)-1].Reason != "left" {
			t.Errorf("down reason %q, want left", evs[len(evs)-1].Reason)
		}
		if _, err := n1.eng.Call(ctx, old, "whoami", nil); !errors.Is(err, ErrGone) {
			t.Fatalf("call to a node that left: %v, want ErrGone", err)
		}
		if err := c.open(n2); err != nil {
			t.Fatal(err)
		}
		inc := n2.eng.Incarnation()
		seen = append(seen, inc)
		for _, n := range []*tnode{n1, n3} {
			n.rec.waitFor(t, 5*time.Second, n.name+" to see the new run", func(r *recorder) bool { return r.has(NodeUp, inc) })
		}
	}
	for _, n := range []*tnode{n1, n3} {
		if evs, _ := n.rec.eventsOf(Fenced); len(evs) > 0 {
			t.Fatalf("%s fenced while the registry's leader closed: %+v", n.name, evs)
		}
	}
	for i := 3; i < len(seen); i++ { // each restart above everything before it
		if seen[i] <= slices.Max(seen[:i]) {
			t.Fatalf("incarnations %v: restart %d did not get a new, higher one", seen, i-2)
		}
	}

	// Closing with a record open.
	last := n2.eng.Incarnation()
	ids := openLinks(t, n2, 1)
	if err := n2.eng.Close(stepCtx(t)); err != nil {
		t.Fatal(err)
	}
	// The earlier runs left before it and were never scheduled: had they
	// been, their reaps would have come before this one.
	if ev, _ := theReap(t, 10*time.Second, last, n1, n3); len(ev.Links) != 1 || ev.Links[0].ID != ids[0] {
		t.Fatalf("reap: %+v; want the last run's, with its record", ev)
	}
	downs, _ := n1.rec.eventsOf(NodeDown)
	if downs[len(downs)-1].Reason != "expired" {
		t.Errorf("the last run's down reason %q, want expired", downs[len(downs)-1].Reason)
	}
}
