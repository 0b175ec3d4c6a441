package lws

import (
	"errors"
	"sync/atomic"
	"time"

	"github.com/lwsgate/lwsgate/callbacks"
)

// maxReason bounds the reason numbers counted per Context; libwebsockets
// numbers its reasons explicitly and 4.3 stays below 128. Larger ones are
// counted as maxReason-1.
const maxReason = 128

// reasonCounts counts callbacks by reason. Written on the service
// goroutine, read from any.
type reasonCounts [maxReason]atomic.Uint64

func (rc *reasonCounts) add(r callbacks.Reason) { rc.addN(r, 1) }

func (rc *reasonCounts) addN(r callbacks.Reason, n uint32) {
	i := int(r)
	if i < 0 || i >= maxReason {
		i = maxReason - 1
	}
	rc[i].Add(uint64(n))
}

// ReasonCount is how many callbacks of one reason a Context has had.
type ReasonCount struct {
	Reason int    // libwebsockets' number, e.g. 6
	Name   string // e.g. "LWS_CALLBACK_RECEIVE"
	Count  uint64
}

// ReasonCounts returns the number of callbacks per reason since New, for
// the reasons seen at least once, in reason order. Safe from any
// goroutine.
func (c *Context) ReasonCounts() []ReasonCount {
	var out []ReasonCount
	for i := range c.reasons {
		if n := c.reasons[i].Load(); n > 0 {
			out = append(out, ReasonCount{Reason: i, Name: callbacks.Reason(i).String(), Count: n})
		}
	}
	return out
}

// TraceEntry is one callback in a link's trace.
type TraceEntry struct {
	Time   time.Time
	Reason int    // libwebsockets' number
	Name   string // e.g. "LWS_CALLBACK_RECEIVE"
}

// linkTrace is a ring of a link's last callbacks (service goroutine only).
// Each entry is one word: the time in microseconds since 1970 (54 bits,
// good for five centuries) above the reason (10 bits: libwebsockets'
// reasons go up to LWS_CALLBACK_USER, 1000). A rec has one only when
// Config.LinkTrace is set, and its ring grows (8, 16, 32... entries) up to
// Config.LinkTrace as callbacks come: an idle WebSocket link has had about
// a dozen, so it holds 16 entries (128 bytes), not 64 (512 bytes; 10,000
// idle lwsgate links were 4.6 MB of Go heap with the ring made whole).
type linkTrace struct {
	ring []uint64
	n    int // callbacks recorded in total
}

const traceReasonBits = 10

// traceClockEvery is how many link-trace entries share one clock read
// within a service pass (traceClock).
const traceClockEvery = 16

// traceClock is the time link traces record (service goroutine only): read
// at the first entry of each service pass (an lws_service call and what the
// loop does after it, up to the next: no wait for events in between) and
// then every traceClockEvery entries, instead of at every callback. A pass over a thousand busy links
// makes two entries a message, and a clock read for each was 3% of
// lwsgate's CPU with two workers (perf: __vdso_clock_gettime). An entry is
// then early by what the callbacks before it in its pass took, at most
// traceClockEvery-1 of them: its order in the link's trace is unchanged.
func (c *Context) traceClock() time.Time {
	if c.trClockN == 0 || c.trClockPass != c.passes {
		c.trClock, c.trClockPass, c.trClockN = time.Now(), c.passes, traceClockEvery
	}
	c.trClockN--
	return c.trClock
}

// add records a callback in a ring of at most size entries.
func (t *linkTrace) add(now time.Time, r callbacks.Reason, size int) {
	reason := uint64(r)
	if r < 0 || reason >= 1<<traceReasonBits {
		reason = 1<<traceReasonBits - 1
	}
	v := uint64(now.UnixMicro())<<traceReasonBits | reason
	if len(t.ring) < size {
		// Not full yet: nothing has wrapped, entry k is at index k.
		if len(t.ring) == cap(t.ring) {
			ring := make([]uint64, len(t.ring), min(size, max(8, 2*cap(t.ring))))
			copy(ring, t.ring)
			t.ring = ring
		}
		t.ring = append(t.ring, v)
	} else {
		t.ring[t.n%len(t.ring)] = v
	}
	t.n++
}

func (t *linkTrace) entries() []TraceEntry {
	size := len(t.ring)
	first := max(0, t.n-size)
	out := make([]TraceEntry, 0, t.n-first)
	for k := first; k < t.n; k++ {
		v := t.ring[k%size]
		r := callbacks.Reason(v & (1<<traceReasonBits - 1))
		out = append(out, TraceEntry{Time: time.UnixMicro(int64(v >> traceReasonBits)), Reason: int(r), Name: r.String()})
	}
	return out
}

// Trace is a link's last callbacks as Config.OnLinkTrace hands them
// over: one word a callback, decoded by Entries. Concurrency: once
// handed over, nothing changes it; safe from any goroutine.
type Trace struct{ t *linkTrace }

// Entries returns the callbacks, oldest first.
func (t Trace) Entries() []TraceEntry {
	if t.t == nil {
		return nil
	}
	return t.t.entries()
}

// ErrLinkNotOpen is returned for a link ID that is not open: never
// issued, or closed since.
var ErrLinkNotOpen = errors.New("lws: no open link with this ID")

// LinkTrace returns the last Config.LinkTrace callbacks of a live link,
// oldest first. It waits for the service goroutine; safe from any
// goroutine, but not from a callback (use it from another goroutine).
func (c *Context) LinkTrace(id uint64) ([]TraceEntry, error) {
	if c.cfg.LinkTrace <= 0 {
		return nil, errors.New("lws: Config.LinkTrace is 0")
	}
	var out []TraceEntry
	found := false
	if err := c.Do(func() {
		if r := c.recs[id]; r != nil && r.trace != nil {
			out, found = r.trace.entries(), true
		}
	}); err != nil {
		return nil, err
	}
	if !found {
		return nil, ErrLinkNotOpen
	}
	return out, nil
}
