package gateway

import (
	"sync"
	"time"

	"github.com/lwsgate/lwsgate/lws"
)

// ClosedLink says how a link ended: the close code and reason of its
// WebSocket closing handshake (1006 when there was none: the connection
// was lost; 1000 for an HTTP link), which side closed it, and when.
type ClosedLink struct {
	Code   int       `json:"code"`
	Reason string    `json:"reason,omitempty"`
	By     string    `json:"by"` // "gateway" (this side: the admin API, a rule, a limit, shutdown) or "peer"
	At     time.Time `json:"at"`
}

// closedKeep is how many of the last links to close the gateway
// remembers: about 70 bytes each (ring slot and map entry), so under
// 300 KiB.
const closedKeep = 4096

// closedLinks remembers how the last closedKeep links ended, so that the
// admin API's 410 for a link that has gone can say how and when (an
// operator following a link's trace learns its close code). Older ones
// answer 410 without it.
//
// Concurrency: safe from any goroutine.
type closedLinks struct {
	mu   sync.Mutex
	ring []closedEntry // oldest overwritten first
	next int
	slot map[uint64]int32 // ID -> index in ring
}

type closedEntry struct {
	id     uint64
	at     int64 // unix nanoseconds
	reason string
	code   lws.StatusCode
	local  bool
}

func newClosedLinks() *closedLinks {
	return &closedLinks{ring: make([]closedEntry, closedKeep), slot: make(map[uint64]int32, closedKeep)}
}

func (c *closedLinks) add(id uint64, ce lws.CloseError, at time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e := &c.ring[c.next]
	if e.id != 0 {
		delete(c.slot, e.id)
	}
	*e = closedEntry{id: id, at: at.UnixNano(), reason: ce.Reason, code: ce.Code, local: ce.Local}
	c.slot[id] = int32(c.next)
	c.next = (c.next + 1) % len(c.ring)
}

// get returns how link id ended, if it is among the last closedKeep.
func (c *closedLinks) get(id uint64) (ClosedLink, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	i, ok := c.slot[id]
	if !ok {
		return ClosedLink{}, false
	}
	e := &c.ring[i]
	by := "peer"
	if e.local {
		by = "gateway"
	}
	return ClosedLink{Code: int(e.code), Reason: e.reason, By: by, At: time.Unix(0, e.at)}, true
}
