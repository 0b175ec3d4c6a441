package cluster

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// hub stands for the gateway on one node: the members of each history
// channel, to which the Deliver hook fans every delivery out, and which
// a Resume's join adds a member to, as the gateway will (both on the
// engine's delivery goroutine, so in the order of the calls).
//
// Concurrency: safe from any goroutine.
type hub struct {
	mu      sync.Mutex
	members map[string]map[*member]bool
}

func newHub() *hub { return &hub{members: map[string]map[*member]bool{}} }

// member is one subscriber: what it received, in order.
// Concurrency: safe from any goroutine.
type member struct {
	name    string
	channel string
	mu      sync.Mutex
	got     []Delivery
	pos     Position // the last position it saw (from a join or a message)
	joins   []Catchup
	changed chan struct{}
}

func newMember(name, channel string) *member {
	return &member{name: name, channel: channel, changed: make(chan struct{})}
}

func (m *member) add(ds ...Delivery) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.got = append(m.got, ds...)
	if len(ds) > 0 {
		m.pos = ds[len(ds)-1].Position
	}
	close(m.changed)
	m.changed = make(chan struct{})
}

func (m *member) position() Position {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.pos
}

func (m *member) received() []Delivery {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]Delivery(nil), m.got...)
}

// waitFor waits until cond (called with m locked) holds.
func (m *member) waitFor(t testing.TB, d time.Duration, what string, cond func(m *member) bool) {
	t.Helper()
	if !awaitChange(d, &m.mu, &m.changed, func() bool { return cond(m) }) {
		m.mu.Lock()
		n, pos := len(m.got), m.pos
		m.mu.Unlock()
		t.Fatalf("after %v, %s still waiting for %s (has %d messages, at %+v)", d, m.name, what, n, pos)
	}
}

func (h *hub) deliver(d Delivery) {
	h.mu.Lock()
	ms := make([]*member, 0, len(h.members[d.Channel]))
	for m := range h.members[d.Channel] {
		ms = append(ms, m)
	}
	h.mu.Unlock()
	for _, m := range ms {
		m.add(d)
	}
}

// join is a Resume join: the member enters the channel with what it
// missed.
func (h *hub) join(m *member) func(Catchup) {
	return func(c Catchup) {
		h.mu.Lock()
		if h.members[m.channel] == nil {
			h.members[m.channel] = map[*member]bool{}
		}
		h.members[m.channel][m] = true
		h.mu.Unlock()
		m.mu.Lock()
		m.joins = append(m.joins, c)
		m.pos = c.Position
		m.mu.Unlock()
		m.add(c.Missed...)
		m.mu.Lock()
		m.pos = c.Position
		m.mu.Unlock()
	}
}

func (h *hub) leave(m *member) {
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.members[m.channel], m)
}

// subscribe makes m a member of its channel on node e, resuming from
// since (zero: from now), and returns the join's catch-up.
func subscribe(t testing.TB, e Engine, h *hub, m *member, since Position) Catchup {
	t.Helper()
	if err := e.Interest(m.channel, true); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := e.Resume(ctx, m.channel, since, h.join(m)); err != nil {
		t.Fatalf("%s resuming %s from %+v: %v", m.name, m.channel, since, err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.joins[len(m.joins)-1]
}

// startSingle opens one embedded node (no routes: R1) with cfg's
// Channels and history settings, delivering to a hub.
func startSingle(t testing.TB, cfg Config) (*natsEngine, *hub) {
	t.Helper()
	h := newHub()
	cfg.Engine, cfg.Name, cfg.Node = EngineNATS, "t", "solo"
	cfg.Lease, cfg.ReapAfter = testLease, testGrace
	if cfg.NATS.Embedded.StoreDir == "" {
		cfg.NATS.Embedded.StoreDir = filepath.Join(t.TempDir(), "solo")
	}
	rec := newRecorder()
	rec.onDeliver = h.deliver
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	e, err := Open(ctx, cfg, rec.hooks(t, "solo"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.(*natsEngine).kill)
	return e.(*natsEngine), h
}

// offsets lists the offsets of ds.
func offsets(ds []Delivery) []uint64 {
	out := make([]uint64, len(ds))
	for i, d := range ds {
		out[i] = d.Position.Offset
	}
	return out
}

// publishN publishes n messages "<prefix><i>" on channel and returns
// their positions.
func publishN(t testing.TB, e Engine, channel, prefix string, n int) []Position {
	t.Helper()
	ctx := stepCtx(t)
	var out []Position
	for i := range n {
		p, err := e.Publish(ctx, channel, Message{Data: fmt.Appendf(nil, "%s%d", prefix, i)})
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, p)
	}
	return out
}

// dropper drops republished messages on their way to a node, by
// sequence (Config.testDropLive).
//
// Concurrency: safe from any goroutine.
type dropper struct {
	mu    sync.Mutex
	drops map[uint64]bool
}

func newDropper(cfg *Config) *dropper {
	d := &dropper{drops: map[uint64]bool{}}
	cfg.testDropLive = func(seq uint64) bool {
		d.mu.Lock()
		defer d.mu.Unlock()
		return d.drops[seq]
	}
	return d
}

func (d *dropper) drop(seqs ...uint64) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, s := range seqs {
		d.drops[s] = true
	}
}
