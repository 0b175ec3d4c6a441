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
// or not it has carried HTTP requests yet: its timer, and the upgrade that
// makes it a WebSocket link (upgrade.go).
func (r *rec) onConnection(ev *callbacks.Event) int {
	switch ev.Reason {
	case callbacks.Timer:
		return r.onTimer()
	case callbacks.HTTPConfirmUpgrade:
		r.setTimer(timerNone, 0)
		return r.onConfirmUpgrade(ev)
	case callbacks.Established:
		return r.onEstablished(ev)
	case callbacks.ConfirmExtensionOkay:
		// Only a listener with Compression has an extension to offer.
		// lws asks about the offer chooseOffer left it, or about the
		// first of the client's when that could not be done.
		if r.up != nil && !r.offered && !deflateOfferOK(r.up.Header().Values("Sec-Websocket-Extensions")) {
			return 1 // declined: the 101 names no extension
		}
	}
	return 0
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
func (r *rec) setTimer(k timerKind, d time.Duration) {
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
	}
	return 0
}
