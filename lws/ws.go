package lws

import (
	"time"

	"github.com/lwsgate/lwsgate/callbacks"
)

// The two roles of an open WebSocket link, server and client: which
// callback of each calls which Conn method. The Conn does the work:
// receiving in conn_rx.go, writing in conn_tx.go.

// wsServer is the role of a link a listener accepted, from ESTABLISHED
// (upgrade.go) to WSI_DESTROY.
//
// Concurrency: service goroutine only, as every role (the Conn's own
// methods say which are safe from any goroutine).
type wsServer struct{ *Conn }

func (w wsServer) on(ev *callbacks.Event) int { return w.onLink(ev, &serverCallbacks) }

// wsClient is the role of a link this side dialled, from CLIENT_ESTABLISHED
// (openClient) to WSI_DESTROY.
//
// Concurrency: service goroutine only, as every role.
type wsClient struct{ *Conn }

func (w wsClient) on(ev *callbacks.Event) int { return w.onLink(ev, &clientCallbacks) }

// wsCallbacks are the reasons libwebsockets calls a link of one side with.
//
// Concurrency: read-only values.
type wsCallbacks struct {
	receive, pong, writeable, closed, dropped callbacks.Reason
}

var (
	serverCallbacks = wsCallbacks{
		receive:   callbacks.Receive,
		pong:      callbacks.ReceivePong,
		writeable: callbacks.ServerWriteable,
		closed:    callbacks.Closed,
		dropped:   callbacks.WSServerDropProtocol,
	}
	clientCallbacks = wsCallbacks{
		receive:   callbacks.ClientReceive,
		pong:      callbacks.ClientReceivePong,
		writeable: callbacks.ClientWriteable,
		closed:    callbacks.ClientClosed,
		dropped:   callbacks.WSClientDropProtocol,
	}
)

// onLink handles a callback of an open link whose side's reasons are cb.
func (c *Conn) onLink(ev *callbacks.Event, cb *wsCallbacks) int {
	switch ev.Reason {
	case cb.receive:
		return c.receive(ev)
	case cb.writeable:
		c.r.outNow = false
		return c.onWritable()
	case cb.pong:
		if cb == &serverCallbacks && c.r.onServerPong(ev.Data) {
			return 0 // a keepalive pong (keepalive.go)
		}
		c.callPong(ev.Data)
	case callbacks.WSPeerInitiatedClose:
		return c.onPeerClose(ev.Data)
	case cb.closed, cb.dropped:
		// DROP_PROTOCOL comes first when libwebsockets itself failed the
		// link (a protocol error: it has sent its close 1002): from then
		// on nothing may be written, not even an echo already queued
		// (Autobahn 3.2, 4.1.3-5, 4.2.3-5, 5.15 caught that).
		c.markClosed()
	}
	return 0
}

// destroy is WSI_DESTROY (role): see finish.
func (c *Conn) destroy() CloseError { return c.finish() }

// busy: Close waits for an open link (role).
func (c *Conn) busy() bool { return true }

// stop closes the link with 1001 when Close begins (role).
func (c *Conn) stop() { c.requestClose(StatusGoingAway, "server shutting down") }

// openClient is CLIENT_ESTABLISHED of a WebSocket dial: the link opens,
// its handler's OnOpen runs, and Dial returns the Conn.
func (d *dialState) openClient(deflate bool) int {
	r := d.r
	if d.done {
		// Aborted while the handshake completed.
		return -1
	}
	r.link = Link{
		ID:          r.id,
		Kind:        LinkWebSocket,
		Remote:      r.wsi.RemoteAddr(),
		Path:        d.t.path,
		Subprotocol: d.subprotocol,
		Compression: deflate,
		Opened:      time.Now(),
		URL:         d.t.url,
	}
	conn := newConn(r, d.lo, true)
	r.role = wsClient{conn}
	r.ctx.openLink(r)
	conn.callOpen()
	d.finish(nil)
	return 0
}
