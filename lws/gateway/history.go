package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/lwsgate/lwsgate/lws"
	"github.com/lwsgate/lwsgate/lws/gateway/cluster"
)

// Channels with a history (cluster.channels; README: History and
// recovery), on the gateway side. The engine stores each publish of such
// a channel in its JetStream stream and delivers it, on every node with
// members, this one included, in the stream's order through the Deliver
// hook (deliverRemote); so a publish on one is never delivered here by
// the publisher, only stored, and acknowledged with its Position:
//
//   - the admin API's publish waits for it (Idempotency-Key de-duplicates
//     a retry), a rule's publish answers the link with it ("published"),
//     and a Router's PublishAsync calls back with it;
//   - a subscribe joins the channel at a position (since, from the
//     message), on any node: the link is added between two deliveries,
//     with what it missed queued first (subscribeAt), and told whether
//     that is all of it (recovered);
//   - with envelope, each delivery is wrapped with its channel, offset
//     and epoch (envelope);
//   - GET /v1/api/channels/{ch}/history reads a channel's stored messages
//     for backends (apiHistory).
//
// Threading: publishes and resumes wait on the engine on goroutines of
// their own or the engine's; whatever reaches a link goes through
// Conn.Send or the link's worker (Context.Do).

// Position is a message's place in a channel's history: its offset, and
// the epoch of the stream that holds it (cluster.Position).
type Position = cluster.Position

// maxIdempotencyKey bounds an Idempotency-Key, in bytes.
const maxIdempotencyKey = 256

// historyTimeout bounds what waits on a channel's history stream: a
// subscribe at a position (reading what the link missed), an admin API
// publish on a history channel (until it is stored) and a history read.
// The engine tries again meanwhile what failed for want of a stream
// leader: an election takes 4 to 9 seconds.
const historyTimeout = 10 * time.Second

// PublishAsync publishes a message to channel and calls done with its
// position once the channel's history stored it, exactly once, on an
// engine goroutine (done must not block); an error wrapping
// cluster.ErrNotAcknowledged leaves it unknown whether it was stored:
// publish again with the same key, which the stream stores once within
// its duplicate window (2 minutes, or the history's ttl if shorter).
// Safe from any goroutine, a Router's Route included: it never waits. A
// channel without a history is published as Publish does (at most once)
// and done gets the zero Position at once; key is then ignored.
func (g *Gateway) PublishAsync(channel string, typ lws.MessageType, data []byte, key string, done func(Position, error)) {
	if _, ok := g.eng.Channel(channel); !ok {
		g.Publish(channel, typ, data)
		done(Position{}, nil)
		return
	}
	g.metrics.published.Inc()
	g.eng.PublishAsync(channel, cluster.Message{Data: data, Kind: uint8(typ), ID: key}, func(p Position, err error) {
		if err != nil {
			g.metrics.publishErrors.Inc()
		}
		done(p, err)
	})
}

// hasHistory reports whether channel has a history (always false under
// the memory engine).
func (g *Gateway) hasHistory(channel string) bool {
	if !g.multi {
		return false
	}
	_, ok := g.eng.Channel(channel)
	return ok
}

// publishStored publishes on a history channel without waiting (Publish,
// publishFrom): an error is counted and logged.
func (g *Gateway) publishStored(channel string, typ lws.MessageType, data []byte) {
	g.PublishAsync(channel, typ, data, "", func(_ Position, err error) {
		if err != nil {
			g.log.Warn("history publish not stored", "channel", channel, "err", err)
		}
	})
}

// publishedReply is what a link is told when its publish on a history
// channel is stored.
//
// Concurrency: a value.
type publishedReply struct {
	Type    string `json:"type"` // "published"
	Channel string `json:"channel"`
	Position
	ID string `json:"id,omitempty"` // the publish's (rules[].id_field)
}

// appendJSON appends r as json.Marshal writes it, without reflection:
// one is written for every acknowledged publish of a link.
func (r publishedReply) appendJSON(b []byte) []byte {
	b = append(b, `{"type":`...)
	b = appendJSONString(b, r.Type)
	b = append(b, `,"channel":`...)
	b = appendJSONString(b, r.Channel)
	b = append(b, `,"offset":`...)
	b = strconv.AppendUint(b, r.Offset, 10)
	b = append(b, `,"epoch":`...)
	b = appendJSONString(b, r.Epoch)
	if r.ID != "" {
		b = append(b, `,"id":`...)
		b = appendJSONString(b, r.ID)
	}
	return append(b, '}')
}

// publishFromLink publishes a link's message (rule publish) on a history
// channel and answers the link with its position, or with an error once
// it is not acknowledged (the link may send it again, with the same id).
// id, if set, is the publish's id (rules[].id_field), its idempotency
// key within the sender's scope (linkKey).
func (g *Gateway) publishFromLink(l *LinkRecord, rule, channel, id string, typ lws.MessageType, data []byte) {
	g.PublishAsync(channel, typ, data, linkKey(l, id), func(p Position, err error) {
		var b []byte
		if err != nil {
			g.log.Warn("history publish not stored", "link", l.ID, "channel", channel, "id", id, "err", err)
			b, _ = json.Marshal(errorMessage{Type: "error", Error: "publish not acknowledged: " + err.Error(), Rule: rule, Channel: channel, ID: id})
		} else {
			// Room for it all, escapes aside: growing it cost more than writing it.
			b = publishedReply{Type: "published", Channel: channel, Position: p, ID: id}.
				appendJSON(make([]byte, 0, 80+len(channel)+len(p.Epoch)+len(id)))
		}
		_ = g.send(l, lws.TextMessage, b)
	})
}

// linkKey is the idempotency key of a link's publish with id: the id
// within its user's ids (the token's subject), so that a user's retry
// on another link, or another node, is stored once while one user's ids
// never suppress another's; a link without a user has its ids to itself.
// The admin API's keys are the operator's own, unscoped: a link's never
// meets one, the scope coming first ("user:", "link:"), unless the
// operator chooses so.
func linkKey(l *LinkRecord, id string) string {
	switch {
	case id == "":
		return ""
	case l.User != "":
		return "user:" + strconv.Itoa(len(l.User)) + ":" + l.User + ":" + id
	}
	return "link:" + strconv.FormatUint(l.ID, 10) + ":" + id
}

// subscribedReply answers a subscribe to a history channel: Position is
// the link's position once the messages that follow the reply (what it
// missed, if it gave since) are applied; Recovered is false when some
// of what it missed is no longer kept, or since's epoch is not the
// stream's: the application resyncs from its own data.
//
// Concurrency: a value.
type subscribedReply struct {
	Type      string `json:"type"` // "subscribed"
	Channel   string `json:"channel"`
	Recovered bool   `json:"recovered"`
	Position
}

// sinceOf reads a subscribe message's since: {"offset": N, "epoch": E};
// none is the zero Position (join from now).
func sinceOf(m *Message) (Position, error) {
	v, ok := m.Field("since")
	if !ok || v == nil {
		return Position{}, nil
	}
	obj, ok := v.(map[string]any)
	if !ok {
		return Position{}, errors.New(`since: want {"offset": N, "epoch": "E"}`)
	}
	var p Position
	if n, ok := obj["offset"].(json.Number); ok {
		u, err := strconv.ParseUint(n.String(), 10, 64)
		if err != nil {
			return Position{}, fmt.Errorf("since.offset: %q: want a whole number", n)
		}
		p.Offset = u
	} else if obj["offset"] != nil {
		return Position{}, errors.New("since.offset: want a whole number")
	}
	e, ok := obj["epoch"].(string)
	if !ok && obj["epoch"] != nil {
		return Position{}, errors.New("since.epoch: want a string")
	}
	p.Epoch = e
	return p, nil
}

// subscribeAt subscribes l to the history channel ch at position since
// (zero: from now), on the link's worker's goroutine: the engine reads
// what l missed, then, between two deliveries of the channel, l becomes
// a member and is sent the reply and the missed messages, so that
// nothing is missed or sent twice across the switch. A link already a
// member is told so, as a plain subscribe would tell it.
func (g *Gateway) subscribeAt(l *LinkRecord, rule, ch string, since Position) {
	if g.hub.isMember(l, ch) {
		g.ack(l, "subscribed", ch)
		return
	}
	go func() {
		ctx, cancel := context.WithTimeout(g.life, historyTimeout)
		defer cancel()
		_, err := g.joinAt(ctx, l, ch, since)
		switch {
		case errors.Is(err, errMember):
			g.ack(l, "subscribed", ch) // two subscribes at once
		case errors.Is(err, ErrGone):
		case err != nil:
			g.log.Warn("subscribe at a position failed", "link", l.ID, "channel", ch, "err", err)
			g.replyErrorOn(l, rule, ch, "subscribe "+strconv.Quote(ch)+": "+err.Error())
		}
	}()
}

// errMember: the link is a member of the channel already.
var errMember = errors.New("the link is a member of the channel already")

// joinAt makes l a member of the history channel ch at position since
// (zero: from now) and waits until it is: the engine reads what l
// missed, then, between two deliveries of the channel, on the link's
// worker, l is added and sent the subscribed reply and the missed
// messages, so that nothing is missed or sent twice across the switch.
// It returns the join's catch-up; errMember if l is a member already,
// ErrGone if it closed meanwhile.
func (g *Gateway) joinAt(ctx context.Context, l *LinkRecord, ch string, since Position) (cluster.Catchup, error) {
	g.hub.hold(ch)
	defer g.hub.release(ch)
	env := g.envelope(ch)
	var out cluster.Catchup
	var joinErr error
	err := g.eng.Resume(ctx, ch, since, func(c cluster.Catchup) {
		// The engine's delivery goroutine: the next delivery waits
		// for this, and the messages queued on l's worker before it
		// are sent first (remote.go).
		join := func() {
			if cur, _ := g.links.get(l.ID); cur != l {
				joinErr = ErrGone // closed meanwhile
				return
			}
			if !g.hub.subscribe(l, ch) {
				joinErr = errMember
				return
			}
			out = c
			b, _ := json.Marshal(subscribedReply{Type: "subscribed", Channel: ch, Recovered: c.Recovered, Position: c.Position})
			_ = g.send(l, lws.TextMessage, b)
			for _, d := range c.Missed {
				typ, data := g.payload(d, env)
				if g.send(l, typ, data) != nil {
					return
				}
			}
		}
		if l.w.ctx.Do(join) != nil {
			join() // the worker has stopped: each Send says so
		}
	})
	if err != nil {
		return cluster.Catchup{}, err
	}
	return out, joinErr
}

// replyErrorOn tells l an action on ch failed (from any goroutine).
func (g *Gateway) replyErrorOn(l *LinkRecord, rule, ch, msg string) {
	b, _ := json.Marshal(errorMessage{Type: "error", Error: msg, Rule: rule, Channel: ch})
	_ = g.send(l, lws.TextMessage, b)
}

// envelope reports whether ch's deliveries are wrapped.
func (g *Gateway) envelope(ch string) bool {
	c, ok := g.eng.Channel(ch)
	return ok && c.Envelope
}

// envelopeMessage is a delivery of a channel with envelope: data for a
// text message, data_base64 for a binary one.
type envelopeMessage struct {
	Channel string `json:"channel"`
	Position
	Data       *string `json:"data,omitempty"`
	DataBase64 []byte  `json:"data_base64,omitempty"`
}

// payload is what a link is sent for d: its data, or, with env, the
// envelope (a text message).
func (g *Gateway) payload(d cluster.Delivery, env bool) (lws.MessageType, []byte) {
	typ := lws.MessageType(d.Kind)
	if !env {
		return typ, d.Data
	}
	e := envelopeMessage{Channel: d.Channel, Position: d.Position}
	if typ == lws.TextMessage && utf8.Valid(d.Data) {
		s := string(d.Data)
		e.Data = &s
	} else {
		e.DataBase64 = d.Data
		if e.DataBase64 == nil {
			e.DataBase64 = []byte{}
		}
	}
	b, _ := json.Marshal(e)
	return lws.TextMessage, b
}

// HistoryMessage is one stored message of a channel, as the history
// endpoint gives it: data for a text message, data_base64 for a binary
// one.
//
// Concurrency: a value.
type HistoryMessage struct {
	Offset     uint64  `json:"offset"`
	Data       *string `json:"data,omitempty"`
	DataBase64 []byte  `json:"data_base64,omitempty"`
}

// HistoryPage is a page of a channel's history: Position is the last
// message's (or since's when there is none), to read on from; Recovered
// is false when a message after since is no longer kept (or since's
// epoch is not the stream's); More says the limit cut the page short.
//
// Concurrency: a value.
type HistoryPage struct {
	Channel   string           `json:"channel"`
	Messages  []HistoryMessage `json:"messages"`
	Position  Position         `json:"position"`
	Recovered bool             `json:"recovered"`
	More      bool             `json:"more"`
}

// apiHistory serves GET /v1/api/channels/{ch}/history?since=&epoch=&limit=.
func (g *Gateway) apiHistory(w http.ResponseWriter, r *http.Request) {
	ch := r.PathValue("ch")
	q := r.URL.Query()
	var since Position
	var limit int
	var err error
	if s := q.Get("since"); s != "" {
		if since.Offset, err = strconv.ParseUint(s, 10, 64); err != nil {
			writeJSON(w, 400, apiError{400, "since: " + strconv.Quote(s) + ": want an offset (a whole number)"})
			return
		}
	}
	since.Epoch = q.Get("epoch")
	if s := q.Get("limit"); s != "" {
		if limit, err = strconv.Atoi(s); err != nil || limit < 1 || limit > maxHistoryPage {
			writeJSON(w, 400, apiError{400, "limit: " + strconv.Quote(s) + ": want 1 to " + strconv.Itoa(maxHistoryPage)})
			return
		}
	}
	if !validChannel(ch) {
		writeJSON(w, 400, apiError{400, "channel: 1 to " + strconv.Itoa(maxChannel) + " bytes required"})
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), historyTimeout)
	defer cancel()
	p, err := g.eng.History(ctx, ch, since, limit)
	switch {
	case errors.Is(err, cluster.ErrNoHistory):
		writeJSON(w, 404, apiError{404, "channel " + strconv.Quote(ch) + " has no history (cluster.channels)"})
		return
	case err != nil:
		g.log.Warn("history read failed", "channel", ch, "err", err)
		w.Header().Set("Retry-After", "1")
		writeJSON(w, 503, apiError{503, "history of " + strconv.Quote(ch) + ": " + err.Error()})
		return
	}
	out := HistoryPage{Channel: ch, Messages: make([]HistoryMessage, 0, len(p.Messages)), Position: p.Position, Recovered: p.Recovered, More: p.More}
	for _, d := range p.Messages {
		m := HistoryMessage{Offset: d.Position.Offset}
		if lws.MessageType(d.Kind) == lws.TextMessage && utf8.Valid(d.Data) {
			s := string(d.Data)
			m.Data = &s
		} else {
			m.DataBase64 = append([]byte{}, d.Data...)
		}
		out.Messages = append(out.Messages, m)
	}
	writeJSON(w, 200, out)
}

// maxHistoryPage is the most messages one history page holds (the
// engine's bound on one read).
const maxHistoryPage = 10000

// publishHistory serves the admin API's publish on a history channel:
// it answers once the message is stored, with its position; 503 when it
// was not acknowledged in time (retry with the same Idempotency-Key).
func (g *Gateway) publishHistory(w http.ResponseWriter, r *http.Request, ch string, typ lws.MessageType, data []byte, key string) {
	g.metrics.published.Inc()
	ctx, cancel := context.WithTimeout(r.Context(), historyTimeout)
	defer cancel()
	p, err := g.eng.Publish(ctx, ch, cluster.Message{Data: data, Kind: uint8(typ), ID: key})
	if err != nil {
		g.metrics.publishErrors.Inc()
		g.log.Warn("history publish not stored", "channel", ch, "err", err)
		w.Header().Set("Retry-After", "1")
		msg := "publish on " + strconv.Quote(ch) + " not stored: " + err.Error()
		if errors.Is(err, cluster.ErrNotAcknowledged) {
			msg = "publish on " + strconv.Quote(ch) + " not acknowledged (it may have been stored): retry with the same Idempotency-Key: " + err.Error()
		}
		writeJSON(w, 503, apiError{503, msg})
		return
	}
	writeJSON(w, 200, PublishResult{Position: &p})
}

// idempotencyKey is the publish's key: the Idempotency-Key header or the
// body's idempotency_key (not both, unless equal).
func idempotencyKey(r *http.Request, body string) (string, error) {
	h := r.Header.Get("Idempotency-Key")
	switch {
	case h != "" && body != "" && h != body:
		return "", errors.New("Idempotency-Key and idempotency_key differ: give one")
	case body == "":
		body = h
	}
	if len(body) > maxIdempotencyKey {
		return "", fmt.Errorf("idempotency key: %d bytes: want at most %d", len(body), maxIdempotencyKey)
	}
	return body, nil
}
