package lws

// Limit names, passed to Config.OnLimit each time a limit or an input check
// refuses something. They are stable: metrics and alerts may match them.
// Each is reported on the service goroutine, with the Name of the listener
// concerned ("" for a link this side dialled).
//
//	name              what was refused                                  how
//	max_links         a connection beyond Listener.MaxLinks              closed at accept
//	max_links_per_ip  a connection beyond Listener.MaxLinksPerIP         closed at accept
//	accept_rate       a connection beyond Listener.AcceptRate            closed at accept
//	header_timeout    a request whose headers took Listener.HeaderTimeout closed
//	body_timeout      a request body that took Listener.BodyTimeout       408, closed
//	max_body          a request body over Listener.MaxBodySize            413, closed
//	max_message       a WebSocket message over MaxMessageSize             1009 close
//	send_queue        a Send beyond MaxSendQueue (once per full queue)     ErrSendQueueFull
//	bad_request       a malformed or ambiguous HTTP request (framing)     400/411/501, closed
//	bad_upgrade       an invalid WebSocket upgrade request                400/426, closed
//	bad_close         an invalid close frame from the peer                1002/1007 close
//	bad_utf8          a text message that is not valid UTF-8              1007 close
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
