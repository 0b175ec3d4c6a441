package lws

import (
	"net/http"
	"time"

	"github.com/lwsgate/lwsgate/callbacks"
)

// An accepted connection: what every connection a listener takes goes
// through, whatever it turns out to carry. Its accounting against the
// listener's limits (countLink, uncountLink) is in admission.go.

// accepted is the role of an accepted connection until its first request
// is known: an HTTP request makes it an *httpConn (onHTTP), an upgrade a
// wsServer (upgrade.go). Close does not wait for it.
//
// Concurrency: service goroutine only, as every role.
type accepted struct{ r *rec }

func (a accepted) on(ev *callbacks.Event) int {
	r := a.r
	switch ev.Reason {
	case callbacks.WSICreate:
		r.countLink()
		return 0
	case callbacks.HTTP:
		return r.onHTTP()
	}
	return r.onConnection(ev)
}

func (accepted) destroy() CloseError { return CloseError{} }
func (accepted) busy() bool          { return false }
func (accepted) stop()               {}

// onConnection handles the callbacks an accepted connection gets whether
// or not it has carried HTTP requests yet: the upgrade that makes it a
// WebSocket link (upgrade.go).
func (r *rec) onConnection(ev *callbacks.Event) int {
	switch ev.Reason {
	case callbacks.HTTPConfirmUpgrade:
		r.setTimer(timerNone, 0)
		return r.onConfirmUpgrade(ev)
	case callbacks.Established:
		return r.onEstablished(ev)
	case callbacks.ConfirmExtensionOkay:
		// Only a listener with Compression has an extension to offer.
		// lws asks about the offer chooseOffer left it, or about the
		// first of the client's when that could not be done.
		if r.up != nil && !r.offered && !deflateOfferOK(r.up.headerValues("Sec-Websocket-Extensions", nil)) {
			return 1 // declined: the 101 names no extension
		}
	}
	return 0
}

// timerKind says what a connection's timer is for: the first three are
// an accepted connection's before it is a WebSocket link, the last two a
// server link's keepalive.
type timerKind uint8

const (
	timerNone   timerKind = iota
	timerHeader           // the first request's headers must be in
	timerBody             // the request body must be in
	timerKill             // a refusal could not be written in time
	timerPing             // a server link's keepalive ping is due (keepalive.go)
	timerHangup           // a server link's keepalive pong is overdue
)

// setTimer (re)arms r's timer for k after d; timerNone cancels.
//
// The timers are Go's, posting to the service goroutine, not
// libwebsockets' per-connection TIMER (lws_set_timer_usecs). libwebsockets
// (4.1.6 and 4.3.5 alike) keeps every timer of a service thread in one list
// sorted by deadline and has no way to cancel that one: moving it out of
// reach, as the binding did, inserted it at the tail of a list that holds
// every open link, a walk of the whole list on each accept (and each
// cancelled body timer), and kept it there for the link's life. Go's
// timers are a heap: arming and stopping one costs the same at 100 links
// as at 50,000.
func (r *rec) setTimer(k timerKind, d time.Duration) {
	if r.wsi == 0 || (k == timerNone && r.timer == timerNone) {
		return
	}
	r.stopTimer()
	r.timer = k
	if k != timerNone {
		r.tm = r.ctx.armTimer(r, d)
	}
}

// stopTimer stops r's timer, if armed, without changing r.timer.
func (r *rec) stopTimer() {
	if rt := r.tm; rt != nil {
		r.tm = nil
		r.ctx.dropTimer(rt)
	}
}

// recTimer is a connection's timer: a Go timer that posts its expiry to
// the service goroutine. Its Context keeps the stopped ones for the next
// connection, so that a connection's header timer, armed at accept and
// stopped at its first request or upgrade, allocates nothing.
//
// Concurrency: r is the service goroutine's; the time.Timer's function
// reads only c.
type recTimer struct {
	t *time.Timer
	c *Context
	r *rec // the connection it is armed for; nil: none
}

func (rt *recTimer) fired() { rt.c.post(rt.expire) }

// expire runs a fired timer's action on the service goroutine, unless its
// connection stopped it, re-armed it or went in the meantime.
func (rt *recTimer) expire() {
	r := rt.r
	if r == nil || r.tm != rt || r.wsi == 0 {
		return
	}
	r.tm, rt.r = nil, nil
	rt.c.spareTimers = append(rt.c.spareTimers, rt) // it fired: no other firing to come
	if r.onTimer() < 0 {
		r.kill()
	}
}

// armTimer arms a timer for r after d, a spare one if there is one.
func (c *Context) armTimer(r *rec, d time.Duration) *recTimer {
	if n := len(c.spareTimers); n > 0 {
		rt := c.spareTimers[n-1]
		c.spareTimers = c.spareTimers[:n-1]
		rt.r = r
		rt.t.Reset(d)
		return rt
	}
	rt := &recTimer{c: c, r: r}
	rt.t = time.AfterFunc(d, rt.fired)
	return rt
}

// dropTimer stops rt; it is kept for another connection unless it has
// fired already (its expire, posted, will find it is no one's).
func (c *Context) dropTimer(rt *recTimer) {
	if rt.t.Stop() {
		rt.r = nil
		c.spareTimers = append(c.spareTimers, rt)
		return
	}
	rt.r = nil
}

// onTimer is r's timer expiring (service goroutine); it returns -1 to
// close the connection.
func (r *rec) onTimer() int {
	k := r.timer
	r.timer = timerNone
	switch k {
	case timerHeader:
		if r.refuse == admitted {
			r.limitHit(LimitHeaderTimeout)
		}
		return -1
	case timerBody:
		h, _ := r.role.(*httpConn)
		if h == nil || h.txn == nil || h.txn.served {
			return 0
		}
		r.limitHit(LimitBodyTimeout)
		h.txn.respondErrorText(http.StatusRequestTimeout, "the request body took too long", true)
		// A client that does not read either gets no answer: give
		// the 408 a network timeout to go out.
		r.setTimer(timerKill, r.ctx.cfg.NetworkTimeout)
		return 0
	case timerKill:
		return -1
	case timerPing:
		r.onPingDue()
		return 0
	case timerHangup:
		return -1
	}
	return 0
}
