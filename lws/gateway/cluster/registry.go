package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"
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
