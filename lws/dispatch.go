package lws

import (
	"fmt"
	"net/netip"
	"sync/atomic"
	"time"

	"github.com/lwsgate/lwsgate/callbacks"
	"github.com/lwsgate/lwsgate/cgo"
)

// Every libwebsockets callback of a Context arrives here (dispatcher, on
// the service goroutine), finds the Go state of its wsi (a rec) and is
// handed to the rec's role, which says what the callback means for what
// the wsi turned out to be.

// rec is the Go state of one wsi, attached to it as a cgo.Handle in the
// wsi's opaque user data on its first callback and released on WSI_DESTROY.
//
// Fields are owned by the service goroutine, except queued (atomic) and
// what the role guards itself.
type rec struct {
	ctx  *Context
	id   uint64
	h    cgo.Handle
	wsi  cgo.WSI // 0 once destroyed
	lis  *listener
	role role // never nil

	// The small fields together (an idle link's rec and Conn are most of
	// its Go heap).
	opened  bool           // OnLinkOpen was called
	killMe  bool           // client links: close when the current callback returns
	counted bool           // accepted connections: countLink counted it
	held    bool           // a refused connection, counted as held to answer 503
	loaded  bool           // counted in its listener's load (acceptor)
	offered bool           // upgrades: lws sees the offer chosen for it (chooseOffer)
	refuse  admissionLimit // accepted connections: the limit that refused it
	queued  atomic.Bool    // in Context.pending
	outNow  bool           // in Context.outNow, its WRITEABLE not yet delivered
	timer   timerKind      // what tm is for (accept.go): an accepted connection's, a server link's keepalive

	tm   *recTimer       // the armed timer (setTimer); nil: none
	up   *pendingUpgrade // an upgrade request, from HTTP_CONFIRM_UPGRADE to ESTABLISHED
	link Link

	trace *linkTrace // the last Config.LinkTrace callbacks; nil without

	// Accepted connections only: the address countLink counted by
	// MaxLinksPerIP (invalid: none), and the connection's address when
	// it came through a proxy (nil: the TCP peer is the client, which
	// link.Remote holds from countLink, before the link opens, when
	// accept told it).
	ipKey netip.Addr
	peer  *peerInfo
}

// role is what a wsi turned out to be: the part of its rec that knows what
// its callbacks mean. A rec has one role at a time, and the role changes
// as the wsi does:
//
//	noRole      a listening socket, or a wsi libwebsockets calls back
//	            about before it has a role the binding knows (this file)
//	accepted    an accepted connection before its first request (accept.go)
//	*httpConn   server HTTP: an accepted connection carrying requests (http.go)
//	wsServer    server WebSocket: an accepted link after its upgrade (ws.go)
//	*dialState  a dial in progress: a client link until it opens (dial.go)
//	wsClient    client WebSocket: a dialled link, open (ws.go)
//	*clientReq  client HTTP: a request whose response arrived (httpclient.go)
//
// accepted becomes *httpConn at its first request, or wsServer at its
// upgrade (upgrade.go), which an *httpConn may make too (an upgrade on a
// keep-alive connection); a *dialState becomes wsClient or *clientReq.
// Every method runs on the service goroutine.
type role interface {
	// on handles one callback of the wsi and returns what the callback
	// returns to libwebsockets.
	on(ev *callbacks.Event) int
	// destroy is WSI_DESTROY: it releases what the role holds and says
	// how the link ended (what Config.OnLinkClose is told about a link
	// OnLinkOpen saw).
	destroy() CloseError
	// busy reports whether Close waits for the wsi to go.
	busy() bool
	// stop is Close beginning: the role ends or closes what it does.
	stop()
}

// noRole is the role of a wsi the binding does not act on: a listening
// socket, whose one callback the binding answers (FILTER_NETWORK_CONNECTION,
// in handle), or a wsi libwebsockets calls back about before it has a role
// (libwebsockets 4.3 reports more of those than 4.1). Close does not wait
// for it: destroying the context ends it.
type noRole struct{}

func (noRole) on(*callbacks.Event) int { return 0 }
func (noRole) destroy() CloseError     { return CloseError{} }
func (noRole) busy() bool              { return false }
func (noRole) stop()                   {}

// dispatcher is what the cgo layer calls back: every callback that crosses
// into Go, and the counts of those the C layer answered without crossing.
// Both are called on the service goroutine only.
type dispatcher struct{ c *Context }

// Dispatch implements callbacks.Dispatcher.
func (d dispatcher) Dispatch(ev *callbacks.Event) int { return d.c.dispatch(ev) }

// Skipped implements callbacks.SkipCounter.
func (d dispatcher) Skipped(r callbacks.Reason, n uint32) { d.c.reasons.addN(r, n) }

// MidPass implements callbacks.MidPasser: see Context.midPass.
func (d dispatcher) MidPass() { d.c.midPass() }

// dispatch handles one libwebsockets callback of the context (service
// goroutine): the reason log, the link's trace, then the rec's role. A
// panic closes the link.
func (c *Context) dispatch(ev *callbacks.Event) (ret int) {
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
		r.trace.add(c.traceClock(), ev.Reason, c.cfg.LinkTrace)
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
			if r != nil && r.wsi != 0 && r.conn() != nil {
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
			if c.cbs++; c.cbs%yieldCheck == 0 {
				c.maybeYield(time.Now())
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
	r := &rec{ctx: c, id: linkIDs.Add(1), wsi: cgo.WSI(ev.WSI), role: noRole{}}
	if li := ev.Protocol >> 16; ev.Protocol >= 0 && li < len(c.listeners) {
		r.lis = c.listeners[li]
		r.role = accepted{r}
	}
	r.h = cgo.NewHandle(r)
	// At WSI_CREATE libwebsockets is about to reset the opaque user
	// data; the C layer puts the handle back (lwsgo_reattach).
	r.wsi.SetUser(r.h)
	c.recs[r.id] = r
	return r
}

// handle answers what concerns the context as a whole (wake-ups, new
// connections, WSI_DESTROY) and hands the rest to r's role.
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
		// Queued work is drained when dispatch returns.
		return 0
	case callbacks.FilterNetworkConnection:
		// On the listening socket, about a connection it accepts.
		if r != nil {
			r.role = noRole{}
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
	ret := r.role.on(ev)
	if r.killMe {
		return -1
	}
	return ret
}

// conn returns the Conn of a WebSocket link, or nil.
func (r *rec) conn() *Conn {
	switch ro := r.role.(type) {
	case wsServer:
		return ro.Conn
	case wsClient:
		return ro.Conn
	}
	return nil
}

// openLink calls Config.OnLinkOpen for r, whose link has just opened.
func (c *Context) openLink(r *rec) {
	r.opened = true
	if f := c.cfg.OnLinkOpen; f != nil {
		func() {
			defer c.recoverHook("OnLinkOpen")
			f(r.link)
		}()
	}
}

// onDestroy is WSI_DESTROY: the role lets go, the link is closed for
// Config.OnLinkClose, and the rec is released.
func (c *Context) onDestroy(r *rec) {
	ce := r.role.destroy()
	r.uncountLink()
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

// release forgets a rec; its wsi is gone.
func (c *Context) release(r *rec) {
	if r.h == 0 {
		return
	}
	delete(c.recs, r.id)
	if cl, ok := c.dialMem[r.id]; ok {
		cl.Free()
		delete(c.dialMem, r.id)
	}
	r.h.Delete()
	r.h = 0
	r.wsi = 0
	r.stopTimer()
	if c.stopping && c.lc != nil {
		// lws_service may go back to sleep after this callback; make it
		// return so the loop sees whether the last link is gone.
		c.lc.Wake()
	}
}

func (c *Context) recoverHook(name string) {
	if p := recover(); p != nil {
		c.log.Error("lws: panic in "+name, "panic", fmt.Sprint(p))
	}
}
