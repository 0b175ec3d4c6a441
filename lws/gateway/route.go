package gateway

import (
	"encoding/json"
	"time"

	"github.com/lwsgate/lwsgate/lws"
)

// route is the routing step every received message passes (the seed's
// AnalyRoute): the embedding program's Router, then the first matching
// rule, whose action was compiled with it (compileRules). A message
// nothing matches is logged and answered with an error; it never ends the
// link. It runs on the service goroutine of w, the link's worker; start
// is when the message came (sinceBase).
//
// Its time goes to lwsgate_route_seconds for one message in routeSample
// on each worker (the first, then every routeSample-th): a clock reading
// and a histogram update cost about 50 ns here, 2-4% of a small
// message's whole cost on the pipelined path.
func (g *Gateway) route(w *worker, l *LinkRecord, typ lws.MessageType, data []byte, start time.Duration) {
	// One Message per worker, reused: route runs only on the worker's
	// service goroutine, and a Router may not keep m past Route.
	m := &w.scratch
	*m = Message{Link: l, Type: typ, Data: data, at: start}
	sample := w.routed%routeSample == 0
	w.routed++
	defer func() {
		*m = Message{}
		if sample {
			w.route.Observe((sinceBase() - start).Seconds())
		}
	}()
	if g.router != nil && g.router.Route(g, m) {
		if w.routerHits == nil {
			w.routerHits = g.metrics.rules.of("router", "router", len(g.workers))
		}
		w.routerHits[w.id].Add(1)
		g.hooks.message(m)
		return
	}
	set := g.rules.Load()
	for _, r := range set.rules {
		if r.matches(m) {
			r.hitsOnce.Do(func() { r.hits = g.metrics.rules.of(r.Name, string(r.Action), len(g.workers)) })
			r.hits[w.id].Add(1)
			r.run(g, r, m)
			g.hooks.message(m)
			return
		}
	}
	g.unroutable(set, m)
	g.hooks.message(m)
}

// unroutable answers a message no rule took.
func (g *Gateway) unroutable(set *ruleSet, m *Message) {
	g.metrics.unroutable.Inc()
	why := "no route for this message"
	if _, err := m.JSON(); err != nil && set.usesJSON {
		why = "no route for this message (not JSON: " + err.Error() + ")"
	}
	g.log.Warn("msg unknown", "link", m.Link.ID, "type", m.Type.String(), "len", len(m.Data), "why", why)
	g.replyError(m.Link, "", why)
}

// deliverHeld routes the messages held for the connect hook, once it has
// answered (the service goroutine of the link's worker).
func (g *Gateway) deliverHeld(l *LinkRecord) {
	held := l.held
	l.held = nil
	if held == nil {
		return
	}
	for _, m := range held.msgs {
		g.route(l.w, l, m.typ, m.data, sinceBase())
	}
}

// errorMessage is what a link is told when its message cannot be routed.
type errorMessage struct {
	Type  string `json:"type"` // "error"
	Error string `json:"error"`
	Rule  string `json:"rule,omitempty"`
	// Channel names the channel of a subscribe or publish refused.
	Channel string `json:"channel,omitempty"`
	// ID is a publish's id (rules[].id_field), when it had one.
	ID string `json:"id,omitempty"`
}

func (g *Gateway) replyError(l *LinkRecord, rule, msg string) {
	b, _ := json.Marshal(errorMessage{Type: "error", Error: msg, Rule: rule})
	_ = g.send(l, lws.TextMessage, b)
}

// ack tells a link that an action on a channel is done.
func (g *Gateway) ack(l *LinkRecord, event, ch string) {
	b, _ := json.Marshal(map[string]string{"type": event, "channel": ch})
	_ = g.send(l, lws.TextMessage, b)
}
