package cluster

import (
	"context"
	"errors"
	"sync/atomic"
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
}

func newMemory(cfg Config, h Hooks) *memoryEngine {
	return &memoryEngine{node: cfg.Node, hooks: h}
}

func (m *memoryEngine) Incarnation() Incarnation { return 0 }
func (m *memoryEngine) Node() string             { return m.node }
func (m *memoryEngine) Ready() bool              { return !m.closed.Load() }

func (m *memoryEngine) Interest(string, bool) error { return nil }

func (m *memoryEngine) Publish(context.Context, string, Message) (Position, error) {
	return Position{}, nil
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

func (m *memoryEngine) LinkClosed(context.Context, uint64) (bool, error) { return true, nil }

func (m *memoryEngine) Rejoin(context.Context) (Incarnation, error) { return 0, nil }

func (m *memoryEngine) Stats() Stats {
	s := Stats{Nodes: 1}
	m.count.fill(&s)
	return s
}

func (m *memoryEngine) Close(context.Context) error {
	m.closed.Store(true)
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
