package lws

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/lwsgate/lwsgate/callbacks"
	"github.com/lwsgate/lwsgate/cgo"
)

// The WebSocket upgrade of an accepted connection: HTTP_CONFIRM_UPGRADE
// decides whether the request gets its 101 (the binding's checks, then
// Listener.CheckUpgrade), ESTABLISHED makes the connection a link (role
// wsServer).

// onConfirmUpgrade is HTTP_CONFIRM_UPGRADE: 0 lets libwebsockets answer
// 101, 1 means the binding answered (refuseUpgrade), -1 hangs up.
func (r *rec) onConfirmUpgrade(ev *callbacks.Event) int {
	c := r.ctx
	if ev.Flags&callbacks.StaleData != 0 {
		// libwebsockets already answered 403 to an unknown Upgrade
		// value and released the request (CVE-2025-11677): hang up.
		r.limitHit(LimitBadUpgrade)
		return -1
	}
	if r.refuse != admitted {
		return r.answerRefused(true)
	}
	u := new(pendingUpgrade)
	req := &u.Request
	var err error
	if u.raw, err = r.readRequest(req); err != nil {
		c.log.Warn("lws: reading upgrade request", "link", r.id, "err", err)
		return -1
	}
	switch {
	case !strings.EqualFold(string(ev.Data), "websocket"):
		// h2c: libwebsockets would switch to HTTP/2 if let through.
		// The Upgrade token is case-insensitive (RFC 9110 section 7.8).
		r.limitHit(LimitBadUpgrade)
		return r.refuseUpgrade(http.StatusBadRequest, "only Upgrade: websocket is supported", nil)
	case r.lis.cfg.Accept&AcceptWebSocket == 0:
		return r.refuseUpgrade(http.StatusBadRequest, "this listener does not accept WebSocket links", nil)
	case c.stopping:
		return r.refuseUpgrade(http.StatusServiceUnavailable, "", nil)
	}
	// The offers as read, which is what libwebsockets acts on too.
	var pbuf, ebuf [4]string
	offers := upgradeOffers{protocols: pbuf[:0], extensions: ebuf[:0]}
	f := checkFraming(req)
	switch {
	case f.status == http.StatusNotImplemented:
		f = refuse(http.StatusBadRequest, "a WebSocket upgrade has no body")
	case f.ok():
		f, offers = checkUpgrade(req, r.lis.protos, offers)
	}
	if !f.ok() {
		r.limitHit(LimitBadUpgrade)
		return r.refuseUpgrade(f.status, f.why, f.hdrs)
	}
	if k := r.admitForwarded(req); k != admitted {
		return r.refuseAdmission(k, addrPortOf(req.Remote).Addr(), true)
	}
	r.up = u
	if f := r.lis.cfg.CheckUpgrade; f != nil {
		if err := c.callCheckUpgrade(f, req); err != nil {
			return r.refuseUpgrade(r.refusalOf(err))
		}
	}
	if offers.rewrite {
		if status, why := r.rewriteProtocol(offers.chosen); status != 0 {
			r.limitHit(LimitBadUpgrade)
			return r.refuseUpgrade(status, why, nil)
		}
	}
	if len(offers.extensions) > 0 {
		if status, why := r.chooseOffer(offers.extensions); status != 0 {
			r.limitHit(LimitBadUpgrade)
			return r.refuseUpgrade(status, why, nil)
		}
	}
	return 0
}

// refusalOf is the answer to CheckUpgrade's error: 403, or an HTTPError's
// status, message and headers; 500 (and a warning) for an HTTPError that
// is not a refusal or whose headers cannot be sent.
func (r *rec) refusalOf(err error) (status int, msg string, hdrs []byte) {
	var he *HTTPError
	if !errors.As(err, &he) {
		return http.StatusForbidden, "", nil
	}
	hdrs, herr := headerBlob(nil, he.Header, refusalOwnHeader)
	switch {
	case he.Status < 400 || he.Status > 599:
		r.ctx.log.Warn("lws: CheckUpgrade: HTTPError.Status must be 400..599; sending 500", "link", r.id, "status", he.Status)
	case herr != nil:
		r.ctx.log.Warn("lws: CheckUpgrade: HTTPError.Header; sending 500", "link", r.id, "err", herr)
	default:
		return he.Status, he.Message, hdrs
	}
	return http.StatusInternalServerError, "", nil
}

// rewriteProtocol makes a Sec-WebSocket-Protocol list libwebsockets cannot
// read (longer than it parses, or on more than one line) the one name
// checkUpgrade chose from it, protos[chosen], the only one lws then sees;
// a list too long even for that is refused with 431.
func (r *rec) rewriteProtocol(chosen int) (status int, why string) {
	if n, ok := r.wsi.SetProtocol(r.lis.protos[chosen]); !ok {
		return http.StatusRequestHeaderFieldsTooLarge,
			fmt.Sprintf("Sec-WebSocket-Protocol: %d bytes, more than the %d this server takes on more than one line", n, maxSubprotocolList)
	}
	return 0, ""
}

// lwsExtensionsMax is the longest Sec-WebSocket-Extensions header
// libwebsockets (4.1 to 4.5) parses itself without dropping the handshake.
const lwsExtensionsMax = 254

// chooseOffer decides the answer to an upgrade's extension offers: the
// first permessage-deflate offer a listener with Compression can accept,
// or none, and makes it the one offer libwebsockets sees (see
// lwsgo_ws_set_offer for why lws may not see the client's list). When that
// cannot be done, lws gets the list as sent; a header lws would drop the
// handshake for (or answer with a broken 101) is refused with 431 and the
// length it may have.
func (r *rec) chooseOffer(values []string) (status int, why string) {
	offer := ""
	if r.lis.cfg.Compression {
		offer = deflateOffer(values)
	}
	n, ok := r.wsi.SetExtensionOffer(offer)
	if !ok && offer != "" && n <= cgo.ExtensionsMax {
		// The offer did not fit where the header was: decline.
		n, ok = r.wsi.SetExtensionOffer("")
	}
	switch {
	case ok:
		r.offered = true
	case n > cgo.ExtensionsMax:
		return http.StatusRequestHeaderFieldsTooLarge,
			fmt.Sprintf("Sec-WebSocket-Extensions: %d bytes, more than the %d this server takes", n, cgo.ExtensionsMax)
	case n > lwsExtensionsMax:
		return http.StatusRequestHeaderFieldsTooLarge,
			fmt.Sprintf("Sec-WebSocket-Extensions: %d bytes, more than the %d this server takes", n, lwsExtensionsMax)
	}
	return 0, ""
}

// callCheckUpgrade runs the listener's CheckUpgrade; a panic refuses with 500.
func (c *Context) callCheckUpgrade(f func(*Request) error, req *Request) (err error) {
	defer func() {
		if p := recover(); p != nil {
			c.log.Error("lws: panic in CheckUpgrade; refusing the upgrade", "link", req.LinkID, "panic", fmt.Sprint(p))
			err = &HTTPError{Status: http.StatusInternalServerError}
		}
	}()
	return f(req)
}

// refusalOwnHeader reports the headers a refusal writes itself, which an
// HTTPError's Header may not replace (canonical names).
func refusalOwnHeader(name string) bool {
	switch name {
	case "Content-Type", "Content-Length", "Connection", "Transfer-Encoding", "Keep-Alive", "Upgrade":
		return true
	}
	return false
}

// refuseUpgrade answers an upgrade request with an HTTP status instead of
// the 101 (from HTTP_CONFIRM_UPGRADE, whose return value it gives): the
// connection closes after the response and the link never opens. hdrs are
// extra NUL-separated name, value pairs.
func (r *rec) refuseUpgrade(status int, msg string, hdrs []byte) int {
	if msg == "" {
		msg = http.StatusText(status)
	}
	r.up = nil
	if !r.wsi.RefuseHTTP(status, hdrs, []byte(msg+"\n")) {
		return -1
	}
	return 1 // answered: libwebsockets completes the transaction and closes
}

// onEstablished is ESTABLISHED: the 101 is out and the connection is a
// WebSocket link from now on.
func (r *rec) onEstablished(ev *callbacks.Event) int {
	r.link = Link{
		ID:       r.id,
		Kind:     LinkWebSocket,
		Listener: r.lis.cfg.Name,
		Opened:   time.Now(),
	}
	if r.up != nil {
		r.link.Path, r.link.Remote = r.up.Path, r.up.Remote
	} else {
		r.link.Remote = tcpAddr(r.connAddr())
	}
	if p := ev.Protocol & 0xffff; p > 0 && p < len(r.lis.protos) {
		r.link.Subprotocol = r.lis.protos[p]
	}
	r.link.Compression = ev.Flags&callbacks.Deflate != 0
	conn := newConn(r, r.lis.opts, false)
	r.role = wsServer{conn}
	r.startKeepalive()
	r.ctx.openLink(r)
	conn.callOpen()
	// The link keeps the request's raw bytes (Conn.Request), not the
	// parsed request: about 0.7 KB of an idle link's Go heap.
	r.up = nil
	conn.req.Store(nil)
	return 0
}

// pendingUpgrade is an upgrade request allocated with the bytes it was parsed
// from, which its link keeps (Conn.Request): one allocation, and no field
// for them in every Request.
//
// Concurrency: written on the service goroutine before the link opens;
// read-only after (Conn.Request).
type pendingUpgrade struct {
	Request
	raw string
}
