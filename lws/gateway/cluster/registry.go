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

// The registry bucket, lws_<cluster>:
//
//	incarnation   the counter, decimal; taken by compare-and-swap
//	node.<inc>    {"name","state"}: "up" with a TTL of Lease, renewed by
//	              compare-and-swap every Lease/5; "left" (Close) or
//	              "reaped" (the reaper's claim) without TTL
//	name.<token>  {"inc"} with a TTL of Lease, renewed with the lease:
//	              the node name's owner
//
// Every change of a key is a compare-and-swap on its last revision, so
// the registry is linearizable: a renewal and a reaper's claim on the
// same expired lease cannot both succeed; two reapers cannot both claim.
const keyCounter = "incarnation"

// subjLeft (after lws.<cluster>.) carries a closing node's incarnation,
// sent once its lease is marked "left".
const subjLeft = "evt.left"

const (
	stateUp     = "up"
	stateLeft   = "left"
	stateReaped = "reaped"
)

// nodeRecord is the value of node.<inc>; nameRecord of name.<token>.
// Concurrency: values.
type nodeRecord struct {
	Name  string      `json:"name"`
	State string      `json:"state"`
	By    Incarnation `json:"by,omitempty"` // reaped: the reaper
	// Done (reaped): the reaper queued the hooks of every link record and
	// settled them. A reaped record not done, whose reaper dies, is
	// finished by the reaper's own reaper.
	Done bool `json:"done,omitempty"`
}

func (r nodeRecord) bytes() []byte {
	b, _ := json.Marshal(r)
	return b
}

type nameRecord struct {
	Inc Incarnation `json:"inc"`
}

func nodeKey(inc Incarnation) string { return "node." + inc.String() }

func (e *natsEngine) nameKey() string { return "name." + EncodeToken(e.cfg.Node) }

// register takes a new incarnation and holds its lease (Open, Rejoin).
// old is the incarnation being replaced (0 at Open): its name record is
// taken over without asking it.
func (e *natsEngine) register(ctx context.Context, old Incarnation) error {
	inc, err := e.allocIncarnation(ctx)
	if err != nil {
		return err
	}
	// Serve calls before the lease makes the incarnation visible, so that
	// a live lease always has someone answering pings.
	sub, err := e.nc.Subscribe(e.pre+"inc."+inc.String()+".*", e.serveRequest)
	if err == nil {
		err = e.nc.FlushWithContext(ctx) // the server has it before the lease exists
	}
	if err != nil {
		return err
	}
	nameRev, err := e.claimName(ctx, inc, old)
	if err != nil {
		_ = sub.Unsubscribe()
		return err
	}
	sent := time.Now()
	rec := nodeRecord{Name: e.cfg.Node, State: stateUp}
	leaseRev, err := e.reg.cas(ctx, nodeKey(inc), rec.bytes(), nil, 0, e.cfg.Lease)
	if err != nil {
		_ = sub.Unsubscribe()
		return fmt.Errorf("cluster: creating the lease of incarnation %d: %w", inc, err)
	}
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		_ = sub.Unsubscribe()
		return ErrClosed
	}
	delete(e.view, e.inc)
	e.inc, e.reqSub = inc, sub
	e.cur.Store(uint32(inc))
	e.leaseRev, e.nameRev, e.renewedAt = leaseRev, nameRev, sent
	e.fenced = false
	e.down.Store(false)
	e.view[inc] = &peer{name: e.cfg.Node, rev: leaseRev, seen: sent}
	e.maxInc = max(e.maxInc, inc)
	e.events.push(Event{Kind: NodeUp, Node: Node{Inc: inc, Name: e.cfg.Node, Self: true}})
	e.mu.Unlock()
	e.log.Info("cluster: joined", "inc", inc, "replaces", old)
	return nil
}

// join registers, retrying until ctx is done unless the answer is final
// (the name is in use, the incarnations are exhausted, the engine closed).
func (e *natsEngine) join(ctx context.Context, old Incarnation) error {
	for {
		err := e.register(ctx, old)
		var inUse *ErrNameInUse
		if err == nil || errors.As(err, &inUse) || errors.Is(err, ErrClosed) || errors.Is(err, ErrIncarnationsExhausted) {
			return err
		}
		e.log.Debug("cluster: joining failed, retrying", "err", err)
		if perr := pause(ctx, e.cfg.Lease/5); perr != nil {
			return fmt.Errorf("cluster: joining: %w", err)
		}
	}
}

// allocIncarnation takes the next number from the counter.
func (e *natsEngine) allocIncarnation(ctx context.Context) (Incarnation, error) {
	for {
		ent, found, err := e.reg.last(ctx, keyCounter)
		if err != nil {
			if perr := pause(ctx, 10*time.Millisecond); perr != nil {
				return 0, fmt.Errorf("cluster: reading the incarnation counter: %w", err)
			}
			continue
		}
		var cur, rev uint64
		if found {
			rev = ent.rev
			if ent.live {
				if cur, err = strconv.ParseUint(string(ent.val), 10, 16); err != nil {
					return 0, fmt.Errorf("cluster: incarnation counter holds %q", ent.val)
				}
			}
		}
		if cur >= MaxIncarnation {
			return 0, ErrIncarnationsExhausted
		}
		next := Incarnation(cur + 1)
		_, err = e.reg.cas(ctx, keyCounter, []byte(next.String()), nil, rev, 0)
		if err == nil {
			return next, nil
		}
		// A conflict: another node took this one (or the read came from a
		// replica that lags). An error: even if the write happened, the
		// number is not assumed ours; a skipped number costs nothing.
		if perr := pause(ctx, 10*time.Millisecond); perr != nil {
			return 0, fmt.Errorf("cluster: taking an incarnation: %w", err)
		}
	}
}

// claimName makes inc the owner of the node name. A live holder that
// answers a ping keeps it (ErrNameInUse); a holder that does not (a
// previous run of this node, killed) loses it.
func (e *natsEngine) claimName(ctx context.Context, inc, old Incarnation) (uint64, error) {
	key := e.nameKey()
	val, _ := json.Marshal(nameRecord{Inc: inc})
	for {
		ent, found, err := e.reg.last(ctx, key)
		if err != nil {
			if perr := pause(ctx, 10*time.Millisecond); perr != nil {
				return 0, fmt.Errorf("cluster: reading the name record: %w", err)
			}
			continue
		}
		var rev uint64
		if found {
			rev = ent.rev
			var holder nameRecord
			if ent.live && json.Unmarshal(ent.val, &holder) == nil && holder.Inc != inc && holder.Inc != old {
				if e.answers(ctx, holder.Inc) {
					return 0, &ErrNameInUse{Name: e.cfg.Node, Inc: holder.Inc}
				}
				e.log.Info("cluster: taking over the node name from a silent incarnation", "holder", holder.Inc)
			}
		}
		r, err := e.reg.cas(ctx, key, val, nil, rev, e.cfg.Lease)
		if err == nil {
			return r, nil
		}
		if perr := pause(ctx, 10*time.Millisecond); perr != nil {
			return 0, fmt.Errorf("cluster: claiming the node name: %w", err)
		}
	}
}

// answers pings inc: is a node serving it right now?
func (e *natsEngine) answers(ctx context.Context, inc Incarnation) bool {
	ctx, cancel := context.WithTimeout(ctx, e.cfg.CallTimeout)
	defer cancel()
	_, err := e.nc.RequestWithContext(ctx, e.pre+"inc."+inc.String()+"."+opPing, nil)
	return err == nil
}

// every returns a loop that runs f every d until the engine closes.
func (e *natsEngine) every(d time.Duration, f func()) func() {
	return func() {
		t := time.NewTicker(d)
		defer t.Stop()
		for {
			select {
			case <-e.life.Done():
				return
			case <-t.C:
				f()
			}
		}
	}
}

// lostLease: the lease or the name is someone else's now.
// Concurrency: a value.
type lostLease struct{ reason string }

func (l *lostLease) Error() string { return l.reason }

// renew (every Lease/5) renews the lease, and fences the node when it
// could not for ReapAfter.
func (e *natsEngine) renew() {
	e.mu.Lock()
	if e.fenced || e.closed {
		e.mu.Unlock()
		return
	}
	// Checked before every renewal, so that a node that was paused
	// (SIGSTOP, a long GC) fences before it could renew a lease that a
	// reaper may already have claimed.
	if since := time.Since(e.renewedAt); since > e.cfg.ReapAfter {
		e.fenceLocked(fmt.Sprintf("lease not renewed for %v", since.Round(time.Millisecond)))
		e.mu.Unlock()
		return
	}
	inc, leaseRev, nameRev := e.inc, e.leaseRev, e.nameRev
	e.mu.Unlock()

	ctx, cancel := context.WithTimeout(e.life, e.cfg.Lease/5)
	defer cancel()
	sent := time.Now()
	lease := nodeRecord{Name: e.cfg.Node, State: stateUp}
	newLease, err := e.renewKey(ctx, nodeKey(inc), lease.bytes(), leaseRev, func(ent entry) error {
		var r nodeRecord
		if json.Unmarshal(ent.val, &r) == nil && r.State == stateUp {
			return nil // our own write, whose acknowledgement was lost
		}
		if r.State == stateReaped {
			return &lostLease{fmt.Sprintf("lease reaped by incarnation %d", r.By)}
		}
		return &lostLease{"lease marked " + r.State}
	})
	leased := err == nil
	newName := nameRev
	if leased {
		name, _ := json.Marshal(nameRecord{Inc: inc})
		newName, err = e.renewKey(ctx, e.nameKey(), name, nameRev, func(ent entry) error {
			var r nameRecord
			if json.Unmarshal(ent.val, &r) == nil && r.Inc == inc {
				return nil
			}
			return &lostLease{fmt.Sprintf("node name taken by incarnation %d", r.Inc)}
		})
	}

	e.mu.Lock()
	defer e.mu.Unlock()
	if e.inc != inc || e.fenced || e.closed {
		return
	}
	if leased { // the lease is what fencing and reaping count from
		e.leaseRev, e.renewedAt = newLease, sent
	}
	var lost *lostLease
	switch {
	case err == nil:
		e.nameRev = newName
		e.count.renewals.Add(1)
	case errors.As(err, &lost):
		e.fenceLocked(lost.reason)
	default:
		if e.count.leaseFailures.Add(1)%10 == 1 {
			e.log.Warn("cluster: lease renewal failed", "inc", inc, "err", err,
				"since_renewed", time.Since(e.renewedAt).Round(time.Millisecond))
		}
	}
}

// renewKey rewrites key (a lease or a name record, with a TTL of Lease)
// over revision rev. On a conflict it reads the key: a live value is
// passed to mine, which says whether it is this node's own (then the
// write is retried over it) or an error; an expired or deleted key is
// taken back, which is safe within the grace period: no reaper claims
// before ReapAfter has passed since the expiry, and this node fences
// before ReapAfter has passed since its last renewal, which was earlier.
func (e *natsEngine) renewKey(ctx context.Context, key string, val []byte, rev uint64, mine func(entry) error) (uint64, error) {
	r, err := e.reg.cas(ctx, key, val, nil, rev, e.cfg.Lease)
	if !errors.Is(err, errConflict) {
		return r, err
	}
	ent, found, err := e.reg.last(ctx, key)
	if err != nil {
		return 0, err
	}
	lapsed := !found || !ent.live
	if !lapsed {
		if err := mine(ent); err != nil {
			return 0, err
		}
	}
	rev = 0
	if found {
		rev = ent.rev
	}
	r, err = e.reg.cas(ctx, key, val, nil, rev, e.cfg.Lease)
	if err == nil && lapsed {
		e.count.lapses.Add(1)
		e.log.Warn("cluster: lease had expired; taken back within the grace period", "key", key)
	}
	return r, err
}

// fenceLocked stops this incarnation: no more renewals, calls to it go
// unanswered (its subscription goes), and the gateway is told to close
// its links. e.mu is held.
func (e *natsEngine) fenceLocked(reason string) {
	e.fenced = true
	e.down.Store(true)
	if e.reqSub != nil {
		_ = e.reqSub.Unsubscribe()
		e.reqSub = nil
	}
	// This node's view of the others is stale: it reaps no one.
	for inc, t := range e.reaps {
		t.Stop()
		delete(e.reaps, inc)
	}
	e.log.Warn("cluster: fenced", "inc", e.inc, "reason", reason)
	e.events.push(Event{Kind: Fenced, Node: Node{Inc: e.inc, Name: e.cfg.Node, Self: true}, Reason: reason})
}

// Rejoin registers a fenced node again: see Engine.Rejoin.
func (e *natsEngine) Rejoin(ctx context.Context) (Incarnation, error) {
	e.rejoinMu.Lock()
	defer e.rejoinMu.Unlock()
	e.mu.Lock()
	closed, fenced, old := e.closed, e.fenced, e.inc
	e.mu.Unlock()
	switch {
	case closed:
		return 0, ErrClosed
	case !fenced:
		return old, nil
	}
	if err := e.join(ctx, old); err != nil {
		return 0, err
	}
	// The view was frozen while fenced: read the registry afresh.
	e.mu.Lock()
	if e.watchReset != nil {
		e.watchReset()
	}
	inc := e.inc
	e.mu.Unlock()
	return inc, nil
}

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
