package cluster

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
)

// A history channel on a node. While the node has interest, it
// subscribes to the channel's republished subject, lws.<cluster>.live.
// <token>, and delivers in the stream's order, each message once:
//
//   - It starts at the channel's last message in the stream at the time
//     it subscribed (its position: last).
//   - A live message whose previous sequence (Nats-Last-Sequence) is
//     last is delivered; one at or below last is a duplicate, dropped;
//     one whose previous sequence is above last shows a gap: the node
//     reads the missing messages from the stream and delivers them
//     first. Live messages that arrive meanwhile wait, in order. A
//     missed message the stream does not show yet, though nothing was
//     trimmed, is read again for up to unseenWait.
//   - A channel quiet for Config.HistoryCheck is checked: if the stream
//     holds a message past last, the node reads up to it. So a lost
//     last message is delivered too, later.
//   - A member joins (Resume) at a point of this sequence: the node
//     reads what it missed from the stream while it goes on delivering,
//     records what it delivers meanwhile, and, once it has delivered at
//     least up to what the read saw, gives the member the read messages
//     and the recorded ones past them, between two deliveries.
//
// The state of a channel belongs to the delivery goroutine; reads run
// on goroutines of their own and post their results back to it.

// maxHeld bounds the live messages a channel keeps while a read is in
// flight; beyond it they are dropped, and read from the stream instead.
const maxHeld = 1 << 16

// readBatchMax bounds one read of missed messages; a longer gap takes
// several.
const readBatchMax = 1024

// histChan is the state of one history channel on this node.
//
// Concurrency: the delivery goroutine's.
type histChan struct {
	hs       *histStream
	subj     string // the channel's subject in its stream
	started  bool
	busy     bool // a read is in flight: live messages wait in held
	last     uint64
	lastTs   int64
	epoch    string
	held     []*nats.Msg
	overflow bool // held overflowed: read up to the stream's last when free
	heard    time.Time
	fails    int       // reads failed in a row
	joins    []*join   // reading, and recording deliveries
	queued   []*join   // waiting for the channel to start
	behind   time.Time // since when a join waits for deliveries to reach what its read saw
	unseen   time.Time // since when a read does not find the message a live one named
}

// behindWait is how long a join waits for live deliveries to reach what
// its read saw (they are on their way, a few milliseconds behind the
// stream) before the node reads them from the stream instead.
const behindWait = 50 * time.Millisecond

// unseenWait is how long a node reads again for a message that a live
// message named as its predecessor, which the stream does not show
// though nothing was trimmed, before it passes it (Stats.Unrepairable).
// Longer than a stream leader election.
const unseenWait = 10 * time.Second

// Catchup is what Resume gives a joining member.
//
// Concurrency: a value; Missed is the join callback's to keep.
type Catchup struct {
	// Missed are the messages after since, in order, up to Position.
	Missed []Delivery
	// Position is the channel's position on this node at the join: the
	// member has now been given everything up to it.
	Position Position
	// Recovered: nothing after since is missing from Missed. false when
	// since's epoch is not the stream's (Missed is empty), or the
	// history was trimmed past since (Missed has what is left).
	Recovered bool
}

// HistoryPage is one read of History.
//
// Concurrency: a value, the caller's.
type HistoryPage struct {
	Messages []Delivery
	// Position is the last message's, or since when there is none (with
	// the stream's epoch).
	Position Position
	// Recovered: no message after since was trimmed (and since's epoch
	// is the stream's); true for a zero since.
	Recovered bool
	// More: the limit was reached; read again from Position.
	More bool
}

// join is one Resume waiting for its catch-up.
//
// Concurrency: state and done are safe from any goroutine; the rest is
// the delivery goroutine's.
type join struct {
	ctx   context.Context
	since Position
	fn    func(Catchup)
	state atomic.Int32 // joinPending, joinDone, joinCanceled
	done  chan struct{}
	err   error // set before done closes

	start     uint64     // the channel's last when recording began
	recorded  []Delivery // delivered since start
	read      bool       // the read came back
	fetched   []Delivery // read: after since
	max       uint64     // what the read covered
	recovered bool
}

const (
	joinPending int32 = iota
	joinDone
	joinCanceled
)

// opQueue hands functions to the delivery goroutine without ever
// making the poster wait.
//
// Concurrency: safe from any goroutine.
type opQueue struct {
	mu   sync.Mutex
	q    []func()
	wake chan struct{}
}

func (o *opQueue) init() { o.wake = make(chan struct{}, 1) }

func (o *opQueue) post(f func()) {
	o.mu.Lock()
	o.q = append(o.q, f)
	o.mu.Unlock()
	select {
	case o.wake <- struct{}{}:
	default:
	}
}

func (o *opQueue) take() []func() {
	o.mu.Lock()
	defer o.mu.Unlock()
	q := o.q
	o.q = nil
	return q
}

// current reports that cs is still the channel's subscription.
func (e *natsEngine) current(cs *chanSub) bool {
	e.ch.mu.RLock()
	defer e.ch.mu.RUnlock()
	return e.ch.byName[cs.name] == cs
}

// onLive takes a republished message of a history channel.
func (e *natsEngine) onLive(cs *chanSub, m *nats.Msg) {
	if e.cfg.testDropLive != nil {
		if seq, _ := strconv.ParseUint(m.Header.Get("Nats-Sequence"), 10, 64); e.cfg.testDropLive(seq) {
			return
		}
	}
	h := cs.h
	h.heard = time.Now()
	if !h.started || h.busy {
		if len(h.held) >= maxHeld {
			h.held, h.overflow = nil, true
		}
		h.held = append(h.held, m)
		return
	}
	e.step(cs, m)
}

// step handles one live message while no read is in flight.
func (e *natsEngine) step(cs *chanSub, m *nats.Msg) {
	h := cs.h
	seq, err := strconv.ParseUint(m.Header.Get("Nats-Sequence"), 10, 64)
	if err != nil || seq == 0 {
		e.log.Warn("cluster: dropped a history message without a sequence", "subject", m.Subject)
		return
	}
	prev, _ := strconv.ParseUint(m.Header.Get("Nats-Last-Sequence"), 10, 64)
	if seq <= h.last {
		if ts, err := time.Parse(time.RFC3339Nano, m.Header.Get("Nats-Time-Stamp")); err == nil && ts.UnixNano() > h.lastTs {
			// Newer than what this node delivered, yet numbered below it:
			// the stream may have been made again.
			e.suspectEpoch(h.hs)
		}
		e.count.duplicates.Add(1)
		return
	}
	if prev > h.last {
		h.held = append([]*nats.Msg{m}, h.held...)
		e.startRead(cs, readRepair, prev)
		return
	}
	sm, err := parseStored(m.Header, m.Data)
	if err != nil {
		return
	}
	e.deliverStored(cs, sm)
	if len(h.joins) > 0 {
		e.progressJoins(cs)
	}
}

// deliverStored delivers one message of a history channel: to the
// Deliver hook, and to the record of every join in progress.
func (e *natsEngine) deliverStored(cs *chanSub, sm storedMsg) {
	h := cs.h
	h.last, h.lastTs = sm.seq, sm.ts
	d := Delivery{Channel: cs.name, Message: Message{Data: sm.data, Kind: sm.kind}, From: sm.from,
		Position: Position{Offset: sm.seq, Epoch: h.epoch}}
	for _, j := range h.joins {
		r := d
		r.Data = append([]byte(nil), d.Data...)
		j.recorded = append(j.recorded, r)
	}
	e.ch.mu.RLock()
	lingering := cs.lingering
	e.ch.mu.RUnlock()
	if lingering {
		return // no local member wants it; the position still moves
	}
	e.count.deliveries.Add(1)
	if e.hooks.Deliver != nil {
		e.hooks.Deliver(d)
	}
}

type readKind int

const (
	readStart  readKind = iota // the channel's last message: where to start
	readRepair                 // the messages after last, up to a target
	readCheck                  // the channel's last message, then up to it
)

// readResult is what a read brings back to the delivery goroutine.
// Concurrency: a value.
type readResult struct {
	epoch  string // the channel's when the read began
	target uint64
	msgs   []storedMsg // after last (last itself first, if still stored)
	full   bool        // readBatchMax messages: there may be more
	intact bool
	last   uint64 // readStart
	lastTs int64
	err    error
}

// startRead reads from the stream for cs, off the delivery goroutine:
// where to start, a repair up to target, or a check.
func (e *natsEngine) startRead(cs *chanSub, kind readKind, target uint64) {
	h := cs.h
	h.busy = true
	hs, subj, from, epoch := h.hs, h.subj, h.last, h.epoch
	e.goRun(func() {
		ctx, cancel := context.WithTimeout(e.life, e.cfg.CallTimeout)
		defer cancel()
		res := readResult{epoch: epoch, target: target, intact: true}
		switch kind {
		case readStart:
			// The server must hold this node's subscription before the
			// start is read, or a message stored in between would be lost
			// to this node until the next message or check.
			if res.err = e.nc.FlushWithContext(ctx); res.err == nil {
				res.last, res.lastTs, res.err = e.lastSeq(ctx, hs, subj)
			}
			if res.err == nil && res.last == 0 {
				// No message of the channel yet: start at the stream's
				// last, so that a later read can tell trimming (intact).
				res.last, res.lastTs, res.err = e.streamLastSeq(ctx, hs)
			}
		case readCheck:
			var last uint64
			if last, _, res.err = e.lastSeq(ctx, hs, subj); res.err != nil || last <= from {
				break
			}
			res.target = last
			fallthrough
		case readRepair:
			res.msgs, res.err = e.readRange(ctx, hs, subj, from, res.target, readBatchMax)
			if res.err == nil {
				res.full = len(res.msgs) == readBatchMax
				res.intact, res.err = e.intact(ctx, hs, from, res.msgs)
			}
		}
		e.ops.post(func() { e.readDone(cs, kind, res) })
	})
}

// readDone takes a read's result, on the delivery goroutine.
func (e *natsEngine) readDone(cs *chanSub, kind readKind, res readResult) {
	if !e.current(cs) {
		return
	}
	h := cs.h
	h.busy = false
	if res.epoch != h.epoch {
		e.startRead(cs, readCheck, 0) // the stream changed meanwhile: read it afresh
		return
	}
	if res.err != nil {
		// The stream did not answer (an election, a partition).
		e.readAgain(cs, kind, res.target, res.err)
		return
	}
	h.fails = 0
	switch kind {
	case readStart:
		h.started, h.last, h.lastTs = true, res.last, res.lastTs
		// Held messages at or before the start came before this node's
		// interest: not duplicates, just not this node's.
		held := h.held[:0]
		for _, m := range h.held {
			if seq, _ := strconv.ParseUint(m.Header.Get("Nats-Sequence"), 10, 64); seq > h.last {
				held = append(held, m)
			}
		}
		h.held = held
		queued := h.queued
		h.queued = nil
		for _, j := range queued {
			e.startJoin(cs, j)
		}
	case readRepair, readCheck:
		if !res.intact {
			e.count.unrepairable.Add(1)
			e.log.Warn("cluster: history trimmed before this node could read what it missed", "channel", cs.name, "after", h.last)
		}
		// Up to the target only: what came after it is on its way live
		// (or shows as another gap).
		n := 0
		for _, sm := range res.msgs {
			if sm.seq > h.last && sm.seq <= res.target {
				e.deliverStored(cs, sm)
				n++
			}
		}
		if n > 0 {
			e.count.repaired.Add(uint64(n))
			e.count.repairedGaps.Add(1)
		}
		if res.target > h.last {
			if res.full {
				e.startRead(cs, readRepair, res.target)
				return
			}
			if res.intact {
				// Nothing after last was trimmed, yet the target, which a
				// live message named, is not there: the stream does not
				// show it yet (a leader just elected, or replicas, still
				// applying what was committed). Read again, for a while.
				if h.unseen.IsZero() {
					h.unseen = time.Now()
				}
				if time.Since(h.unseen) < unseenWait {
					e.readAgain(cs, kind, res.target, fmt.Errorf("stream %s does not show message %d yet", h.hs.name, res.target))
					return
				}
				e.count.unrepairable.Add(1)
				e.log.Warn("cluster: a message this node missed never showed in the stream; passed",
					"channel", cs.name, "seq", res.target, "waited", unseenWait)
			}
			// Trimmed, or never shown: go past it.
			h.last = res.target
		}
		h.unseen = time.Time{}
	}
	e.drain(cs)
}

// readAgain tries a failed or short read again after a backoff, live
// messages still waiting, so that nothing is delivered past a gap.
func (e *natsEngine) readAgain(cs *chanSub, kind readKind, target uint64, err error) {
	h := cs.h
	h.busy = true
	h.fails++
	if h.fails == 1 || h.fails%20 == 0 {
		e.log.Warn("cluster: reading channel history failed, retrying", "channel", cs.name, "err", err)
	}
	time.AfterFunc(min(time.Duration(h.fails)*100*time.Millisecond, time.Second), func() {
		e.ops.post(func() {
			if e.current(cs) {
				h.busy = false
				e.startRead(cs, kind, target)
			}
		})
	})
}

// drain steps through the held live messages until one starts a read.
func (e *natsEngine) drain(cs *chanSub) {
	h := cs.h
	for len(h.held) > 0 && !h.busy {
		m := h.held[0]
		h.held = h.held[1:]
		e.step(cs, m)
	}
	if len(h.held) == 0 {
		h.held = nil
	}
	if !h.busy && h.overflow {
		h.overflow = false
		e.startRead(cs, readCheck, 0)
	}
	if !h.busy {
		e.progressJoins(cs)
	}
}

// checkQuiet (every HistoryCheck/2) checks the channels that were
// quiet for HistoryCheck, and the epochs of their streams every
// HistoryCheck.
func (e *natsEngine) checkQuiet(epochs bool) {
	e.ch.mu.RLock()
	var hist []*chanSub
	for _, cs := range e.ch.byName {
		if cs.h != nil {
			hist = append(hist, cs)
		}
	}
	e.ch.mu.RUnlock()
	streams := map[*histStream]bool{}
	for _, cs := range hist {
		h := cs.h
		streams[h.hs] = true
		if h.started && !h.busy && time.Since(h.heard) >= e.cfg.HistoryCheck {
			h.heard = time.Now()
			e.startRead(cs, readCheck, 0)
		}
	}
	if epochs {
		for hs := range streams {
			e.suspectEpoch(hs)
		}
	}
}

// suspectEpoch reads hs's epoch (at most one read per stream at once)
// and resets its channels on this node that are of another epoch. Not
// only if this read saw it change: a publish that found the stream
// gone may have made it again, and recorded its epoch, first.
func (e *natsEngine) suspectEpoch(hs *histStream) {
	if e.epochReads[hs] {
		return
	}
	e.epochReads[hs] = true
	e.goRun(func() {
		ctx, cancel := context.WithTimeout(e.life, e.cfg.CallTimeout)
		_, err := e.checkEpoch(ctx, hs)
		cancel()
		e.ops.post(func() {
			delete(e.epochReads, hs)
			if err == nil {
				e.resetStream(hs)
			}
		})
	})
}

// resetStream starts hs's channels on this node that are of another
// epoch than the stream's over, in its epoch: they deliver all the new
// stream holds. Joins in progress end unrecovered.
func (e *natsEngine) resetStream(hs *histStream) {
	epoch := hs.getEpoch()
	if e.epochsSet[hs] == epoch {
		return // a channel started since is of this epoch already
	}
	e.epochsSet[hs] = epoch
	e.ch.mu.RLock()
	var hist []*chanSub
	for _, cs := range e.ch.byName {
		if cs.h != nil && cs.h.hs == hs {
			hist = append(hist, cs)
		}
	}
	e.ch.mu.RUnlock()
	logged := false
	for _, cs := range hist {
		h := cs.h
		if !h.started || h.epoch == epoch {
			continue
		}
		if !logged {
			e.log.Warn("cluster: history stream lost and made again: channel positions start over", "stream", hs.name, "epoch", epoch)
			logged = true
		}
		h.epoch, h.last, h.lastTs, h.held = epoch, 0, 0, nil
		joins := h.joins
		h.joins = nil
		for _, j := range joins {
			e.complete(cs, j, nil, false)
		}
		if !h.busy {
			e.startRead(cs, readCheck, 0)
		}
	}
}

// startHistory begins a new history subscription: it reads where to
// start.
func (e *natsEngine) startHistory(cs *chanSub) {
	if !e.current(cs) {
		return
	}
	cs.h.epoch = cs.h.hs.getEpoch()
	cs.h.heard = time.Now()
	e.startRead(cs, readStart, 0)
}

// endHistory fails the joins of a subscription that went.
func (e *natsEngine) endHistory(cs *chanSub) {
	h := cs.h
	for _, j := range append(h.queued, h.joins...) {
		e.finish(j, ErrNoInterest)
	}
	h.queued, h.joins = nil, nil
}
