package lws

import (
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"strings"
	"sync/atomic"
	"time"

	"github.com/lwsgate/lwsgate/callbacks"
	"github.com/lwsgate/lwsgate/cgo"
)

// recKind says what a wsi turned out to be.
type recKind uint8

const (
	recNew        recKind = iota // accepted, role not known yet
	recListen                    // a listening socket
	recHTTP                      // an HTTP connection
	recWS                        // a WebSocket link
	recWSClient                  // a WebSocket link this side dialled
	recHTTPClient                // an HTTP request this side made
)

// rec is the Go state of one wsi, attached to it as a cgo.Handle in the
// wsi's opaque user data on its first callback and released on WSI_DESTROY.
//
// Fields are owned by the service goroutine, except queued (atomic) and what
// conn and http guard themselves.
type rec struct {
	ctx *Context
	id  uint64
	h   cgo.Handle
	wsi cgo.WSI // 0 once destroyed
	lis *listener

	// The small fields together: the struct is 256 bytes, a size class
	// below where the padding between them put it (an idle link's rec
	// and Conn are most of its Go heap).
	kind    recKind
	opened  bool           // OnLinkOpen was called
	killMe  bool           // client links: close when the current callback returns
	counted bool           // accepted connections: countLink counted it
	held    bool           // a refused connection, counted as held to answer 503
	offered bool           // upgrades: lws sees the offer chosen for it (chooseOffer)
	refuse  admissionLimit // accepted connections: the limit that refused it
	queued  atomic.Bool    // in Context.pending
	timer   timerKind      // accepted connections: what the TIMER callback is for

	req  *Request // the upgrade or current HTTP request
	conn *Conn
	http *httpConn
	link Link

	// Client links only.
	dial *dialState  // until the link opened or failed
	lo   *linkOpts   // a WebSocket client's settings
	hc   *clientReq  // an HTTP request
	cc   *cgo.Client // C memory of the connection, freed on release

	trace *linkTrace // the last Config.LinkTrace callbacks; nil without

	// Accepted connections only: the address countLink counted by
	// MaxLinksPerIP (invalid: none), and the connection's address when
	// it came through a proxy (nil: the TCP peer is the client).
	ipKey netip.Addr
	peer  *peerInfo
}

// Dispatch implements callbacks.Dispatcher: every libwebsockets callback of
// the context arrives here, on the service goroutine.
func (c *Context) Dispatch(ev *callbacks.Event) (ret int) {
	if c.depth == 0 {
		c.inCb.Store(true)
	}
	if c.depth < len(c.stack) {
		c.stack[c.depth] = ev.WSI
	}
	c.depth++
	r := c.recFor(ev)
	c.reasons.add(ev.Reason)
	if r != nil && c.cfg.LinkTrace > 0 {
		if r.trace == nil {
			r.trace = new(linkTrace)
		}
		r.trace.add(time.Now(), ev.Reason, c.cfg.LinkTrace)
	}
	if c.cfg.Trace != nil {
		var id uint64
		if r != nil {
			id = r.id
		}
		c.trace = callbacks.AppendTraceLine(c.trace, time.Now(), c.id, id, ev.Reason)
	}
	defer func() {
		if p := recover(); p != nil {
			c.log.Error("lws: panic in callback; closing the link", "reason", ev.Reason.String(), "panic", fmt.Sprint(p))
			if r != nil && r.wsi != 0 && r.conn != nil {
				r.wsi.CloseReason(int(StatusInternalError), "internal error")
			}
			ret = -1
		}
		c.depth--
		if c.depth == 0 {
			c.inCb.Store(false)
			if drainInCallbacks && c.npend.Load() > 0 {
				c.drain(false)
			}
		}
	}()
	return c.handle(ev, r)
}

// recFor finds the rec of the event's wsi, creating it on first sight.
func (c *Context) recFor(ev *callbacks.Event) *rec {
	if ev.User != 0 {
		r, _ := cgo.Handle(ev.User).Value().(*rec)
		if r != nil && r.wsi == 0 && ev.WSI != 0 && !ev.Reason.FakeWSI() {
			// A client link calling back from inside its connect call.
			r.wsi = cgo.WSI(ev.WSI)
		}
		return r
	}
	if ev.WSI == 0 || ev.Reason.FakeWSI() || c.lc == nil {
		return nil
	}
	if ev.Protocol>>16 == clientIndex || ev.Reason == callbacks.ClientHTTPBindProtocol {
		// A client link before libwebsockets stored its handle (4.1
		// calls CLIENT_HTTP_BIND_PROTOCOL first, from inside the
		// connect call): the link being connected, not a new one.
		if r := c.connecting; r != nil && r.h != 0 {
			return r
		}
		return nil
	}
	if r := c.created; r != nil && uintptr(r.wsi) == ev.WSI {
		// libwebsockets sets an accepted wsi's opaque user data from the
		// adoption info (NULL) right after WSI_CREATE (lib/core-net/adopt.c),
		// wiping the handle attached there: attach it again.
		r.wsi.SetUser(r.h)
		c.created = nil
		return r
	}
	c.nextID++
	r := &rec{ctx: c, id: c.nextID, wsi: cgo.WSI(ev.WSI)}
	if li := ev.Protocol >> 16; ev.Protocol >= 0 && li < len(c.listeners) {
		r.lis = c.listeners[li]
	}
	r.h = cgo.NewHandle(r)
	r.wsi.SetUser(r.h)
	c.recs[r.id] = r
	if ev.Reason == callbacks.WSICreate {
		c.created = r
	}
	return r
}

// release forgets a rec; its wsi is gone.
func (c *Context) release(r *rec) {
	if r.h == 0 {
		return
	}
	delete(c.recs, r.id)
	r.cc.Free()
	r.cc = nil
	if c.created == r {
		c.created = nil
	}
	r.h.Delete()
	r.h = 0
	r.wsi = 0
	if c.stopping && c.lc != nil {
		// lws_service may go back to sleep after this callback; make it
		// return so the loop sees whether the last link is gone.
		c.lc.Wake()
	}
}

func (c *Context) handle(ev *callbacks.Event, r *rec) int {
	switch ev.Reason {
	case callbacks.EventWaitCancelled:
		if ev.Flags&callbacks.Wake != 0 {
			// The wake-up arrived: it is no longer in flight, even when
			// a drain outside any callback already took the work it
			// was for (npend is then 0 and drain, which also clears
			// armed, does not run). Left set, armed would make every
			// later kick skip its wake-up.
			c.armed.Store(false)
		}
		// Queued work is drained when Dispatch returns.
		return 0
	case callbacks.FilterNetworkConnection:
		if r != nil {
			r.kind = recListen
		}
		if c.stopping {
			return -1 // refuse new links while shutting down
		}
		if r != nil && r.lis != nil {
			return c.admit(r.lis, ev.Data, time.Now())
		}
		return 0
	case callbacks.WSIDestroy:
		if r != nil {
			c.onDestroy(r)
		}
		return 0
	}
	if r == nil {
		return 0
	}
	if r.kind == recWSClient || r.kind == recHTTPClient {
		return c.handleClient(ev, r)
	}
	if r.lis == nil {
		return 0
	}
	switch ev.Reason {
	case callbacks.WSICreate:
		if r.kind == recNew {
			c.countLink(r)
		}
	case callbacks.Timer:
		return c.onTimer(r)
	case callbacks.HTTPConfirmUpgrade:
		c.setTimer(r, timerNone, 0)
		return c.onConfirmUpgrade(r, ev)
	case callbacks.Established:
		return c.onEstablished(r, ev)
	case callbacks.ConfirmExtensionOkay:
		// Only a listener with Compression has an extension to offer.
		// lws asks about the offer chooseOffer left it, or about the
		// first of the client's when that could not be done.
		if r.req != nil && !r.offered && !deflateOfferOK(r.req.Header.Values("Sec-Websocket-Extensions")) {
			return 1 // declined: the 101 names no extension
		}
	case callbacks.Receive:
		if r.conn != nil {
			return r.conn.receive(ev)
		}
	case callbacks.ReceivePong:
		if r.conn != nil {
			r.conn.callPong(ev.Data)
		}
	case callbacks.ServerWriteable:
		if r.conn != nil {
			return r.conn.onWritable()
		}
	case callbacks.WSPeerInitiatedClose:
		if r.conn != nil {
			return r.conn.onPeerClose(ev.Data)
		}
	case callbacks.Closed, callbacks.WSServerDropProtocol:
		// DROP_PROTOCOL comes first when libwebsockets itself failed the
		// link (a protocol error: it has sent its close 1002): from then
		// on nothing may be written, not even an echo already queued
		// (Autobahn 3.2, 4.1.3-5, 4.2.3-5, 5.15 caught that).
		if r.conn != nil {
			r.conn.markClosed()
		}
	case callbacks.HTTP:
		return c.onHTTP(r, ev)
	case callbacks.HTTPBody:
		if r.http != nil {
			return r.http.onBody(ev.Data)
		}
	case callbacks.HTTPBodyCompletion:
		if r.http != nil {
			return r.http.onBodyComplete()
		}
	case callbacks.HTTPWriteable:
		if r.http != nil {
			return r.http.onWritable()
		}
	case callbacks.HTTPDropProtocol, callbacks.ClosedHTTP:
		if r.http != nil {
			r.http.abandon()
		}
	}
	return 0
}

func (c *Context) onConfirmUpgrade(r *rec, ev *callbacks.Event) int {
	if ev.Flags&callbacks.StaleData != 0 {
		// libwebsockets already answered 403 to an unknown Upgrade
		// value and released the request (CVE-2025-11677): hang up.
		c.limitHit(r, LimitBadUpgrade)
		return -1
	}
	if r.refuse != admitted {
		return c.answerRefused(r, true)
	}
	req, err := c.readRequest(r)
	if err != nil {
		c.log.Warn("lws: reading upgrade request", "link", r.id, "err", err)
		return -1
	}
	switch {
	case !strings.EqualFold(string(ev.Data), "websocket"):
		// h2c: libwebsockets would switch to HTTP/2 if let through.
		// The Upgrade token is case-insensitive (RFC 9110 section 7.8).
		c.limitHit(r, LimitBadUpgrade)
		return c.refuseUpgrade(r, http.StatusBadRequest, "only Upgrade: websocket is supported", nil)
	case r.lis.cfg.Accept&AcceptWebSocket == 0:
		return c.refuseUpgrade(r, http.StatusBadRequest, "this listener does not accept WebSocket links", nil)
	case c.stopping:
		return c.refuseUpgrade(r, http.StatusServiceUnavailable, "", nil)
	}
	f := checkFraming(req)
	switch {
	case f.status == http.StatusNotImplemented:
		f = refuse(http.StatusBadRequest, "a WebSocket upgrade has no body")
	case f.ok():
		f = checkUpgrade(req, r.lis.protos)
	}
	if !f.ok() {
		c.limitHit(r, LimitBadUpgrade)
		return c.refuseUpgrade(r, f.status, f.why, f.hdrs)
	}
	if k := c.admitForwarded(r, req); k != admitted {
		return c.refuseAdmission(r, k, addrPortOf(req.Remote).Addr(), true)
	}
	r.req = req
	if f := r.lis.cfg.CheckUpgrade; f != nil {
		if err := c.callCheckUpgrade(f, req); err != nil {
			status, msg := http.StatusForbidden, ""
			var he *HTTPError
			if errors.As(err, &he) {
				status, msg = he.Status, he.Message
				if status < 400 || status > 599 {
					c.log.Warn("lws: CheckUpgrade: HTTPError.Status must be 400..599; sending 500", "link", r.id, "status", status)
					status, msg = http.StatusInternalServerError, ""
				}
			}
			return c.refuseUpgrade(r, status, msg, nil)
		}
	}
	if vs := req.Header.Values("Sec-Websocket-Extensions"); len(vs) > 0 {
		if status, why := c.chooseOffer(r, vs); status != 0 {
			c.limitHit(r, LimitBadUpgrade)
			return c.refuseUpgrade(r, status, why, nil)
		}
	}
	return 0
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
func (c *Context) chooseOffer(r *rec, values []string) (status int, why string) {
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

// refuseUpgrade answers an upgrade request with an HTTP status instead of
// the 101 (from HTTP_CONFIRM_UPGRADE, whose return value it gives): the
// connection closes after the response and the link never opens. hdrs are
// extra NUL-separated name, value pairs.
func (c *Context) refuseUpgrade(r *rec, status int, msg string, hdrs []byte) int {
	if msg == "" {
		msg = http.StatusText(status)
	}
	r.req = nil
	if !r.wsi.RefuseHTTP(status, hdrs, []byte(msg+"\n")) {
		return -1
	}
	return 1 // answered: libwebsockets completes the transaction and closes
}

func (c *Context) onEstablished(r *rec, ev *callbacks.Event) int {
	r.kind = recWS
	r.http = nil
	r.link = Link{
		ID:       r.id,
		Kind:     LinkWebSocket,
		Listener: r.lis.cfg.Name,
		Opened:   time.Now(),
	}
	if r.req != nil {
		r.link.Path, r.link.Remote = r.req.Path, r.req.Remote
	} else {
		r.link.Remote = tcpAddr(r.connAddr())
	}
	if p := ev.Protocol & 0xffff; p > 0 && p < len(r.lis.protos) {
		r.link.Subprotocol = r.lis.protos[p]
	}
	r.link.Compression = ev.Flags&callbacks.Deflate != 0
	r.conn = newConn(r, &r.lis.opts)
	c.openLink(r)
	r.conn.callOpen()
	// The link keeps the request's raw bytes (Conn.Request), not the
	// parsed request: about 0.7 KB of an idle link's Go heap.
	r.req = nil
	r.conn.req.Store(nil)
	return 0
}

func (c *Context) openLink(r *rec) {
	r.opened = true
	if f := c.cfg.OnLinkOpen; f != nil {
		func() {
			defer c.recoverHook("OnLinkOpen")
			f(r.link)
		}()
	}
}

func (c *Context) onDestroy(r *rec) {
	var ce CloseError
	switch r.kind {
	case recWSClient:
		c.onClientDestroy(r)
	case recHTTPClient:
		c.onHTTPClientDestroy(r)
	}
	if r.conn != nil {
		ce = r.conn.finish()
	} else if r.http != nil {
		r.http.abandon()
		ce = CloseError{Code: StatusNormalClosure}
	}
	c.uncountLink(r)
	if r.opened {
		if f := c.cfg.OnLinkTrace; f != nil && r.trace != nil {
			tr := Trace{r.trace}
			r.trace = nil // the callee's now
			func() {
				defer c.recoverHook("OnLinkTrace")
				f(r.link, tr)
			}()
		}
		if f := c.cfg.OnLinkClose; f != nil {
			func() {
				defer c.recoverHook("OnLinkClose")
				f(r.link, ce)
			}()
		}
	}
	c.release(r)
}

func (c *Context) recoverHook(name string) {
	if p := recover(); p != nil {
		c.log.Error("lws: panic in "+name, "panic", fmt.Sprint(p))
	}
}
