package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// The node view: watching the registry's node keys, the peers they name,
// and auditing them against the lease keys.

// watchLoop follows the registry's node.* keys, restarting its watcher
// when it fails or Rejoin asks; synced is closed after the first
// snapshot.
func (e *natsEngine) watchLoop(synced chan struct{}) {
	for e.life.Err() == nil {
		ctx, cancel := context.WithCancel(e.life)
		e.mu.Lock()
		e.watchReset = cancel
		e.mu.Unlock()
		err := e.watchOnce(ctx, synced)
		cancel()
		if err != nil && e.life.Err() == nil {
			e.log.Debug("cluster: registry watcher restarts", "err", err)
			_ = pause(e.life, e.cfg.Lease/5)
		}
	}
}

// A healthy watcher sees this node's own renewals every Lease/5; one
// silent for a Lease has lost its consumer (placed on a server that
// died, say) and is replaced, with a fresh snapshot.
func (e *natsEngine) watchOnce(ctx context.Context, synced chan struct{}) error {
	w, err := e.reg.kv.Watch(ctx, "node.*")
	if err != nil {
		return err
	}
	defer func() { _ = w.Stop() }()
	check := time.NewTicker(e.cfg.Lease / 2)
	defer check.Stop()
	heard := time.Now()
	snapshot := map[Incarnation]bool{} // live in the initial values; nil after them
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-check.C:
			if time.Since(heard) > e.cfg.Lease {
				return fmt.Errorf("registry watcher silent for %v", time.Since(heard).Round(time.Millisecond))
			}
		case ent, ok := <-w.Updates():
			heard = time.Now()
			if !ok {
				return errors.New("watcher closed")
			}
			if ent == nil {
				e.reconcile(snapshot)
				snapshot = nil
				select {
				case <-synced:
				default:
					close(synced)
				}
				continue
			}
			e.apply(ent, snapshot)
		}
	}
}

// peer is a live node of the view: its name, and the last renewal of
// its lease this node saw.
//
// Concurrency: guarded by natsEngine.mu, like the view.
type peer struct {
	name string
	rev  uint64
	seen time.Time
}

// apply takes one change the watcher saw into the view.
func (e *natsEngine) apply(ent jetstream.KeyValueEntry, snapshot map[Incarnation]bool) {
	n, err := strconv.ParseUint(strings.TrimPrefix(ent.Key(), "node."), 10, 16)
	if err != nil || n == 0 {
		return
	}
	var rec nodeRecord
	put := ent.Operation() == jetstream.KeyValuePut && json.Unmarshal(ent.Value(), &rec) == nil
	e.mu.Lock()
	defer e.mu.Unlock()
	if snapshot != nil && put && rec.State == stateUp {
		snapshot[Incarnation(n)] = true
	}
	e.observeLocked(Incarnation(n), ent.Revision(), put, rec)
}

// observeLocked takes the state of node inc's key into the view: a
// revision, and the record when it holds one (put). e.mu is held.
func (e *natsEngine) observeLocked(inc Incarnation, rev uint64, put bool, rec nodeRecord) {
	e.maxInc = max(e.maxInc, inc)
	if put && rec.State == stateReaped && !rec.Done {
		e.unfinished[inc] = rec.By
	} else if put {
		delete(e.unfinished, inc)
	}
	if inc == e.inc || e.fenced {
		return // this node's own lease is the renewal loop's
	}
	p := e.view[inc]
	if put && rec.State == stateUp {
		if t := e.reaps[inc]; t != nil {
			t.Stop()
			delete(e.reaps, inc)
		}
		switch {
		case p == nil:
			e.view[inc] = &peer{name: rec.Name, rev: rev, seen: time.Now()}
			e.events.push(Event{Kind: NodeUp, Node: Node{Inc: inc, Name: rec.Name}})
		case rev > p.rev:
			p.rev, p.seen = rev, time.Now()
		}
		return
	}
	reason, name := "expired", rec.Name
	if put {
		reason = rec.State
	}
	if p != nil {
		name = p.name
		delete(e.view, inc)
		e.events.push(Event{Kind: NodeDown, Node: Node{Inc: inc, Name: name}, Reason: reason})
	}
	if put { // left or reaped: settled
		if t := e.reaps[inc]; t != nil {
			t.Stop()
			delete(e.reaps, inc)
		}
		return
	}
	e.scheduleReapLocked(inc, name)
}

// onLeft takes a closing node's goodbye into the view, as the watcher
// would its "left" record.
func (e *natsEngine) onLeft(m *nats.Msg) {
	n, err := strconv.ParseUint(string(m.Data), 10, 16)
	if err != nil {
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if p := e.view[Incarnation(n)]; p != nil {
		e.observeLocked(Incarnation(n), 0, true, nodeRecord{Name: p.name, State: stateLeft})
	}
}

// reconcile ends a snapshot: a node in the view that the snapshot did
// not show live went down while no watcher looked.
func (e *natsEngine) reconcile(snapshot map[Incarnation]bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for inc := range e.view {
		if !snapshot[inc] {
			e.observeLocked(inc, 0, false, nodeRecord{})
		}
	}
}

// audit (every Lease/2) reads the key of each node whose renewals this
// node has not seen for a Lease. The reads are direct (any replica
// answers, no consumer involved), so a node's death is noticed even
// while the watcher is being replaced: its consumer may have lived on
// the server that died.
func (e *natsEngine) audit() {
	e.mu.Lock()
	var quiet []Incarnation
	if !e.fenced && !e.closed {
		for inc, p := range e.view {
			if inc != e.inc && time.Since(p.seen) > e.cfg.Lease {
				quiet = append(quiet, inc)
			}
		}
	}
	e.mu.Unlock()
	for _, inc := range quiet {
		ctx, cancel := context.WithTimeout(e.life, e.cfg.Lease/2)
		ent, found, err := e.reg.last(ctx, nodeKey(inc))
		cancel()
		if err != nil {
			continue
		}
		var rec nodeRecord
		put := found && ent.live && json.Unmarshal(ent.val, &rec) == nil
		e.mu.Lock()
		if p := e.view[inc]; p != nil && !(put && rec.State == stateUp && ent.rev <= p.rev) {
			// A newer renewal, or an end. The same renewal again proves
			// nothing: the server expires keys on a one-second tick.
			e.observeLocked(inc, ent.rev, put, rec)
		}
		e.mu.Unlock()
	}
}
