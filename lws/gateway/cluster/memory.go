package cluster

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"
)

// memoryEngine is the single-process engine: today's behaviour. It has
// incarnation 0, no other node, and costs nothing on the publish path:
// Interest and Publish return at once (the gateway delivers to its own
// members itself); Call and Survey reach only this process's handlers.
//
// Concurrency: safe from any goroutine.
type memoryEngine struct {
	node     string
	hooks    Hooks
	handlers handlers
	closed   atomic.Bool
	count    counters
	queue    memQueue
	life     context.Context // done on Close
	stop     context.CancelFunc
}

func newMemory(cfg Config, h Hooks) *memoryEngine {
	m := &memoryEngine{node: cfg.Node, hooks: h}
	m.life, m.stop = context.WithCancel(context.Background())
	return m
}

func (m *memoryEngine) Incarnation() Incarnation { return 0 }
func (m *memoryEngine) Node() string             { return m.node }
func (m *memoryEngine) Ready() bool              { return !m.closed.Load() }

func (m *memoryEngine) Interest(string, bool) error { return nil }

func (m *memoryEngine) Publish(context.Context, string, Message) (Position, error) {
	return Position{}, nil
}

func (m *memoryEngine) PublishAsync(_ string, _ Message, done func(Position, error)) {
	done(Position{}, nil)
}

// The memory engine has no history (Validate refuses Channels with it).
func (m *memoryEngine) Channel(string) (ChannelConfig, bool) { return ChannelConfig{}, false }

func (m *memoryEngine) Resume(context.Context, string, Position, func(Catchup)) error {
	return ErrNoHistory
}

func (m *memoryEngine) History(context.Context, string, Position, int) (HistoryPage, error) {
	return HistoryPage{}, ErrNoHistory
}

func (m *memoryEngine) Handle(op string, h Handler) { m.handlers.set(op, h) }

func (m *memoryEngine) Call(ctx context.Context, inc Incarnation, op string, body []byte) ([]byte, error) {
	if inc != 0 {
		return nil, &CallError{Inc: inc, Op: op, Err: ErrNotIssued}
	}
	if m.closed.Load() {
		return nil, &CallError{Inc: inc, Op: op, Err: ErrClosed}
	}
	out, err := m.handlers.serve(ctx, op, body)
	if err != nil {
		return nil, &CallError{Inc: inc, Op: op, Err: remoteErr(err)}
	}
	return out, nil
}

func (m *memoryEngine) Survey(ctx context.Context, op string, body []byte) (SurveyResult, error) {
	if m.closed.Load() {
		return SurveyResult{}, ErrClosed
	}
	self := Node{Name: m.node, Self: true}
	out, err := m.handlers.serve(ctx, op, body)
	if err != nil {
		return SurveyResult{Missing: []Missed{{Node: self, Err: remoteErr(err)}}}, nil
	}
	return SurveyResult{Replies: []Reply{{Node: self, Body: out}}}, nil
}

func (m *memoryEngine) Nodes() []Node { return []Node{{Name: m.node, Self: true}} }

func (m *memoryEngine) LinkOpened(context.Context, uint64, []byte) error { return nil }

func (m *memoryEngine) LinkClosed(ctx context.Context, id uint64, d Disconnect) (bool, error) {
	d.Link = id
	return true, m.EnqueueHook(ctx, d)
}

func (m *memoryEngine) EnqueueHook(_ context.Context, d Disconnect) error {
	if d.At.IsZero() {
		d.At = time.Now()
	}
	m.queue.push(memHook{d: d})
	m.count.hooksQueued.Add(1)
	return nil
}

func (m *memoryEngine) RunHooks(ctx context.Context, o HookRunOptions, send HookSender) error {
	o = o.withDefaults()
	return runWorkers(ctx, m.life, o.Workers, func(ctx context.Context) {
		for {
			h, ok := m.queue.pop(ctx)
			if !ok {
				return
			}
			h.d.Attempt++
			if err := send(ctx, h.d); err == nil {
				m.count.hooksDelivered.Add(1)
				continue
			}
			m.count.hookFailures.Add(1)
			switch {
			case ctx.Err() != nil:
				m.queue.push(h) // for the next RunHooks
			case o.MaxAttempts > 0 && h.d.Attempt >= o.MaxAttempts:
				m.count.hooksDropped.Add(1)
				m.hooks.Logger.Error("cluster: disconnect hook given up", "link", h.d.Link, "attempts", h.d.Attempt)
			default:
				m.queue.later(h, o.backoff(h.d.Attempt))
			}
		}
	})
}

// memHook is a hook in the memory engine's queue.
// Concurrency: a value.
type memHook struct{ d Disconnect }

// memQueue is the memory engine's disconnect hook queue: in this
// process, without bound, as the gateway's was.
//
// Concurrency: safe from any goroutine.
type memQueue struct {
	mu      sync.Mutex
	q       []memHook
	waiting int // hooks waiting for their backoff
	wake    chan struct{}
}

func (q *memQueue) wakeLocked() chan struct{} {
	if q.wake == nil {
		q.wake = make(chan struct{})
	}
	return q.wake
}

func (q *memQueue) push(h memHook) {
	q.mu.Lock()
	q.q = append(q.q, h)
	if q.wake != nil {
		close(q.wake)
		q.wake = nil
	}
	q.mu.Unlock()
}

func (q *memQueue) later(h memHook, d time.Duration) {
	q.mu.Lock()
	q.waiting++
	q.mu.Unlock()
	time.AfterFunc(d, func() {
		q.mu.Lock()
		q.waiting--
		q.mu.Unlock()
		q.push(h)
	})
}

// pop takes the next hook, waiting for one until ctx is done.
func (q *memQueue) pop(ctx context.Context) (memHook, bool) {
	for {
		q.mu.Lock()
		if len(q.q) > 0 {
			h := q.q[0]
			q.q = q.q[1:]
			q.mu.Unlock()
			return h, true
		}
		wake := q.wakeLocked()
		q.mu.Unlock()
		select {
		case <-wake:
		case <-ctx.Done():
			return memHook{}, false
		}
	}
}

func (m *memoryEngine) Rejoin(context.Context) (Incarnation, error) { return 0, nil }

func (m *memoryEngine) Stats() Stats {
	s := Stats{Nodes: 1}
	m.count.fill(&s)
	return s
}

func (m *memoryEngine) Close(context.Context) error {
	m.closed.Store(true)
	m.stop()
	return nil
}

// remoteErr is a handler's error as a caller sees it: the engine's own
// sentinels stay themselves, anything else becomes a *RemoteError.
func remoteErr(err error) error {
	if errors.Is(err, ErrNoHandler) {
		return ErrNoHandler
	}
	var re *RemoteError
	if errors.As(err, &re) {
		return re
	}
	return &RemoteError{Msg: err.Error()}
}
