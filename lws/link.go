package lws

import (
	"net"
	"time"
)

// LinkKind says what a link carries: WebSocket messages or HTTP
// requests. Which side opened it is Link.Client.
type LinkKind uint8

// Link kinds.
const (
	LinkWebSocket LinkKind = iota + 1 // a WebSocket link
	LinkHTTP                          // an HTTP connection
)

func (k LinkKind) String() string {
	switch k {
	case LinkWebSocket:
		return "ws"
	case LinkHTTP:
		return "http"
	}
	return "unknown"
}

// Link is what the binding knows of one connection, accepted by a
// Listener or dialled by this side: its identity, taken when the link
// opened. It is a value and never changes; the gateway (lws/gateway) keeps
// its own live record of each link, with counters, on top of it.
type Link struct {
	// ID is unique within the Context and equals the wsi number in the
	// reason log, so log lines and links can be matched.
	ID uint64
	// Kind is WebSocket or HTTP.
	Kind LinkKind
	// Listener is the Name of the listener that accepted the link; ""
	// for a link this side dialled.
	Listener string
	// URL is the URL a dialled link was opened to; "" for accepted links.
	URL string
	// Remote is the peer's address (nil if unknown): for an accepted link
	// behind a proxy (Listener.TrustedProxies, ProxyProtocol), the client
	// the proxy named, for its upgrade or first request.
	Remote net.Addr
	// Path is the request path of the upgrade or first request.
	Path string
	// Subprotocol is the negotiated WebSocket subprotocol, if any.
	Subprotocol string
	// Compression says permessage-deflate was negotiated for the
	// WebSocket link (Listener.Compression, DialOptions.Compression).
	Compression bool
	// Opened is when the link opened.
	Opened time.Time
}

// Client reports whether this side dialled the link (Context.Dial, the
// Transport) rather than a Listener accepting it.
func (l Link) Client() bool { return l.URL != "" }
