package cluster

import (
	"fmt"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// routeInterest reports, for each other node, whether n's server holds
// its interest in subject: what the node's routes told n's server it
// wants, so what n's server forwards to it.
func routeInterest(t testing.TB, n *tnode, subject string) map[string]bool {
	t.Helper()
	rz, err := n.eng.srv.ns.Routez(&server.RoutezOptions{Subscriptions: true})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]bool{}
	for _, r := range rz.Routes {
		for _, s := range r.Subs {
			if s == subject {
				out[r.RemoteName] = true
			}
		}
	}
	return out
}

// eventually polls cond every 10ms for up to d: for states no event
// announces (a server's view of its routes).
func eventually(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after %v, still waiting for %s", d, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func sameSet(got map[string]bool, want ...string) bool {
	if len(got) != len(want) {
		return false
	}
	for _, w := range want {
		if !got[w] {
			return false
		}
	}
	return true
}

// Channels across three nodes; each subtest uses channels of its own.
func TestChannels(t *testing.T) {
	t.Parallel()
	c := startCluster(t, 3, testGrace)
	t.Run("publish reaches only interested nodes", func(t *testing.T) { testPublishReachesOnlyInterested(t, c) })
	t.Run("interest lingers", func(t *testing.T) { testInterestLingers(t, c) })
	t.Run("order per publisher", func(t *testing.T) { testOrderPerPublisher(t, c) })
	t.Run("gaps counted", func(t *testing.T) { testGapsCounted(t, c) })
	t.Run("two routes to each node", func(t *testing.T) { testRoutePool(t, c) })
}

// Each node's server keeps two route connections to each other node:
// one for the gateway's account and one pinned for the system account
// (embedded.go, PoolSize), not nats-server's default pool of three
// beside the pinned one.
func testRoutePool(t *testing.T, c *tcluster) {
	for _, n := range c.nodes {
		rz, err := n.eng.srv.ns.Routez(&server.RoutezOptions{})
		if err != nil {
			t.Fatal(err)
		}
		perPeer := map[string][]string{}
		for _, r := range rz.Routes {
			perPeer[r.RemoteName] = append(perPeer[r.RemoteName], r.Account)
		}
		if len(perPeer) != len(c.nodes)-1 {
			t.Fatalf("%s: routes to %v, want the %d other nodes", n.name, perPeer, len(c.nodes)-1)
		}
		for peer, accs := range perPeer {
			slices.Sort(accs)
			if !slices.Equal(accs, []string{"", "$SYS"}) {
				t.Fatalf("%s: routes to %s pinned to %q, want one pooled and one for $SYS", n.name, peer, accs)
			}
		}
	}
}

// Publishes reach the nodes with interest in the channel and no other:
// NATS forwards a channel's subject only to servers whose node
// subscribed; names outside the subject alphabet travel intact.
func testPublishReachesOnlyInterested(t *testing.T, c *tcluster) {
	n1, n2, n3 := c.nodes[0], c.nodes[1], c.nodes[2]
	ctx := stepCtx(t)

	const room, odd = "room:1", "a.b *>\x00ü"
	for _, ch := range []string{room, odd} {
		if err := n2.eng.Interest(ch, true); err != nil {
			t.Fatal(err)
		}
	}
	subj := n1.eng.pre + "ch." + EncodeToken(room)
	eventually(t, 5*time.Second, "n1 and n3 to hold n2's interest in "+subj, func() bool {
		return sameSet(routeInterest(t, n1, subj), "n2") && sameSet(routeInterest(t, n3, subj), "n2")
	})

	for i, from := range []*tnode{n1, n3} {
		for _, ch := range []string{room, odd} {
			if _, err := from.eng.Publish(ctx, ch, Message{Data: []byte(from.name + ch), Kind: uint8(i + 1)}); err != nil {
				t.Fatal(err)
			}
		}
	}
	n2.rec.waitFor(t, 5*time.Second, "four deliveries on n2", func(r *recorder) bool { return len(r.deliveries) == 4 })
	for i, from := range []*tnode{n1, n3} {
		for _, ch := range []string{room, odd} {
			found := false
			for _, d := range n2.rec.delivered(ch) {
				if d.From == from.eng.Incarnation() {
					found = string(d.Data) == from.name+ch && d.Kind == uint8(i+1) && d.Position.IsZero()
				}
			}
			if !found {
				t.Errorf("n2 did not get %q from %s intact: %+v", ch, from.name, n2.rec.delivered(ch))
			}
		}
	}
	for _, n := range []*tnode{n1, n3} {
		if s := n.eng.Stats(); s.Deliveries != 0 || len(n.rec.delivered(room)) != 0 {
			t.Errorf("%s without interest got deliveries: %+v", n.name, s)
		}
		if s := n.eng.Stats(); s.Publishes != 2 {
			t.Errorf("%s: Publishes %d, want 2", n.name, s.Publishes)
		}
	}
	if s := n2.eng.Stats(); s.Deliveries != 4 || s.Gaps != 0 || s.Channels != 2 {
		t.Errorf("n2 stats: %+v", s)
	}

	// Losing interest: after the linger, no server forwards the channel
	// to n2 any more.
	if err := n2.eng.Interest(room, false); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "n2's interest to leave n1's routes", func() bool {
		return len(routeInterest(t, n1, subj)) == 0
	})
	if s := n2.eng.Stats(); s.Channels != 1 {
		t.Errorf("n2 still subscribes to %d channels, want 1", s.Channels)
	}
}

// Interest(false) then true within the linger keeps the subscription: no
// unsubscribe/subscribe round through the cluster.
func testInterestLingers(t *testing.T, c *tcluster) {
	n2 := c.nodes[1]
	if err := n2.eng.Interest("lobby", true); err != nil {
		t.Fatal(err)
	}
	n2.eng.ch.mu.RLock()
	first := n2.eng.ch.byName["lobby"]
	n2.eng.ch.mu.RUnlock()
	if err := n2.eng.Interest("lobby", false); err != nil {
		t.Fatal(err)
	}
	if err := n2.eng.Interest("lobby", true); err != nil {
		t.Fatal(err)
	}
	// Nothing announces that an unsubscribe did not happen: wait past
	// three lingers, then look.
	time.Sleep(3 * n2.cfg.Linger)
	n2.eng.ch.mu.RLock()
	now := n2.eng.ch.byName["lobby"]
	n2.eng.ch.mu.RUnlock()
	if now != first || now.lingering {
		t.Fatalf("the subscription was replaced or still lingers: %p -> %p", first, now)
	}
	subj := n2.eng.pre + "ch.lobby"
	eventually(t, 5*time.Second, "n1 to hold n2's interest", func() bool {
		return sameSet(routeInterest(t, c.nodes[0], subj), "n2")
	})
}

// Two publishers on two nodes, 1000 messages each on one channel: the
// third node receives each publisher's messages in publish order, none
// missing, and counts no gap.
func testOrderPerPublisher(t *testing.T, c *tcluster) {
	n1, n2, n3 := c.nodes[0], c.nodes[1], c.nodes[2]
	if err := n2.eng.Interest("feed", true); err != nil {
		t.Fatal(err)
	}
	subj := n1.eng.pre + "ch.feed"
	eventually(t, 5*time.Second, "n2's interest on n1 and n3", func() bool {
		return sameSet(routeInterest(t, n1, subj), "n2") && sameSet(routeInterest(t, n3, subj), "n2")
	})
	const n = 1000
	ctx := stepCtx(t)
	before := n2.eng.Stats()
	var wg sync.WaitGroup
	for _, from := range []*tnode{n1, n3} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 1; i <= n; i++ {
				if _, err := from.eng.Publish(ctx, "feed", Message{Data: []byte(strconv.Itoa(i))}); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	n2.rec.waitFor(t, 10*time.Second, fmt.Sprintf("%d deliveries", 2*n), func(r *recorder) bool {
		got := 0
		for _, d := range r.deliveries {
			if d.Channel == "feed" {
				got++
			}
		}
		return got >= 2*n
	})
	next := map[Incarnation]int{n1.eng.Incarnation(): 1, n3.eng.Incarnation(): 1}
	for _, d := range n2.rec.delivered("feed") {
		got, _ := strconv.Atoi(string(d.Data))
		if got != next[d.From] {
			t.Fatalf("from incarnation %d: got message %d, want %d", d.From, got, next[d.From])
		}
		next[d.From]++
	}
	if s := n2.eng.Stats(); s.Gaps != before.Gaps || s.Deliveries-before.Deliveries != 2*n || s.Dropped != 0 {
		t.Errorf("n2 stats: %+v, before %+v", s, before)
	}
}

// A receiver counts the messages of a publisher it did not get: here,
// messages the publisher numbered but never sent (as a lost route
// would), and a restarted counter whose first messages are missing.
func testGapsCounted(t *testing.T, c *tcluster) {
	n1, n2 := c.nodes[0], c.nodes[1]
	if err := n2.eng.Interest("g", true); err != nil {
		t.Fatal(err)
	}
	subj := n1.eng.pre + "ch.g"
	eventually(t, 5*time.Second, "n2's interest on n1", func() bool { return sameSet(routeInterest(t, n1, subj), "n2") })
	ctx := stepCtx(t)
	before := n2.eng.Stats().Gaps
	publish := func() {
		t.Helper()
		if _, err := n1.eng.Publish(ctx, "g", Message{Data: []byte("x")}); err != nil {
			t.Fatal(err)
		}
	}
	publish() // seq 1
	n1.eng.pub.mu.Lock()
	n1.eng.pub.cur["g"].seq += 3 // seq 2, 3, 4 lost
	n1.eng.pub.mu.Unlock()
	publish() // seq 5
	n1.eng.pub.mu.Lock()
	delete(n1.eng.pub.cur, "g") // forgotten: a new generation starts at 1...
	n1.eng.pub.prev = nil
	n1.eng.pub.mu.Unlock()
	publish() // gen 2, seq 1
	n1.eng.pub.mu.Lock()
	n1.eng.pub.cur["g"].seq++ // ...and its seq 2 is lost
	n1.eng.pub.mu.Unlock()
	publish() // gen 2, seq 3
	n2.rec.waitFor(t, 5*time.Second, "four deliveries", func(r *recorder) bool {
		got := 0
		for _, d := range r.deliveries {
			if d.Channel == "g" {
				got++
			}
		}
		return got == 4
	})
	if gaps := n2.eng.Stats().Gaps - before; gaps != 4 {
		t.Fatalf("gaps %d, want 4 (3 + 1)", gaps)
	}
}
