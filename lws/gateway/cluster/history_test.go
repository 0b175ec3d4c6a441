package cluster

import (
	"errors"
	"fmt"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

func singleHistoryConfig() Config {
	return Config{
		Channels: []ChannelConfig{
			{Match: "room:*", History: HistoryConfig{Size: 5}},
			{Match: "feed", History: HistoryConfig{TTL: time.Minute}, Envelope: true},
		},
		HistoryShards: 2,
		HistoryCheck:  200 * time.Millisecond,
	}
}

// Publishing on a history channel: positions once stored, growing, of
// one epoch; an idempotency key stores once and answers the first
// position, per channel; plain channels keep the zero position.
func TestHistoryPublish(t *testing.T) {
	t.Parallel()
	e, _ := startSingle(t, singleHistoryConfig())
	ctx := stepCtx(t)
	ps := publishN(t, e, "room:1", "m", 3)
	for i, p := range ps {
		if p.Epoch == "" || p.Epoch != ps[0].Epoch || i > 0 && p.Offset <= ps[i-1].Offset {
			t.Fatalf("positions %+v: want growing offsets of one epoch", ps)
		}
	}
	first, err := e.Publish(ctx, "room:1", Message{Data: []byte("once"), ID: "k1"})
	if err != nil {
		t.Fatal(err)
	}
	again, err := e.Publish(ctx, "room:1", Message{Data: []byte("once"), ID: "k1"})
	if err != nil || again != first {
		t.Fatalf("a retry with the same ID: %+v, %v; want %+v", again, err, first)
	}
	// The same key on another channel of the same stream is another message.
	var other Position
	for i := 0; ; i++ {
		ch := fmt.Sprint("room:x", i)
		if hs, _ := e.hist.lookup(ch); hs == e.mustLookup(t, "room:1") {
			if other, err = e.Publish(ctx, ch, Message{Data: []byte("once"), ID: "k1"}); err != nil {
				t.Fatal(err)
			}
			break
		}
	}
	if other == first {
		t.Fatalf("the same ID on another channel was taken for a duplicate: %+v", other)
	}
	page, err := e.History(ctx, "room:1", Position{}, 0)
	if err != nil || len(page.Messages) != 4 || string(page.Messages[3].Data) != "once" {
		t.Fatalf("history: %+v, %v; want the 3 messages and one \"once\"", page, err)
	}
	if s := e.Stats(); s.HistoryPublishes != 6 {
		t.Errorf("HistoryPublishes %d, want 6 (the duplicate counts: it was acknowledged)", s.HistoryPublishes)
	}
	if p, err := e.Publish(ctx, "plain", Message{Data: []byte("x")}); err != nil || !p.IsZero() {
		t.Fatalf("a plain channel: %+v, %v", p, err)
	}
	if c, ok := e.Channel("feed"); !ok || !c.Envelope {
		t.Fatalf("Channel(feed): %+v, %v", c, ok)
	}
	if _, ok := e.Channel("plain"); ok {
		t.Fatal("Channel(plain) says it has a history")
	}
	if _, err := e.History(ctx, "plain", Position{}, 0); !errors.Is(err, ErrNoHistory) {
		t.Fatalf("History of a plain channel: %v", err)
	}
}

func (e *natsEngine) mustLookup(t testing.TB, ch string) *histStream {
	hs, ok := e.hist.lookup(ch)
	if !ok {
		t.Fatalf("%s has no history", ch)
	}
	return hs
}

// Resume on one node: from now; from a position (everything after it,
// then live ones, no duplicate); past a trimmed history (recovered
// false, with what is left); with another epoch (recovered false,
// nothing); at the edge of the window (Size missed: recovered).
func TestResume(t *testing.T) {
	t.Parallel()
	e, h := startSingle(t, singleHistoryConfig())
	const ch = "room:r"
	early := newMember("early", ch)
	c := subscribe(t, e, h, early, Position{})
	if !c.Recovered || len(c.Missed) != 0 || c.Position.Epoch == "" {
		t.Fatalf("joining from now: %+v", c)
	}
	ps := publishN(t, e, ch, "a", 4)
	early.waitFor(t, 5*time.Second, "4 live messages", func(m *member) bool { return len(m.got) == 4 })
	if got := offsets(early.received()); !slices.Equal(got, offsets(deliveriesAt(ps))) {
		t.Fatalf("live: %v, want %v", got, offsets(deliveriesAt(ps)))
	}

	// A member that saw the first message comes back.
	late := newMember("late", ch)
	c = subscribe(t, e, h, late, ps[0])
	if !c.Recovered || !slices.Equal(offsets(c.Missed), offsets(deliveriesAt(ps[1:]))) || c.Position != ps[3] {
		t.Fatalf("resume from the first: %+v, want %v", c, ps[1:])
	}
	more := publishN(t, e, ch, "b", 2)
	late.waitFor(t, 5*time.Second, "2 more", func(m *member) bool { return len(m.got) == 5 })
	if got, want := offsets(late.received()), offsets(deliveriesAt(append(ps[1:], more...))); !slices.Equal(got, want) {
		t.Fatalf("late got %v, want %v", got, want)
	}

	// Size (5) missed: still recovered.
	all := append(ps, more...)
	edge := newMember("edge", ch)
	c = subscribe(t, e, h, edge, all[0])
	if !c.Recovered || len(c.Missed) != 5 {
		t.Fatalf("5 missed, the history's size: %+v", c)
	}
	// Six missed: the history no longer holds since, so it cannot tell
	// that it holds all six (it does).
	all = append(all, publishN(t, e, ch, "c", 1)...)
	six := newMember("six", ch)
	c = subscribe(t, e, h, six, all[0])
	if c.Recovered || !slices.Equal(offsets(c.Missed), offsets(deliveriesAt(all[1:]))) {
		t.Fatalf("6 missed of a history of 5: %+v; want recovered false and %v", c, all[1:])
	}
	// Seven missed: one is lost for good.
	all = append(all, publishN(t, e, ch, "d", 1)...)
	trimmed := newMember("trimmed", ch)
	c = subscribe(t, e, h, trimmed, all[0])
	if c.Recovered || !slices.Equal(offsets(c.Missed), offsets(deliveriesAt(all[2:]))) {
		t.Fatalf("7 missed of a history of 5: %+v; want recovered false and %v", c, all[2:])
	}
	// A position of another epoch.
	alien := newMember("alien", ch)
	c = subscribe(t, e, h, alien, Position{Offset: all[3].Offset, Epoch: "0123456789abcdef"})
	if c.Recovered || len(c.Missed) != 0 || c.Position != all[len(all)-1] {
		t.Fatalf("another epoch: %+v", c)
	}
	// History for backends: since a position, by pages.
	ctx := stepCtx(t)
	page, err := e.History(ctx, ch, all[3], 2)
	if err != nil || !page.Recovered || !page.More || !slices.Equal(offsets(page.Messages), offsets(deliveriesAt(all[4:6]))) {
		t.Fatalf("history page: %+v, %v", page, err)
	}
	page, err = e.History(ctx, ch, page.Position, 2)
	if err != nil || page.More || !slices.Equal(offsets(page.Messages), offsets(deliveriesAt(all[6:]))) {
		t.Fatalf("history, second page: %+v, %v", page, err)
	}
	if page, err = e.History(ctx, ch, all[0], 0); err != nil || page.Recovered {
		t.Fatalf("history past the trim: %+v, %v", page, err)
	}
	s := e.Stats()
	if s.Resumes != 6 || s.ResumesLost != 3 || s.Duplicates != 0 || s.Unrepairable != 0 {
		t.Errorf("stats: %+v", s)
	}
	if err := e.Resume(ctx, "room:none", ps[0], func(Catchup) {}); !errors.Is(err, ErrNoInterest) {
		t.Errorf("Resume without interest: %v", err)
	}
}

func deliveriesAt(ps []Position) []Delivery {
	out := make([]Delivery, len(ps))
	for i, p := range ps {
		out[i].Position = p
	}
	return out
}

// A node repairs what it missed of a channel: live messages dropped on
// their way (the test drops them in front of the node), in the middle
// (the next message shows the gap) and at the end (the quiet check
// finds it), are delivered from the stream, in order, once.
func TestGapRepair(t *testing.T) {
	t.Parallel()
	cfg := singleHistoryConfig()
	drops := newDropper(&cfg)
	e, h := startSingle(t, cfg)
	const ch = "feed"
	m := newMember("m", ch)
	subscribe(t, e, h, m, Position{})
	// Positions are stream sequences: with one channel on its stream,
	// the i-th publish is stored at start+i+1. Drop the 4th to 6th, and
	// the 10th, the last.
	start := m.position().Offset
	drops.drop(start+4, start+5, start+6, start+10)
	ps := publishN(t, e, ch, "g", 10)
	m.waitFor(t, 5*time.Second, "all 10", func(m *member) bool { return len(m.got) == 10 })
	if got := offsets(m.received()); !slices.Equal(got, offsets(deliveriesAt(ps))) {
		t.Fatalf("got %v, want %v", got, offsets(deliveriesAt(ps)))
	}
	for i, d := range m.received() {
		if string(d.Data) != fmt.Sprint("g", i) {
			t.Fatalf("message %d: %q", i, d.Data)
		}
	}
	// Four messages came from the stream and nothing else did, in at
	// least the two gaps. The counts may go past that on a slow machine,
	// with the same deliveries: a quiet check (HistoryCheck, 200 ms) that
	// falls between the publishes of the 4th to 6th repairs part of that
	// gap, and the 7th the rest (three gaps); one that reads the stream
	// after the 7th is stored but before its live copy arrives repairs it
	// too, and the live copy is then a duplicate.
	s := e.Stats()
	t.Logf("repaired %d messages in %d gaps, %d duplicates", s.Repaired, s.RepairedGaps, s.Duplicates)
	if s.Repaired-s.Duplicates != 4 || s.RepairedGaps < 2 || s.Unrepairable != 0 {
		t.Fatalf("stats: %+v (start %d, published %v)", s, start, ps)
	}
}

// A history stream lost (deleted here) is made again with a new epoch
// by the next publish: members go on with the new stream's messages,
// and a position of the old epoch resumes unrecovered. Whether the
// node's periodic check or the publish finds the stream gone first: with
// HistoryCheck an hour, the publish makes the stream again, and the
// node learns of the new epoch from there.
func TestEpochChange(t *testing.T) {
	t.Parallel()
	for _, check := range []time.Duration{200 * time.Millisecond, time.Hour} {
		t.Run(fmt.Sprint("check ", check), func(t *testing.T) {
			t.Parallel()
			cfg := singleHistoryConfig()
			cfg.HistoryCheck = check
			testEpochChange(t, cfg)
		})
	}
}

func testEpochChange(t *testing.T, cfg Config) {
	e, h := startSingle(t, cfg)
	const ch = "room:e"
	m := newMember("m", ch)
	subscribe(t, e, h, m, Position{})
	old := publishN(t, e, ch, "old", 3)
	m.waitFor(t, 5*time.Second, "3 messages", func(m *member) bool { return len(m.got) == 3 })
	ctx := stepCtx(t)
	if err := e.js.DeleteStream(ctx, e.mustLookup(t, ch).name); err != nil {
		t.Fatal(err)
	}
	fresh := publishN(t, e, ch, "new", 2)
	if fresh[0].Epoch == old[0].Epoch || fresh[0].Epoch == "" {
		t.Fatalf("epochs: old %q, new %q", old[0].Epoch, fresh[0].Epoch)
	}
	m.waitFor(t, 10*time.Second, "the 2 of the new stream", func(m *member) bool { return len(m.got) == 5 })
	got := m.received()[3:]
	for i, d := range got {
		if d.Position != fresh[i] || string(d.Data) != fmt.Sprint("new", i) {
			t.Fatalf("after the loss: %+v, want %+v", got, fresh)
		}
	}
	back := newMember("back", ch)
	c := subscribe(t, e, h, back, old[2])
	if c.Recovered || len(c.Missed) != 0 || c.Position.Epoch != fresh[0].Epoch {
		t.Fatalf("resuming from the old epoch: %+v", c)
	}
}

// A member comes back with a position this node has not reached (it saw
// the message on another node; here the node's live copy was lost and
// no check is due): the join waits until the node has delivered up to
// it, and the member gets nothing twice.
func TestResumeAheadOfNode(t *testing.T) {
	t.Parallel()
	cfg := singleHistoryConfig()
	cfg.HistoryCheck = time.Hour
	drops := newDropper(&cfg)
	e, h := startSingle(t, cfg)
	const ch = "feed"
	a := newMember("a", ch)
	subscribe(t, e, h, a, Position{})
	ps := publishN(t, e, ch, "x", 2)
	a.waitFor(t, 5*time.Second, "2 messages", func(m *member) bool { return len(m.got) == 2 })
	drops.drop(ps[1].Offset + 1)
	ps = append(ps, publishN(t, e, ch, "x", 1)...)
	b := newMember("b", ch)
	c := subscribe(t, e, h, b, ps[2])
	if !c.Recovered || len(c.Missed) != 0 || c.Position != ps[2] {
		t.Fatalf("joining ahead of the node: %+v, want at %+v with nothing missed", c, ps[2])
	}
	ps = append(ps, publishN(t, e, ch, "x", 1)...)
	b.waitFor(t, 5*time.Second, "the next message", func(m *member) bool { return len(m.got) == 1 })
	a.waitFor(t, 5*time.Second, "all 4", func(m *member) bool { return len(m.got) == 4 })
	if got := offsets(b.received()); !slices.Equal(got, []uint64{ps[3].Offset}) {
		t.Fatalf("b got %v, want only %d", got, ps[3].Offset)
	}
	if got := offsets(a.received()); !slices.Equal(got, offsets(deliveriesAt(ps))) {
		t.Fatalf("a got %v, want %v", got, offsets(deliveriesAt(ps)))
	}
}

// The sync setting reaches the embedded server's JetStream.
func TestSyncSetting(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		sync     string
		always   bool
		interval time.Duration
	}{{"", false, 2 * time.Minute}, {"always", true, 2 * time.Minute}, {"1s", false, time.Second}} {
		cfg := singleHistoryConfig()
		cfg.NATS.Embedded.Sync = tc.sync
		e, _ := startSingle(t, cfg)
		js := e.srv.ns.JetStreamConfig()
		if js.SyncAlways != tc.always || js.SyncInterval != tc.interval {
			t.Errorf("sync %q: SyncAlways %v, SyncInterval %v", tc.sync, js.SyncAlways, js.SyncInterval)
		}
		publishN(t, e, "room:s", "s", 3)
	}
}

// Resume past Config.ResumeLimit: a member that missed more messages
// than the limit is told recovered false, given none of them, and goes
// on from the channel's position without a hole; one that missed the
// limit exactly gets them all. A position of the stream's epoch past
// every message (a client that is wrong) is not recovered either.
func TestResumeLimit(t *testing.T) {
	t.Parallel()
	cfg := Config{Channels: []ChannelConfig{{Match: "big", History: HistoryConfig{Size: 100}}}, ResumeLimit: 5}
	e, h := startSingle(t, cfg)
	const ch = "big"
	first := newMember("first", ch)
	subscribe(t, e, h, first, Position{})
	ps := publishN(t, e, ch, "p", 8)
	first.waitFor(t, 5*time.Second, "8 messages", func(m *member) bool { return len(m.got) == 8 })

	exact := newMember("exact", ch)
	c := subscribe(t, e, h, exact, ps[2])
	if !c.Recovered || !slices.Equal(offsets(c.Missed), offsets(deliveriesAt(ps[3:]))) {
		t.Fatalf("5 missed, the limit: %+v; want recovered and %v", c, offsets(deliveriesAt(ps[3:])))
	}
	over := newMember("over", ch)
	c = subscribe(t, e, h, over, ps[0])
	if c.Recovered || len(c.Missed) != 0 || c.Position != ps[7] {
		t.Fatalf("7 missed, over the limit of 5: %+v; want recovered false, nothing, at %+v", c, ps[7])
	}
	wrong := newMember("wrong", ch)
	c = subscribe(t, e, h, wrong, Position{Offset: ps[7].Offset + 1000, Epoch: ps[7].Epoch})
	if c.Recovered || len(c.Missed) != 0 || c.Position != ps[7] {
		t.Fatalf("a position past every message: %+v; want recovered false, nothing, at %+v", c, ps[7])
	}
	more := publishN(t, e, ch, "q", 2)
	for _, m := range []*member{over, wrong} {
		m.waitFor(t, 5*time.Second, "2 more", func(m *member) bool { return len(m.got) == 2 })
		if got := offsets(m.received()); !slices.Equal(got, offsets(deliveriesAt(more))) {
			t.Fatalf("%s then got %v, want %v", m.name, got, offsets(deliveriesAt(more)))
		}
	}
}

// Resume on a channel this node has no interest in yet (the member's
// first node had it; this one starts now): the join waits for the
// channel to start, then gets what was published meanwhile, and the
// live messages after, each once.
func TestResumeColdChannel(t *testing.T) {
	t.Parallel()
	e, h := startSingle(t, singleHistoryConfig())
	const ch = "room:cold"
	ps := publishN(t, e, ch, "c", 3)
	m := newMember("m", ch)
	c := subscribe(t, e, h, m, ps[0])
	if !c.Recovered || !slices.Equal(offsets(c.Missed), offsets(deliveriesAt(ps[1:]))) || c.Position != ps[2] {
		t.Fatalf("resume on a cold channel: %+v, want %v at %+v", c, offsets(deliveriesAt(ps[1:])), ps[2])
	}
	more := publishN(t, e, ch, "d", 2)
	m.waitFor(t, 5*time.Second, "2 live", func(m *member) bool { return len(m.got) == 4 })
	if got, want := offsets(m.received()), offsets(deliveriesAt(append(ps[1:], more...))); !slices.Equal(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
}

// A message the node missed, which the stream does not show at first
// (its replicas and a leader just elected not having applied it yet):
// the node reads again until it does, and delivers it in its place;
// it does not pass it for trimmed.
func TestGapNotShownYet(t *testing.T) {
	t.Parallel()
	cfg := singleHistoryConfig()
	drops := newDropper(&cfg)
	var hidden atomic.Uint64
	var shown atomic.Bool
	cfg.testHideStored = func(seq uint64) bool { return seq == hidden.Load() && !shown.Load() }
	e, h := startSingle(t, cfg)
	const ch = "feed"
	m := newMember("m", ch)
	subscribe(t, e, h, m, Position{})
	start := m.position().Offset
	drops.drop(start + 2)
	hidden.Store(start + 2)
	time.AfterFunc(500*time.Millisecond, func() { shown.Store(true) })
	ps := publishN(t, e, ch, "n", 4)
	m.waitFor(t, 5*time.Second, "all 4", func(m *member) bool { return len(m.got) == 4 })
	if got := offsets(m.received()); !slices.Equal(got, offsets(deliveriesAt(ps))) {
		t.Fatalf("got %v, want %v", got, offsets(deliveriesAt(ps)))
	}
	if s := e.Stats(); s.Unrepairable != 0 || s.Repaired != 1 {
		t.Fatalf("stats: %+v", s)
	}
}

// TestHistoryReplicaBehind: a history page read while the replica that
// answers the Direct Get lacks the channel's messages (one just back
// from a fault) still holds every acknowledged message: the page reads
// on from the leader up to the leader's last. CI saw an empty page of a
// channel with 12 acknowledged messages this way.
func TestHistoryReplicaBehind(t *testing.T) {
	t.Parallel()
	cfg := singleHistoryConfig()
	var behind atomic.Bool
	cfg.testReplicaLacks = func(uint64) bool { return behind.Load() }
	e, _ := startSingle(t, cfg)
	const ch = "room:lag"
	ps := publishN(t, e, ch, "l", 5)
	behind.Store(true)
	page, err := e.History(stepCtx(t), ch, Position{}, 0)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := offsets(page.Messages), offsets(deliveriesAt(ps)); !slices.Equal(got, want) {
		t.Fatalf("history with the replica behind: %v, want %v", got, want)
	}
	page, err = e.History(stepCtx(t), ch, ps[1], 2)
	if err != nil || !page.Recovered || !slices.Equal(offsets(page.Messages), offsets(deliveriesAt(ps[2:4]))) || !page.More {
		t.Fatalf("a page from the second message: %+v, %v", page, err)
	}
}

// TestHistoryPublishUnanswered: a history publish that no stream answers
// in time fails with ErrNotAcknowledged once Config.CallTimeout has
// passed since its sending; one answered "no responders" is sent again
// until then; one still waiting when the engine closes fails at once.
// Each is settled exactly once.
func TestHistoryPublishUnanswered(t *testing.T) {
	t.Parallel()
	cfg := singleHistoryConfig()
	cfg.CallTimeout = 500 * time.Millisecond
	e, _ := startSingle(t, cfg)
	// Another connection: the engine's does not hear its own publishes.
	nc, err := nats.Connect("", nats.InProcessServer(e.srv.ns))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	swallowed := make(chan *nats.Msg, 16)
	if _, err := nc.ChanSubscribe("lws.t.swallow", swallowed); err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	type result struct {
		err  error
		took time.Duration
	}
	publish := func(subj string) chan result {
		out := make(chan result, 2) // a second settlement would show
		began := time.Now()
		p := &histPub{hs: e.mustLookup(t, "room:1"), msg: nats.NewMsg(subj), deadline: began.Add(cfg.CallTimeout),
			done: func(_ Position, err error) { out <- result{err, time.Since(began)} }}
		id, err := e.addPub(p)
		if err != nil {
			t.Fatal(err)
		}
		e.sendPub(id, p)
		return out
	}
	settled := func(what string, ch chan result, want error) time.Duration {
		t.Helper()
		var r result
		select {
		case r = <-ch:
		case <-time.After(10 * time.Second):
			t.Fatalf("%s: not settled", what)
		}
		if !errors.Is(r.err, ErrNotAcknowledged) || !errors.Is(r.err, want) {
			t.Fatalf("%s: %v, want ErrNotAcknowledged and %v", what, r.err, want)
		}
		return r.took
	}

	unanswered := publish("lws.t.swallow")
	if took := settled("unanswered", unanswered, errTimeout); took < cfg.CallTimeout {
		t.Errorf("unanswered: failed after %v, before CallTimeout", took)
	}
	if len(swallowed) != 1 {
		t.Errorf("unanswered: sent %d times, want once", len(swallowed))
	}
	if took := settled("no responders", publish("lws.t.nobody"), nats.ErrNoResponders); took < cfg.CallTimeout-100*time.Millisecond {
		t.Errorf("no responders: failed after %v, want it retried until about CallTimeout", took)
	}

	waiting := publish("lws.t.swallow")
	<-swallowed
	closed := time.Now()
	if err := e.Close(stepCtx(t)); err != nil {
		t.Fatal(err)
	}
	settled("closed", waiting, ErrClosed)
	if time.Since(closed) >= cfg.CallTimeout {
		t.Errorf("closed: settled %v after Close, not at once", time.Since(closed))
	}
	time.Sleep(cfg.CallTimeout) // a second settlement, by the sweep, would have come by now
	if len(unanswered) > 0 || len(waiting) > 0 {
		t.Errorf("settled twice: %d, %d more", len(unanswered), len(waiting))
	}
}

// TestParsePubAck: a stream's usual answer is read directly; the others
// (a duplicate, a domain, an error, not an answer) as encoding/json reads
// them.
func TestParsePubAck(t *testing.T) {
	for in, want := range map[string]struct {
		stream string
		seq    uint64
		code   int // the APIError's, or -1 for ErrInvalidJSAck
	}{
		`{"stream":"LWS_t_H_0","seq":42}`:                                  {"LWS_t_H_0", 42, 0},
		`{"stream":"S","seq":7,"duplicate": true}`:                         {"S", 7, 0},
		`{"stream":"S", "domain":"d", "seq":9}`:                            {"S", 9, 0},
		`{"stream":"S","seq":3,"batch":"b","count":2}`:                     {"S", 3, 0},
		`{"error":{"code":503,"err_code":10077,"description":"too many"}}`: {"", 0, 10077},
		`{"stream":"S","seq":0}`:                                           {"", 0, -1},
		`{"stream":"S","seq":x}`:                                           {"", 0, -1},
		`not json`:                                                         {"", 0, -1},
	} {
		stream, seq, err := parsePubAck([]byte(in))
		var api *jetstream.APIError
		switch {
		case want.code == -1 && !errors.Is(err, jetstream.ErrInvalidJSAck),
			want.code > 0 && (!errors.As(err, &api) || int(api.ErrorCode) != want.code),
			want.code == 0 && (err != nil || string(stream) != want.stream || seq != want.seq):
			t.Errorf("%s: %q %d %v, want %+v", in, stream, seq, err, want)
		}
	}
}
