package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"reflect"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lwsgate/lwsgate/lws"
	"github.com/lwsgate/lwsgate/lws/gateway/cluster"
)

// The console's event stream: a WebSocket on the admin listener (GET
// /v1/api/events, subprotocol eventsProtocol) over which lwsgate pushes
// what a console shows, live.
//
// The console says what it looks at with a command, {"watch": {...}}
// (streamWatch: a page of the link table, one link, the channels, the
// nodes), each one replacing the last. The stream answers with
// "hello" once, then an "update" every second (the new samples of the
// series, and what is watched: the page, the channels, the nodes) and
// at once after a command; and a "link" message when the watched link
// changes (its counters, new callbacks in its trace, its close), looked
// at four times a second.
//
// A slow console must not cost the gateway: every message is the whole
// state of what it shows, not a change to it, so a message can be left
// out. Before each one the stream looks at what is still queued to the
// console; beyond eventsBudget it sends nothing and counts the update
// as skipped (the next one that goes says how many were), so a console
// that does not read holds at most eventsBudget plus one message
// (a page of at most streamPageMax rows, a trace of at most
// streamTraceMax callbacks) of the gateway's memory, and its updates
// coalesce. Samples are sent from the last one the console got, so
// skipped seconds arrive with the next update (while the ring,
// seriesKeep seconds, has them). The listener's MaxSendQueue
// (eventsMaxQueue) is a backstop that is not reached. Each stream's
// work is one goroutine with two tickers; at most maxStreams are open.

const (
	eventsPath     = "/v1/api/events"
	eventsProtocol = "lwsgate.events.v1"

	eventsMaxCommand  = 64 << 10  // the largest command a console may send
	eventsBudget      = 256 << 10 // queued bytes beyond which an update is skipped
	eventsMaxQueue    = 4 << 20   // the listener's MaxSendQueue: a backstop (1008)
	maxStreams        = 16
	streamsRetry      = 5   // seconds: the Retry-After of a 503 for one stream too many
	streamPageMax     = 200 // rows of a page of the link table
	streamTraceMax    = 1000
	streamChannelsMax = 500 // the channels with the most members
)

// Stream periods; variables so that tests can run them faster.
var (
	streamTick = time.Second
	traceTick  = 250 * time.Millisecond
)

// checkEvents is the admin listener's CheckUpgrade: the event stream is
// its one WebSocket route, with the admin API's auth (the admin token,
// or a ticket the token bought), for at most maxStreams consoles.
func (g *Gateway) checkEvents(r *lws.Request) error {
	if r.Path != eventsPath {
		return &lws.HTTPError{Status: 404, Message: "no WebSocket route at " + r.Path + " (the console's event stream is " + eventsPath + ")"}
	}
	if tok := g.cfg.Load().Admin.Token; tok != "" && !bearerOK(r.Header(), tok) && !g.console.tickets.redeem(offeredTicket(r.Header()), time.Now()) {
		g.log.Info("console stream refused", "link", r.LinkID, "remote", addrString(r.Remote), "why", "no admin token or valid ticket")
		return &lws.HTTPError{Status: 401, Message: "admin token required: Authorization: Bearer, or a ticket from POST /v1/api/events/ticket offered as subprotocol " + ticketProtocol + "TICKET",
			Header: http.Header{"Www-Authenticate": {adminChallenge}}}
	}
	if len(g.console.list()) >= maxStreams {
		return &lws.HTTPError{Status: 503, Message: "too many console streams open (at most 16)",
			Header: http.Header{"Retry-After": {strconv.Itoa(streamsRetry)}}}
	}
	return nil
}

// apiEvents answers a GET of the event stream that is not a WebSocket
// upgrade.
func (g *Gateway) apiEvents(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Upgrade", "websocket")
	writeJSON(w, 426, apiError{426, eventsPath + " is a WebSocket (subprotocol " + eventsProtocol + "): send an upgrade"})
}

// eventsHandler serves the event streams.
//
// Concurrency: its methods run on the admin context's service goroutine
// (lws.Handler); each stream's state is its own (stream).
type eventsHandler struct{ g *Gateway }

func (h eventsHandler) OnOpen(c *lws.Conn) {
	g := h.g
	g.waitStarted()
	s := &stream{g: g, c: c, wake: make(chan struct{}, 1), done: make(chan struct{})}
	if !g.console.open(s) {
		// Upgrades checked together, before any opened.
		_ = c.Close(lws.StatusTryAgainLater, "too many console streams open")
		return
	}
	c.SetValue(s)
	go s.run()
}

func (h eventsHandler) OnMessage(c *lws.Conn, _ lws.MessageType, data []byte) {
	if s, _ := c.Value().(*stream); s != nil {
		s.command(data)
	}
}

func (h eventsHandler) OnClose(c *lws.Conn, _ lws.CloseError) {
	if s, _ := c.Value().(*stream); s != nil {
		close(s.done)
		h.g.console.closed(s)
	}
}

// streamWatch is what a console looks at: {"watch": streamWatch}.
//
// Concurrency: a value.
type streamWatch struct {
	Links    *streamLinks `json:"links,omitempty"`    // a page of the link table
	Link     uint64       `json:"link,omitempty"`     // one link
	Channels bool         `json:"channels,omitempty"` // the channels
	Nodes    bool         `json:"nodes,omitempty"`    // the nodes
}

// streamLinks is a LinkQuery as a console sends it (GET /v1/api/links'
// parameters).
//
// Concurrency: a value.
type streamLinks struct {
	Type    string `json:"type,omitempty"`
	User    string `json:"user,omitempty"`
	Channel string `json:"channel,omitempty"`
	Node    string `json:"node,omitempty"`
	Sort    string `json:"sort,omitempty"`
	Order   string `json:"order,omitempty"`
	Limit   int    `json:"limit,omitempty"` // 1 to streamPageMax; 0: 50
	After   string `json:"after,omitempty"`
	Before  string `json:"before,omitempty"`
}

func (sl *streamLinks) query() (LinkQuery, error) {
	q := LinkQuery{Type: sl.Type, User: sl.User, Channel: sl.Channel, Node: sl.Node, Sort: sl.Sort,
		Limit: sl.Limit, After: sl.After, Before: sl.Before}
	switch sl.Order {
	case "", "asc":
	case "desc":
		q.Desc = true
	default:
		return q, &QueryError{"order", sl.Order, "want asc or desc"}
	}
	if q.Limit == 0 {
		q.Limit = 50
	}
	if q.Limit < 1 || q.Limit > streamPageMax {
		return q, &QueryError{"limit", "", "want 1 to 200 on the event stream"}
	}
	return q, q.check()
}

// stream is one console's event stream.
//
// Concurrency: command runs on the service goroutine, run on the
// stream's own; they share watch and gen under mu.
type stream struct {
	g    *Gateway
	c    *lws.Conn
	wake chan struct{} // a command came (capacity 1: commands coalesce)
	done chan struct{} // closed when the link has gone

	mu       sync.Mutex
	watch    streamWatch
	query    LinkQuery // watch.Links as a query
	queryErr error     // why watch.Links is not one
	gen      uint64    // commands taken

	// run's own.
	seq     uint64   // the last sample sent
	sentGen uint64   // the gen of the last update sent
	mark    linkMark // what the last "link" message showed
	skipped int      // updates skipped since the last sent

	skips atomic.Int64 // updates skipped in all (tests read it)
}

// command takes a console's command: {"watch": {...}}. A command that
// is not one is answered with an error message and changes nothing; a
// page of the link table it cannot make is answered in the updates.
func (s *stream) command(data []byte) {
	var cmd struct {
		Watch *streamWatch `json:"watch"`
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&cmd); err != nil || cmd.Watch == nil {
		msg := `want {"watch": {"links": {...}, "link": ID, "channels": true, "nodes": true}}`
		if err != nil {
			msg = "command: " + err.Error()
		}
		s.sendNow(map[string]string{"type": "error", "error": msg})
		return
	}
	// A page it cannot make (a sort it does not have...) is still what
	// the console looks at: its updates say why there is no page.
	var q LinkQuery
	var qerr error
	if cmd.Watch.Links != nil {
		q, qerr = cmd.Watch.Links.query()
	}
	s.mu.Lock()
	s.watch, s.query, s.queryErr = *cmd.Watch, q, qerr
	s.gen++
	s.mu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// run sends the stream's messages until the link has gone.
func (s *stream) run() {
	tick := time.NewTicker(streamTick)
	defer tick.Stop()
	fast := time.NewTicker(traceTick)
	defer fast.Stop()
	g := s.g
	s.sendNow(map[string]any{
		"type": "hello", "node": g.self.name, "version": g.self.version, "libwebsockets": lws.Version(),
		"started": g.self.started, "interval_ms": streamTick.Milliseconds(), "keep": seriesKeep,
		"link_trace": linkTrace(g.cfg.Load()), "max_page": streamPageMax, "auth": g.cfg.Load().Admin.Token != "",
	})
	s.update(true)
	for {
		select {
		case <-s.done:
			return
		case <-tick.C:
			s.update(true)
		case <-s.wake:
			s.update(false)
		case <-fast.C:
			s.updateLink(false)
		}
	}
}

// streamUpdate is an "update" message.
//
// Concurrency: a value.
type streamUpdate struct {
	Type     string        `json:"type"` // "update"
	Gen      uint64        `json:"gen"`  // commands taken when it was made
	Time     int64         `json:"t"`    // unix milliseconds
	Samples  []Sample      `json:"samples,omitempty"`
	Links    *LinkPage     `json:"links,omitempty"`
	Error    string        `json:"error,omitempty"` // why there is no page
	Channels *channelsView `json:"channels,omitempty"`
	Nodes    []NodeInfo    `json:"nodes,omitempty"`
	// Missing: the nodes of the cluster that did not answer for the
	// channels or nodes (their links and members are not counted).
	Missing []string `json:"missing,omitempty"`
	Skipped int      `json:"skipped,omitempty"` // updates left out before this one (the console did not keep up)
}

// channelsView is the channels as the console lists them: the
// streamChannelsMax with the most members.
//
// Concurrency: a value.
type channelsView struct {
	List  []ChannelInfo `json:"list"`
	Total int           `json:"total"`
}

// update sends an update: every second (tick) and after a command.
func (s *stream) update(tick bool) {
	g := s.g
	s.mu.Lock()
	w, q, qerr, gen := s.watch, s.query, s.queryErr, s.gen
	s.mu.Unlock()
	fresh := gen != s.sentGen
	if !tick && !fresh {
		return
	}
	if s.c.Queued() > eventsBudget {
		s.skip()
		return
	}
	u := streamUpdate{Type: "update", Gen: gen, Time: time.Now().UnixMilli(), Skipped: s.skipped}
	u.Samples, _ = g.console.series.since(s.seq)
	if w.Links != nil {
		p, err := LinkPage{}, qerr
		if err == nil {
			p, err = g.LinksPage(q)
		}
		if err != nil {
			u.Error = "watch.links." + err.Error()
		} else {
			u.Links = &p
		}
	}
	// In a cluster, channels and nodes are the whole cluster's, as the
	// admin API lists them (a survey, bounded by its timeout).
	missing := map[string]bool{}
	if w.Channels {
		all, miss, err := g.clusterChannels(context.Background())
		if err != nil {
			all = g.Channels() // cut off from the cluster: this node's
		}
		for _, m := range miss {
			missing[m] = true
		}
		slices.SortStableFunc(all, func(a, b ChannelInfo) int { return b.Members - a.Members })
		u.Channels = &channelsView{List: all[:min(len(all), streamChannelsMax)], Total: len(all)}
	}
	if w.Nodes {
		var miss []string
		var err error
		if u.Nodes, miss, err = g.clusterNodes(context.Background()); err != nil {
			u.Nodes = g.Nodes() // cut off from the cluster: this node (fenced)
		}
		for _, m := range miss {
			missing[m] = true
		}
	}
	for m := range missing {
		u.Missing = append(u.Missing, m)
	}
	slices.Sort(u.Missing)
	if !s.sendNow(u) {
		return
	}
	if n := len(u.Samples); n > 0 {
		s.seq = u.Samples[n-1].Seq
	}
	s.sentGen, s.skipped = gen, 0
	if w.Link != 0 {
		s.updateLink(fresh)
	}
}

// linkView is a "link" message: one link, its state and its trace.
//
// Concurrency: a value.
type linkView struct {
	Type   string       `json:"type"` // "link"
	Gen    uint64       `json:"gen"`
	ID     uint64       `json:"id"`
	State  string       `json:"state"` // open, closed, gone (closed, no longer known how) or unknown (never issued)
	Link   *LinkInfo    `json:"link,omitempty"`
	Closed *ClosedLink  `json:"closed,omitempty"`
	Trace  []traceEntry `json:"trace"`
}

// linkMark is what a "link" message showed, to tell whether there is
// anything new to show: every field of the link (its counters, its
// channels...), its state and the end of its trace.
//
// Concurrency: a value.
type linkMark struct {
	id, gen uint64
	state   string
	link    LinkInfo
	n       int    // callbacks in the trace
	last    string // the time of the newest
}

// updateLink sends the watched link's state if it changed (or force).
func (s *stream) updateLink(force bool) {
	g := s.g
	s.mu.Lock()
	id, gen := s.watch.Link, s.gen
	s.mu.Unlock()
	if id == 0 {
		return
	}
	v := linkView{Type: "link", Gen: gen, ID: id, Trace: []traceEntry{}}
	l, err := g.record(id)
	if err == nil {
		in := l.Info()
		v.State, v.Link = "open", &in
		if linkTrace(g.cfg.Load()) > 0 {
			var tr []lws.TraceEntry
			if tr, err = l.w.ctx.LinkTrace(id & cluster.MaxLocal); err == nil { // on its worker, which knows it by its number
				v.Trace = traceJSON(tr[max(0, len(tr)-streamTraceMax):])
			}
		}
	}
	switch {
	case isGone(err):
		v.State, v.Link, v.Trace = "gone", nil, []traceEntry{}
		if cl, last, tr, ok := g.closed.final(id); ok {
			es := tr.Entries()
			v.State, v.Closed, v.Link, v.Trace = "closed", &cl, last, traceJSON(es[max(0, len(es)-streamTraceMax):])
		}
	case err != nil:
		v.State = "unknown"
	}
	m := linkMark{id: id, gen: gen, state: v.State, n: len(v.Trace)}
	if v.Link != nil {
		m.link = *v.Link
	}
	if len(v.Trace) > 0 {
		m.last = v.Trace[len(v.Trace)-1].Time
	}
	if !force && reflect.DeepEqual(m, s.mark) {
		return
	}
	if s.c.Queued() > eventsBudget {
		s.skip()
		return
	}
	if s.sendNow(v) {
		s.mark = m
	}
}

// skip counts an update left out.
func (s *stream) skip() {
	s.skipped++
	s.skips.Add(1)
}

// sendNow sends one message.
func (s *stream) sendNow(v any) bool {
	b, err := json.Marshal(v)
	if err != nil {
		return false
	}
	return s.c.Send(lws.TextMessage, b) == nil
}
