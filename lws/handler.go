package lws

// Handler receives the events of WebSocket links.
//
// Every method is called on the service goroutine, one call at a time per
// Context, and must not block: a slow handler stalls every link of the
// Context. Hand long work to another goroutine; Conn.Send and Conn.Close are
// safe from any goroutine.
//
// A handler that panics has its link closed with 1011; the process and the
// other links carry on.
type Handler interface {
	// OnOpen is called when the handshake completed.
	OnOpen(c *Conn)
	// OnMessage is called with each whole message. data is valid only
	// until OnMessage returns; Send copies it, so echoing is safe (an echo
	// of more than 16 KiB takes the buffer instead of a copy: see Send).
	OnMessage(c *Conn, typ MessageType, data []byte)
	// OnClose is called exactly once per opened link, when libwebsockets
	// destroys it, with the peer's close code and reason, or 1006 when the
	// link was lost without a close frame.
	OnClose(c *Conn, ce CloseError)
}

// PongHandler is an optional interface of a Handler: OnPong is called, on
// the service goroutine, with the payload of the pongs the link receives,
// but not those that answer a server link's keepalive pings
// (Listener.PingInterval). A client link's are reported: libwebsockets
// sends those pings, without payload (DialOptions.PingInterval).
//
// Two libwebsockets limits (4.1 and 4.3.5 alike): on server links it does
// not report a pong without payload, so there only pongs to a Conn.Ping
// with a payload arrive (client links report every pong); and pings from
// the peer are answered by libwebsockets itself, with no callback, so they
// are not reported at all.
type PongHandler interface {
	OnPong(c *Conn, data []byte)
}

// HandlerFuncs adapts functions to Handler; nil fields do nothing.
type HandlerFuncs struct {
	Open    func(c *Conn)
	Message func(c *Conn, typ MessageType, data []byte)
	Close   func(c *Conn, ce CloseError)
	Pong    func(c *Conn, data []byte)
}

// OnPong calls h.Pong if set.
func (h HandlerFuncs) OnPong(c *Conn, data []byte) {
	if h.Pong != nil {
		h.Pong(c, data)
	}
}

// OnOpen calls h.Open if set.
func (h HandlerFuncs) OnOpen(c *Conn) {
	if h.Open != nil {
		h.Open(c)
	}
}

// OnMessage calls h.Message if set.
func (h HandlerFuncs) OnMessage(c *Conn, typ MessageType, data []byte) {
	if h.Message != nil {
		h.Message(c, typ, data)
	}
}

// OnClose calls h.Close if set.
func (h HandlerFuncs) OnClose(c *Conn, ce CloseError) {
	if h.Close != nil {
		h.Close(c, ce)
	}
}

// EchoHandler sends every message back on the link it came from.
type EchoHandler struct{}

// OnOpen does nothing.
func (EchoHandler) OnOpen(*Conn) {}

// OnMessage sends data back with the same type.
func (EchoHandler) OnMessage(c *Conn, typ MessageType, data []byte) { _ = c.Send(typ, data) }

// OnClose does nothing.
func (EchoHandler) OnClose(*Conn, CloseError) {}

// HTTPHandler serves HTTP requests.
//
// ServeHTTP is called on the service goroutine and must not block. It must
// make sure w.Respond is called exactly once, now or later from any
// goroutine; until then the connection waits (libwebsockets' network
// timeout still applies to the peer).
type HTTPHandler interface {
	ServeHTTP(w *ResponseWriter, r *Request)
}

// HTTPHandlerFunc adapts a function to HTTPHandler.
type HTTPHandlerFunc func(w *ResponseWriter, r *Request)

// ServeHTTP calls f(w, r).
func (f HTTPHandlerFunc) ServeHTTP(w *ResponseWriter, r *Request) { f(w, r) }
