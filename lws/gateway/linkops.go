package gateway

import (
	"errors"
	"time"

	"github.com/lwsgate/lwsgate/lws"
)

// What a Router and the admin API do to this node's links: send, close,
// subscribe, look up; and the errors they answer with.

// Send sends a message to a live WebSocket link. It returns ErrGone for a
// link that has closed (410 in the admin API), ErrUnknownLink for an ID
// never issued (404), lws.ErrSendQueueFull when the link does not keep up
// (it is then closed with 1008).
func (g *Gateway) Send(id uint64, typ lws.MessageType, data []byte) error {
	l, err := g.wsLink(id)
	if err != nil {
		return err
	}
	return g.send(l, typ, data)
}

func (g *Gateway) send(l *LinkRecord, typ lws.MessageType, data []byte) error {
	return g.sendAt(l, typ, data, sinceBase())
}

// sendAt is send with the clock read already (sinceBase), for the link's
// last activity: a reply to a message reuses the message's reading, a
// publish one reading for every member.
func (g *Gateway) sendAt(l *LinkRecord, typ lws.MessageType, data []byte, now time.Duration) error {
	err := l.conn.Send(typ, data)
	if err == nil {
		l.countOut(len(data), now)
		l.w.ctr.out(len(data))
	} else if errors.Is(err, lws.ErrSendQueueFull) {
		g.metrics.slowConsumer.Inc()
	}
	return err
}

// CloseLink starts closing a WebSocket link with code and reason.
func (g *Gateway) CloseLink(id uint64, code lws.StatusCode, reason string) error {
	l, err := g.wsLink(id)
	if err != nil {
		return err
	}
	return l.conn.Close(code, reason)
}

// Subscribe adds a link to a channel.
func (g *Gateway) Subscribe(id uint64, channel string) error {
	l, err := g.wsLink(id)
	if err != nil {
		return err
	}
	g.subscribe(l, channel)
	return nil
}

func (g *Gateway) subscribe(l *LinkRecord, channel string) {
	if g.hub.subscribe(l, channel) {
		g.log.Debug("subscribe", "link", l.ID, "channel", channel)
	}
}

// Unsubscribe removes a link from a channel.
func (g *Gateway) Unsubscribe(id uint64, channel string) error {
	l, err := g.wsLink(id)
	if err != nil {
		return err
	}
	g.hub.unsubscribe(l, channel)
	return nil
}

// record returns the live link id, or ErrGone, ErrUnknownLink or
// ErrRemoteLink.
func (g *Gateway) record(id uint64) (*LinkRecord, error) {
	if g.multi && !g.ownInc(id) {
		return nil, ErrRemoteLink
	}
	l, gone := g.links.get(id)
	switch {
	case gone:
		return nil, ErrGone
	case l == nil:
		return nil, ErrUnknownLink
	}
	return l, nil
}

// wsLink returns the live WebSocket link id, or why there is none.
func (g *Gateway) wsLink(id uint64) (*LinkRecord, error) {
	l, err := g.record(id)
	if err == nil && l.conn == nil {
		return nil, ErrNotWebSocket
	}
	return l, err
}

// Link returns a snapshot of a live link.
func (g *Gateway) Link(id uint64) (LinkInfo, error) {
	l, err := g.record(id)
	if err != nil {
		return LinkInfo{}, err
	}
	return l.Info(), nil
}

// Links returns a snapshot of every live link, by ID.
func (g *Gateway) Links() []LinkInfo {
	ls := g.links.list(nil)
	out := make([]LinkInfo, len(ls))
	for i, l := range ls {
		out[i] = l.Info()
	}
	return out
}

// Routes returns the route table.
func (g *Gateway) Routes() []Route { return g.routes.all() }

// Channels returns the channels and their member counts.
func (g *Gateway) Channels() []ChannelInfo { return g.hub.list() }

// Errors of the link operations (Send, CloseLink, Link...), which the
// admin API answers with 410, 404 and 409.
var (
	// ErrGone: the link was open and has closed since.
	ErrGone = errors.New("gateway: link is gone")
	// ErrUnknownLink: no link was ever issued this ID.
	ErrUnknownLink = errors.New("gateway: no link was ever issued this ID")
	// ErrRemoteLink: the id is of another node of the cluster (or an
	// earlier run of this one): the admin API reaches it, the Go methods
	// do not (they never wait on the network).
	ErrRemoteLink = errors.New("gateway: the link is not this node's (the admin API reaches the links of every node)")
	// ErrNotWebSocket: the link is an HTTP one, which has no messages.
	ErrNotWebSocket = errors.New("gateway: not a WebSocket link")
)
