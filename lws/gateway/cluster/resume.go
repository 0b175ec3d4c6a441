package cluster

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Members joining a history channel at a position (Resume), and the
// history page for backends (History).

// Resume joins a member: see Engine.Resume.
func (e *natsEngine) Resume(ctx context.Context, channel string, since Position, fn func(Catchup)) error {
	if _, ok := e.hist.lookup(channel); !ok {
		return ErrNoHistory
	}
	if e.life.Err() != nil {
		return ErrClosed
	}
	j := &join{ctx: ctx, since: since, fn: fn, done: make(chan struct{})}
	e.ops.post(func() {
		e.ch.mu.RLock()
		cs := e.ch.byName[channel]
		e.ch.mu.RUnlock()
		if cs == nil || cs.h == nil {
			e.finish(j, ErrNoInterest)
			return
		}
		e.startJoin(cs, j)
	})
	select {
	case <-j.done:
		return j.err
	case <-ctx.Done():
		if j.state.CompareAndSwap(joinPending, joinCanceled) {
			return ctx.Err()
		}
		<-j.done
		return j.err
	case <-e.life.Done():
		if j.state.CompareAndSwap(joinPending, joinCanceled) {
			return ErrClosed
		}
		<-j.done
		return j.err
	}
}

// startJoin begins j on cs, on the delivery goroutine.
func (e *natsEngine) startJoin(cs *chanSub, j *join) {
	h := cs.h
	switch {
	case j.state.Load() != joinPending:
		return
	case !h.started:
		h.queued = append(h.queued, j)
		return
	case j.since.IsZero():
		e.complete(cs, j, nil, true)
		return
	case j.since.Epoch != h.epoch:
		e.complete(cs, j, nil, false)
		return
	}
	j.start = h.last
	h.joins = append(h.joins, j)
	hs, subj, epoch, since, start := h.hs, h.subj, h.epoch, j.since.Offset, j.start
	limit := e.cfg.ResumeLimit
	e.goRun(func() {
		var msgs []storedMsg
		intact := true
		err := e.retry(j.ctx, func(ctx context.Context) (err error) {
			// From since itself, to tell whether it is still stored, and
			// at least up to start, which this node has delivered; one
			// more than the limit, to tell a member that missed more.
			if msgs, err = e.readRange(ctx, hs, subj, since, start, limit+2); err == nil {
				intact, err = e.intact(ctx, hs, since, msgs)
			}
			return err
		})
		e.ops.post(func() {
			if err != nil {
				e.drop(cs, j)
				e.finish(j, err)
				return
			}
			if !e.current(cs) || h.epoch != epoch {
				return // ended by endHistory or resetStream
			}
			// max is the last message the read saw (since itself, if it is
			// still stored), or where recording began: a message, so the
			// node reaches it. A since past every message (a position from
			// a client that is wrong) does not hold the join up.
			j.read, j.recovered, j.max = true, intact, start
			for _, sm := range msgs {
				j.max = max(j.max, sm.seq)
				if sm.seq > since {
					j.fetched = append(j.fetched, Delivery{Channel: cs.name,
						Message: Message{Data: sm.data, Kind: sm.kind}, From: sm.from,
						Position: Position{Offset: sm.seq, Epoch: epoch}})
				}
			}
			switch {
			case len(j.fetched) > limit:
				// Missed more than the limit (and the read stopped short
				// of them all): none of them, only what follows max.
				j.recovered, j.fetched = false, nil
			case since > start && (len(msgs) == 0 || msgs[0].seq != since):
				// Past this node's position, and no message of the channel
				// (the leader was asked): a position this history never
				// gave, or one trimmed since.
				j.recovered = false
			}
			e.progressJoins(cs)
		})
	})
}

// progressJoins completes the joins whose read came back and which the
// channel's deliveries have caught up with; for one the node is behind
// (the member saw messages this node has not delivered yet), it reads
// up to what the member's read saw.
func (e *natsEngine) progressJoins(cs *chanSub) {
	h := cs.h
	var behind uint64
	keep := h.joins[:0]
	for _, j := range h.joins {
		switch {
		case j.state.Load() != joinPending:
		case !j.read:
			keep = append(keep, j)
		case h.last >= j.max:
			missed := j.fetched
			for _, d := range j.recorded {
				if d.Position.Offset > max(j.max, j.since.Offset) {
					missed = append(missed, d)
				}
			}
			e.complete(cs, j, missed, j.recovered)
		default:
			behind = max(behind, j.max)
			keep = append(keep, j)
		}
	}
	clear(h.joins[len(keep):])
	h.joins = keep
	switch {
	case behind == 0:
		h.behind = time.Time{}
	case h.behind.IsZero():
		h.behind = time.Now()
		time.AfterFunc(behindWait, func() {
			e.ops.post(func() {
				if e.current(cs) {
					e.progressJoins(cs)
				}
			})
		})
	case time.Since(h.behind) >= behindWait && !h.busy:
		h.behind = time.Time{}
		e.startRead(cs, readRepair, behind)
	}
}

// complete calls j's join with its catch-up, on the delivery goroutine.
func (e *natsEngine) complete(cs *chanSub, j *join, missed []Delivery, recovered bool) {
	if !j.state.CompareAndSwap(joinPending, joinDone) {
		return
	}
	e.count.resumes.Add(1)
	if !recovered {
		e.count.resumesLost.Add(1)
	}
	j.fn(Catchup{Missed: missed, Position: Position{Offset: cs.h.last, Epoch: cs.h.epoch}, Recovered: recovered})
	close(j.done)
}

// finish ends j with an error, unless it ended already.
func (e *natsEngine) finish(j *join, err error) {
	if j.state.CompareAndSwap(joinPending, joinDone) {
		j.err = err
		close(j.done)
	}
}

// drop removes j from cs's joins.
func (e *natsEngine) drop(cs *chanSub, j *join) {
	h := cs.h
	for i, x := range h.joins {
		if x == j {
			h.joins = append(h.joins[:i], h.joins[i+1:]...)
			return
		}
	}
}

// History reads stored messages: see Engine.History. A read that fails
// (the stream has no leader, during its election, or is out of reach)
// is tried again, each try bounded by Config.CallTimeout, until ctx's
// deadline (Config.CallTimeout when ctx has none).
func (e *natsEngine) History(ctx context.Context, channel string, since Position, limit int) (HistoryPage, error) {
	hs, ok := e.hist.lookup(channel)
	if !ok {
		return HistoryPage{}, ErrNoHistory
	}
	if limit <= 0 || limit > maxHistoryRead {
		limit = maxHistoryRead
	}
	began := time.Now()
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, e.cfg.CallTimeout)
		defer cancel()
	}
	var page HistoryPage
	var last error // the last try's own error, not its deadline's
	tries := 0
	err := e.retry(ctx, func(ctx context.Context) (err error) {
		tries++
		page, err = e.readHistory(ctx, hs, channel, since, limit)
		if err != nil && (last == nil || ctx.Err() == nil) {
			last = err
		}
		return err
	})
	if err == nil {
		return page, nil
	}
	if errors.Is(err, ErrClosed) {
		return HistoryPage{}, err
	}
	err = fmt.Errorf("%w: %s (%d tries in %v): %w", ErrUnavailable, channel, tries, time.Since(began).Round(time.Millisecond), last)
	e.log.Warn("cluster: history read failed by its deadline", "channel", channel, "err", err)
	return HistoryPage{}, err
}

// readHistory is one try of History.
func (e *natsEngine) readHistory(ctx context.Context, hs *histStream, channel string, since Position, limit int) (HistoryPage, error) {
	epoch := hs.getEpoch()
	page := HistoryPage{Position: Position{Offset: since.Offset, Epoch: epoch}, Recovered: true}
	var from uint64
	switch {
	case since.IsZero():
	case since.Epoch != epoch:
		page.Recovered, page.Position.Offset = false, 0
	default:
		from = since.Offset
	}
	subj := hs.subject(channel)
	// What the page must reach: the leader's last message of the
	// channel. A replica's Direct Get alone may lag behind what was
	// acknowledged (a test read an empty history of a channel with 12
	// acknowledged messages, from a replica just back from a fault).
	last, err := e.leaderLast(ctx, hs.name, subj)
	if err != nil {
		return HistoryPage{}, err
	}
	msgs, err := e.readRange(ctx, hs, subj, from, last, limit+2)
	if err != nil {
		return HistoryPage{}, err
	}
	if from > 0 {
		if page.Recovered, err = e.intact(ctx, hs, from, msgs); err != nil {
			return HistoryPage{}, err
		}
	} else if len(msgs) > 0 && hs.keep > 0 && msgs[0].pending+1 >= uint64(hs.keep) {
		// The stream keeps one message more than the history's size (to
		// tell a member that missed exactly Size): not part of it.
		msgs = msgs[1:]
	}
	for _, sm := range msgs {
		if sm.seq <= from {
			continue
		}
		if len(page.Messages) == limit {
			page.More = true
			break
		}
		page.Messages = append(page.Messages, Delivery{Channel: channel, Message: Message{Data: sm.data, Kind: sm.kind},
			From: sm.from, Position: Position{Offset: sm.seq, Epoch: epoch}})
		page.Position.Offset = sm.seq
	}
	return page, nil
}
