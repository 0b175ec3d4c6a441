package gateway

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/lwsgate/lwsgate/lws"
)

// Action is what a rule does with a message it matches (rules[].action).
type Action string

// The actions.
const (
	ActionEcho        Action = "echo"        // send it back
	ActionInfo        Action = "info"        // tell the link its id, user and listener
	ActionReply       Action = "reply"       // send the rule's reply
	ActionPublish     Action = "publish"     // send it to the channel's links
	ActionSubscribe   Action = "subscribe"   // add the link to the channel
	ActionUnsubscribe Action = "unsubscribe" // take the link out of the channel
	ActionForward     Action = "forward"     // POST it to an http backend; the answer comes back
	ActionRelay       Action = "relay"       // send it to the link's own upstream link on a ws backend
	ActionDrop        Action = "drop"        // nothing
	ActionClose       Action = "close"       // close the link
)

// actionSpec is one action: what a rule with it must say, checked with the
// config (Validate), and what it does with a message, compiled into each
// of its rules (compileRules) so that nothing is looked up per message.
type actionSpec struct {
	name  Action
	check func(r *RuleConfig, backends map[string]*BackendConfig) *fieldErr // nil: nothing to check
	run   func(g *Gateway, r *rule, m *Message)                             // on the service goroutine
}

// actionTable is every action, in the order the documentation gives them:
// the one place an action is added.
var actionTable = []actionSpec{
	{ActionEcho, nil, actEcho},
	{ActionInfo, nil, actInfo},
	{ActionReply, checkReply, actReply},
	{ActionPublish, checkChannel, actPublish},
	{ActionSubscribe, checkChannel, actSubscribe},
	{ActionUnsubscribe, checkChannel, actUnsubscribe},
	{ActionForward, checkBackend("http", "https"), actForward},
	{ActionRelay, checkBackend("ws", "wss"), actRelay},
	{ActionDrop, nil, func(*Gateway, *rule, *Message) {}},
	{ActionClose, checkClose, actClose},
}

// Actions returns the rule actions, in the order the documentation gives
// them.
func Actions() []Action {
	out := make([]Action, len(actionTable))
	for i, a := range actionTable {
		out[i] = a.name
	}
	return out
}

func actionSpecOf(a Action) *actionSpec {
	for i := range actionTable {
		if actionTable[i].name == a {
			return &actionTable[i]
		}
	}
	return nil
}

// checkAction checks a rule's action and what it needs.
func checkAction(r *RuleConfig, backends map[string]*BackendConfig) *fieldErr {
	spec := actionSpecOf(r.Action)
	switch {
	case r.Action == "":
		return &fieldErr{"action", "required: one of " + actionList()}
	case spec == nil:
		return &fieldErr{"action", fmt.Sprintf("%q: want one of %s", r.Action, actionList())}
	case r.IDField != "" && r.Action != ActionPublish:
		return &fieldErr{"id_field", "only the publish action takes one"}
	case r.IDField != "" && !validFieldPath(r.IDField):
		return &fieldErr{"id_field", fmt.Sprintf("%q: want a dotted path", r.IDField)}
	case spec.check != nil:
		return spec.check(r, backends)
	}
	return nil
}

func actionList() string {
	names := make([]string, len(actionTable))
	for i, a := range actionTable {
		names[i] = string(a.name)
	}
	return strings.Join(names, ", ")
}

func checkReply(r *RuleConfig, _ map[string]*BackendConfig) *fieldErr {
	if r.Reply == "" {
		return &fieldErr{"reply", "required by the reply action"}
	}
	return nil
}

func checkChannel(r *RuleConfig, _ map[string]*BackendConfig) *fieldErr {
	switch {
	case (r.Channel == "") == (r.ChannelField == ""):
		return &fieldErr{"channel", "the " + string(r.Action) + " action needs one of channel and channel_field"}
	case r.ChannelField != "" && !validFieldPath(r.ChannelField):
		return &fieldErr{"channel_field", fmt.Sprintf("%q: want a dotted path", r.ChannelField)}
	case r.Channel != "" && !validChannel(r.Channel):
		return &fieldErr{"channel", fmt.Sprintf("a channel is 1 to %d bytes", maxChannel)}
	}
	return nil
}

// checkBackend requires the rule's backend to be one of schemes.
func checkBackend(schemes ...string) func(*RuleConfig, map[string]*BackendConfig) *fieldErr {
	return func(r *RuleConfig, backends map[string]*BackendConfig) *fieldErr {
		b := backends[r.Backend]
		if b == nil {
			return &fieldErr{"backend", fmt.Sprintf("%q: no such backend", r.Backend)}
		}
		for _, s := range schemes {
			if strings.HasPrefix(b.URL, s+"://") {
				return nil
			}
		}
		return &fieldErr{"backend", fmt.Sprintf("%q is not a %s backend", r.Backend, strings.Join(schemes, "/"))}
	}
}

func checkClose(r *RuleConfig, _ map[string]*BackendConfig) *fieldErr {
	if r.Code != 0 && !lws.StatusCode(r.Code).Sendable() {
		return &fieldErr{"code", fmt.Sprintf("%d: %s", r.Code, notSendable)}
	}
	if !validCloseReason(r.Reason) {
		return &fieldErr{"reason", fmt.Sprintf("longer than %d bytes", lws.MaxCloseReason)}
	}
	return nil
}

// notSendable says which close codes may be sent (lws.StatusCode.Sendable).
const notSendable = "not a close code that may be sent (1000-1003, 1007-1014, 3000-4999)"

// validCloseReason is the rule for a close reason, wherever it comes from
// (a rule, a message, the admin API): at most lws.MaxCloseReason bytes.
func validCloseReason(reason string) bool { return len(reason) <= lws.MaxCloseReason }

func actEcho(g *Gateway, _ *rule, m *Message) {
	if err := g.sendAt(m.Link, m.Type, m.Data, m.at); err != nil {
		g.log.Debug("echo failed", "link", m.Link.ID, "err", err)
	}
}

func actInfo(g *Gateway, _ *rule, m *Message) {
	l := m.Link
	b, _ := json.Marshal(map[string]any{"type": "info", "link": l.ID, "user": l.User, "listener": l.Listener})
	_ = g.send(l, lws.TextMessage, b)
}

func actReply(g *Gateway, r *rule, m *Message) { _ = g.sendAt(m.Link, lws.TextMessage, r.reply, m.at) }

func actPublish(g *Gateway, r *rule, m *Message) {
	if ch, ok := g.channelOf(r, m); ok && g.allowed(r, m.Link, ActionPublish, ch) {
		if g.hasHistory(ch) {
			// Stored first (once per id), then delivered from the
			// stream; the link is told its position (history.go).
			id, err := r.publishID(m)
			if err != nil {
				g.replyErrorOn(m.Link, r.Name, ch, err.Error())
				return
			}
			g.publishFromLink(m.Link, r.Name, ch, id, m.Type, m.Data)
			return
		}
		g.publishFrom(m.Link.w, ch, m.Type, m.Data)
	}
}

func actSubscribe(g *Gateway, r *rule, m *Message) {
	if ch, ok := g.channelOf(r, m); ok && g.allowed(r, m.Link, ActionSubscribe, ch) {
		if g.hasHistory(ch) {
			// At the message's since, if any (history.go).
			since, err := sinceOf(m)
			if err != nil {
				g.replyErrorOn(m.Link, r.Name, ch, err.Error())
				return
			}
			g.subscribeAt(m.Link, r.Name, ch, since)
			return
		}
		g.subscribe(m.Link, ch)
		g.ack(m.Link, "subscribed", ch)
	}
}

// allowed reports whether l's token lets it subscribe or publish to ch
// (auth.channels_claim); when not, the link is told so, naming the
// channel, and stays open. Whatever a link's message makes a rule do is
// held to the link's token, a rule's fixed channel included; the admin
// API and a Router act for the operator and are not.
func (g *Gateway) allowed(r *rule, l *LinkRecord, act Action, ch string) bool {
	if l.Identity.AllowsChannel(ch) {
		return true
	}
	g.metrics.channelRefused.WithLabelValues(string(act)).Inc()
	g.log.Info("channel refused", "link", l.ID, "user", l.User, "action", string(act), "channel", ch)
	b, _ := json.Marshal(errorMessage{Type: "error", Error: fmt.Sprintf("%s %q: not allowed by your token", act, ch), Rule: r.Name, Channel: ch})
	_ = g.send(l, lws.TextMessage, b)
	return false
}

func actUnsubscribe(g *Gateway, r *rule, m *Message) {
	if ch, ok := g.channelOf(r, m); ok {
		g.hub.unsubscribe(m.Link, ch)
		g.ack(m.Link, "unsubscribed", ch)
	}
}

// channelOf returns the rule's channel for m, or answers the link with
// why there is none.
func (g *Gateway) channelOf(r *rule, m *Message) (string, bool) {
	ch, err := r.channel(m)
	if err != nil {
		g.replyError(m.Link, r.Name, err.Error())
		return "", false
	}
	return ch, true
}

func actForward(g *Gateway, r *rule, m *Message) {
	b := g.backend(r.Backend)
	if b == nil || b.http == nil {
		g.replyError(m.Link, r.Name, "backend "+r.Backend+" is not configured")
		return
	}
	data := append([]byte(nil), m.Data...)
	go g.forwardMessage(b, m.Link, m.Type, data, r.Name)
}

func actRelay(g *Gateway, r *rule, m *Message) {
	b := g.backend(r.Backend)
	if b == nil || b.http != nil {
		g.replyError(m.Link, r.Name, "backend "+r.Backend+" is not configured")
		return
	}
	g.relayMessage(b, m.Link, m.Type, m.Data)
}

func actClose(g *Gateway, r *rule, m *Message) {
	code, reason, err := r.closeArgs(m)
	if err != nil {
		g.log.Warn("bad close command", "link", m.Link.ID, "err", err)
		g.replyError(m.Link, r.Name, err.Error())
		return
	}
	_ = m.Link.conn.Close(code, reason)
}
