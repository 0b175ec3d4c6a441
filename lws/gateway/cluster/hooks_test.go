package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// backend stands for the gateway's hook receiver: every disconnect hook
// any node's RunHooks sends, by link.
//
// Concurrency: safe from any goroutine.
type backend struct {
	mu      sync.Mutex
	got     map[uint64][]Disconnect
	via     map[uint64][]string // the node that sent each
	block   map[uint64]bool     // links whose first send never returns (until the node dies)
	blocked chan string         // the node that holds a blocked hook
	changed chan struct{}
}

func newBackend() *backend {
	return &backend{got: map[uint64][]Disconnect{}, via: map[uint64][]string{}, block: map[uint64]bool{},
		blocked: make(chan string, 16), changed: make(chan struct{})}
}

func (b *backend) sender(node string) HookSender {
	return func(ctx context.Context, d Disconnect) error {
		b.mu.Lock()
		if b.block[d.Link] {
			delete(b.block, d.Link)
			b.mu.Unlock()
			b.blocked <- node
			<-ctx.Done() // the node dies holding it
			return ctx.Err()
		}
		b.got[d.Link] = append(b.got[d.Link], d)
		b.via[d.Link] = append(b.via[d.Link], node)
		close(b.changed)
		b.changed = make(chan struct{})
		b.mu.Unlock()
		return nil
	}
}

// run runs RunHooks on nd until the test ends or nd dies.
func (b *backend) run(t testing.TB, nd *tnode) {
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	eng := nd.eng
	go func() {
		_ = eng.RunHooks(ctx, HookRunOptions{Workers: 2, Backoff: 100 * time.Millisecond}, b.sender(nd.name))
	}()
}

// waitLinks waits until every link of ids has had a hook, then a while
// longer (a second hook for a link would be a bug, and nothing
// announces one that does not come), and checks that each link had
// exactly one hook queued, as check says, and delivered: at least once
// (a delivery whose acknowledgement was late comes again, with the
// same Seq; those are logged).
func (b *backend) waitLinks(t testing.TB, d time.Duration, ids []uint64, check func(id uint64, h Disconnect) error) {
	t.Helper()
	var missing []string // with b.mu held
	if !awaitChange(d, &b.mu, &b.changed, func() bool {
		missing = missing[:0]
		for _, id := range ids {
			if len(b.got[id]) == 0 {
				inc, local, _ := SplitLinkID(id)
				missing = append(missing, fmt.Sprintf("%d.%d", inc, local))
			}
		}
		return len(missing) == 0
	}) {
		b.mu.Lock()
		defer b.mu.Unlock()
		t.Fatalf("after %v, hooks for %d of %d links; none for %v", d, len(ids)-len(missing), len(ids), missing)
	}
	time.Sleep(2 * time.Second)
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, id := range ids {
		for i, h := range b.got[id] {
			if h.Seq != b.got[id][0].Seq || h.Attempt <= b.got[id][max(i-1, 0)].Attempt && i > 0 {
				t.Errorf("link %d: %d hooks (via %v), want exactly one: %+v", id, len(b.got[id]), b.via[id], b.got[id])
			}
		}
		if len(b.got[id]) > 1 {
			t.Logf("link %d: its hook delivered %d times (via %v): attempts %+v", id, len(b.got[id]), b.via[id], b.got[id])
		}
		if err := check(id, b.got[id][0]); err != nil {
			t.Errorf("link %d: %v", id, err)
		}
	}
}

func lostHook(data map[uint64]string) func(uint64, Disconnect) error {
	return func(id uint64, h Disconnect) error {
		if h.Link != id || !h.Lost || h.Code != lostCode || h.Reason != lostReason || string(h.Data) != data[id] {
			return fmt.Errorf("hook %+v, want the reaper's (1006, lost, data %q)", h, data[id])
		}
		return nil
	}
}

// openRecords records links first to first+n-1 of nd, with data naming
// them, and returns their ids and data.
func openRecords(t testing.TB, nd *tnode, first, n int, data map[uint64]string) []uint64 {
	t.Helper()
	ctx := stepCtx(t)
	var ids []uint64
	for local := uint64(first); local < uint64(first+n); local++ {
		id, _ := LinkID(nd.eng.Incarnation(), local)
		data[id] = fmt.Sprintf("%s link %d", nd.name, local)
		if err := nd.eng.LinkOpened(ctx, id, []byte(data[id])); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	return ids
}

// Disconnect hooks through the durable queue: links closed by their
// node get their own hook, a link without a record too; after the node is killed, its open links get
// one hook each (1006, lost) from the survivors; a node that dies while
// sending a hook leaves it to another node.
func TestDurableHooks(t *testing.T) {
	t.Parallel()
	c := startCluster(t, 3, testGrace, func(nd *tnode) { nd.cfg.HookAckWait = 2 * time.Second })
	b := newBackend()
	for _, nd := range c.nodes {
		b.run(t, nd)
	}
	victim := c.follower()
	a, _ := c.others(victim)
	data := map[uint64]string{}
	ids := openRecords(t, victim, 1, 3, data)
	ctx := stepCtx(t)
	// And a link whose LinkOpened never reached the cluster: no record,
	// and no reaper could have taken it (its node holds its lease).
	unrecorded, _ := LinkID(victim.eng.Incarnation(), 50)
	closed := append(ids, unrecorded)
	for _, id := range closed {
		ok, err := victim.eng.LinkClosed(ctx, id, Disconnect{Code: 1000, Reason: "bye", Data: []byte("closed")})
		if !ok || err != nil {
			t.Fatalf("LinkClosed: %v, %v", ok, err)
		}
	}
	b.waitLinks(t, 10*time.Second, closed, func(id uint64, h Disconnect) error {
		if h.Link != id || h.Lost || h.Code != 1000 || h.Reason != "bye" || string(h.Data) != "closed" || h.Attempt != 1 {
			return fmt.Errorf("hook %+v, want its own (1000 bye)", h)
		}
		return nil
	})

	// A node dies holding a hook: the queue gives it to another node
	// after HookAckWait.
	id, _ := LinkID(a.eng.Incarnation(), 99)
	b.mu.Lock()
	b.block[id] = true
	b.mu.Unlock()
	if err := a.eng.EnqueueHook(stepCtx(t), Disconnect{Link: id, Code: 1001}); err != nil {
		t.Fatal(err)
	}
	var holder *tnode
	select {
	case name := <-b.blocked:
		holder = c.node(name)
	case <-time.After(5 * time.Second):
		t.Fatal("no node took the hook")
	}
	c.relinquish(holder)
	holder.eng.kill()
	died := time.Now()
	b.waitLinks(t, 10*time.Second, []uint64{id}, func(_ uint64, h Disconnect) error {
		if h.Code != 1001 || h.Attempt != 2 {
			return fmt.Errorf("hook %+v, want the one queued, at its second attempt", h)
		}
		return nil
	})
	b.mu.Lock()
	via := b.via[id][0]
	b.mu.Unlock()
	if via == holder.name {
		t.Fatalf("the hook came from %s, which died", via)
	}
	t.Logf("%s died holding the hook; %s delivered it %v later", holder.name, via, time.Since(died).Round(time.Millisecond))
	if err := c.open(holder); err != nil {
		t.Fatal(err)
	}
	b.run(t, holder)
	c.waitConnected()
	c.waitCurrent(holder)

	// The node of the open links is killed: each gets one hook from a
	// survivor.
	victim = c.follower()
	ids = openRecords(t, victim, 100, 10, data)
	// One link closed just as its node died: its hook queued, its record
	// not settled yet. The reaper queues a hook for it too, of which the
	// queue keeps the first.
	if err := victim.eng.EnqueueHook(stepCtx(t), Disconnect{Link: ids[0], Code: 1000, Reason: "just closed"}); err != nil {
		t.Fatal(err)
	}
	inc := victim.eng.Incarnation()
	victim.eng.kill()
	x, y := c.others(victim)
	reapOf(t, 15*time.Second, inc, x, y)
	lost := lostHook(data)
	b.waitLinks(t, 10*time.Second, ids, func(id uint64, h Disconnect) error {
		if id == ids[0] {
			if h.Code != 1000 || h.Lost {
				return fmt.Errorf("hook %+v, want the one its node queued (1000)", h)
			}
			return nil
		}
		return lost(id, h)
	})
	if s := x.eng.Stats().HooksDelivered + y.eng.Stats().HooksDelivered; s == 0 {
		t.Error("no hook delivered by the survivors' RunHooks")
	}
}

// reapOf waits, up to d, until a survivor reaped inc and none has a
// reap waiting or running, and checks that inc was reaped exactly once
// (other reaps are not counted).
func reapOf(t testing.TB, d time.Duration, inc Incarnation, survivors ...*tnode) Event {
	t.Helper()
	of := func() (evs []Event) {
		for _, n := range survivors {
			all, _ := n.rec.eventsOf(Reap)
			for _, ev := range all {
				if ev.Node.Inc == inc {
					evs = append(evs, ev)
				}
			}
		}
		return evs
	}
	eventually(t, d, fmt.Sprintf("a reap of %d, and no other pending", inc), func() bool {
		if len(of()) == 0 {
			return false
		}
		for _, n := range survivors {
			if n.eng.pendingReaps() != 0 {
				return false
			}
		}
		return true
	})
	evs := of()
	if len(evs) != 1 {
		t.Fatalf("reaps of %d: %+v, want exactly one", inc, evs)
	}
	return evs[0]
}

// A reaper dies at its work: right after it claimed the dead node, or
// after it queued some of its hooks but before settling their records.
// The reaper's own reaper finishes the job: every link of the first
// node, and of the reaper, gets exactly one hook.
func TestReaperDies(t *testing.T) {
	t.Parallel()
	for _, when := range []string{"after its claim", "after queueing 3 hooks"} {
		t.Run(when, func(t *testing.T) {
			t.Parallel()
			var once sync.Once
			stuck := make(chan string, 1)
			var dead atomic.Uint32 // the first victim's incarnation
			var queued atomic.Int32
			c := startCluster(t, 3, testGrace, func(nd *tnode) {
				name := nd.name
				hold := func(life context.Context) {
					once.Do(func() {
						stuck <- name
						<-life.Done() // until the node is killed
					})
				}
				if when == "after its claim" {
					nd.cfg.testAfterClaim = func(life context.Context, inc Incarnation) {
						if uint32(inc) == dead.Load() {
							hold(life)
						}
					}
				} else {
					nd.cfg.testAfterQueue = func(life context.Context, link uint64) {
						if inc, _, _ := SplitLinkID(link); uint32(inc) == dead.Load() && queued.Add(1) == 3 {
							hold(life)
						}
					}
				}
			})
			b := newBackend()
			for _, nd := range c.nodes {
				b.run(t, nd)
			}
			victim := c.follower()
			data := map[uint64]string{}
			ids := openRecords(t, victim, 1, 8, data)
			dead.Store(uint32(victim.eng.Incarnation()))
			victim.eng.kill()
			var reaper *tnode
			select {
			case name := <-stuck:
				reaper = c.node(name)
			case <-time.After(15 * time.Second):
				t.Fatal("no survivor claimed the dead node")
			}
			t.Logf("%s claimed %s's incarnation %d and is stuck %s", reaper.name, victim.name, dead.Load(), when)
			ids = append(ids, openRecords(t, reaper, 1, 4, data)...)
			// The first victim comes back (so that two nodes of three are
			// up), then the reaper dies.
			if err := c.open(victim); err != nil {
				t.Fatal(err)
			}
			b.run(t, victim)
			c.waitConnected()
			c.waitCurrent(victim)
			rinc := reaper.eng.Incarnation()
			c.relinquish(reaper)
			reaper.eng.kill()
			var other *tnode
			for _, nd := range c.nodes {
				if nd != victim && nd != reaper {
					other = nd
				}
			}
			reapOf(t, 20*time.Second, rinc, victim, other)
			b.waitLinks(t, 10*time.Second, ids, lostHook(data))
			// The first reap is marked done.
			ent, found, err := other.eng.reg.last(stepCtx(t), nodeKey(Incarnation(dead.Load())))
			var rec nodeRecord
			if err != nil || !found || json.Unmarshal(ent.val, &rec) != nil || rec.State != stateReaped || !rec.Done {
				t.Fatalf("the first victim's record: %s, %v, %v", ent.val, found, err)
			}
		})
	}
}

// oneHook starts a single node with cfg, delivering its queued hooks to
// a backend with workers at once until the test ends, and queues one
// hook.
func oneHook(t *testing.T, cfg Config, workers int) (e *natsEngine, b *backend, id uint64) {
	e, _ = startSingle(t, cfg)
	b = newBackend()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	go func() {
		_ = e.RunHooks(ctx, HookRunOptions{Workers: workers, Backoff: 100 * time.Millisecond}, b.sender("solo"))
	}()
	id, _ = LinkID(e.Incarnation(), 7)
	if err := e.EnqueueHook(stepCtx(t), Disconnect{Link: id, Code: 1001}); err != nil {
		t.Fatal(err)
	}
	return e, b, id
}

// A delivered hook whose acknowledgement meets a queue without a leader
// (no responders, during the consumer's election) is acknowledged once
// the queue answers, while the hook is still this node's: it does not
// come again, to the backend twice.
func TestHookAckRetried(t *testing.T) {
	t.Parallel()
	var fails atomic.Int32
	fails.Store(2)
	cfg := Config{HookAckWait: time.Second, CallTimeout: 200 * time.Millisecond}
	cfg.testFailAck = func(int) bool { return fails.Add(-1) >= 0 }
	_, b, id := oneHook(t, cfg, 1)
	// waitLinks waits past HookAckWait after the first delivery, when a
	// hook not acknowledged would come again.
	b.waitLinks(t, 10*time.Second, []uint64{id}, func(uint64, Disconnect) error { return nil })
	b.mu.Lock()
	defer b.mu.Unlock()
	if got := b.got[id]; len(got) != 1 || fails.Load() >= 0 {
		t.Errorf("the hook was delivered %d times (%+v), acknowledgements failed %d of 2; want once, both failed",
			len(got), got, 2-max(fails.Load(), 0))
	}
}

// A delivered hook whose acknowledgement does not reach the queue, nor
// its progress reports (its consumer is electing a leader), is offered
// again after HookAckWait while its first sender still tries; it was
// marked sent, so it is acknowledged without a second send: the backend
// has it once.
func TestHookAckLostNotSentTwice(t *testing.T) {
	t.Parallel()
	var firstAcks atomic.Int32
	cfg := Config{HookAckWait: time.Second, CallTimeout: 200 * time.Millisecond}
	cfg.testFailAck = func(attempt int) bool {
		if attempt == 1 {
			firstAcks.Add(1)
			return true
		}
		return false
	}
	cfg.testFailProgress = func(attempt int) bool { return attempt == 1 }
	notResent(t, cfg)
	if firstAcks.Load() == 0 {
		t.Error("no acknowledgement of the first delivery failed")
	}
}

// notResent queues one hook on a node started with cfg and two hook
// workers, waits until the node finds it offered again and marked sent,
// and checks that the backend had it once.
func notResent(t *testing.T, cfg Config) {
	t.Helper()
	e, b, id := oneHook(t, cfg, 2)
	eventually(t, 15*time.Second, "the hook offered again and found marked sent", func() bool { return e.Stats().HooksNotResent > 0 })
	st := e.Stats()
	b.mu.Lock()
	got := len(b.got[id])
	b.mu.Unlock()
	if got != 1 || st.HooksNotResent != 1 || st.HooksDelivered != 1 {
		t.Errorf("backend got the hook %d times; not resent %d, delivered %d; want once, 1, 1", got, st.HooksNotResent, st.HooksDelivered)
	}
}

// A hook offered again while its first sender still tries to mark it
// sent (the bucket is electing a leader too) is looked up once more
// after hookRecheck, and by then marked: the backend has it once.
func TestHookMarkLateNotSentTwice(t *testing.T) {
	t.Parallel()
	cfg := Config{HookAckWait: time.Second, CallTimeout: 200 * time.Millisecond}
	first := func(attempt int) bool { return attempt == 1 }
	cfg.testFailAck, cfg.testFailProgress = first, first
	var markFrom atomic.Int64 // when marks start to succeed: 1.5 s after the first try
	cfg.testFailMark = func() bool {
		now := time.Now().UnixNano()
		markFrom.CompareAndSwap(0, now+int64(1500*time.Millisecond))
		return now < markFrom.Load()
	}
	notResent(t, cfg)
}

// A hook the backend refused is marked refused, so its next offer is
// sent at once, after the backoff alone, without the second look
// (hookRecheck) that an offer with no mark waits for.
func TestHookRefusedSentAgainAtOnce(t *testing.T) {
	t.Parallel()
	e, _ := startSingle(t, Config{HookAckWait: time.Second, CallTimeout: 200 * time.Millisecond})
	var mu sync.Mutex
	var at []time.Time
	send := func(ctx context.Context, d Disconnect) error {
		mu.Lock()
		defer mu.Unlock()
		at = append(at, time.Now())
		if len(at) == 1 {
			return errors.New("refused")
		}
		return nil
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	go func() { _ = e.RunHooks(ctx, HookRunOptions{Workers: 1, Backoff: 100 * time.Millisecond}, send) }()
	id, _ := LinkID(e.Incarnation(), 9)
	if err := e.EnqueueHook(stepCtx(t), Disconnect{Link: id, Code: 1001}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "the hook delivered", func() bool { return e.Stats().HooksDelivered > 0 })
	mu.Lock()
	defer mu.Unlock()
	if len(at) != 2 {
		t.Fatalf("%d sends, want 2 (refused, then taken)", len(at))
	}
	if gap := at[1].Sub(at[0]); gap >= hookRecheck {
		t.Errorf("the second send came %v after the refused one: it waited for a second look (%v)", gap, hookRecheck)
	}
}
