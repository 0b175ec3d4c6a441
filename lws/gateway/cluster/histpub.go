package cluster

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// History publishes, asynchronous: each is published on core NATS with a
// reply subject of the engine's own (publishes.pre + a number), and the
// stream's leader answers there once it stored the message, as
// JetStream's async publish does; done is called from the answer. This
// is the JetStream client's PublishMsgAsync without what it costs per
// message (a timer, a future, its answer decoded by reflection): the
// deadlines are kept in send order and swept, and the usual answer,
// {"stream":"S","seq":N}, is read without encoding/json.
//
// A publish not answered within Config.CallTimeout of its sending,
// waiting when the connection to NATS is lost, or still waiting when the
// engine closes, fails with ErrNotAcknowledged (Publish sends it again,
// with the same ID, until its caller's deadline); one answered "no
// responders" (no stream leader yet), "stream not found" or "JetStream
// system temporarily unavailable" is sent again, 100ms later, until its
// deadline: CallTimeout after its first sending, or Publish's caller's
// (onPubErr).

// histPub is a history publish waiting for its acknowledgement.
//
// Concurrency: its fields are set before it is in publishes.m, then read
// only, but for expires, which publishes.mu guards.
type histPub struct {
	hs       *histStream
	msg      *nats.Msg
	done     func(Position, error)
	deadline time.Time // of its retries
	expires  time.Time // of the sending in flight
}

// publishes are the history publishes in flight, by the number of their
// reply subject.
//
// Concurrency: safe from any goroutine; mu guards what follows it.
type publishes struct {
	pre    string // "_INBOX.<nuid>."
	sub    *nats.Subscription
	mu     sync.Mutex
	next   uint64
	m      map[uint64]*histPub
	due    []pubDue      // each sending's deadline, in sending order
	stall  chan struct{} // closed when m falls below maxPendingPublishes
	closed bool
}

// pubDue is when the sending of publish id times out.
//
// Concurrency: a value, kept in publishes.due under publishes.mu.
type pubDue struct {
	id uint64
	at time.Time
}

// errTooManyPending: maxPendingPublishes were waiting for their
// acknowledgement for longer than the stall wait.
var errTooManyPending = errors.New("too many publishes waiting for their acknowledgement")

// pubStallWait is how long a publish waits for room among the pending.
const pubStallWait = 200 * time.Millisecond

// openPublishes subscribes to the replies of the history publishes and
// starts the sweep of their deadlines.
func (e *natsEngine) openPublishes() error {
	ps := &e.pubs
	ps.pre = nats.NewInbox() + "."
	ps.m = map[uint64]*histPub{}
	var err error
	if ps.sub, err = e.nc.Subscribe(ps.pre+"*", e.onPubReply); err != nil {
		return err
	}
	// The JetStream client's own default is 64k pending messages per
	// subscription: at maxPendingPublishes in flight, answers must not be
	// dropped as a slow consumer's.
	if err = ps.sub.SetPendingLimits(-1, -1); err != nil {
		return err
	}
	status := e.nc.StatusChanged(nats.RECONNECTING)
	e.goRun(func() { e.sweepPublishes(status) })
	return nil
}

// sendPub sends p, first or again, with reply subject id.
func (e *natsEngine) sendPub(id uint64, p *histPub) {
	ps := &e.pubs
	ps.mu.Lock()
	if ps.m[id] != p { // settled meanwhile (timed out, or the engine closed)
		ps.mu.Unlock()
		return
	}
	p.expires = time.Now().Add(e.cfg.CallTimeout)
	ps.due = append(ps.due, pubDue{id, p.expires})
	ps.mu.Unlock()
	if err := e.nc.PublishMsg(p.msg); err != nil {
		e.onPubErr(id, err)
	}
}

// addPub registers p and returns its id, waiting up to pubStallWait for
// room among the pending publishes.
func (e *natsEngine) addPub(p *histPub) (uint64, error) {
	ps := &e.pubs
	var timer *time.Timer
	for {
		ps.mu.Lock()
		if ps.closed {
			ps.mu.Unlock()
			return 0, ErrClosed
		}
		if len(ps.m) < maxPendingPublishes {
			ps.next++
			id := ps.next
			ps.m[id] = p
			p.msg.Reply = ps.pre + strconv.FormatUint(id, 36)
			ps.mu.Unlock()
			if timer != nil {
				timer.Stop()
			}
			return id, nil
		}
		if ps.stall == nil {
			ps.stall = make(chan struct{})
		}
		stall := ps.stall
		ps.mu.Unlock()
		if timer == nil {
			timer = time.NewTimer(pubStallWait)
		}
		select {
		case <-stall:
		case <-timer.C:
			return 0, errTooManyPending
		}
	}
}

// takePub removes publish id and returns it, nil if it was settled.
func (e *natsEngine) takePub(id uint64) *histPub {
	ps := &e.pubs
	ps.mu.Lock()
	defer ps.mu.Unlock()
	p := ps.m[id]
	if p == nil {
		return nil
	}
	delete(ps.m, id)
	if ps.stall != nil && len(ps.m) < maxPendingPublishes {
		close(ps.stall)
		ps.stall = nil
	}
	return p
}

// settlePub fails publish id with err, if it is still pending.
func (e *natsEngine) settlePub(id uint64, err error) {
	if p := e.takePub(id); p != nil {
		p.done(Position{}, err)
	}
}

// onPubReply takes a stream's answer to a history publish.
func (e *natsEngine) onPubReply(m *nats.Msg) {
	id, err := strconv.ParseUint(m.Subject[len(e.pubs.pre):], 36, 64)
	if err != nil {
		return
	}
	if len(m.Data) == 0 && m.Header.Get("Status") == "503" {
		e.onPubErr(id, nats.ErrNoResponders)
		return
	}
	stream, seq, err := parsePubAck(m.Data)
	if err != nil {
		e.onPubErr(id, err)
		return
	}
	if drop := e.cfg.testDropAck; drop != nil && drop(seq) {
		return
	}
	p := e.takePub(id)
	if p == nil {
		return
	}
	hs := p.hs
	if h := e.hist.byName[string(stream)]; h != nil {
		hs = h
	}
	e.count.histPublishes.Add(1)
	p.done(Position{Offset: seq, Epoch: hs.getEpoch()}, nil)
}

// JetStream's answers that nothing was stored, for now: no stream
// leader (JetStream system temporarily unavailable), a server that is no
// longer the leader, a duplicate still being stored.
const (
	jsErrUnavailable  = 10008
	jsErrNotLeader    = 10009
	jsErrDupInProcess = 10158
)

// onPubErr settles a failed publish, or sends it again: no responders
// (no stream leader, or no stream: it is made again), no leader, and a
// duplicate still being stored are retried until the deadline, since
// none stored anything (a retry of a message with an ID is answered
// with the first one's position).
func (e *natsEngine) onPubErr(id uint64, err error) {
	ps := &e.pubs
	ps.mu.Lock()
	p := ps.m[id]
	ps.mu.Unlock()
	if p == nil {
		return
	}
	var api *jetstream.APIError
	retry := errors.Is(err, nats.ErrNoResponders) ||
		errors.As(err, &api) && (api.ErrorCode == jetstream.JSErrCodeStreamNotFound || api.ErrorCode == jsErrDupInProcess ||
			api.ErrorCode == jsErrUnavailable || api.ErrorCode == jsErrNotLeader)
	if retry && time.Now().Before(p.deadline) && e.life.Err() == nil {
		ps.mu.Lock()
		p.expires = time.Time{} // not swept until it is sent again
		ps.mu.Unlock()
		noStream := !errors.As(err, &api) || api.ErrorCode == jetstream.JSErrCodeStreamNotFound
		time.AfterFunc(100*time.Millisecond, func() {
			if noStream {
				ctx, cancel := context.WithTimeout(e.life, time.Second)
				if changed, _ := e.checkEpoch(ctx, p.hs); changed {
					// Made again: this node's channels of it start over.
					e.ops.post(func() { e.resetStream(p.hs) })
				}
				cancel()
			}
			e.sendPub(id, p)
		})
		return
	}
	if retry || errors.Is(err, errTimeout) || errors.Is(err, nats.ErrDisconnected) ||
		errors.Is(err, nats.ErrConnectionClosed) {
		err = fmt.Errorf("%w (stream %s): %w", ErrNotAcknowledged, p.hs.name, err)
	} else {
		err = fmt.Errorf("cluster: publish to stream %s: %w", p.hs.name, err)
	}
	e.settlePub(id, err)
}

// errTimeout: a sending of a history publish had no answer within
// Config.CallTimeout.
var errTimeout = errors.New("no acknowledgement in time")

// sweepPublishes times out the sendings that were not answered in time,
// and fails those pending when the connection to NATS is lost (their
// answers with it), as the JetStream client does, until the engine
// closes; then it fails those still pending.
func (e *natsEngine) sweepPublishes(status <-chan nats.Status) {
	ps := &e.pubs
	tick := time.NewTicker(min(e.cfg.CallTimeout/4, 100*time.Millisecond))
	defer tick.Stop()
	failAll := func(closed bool, why error) {
		ps.mu.Lock()
		ps.closed = closed
		pending := ps.m
		ps.m = map[uint64]*histPub{}
		ps.due = nil
		if ps.stall != nil {
			close(ps.stall)
			ps.stall = nil
		}
		ps.mu.Unlock()
		for _, p := range pending {
			p.done(Position{}, fmt.Errorf("%w (stream %s): %w", ErrNotAcknowledged, p.hs.name, why))
		}
	}
	for {
		select {
		case <-e.life.Done():
			failAll(true, ErrClosed)
			return
		case _, ok := <-status:
			if !ok {
				status = nil // the connection closed: the engine is closing
				continue
			}
			failAll(false, nats.ErrDisconnected)
		case now := <-tick.C:
			var late []uint64
			ps.mu.Lock()
			n := 0
			for ; n < len(ps.due) && !now.Before(ps.due[n].at); n++ {
				d := ps.due[n]
				// A publish sent again has a later due entry of its own.
				if p := ps.m[d.id]; p != nil && p.expires.Equal(d.at) {
					late = append(late, d.id)
				}
			}
			ps.due = ps.due[n:] // append moves what is left once the array is full
			ps.mu.Unlock()
			for _, id := range late {
				e.onPubErr(id, errTimeout)
			}
		}
	}
}

// parsePubAck reads a stream's answer to a publish: the usual one,
// {"stream":"S","seq":N}, directly; any other (with a domain, a
// duplicate, an error) with encoding/json. stream aliases b.
func parsePubAck(b []byte) (stream []byte, seq uint64, err error) {
	const pre, mid = `{"stream":"`, `","seq":`
	if rest, ok := bytes.CutPrefix(b, []byte(pre)); ok && len(rest) > 0 && rest[len(rest)-1] == '}' {
		if i := bytes.Index(rest, []byte(mid)); i > 0 && bytes.IndexByte(rest[:i], '\\') < 0 {
			if n, err := strconv.ParseUint(string(rest[i+len(mid):len(rest)-1]), 10, 64); err == nil && n > 0 {
				return rest[:i], n, nil
			}
		}
	}
	var r struct {
		Error  *jetstream.APIError `json:"error"`
		Stream string              `json:"stream"`
		Seq    uint64              `json:"seq"`
	}
	switch err := json.Unmarshal(b, &r); {
	case err != nil:
		return nil, 0, fmt.Errorf("%w: %v", jetstream.ErrInvalidJSAck, err)
	case r.Error != nil:
		return nil, 0, r.Error
	case r.Stream == "" || r.Seq == 0:
		return nil, 0, jetstream.ErrInvalidJSAck
	}
	return []byte(r.Stream), r.Seq, nil
}
