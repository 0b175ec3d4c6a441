package gateway

import (
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/lwsgate/lwsgate/lws"
)

// worker is one of the gateway's service goroutines (workers: N): an lws
// Context of the gateway's Group, with what belongs to it alone. A link
// lives on one worker from accept to destroy; its messages are routed
// there, and its upstream (relay) links are dialled from there.
//
// Concurrency: scratch and routerHits belong to the worker's service
// goroutine; the counters are atomic, read from any goroutine.
type worker struct {
	id  int
	ctx *lws.Context

	scratch Message // the message being routed
	// routerHits is the Router's lwsgate_rule_matches_total counter,
	// resolved on its first match, as a rule's.
	routerHits prometheus.Counter

	links atomic.Int64 // links open on the worker (the admin API's apart)
	msgs  atomic.Int64 // WebSocket messages received by its links
}

// workerCount resolves workers: 0 is the CPUs the process may use (GOMAXPROCS,
// which follows the CPU affinity and a container's CPU limit).
func (c *Config) workerCount() int {
	if c.Workers > 0 {
		return c.Workers
	}
	return runtime.GOMAXPROCS(0)
}

// ensureProcs makes GOMAXPROCS at least workers + 1: each worker's
// service goroutine holds a thread of its own, and the rest of the
// program (admin API, hooks, publish) needs one more to run beside them.
func ensureProcs(workers int) {
	if runtime.GOMAXPROCS(0) < workers+1 {
		runtime.GOMAXPROCS(workers + 1)
	}
}

// lwsConfig returns worker w's lws.Config: lc with the link callbacks
// that count the worker's links.
func (g *Gateway) lwsConfig(lc *lws.Config, w *worker) *lws.Config {
	c := *lc
	c.Listeners = append([]lws.Listener(nil), lc.Listeners...)
	for i := range c.Listeners {
		if c.Listeners[i].Name != AdminListener {
			c.Listeners[i].Handler = wsHandler{g, w}
		}
	}
	c.OnLinkOpen = func(ll lws.Link) {
		if ll.Listener != AdminListener {
			w.links.Add(1)
		}
		g.onLinkOpen(w, ll)
	}
	c.OnLinkClose = func(ll lws.Link, ce lws.CloseError) {
		if ll.Listener != AdminListener {
			w.links.Add(-1)
		}
		g.onLinkClose(ll, ce)
	}
	return &c
}

// startWorkers runs n workers on lc's listeners: with one, a Context as
// before workers existed; with more, an lws.Group.
func (g *Gateway) startWorkers(n int, lc *lws.Config) error {
	g.workers = make([]*worker, n)
	for i := range g.workers {
		g.workers[i] = &worker{id: i}
	}
	if n == 1 {
		ctx, err := lws.New(g.lwsConfig(lc, g.workers[0]))
		if err != nil {
			return err
		}
		g.workers[0].ctx = ctx
		g.ctx = ctx
		return nil
	}
	ensureProcs(n)
	grp, err := lws.NewGroup(n, func(i int) *lws.Config { return g.lwsConfig(lc, g.workers[i]) })
	if err != nil {
		return err
	}
	g.group = grp
	for i, c := range grp.Workers() {
		g.workers[i].ctx = c
	}
	g.ctx = g.workers[0].ctx
	ids := make([]string, n)
	for i, w := range g.workers {
		ids[i] = strconv.FormatUint(w.ctx.ID(), 10)
	}
	// The reason log names each line's context (ctx:N): this says which
	// worker that is.
	g.log.Info("workers", "n", n, "reason_log_ctx", ids)
	return nil
}

// eachWorker runs f for every worker at once and waits.
func (g *Gateway) eachWorker(f func(w *worker)) {
	if len(g.workers) == 1 {
		f(g.workers[0])
		return
	}
	var wg sync.WaitGroup
	for _, w := range g.workers {
		wg.Go(func() { f(w) })
	}
	wg.Wait()
}
