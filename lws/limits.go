package lws

import "fmt"

// Limit names a limit or an input check, as Config.OnLimit reports it each
// time it refuses something. The names are stable: metrics and alerts may
// match them. Each is reported on the service goroutine, with the Name of
// the listener concerned ("" for a link this side dialled).
//
//	name              what was refused                                  answer
//	max_links         a connection beyond Listener.MaxLinks             503 (below)
//	max_links_per_ip  a connection beyond Listener.MaxLinksPerIP        503 (below)
//	accept_rate       a connection beyond Listener.AcceptRate           503 (below)
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
//	bad_proxy_header  no valid PROXY header (Listener.ProxyProtocol)    closed
//
// The three admission limits answer a refused connection's request with
// 503, a Retry-After and a body naming the limit, and log a warning naming
// the limit and the address (rate-limited: see refusalLog); under a flood
// that holds 64 refused connections already, one is closed at accept
// instead (see maxRefusing).
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
type Limit string

// The limits and checks, as the table above describes them.
const (
	LimitMaxLinks       Limit = "max_links"
	LimitMaxLinksPerIP  Limit = "max_links_per_ip"
	LimitAcceptRate     Limit = "accept_rate"
	LimitHeaderTimeout  Limit = "header_timeout"
	LimitBodyTimeout    Limit = "body_timeout"
	LimitMaxBody        Limit = "max_body"
	LimitMaxMessage     Limit = "max_message"
	LimitMaxCompressed  Limit = "max_compressed"
	LimitSendQueue      Limit = "send_queue"
	LimitBadRequest     Limit = "bad_request"
	LimitBadUpgrade     Limit = "bad_upgrade"
	LimitBadClose       Limit = "bad_close"
	LimitBadUTF8        Limit = "bad_utf8"
	LimitBadProxyHeader Limit = "bad_proxy_header"
)

// limitHit reports a limit for r's listener (service goroutine).
func (r *rec) limitHit(limit Limit) {
	r.ctx.limitHitOn(r.lis, r.id, limit)
}

// limitHitOn reports a limit for lis (nil: a dialled link).
func (c *Context) limitHitOn(lis *listener, link uint64, limit Limit) {
	name := ""
	if lis != nil {
		name = lis.cfg.Name
	}
	c.log.Debug("lws: limit hit", "listener", name, "limit", string(limit), "link", link)
	if f := c.cfg.OnLimit; f != nil {
		defer c.recoverHook("OnLimit")
		f(name, limit)
	}
}

// ListenerLimits are the limits of a Listener that a running Context can
// change (SetListenerLimits): those the binding enforces in Go. Each field
// is the Listener field of the same name, with the same meaning and the
// same zero value (its default).
type ListenerLimits struct {
	MaxMessageSize int64
	MaxSendQueue   int64
	MaxBodySize    int64
	MaxLinks       int
	MaxLinksPerIP  int
	AcceptRate     int
}

// SetListenerLimits replaces the limits of the listener named name with
// lim, on the service goroutine, for the links it accepts from then on and
// for those it holds:
//
//   - MaxMessageSize applies to the next RECEIVE of every open WebSocket
//     link, so to a message already arriving too (its compressed bytes
//     too: LimitMaxCompressed);
//   - MaxSendQueue to the next Send of every open link: bytes already
//     queued stay queued;
//   - MaxBodySize to the next chunk of a body arriving and to the next
//     request;
//   - MaxLinks, MaxLinksPerIP and AcceptRate to the next connection: the
//     connections held over a lowered limit stay.
//
// What libwebsockets enforces itself cannot change on a running Context:
// MaxHeaderBytes (its header buffer, one size for the whole context),
// HeaderTimeout after the first request, the ping times, and anything
// that makes a listener's vhost (Addr, TLS, Subprotocols, Compression).
//
// It returns an error naming the field at fault (lim is then not applied),
// naming an unknown listener, or ErrClosed. It waits for the service
// goroutine; safe from any goroutine, but not from a handler (like Do).
func (c *Context) SetListenerLimits(name string, lim ListenerLimits) error {
	var lis *listener
	for _, l := range c.listeners {
		if l.cfg.Name == name {
			lis = l
		}
	}
	if lis == nil {
		return fmt.Errorf("lws: SetListenerLimits: no listener %q", name)
	}
	if lim.MaxSendQueue < 0 {
		return fmt.Errorf("lws: SetListenerLimits(%q): MaxSendQueue %d: must not be negative", name, lim.MaxSendQueue)
	}
	if lim.MaxBodySize < 0 {
		return fmt.Errorf("lws: SetListenerLimits(%q): MaxBodySize %d: must not be negative", name, lim.MaxBodySize)
	}
	// The defaults are New's: lim's fields in a Listener, defaulted.
	l := (&Config{Listeners: []Listener{{
		MaxMessageSize: lim.MaxMessageSize,
		MaxSendQueue:   lim.MaxSendQueue,
		MaxBodySize:    lim.MaxBodySize,
		MaxLinks:       lim.MaxLinks,
		MaxLinksPerIP:  lim.MaxLinksPerIP,
		AcceptRate:     lim.AcceptRate,
	}}}).withDefaults().Listeners[0]
	return c.Do(func() { c.setLimits(lis, &l) })
}

// setLimits gives lis the limits of l (service goroutine).
func (c *Context) setLimits(lis *listener, l *Listener) {
	cfg := &lis.cfg
	cfg.MaxMessageSize, cfg.MaxSendQueue, cfg.MaxBodySize = l.MaxMessageSize, l.MaxSendQueue, l.MaxBodySize
	cfg.MaxLinks, cfg.MaxLinksPerIP, cfg.AcceptRate = l.MaxLinks, l.MaxLinksPerIP, l.AcceptRate
	o := *lis.opts
	o.maxMessage, o.maxQueue = l.MaxMessageSize, l.MaxSendQueue
	lis.opts = &o
	for _, r := range c.recs {
		conn := r.conn()
		if r.lis != lis || conn == nil {
			continue
		}
		conn.o.Store(&o)
		if conn.deflate {
			limit := int64(0) // none
			if o.maxMessage >= 0 {
				limit = maxCompressed(o.maxMessage)
			}
			r.wsi.SetCompressedLimit(limit)
		}
	}
}
