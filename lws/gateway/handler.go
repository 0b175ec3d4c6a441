package gateway

import (
	"context"
	"log/slog"
	"time"

	"github.com/lwsgate/lwsgate/lws"
)

// onLinkOpen adds HTTP links to the link table (on worker w). WebSocket
// links are added by their Handler's OnOpen, which has the Conn.
func (g *Gateway) onLinkOpen(w *worker, ll lws.Link) {
	if ll.Kind != lws.LinkHTTP || ll.Listener == AdminListener {
		return // the operator's own requests are not gateway traffic
	}
	l := &LinkRecord{ID: g.linkID(ll.ID), Type: linkType(ll), Listener: ll.Listener, Remote: addrString(ll.Remote), Path: ll.Path, URL: ll.URL, Opened: ll.Opened, w: w}
	g.addLink(l, ll.ID)
}

// addLink puts a link, whose lws number is local, in the link table.
func (g *Gateway) addLink(l *LinkRecord, local uint64) {
	g.links.add(l, local)
	g.metrics.linkOpened(l)
	if g.log.Enabled(context.Background(), slog.LevelDebug) { // its arguments cost allocations
		g.log.Debug("link add", "link", l.ID, "type", l.Type, "listener", l.Listener, "remote", l.Remote, "path", l.Path, "url", l.URL, "user", l.User, "links", g.links.len())
	}
}

// onLinkClose runs at WSI_DESTROY, exactly once per opened link however it
// ended: it removes the link from every table and fires the disconnect
// hook.
func (g *Gateway) onLinkClose(ll lws.Link, ce lws.CloseError) {
	if ll.Listener == AdminListener {
		return // never in the table
	}
	// First: once it is gone from the table, a 410 can say how.
	id := g.idOfLocal(ll.ID)
	g.closed.add(id, ce, time.Now(), g.lastSnapshot(id))
	l := g.links.del(ll.ID)
	if l == nil {
		return
	}
	g.routes.del(l.ID)
	g.hub.leave(l)
	l.held = nil
	l.mu.Lock()
	relays := l.relays
	l.relays = nil
	l.mu.Unlock()
	for _, p := range relays {
		p.downClosed(ce)
	}
	g.metrics.linkClosed(l, ce)
	if l.Type == TypeTCPListen {
		hook := g.hooks.onDisconnect()
		switch {
		case g.multi && (hook || l.rec != nil):
			g.settle(l, g.hooks.disconnect(l, ce)) // a record is settled even if the hook has gone since
		case hook:
			g.hooks.enqueue(g.hooks.disconnect(l, ce))
		}
	}
	if g.log.Enabled(context.Background(), slog.LevelDebug) {
		g.log.Debug("link del", "link", l.ID, "type", l.Type, "code", int(ce.Code), "reason", ce.Reason, "links", g.links.len())
	}
}

// wsHandler receives the WebSocket links of the public listeners on
// worker w.
//
// Concurrency: its methods run on worker w's service goroutine
// (lws.Handler).
type wsHandler struct {
	g *Gateway
	w *worker
}

func (h wsHandler) OnOpen(c *lws.Conn) {
	g := h.g
	g.waitStarted()
	ll := c.Link()
	l := &LinkRecord{ID: g.linkID(ll.ID), Type: TypeTCPListen, Listener: ll.Listener, Remote: addrString(ll.Remote), Path: ll.Path, Opened: ll.Opened, conn: c, w: h.w}
	lc := g.listenerCfg(ll.Listener)
	// CheckUpgrade verified the token before the 101 and left the
	// identity (Request.SetValue): one verification per link.
	if id, _ := c.Value().(*Identity); id != nil {
		l.Identity, l.User = id, id.Subject
	}
	if r := c.Request(); r != nil {
		l.hdr = linkHeaders(g.kept, r)
	}
	c.SetValue(l)
	if g.multi && g.cfg.Load().Hooks.Disconnect != "" {
		l.rec = &linkRec{done: make(chan struct{})} // before the link is shared
	}
	g.addLink(l, ll.ID)
	if l.rec != nil {
		g.recordLink(l) // so that the hook outlives this node
	}
	if why := g.unready(); why != "" {
		// Draining (or fencing) began between the upgrade check and now.
		_ = c.Close(4000+lws.StatusCode(503), why)
		return
	}
	if g.hooks.connectURL() != "" {
		l.held = &heldMsgs{}
		g.hooks.connect(l)
	}
	if lc != nil && lc.Upstream != "" {
		if b := g.backend(lc.Upstream); b != nil {
			g.upstreamFor(b, l)
		}
	}
}

func (h wsHandler) OnMessage(c *lws.Conn, typ lws.MessageType, data []byte) {
	g := h.g
	l, _ := c.Value().(*LinkRecord)
	if l == nil {
		return
	}
	now := sinceBase()
	l.countIn(len(data), now)
	h.w.ctr.in(len(data))
	lc := g.listenerOf(l)
	if l.held != nil && g.hold(l, lc, typ, data) {
		return
	}
	if lc != nil && lc.Upstream != "" {
		if b := g.backend(lc.Upstream); b != nil {
			g.relayMessage(b, l, typ, data)
			return
		}
	}
	g.route(h.w, l, typ, data, now)
}

// hold keeps a message while the link's connect hook has not answered,
// bounded by max_message in all; it reports whether it took the message.
// It runs on the service goroutine of the link's worker.
func (g *Gateway) hold(l *LinkRecord, lc *ListenerConfig, typ lws.MessageType, data []byte) bool {
	held := l.held
	if held == nil {
		return false
	}
	if lc != nil && held.bytes+int64(len(data)) > int64(lc.Limits.MaxMessage) {
		_ = l.conn.Close(lws.StatusPolicyViolation, "too much data before the connect hook answered")
		return true
	}
	held.msgs = append(held.msgs, pendingMsg{typ, append([]byte(nil), data...)})
	held.bytes += int64(len(data))
	return true
}

func (h wsHandler) OnClose(c *lws.Conn, ce lws.CloseError) {}
