package gateway

import (
	"context"
	"net/http"
	"sync"
	"time"

	"github.com/lwsgate/lwsgate/lws"
)

// pair is one downstream link relayed to its own upstream link on a ws
// backend (the relay action). The routing of both links runs on the
// service goroutine, the dial on its own; mu guards the fields after it.
type pair struct {
	g    *Gateway
	b    *backend
	down *LinkRecord

	mu       sync.Mutex
	up       *lws.Conn
	pending  []pendingMsg // received before the upstream opened
	waiting  int64
	downGone *lws.CloseError // set when the downstream closed first
	cancel   context.CancelFunc
}

type pendingMsg struct {
	typ  lws.MessageType
	data []byte
}

// relayCode maps how one side ended to the close the other side gets:
// the same code and reason when it may be sent, 1000 for "no status", and
// for a link lost without a close frame 1001 towards the backend (the client
// went away) or 1011 towards the client. (1014 "bad gateway" would say it
// better, but gorilla/websocket and other clients reject it on receipt.)
func relayCode(ce lws.CloseError, towardsClient bool) (lws.StatusCode, string) {
	switch {
	case ce.Code.Sendable():
		return ce.Code, ce.Reason
	case ce.Code == lws.StatusNoStatusRcvd:
		return lws.StatusNormalClosure, ""
	case towardsClient:
		return lws.StatusInternalError, "upstream lost"
	}
	return lws.StatusGoingAway, "client lost"
}

// relayMessage sends a message of l to its upstream on backend b, dialling
// it first if l has none (service goroutine).
func (g *Gateway) relayMessage(b *backend, l *LinkRecord, typ lws.MessageType, data []byte) {
	p := g.upstreamFor(b, l)

	p.mu.Lock()
	up := p.up
	if up == nil {
		if p.waiting+int64(len(data)) > g.maxMessage(l.Listener) {
			p.mu.Unlock()
			_ = l.conn.Close(lws.StatusTryAgainLater, "upstream not ready")
			return
		}
		p.pending = append(p.pending, pendingMsg{typ, append([]byte(nil), data...)})
		p.waiting += int64(len(data))
		p.mu.Unlock()
		return
	}
	p.mu.Unlock()
	if err := up.Send(typ, data); err != nil {
		g.log.Warn("relay to upstream failed", "link", l.ID, "upstream", up.ID(), "err", err)
	}
}

// upstreamFor returns l's pair on backend b, dialling the upstream link if
// there is none yet.
func (g *Gateway) upstreamFor(b *backend, l *LinkRecord) *pair {
	l.mu.Lock()
	defer l.mu.Unlock()
	p := l.relays[b.cfg.Name]
	if p == nil {
		ctx, cancel := context.WithTimeout(context.Background(), b.cfg.Timeout.D())
		p = &pair{g: g, b: b, down: l, cancel: cancel}
		if l.relays == nil {
			l.relays = map[string]*pair{}
		}
		l.relays[b.cfg.Name] = p
		go p.dial(ctx)
	}
	return p
}

func (p *pair) dial(ctx context.Context) {
	defer p.cancel()
	g, bc := p.g, p.b.cfg
	opts := &lws.DialOptions{TLS: p.b.tls, Handler: upstream{p}, Header: http.Header{}}
	p.b.hdrs.apply(opts.Header, p.down.hdr)
	if o := opts.Header.Get("Origin"); o != "" {
		opts.Origin = o // libwebsockets writes it
		opts.Header.Del("Origin")
	}
	if p.down.Remote != "" {
		opts.Header.Set("X-Forwarded-For", clientIP(p.down.Remote))
	}
	if lc := g.listenerCfg(p.down.Listener); lc != nil {
		opts.MaxMessageSize = int64(lc.Limits.MaxMessage)
	}
	start := time.Now()
	// The upstream link lives on the client link's worker.
	_, err := p.down.w.ctx.DialRetry(ctx, bc.URL, opts,
		lws.Backoff{Initial: bc.Reconnect.Initial.D(), Max: bc.Reconnect.Max.D()},
		func(n int, err error, wait time.Duration) {
			g.log.Warn("upstream dial failed", "link", p.down.ID, "backend", bc.Name, "attempt", n, "err", err, "retry_in", wait)
		})
	g.metrics.backendSeconds.WithLabelValues(bc.Name, "dial").Observe(time.Since(start).Seconds())
	if err != nil {
		g.metrics.backendErrors.WithLabelValues(bc.Name, "dial").Inc()
		p.mu.Lock()
		gone := p.downGone != nil
		p.pending, p.waiting = nil, 0
		p.mu.Unlock()
		if !gone {
			_ = p.down.conn.Close(lws.StatusTryAgainLater, "upstream unavailable")
		}
	}
}

// downClosed is called when the downstream link is destroyed.
func (p *pair) downClosed(ce lws.CloseError) {
	p.mu.Lock()
	p.downGone = &ce
	up := p.up
	p.pending, p.waiting = nil, 0
	p.mu.Unlock()
	p.cancel() // stops a dial in progress
	if up != nil {
		code, reason := relayCode(ce, false)
		_ = up.Close(code, reason)
	}
}

// upstream is the Handler of one upstream link (tcpconnect).
type upstream struct{ p *pair }

func (u upstream) OnOpen(c *lws.Conn) {
	p, g := u.p, u.p.g
	ll := c.Link()
	l := &LinkRecord{ID: g.linkID(ll.ID), Type: TypeTCPConnect, Remote: addrString(ll.Remote), URL: ll.URL, Opened: ll.Opened, conn: c, w: p.down.w}
	c.SetValue(l)
	g.addLink(l, ll.ID)

	p.mu.Lock()
	gone := p.downGone
	if gone == nil {
		p.up = c
	}
	pending := p.pending
	p.pending, p.waiting = nil, 0
	p.mu.Unlock()
	if gone != nil {
		code, reason := relayCode(*gone, false)
		_ = c.Close(code, reason)
		return
	}
	g.routes.bindFriend(p.down.ID, l.ID)
	for _, m := range pending {
		if err := c.Send(m.typ, m.data); err != nil {
			g.log.Warn("relay to upstream failed", "link", p.down.ID, "upstream", c.ID(), "err", err)
		}
	}
}

func (u upstream) OnMessage(c *lws.Conn, typ lws.MessageType, data []byte) {
	if l, _ := c.Value().(*LinkRecord); l != nil {
		l.countIn(len(data), sinceBase())
	}
	if err := u.p.g.send(u.p.down, typ, data); err != nil {
		u.p.g.log.Warn("relay to client failed", "link", u.p.down.ID, "upstream", c.ID(), "err", err)
	}
}

func (u upstream) OnClose(c *lws.Conn, ce lws.CloseError) {
	code, reason := relayCode(ce, true)
	_ = u.p.down.conn.Close(code, reason)
}
