package gateway

import (
	"slices"
	"sync"
	"time"

	"github.com/lwsgate/lwsgate/lws"
)

// ClosedLink says how a link ended: the close code and reason of its
// WebSocket closing handshake (1006 when there was none: the connection
// was lost; 1000 for an HTTP link), which side closed it, and when.
//
// Concurrency: a value.
type ClosedLink struct {
	Code   int       `json:"code"`
	Reason string    `json:"reason,omitempty"`
	By     string    `json:"by"` // "gateway" (this side: the admin API, a rule, a limit, shutdown) or "peer"
	At     time.Time `json:"at"`
}

// closedKeep is how many of the last links to close the gateway
// remembers: about 70 bytes each (ring slot and ID), and with the
// admin API on, the link's last snapshot (about 250 bytes) and the end
// of its trace (8 bytes a callback: 512 at log.link_trace's default of
// 64), so at most 3.4 MiB.
const closedKeep = 4096

// closedLinks remembers how the last closedKeep links ended, so that the
// admin API's 410 for a link that has gone can say how and when (an
// operator following a link's trace learns its close code), and what
// the link was and did last: its final snapshot and the callbacks of
// its end, which the console's link page shows. Older ones answer 410
// without it.
//
// Concurrency: safe from any goroutine.
type closedLinks struct {
	mu   sync.Mutex
	ring []closedEntry // oldest overwritten first
	next int
	// ids[i] is the ID of the link ring[i] is about (0: none yet), apart
	// so that final scans 32 KiB: a map from ID to slot cost every
	// closing link a delete and an insert, for a lookup only the admin
	// API makes.
	ids []uint64
	// held is the trace lws handed over (OnLinkTrace) for the link
	// whose add comes next (OnLinkClose, on the same goroutine).
	held struct {
		id uint64
		tr lws.Trace
	}
}

type closedEntry struct {
	at     int64 // unix nanoseconds
	reason string
	code   lws.StatusCode
	local  bool
	last   *LinkInfo // its last snapshot; nil if not kept
	trace  lws.Trace // the end of its trace; empty if none
}

func newClosedLinks() *closedLinks {
	return &closedLinks{ring: make([]closedEntry, closedKeep), ids: make([]uint64, closedKeep)}
}

// hold keeps the trace of link id until its add.
func (c *closedLinks) hold(id uint64, tr lws.Trace) {
	c.mu.Lock()
	c.held.id, c.held.tr = id, tr
	c.mu.Unlock()
}

// add records how link id ended, with its last snapshot (nil: none) and
// the trace hold kept for it.
func (c *closedLinks) add(id uint64, ce lws.CloseError, at time.Time, last *LinkInfo) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e := &c.ring[c.next]
	*e = closedEntry{at: at.UnixNano(), reason: ce.Reason, code: ce.Code, local: ce.Local, last: last}
	if c.held.id == id {
		e.trace = c.held.tr
	}
	c.held.id, c.held.tr = 0, lws.Trace{}
	c.ids[c.next] = id
	c.next = (c.next + 1) % len(c.ring)
}

// get returns how link id ended, if it is among the last closedKeep.
func (c *closedLinks) get(id uint64) (ClosedLink, bool) {
	cl, _, _, ok := c.final(id)
	return cl, ok
}

// final returns how link id ended, its last snapshot (nil if not kept)
// and the end of its trace, if it is among the last closedKeep.
func (c *closedLinks) final(id uint64) (ClosedLink, *LinkInfo, lws.Trace, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	i := slices.Index(c.ids, id)
	if id == 0 || i < 0 {
		return ClosedLink{}, nil, lws.Trace{}, false
	}
	e := &c.ring[i]
	by := "peer"
	if e.local {
		by = "gateway"
	}
	return ClosedLink{Code: int(e.code), Reason: e.reason, By: by, At: time.Unix(0, e.at)}, e.last, e.trace, true
}

// onLinkTrace is lws's OnLinkTrace: the end of a link's trace, kept
// with how the link ended by onLinkClose, which comes next.
func (g *Gateway) onLinkTrace(ll lws.Link, tr lws.Trace) {
	if ll.Listener != AdminListener {
		g.closed.hold(g.idOfLocal(ll.ID), tr)
	}
}

// lastSnapshot is link id's snapshot as it closes, kept for the admin
// API's 410 and the console (nil with the admin API off).
func (g *Gateway) lastSnapshot(id uint64) *LinkInfo {
	if g.cfg.Load().Admin.Addr == "off" {
		return nil
	}
	l, _ := g.links.get(id)
	if l == nil {
		return nil
	}
	in := l.Info()
	return &in
}
