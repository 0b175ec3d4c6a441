package gateway

import (
	"context"
	"errors"
	"net"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/lwsgate/lwsgate/lws"
)

// worker is one of the gateway's service goroutines (workers: N): an lws
// Context of a listener's Group, with what belongs to it alone. A link
// lives on one worker from accept to destroy; its messages are routed
// there, and its upstream (relay) links are dialled from there.
//
// Concurrency: scratch, routed and routerHits belong to the worker's service
// goroutine; the counters are atomic and route is a Prometheus histogram,
// read from any goroutine; remote is safe from any goroutine (its own
// contract).
type worker struct {
	id  int
	ctx *lws.Context

	scratch Message // the message being routed
	routed  uint64  // messages routed, for the timing sample (route)
	// routerHits is the Router's lwsgate_rule_matches_total counters
	// (one per worker: this one's is routerHits[id]), resolved on its
	// first match, as a rule's.
	routerHits []padded

	links atomic.Int64 // links open on the worker (the admin API's apart)
	ctr   msgCounters  // its links' messages and bytes
	route prometheus.Histogram

	remote backlog // messages from other nodes for its links (remote.go)
}

func newWorker(id int) *worker {
	return &worker{id: id, route: newRouteHistogram(), remote: newBacklog()}
}

// workerCount resolves workers: 0 is the CPUs the process may use (GOMAXPROCS,
// which follows the CPU affinity and a container's CPU limit).
func (c *Config) workerCount() int {
	if c.Workers > 0 {
		return c.Workers
	}
	return processCPUs
}

// processCPUs is GOMAXPROCS as the process started with it (the
// environment, CPU affinity, a container's CPU limit): read once, before
// ensureProcs raises it, so that a second gateway in the process does not
// count the first one's extra P as a CPU.
var processCPUs = runtime.GOMAXPROCS(0)

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

// startWorkers runs n workers on lc's listeners. With one, a Context
// serves them all, as before workers existed. With more, each public
// listener has a Group of n workers (an lws.Group serves one listener:
// see lws.NewGroup), and the admin listener a Context of its own.
func (g *Gateway) startWorkers(n int, lc *lws.Config) error {
	if n == 1 {
		w := newWorker(0)
		ctx, err := lws.New(g.lwsConfig(lc, w))
		if err != nil {
			return err
		}
		w.ctx = ctx
		g.workers, g.ctx, g.all = []*worker{w}, ctx, []*lws.Context{ctx}
		g.addrs = map[string]net.Addr{}
		for i, a := range ctx.Addrs() {
			g.addrs[lc.Listeners[i].Name] = a
		}
		return nil
	}
	ensureProcs(n)
	g.addrs = map[string]net.Addr{}
	g.groups = map[string]*lws.Group{}
	for _, l := range lc.Listeners {
		one := *lc
		one.Listeners = []lws.Listener{l}
		if l.Name == AdminListener {
			// The operator's API: one thread is plenty.
			ctx, err := lws.New(&one)
			if err != nil {
				g.stopWorkers(context.Background())
				return err
			}
			g.all = append(g.all, ctx)
			g.addrs[l.Name] = ctx.Addrs()[0]
			continue
		}
		base := len(g.workers)
		for range n {
			g.workers = append(g.workers, newWorker(len(g.workers)))
		}
		grp, err := lws.NewGroup(n, func(i int) *lws.Config { return g.lwsConfig(&one, g.workers[base+i]) })
		if err != nil {
			g.workers = g.workers[:base]
			g.stopWorkers(context.Background())
			return err
		}
		g.groups[l.Name] = grp
		for i, c := range grp.Workers() {
			g.workers[base+i].ctx = c
			g.all = append(g.all, c)
		}
		g.addrs[l.Name] = grp.Addrs()[0]
		ids := make([]string, n)
		for i, c := range grp.Workers() {
			ids[i] = strconv.FormatUint(c.ID(), 10)
		}
		// The reason log names each line's context (ctx:N): this says
		// which worker that is.
		g.log.Info("workers", "listener", l.Name, "n", n, "first", base, "reason_log_ctx", ids)
	}
	g.ctx = g.workers[0].ctx
	return nil
}

// stopWorkers shuts every context down at once and waits (with one
// worker, its Context).
func (g *Gateway) stopWorkers(ctx context.Context) error {
	errs := make([]error, len(g.all))
	var wg sync.WaitGroup
	for i, c := range g.all {
		wg.Go(func() { errs[i] = c.Shutdown(ctx) })
	}
	wg.Wait()
	return errors.Join(errs...)
}

// workersDone is closed once every context has stopped.
func (g *Gateway) workersDone() <-chan struct{} {
	if len(g.all) == 1 {
		return g.all[0].Done()
	}
	g.doneOnce.Do(func() {
		g.done = make(chan struct{})
		go func() {
			for _, c := range g.all {
				<-c.Done()
			}
			close(g.done)
		}()
	})
	return g.done
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
