package cluster

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Link records live in the bucket lws_<cluster>_links, one key
// <inc>.<local> per link: the data given to LinkOpened. A record is
// settled exactly once, by whoever replaces it first, by compare-and-swap
// on its revision, with a tombstone: no value, a header naming the
// settler ("close.<the link's inc>" for the owner's LinkClosed,
// "reap.<the reaper's inc>" for a reaper), and a TTL of settledTTL. The name lets a settler whose
// acknowledgement was lost see that it won; the TTL clears the bucket.
const hdrSettledBy = "Lws-Settled-By"

// records maps this node's open records to their revisions.
//
// Concurrency: safe from any goroutine.
type records struct {
	mu   sync.Mutex
	revs map[uint64]uint64
}

func recordKey(inc Incarnation, local uint64) string {
	return inc.String() + "." + strconv.FormatUint(local, 10)
}

func (e *natsEngine) LinkOpened(ctx context.Context, id uint64, data []byte) error {
	inc, local, ok := SplitLinkID(id)
	if !ok {
		return fmt.Errorf("cluster: link id %d is above 2^53", id)
	}
	if e.down.Load() {
		return e.downErr()
	}
	key := recordKey(inc, local)
	rev, err := e.recs.cas(ctx, key, data, nil, 0, 0)
	if errors.Is(err, errConflict) {
		// A retry whose first attempt was written, its acknowledgement
		// lost: the same record, unsettled, is this call's.
		ent, found, lerr := e.recs.last(ctx, key)
		if lerr != nil || !found || !ent.live || ent.hdr.Get(hdrSettledBy) != "" || !bytes.Equal(ent.val, data) {
			return fmt.Errorf("cluster: link %d is recorded already", id)
		}
		rev, err = ent.rev, nil
	}
	if err != nil {
		return fmt.Errorf("cluster: recording link %d: %w", id, err)
	}
	e.rec.mu.Lock()
	if e.rec.revs == nil {
		e.rec.revs = map[uint64]uint64{}
	}
	e.rec.revs[id] = rev
	e.rec.mu.Unlock()
	return nil
}

func (e *natsEngine) LinkClosed(ctx context.Context, id uint64, d Disconnect) (bool, error) {
	inc, local, ok := SplitLinkID(id)
	if !ok {
		return false, fmt.Errorf("cluster: link id %d is above 2^53", id)
	}
	if e.life.Err() != nil {
		return false, ErrClosed
	}
	key := recordKey(inc, local)
	// Named after the link's incarnation, not this node's current one:
	// a retry after Rejoin must recognise its first attempt's tombstone.
	by := "close." + inc.String()
	e.rec.mu.Lock()
	rev, known := e.rec.revs[id]
	e.rec.mu.Unlock()
	// No reaper touches the records of an incarnation that holds its
	// lease; one that was fenced may have been reaped, so its records
	// are read first: a hook is queued only for a record still open.
	e.mu.Lock()
	mine := inc == e.inc && !e.fenced
	e.mu.Unlock()
	if !known || !mine {
		// Also when LinkOpened's acknowledgement was lost after the
		// write: an unsettled record is this node's, and one it settled
		// itself is settled.
		var ent entry
		var found bool
		err := e.retry(ctx, func(ctx context.Context) (err error) {
			ent, found, err = e.recs.last(ctx, key)
			return err
		})
		if err != nil {
			return false, fmt.Errorf("cluster: reading the record of link %d: %w", id, err)
		}
		switch settler := ent.hdr.Get(hdrSettledBy); {
		case (!found || !ent.live) && mine:
			// Never recorded (LinkOpened failed): no reaper can have
			// queued a hook for it while this incarnation holds its lease.
			d.Link = id
			if err := e.EnqueueHook(ctx, d); err != nil {
				return false, err
			}
			return true, nil
		case !found || !ent.live:
			// Settled so long ago that its tombstone expired, or never
			// recorded by a node that has since been fenced: either way
			// not this call's to queue.
			return false, nil
		case settler != "":
			return settler == by, nil
		}
		rev = ent.rev
	}
	// The hook goes into the queue before the record is settled: should
	// this node die in between, the record is still open and the reaper
	// queues the hook again under the same id.
	d.Link = id
	if err := e.EnqueueHook(ctx, d); err != nil {
		return false, err
	}
	var won bool
	err := e.retry(ctx, func(ctx context.Context) (err error) {
		won, err = e.settle(ctx, key, rev, by)
		return err
	})
	if err != nil {
		return false, fmt.Errorf("cluster: settling the record of link %d: %w", id, err)
	}
	e.rec.mu.Lock()
	delete(e.rec.revs, id)
	e.rec.mu.Unlock()
	return won, nil
}

// settle replaces record key at revision rev with a tombstone by "by";
// won is false when someone else settled it first.
func (e *natsEngine) settle(ctx context.Context, key string, rev uint64, by string) (won bool, err error) {
	hdr := nats.Header{}
	hdr.Set(hdrSettledBy, by)
	_, err = e.recs.cas(ctx, key, nil, hdr, rev, settledTTL)
	if err == nil {
		return true, nil
	}
	if !errors.Is(err, errConflict) {
		return false, err
	}
	ent, found, err := e.recs.last(ctx, key)
	if err != nil {
		return false, err
	}
	return found && ent.hdr.Get(hdrSettledBy) == by, nil
}

// reapLinks queues the disconnect hook of every open record of dead
// incarnation inc, and settles it for this node, the reaper; it returns
// those it settled. It retries until it has done them all or the engine
// closes: the claim is won, no one else will (unless this node dies,
// see finishReap).
func (e *natsEngine) reapLinks(inc Incarnation) []LinkRecord {
	by := "reap." + e.Incarnation().String()
	var out []LinkRecord
	done := map[string]bool{}
	for e.life.Err() == nil {
		err := e.reapPass(inc, by, done, &out)
		if err == nil {
			return out
		}
		e.log.Warn("cluster: reaping link records failed, retrying", "dead", inc, "err", err)
		_ = pause(e.life, e.cfg.Lease/5)
	}
	return out
}

func (e *natsEngine) reapPass(inc Incarnation, by string, done map[string]bool, out *[]LinkRecord) error {
	// The stream's count per subject lists every key, or fails: a KV key
	// lister that runs out of time just ends early, and a reap that
	// missed a record would never send its hook.
	ctx, cancel := context.WithTimeout(e.life, e.cfg.CallTimeout)
	info, err := e.recs.stream.Info(ctx, jetstream.WithSubjectFilter(e.recs.subj+inc.String()+".*"))
	cancel()
	if err != nil {
		return err
	}
	keys := make([]string, 0, len(info.State.Subjects))
	for subj := range info.State.Subjects {
		keys = append(keys, strings.TrimPrefix(subj, e.recs.subj))
	}
	sort.Strings(keys)
	for _, k := range keys {
		if done[k] {
			continue
		}
		if err := e.reapRecord(inc, k, by, out); err != nil {
			return err
		}
		done[k] = true
	}
	return nil
}

// reapRecord queues the hook of record k of dead incarnation inc, if it
// is still open, then settles it for this node.
func (e *natsEngine) reapRecord(inc Incarnation, k, by string, out *[]LinkRecord) error {
	ctx, cancel := context.WithTimeout(e.life, e.cfg.CallTimeout)
	defer cancel()
	ent, found, err := e.recs.last(ctx, k)
	if err != nil || !found || !ent.live || ent.hdr.Get(hdrSettledBy) != "" {
		return err
	}
	// Queued first: a reaper that dies here leaves the record open for
	// its own reaper, which queues the hook again (the queue keeps one).
	local, _ := strconv.ParseUint(k[strings.IndexByte(k, '.')+1:], 10, 64)
	id, _ := LinkID(inc, local)
	if err := e.EnqueueHook(ctx, Disconnect{Link: id, Code: lostCode, Reason: lostReason,
		Data: ent.val, Lost: true}); err != nil {
		return err
	}
	if e.cfg.testAfterQueue != nil {
		e.cfg.testAfterQueue(e.life, id)
	}
	won, err := e.settle(ctx, k, ent.rev, by)
	if won {
		*out = append(*out, LinkRecord{ID: id, Data: ent.val})
	}
	return err
}

func (e *natsEngine) downErr() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return ErrClosed
	}
	return ErrFenced
}
