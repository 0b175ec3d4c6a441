package cluster

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// A history publish and a history read through a node cut off from the
// stream's leader (what a node sees during the stream's election, or a
// partition: no answer, no responders, "JetStream system temporarily
// unavailable") are tried again until the caller's deadline, not given
// up after one try of Config.CallTimeout: a node back within the
// deadline stores the message, once, and reads the history. A deadline
// that passes first gets ErrNotAcknowledged or ErrUnavailable, saying
// how long it was tried. (TestHistoryChecker's "trimmed on purpose",
// right after the checker's elections, was seen failing on a history
// read answered "JetStream system temporarily unavailable", then on a
// publish not acknowledged in time.)
func TestHistoryOutageWithinDeadline(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("cuts a node off for several seconds")
	}
	c := startCluster(t, 3, 30*time.Second, func(nd *tnode) {
		nd.cfg.Channels = []ChannelConfig{{Match: "h:*", History: HistoryConfig{Size: 100}}}
		nd.cfg.HistoryShards = 1
	})
	const ch = "h:x"
	before := publishN(t, c.nodes[0].eng, ch, "before", 1)
	nd := c.follower()
	callTimeout := nd.eng.cfg.CallTimeout
	c.f.cut(nd.name)
	healed := false
	defer func() {
		if !healed {
			c.f.heal(nd.name)
		}
	}()

	// The deadline passes first: a clear error, after more than one try.
	short := 2*callTimeout + callTimeout/2
	ctx, cancel := context.WithTimeout(context.Background(), short)
	began := time.Now()
	_, err := nd.eng.Publish(ctx, ch, Message{Data: []byte("late")})
	waited := time.Since(began)
	cancel()
	if !errors.Is(err, ErrNotAcknowledged) || !strings.Contains(err.Error(), "tries") || waited < short-callTimeout/4 {
		t.Errorf("a publish cut off past its deadline of %v: %v after %v; want ErrNotAcknowledged saying its tries, at the deadline",
			short, err, waited)
	}
	ctx, cancel = context.WithTimeout(context.Background(), short)
	began = time.Now()
	_, err = nd.eng.History(ctx, ch, Position{}, 0)
	waited = time.Since(began)
	cancel()
	if !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "tries") || waited < short-callTimeout/4 {
		t.Errorf("a history read cut off past its deadline of %v: %v after %v; want ErrUnavailable saying its tries, at the deadline",
			short, err, waited)
	}

	// Back within the deadline: both succeed, the message stored once.
	ctx, cancel = context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	var pos Position
	var page HistoryPage
	var perr, herr error
	wg.Add(2)
	go func() {
		defer wg.Done()
		pos, perr = nd.eng.Publish(ctx, ch, Message{Data: []byte("through")})
	}()
	go func() {
		defer wg.Done()
		page, herr = nd.eng.History(ctx, ch, Position{}, 0)
	}()
	time.Sleep(3 * callTimeout) // the rest of the outage: both are trying meanwhile
	c.f.heal(nd.name)
	healed = true
	wg.Wait()
	if perr != nil || herr != nil {
		t.Fatalf("through a node back within the deadline: publish %v, history read %v", perr, herr)
	}
	if len(page.Messages) == 0 || page.Messages[0].Position != before[0] {
		t.Errorf("history read through the node: %+v; want %+v first", page.Messages, before[0])
	}
	if at := storedAt(t, c.nodes[0].eng, ch, "through"); len(at) != 1 || at[0] != pos {
		t.Errorf("the message published through the outage is stored at %v; want once, at %+v", at, pos)
	}
}

// A publish stored but not acknowledged (its leader died before it
// answered) is sent again by Publish until its deadline, and stored
// once: a message without an ID is given one of the node's.
func TestHistoryPublishAckLost(t *testing.T) {
	t.Parallel()
	cfg := singleHistoryConfig()
	cfg.CallTimeout = 300 * time.Millisecond
	var dropping atomic.Bool
	var dropped atomic.Uint64 // the sequence whose acknowledgement was dropped
	cfg.testDropAck = func(seq uint64) bool { return dropping.Load() && dropped.CompareAndSwap(0, seq) }
	e, _ := startSingle(t, cfg)
	const ch = "room:ack"
	publishN(t, e, ch, "before", 1)
	dropping.Store(true)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	pos, err := e.Publish(ctx, ch, Message{Data: []byte("once")})
	if err != nil {
		t.Fatal(err)
	}
	if dropped.Load() == 0 {
		t.Fatal("no acknowledgement was dropped")
	}
	if at := storedAt(t, e, ch, "once"); len(at) != 1 || at[0] != pos {
		t.Errorf("a publish whose first acknowledgement was lost is stored at %v; want once, at %+v", at, pos)
	}
}

// storedAt is where channel's history holds messages of data data.
func storedAt(t *testing.T, e Engine, channel, data string) []Position {
	t.Helper()
	page, err := e.History(stepCtx(t), channel, Position{}, 0)
	if err != nil {
		t.Fatal(err)
	}
	var at []Position
	for _, d := range page.Messages {
		if string(d.Data) == data {
			at = append(at, d.Position)
		}
	}
	return at
}
