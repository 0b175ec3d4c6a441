package lws

import (
	"time"

	"github.com/lwsgate/lwsgate/callbacks"
)

// The two roles of an open WebSocket link: which callback of a server or a
// client link calls which Conn method. The Conn does the work: receiving
// in conn_rx.go, writing in conn_tx.go.

// wsServer is the role of a link a listener accepted, from ESTABLISHED
// (upgrade.go) to WSI_DESTROY.
type wsServer struct{ *Conn }

func (w wsServer) on(ev *callbacks.Event) int {
	switch ev.Reason {
	case callbacks.Receive:
		return w.receive(ev)
	case callbacks.ReceivePong:
		w.callPong(ev.Data)
	case callbacks.ServerWriteable:
		return w.onWritable()
	case callbacks.WSPeerInitiatedClose:
		return w.onPeerClose(ev.Data)
	case callbacks.Closed, callbacks.WSServerDropProtocol:
		// DROP_PROTOCOL comes first when libwebsockets itself failed the
		// link (a protocol error: it has sent its close 1002): from then
		// on nothing may be written, not even an echo already queued
		// (Autobahn 3.2, 4.1.3-5, 4.2.3-5, 5.15 caught that).
		w.markClosed()
	}
	return 0
}

func (w wsServer) destroy() CloseError { return w.finish() }
func (wsServer) busy() bool            { return true }
func (w wsServer) stop()               { w.requestClose(StatusGoingAway, "server shutting down") }

// wsClient is the role of a link this side dialled, from CLIENT_ESTABLISHED
// (openClient) to WSI_DESTROY.
type wsClient struct{ *Conn }

func (w wsClient) on(ev *callbacks.Event) int {
	switch ev.Reason {
	case callbacks.ClientReceive:
		return w.receive(ev)
	case callbacks.ClientReceivePong:
		w.callPong(ev.Data)
	case callbacks.ClientWriteable:
		return w.onWritable()
	case callbacks.WSPeerInitiatedClose:
		return w.onPeerClose(ev.Data)
	case callbacks.ClientClosed, callbacks.WSClientDropProtocol:
		// DROP_PROTOCOL: see wsServer.
		w.markClosed()
	}
	return 0
}

func (w wsClient) destroy() CloseError { return w.finish() }
func (wsClient) busy() bool            { return true }
func (w wsClient) stop()               { w.requestClose(StatusGoingAway, "server shutting down") }

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
