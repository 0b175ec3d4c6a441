package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/lwsgate/lwsgate/lws"
)

// Link type names, after the seed's listener types and their client
// counterparts.
const (
	typeTCPListen   = "tcplisten"   // a WebSocket link a client opened to us
	typeHTTPListen  = "httplisten"  // an HTTP connection a client opened to us
	typeTCPConnect  = "tcpconnect"  // a WebSocket link we opened to a backend
	typeHTTPConnect = "httpconnect" // an HTTP request we made to a backend
)

func linkType(l lws.Link) string {
	switch {
	case l.Kind == lws.LinkWebSocket && l.URL != "":
		return typeTCPConnect
	case l.Kind == lws.LinkWebSocket:
		return typeTCPListen
	case l.URL != "":
		return typeHTTPConnect
	}
	return typeHTTPListen
}

// routeTable binds links to each other, as the seed's Route_BindFriend did:
// a downstream link and the upstream link that serves it are friends, and
// every route of a link is removed when the link goes away, whichever side
// goes first.
//
// Concurrency: safe from any goroutine.
type routeTable struct {
	mu     sync.Mutex
	routes map[uint64]map[uint64]struct{}
	log    *slog.Logger
}

func newRouteTable(log *slog.Logger) *routeTable {
	return &routeTable{routes: map[uint64]map[uint64]struct{}{}, log: log}
}

// bindFriend routes a to b and b to a.
func (t *routeTable) bindFriend(a, b uint64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, p := range [][2]uint64{{a, b}, {b, a}} {
		m := t.routes[p[0]]
		if m == nil {
			m = map[uint64]struct{}{}
			t.routes[p[0]] = m
		}
		m[p[1]] = struct{}{}
	}
	t.log.Debug("route bind friend", "link", a, "friend", b)
}

// del removes every route from and to link.
func (t *routeTable) del(link uint64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for peer := range t.routes[link] {
		if m := t.routes[peer]; m != nil {
			delete(m, link)
			if len(m) == 0 {
				delete(t.routes, peer)
			}
		}
		t.log.Debug("route del", "link", link, "friend", peer)
	}
	delete(t.routes, link)
}

// friends returns the links link is routed to.
func (t *routeTable) friends(link uint64) []uint64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	var out []uint64
	for p := range t.routes[link] {
		out = append(out, p)
	}
	return out
}

// len returns the number of routes (each direction counts).
func (t *routeTable) len() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := 0
	for _, m := range t.routes {
		n += len(m)
	}
	return n
}

// relay gives each downstream WebSocket link its own upstream link and
// relays messages both ways; a close on either side closes the other with
// the same code (see relayCode).
//
// Concurrency: the Handler methods run on the service goroutine; the
// upstream dial runs on its own goroutine.
type relay struct {
	url     string
	opts    lws.DialOptions // Handler is set per link
	backoff lws.Backoff
	timeout time.Duration // for the whole dial, retries included
	maxWait int64         // bytes buffered per link until the upstream opens
	routes  *routeTable
	log     *slog.Logger
}

// pair is one downstream link and its upstream. mu guards the fields after
// it: the handlers of both links run on the service goroutine, the
// upstream dial on its own.
type pair struct {
	down *lws.Conn

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

// downstream returns the Handler for client links.
func (r *relay) downstream() lws.Handler {
	return lws.HandlerFuncs{Open: r.onDownOpen, Message: r.onDownMessage, Close: r.onDownClose}
}

func (r *relay) onDownOpen(c *lws.Conn) {
	ctx, cancel := context.WithTimeout(context.Background(), r.timeout)
	p := &pair{down: c, cancel: cancel}
	c.SetValue(p)
	go r.dialUp(ctx, p)
}

func (r *relay) dialUp(ctx context.Context, p *pair) {
	defer p.cancel()
	opts := r.opts
	opts.Handler = upstream{r: r, p: p}
	_, err := p.down.Context().DialRetry(ctx, r.url, &opts, r.backoff, func(n int, err error, wait time.Duration) {
		r.log.Warn("upstream dial failed", "link", p.down.ID(), "attempt", n, "err", err, "retry_in", wait)
	})
	if err != nil {
		p.mu.Lock()
		gone := p.downGone != nil
		p.pending, p.waiting = nil, 0
		p.mu.Unlock()
		if !gone {
			_ = p.down.Close(lws.StatusTryAgainLater, "upstream unavailable")
		}
	}
}

func (r *relay) onDownMessage(c *lws.Conn, typ lws.MessageType, data []byte) {
	p, _ := c.Value().(*pair)
	if p == nil {
		return
	}
	p.mu.Lock()
	up := p.up
	if up == nil {
		if p.waiting+int64(len(data)) > r.maxWait {
			p.mu.Unlock()
			_ = c.Close(lws.StatusTryAgainLater, "upstream not ready")
			return
		}
		p.pending = append(p.pending, pendingMsg{typ, append([]byte(nil), data...)})
		p.waiting += int64(len(data))
		p.mu.Unlock()
		return
	}
	p.mu.Unlock()
	if err := up.Send(typ, data); err != nil {
		r.log.Warn("relay to upstream failed", "link", c.ID(), "upstream", up.ID(), "err", err)
	}
}

func (r *relay) onDownClose(c *lws.Conn, ce lws.CloseError) {
	p, _ := c.Value().(*pair)
	if p == nil {
		return
	}
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

// upstream is the Handler of one upstream link.
type upstream struct {
	r *relay
	p *pair
}

func (u upstream) OnOpen(c *lws.Conn) {
	p := u.p
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
	u.r.routes.bindFriend(p.down.ID(), c.ID())
	for _, m := range pending {
		if err := c.Send(m.typ, m.data); err != nil {
			u.r.log.Warn("relay to upstream failed", "link", p.down.ID(), "upstream", c.ID(), "err", err)
		}
	}
}

func (u upstream) OnMessage(c *lws.Conn, typ lws.MessageType, data []byte) {
	if err := u.p.down.Send(typ, data); err != nil {
		u.r.log.Warn("relay to client failed", "link", u.p.down.ID(), "upstream", c.ID(), "err", err)
	}
}

func (u upstream) OnClose(c *lws.Conn, ce lws.CloseError) {
	code, reason := relayCode(ce, true)
	_ = u.p.down.Close(code, reason)
}

// forwarder sends HTTP requests under a path prefix to an HTTP backend and
// returns its response. It is not changed after start; forward runs on a
// goroutine of its own per request.
type forwarder struct {
	prefix  string
	base    *url.URL
	tls     *lws.ClientTLS
	maxBody int64
	log     *slog.Logger
}

// parseForward parses "PREFIX=URL", e.g. "/v1/backend/=http://127.0.0.1:9000".
func parseForward(s string) (string, *url.URL, error) {
	prefix, raw, ok := strings.Cut(s, "=")
	if !ok || !strings.HasPrefix(prefix, "/") {
		return "", nil, fmt.Errorf("%q: want PREFIX=URL with PREFIX starting with /", s)
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", nil, fmt.Errorf("%q: backend %q is not an http:// or https:// URL", s, raw)
	}
	return prefix, u, nil
}

// hopHeaders are not forwarded (RFC 9110 section 7.6.1).
var hopHeaders = map[string]bool{
	"Connection": true, "Keep-Alive": true, "Proxy-Connection": true, "Te": true,
	"Trailer": true, "Transfer-Encoding": true, "Upgrade": true, "Host": true,
	"Content-Length": true,
}

// forward runs on its own goroutine and answers w.
func (f *forwarder) forward(w *lws.ResponseWriter, r *lws.Request) {
	target := *f.base
	target.Path = strings.TrimSuffix(f.base.Path, "/") + r.Path
	target.RawQuery = r.Query().Encode()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, r.Method, target.String(), strings.NewReader(string(r.Body)))
	if err != nil {
		f.fail(w, r, http.StatusBadGateway, err)
		return
	}
	for k, vs := range r.Header {
		if !hopHeaders[k] {
			req.Header[k] = vs
		}
	}
	if r.Remote != nil {
		host := r.Remote.String()
		if i := strings.LastIndex(host, ":"); i > 0 {
			host = strings.Trim(host[:i], "[]")
		}
		req.Header.Set("X-Forwarded-For", host)
	}
	// The backend request runs on the same Context as the listener.
	client := &http.Client{Transport: &lws.Transport{Context: w.Context(), TLS: f.tls}, CheckRedirect: noRedirect}
	resp, err := client.Do(req)
	if err != nil {
		status := http.StatusBadGateway
		var de *lws.DialError
		if errors.As(err, &de) && de.Timeout() {
			status = http.StatusGatewayTimeout
		}
		f.fail(w, r, status, err)
		return
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, f.maxBody+1))
	if err != nil || int64(len(body)) > f.maxBody {
		if err == nil {
			err = fmt.Errorf("backend response over %d bytes", f.maxBody)
		}
		f.fail(w, r, http.StatusBadGateway, err)
		return
	}
	for k, vs := range resp.Header {
		if !hopHeaders[k] {
			w.Header()[k] = vs
		}
	}
	if err := w.Respond(resp.StatusCode, body); err != nil && !errors.Is(err, lws.ErrClosed) {
		f.log.Warn("forward respond failed", "link", r.LinkID, "err", err)
	}
	f.log.Debug("forwarded", "link", r.LinkID, "method", r.Method, "path", r.Path, "backend", target.String(), "status", resp.StatusCode)
}

func (f *forwarder) fail(w *lws.ResponseWriter, r *lws.Request, status int, err error) {
	f.log.Warn("forward failed", "link", r.LinkID, "path", r.Path, "status", status, "err", err)
	w.Header().Set("Content-Type", "application/json")
	body := fmt.Sprintf(`{"code":%d,"error":%q}`, status, http.StatusText(status))
	_ = w.Respond(status, []byte(body))
}
