package gateway

import (
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/btree"

	"github.com/lwsgate/lwsgate/lws"
)

// Link type names, after the seed's listener types and their client
// counterparts.
const (
	TypeTCPListen   = "tcplisten"   // a WebSocket link a client opened to us
	TypeHTTPListen  = "httplisten"  // an HTTP connection a client opened to us
	TypeTCPConnect  = "tcpconnect"  // a WebSocket link we opened to a backend
	TypeHTTPConnect = "httpconnect" // an HTTP request we made to a backend
)

// linkType names an lws link in the gateway's words.
func linkType(l lws.Link) string {
	switch {
	case l.Kind == lws.LinkWebSocket && l.Client():
		return TypeTCPConnect
	case l.Kind == lws.LinkWebSocket:
		return TypeTCPListen
	case l.Client():
		return TypeHTTPConnect
	}
	return TypeHTTPListen
}

// ParseLinkTypes parses what a listener accepts as listeners[].links and
// lwsgate -links write it: a comma-separated list of tcplisten (WebSocket
// links) and httplisten (HTTP requests), also ws and http. It returns the
// canonical names, tcplisten first.
func ParseLinkTypes(s string) ([]string, error) {
	a, err := parseAccept(strings.Split(s, ","))
	if err != nil {
		return nil, err
	}
	var out []string
	if a&lws.AcceptWebSocket != 0 {
		out = append(out, TypeTCPListen)
	}
	if a&lws.AcceptHTTP != 0 {
		out = append(out, TypeHTTPListen)
	}
	return out, nil
}

// parseAccept turns listeners[].links into what the lws listener accepts.
func parseAccept(links []string) (lws.Accept, error) {
	var a lws.Accept
	for _, f := range links {
		switch strings.TrimSpace(strings.ToLower(f)) {
		case TypeTCPListen, "ws":
			a |= lws.AcceptWebSocket
		case TypeHTTPListen, "http":
			a |= lws.AcceptHTTP
		default:
			return 0, fmt.Errorf("unknown link type %q (want %s, %s)", f, TypeTCPListen, TypeHTTPListen)
		}
	}
	return a, nil
}

// LinkRecord is the gateway's record of one link in its link table, from
// the moment the link opens until libwebsockets destroys it: what lws told
// of it when it opened (an lws.Link, in the gateway's words), the user its
// token named, its counters, channels and relays. It is shared: the
// routing step, the admin API and the hooks see the same record. A
// LinkInfo is a copy of one at a moment.
//
// The identity fields are set when it opens and never change; the
// counters are atomic. Concurrency: safe from any goroutine.
type LinkRecord struct {
	ID       uint64
	Type     string // tcplisten, httplisten, tcpconnect, httpconnect
	Listener string // "" for links we opened
	Remote   string // peer address
	Path     string // upgrade path or first request path
	URL      string // for links we opened
	User     string // the token's subject, when the listener requires one
	Opened   time.Time
	Node     string // the node holding it (set by the link table)
	Worker   int    // the worker (service loop) serving it: w's id (set by the link table)
	// Identity is what the link's token proved (its subject is User); nil
	// when the listener requires no token.
	Identity *Identity

	conn *lws.Conn // WebSocket links; nil for HTTP
	w    *worker   // the worker the link lives on
	// hdr are the headers of the link's upgrade request its backends and
	// hooks may be given (linkHeaders); nil: none.
	hdr http.Header

	bytesIn, bytesOut, msgsIn, msgsOut atomic.Int64
	last                               atomic.Int64 // unix nanoseconds of the last message either way

	// held are the messages waiting for the connect hook; lc is the
	// link's listener in the config lcOf (listenerOf). The three belong
	// to the service goroutine of the link's worker.
	held *heldMsgs
	lc   *ListenerConfig
	lcOf *Config

	mu       sync.Mutex
	channels map[string]struct{}
	relays   map[string]*pair // by backend name

	// rec is the link's durable record in a cluster (recordLink); nil:
	// none. Set before the link is shared.
	rec *linkRec
}

// heldMsgs are a link's messages received while its connect hook runs.
type heldMsgs struct {
	msgs  []pendingMsg
	bytes int64
}

// Conn returns the link's WebSocket connection, or nil for HTTP links.
func (l *LinkRecord) Conn() *lws.Conn { return l.conn }

// countIn counts a message received at, a monotonic reading (sinceBase).
func (l *LinkRecord) countIn(n int, at time.Duration) {
	l.msgsIn.Add(1)
	l.bytesIn.Add(int64(n))
	l.last.Store(unixNanoAt(at))
}

// countOut counts a message queued at, a monotonic reading (sinceBase).
func (l *LinkRecord) countOut(n int, at time.Duration) {
	l.msgsOut.Add(1)
	l.bytesOut.Add(int64(n))
	l.last.Store(unixNanoAt(at))
}

// The per-message clock. time.Now reads two clocks (wall and monotonic),
// about 50 ns here, and a message read four; sinceBase reads the
// monotonic one only (about 30 ns), and one reading serves a message's
// last activity and the start of its routing step. Times of day are then
// the process's start plus its monotonic time: a step of the system clock
// after the start does not show in last activity.
var clockBase = time.Now()

// sinceBase is the monotonic time since the process's clockBase.
func sinceBase() time.Duration { return time.Since(clockBase) }

// unixNanoAt is the time of day of a sinceBase reading, in unix
// nanoseconds.
func unixNanoAt(d time.Duration) int64 { return clockBase.UnixNano() + int64(d) }

// LinkInfo is a snapshot of a LinkRecord (LinkRecord.Info): a value, as
// the admin API and the hooks send it in JSON.
type LinkInfo struct {
	ID           uint64    `json:"id"`
	Type         string    `json:"type"`
	Listener     string    `json:"listener,omitempty"`
	Remote       string    `json:"remote,omitempty"`
	Path         string    `json:"path,omitempty"`
	URL          string    `json:"url,omitempty"`
	User         string    `json:"user,omitempty"`
	Node         string    `json:"node"`
	Worker       int       `json:"worker"`
	Opened       time.Time `json:"opened"`
	LastActivity time.Time `json:"last_activity"`
	BytesIn      int64     `json:"bytes_in"`
	BytesOut     int64     `json:"bytes_out"`
	MessagesIn   int64     `json:"messages_in"`
	MessagesOut  int64     `json:"messages_out"`
	Queued       int64     `json:"queued"`
	Channels     []string  `json:"channels,omitempty"`
}

// Info returns a snapshot of l.
func (l *LinkRecord) Info() LinkInfo {
	in := LinkInfo{
		ID: l.ID, Type: l.Type, Listener: l.Listener, Remote: l.Remote, Path: l.Path, URL: l.URL,
		User: l.User, Node: l.Node, Worker: l.Worker, Opened: l.Opened, LastActivity: l.Opened,
		BytesIn: l.bytesIn.Load(), BytesOut: l.bytesOut.Load(),
		MessagesIn: l.msgsIn.Load(), MessagesOut: l.msgsOut.Load(),
	}
	if t := l.last.Load(); t != 0 {
		in.LastActivity = time.Unix(0, t)
	}
	if l.conn != nil {
		in.Queued = l.conn.Queued()
	}
	l.mu.Lock()
	for ch := range l.channels {
		in.Channels = append(in.Channels, ch)
	}
	l.mu.Unlock()
	sort.Strings(in.Channels)
	return in
}

// linkTable tracks every live link, as the seed's AddLink/DelLink did: a
// link is added when it opens (ESTABLISHED for WebSocket, the first request
// for HTTP) and deleted when libwebsockets destroys it (WSI_DESTROY, which
// unlike CLOSED always comes). Besides the map by ID it keeps the links
// in ID order (a B-tree) and counts them by type, so that a page of the
// table (linkpage.go) needs neither a copy of it nor a long lock.
//
// Concurrency: safe from any goroutine; add and del run on the service
// goroutine.
//
// A link's ID is its lws number (its wsi) under the memory engine; in a
// cluster, the number with this node's incarnation above it
// (cluster.LinkID). The table is keyed by ID, and finds a link by its
// lws number too (byLocal), as libwebsockets names it when it closes.
type linkTable struct {
	node string // the node its links are on

	mu      sync.RWMutex
	links   map[uint64]*LinkRecord
	byLocal map[uint64]uint64 // lws number -> ID
	byID    *btree.BTreeG[*LinkRecord]
	byType  map[string]int
	maxID   uint64 // the largest ID ever added: a smaller unknown one is gone
	opened  atomic.Uint64
}

func newLinkTable(node string) *linkTable {
	return &linkTable{
		node:    node,
		links:   map[uint64]*LinkRecord{},
		byLocal: map[uint64]uint64{},
		byID:    btree.NewG(32, func(a, b *LinkRecord) bool { return a.ID < b.ID }),
		byType:  map[string]int{},
	}
}

// add puts l, whose lws number is local, in the table.
func (t *linkTable) add(l *LinkRecord, local uint64) {
	l.Node = t.node
	if l.w != nil {
		l.Worker = l.w.id
	}
	t.mu.Lock()
	if old := t.links[l.ID]; old != nil {
		t.byType[old.Type]--
	}
	t.links[l.ID] = l
	t.byLocal[local] = l.ID
	t.byID.ReplaceOrInsert(l)
	t.byType[l.Type]++
	t.maxID = max(t.maxID, l.ID)
	t.mu.Unlock()
	t.opened.Add(1)
}

// del removes the link whose lws number is local and returns it.
func (t *linkTable) del(local uint64) *LinkRecord {
	t.mu.Lock()
	defer t.mu.Unlock()
	id, ok := t.byLocal[local]
	if !ok {
		return nil
	}
	delete(t.byLocal, local)
	l := t.links[id]
	if l != nil {
		delete(t.links, id)
		t.byID.Delete(l)
		t.byType[l.Type]--
	}
	return l
}

// idOf returns the ID of the live link whose lws number is local.
func (t *linkTable) idOf(local uint64) (uint64, bool) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	id, ok := t.byLocal[local]
	return id, ok
}

// get returns the link, or nil and whether it existed once (gone).
func (t *linkTable) get(id uint64) (l *LinkRecord, gone bool) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	l = t.links[id]
	return l, l == nil && id != 0 && id <= t.maxID
}

func (t *linkTable) len() int {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return len(t.links)
}

// count returns the number of links of type typ ("": all).
func (t *linkTable) count(typ string) int {
	t.mu.RLock()
	defer t.mu.RUnlock()
	if typ == "" {
		return len(t.links)
	}
	return t.byType[typ]
}

// list returns the links, by ID, that keep returns true for.
func (t *linkTable) list(keep func(*LinkRecord) bool) []*LinkRecord {
	t.mu.RLock()
	out := make([]*LinkRecord, 0, len(t.links))
	for _, l := range t.links {
		if keep == nil || keep(l) {
			out = append(out, l)
		}
	}
	t.mu.RUnlock()
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// scanChunk is how many links scan reads under one hold of the lock:
// a full scan of 100,000 links never keeps add and del (the service
// goroutine) waiting for more than a few microseconds at a time.
const scanChunk = 256

// scan calls fn with the links in ID order, from the first beyond from
// (ascending: IDs above it; descending: below it; from 0 starts at the
// end), until fn returns false. The links are read scanChunk at a time;
// a link added or deleted meanwhile may be seen or not.
func (t *linkTable) scan(from uint64, desc bool, fn func(*LinkRecord) bool) {
	var buf [scanChunk]*LinkRecord
	for {
		n := 0
		collect := func(l *LinkRecord) bool {
			buf[n] = l
			n++
			return n < scanChunk
		}
		t.mu.RLock()
		switch {
		case !desc:
			t.byID.AscendGreaterOrEqual(&LinkRecord{ID: from + 1}, collect)
		case from == 0:
			t.byID.Descend(collect)
		default:
			t.byID.DescendLessOrEqual(&LinkRecord{ID: from - 1}, collect)
		}
		t.mu.RUnlock()
		if n == 0 {
			return
		}
		last := buf[n-1].ID
		for i := range n {
			if !fn(buf[i]) {
				return
			}
		}
		if n < scanChunk {
			return
		}
		from = last
	}
}

// addrString is a.String(), "" for nil.
func addrString(a net.Addr) string {
	switch ta := a.(type) {
	case nil:
		return ""
	case *net.TCPAddr:
		// As TCPAddr.String writes it, in one allocation instead of
		// three.
		if ap := ta.AddrPort(); ap.Addr().IsValid() {
			return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()).String()
		}
	}
	return a.String()
}
