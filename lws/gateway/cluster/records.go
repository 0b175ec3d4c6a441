package cluster

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"

	"github.com/nats-io/nats.go"
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

func (e *natsEngine) LinkClosed(ctx context.Context, id uint64) (bool, error) {
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
	if !known {
		// LinkOpened's acknowledgement may have been lost after the
		// write: an unsettled record is this node's, and one it settled
		// itself is settled.
		ent, found, err := e.recs.last(ctx, key)
		if err != nil {
			return false, fmt.Errorf("cluster: reading the record of link %d: %w", id, err)
		}
		switch settler := ent.hdr.Get(hdrSettledBy); {
		case !found || !ent.live:
			return false, nil
		case settler != "":
			return settler == by, nil
		}
		rev = ent.rev
	}
	won, err := e.settle(ctx, key, rev, by)
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

// reapLinks settles every open record of dead incarnation inc for this
// node, the reaper, and returns them. It retries until it has read them
// all or the engine closes: the claim is won, no one else will.
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
	ctx, cancel := context.WithTimeout(e.life, e.cfg.CallTimeout)
	defer cancel()
	lister, err := e.recs.kv.ListKeysFiltered(ctx, inc.String()+".*")
	if err != nil {
		return err
	}
	defer func() { _ = lister.Stop() }()
	var keys []string
	for k := range lister.Keys() {
		keys = append(keys, k)
	}
	for _, k := range keys {
		if done[k] {
			continue
		}
		ent, found, err := e.recs.last(ctx, k)
		if err != nil {
			return err
		}
		if found && ent.live && ent.hdr.Get(hdrSettledBy) == "" {
			won, err := e.settle(ctx, k, ent.rev, by)
			if err != nil {
				return err
			}
			if won {
				local, _ := strconv.ParseUint(k[strings.IndexByte(k, '.')+1:], 10, 64)
				id, _ := LinkID(inc, local)
				*out = append(*out, LinkRecord{ID: id, Data: ent.val})
			}
		}
		done[k] = true
	}
	return nil
}

func (e *natsEngine) downErr() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return ErrClosed
	}
	return ErrFenced
}
