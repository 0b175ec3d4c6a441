package cluster

import (
	"context"
	"fmt"
	"regexp"
	"sync"
	"sync/atomic"
	"time"
)

// The engine's own ops.
const opPing = "_ping" // answers empty: the node is alive and reachable

var opRE = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)

// handlers is the op table of one engine.
//
// Concurrency: safe from any goroutine.
type handlers struct {
	mu sync.RWMutex
	m  map[string]Handler
}

func (hs *handlers) set(op string, h Handler) {
	if !opRE.MatchString(op) {
		panic(fmt.Sprintf("cluster: op %q: want one or more of [A-Za-z0-9_-]", op))
	}
	hs.mu.Lock()
	defer hs.mu.Unlock()
	if hs.m == nil {
		hs.m = map[string]Handler{}
	}
	if h == nil {
		delete(hs.m, op)
	} else {
		hs.m[op] = h
	}
}

// serve runs op's handler here.
func (hs *handlers) serve(ctx context.Context, op string, body []byte) ([]byte, error) {
	if op == opPing {
		return nil, nil
	}
	hs.mu.RLock()
	h := hs.m[op]
	hs.mu.RUnlock()
	if h == nil {
		return nil, ErrNoHandler
	}
	return h(ctx, body)
}

// counters are the atomics behind Stats.
//
// Concurrency: safe from any goroutine.
type counters struct {
	publishes, deliveries, gaps       atomic.Uint64
	calls, callErrors, callNanos      atomic.Uint64
	surveys, partial                  atomic.Uint64
	renewals, leaseFailures, lapses   atomic.Uint64
	reapAttempts, reaped, reapedLinks atomic.Uint64

	histPublishes, repaired, repairedGaps, unrepairable                     atomic.Uint64
	duplicates, resumes, resumesLost                                        atomic.Uint64
	hooksQueued, hooksDelivered, hooksNotResent, hookFailures, hooksDropped atomic.Uint64
}

func (c *counters) fill(s *Stats) {
	s.Publishes = c.publishes.Load()
	s.Deliveries = c.deliveries.Load()
	s.Gaps = c.gaps.Load()
	s.Calls = c.calls.Load()
	s.CallErrors = c.callErrors.Load()
	s.CallTime = time.Duration(c.callNanos.Load())
	s.Surveys = c.surveys.Load()
	s.PartialSurvey = c.partial.Load()
	s.LeaseRenewals = c.renewals.Load()
	s.LeaseFailures = c.leaseFailures.Load()
	s.LeaseLapses = c.lapses.Load()
	s.ReapAttempts = c.reapAttempts.Load()
	s.Reaped = c.reaped.Load()
	s.ReapedLinks = c.reapedLinks.Load()
	s.HistoryPublishes = c.histPublishes.Load()
	s.Repaired = c.repaired.Load()
	s.RepairedGaps = c.repairedGaps.Load()
	s.Unrepairable = c.unrepairable.Load()
	s.Duplicates = c.duplicates.Load()
	s.Resumes = c.resumes.Load()
	s.ResumesLost = c.resumesLost.Load()
	s.HooksQueued = c.hooksQueued.Load()
	s.HooksDelivered = c.hooksDelivered.Load()
	s.HooksNotResent = c.hooksNotResent.Load()
	s.HookFailures = c.hookFailures.Load()
	s.HooksDropped = c.hooksDropped.Load()
}

// observe counts one call to another node and tells Hooks.CallDone.
func (c *counters) observe(h *Hooks, op string, start time.Time, err error) {
	d := time.Since(start)
	c.calls.Add(1)
	c.callNanos.Add(uint64(d))
	if err != nil {
		c.callErrors.Add(1)
	}
	if h.CallDone != nil {
		h.CallDone(op, d, err)
	}
}
