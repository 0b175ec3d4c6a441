package lws

import (
	"net/http"
	"net/netip"
	"time"
)

// Limit names, passed to Config.OnLimit each time a limit or an input check
// refuses something. They are stable: metrics and alerts may match them.
// Each is reported on the service goroutine, with the Name of the listener
// concerned ("" for a link this side dialled).
//
//	name              what was refused                                  answer
//	max_links         a connection beyond Listener.MaxLinks             closed at accept
//	max_links_per_ip  a connection beyond Listener.MaxLinksPerIP        closed at accept
//	accept_rate       a connection beyond Listener.AcceptRate           closed at accept
//	header_timeout    headers slower than Listener.HeaderTimeout        closed
//	body_timeout      a body slower than Listener.BodyTimeout           408, closed
//	max_body          a body over Listener.MaxBodySize                  413, closed
//	max_message       a message over MaxMessageSize                     1009 close
//	max_compressed    a compressed message too long on the wire (below) 1009 close
//	send_queue        a Send beyond MaxSendQueue (once per full queue)  ErrSendQueueFull
//	bad_request       an ambiguous or malformed HTTP request            400/411/501, closed
//	bad_upgrade       an invalid WebSocket upgrade request              400/426, closed
//	bad_close         an invalid close frame from the peer              1002/1007 close
//	bad_utf8          a text message that is not valid UTF-8            1007 close
//
// max_compressed applies to links with permessage-deflate
// (Listener.Compression, DialOptions.Compression): the compressed bytes of
// one message may not pass MaxMessageSize + MaxMessageSize/8 + 4 KiB, so
// that a stream of deflate data that inflates to little or nothing (empty
// blocks) cannot make one message that never ends.
//
// What libwebsockets refuses by itself without a callback (a request line
// or header it cannot parse, headers over Config.MaxHeaderBytes, WebSocket
// frames with reserved bits, opcodes or lengths it rejects) is closed
// without the binding knowing, and cannot be reported.
const (
	LimitMaxLinks      = "max_links"
	LimitMaxLinksPerIP = "max_links_per_ip"
	LimitAcceptRate    = "accept_rate"
	LimitHeaderTimeout = "header_timeout"
	LimitBodyTimeout   = "body_timeout"
	LimitMaxBody       = "max_body"
	LimitMaxMessage    = "max_message"
	LimitMaxCompressed = "max_compressed"
	LimitSendQueue     = "send_queue"
	LimitBadRequest    = "bad_request"
	LimitBadUpgrade    = "bad_upgrade"
	LimitBadClose      = "bad_close"
	LimitBadUTF8       = "bad_utf8"
)

// limitHit reports a limit for r's listener (service goroutine).
func (c *Context) limitHit(r *rec, limit string) {
	var lis *listener
	var id uint64
	if r != nil {
		lis, id = r.lis, r.id
	}
	c.limitHitOn(lis, id, limit)
}

// limitHitOn reports a limit for lis (nil: a dialled link).
func (c *Context) limitHitOn(lis *listener, link uint64, limit string) {
	name := ""
	if lis != nil {
		name = lis.cfg.Name
	}
	c.log.Debug("lws: limit hit", "listener", name, "limit", limit, "link", link)
	if f := c.cfg.OnLimit; f != nil {
		defer c.recoverHook("OnLimit")
		f(name, limit)
	}
}

// admission is a listener's accept-time accounting (service goroutine).
type admission struct {
	live   int                // connections accepted and not yet destroyed
	perIP  map[netip.Addr]int // by ipKey
	tokens float64            // accept-rate bucket
	last   time.Time          // when tokens was last refilled
}

// pendingAccept carries a connection admitted at FILTER_NETWORK_CONNECTION
// to its WSI_CREATE, which libwebsockets calls next for it.
type pendingAccept struct {
	lis   *listener
	key   netip.Addr
	valid bool
}

// ipKey is what MaxLinksPerIP counts by: an IPv4 address, or the /64 of an
// IPv6 one (an IPv4-mapped address counts as IPv4).
func ipKey(b []byte) (netip.Addr, bool) {
	switch len(b) {
	case 4:
		return netip.AddrFrom4([4]byte(b)), true
	case 16:
		a := netip.AddrFrom16([16]byte(b)).Unmap()
		if a.Is4() {
			return a, true
		}
		p, _ := a.Prefix(64)
		return p.Addr(), true
	}
	return netip.Addr{}, false
}

// admit decides at FILTER_NETWORK_CONNECTION whether lis takes a new
// connection from the peer whose address the C layer passed as ip. It
// returns the callback's result: -1 makes libwebsockets close the socket.
func (c *Context) admit(lis *listener, ip []byte, now time.Time) int {
	cfg, a := &lis.cfg, &lis.adm
	key, ok := ipKey(ip)
	switch {
	case cfg.MaxLinks > 0 && a.live >= cfg.MaxLinks:
		c.limitHitOn(lis, 0, LimitMaxLinks)
		return -1
	case ok && cfg.MaxLinksPerIP > 0 && a.perIP[key] >= cfg.MaxLinksPerIP:
		c.limitHitOn(lis, 0, LimitMaxLinksPerIP)
		return -1
	}
	if rate := float64(cfg.AcceptRate); rate > 0 {
		if a.last.IsZero() {
			a.tokens = rate
		} else if dt := now.Sub(a.last).Seconds(); dt > 0 {
			a.tokens = min(rate, a.tokens+dt*rate)
		}
		a.last = now
		if a.tokens < 1 {
			c.limitHitOn(lis, 0, LimitAcceptRate)
			return -1
		}
		a.tokens--
	}
	c.accepting = pendingAccept{lis: lis, key: key, valid: ok}
	return 0
}

// countLink starts accounting for an accepted connection at its
// WSI_CREATE, and bounds the wait for its first request's headers.
func (c *Context) countLink(r *rec) {
	p := c.accepting
	c.accepting = pendingAccept{}
	if p.lis == nil || p.lis != r.lis || r.counted {
		return
	}
	r.counted = true
	p.lis.adm.live++
	if p.valid {
		r.ipKey = p.key
		if p.lis.adm.perIP == nil {
			p.lis.adm.perIP = map[netip.Addr]int{}
		}
		p.lis.adm.perIP[p.key]++
	}
	c.setTimer(r, timerHeader, r.lis.cfg.HeaderTimeout)
}

// uncountLink ends the accounting of countLink (WSI_DESTROY).
func (c *Context) uncountLink(r *rec) {
	if !r.counted {
		return
	}
	r.counted = false
	a := &r.lis.adm
	a.live--
	if r.ipKey.IsValid() {
		if a.perIP[r.ipKey]--; a.perIP[r.ipKey] <= 0 {
			delete(a.perIP, r.ipKey)
		}
	}
}

// timerKind says what a connection's TIMER callback is for.
type timerKind uint8

const (
	timerNone   timerKind = iota
	timerHeader           // the first request's headers must be in
	timerBody             // the request body must be in
	timerKill             // a refusal could not be written in time
)

// setTimer (re)arms r's TIMER callback for k after d; timerNone cancels.
func (c *Context) setTimer(r *rec, k timerKind, d time.Duration) {
	if r.wsi == 0 || (k == timerNone && r.timer == timerNone) {
		return
	}
	r.timer = k
	if k == timerNone {
		r.wsi.SetTimer(-1)
		return
	}
	r.wsi.SetTimer(d)
}

// onTimer is LWS_CALLBACK_TIMER on an accepted connection.
func (c *Context) onTimer(r *rec) int {
	k := r.timer
	r.timer = timerNone
	switch k {
	case timerHeader:
		c.limitHit(r, LimitHeaderTimeout)
		return -1
	case timerBody:
		if r.http == nil || r.http.txn == nil || r.http.txn.served {
			return 0
		}
		w := r.http.txn
		c.limitHit(r, LimitBodyTimeout)
		w.respondErrorText(http.StatusRequestTimeout, "the request body took too long", true)
		// A client that does not read either gets no answer: give
		// the 408 a network timeout to go out.
		c.setTimer(r, timerKill, c.cfg.NetworkTimeout)
		return 0
	case timerKill:
		return -1
	}
	return 0
}
