package gateway

import (
	"sync"
	"time"

	"github.com/lwsgate/lwsgate/lws"
)

// The operator's console (console/, coming) is fed by the admin API and,
// live, by the event stream on the admin listener (events.go), which a
// browser reaches with a ticket the admin token bought (tickets.go).

// console is what the gateway keeps for its consoles.
//
// Concurrency: safe from any goroutine.
type console struct {
	tickets tickets
	series  series

	mu      sync.Mutex
	streams map[*stream]struct{} // event streams open
}

// open adds a stream unless maxStreams are open.
func (c *console) open(s *stream) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.streams) >= maxStreams {
		return false
	}
	if c.streams == nil {
		c.streams = map[*stream]struct{}{}
	}
	c.streams[s] = struct{}{}
	return true
}

func (c *console) closed(s *stream) {
	c.mu.Lock()
	delete(c.streams, s)
	c.mu.Unlock()
}

// list returns the streams open.
func (c *console) list() []*stream {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]*stream, 0, len(c.streams))
	for s := range c.streams {
		out = append(out, s)
	}
	return out
}

// adminListener is the admin listener: the admin API over HTTP
// (adminHandler), and the console's event stream, the one
// WebSocket route (checkEvents, events.go).
func (g *Gateway) adminListener(addr string) lws.Listener {
	return lws.Listener{
		Name:           AdminListener,
		Addr:           addr,
		Accept:         lws.AcceptHTTP | lws.AcceptWebSocket,
		HTTPHandler:    serveNetHTTP(g.started, g.adminHandler()),
		MaxBodySize:    adminMaxBody,
		Handler:        eventsHandler{g},
		CheckUpgrade:   g.checkEvents,
		Subprotocols:   []string{eventsProtocol},
		MaxMessageSize: eventsMaxCommand,
		MaxSendQueue:   eventsMaxQueue,
		SlowConsumer:   lws.CloseSlowConsumer,
		PingInterval:   30 * time.Second, // a console gone without a word is closed within 40 s
	}
}
