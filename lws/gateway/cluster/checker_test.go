package cluster

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lwsgate/lwsgate/internal/testutil"
)

// checker publishes numbered messages on history channels at a steady
// rate through whichever node is up, retrying a publish that was not
// acknowledged (with its idempotency key) on another node, and keeps
// every acknowledged position.
//
// Concurrency: safe from any goroutine.
type checker struct {
	t        testing.TB
	c        *tcluster
	channels []string
	mu       sync.Mutex
	acked    map[string][]uint64 // per channel, in acknowledgement order
	epochs   map[string]bool
	failures int // attempts that failed (to be retried)
	down     map[string]bool
	stop     chan struct{}
	done     chan struct{}
	sent     atomic.Int64
}

func newChecker(t testing.TB, c *tcluster, channels ...string) *checker {
	return &checker{t: t, c: c, channels: channels, acked: map[string][]uint64{}, epochs: map[string]bool{},
		down: map[string]bool{}, stop: make(chan struct{}), done: make(chan struct{})}
}

// setDown keeps the publisher off a node (killed or cut off).
func (k *checker) setDown(node string, down bool) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.down[node] = down
}

func (k *checker) pick(n int) *tnode {
	k.mu.Lock()
	defer k.mu.Unlock()
	for i := range len(k.c.nodes) {
		nd := k.c.nodes[(n+i)%len(k.c.nodes)]
		if !k.down[nd.name] {
			return nd
		}
	}
	return nil
}

// run publishes on each channel every interval until stop, one
// publisher per channel.
func (k *checker) run(interval time.Duration) {
	defer close(k.done)
	var wg sync.WaitGroup
	for c, ch := range k.channels {
		wg.Add(1)
		go func() {
			defer wg.Done()
			k.publisher(c, ch, interval)
		}()
	}
	wg.Wait()
}

func (k *checker) publisher(c int, ch string, interval time.Duration) {
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for i := 0; ; i++ {
		select {
		case <-k.stop:
			return
		case <-tick.C:
		}
		m := Message{Data: fmt.Appendf(nil, "%s/%d", ch, i), ID: fmt.Sprint("msg-", i)}
		k.sent.Add(1)
		began := time.Now()
		deadline := began.Add(30 * time.Second)
		for try := 0; ; try++ {
			nd := k.pick(c + i + try)
			if nd == nil || time.Now().After(deadline) {
				k.t.Errorf("%s: message %d never acknowledged", ch, i)
				break
			}
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			p, err := nd.eng.Publish(ctx, ch, m)
			cancel()
			if err == nil {
				if d := time.Since(began); d > time.Second {
					k.t.Logf("%s: message %d acknowledged after %v, %d tries", ch, i, d.Round(time.Millisecond), try+1)
				}
				k.mu.Lock()
				k.acked[ch] = append(k.acked[ch], p.Offset)
				k.epochs[ch+" "+p.Epoch] = true
				k.mu.Unlock()
				break
			}
			k.mu.Lock()
			k.failures++
			if k.failures%50 == 1 {
				k.t.Logf("publishing on %s through %s: %v", ch, nd.name, err)
			}
			k.mu.Unlock()
			// Retried even once stopping: a publish stored but not
			// acknowledged would be delivered as never acknowledged.
			time.Sleep(50 * time.Millisecond)
		}
	}
}

func (k *checker) finish() {
	close(k.stop)
	<-k.done
}

func (k *checker) ackedOf(ch string) []uint64 {
	k.mu.Lock()
	defer k.mu.Unlock()
	return append([]uint64(nil), k.acked[ch]...)
}

// tmember is a member and where it is now.
// Concurrency: the test goroutine's.
type tmember struct {
	*member
	node  *tnode
	start uint64 // its position when it first joined
}

// The checker across three nodes: subscribers on every node, a
// publisher at up to 250 messages a second on each of two history
// channels, then a node killed (its subscribers resume on the others
// with their last position), the leader of a channel's stream killed,
// a node cut off for a few seconds, then paused (its subscribers stay:
// the node repairs what it missed). Every acknowledged offset must
// reach every subscriber, in order, once, with recovered true, and
// nothing else (no message stored twice by a retry); then a subscriber
// that misses more than a small history holds gets recovered false,
// and one that misses less gets them all.
func TestHistoryChecker(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("kills a stream leader: waits for a JetStream election (up to 9s)")
	}
	hubs := map[string]*hub{}
	c := startCluster(t, 3, 15*time.Second, func(nd *tnode) {
		hubs[nd.name] = newHub()
		nd.deliver = hubs[nd.name].deliver
		nd.cfg.Channels = []ChannelConfig{
			{Match: "h:*", History: HistoryConfig{Size: 100000}},
			{Match: "tiny", History: HistoryConfig{Size: 5}},
		}
		nd.cfg.HistoryShards = 3
		nd.cfg.HistoryCheck = 500 * time.Millisecond
	})
	channels := []string{"h:a", "h:b"}
	var members []*tmember
	// join subscribes two new members to each channel on nd, from now.
	join := func(nd *tnode) {
		t.Helper()
		for _, ch := range channels {
			for range 2 {
				m := &tmember{member: newMember(fmt.Sprintf("%s/%s/%d", nd.name, ch, len(members)), ch), node: nd}
				cu := subscribe(t, nd.eng, hubs[nd.name], m.member, Position{})
				m.start = cu.Position.Offset
				members = append(members, m)
			}
		}
	}
	for _, nd := range c.nodes {
		join(nd)
	}
	k := newChecker(t, c, channels...)
	go k.run(4 * time.Millisecond)
	defer func() {
		select {
		case <-k.stop:
		default:
			k.finish()
		}
	}()
	var statsMu sync.Mutex
	var total Stats
	addStats := func(nd *tnode) {
		s := nd.eng.Stats()
		statsMu.Lock()
		total.Repaired += s.Repaired
		total.RepairedGaps += s.RepairedGaps
		total.Duplicates += s.Duplicates
		total.Unrepairable += s.Unrepairable
		total.Resumes += s.Resumes
		total.ResumesLost += s.ResumesLost
		statsMu.Unlock()
	}
	wait := func(d time.Duration) { time.Sleep(d) } // the publisher runs meanwhile
	// moveOff resumes the members of nd on the other nodes, each from
	// its last position.
	moveOff := func(nd *tnode) {
		t.Helper()
		a, b := c.others(nd)
		n := 0
		for _, m := range members {
			if m.node != nd {
				continue
			}
			to := []*tnode{a, b}[n%2]
			n++
			since := m.position()
			cu := subscribe(t, to.eng, hubs[to.name], m.member, since)
			if !cu.Recovered {
				t.Errorf("%s resuming on %s from %+v: not recovered", m.name, to.name, since)
			}
			m.node = to
		}
	}
	crash := func(nd *tnode) {
		k.setDown(nd.name, true)
		c.f.cut(nd.name) // its peers see its routes go silent, as with kill -9 of a host
		addStats(nd)
		nd.eng.kill()
		hubs[nd.name] = newHub()
		nd.deliver = hubs[nd.name].deliver
	}
	restart := func(nd *tnode) {
		t.Helper()
		c.f.heal(nd.name)
		if err := c.open(nd); err != nil {
			t.Fatal(err)
		}
		c.waitConnected()
		c.waitCurrent(nd)
		k.setDown(nd.name, false)
		join(nd) // new clients come to it
	}

	wait(2 * time.Second)

	t.Run("a node killed", func(t *testing.T) {
		victim := c.follower()
		crash(victim)
		wait(time.Second)
		moveOff(victim)
		wait(time.Second)
		restart(victim)
	})
	t.Run("the stream leader killed", func(t *testing.T) {
		var victim *tnode
		eventually(t, 20*time.Second, "a leader of h:a's stream", func() bool {
			hs := c.nodes[0].eng.mustLookup(t, "h:a")
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			defer cancel()
			st, err := c.nodes[0].eng.js.Stream(ctx, hs.name)
			if err != nil || st.CachedInfo().Cluster == nil {
				return false
			}
			for _, nd := range c.nodes {
				if nd.name == st.CachedInfo().Cluster.Leader {
					victim = nd
				}
			}
			return victim != nil
		})
		c.t.Logf("%s leads h:a's stream", victim.name)
		crash(victim)
		wait(time.Second)
		moveOff(victim)
		wait(3 * time.Second)
		restart(victim)
	})
	t.Run("a node cut off", func(t *testing.T) {
		victim := c.follower()
		k.setDown(victim.name, true)
		c.f.cut(victim.name)
		wait(3 * time.Second)
		c.f.heal(victim.name)
		c.waitConnected()
		k.setDown(victim.name, false)
		wait(time.Second)
	})
	t.Run("a node paused", func(t *testing.T) {
		// Briefly (its routes hold), then for longer than its peers'
		// pings allow (they drop its routes, and it theirs).
		victim := c.follower()
		for _, d := range []time.Duration{300 * time.Millisecond, 2 * time.Second} {
			k.setDown(victim.name, true)
			c.f.pause(victim.name)
			wait(d)
			c.f.resume(victim.name)
			c.waitConnected()
			k.setDown(victim.name, false)
			wait(time.Second)
		}
	})
	k.finish()

	// Every subscriber gets every acknowledged offset after its start,
	// in order, once.
	var delivered int
	for _, m := range members {
		acked := k.ackedOf(m.channel)
		slices.Sort(acked)
		want := acked[sort0(acked, m.start):]
		if len(want) == 0 {
			t.Errorf("%s joined at %d, after every acknowledged offset (up to %d)", m.name, m.start, acked[len(acked)-1])
			continue
		}
		m.waitFor(t, 30*time.Second, fmt.Sprintf("the %d acknowledged messages", len(want)), func(mm *member) bool {
			return len(mm.got) > 0 && mm.got[len(mm.got)-1].Position.Offset >= want[len(want)-1]
		})
		var got []testutil.Delivered
		for _, d := range m.received() {
			got = append(got, testutil.Delivered{Offset: d.Position.Offset, Data: string(d.Data)})
		}
		delivered += len(got)
		for _, bad := range testutil.CheckHistory(acked, m.start, got) {
			t.Errorf("%s: %s", m.name, bad)
		}
	}
	for _, nd := range c.nodes {
		addStats(nd)
	}
	if len(k.epochs) != len(channels) {
		t.Errorf("epochs %v: want one per channel", k.epochs)
	}
	for _, ch := range channels {
		t.Logf("%s: %d acknowledged", ch, len(k.ackedOf(ch)))
	}
	acked := len(k.ackedOf("h:a")) + len(k.ackedOf("h:b"))
	t.Logf("acknowledged %d of %d published (%d attempts failed and were retried); delivered %d to %d subscribers; "+
		"repaired %d messages in %d gaps; %d duplicates dropped; %d unrepairable; %d resumes, %d not recovered",
		acked, k.sent.Load(), k.failures, delivered, len(members), total.Repaired, total.RepairedGaps,
		total.Duplicates, total.Unrepairable, total.Resumes, total.ResumesLost)
	if total.ResumesLost != 0 || total.Unrepairable != 0 {
		t.Errorf("with a history of 100,000, nothing was trimmed: %d resumes not recovered, %d gaps unrepairable",
			total.ResumesLost, total.Unrepairable)
	}

	t.Run("trimmed on purpose", func(t *testing.T) {
		a, b := c.nodes[0], c.nodes[1]
		near, far := newMember("near", "tiny"), newMember("far", "tiny")
		subscribe(t, a.eng, hubs[a.name], near, Position{})
		subscribe(t, a.eng, hubs[a.name], far, Position{})
		publishN(t, b.eng, "tiny", "t", 3)
		far.waitFor(t, 5*time.Second, "3 messages", func(m *member) bool { return len(m.got) == 3 })
		// far leaves, then misses 9 messages (the history keeps 5, and
		// one more); near leaves later and misses 4.
		hubs[a.name].leave(far)
		farAt := far.position()
		ps := publishN(t, b.eng, "tiny", "u", 5)
		near.waitFor(t, 5*time.Second, "8 messages", func(m *member) bool { return len(m.got) == 8 })
		hubs[a.name].leave(near)
		nearAt := near.position()
		ps = append(ps, publishN(t, b.eng, "tiny", "v", 4)...)

		// after is what m received after at once it has the last of
		// want: what its join said it missed, then live messages (the
		// node may not have had the last ones yet when m joined: the
		// publishes went through another node).
		after := func(m *member, at Position, want []Position) []uint64 {
			m.waitFor(t, 5*time.Second, "the last message", func(m *member) bool {
				return len(m.got) > 0 && m.got[len(m.got)-1].Position.Offset >= want[len(want)-1].Offset
			})
			var out []uint64
			for _, d := range m.received() {
				if d.Position.Offset > at.Offset {
					out = append(out, d.Position.Offset)
				}
			}
			return out
		}
		cu := subscribe(t, c.nodes[2].eng, hubs[c.nodes[2].name], near, nearAt)
		if got := after(near, nearAt, ps[5:]); !cu.Recovered || !slices.Equal(got, offsets(deliveriesAt(ps[5:]))) {
			t.Fatalf("4 missed of a history of 5: %+v, then received %v", cu, got)
		}
		cu = subscribe(t, c.nodes[2].eng, hubs[c.nodes[2].name], far, farAt)
		// Really trimmed: the stream holds the channel's last 6 messages,
		// not the 9 far missed.
		page, err := b.eng.History(stepCtx(t), "tiny", Position{}, 0)
		if err != nil || len(page.Messages) != 5 || page.Messages[0].Position.Offset <= ps[2].Offset {
			t.Fatalf("the history of tiny: %+v, %v", page, err)
		}
		if got := after(far, farAt, ps[3:]); cu.Recovered || !slices.Equal(got, offsets(deliveriesAt(ps[3:]))) {
			t.Fatalf("9 missed of a history of 5: %+v, then received %v; want recovered false and %v", cu, got, ps[3:])
		}
	})
}

// sort0 is the index of the first offset above start in sorted.
func sort0(sorted []uint64, start uint64) int {
	i, _ := slices.BinarySearch(sorted, start+1)
	return i
}
