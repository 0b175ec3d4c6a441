package lws

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"sync"
)

// Group is N Contexts, the workers, that serve the same listeners: one
// service goroutine each, so a process uses N cores. Each listener has
// one listening socket for the group; its connections are handed to the
// worker with the fewest connections on that listener (see acceptor), so
// the workers stay even however long links live. The admission limits of
// a listener (MaxLinks, MaxLinksPerIP, AcceptRate) hold for the group as
// a whole; link IDs are unique across the process. A link lives on one
// worker from accept to destroy: its handlers and callbacks run on that
// worker's service goroutine, and the links it dials should be dialled
// from its Context (Conn.Context) so that they live there too.
//
// This works the same on every libwebsockets version (4.1 cannot share a
// port between contexts): the binding accepts and hands each socket to
// libwebsockets, as for ProxyProtocol, and TLS listeners work alike.
//
// Concurrency: every method is safe from any goroutine. The workers'
// handlers and Config callbacks run on N service goroutines at once:
// whatever they share must be safe for that.
type Group struct {
	ctxs   []*Context
	shared []*sharedListener
	done   chan struct{}
}

// sharedListener is what the workers of a Group share for one listener.
type sharedListener struct {
	acc *acceptor
	adm *admission
}

// NewGroup creates n workers (n >= 1) and opens their listener. cfg
// returns the Config of worker i (0..n-1), called once for each: the
// workers may have handlers and callbacks of their own (to keep per-worker
// state), but their listener must be the same, with the same Name, Addr,
// TLS and ProxyProtocol. An Addr with port 0 gets one kernel-chosen port
// for all workers. The error names the listener and cause when the
// listener cannot be opened (the port is held by another process...), or
// the field in which a worker's listener differs.
//
// A Group has one listener (or none): a worker's listener is a vhost that
// listens nowhere, and libwebsockets binds each request of such a vhost
// to the first one of its context by port and Host (lws_select_vhost, in
// 4.1 and 4.3), so a second would get the first one's subprotocols,
// compression and keepalive. Several listeners take a Group each.
func NewGroup(n int, cfg func(worker int) *Config) (*Group, error) {
	if n < 1 {
		return nil, fmt.Errorf("lws: NewGroup: %d workers: want at least 1", n)
	}
	cfgs := make([]*Config, n)
	for i := range cfgs {
		cfgs[i] = cfg(i).withDefaults()
		if err := cfgs[i].validate(); err != nil {
			return nil, fmt.Errorf("worker %d: %w", i, err)
		}
		if len(cfgs[i].Listeners) > 1 {
			return nil, fmt.Errorf("lws: NewGroup: worker %d: Listeners: %d, a Group has at most one (make a Group per listener)", i, len(cfgs[i].Listeners))
		}
		if err := sameListeners(cfgs[0], cfgs[i]); err != nil {
			return nil, fmt.Errorf("lws: NewGroup: worker %d: %w", i, err)
		}
	}
	g := &Group{}
	for _, l := range cfgs[0].Listeners {
		host, port, _ := splitAddr(l.Addr)
		ln, err := listenTCP(l.Name, host, port)
		if err != nil {
			g.closeListeners()
			return nil, err
		}
		g.shared = append(g.shared, &sharedListener{acc: newAcceptor(ln, l.ProxyProtocol), adm: &admission{}})
	}
	for _, c := range cfgs {
		ctx, err := newContext(c, g.shared)
		if err != nil {
			_ = g.Close()
			g.closeListeners()
			return nil, err
		}
		g.ctxs = append(g.ctxs, ctx)
	}
	for _, s := range g.shared {
		s.acc.start()
	}
	g.done = make(chan struct{})
	go func() {
		for _, c := range g.ctxs {
			<-c.Done()
		}
		close(g.done)
	}()
	return g, nil
}

// sameListeners checks that b has a's listeners.
func sameListeners(a, b *Config) error {
	if len(a.Listeners) != len(b.Listeners) {
		return fmt.Errorf("%d listeners, worker 0 has %d", len(b.Listeners), len(a.Listeners))
	}
	for i := range a.Listeners {
		x, y := &a.Listeners[i], &b.Listeners[i]
		field := func(f string) error {
			return fmt.Errorf("Listeners[%d] (%s).%s differs from worker 0's", i, y.Name, f)
		}
		switch {
		case x.Name != y.Name:
			return field("Name")
		case x.Addr != y.Addr:
			return field("Addr")
		case x.ProxyProtocol != y.ProxyProtocol:
			return field("ProxyProtocol")
		case (x.TLS == nil) != (y.TLS == nil) || x.TLS != nil && *x.TLS != *y.TLS:
			return field("TLS")
		}
	}
	return nil
}

// closeListeners closes the listening sockets (NewGroup's error path,
// once no worker uses them).
func (g *Group) closeListeners() {
	for _, s := range g.shared {
		s.acc.close()
	}
}

// Workers returns the workers' Contexts, worker i at index i.
func (g *Group) Workers() []*Context { return slices.Clone(g.ctxs) }

// Addrs returns the address each listener listens on, in Config order,
// with kernel-chosen ports filled in (the same for every worker).
func (g *Group) Addrs() []net.Addr {
	if len(g.ctxs) == 0 {
		return nil
	}
	return g.ctxs[0].Addrs()
}

// Shutdown shuts every worker down at once (Context.Shutdown) and waits
// for all of them; it returns the first error.
func (g *Group) Shutdown(ctx context.Context) error {
	errs := make([]error, len(g.ctxs))
	var wg sync.WaitGroup
	for i, c := range g.ctxs {
		wg.Go(func() { errs[i] = c.Shutdown(ctx) })
	}
	wg.Wait()
	return errors.Join(errs...)
}

// Close is Shutdown with no deadline of the caller's.
func (g *Group) Close() error { return g.Shutdown(context.Background()) }

// SetListenerLimits changes a listener's limits on every worker
// (Context.SetListenerLimits).
func (g *Group) SetListenerLimits(name string, lim ListenerLimits) error {
	for _, c := range g.ctxs {
		if err := c.SetListenerLimits(name, lim); err != nil {
			return err
		}
	}
	return nil
}

// Done is closed once every worker has stopped.
func (g *Group) Done() <-chan struct{} { return g.done }

// ID returns the context's number, unique in the process: the reason
// log's ctx: field.
func (c *Context) ID() uint64 { return c.id }
