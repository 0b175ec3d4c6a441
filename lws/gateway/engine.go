package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/lwsgate/lwsgate/lws"
	"github.com/lwsgate/lwsgate/lws/gateway/cluster"
)

// The gateway on its cluster engine (package cluster, config section
// cluster). Under the memory engine, the default, nothing here runs on
// the message path: the gateway is one process, as it always was.
// Under nats:
//
//   - a publish goes to this node's members and, through the engine, to
//     every node with members of the channel (deliverRemote, remote.go); the hub
//     tells the engine when a channel gets its first member here and
//     loses its last (Interest);
//   - link ids carry this node's incarnation (linkID);
//   - the admin API serves another node's link by forwarding the request
//     to its owner (opAdmin, admin_cluster.go) and merges its listings
//     from every node;
//   - each WebSocket link with a disconnect hook has a durable record,
//     settled when it closes (settle) with its hook, which goes to the
//     cluster's durable queue: from this node if it settled the record,
//     from the survivor that reaps this node if it dies; every node
//     delivers the queue's hooks (runHooks);
//   - a node cut off for the grace period closes its links with 1012,
//     goes unready, and rejoins under a new incarnation (fence).
//
// Threading: the engine's hooks run on its goroutines; whatever touches
// a link goes through the thread-safe paths (Conn.Send and Close, the
// context's Do).

// openEngine starts the engine cfg names and joins the cluster.
func (g *Gateway) openEngine(cfg *Config) error {
	ec := cfg.Cluster.engine()
	if ec.Node == "" {
		ec.Node = g.self.name
	}
	ctx, cancel := context.WithTimeout(context.Background(), clusterJoinTimeout)
	defer cancel()
	eng, err := cluster.Open(ctx, ec, cluster.Hooks{
		Deliver:  g.deliverRemote,
		Event:    g.clusterEvent,
		CallDone: func(op string, d time.Duration, err error) { g.metrics.clusterCall(op, d, err) },
		Logger:   g.log,
	})
	if err != nil {
		var fe *cluster.FieldError
		var clash *cluster.ErrNameInUse
		switch {
		case errors.As(err, &fe):
			return cfg.errAt("cluster."+fe.Field, "%s", fe.Msg)
		case errors.As(err, &clash):
			return cfg.errAt("cluster.node", "%q is the name of a live node of the cluster (incarnation %d): give each node its own", clash.Name, clash.Inc)
		}
		return fmt.Errorf("gateway: cluster: %w", err)
	}
	g.eng = eng
	g.multi = cfg.Cluster.Engine == cluster.EngineNATS
	g.inc.Store(uint32(eng.Incarnation()))
	if g.multi {
		g.hub.interest = func(ch string, on bool) {
			if err := eng.Interest(ch, on); err != nil {
				g.log.Warn("cluster: channel interest failed", "channel", ch, "on", on, "err", err)
			}
		}
		g.handleOps()
		g.runHooks(cfg)
		g.metrics.registerCluster(g)
		g.log.Info("cluster joined", "node", eng.Node(), "incarnation", eng.Incarnation(), "nodes", len(eng.Nodes()))
	}
	return nil
}

// linkID is the ID of the link lws numbers local: local itself under
// the memory engine.
func (g *Gateway) linkID(local uint64) uint64 {
	id, ok := cluster.LinkID(cluster.Incarnation(g.inc.Load()), local)
	if !ok {
		// 2^37 links in one incarnation; never in practice. The id is
		// then the bare number, which no other node's link has.
		g.log.Error("cluster: link number beyond 2^37: restart the node", "local", local)
		return local & cluster.MaxLocal
	}
	return id
}

// idOfLocal is the ID of the link lws numbers local: the live link's,
// or the one it would have now.
func (g *Gateway) idOfLocal(local uint64) uint64 {
	if id, ok := g.links.idOf(local); ok {
		return id
	}
	return g.linkID(local)
}

// ownInc reports whether id is a link of this node's current
// incarnation (always, under the memory engine).
func (g *Gateway) ownInc(id uint64) bool {
	inc, _, ok := cluster.SplitLinkID(id)
	return ok && uint32(inc) == g.inc.Load()
}

// clusterEvent follows the registry (the engine's event goroutine).
func (g *Gateway) clusterEvent(ev cluster.Event) {
	g.waitStarted()
	if g.ctx == nil {
		return
	}
	switch ev.Kind {
	case cluster.NodeUp:
		if !ev.Node.Self {
			g.log.Info("cluster: node up", "node", ev.Node.Name, "incarnation", ev.Node.Inc)
		}
	case cluster.NodeDown:
		lvl := slog.LevelWarn
		if ev.Reason == "left" {
			lvl = slog.LevelInfo
		}
		g.log.Log(context.Background(), lvl, "cluster: node down", "node", ev.Node.Name, "incarnation", ev.Node.Inc, "why", ev.Reason)
	case cluster.Fenced:
		if g.fenced.CompareAndSwap(false, true) {
			g.log.Error("cluster: cut off from the cluster for the grace period: closing every link (1012)", "incarnation", ev.Node.Inc, "why", ev.Reason)
			go g.fence()
		}
	case cluster.Reap:
		g.reap(ev)
	}
}

// fence closes every link of the old incarnation with 1012, waits for
// them to be gone, then rejoins under a new incarnation; the node is
// unready meanwhile (g.fenced).
func (g *Gateway) fence() {
	for _, l := range g.links.list(func(l *LinkRecord) bool { return l.conn != nil }) {
		_ = l.conn.Close(lws.StatusServiceRestart, "node cut off from the cluster: reconnect")
	}
	for len(g.links.list(func(l *LinkRecord) bool { return l.conn != nil })) > 0 {
		if pause(g.life, 20*time.Millisecond) != nil {
			return
		}
	}
	var inc cluster.Incarnation
	for {
		// Each attempt has a deadline (the engine's JetStream calls want
		// one), short enough that an attempt stuck on a cluster still
		// settling after the partition is given up for a fresh one; the
		// node keeps trying until it rejoins or stops.
		ctx, cancel := context.WithTimeout(g.life, rejoinAttempt)
		var err error
		inc, err = g.eng.Rejoin(ctx)
		cancel()
		if err == nil {
			break
		}
		if g.life.Err() != nil || errors.Is(err, cluster.ErrClosed) {
			return
		}
		g.log.Warn("cluster: rejoining failed, retrying", "err", err)
		if pause(g.life, time.Second) != nil {
			return
		}
	}
	g.inc.Store(uint32(inc))
	g.fenced.Store(false)
	g.log.Info("cluster: rejoined", "incarnation", inc)
}

// linkRecord is what a link's durable record holds: what its disconnect
// hook needs, should a survivor have to fire it.
//
// Concurrency: a value.
type linkRecord struct {
	Link LinkInfo    `json:"link"`
	Hdr  http.Header `json:"hdr,omitempty"`
}

// recordLink writes the durable record of l, in the link table (its
// Node set) with its l.rec made, on a goroutine of its own (the engine
// waits on the cluster), retrying until it is written or the engine
// closes; settle waits for it.
func (g *Gateway) recordLink(l *LinkRecord) {
	data, _ := json.Marshal(linkRecord{Link: l.Info(), Hdr: l.hdr})
	g.settling.Add(1)
	go func() {
		defer g.settling.Done()
		defer close(l.rec.done)
		for wait := 100 * time.Millisecond; ; wait = min(2*wait, 2*time.Second) {
			ctx, cancel := context.WithTimeout(g.life, g.cfg.Load().Cluster.CallTimeout.D())
			err := g.eng.LinkOpened(ctx, l.ID, data)
			cancel()
			if err == nil {
				l.rec.written = true
				return
			}
			if errors.Is(err, cluster.ErrClosed) || g.life.Err() != nil {
				return
			}
			g.log.Warn("cluster: recording a link failed, retrying", "link", l.ID, "err", err)
			if pause(g.life, wait) != nil {
				return
			}
		}
	}()
}

// linkRec is the state of a link's durable record.
//
// Concurrency: written set before done is closed, read after.
type linkRec struct {
	done    chan struct{}
	written bool
}

// settle settles a closed link's record with its disconnect hook ev,
// which the engine queues durably (the cluster's queue, RunHooks) if
// this node settled the record; if a reaper had, the reaper's hook is
// queued instead. A link without a record queues ev alone.
func (g *Gateway) settle(l *LinkRecord, ev hookEvent) {
	data, _ := json.Marshal(linkRecord{Link: ev.Link, Hdr: ev.hdr})
	d := cluster.Disconnect{Link: l.ID, Code: ev.Code, Reason: ev.Reason, At: time.UnixMilli(ev.Time), Data: data}
	g.settling.Add(1)
	go func() {
		defer g.settling.Done()
		written := false
		if l.rec != nil {
			<-l.rec.done
			written = l.rec.written
		}
		for wait := 100 * time.Millisecond; ; wait = min(2*wait, 2*time.Second) {
			ctx, cancel := context.WithTimeout(context.Background(), g.cfg.Load().Cluster.CallTimeout.D())
			var committed bool
			var err error
			if written {
				committed, err = g.eng.LinkClosed(ctx, l.ID, d)
				if err == nil && !committed {
					g.log.Info("cluster: a survivor reaped this link: its hook is the survivor's", "link", l.ID)
				}
			} else {
				err = g.eng.EnqueueHook(ctx, d) // no record: no one else knows of the link
			}
			cancel()
			switch {
			case err == nil:
				return
			case errors.Is(err, cluster.ErrClosed):
				return // a record stays open: a survivor reaps it
			}
			g.log.Warn("cluster: settling a link failed, retrying", "link", l.ID, "err", err)
			time.Sleep(wait)
		}
	}()
}

// runHooks delivers the cluster's queued disconnect hooks, whichever
// node queued them, until the gateway stops (every node runs it).
func (g *Gateway) runHooks(cfg *Config) {
	o := cluster.HookRunOptions{Workers: hookWorkers, MaxAttempts: cfg.Hooks.Retries + 1, Backoff: time.Second}
	go func() {
		if err := g.eng.RunHooks(g.life, o, g.sendHook); err != nil && !errors.Is(err, cluster.ErrClosed) {
			g.log.Error("cluster: the disconnect hook queue stopped", "err", err)
		}
	}()
}

// sendHook posts one queued disconnect hook (cluster.HookSender).
func (g *Gateway) sendHook(ctx context.Context, d cluster.Disconnect) error {
	url := g.cfg.Load().Hooks.Disconnect
	if url == "" {
		return nil // none now: the hook has nowhere to go
	}
	var rec linkRecord
	if err := json.Unmarshal(d.Data, &rec); err != nil {
		g.log.Error("cluster: unreadable disconnect hook: dropped", "link", d.Link, "err", err)
		return nil
	}
	rec.Link.ID = d.Link
	ev := &hookEvent{Event: "disconnect", Time: d.At.UnixMilli(), Link: rec.Link, Code: d.Code, Reason: d.Reason, hdr: rec.Hdr}
	if d.Lost && rec.Link.Node != "" {
		ev.Reason += ": " + rec.Link.Node // the reaper's ("gateway node lost"), naming the node
	}
	return g.hooks.post(ctx, url, ev)
}

// waitSettled waits until every link record is settled, or ctx ends.
func (g *Gateway) waitSettled(ctx context.Context) {
	done := make(chan struct{})
	go func() { g.settling.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		g.log.Error("shutdown deadline: link records not settled: a survivor will reap them")
	}
}

// reap logs a dead node's reaping: this node won the claim on it, and
// the engine has queued a disconnect hook (1006) for each of its links.
func (g *Gateway) reap(ev cluster.Event) {
	g.log.Warn("cluster: reaped a lost node: its links' disconnect hooks are queued", "node", ev.Node.Name, "incarnation", ev.Node.Inc, "links", len(ev.Links))
}

// rejoinAttempt bounds one attempt of a fenced node to rejoin.
const rejoinAttempt = 10 * time.Second

// pause waits d, or until ctx ends (then its error).
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
