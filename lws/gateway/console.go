package gateway

import (
	"embed"
	"mime"
	"net/http"
	"path"
	"strings"
	"sync"
	"time"

	"github.com/lwsgate/lwsgate/lws"
)

// The operator's console: a page on the admin listener (/console) that
// shows the link table, a link's callback trace, channels, nodes and
// charts, live. Its files are embedded (console/: plain HTML, CSS and
// JavaScript, charts drawn in SVG; nothing is fetched from elsewhere).
// Its data is the admin API's, with the same auth, and its updates come
// over a WebSocket on the admin listener (events.go).
//
// Auth. The page itself holds no data and is served to anyone who can
// reach the admin listener; it asks for the admin token (admin.token),
// keeps it in the tab's sessionStorage and sends it as Authorization:
// Bearer on each API call, as any client does, and buys a one-time
// ticket with it for the event stream (tickets.go). Nothing is ambient
// (no cookie), so another site the browser visits cannot make requests
// on the operator's behalf.

//go:embed console
var consoleFiles embed.FS

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

// consoleCSP is the console's Content-Security-Policy: its own files
// only, and connections to its own origin (fetch and the WebSocket).
const consoleCSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// serveConsole serves the console's files: /console is its page,
// /console/{asset} the rest.
func serveConsole(w http.ResponseWriter, r *http.Request) {
	name := "index.html"
	if a := r.PathValue("asset"); a != "" {
		name = a
	}
	body, err := consoleFiles.ReadFile("console/" + name)
	if err != nil || strings.Contains(name, "/") {
		writeJSON(w, 404, apiError{404, "no console file " + path.Clean(r.URL.Path)})
		return
	}
	h := w.Header()
	ctype := mime.TypeByExtension(path.Ext(name))
	if ctype == "" {
		ctype = "application/octet-stream"
	}
	h.Set("Content-Type", ctype)
	h.Set("Cache-Control", "no-cache")
	h.Set("Content-Security-Policy", consoleCSP)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Frame-Options", "DENY")
	w.WriteHeader(200)
	_, _ = w.Write(body)
}

// adminListener is the admin listener: the admin API and the console
// over HTTP (adminHandler), and the console's event stream, the one
// WebSocket route (checkEvents, events.go).
func (g *Gateway) adminListener(addr string) lws.Listener {
	return lws.Listener{
		Name:           AdminListener,
		Addr:           addr,
		Accept:         lws.AcceptHTTP | lws.AcceptWebSocket,
		HTTPHandler:    serveNetHTTP(g.started, g.admin),
		ExtraHeaders:   []string{"Idempotency-Key"}, // a publish's (history.go)
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
