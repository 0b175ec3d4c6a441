package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// The durable disconnect-hook queue is the work-queue stream
// LWS_<cluster>_HOOKS (subject lws.<cluster>.hook.disconnect), one
// message per link, de-duplicated by link (Nats-Msg-Id disc-<link id>)
// within its duplicate window, and one durable pull consumer,
// "disconnect", that every node's RunHooks pulls from: a hook is handed
// to one node at a time, removed once that node acknowledges it (the
// backend took it), offered again after a backoff if the backend
// refused it, and after HookAckWait if the node died with it.
//
// A hook is queued before its link record is settled, by whoever
// settles it (LinkClosed, or a reaper): if the queuer dies in between,
// the record is still open, and the dead node's reaper (or, for a
// reaper, its own reaper) queues it again under the same id, within the
// window: the queue keeps one.
//
// A hook the backend took is marked sent, in the link records' bucket
// (key hook.<link id>, with a TTL of settledTTL), before it is
// acknowledged; both are tried for settleFor, through the elections
// that follow a node's death. One the backend refused is marked refused
// (one try). A hook offered again (its acknowledgement was lost, or its
// node died between the two, or the backend refused it) is looked up
// there first: marked sent, it is acknowledged without a second send;
// marked refused, it is sent at once; not marked, it is looked up again
// after hookRecheck (its first sender may still be trying to mark it).
// The backend gets a hook twice only if its sender died between the
// send and the mark, or the bucket did not answer for settleFor.

// Disconnect is one disconnect hook in the queue.
//
// Concurrency: a value; Data is shared, read only.
type Disconnect struct {
	Link   uint64    `json:"link"`
	Code   int       `json:"code"`
	Reason string    `json:"reason,omitempty"`
	At     time.Time `json:"at"` // when the link closed, or was found lost
	// Data is the gateway's: what it gave LinkClosed, or for a link the
	// reaper settled (Lost), what it gave LinkOpened.
	Data []byte `json:"data,omitempty"`
	// Lost: the link's node died; the reaper of the node queued this,
	// with code 1006 and reason "gateway node lost".
	Lost bool `json:"lost,omitempty"`
	// Seq and Attempt are set by RunHooks: the hook's sequence in the
	// queue, and which delivery of it this is (from 1). A hook delivered
	// more than once (its acknowledgement was lost, or its node died
	// sending it) has the same Seq, and the same Link: the backend can
	// tell.
	Seq     uint64 `json:"-"`
	Attempt int    `json:"-"`
}

// HookSender sends one disconnect hook to the backend; nil means it was
// delivered. It may run on several goroutines at once (Workers).
type HookSender func(ctx context.Context, d Disconnect) error

// HookRunOptions tune RunHooks.
//
// Concurrency: a value.
type HookRunOptions struct {
	// Workers is how many hooks this node sends at once. 0: 4.
	Workers int
	// MaxAttempts gives a hook up after this many failed sends (it is
	// logged and counted in Stats.HooksDropped). 0: never.
	MaxAttempts int
	// Backoff is the wait after the first failed send of a hook,
	// doubling with each further one up to a minute. 0: 1s.
	Backoff time.Duration
}

const (
	hookConsumer    = "disconnect"
	lostCode        = 1006
	lostReason      = "gateway node lost"
	maxHookBackoff  = time.Minute
	defaultWorkers  = 4
	defaultBackoff  = time.Second
	hookPullWait    = time.Second
	maxHookInFlight = 1024 // the consumer's MaxAckPending, over every node
	// electionWait bounds a JetStream leader election after a node's
	// death or a partition's heal (5 to 10 s seen here, under -race).
	electionWait = 15 * time.Second
	// hookRecheck is longer than the longest pause between two tries of
	// the mark (retry's backoff: 1 s) and one try's CallTimeout.
	hookRecheck = 2 * time.Second
)

// settleFor is how long a node tries to mark a hook sent, and then to
// acknowledge it: 2/3 of HookAckWait (while its ticker keeps the hook
// the node's), and at least an election.
func (e *natsEngine) settleFor() time.Duration {
	return max(e.cfg.HookAckWait*2/3, electionWait)
}

func (o HookRunOptions) withDefaults() HookRunOptions {
	if o.Workers <= 0 {
		o.Workers = defaultWorkers
	}
	if o.Backoff <= 0 {
		o.Backoff = defaultBackoff
	}
	return o
}

// backoff is the wait after the attempt-th failed send.
func (o HookRunOptions) backoff(attempt int) time.Duration {
	d := o.Backoff
	for i := 1; i < attempt && d < maxHookBackoff; i++ {
		d *= 2
	}
	return min(d, maxHookBackoff)
}

// hookWindow is the queue's duplicate window: long enough to cover the
// longest time between two queueings of one link's hook, a queuer's
// death and its reaper (Lease, then ReapAfter, then the claim), with
// room for an election; at least JetStream's default of 2 minutes.
func hookWindow(cfg Config) time.Duration {
	return max(2*time.Minute, 3*(cfg.Lease+cfg.ReapAfter))
}

// hookQueue is the engine's handle on the queue.
// Concurrency: immutable after openHookQueue.
type hookQueue struct {
	stream, subj string
}

func (e *natsEngine) openHookQueue(ctx context.Context) error {
	e.hq = hookQueue{stream: "LWS_" + e.cfg.Name + "_HOOKS", subj: e.pre + "hook.disconnect"}
	scfg := jetstream.StreamConfig{
		Name:        e.hq.stream,
		Description: "lwsgate disconnect hooks waiting for the backend, one per link",
		Subjects:    []string{e.hq.subj},
		Retention:   jetstream.WorkQueuePolicy,
		Storage:     jetstream.FileStorage,
		Replicas:    e.replicas,
		Duplicates:  hookWindow(e.cfg),
		MaxMsgs:     -1,
		MaxBytes:    -1,
	}
	ccfg := jetstream.ConsumerConfig{
		Durable:       hookConsumer,
		Description:   "every node's RunHooks",
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       e.cfg.HookAckWait,
		MaxDeliver:    -1,
		MaxAckPending: maxHookInFlight,
		FilterSubject: e.hq.subj,
	}
	for {
		actx, cancel := context.WithTimeout(ctx, 2*time.Second)
		_, err := e.js.CreateStream(actx, scfg)
		if errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
			_, err = e.js.UpdateStream(actx, scfg)
		}
		if err == nil {
			_, err = e.js.CreateOrUpdateConsumer(actx, e.hq.stream, ccfg)
		}
		cancel()
		if err == nil {
			return nil
		}
		if pause(ctx, 100*time.Millisecond) != nil {
			return fmt.Errorf("cluster: opening the disconnect hook queue %s: %w", e.hq.stream, err)
		}
	}
}

// EnqueueHook queues d: see Engine.EnqueueHook. It retries until ctx
// is done: a retry of a hook already queued is dropped by the queue.
func (e *natsEngine) EnqueueHook(ctx context.Context, d Disconnect) error {
	if d.At.IsZero() {
		d.At = time.Now()
	}
	body, err := json.Marshal(d)
	if err != nil {
		return err
	}
	id := "disc-" + strconv.FormatUint(d.Link, 10)
	err = e.retry(ctx, func(ctx context.Context) error {
		_, err := e.js.PublishMsg(ctx, &nats.Msg{Subject: e.hq.subj, Data: body}, jetstream.WithMsgID(id))
		return err
	})
	if err != nil {
		return fmt.Errorf("cluster: queueing the disconnect hook of link %d: %w", d.Link, err)
	}
	e.count.hooksQueued.Add(1)
	return nil
}

// RunHooks delivers queued hooks: see Engine.RunHooks. Each worker
// pulls one hook at a time from the shared consumer.
func (e *natsEngine) RunHooks(ctx context.Context, o HookRunOptions, send HookSender) error {
	o = o.withDefaults()
	return runWorkers(ctx, e.life, o.Workers, func(ctx context.Context) { e.hookWorker(ctx, o, send) })
}

// runWorkers runs n workers, each until it returns, with a context that
// ends with ctx or with life (the engine's): RunHooks for both engines.
// It returns ErrClosed when life ended, else nil.
func runWorkers(ctx, life context.Context, n int, work func(context.Context)) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer context.AfterFunc(life, cancel)()
	var wg sync.WaitGroup
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			work(ctx)
		}()
	}
	wg.Wait()
	if life.Err() != nil {
		return ErrClosed
	}
	return nil
}

func (e *natsEngine) hookWorker(ctx context.Context, o HookRunOptions, send HookSender) {
	var cons jetstream.Consumer
	for ctx.Err() == nil {
		if cons == nil {
			c, err := e.js.Consumer(ctx, e.hq.stream, hookConsumer)
			if err != nil {
				e.log.Debug("cluster: opening the disconnect hook consumer failed", "err", err)
				_ = pause(ctx, 250*time.Millisecond)
				continue
			}
			cons = c
		}
		batch, err := cons.Fetch(1, jetstream.FetchMaxWait(hookPullWait))
		if err != nil {
			e.log.Debug("cluster: pulling a disconnect hook failed", "err", err)
			if errors.Is(err, jetstream.ErrConsumerNotFound) || errors.Is(err, jetstream.ErrStreamNotFound) {
				cons = nil
			}
			_ = pause(ctx, 100*time.Millisecond)
			continue
		}
		for msg := range batch.Messages() {
			e.sendHook(ctx, o, send, msg)
		}
		if err := batch.Error(); err != nil && !errors.Is(err, nats.ErrTimeout) && ctx.Err() == nil {
			e.log.Debug("cluster: pulling a disconnect hook failed", "err", err)
			_ = pause(ctx, 100*time.Millisecond)
		}
	}
}

// sendHook sends one hook and settles it with the queue.
func (e *natsEngine) sendHook(ctx context.Context, o HookRunOptions, send HookSender, msg jetstream.Msg) {
	var d Disconnect
	if err := json.Unmarshal(msg.Data(), &d); err != nil {
		e.log.Error("cluster: a disconnect hook in the queue cannot be read; dropped", "err", err)
		_ = msg.Term()
		return
	}
	d.Attempt = 1
	if md, err := msg.Metadata(); err == nil {
		d.Seq, d.Attempt = md.Sequence.Stream, int(md.NumDelivered)
	}
	// Keep the hook this node's while the backend takes its time.
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		t := time.NewTicker(e.cfg.HookAckWait / 3)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				if fail := e.cfg.testFailProgress; fail == nil || !fail(d.Attempt) {
					_ = msg.InProgress()
				}
			}
		}
	}()
	if d.Attempt > 1 && e.hookSent(ctx, d.Link) {
		e.count.hooksNotResent.Add(1)
		e.settleHook(d, msg)
		return
	}
	err := send(ctx, d)
	if err == nil {
		e.count.hooksDelivered.Add(1)
		e.settleHook(d, msg)
		return
	}
	e.count.hookFailures.Add(1)
	e.markRefused(d.Link)
	switch {
	case ctx.Err() != nil:
		_ = msg.Nak() // stopping: let another node have it now
	case o.MaxAttempts > 0 && d.Attempt >= o.MaxAttempts:
		e.count.hooksDropped.Add(1)
		e.log.Error("cluster: disconnect hook given up", "link", d.Link, "attempts", d.Attempt, "err", err)
		_ = msg.Term()
	default:
		_ = msg.NakWithDelay(o.backoff(d.Attempt))
	}
}

// hookMarkKey is the key in the link records' bucket that says whether
// the backend took link's hook (markHook).
func hookMarkKey(link uint64) string { return "hook." + strconv.FormatUint(link, 10) }

// The marks of a hook: the value of its hookMarkKey starts with one,
// then names the marking node.
const (
	hookMarkSent    = "sent "
	hookMarkRefused = "refused "
)

// markHook writes link's hook mark, whatever it was before.
func (e *natsEngine) markHook(ctx context.Context, link uint64, mark string) error {
	return e.recs.put(ctx, hookMarkKey(link), []byte(mark+e.cfg.Node), settledTTL)
}

// markRefused marks a hook the backend refused, in one try: its next
// offer is then sent without waiting for hookRecheck.
func (e *natsEngine) markRefused(link uint64) {
	ctx, cancel := context.WithTimeout(e.life, e.cfg.CallTimeout)
	defer cancel()
	_ = e.markHook(ctx, link, hookMarkRefused)
}

// settleHook marks a hook the backend took as sent, then acknowledges
// it, each tried again for settleFor: the bucket and the consumer have
// no leader for a few seconds during an election.
func (e *natsEngine) settleHook(d Disconnect, msg jetstream.Msg) {
	ctx, cancel := context.WithTimeout(e.life, e.settleFor())
	err := e.retry(ctx, func(ctx context.Context) error {
		if fail := e.cfg.testFailMark; fail != nil && fail() {
			return nats.ErrNoResponders
		}
		return e.markHook(ctx, d.Link, hookMarkSent)
	})
	cancel()
	if err != nil {
		e.log.Warn("cluster: marking a delivered disconnect hook sent failed", "link", d.Link, "err", err)
	}
	ctx, cancel = context.WithTimeout(e.life, e.settleFor())
	defer cancel()
	if err := e.retry(ctx, func(ctx context.Context) error { return e.ackHook(ctx, d, msg) }); err != nil {
		e.log.Warn("cluster: acknowledging a delivered disconnect hook failed", "link", d.Link, "err", err)
	}
}

// hookSent says whether a hook offered again was marked sent: looked up,
// and if not marked at all, looked up again after hookRecheck. A bucket
// that does not answer for settleFor counts as not marked: the hook is
// sent again rather than lost.
func (e *natsEngine) hookSent(ctx context.Context, link uint64) bool {
	ctx, cancel := context.WithTimeout(ctx, e.settleFor())
	defer cancel()
	var sent, marked bool
	look := func(ctx context.Context) error {
		ent, found, err := e.recs.last(ctx, hookMarkKey(link))
		marked = found && ent.live
		sent = marked && strings.HasPrefix(string(ent.val), hookMarkSent)
		return err
	}
	err := e.retry(ctx, look)
	if err == nil && !marked && pause(ctx, hookRecheck) == nil {
		err = e.retry(ctx, look)
	}
	if err != nil {
		e.log.Warn("cluster: looking up whether a disconnect hook offered again was sent failed; sending it", "link", link, "err", err)
		return false
	}
	return sent
}

// ackHook acknowledges a delivered hook and waits for the queue's
// answer (one acknowledged already is done).
func (e *natsEngine) ackHook(ctx context.Context, d Disconnect, msg jetstream.Msg) error {
	if fail := e.cfg.testFailAck; fail != nil && fail(d.Attempt) {
		return nats.ErrNoResponders
	}
	if err := msg.DoubleAck(ctx); err != nil && !errors.Is(err, jetstream.ErrMsgAlreadyAckd) {
		return err
	}
	return nil
}
