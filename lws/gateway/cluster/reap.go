package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"time"
)

// Reaping: a node gone past the grace period has its links' records
// claimed by exactly one survivor, which reports them closed.

// scheduleReapLocked tries to reap inc after the grace period, unless it
// comes back first. e.mu is held.
func (e *natsEngine) scheduleReapLocked(inc Incarnation, name string) {
	if e.reaps[inc] != nil || e.closed {
		return
	}
	e.reaps[inc] = time.AfterFunc(e.cfg.ReapAfter, func() {
		e.mu.Lock()
		if e.reaps[inc] == nil || e.closed || e.fenced {
			e.mu.Unlock()
			return
		}
		delete(e.reaps, inc)
		e.reaping++
		e.wg.Add(1)
		e.mu.Unlock()
		defer e.wg.Done()
		e.reap(inc, name)
		e.mu.Lock()
		e.reaping--
		e.mu.Unlock()
	})
}

// pendingReaps counts the reaps this node is waiting for or running.
func (e *natsEngine) pendingReaps() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return len(e.reaps) + e.reaping
}

// reap claims dead incarnation inc (its lease has been expired for the
// grace period) by writing "reaped" over the expiry, by compare-and-swap:
// of every survivor trying, and of inc itself taking its lease back,
// exactly one succeeds. The winner settles inc's link records and tells
// the gateway (Event Reap).
func (e *natsEngine) reap(inc Incarnation, name string) {
	defer e.count.reapAttempts.Add(1)
	key := nodeKey(inc)
	for {
		e.mu.Lock()
		self, stop := e.inc, e.closed || e.fenced
		e.mu.Unlock()
		if stop {
			return
		}
		won, retry, err := e.claim(key, self, name)
		if won {
			break
		}
		if !retry {
			return
		}
		if err != nil {
			e.log.Debug("cluster: reap claim failed, retrying", "inc", inc, "err", err)
			if pause(e.life, e.cfg.Lease/5) != nil {
				return
			}
		}
	}
	e.count.reaped.Add(1)
	if e.cfg.testAfterClaim != nil {
		e.cfg.testAfterClaim(e.life, inc)
	}
	links := e.finishReap(inc, name, map[Incarnation]bool{})
	if e.life.Err() != nil {
		return // the claim stays unfinished: this node's reaper finishes it
	}
	e.count.reapedLinks.Add(uint64(len(links)))
	e.log.Info("cluster: reaped a dead node", "dead", inc, "name", name, "links", len(links))
	e.events.push(Event{Kind: Reap, Node: Node{Inc: inc, Name: name}, Reason: "lease expired", Links: links})
}

// finishReap, once this node holds the claim on dead incarnation inc,
// queues the hooks of inc's open link records and settles them, then
// does the same for every incarnation inc had claimed but not finished
// (inc was a reaper that died at it), then marks inc's claim done. It
// returns the records it settled, inc's own first.
func (e *natsEngine) finishReap(inc Incarnation, name string, seen map[Incarnation]bool) []LinkRecord {
	seen[inc] = true
	links := e.reapLinks(inc)
	e.mu.Lock()
	var orphans []Incarnation
	for dead, by := range e.unfinished {
		if by == inc && !seen[dead] {
			orphans = append(orphans, dead)
		}
	}
	e.mu.Unlock()
	for _, dead := range orphans {
		if e.life.Err() != nil {
			return links
		}
		e.log.Info("cluster: finishing the reap of a dead reaper", "dead", dead, "reaper", inc)
		links = append(links, e.finishReap(dead, "", seen)...)
	}
	if e.life.Err() != nil {
		return links
	}
	e.markReaped(inc, name)
	return links
}

// markReaped writes inc's claim as done, by this node.
func (e *natsEngine) markReaped(inc Incarnation, name string) {
	key := nodeKey(inc)
	for e.life.Err() == nil {
		ctx, cancel := context.WithTimeout(e.life, e.cfg.CallTimeout)
		ent, found, err := e.reg.last(ctx, key)
		if err == nil {
			var r nodeRecord
			if found && ent.live && json.Unmarshal(ent.val, &r) == nil {
				if r.Done {
					cancel()
					return
				}
				if name == "" {
					name = r.Name
				}
			}
			var rev uint64
			if found {
				rev = ent.rev
			}
			rec := nodeRecord{Name: name, State: stateReaped, By: e.Incarnation(), Done: true}
			_, err = e.reg.cas(ctx, key, rec.bytes(), nil, rev, 0)
		}
		cancel()
		if err == nil {
			e.mu.Lock()
			delete(e.unfinished, inc)
			e.mu.Unlock()
			return
		}
		_ = pause(e.life, e.cfg.Lease/5)
	}
}

// claim is one attempt of reap: won, or whether to try again (after a
// pause when err is set).
func (e *natsEngine) claim(key string, self Incarnation, name string) (won, retry bool, err error) {
	ctx, cancel := context.WithTimeout(e.life, e.cfg.CallTimeout)
	defer cancel()
	ent, found, err := e.reg.last(ctx, key)
	if err != nil {
		return false, true, err
	}
	var rev uint64
	if found {
		rev = ent.rev
		var r nodeRecord
		if ent.live && json.Unmarshal(ent.val, &r) == nil {
			// Back (up), left, or reaped already: by this node when its
			// own claim's acknowledgement was lost.
			return r.State == stateReaped && r.By == self, false, nil
		}
	}
	rec := nodeRecord{Name: name, State: stateReaped, By: self}
	_, err = e.reg.cas(ctx, key, rec.bytes(), nil, rev, 0)
	switch {
	case err == nil:
		return true, false, nil
	case errors.Is(err, errConflict):
		return false, true, nil // changed meanwhile: read it again
	}
	return false, true, err
}
