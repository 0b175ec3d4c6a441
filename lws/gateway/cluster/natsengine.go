package cluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Bucket settings. Expiry markers in the registry say "this lease
// expired" to nodes that start later, so that a node that died while no
// survivor watched is still reaped: they live a day. A settled link
// record (a tombstone naming who settled it) only has to outlive the
// retries of its owner's LinkClosed.
const (
	registryMarkerTTL = 24 * time.Hour
	recordMarkerTTL   = time.Minute
	settledTTL        = time.Hour
	maxInflightCalls  = 256 // handlers running at once; more requests wait
	// maxPendingPublishes bounds the history publishes awaiting their
	// acknowledgement; beyond it PublishAsync waits up to pubStallWait,
	// then fails.
	maxPendingPublishes = 1 << 16
)

// natsEngine is the engine on NATS: an embedded server or an external
// one, core subjects for channels and calls, two JetStream KV buckets
// for the registry and the link records. See doc.go for the model.
//
// Concurrency: safe from any goroutine. Its goroutines: the renewal
// loop, the registry watcher and its audit, the delivery loop, the event
// loop, one per request being served, and one per reap.
type natsEngine struct {
	cfg      Config
	hooks    Hooks
	log      *slog.Logger
	srv      *embeddedServer // nil: external NATS
	nc       *nats.Conn
	js       jetstream.JetStream
	reg      *store // registry: incarnation counter, leases, names
	recs     *store // link records
	pre      string // "lws.<cluster>."
	handlers handlers
	count    counters
	events   eventQueue
	calls    chan struct{} // semaphore of maxInflightCalls

	life context.Context // ends at Close
	stop context.CancelFunc
	wg   sync.WaitGroup

	// down mirrors fenced || closed, and cur mirrors inc, for the hot
	// path (Publish).
	down atomic.Bool
	cur  atomic.Uint32

	mu         sync.Mutex // guards what follows
	inc        Incarnation
	leaseRev   uint64
	nameRev    uint64
	renewedAt  time.Time // when the last successful renewal was sent
	fenced     bool
	closed     bool
	reqSub     *nats.Subscription
	view       map[Incarnation]*peer       // live nodes
	reaps      map[Incarnation]*time.Timer // dead nodes waiting for the grace period
	reaping    int                         // reaps running
	maxInc     Incarnation                 // highest incarnation seen
	unfinished map[Incarnation]Incarnation // dead incarnation -> its reaper, claims not done
	watchReset context.CancelFunc
	rejoinMu   sync.Mutex // one Rejoin at a time

	ch  channels
	pub publisher
	rec records

	// Channel history (history.go, histchan.go, resume.go, fetch.go).
	replicas   int           // of the cluster's streams
	hist       *history      // immutable
	pubs       publishes     // history publishes awaiting their acknowledgement (histpub.go)
	pubIDs     atomic.Uint64 // numbers Publish's own message IDs
	inbox      inbox
	ops        opQueue                // to the delivery goroutine
	epochReads map[*histStream]bool   // the delivery goroutine's
	epochsSet  map[*histStream]string // the delivery goroutine's: the epoch resetStream last brought a stream's channels to

	hq hookQueue // durable disconnect hooks (hookqueue.go)
}

func openNATS(ctx context.Context, cfg Config, h Hooks) (_ *natsEngine, err error) {
	e := &natsEngine{
		cfg:   cfg,
		hooks: h,
		log:   h.Logger.With("cluster", cfg.Name, "node", cfg.Node),
		pre:   "lws." + cfg.Name + ".",
		calls: make(chan struct{}, maxInflightCalls),
		view:  map[Incarnation]*peer{},
		reaps: map[Incarnation]*time.Timer{},
		hist:  newHistory(cfg),

		epochReads: map[*histStream]bool{},
		epochsSet:  map[*histStream]string{},
		unfinished: map[Incarnation]Incarnation{},
	}
	e.life, e.stop = context.WithCancel(context.Background())
	e.ch.init(cfg.DeliverQueue)
	e.ops.init()
	e.ch.ops, e.ch.endHistory = &e.ops, e.endHistory
	defer func() {
		if err != nil {
			e.stop()
			e.wg.Wait()
			if e.nc != nil {
				e.nc.Close()
			}
			if e.srv != nil {
				e.srv.shutdown()
			}
		}
	}()

	replicas := cfg.NATS.Replicas
	opts := []nats.Option{
		nats.Name("lwsgate " + cfg.Node),
		nats.NoEcho(), // a node delivers its own publishes itself
		nats.MaxReconnects(-1),
		nats.ErrorHandler(e.natsError),
	}
	if cfg.NATS.URL == "" {
		if e.srv, err = startEmbedded(ctx, cfg, e.log); err != nil {
			return nil, err
		}
		if cfg.testServer != nil {
			cfg.testServer(e.srv)
		}
		if replicas == 0 {
			replicas = 1
			if len(cfg.NATS.Embedded.Routes) >= 3 {
				replicas = 3
			}
		}
		e.nc, err = nats.Connect("", append(opts, nats.InProcessServer(e.srv.ns))...)
	} else {
		e.nc, err = nats.Connect(cfg.NATS.URL, opts...)
	}
	if err != nil {
		return nil, fmt.Errorf("cluster: connecting to NATS: %w", err)
	}
	if replicas == 0 {
		replicas = 1
		if e.nc.ConnectedClusterName() != "" {
			replicas = 3
		}
	}
	if e.js, err = jetstream.New(e.nc); err != nil {
		return nil, err
	}
	e.replicas = replicas
	if err = e.inbox.open(e.nc); err != nil {
		return nil, err
	}
	if err = e.openPublishes(); err != nil {
		return nil, err
	}
	// JetStream answers once its meta leader is elected: in a new
	// cluster, once a majority of the nodes are up.
	bucket := func(name, what string, markerTTL time.Duration) (*store, error) {
		return retryOpen(ctx, e.js, jetstream.KeyValueConfig{
			Bucket: name, Description: what, History: 1, Storage: jetstream.FileStorage,
			Replicas: replicas, LimitMarkerTTL: markerTTL,
		})
	}
	if e.reg, err = bucket("lws_"+cfg.Name, "lwsgate cluster registry: incarnation counter, node leases, node names", registryMarkerTTL); err != nil {
		return nil, err
	}
	if e.recs, err = bucket("lws_"+cfg.Name+"_links", "lwsgate link records: the links of each incarnation, for the reaper", recordMarkerTTL); err != nil {
		return nil, err
	}

	if err = e.ensureStreams(ctx); err != nil {
		return nil, err
	}
	if err = e.openHookQueue(ctx); err != nil {
		return nil, err
	}

	e.goRun(e.events.run(e.life, e.hooks.Event))
	if _, err = e.nc.Subscribe(e.pre+subjLeft, e.onLeft); err != nil {
		return nil, err
	}
	if err = e.join(ctx, 0); err != nil {
		return nil, err
	}
	synced := make(chan struct{})
	e.goRun(func() { e.watchLoop(synced) })
	e.goRun(e.every(cfg.Lease/5, e.renew))
	e.goRun(e.every(cfg.Lease/2, e.audit))
	e.goRun(e.deliverLoop)
	select {
	case <-synced:
	case <-ctx.Done():
		return nil, fmt.Errorf("cluster: reading the registry: %w", ctx.Err())
	}
	return e, nil
}

// retryOpen opens a bucket, waiting for JetStream: while the cluster
// forms, requests go unanswered (no meta leader yet) or fail with
// "insufficient resources" until enough nodes are up. Each attempt has
// its own short deadline; ctx bounds them all.
func retryOpen(ctx context.Context, js jetstream.JetStream, cfg jetstream.KeyValueConfig) (*store, error) {
	for {
		actx, cancel := context.WithTimeout(ctx, time.Second)
		s, err := openStore(actx, js, cfg)
		cancel()
		if err == nil {
			return s, nil
		}
		if pause(ctx, 100*time.Millisecond) != nil {
			return nil, fmt.Errorf("cluster: opening bucket %s (%d replicas): %w", cfg.Bucket, cfg.Replicas, err)
		}
	}
}

// goRun runs f on a goroutine that Close waits for.
func (e *natsEngine) goRun(f func()) {
	e.wg.Add(1)
	go func() {
		defer e.wg.Done()
		f()
	}()
}

func (e *natsEngine) natsError(_ *nats.Conn, sub *nats.Subscription, err error) {
	if errors.Is(err, nats.ErrSlowConsumer) {
		e.log.Warn("cluster: deliver queue full, messages from other nodes dropped", "queue", e.cfg.DeliverQueue)
		return
	}
	e.log.Warn("cluster: NATS error", "err", err)
}

func (e *natsEngine) Incarnation() Incarnation { return Incarnation(e.cur.Load()) }

func (e *natsEngine) Node() string { return e.cfg.Node }

func (e *natsEngine) Ready() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return !e.fenced && !e.closed
}

func (e *natsEngine) Nodes() []Node {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.nodesLocked()
}

func (e *natsEngine) nodesLocked() []Node {
	out := make([]Node, 0, len(e.view))
	for inc, p := range e.view {
		out = append(out, Node{Inc: inc, Name: p.name, Self: inc == e.inc})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Inc < out[j].Inc })
	return out
}

func (e *natsEngine) Stats() Stats {
	e.mu.Lock()
	s := Stats{Incarnation: e.inc, Nodes: len(e.view), Fenced: e.fenced, LeaseRenewed: e.renewedAt}
	e.mu.Unlock()
	s.Channels, s.Dropped = e.ch.stats()
	e.count.fill(&s)
	return s
}

// Close leaves the cluster: see Engine.Close.
func (e *natsEngine) Close(ctx context.Context) error {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return nil
	}
	e.closed = true
	e.down.Store(true)
	inc, leaseRev, nameRev, fenced := e.inc, e.leaseRev, e.nameRev, e.fenced
	for dead, t := range e.reaps {
		t.Stop()
		delete(e.reaps, dead)
	}
	if e.reqSub != nil {
		_ = e.reqSub.Unsubscribe()
	}
	e.mu.Unlock()

	// A reap under way holds a claim no one else finishes while this
	// node's lease lives: let it finish, within ctx.
	for e.pendingReaps() > 0 && pause(ctx, 10*time.Millisecond) == nil {
	}
	reaping := e.pendingReaps()
	e.rec.mu.Lock()
	open := len(e.rec.revs)
	e.rec.mu.Unlock()
	var err error
	switch {
	case fenced:
	case open > 0 || reaping > 0:
		// Records the gateway could not settle, or a reap unfinished: let
		// the lease expire, so that a survivor reaps this node (and
		// queues the hooks).
		e.log.Warn("cluster: closing with link records unsettled or a reap unfinished; a survivor will reap this node",
			"inc", inc, "records", open, "reaps", reaping)
	default:
		// "left": no survivor reaps this incarnation.
		rec := nodeRecord{Name: e.cfg.Node, State: stateLeft}
		if _, err = e.reg.cas(ctx, nodeKey(inc), rec.bytes(), nil, leaseRev, 0); err != nil {
			err = fmt.Errorf("cluster: marking the lease left: %w", err)
		} else {
			// Tell the others at once: their watchers may be slow to see
			// it (one whose consumer lived on this server must be replaced).
			_ = e.nc.Publish(e.pre+subjLeft, []byte(inc.String()))
			_ = e.nc.FlushWithContext(ctx)
		}
	}
	if !fenced {
		_ = e.reg.kv.Delete(ctx, e.nameKey(), jetstream.LastRevision(nameRev))
	}
	e.stop()
	e.ch.closeAll()
	e.wg.Wait()
	e.nc.Close()
	if e.srv != nil {
		e.srv.shutdown()
	}
	return err
}

// kill stops the engine as a crash would: no goodbye (no "left", no
// name released); the embedded server shuts down, so its routes close at
// once as a killed process's sockets do (or, external, the connection
// simply closes). A process killed on a machine that also vanishes
// leaves silent routes instead: the tests cut it off first. For tests.
func (e *natsEngine) kill() {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return
	}
	e.closed = true
	e.down.Store(true)
	for _, t := range e.reaps {
		t.Stop()
	}
	e.mu.Unlock()
	if e.srv != nil {
		e.srv.shutdown()
	}
	e.nc.Close()
	e.stop()
	e.wg.Wait()
}

// retry runs f until it succeeds or ctx (or the engine) ends; each try
// is bounded by CallTimeout.
func (e *natsEngine) retry(ctx context.Context, f func(context.Context) error) error {
	for try := 0; ; try++ {
		actx, cancel := context.WithTimeout(ctx, e.cfg.CallTimeout)
		err := f(actx)
		cancel()
		if err == nil || ctx.Err() != nil || e.life.Err() != nil {
			return err
		}
		t := time.NewTimer(min(time.Duration(try+1)*100*time.Millisecond, time.Second))
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return err
		case <-e.life.Done():
			t.Stop()
			return ErrClosed
		}
	}
}

// pause waits d or until ctx is done.
func pause(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// eventQueue hands events to Hooks.Event on one goroutine, in order,
// without ever making the producer wait (producers hold the engine's
// lock; the hook may call back into the engine).
//
// Concurrency: push from any goroutine; run once.
type eventQueue struct {
	mu   sync.Mutex
	q    []Event
	wake chan struct{}
	once sync.Once
}

func (q *eventQueue) init() { q.once.Do(func() { q.wake = make(chan struct{}, 1) }) }

func (q *eventQueue) push(ev Event) {
	q.init()
	q.mu.Lock()
	q.q = append(q.q, ev)
	q.mu.Unlock()
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

func (q *eventQueue) run(ctx context.Context, hook func(Event)) func() {
	q.init()
	return func() {
		for {
			select {
			case <-ctx.Done():
				return
			case <-q.wake:
			}
			q.mu.Lock()
			evs := q.q
			q.q = nil
			q.mu.Unlock()
			for _, ev := range evs {
				if hook != nil {
					hook(ev)
				}
			}
		}
	}
}
