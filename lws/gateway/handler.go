package gateway

import (
	"encoding/json"
	"time"

	"github.com/lwsgate/lwsgate/lws"
)

// onLinkOpen adds HTTP links to the link table. WebSocket links are added
// by their Handler's OnOpen, which has the Conn.
func (g *Gateway) onLinkOpen(ll lws.Link) {
	if ll.Kind != lws.LinkHTTP || ll.Listener == AdminListener {
		return // the operator's own requests are not gateway traffic
	}
	l := &Link{ID: ll.ID, Type: linkType(ll), Listener: ll.Listener, Remote: addrString(ll.Remote), Path: ll.Path, URL: ll.URL, Opened: ll.Opened}
	g.addLink(l)
}

// addLink puts a link in the link table.
func (g *Gateway) addLink(l *Link) {
	g.links.add(l)
	g.metrics.linkOpened(l)
	g.log.Debug("link add", "link", l.ID, "type", l.Type, "listener", l.Listener, "remote", l.Remote, "path", l.Path, "url", l.URL, "user", l.User, "links", g.links.len())
}

// onLinkClose runs at WSI_DESTROY, exactly once per opened link however it
// ended: it removes the link from every table and fires the disconnect
// hook.
func (g *Gateway) onLinkClose(ll lws.Link, ce lws.CloseError) {
	if ll.Listener == AdminListener {
		return // never in the table
	}
	g.closed.add(ll.ID, ce, time.Now()) // first: once it is gone from the table, a 410 can say how
	l := g.links.del(ll.ID)
	if l == nil {
		return
	}
	g.routes.del(l.ID)
	g.hub.leave(l)
	l.mu.Lock()
	relays := l.relays
	l.relays, l.held = nil, nil
	l.mu.Unlock()
	for _, p := range relays {
		p.downClosed(ce)
	}
	g.metrics.linkClosed(l, ce)
	if l.Type == TypeTCPListen {
		g.hooks.disconnect(l, ce)
	}
	g.log.Debug("link del", "link", l.ID, "type", l.Type, "code", int(ce.Code), "reason", ce.Reason, "links", g.links.len())
}

// wsHandler receives the WebSocket links of the public listeners.
type wsHandler struct{ g *Gateway }

func (h wsHandler) OnOpen(c *lws.Conn) {
	g := h.g
	g.waitStarted()
	ll := c.Link()
	l := &Link{ID: ll.ID, Type: TypeTCPListen, Listener: ll.Listener, Remote: addrString(ll.Remote), Path: ll.Path, Opened: ll.Opened, conn: c}
	lc := g.listenerCfg(ll.Listener)
	// CheckUpgrade verified the token before the 101 and left the user.
	l.User, _ = c.Value().(string)
	c.SetValue(l)
	g.addLink(l)
	if g.draining.Load() {
		// Draining began between the upgrade check and now.
		_ = c.Close(4000+lws.StatusCode(503), "draining")
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
	l, _ := c.Value().(*Link)
	if l == nil {
		return
	}
	l.countIn(len(data))
	g.metrics.msgIn(len(data))
	l.mu.Lock()
	if held := l.held; held != nil {
		// The connect hook has not answered: keep the message, bounded.
		lc := g.listenerCfg(l.Listener)
		if lc != nil && held.bytes+int64(len(data)) > int64(lc.Limits.MaxMessage) {
			l.mu.Unlock()
			_ = c.Close(lws.StatusPolicyViolation, "too much data before the connect hook answered")
			return
		}
		held.msgs = append(held.msgs, pendingMsg{typ, append([]byte(nil), data...)})
		held.bytes += int64(len(data))
		l.mu.Unlock()
		return
	}
	l.mu.Unlock()
	if lc := g.listenerCfg(l.Listener); lc != nil && lc.Upstream != "" {
		if b := g.backend(lc.Upstream); b != nil {
			g.relayMessage(b, l, typ, data)
			return
		}
	}
	g.route(l, typ, data)
}

func (h wsHandler) OnClose(c *lws.Conn, ce lws.CloseError) {}

// release delivers the messages held for the connect hook (service
// goroutine).
func (g *Gateway) release(l *Link) {
	l.mu.Lock()
	held := l.held
	l.held = nil
	l.mu.Unlock()
	if held == nil {
		return
	}
	for _, m := range held.msgs {
		g.route(l, m.typ, m.data)
	}
}

// errorMessage is what a link is told when its message cannot be routed.
type errorMessage struct {
	Type  string `json:"type"` // "error"
	Error string `json:"error"`
	Rule  string `json:"rule,omitempty"`
}

func (g *Gateway) replyError(l *Link, rule, msg string) {
	b, _ := json.Marshal(errorMessage{Type: "error", Error: msg, Rule: rule})
	_ = g.send(l, lws.TextMessage, b)
}

// route is the routing step every received message passes (the seed's
// AnalyRoute): the embedding program's Router, then the first matching
// rule. A message nothing matches is logged and answered with an error;
// it never ends the link.
func (g *Gateway) route(l *Link, typ lws.MessageType, data []byte) {
	start := time.Now()
	// One Message, reused: route runs only on the service goroutine, and
	// a Router may not keep m past Route.
	m := &g.scratch
	*m = Message{Link: l, Type: typ, Data: data}
	defer func() {
		*m = Message{}
		g.metrics.routeSeconds.Observe(time.Since(start).Seconds())
	}()
	if g.router != nil && g.router.Route(g, m) {
		if g.routerHits == nil {
			g.routerHits = g.metrics.ruleHits.WithLabelValues("router", "router")
		}
		g.routerHits.Inc()
		g.hooks.message(m)
		return
	}
	for _, r := range *g.rules.Load() {
		if r.matches(m) {
			if r.hits == nil {
				r.hits = g.metrics.ruleHits.WithLabelValues(r.Name, r.Action)
			}
			r.hits.Inc()
			g.act(r, m)
			g.hooks.message(m)
			return
		}
	}
	g.metrics.unroutable.Inc()
	why := "no route for this message"
	if _, err := m.JSON(); err != nil && g.rulesUseJSON() {
		why = "no route for this message (not JSON: " + err.Error() + ")"
	}
	g.log.Warn("msg unknown", "link", m.Link.ID, "type", m.Type.String(), "len", len(m.Data), "why", why)
	g.replyError(m.Link, "", why)
	g.hooks.message(m)
}

func (g *Gateway) rulesUseJSON() bool {
	for _, r := range *g.rules.Load() {
		if r.Match.Field != "" || r.ChannelField != "" {
			return true
		}
	}
	return false
}

// act runs a rule's action (service goroutine).
func (g *Gateway) act(r *rule, m *Message) {
	l := m.Link
	switch r.Action {
	case "echo":
		if err := g.send(l, m.Type, m.Data); err != nil {
			g.log.Debug("echo failed", "link", l.ID, "err", err)
		}
	case "reply":
		_ = g.send(l, lws.TextMessage, []byte(r.Reply))
	case "publish", "subscribe", "unsubscribe":
		ch, err := r.channel(m)
		if err != nil {
			g.replyError(l, r.Name, err.Error())
			return
		}
		switch r.Action {
		case "publish":
			g.Publish(ch, m.Type, m.Data)
		case "subscribe":
			g.subscribe(l, ch)
			g.ack(l, "subscribed", ch)
		case "unsubscribe":
			g.hub.unsubscribe(l, ch)
			g.ack(l, "unsubscribed", ch)
		}
	case "forward":
		b := g.backend(r.Backend)
		if b == nil || b.http == nil {
			g.replyError(l, r.Name, "backend "+r.Backend+" is not configured")
			return
		}
		data := append([]byte(nil), m.Data...)
		go g.forwardMessage(b, l, m.Type, data, r.Name)
	case "relay":
		b := g.backend(r.Backend)
		if b == nil || b.http != nil {
			g.replyError(l, r.Name, "backend "+r.Backend+" is not configured")
			return
		}
		g.relayMessage(b, l, m.Type, m.Data)
	case "info":
		b, _ := json.Marshal(map[string]any{"type": "info", "link": l.ID, "user": l.User, "listener": l.Listener})
		_ = g.send(l, lws.TextMessage, b)
	case "drop":
	case "close":
		code, reason, err := r.closeArgs(m)
		if err != nil {
			g.log.Warn("bad close command", "link", l.ID, "err", err)
			g.replyError(l, r.Name, err.Error())
			return
		}
		_ = l.conn.Close(code, reason)
	}
}

func (g *Gateway) ack(l *Link, event, ch string) {
	b, _ := json.Marshal(map[string]string{"type": event, "channel": ch})
	_ = g.send(l, lws.TextMessage, b)
}
