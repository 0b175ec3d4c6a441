package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
)

// Reads of channel history. A batch Direct Get ($JS.API.DIRECT.GET.
// <stream>, {"seq":N,"next_by_subj":S,"batch":B}) answers with the
// channel's messages from sequence N on, each followed by its own, then
// an end-of-batch status (204); any replica of the stream answers, so
// reads spread and survive the leader, but a replica may lag a few
// messages behind. A read that must reach a sequence known to exist
// (the node delivered it, or a republished message named it) and does
// not is tried again, then asked of the leader ($JS.API.STREAM.MSG.GET,
// one message per request), whose answer is final: what it lacks was
// trimmed.

// storedMsg is one message read from a history stream.
// Concurrency: a value.
type storedMsg struct {
	seq     uint64
	ts      int64 // unix nanoseconds
	from    Incarnation
	kind    uint8
	data    []byte
	pending uint64 // batch reads: the channel's messages after this one
}

// inbox multiplexes the replies of batch reads onto one wildcard
// subscription, as nats.go does for requests: a new subscription per
// read would cost a round of interest through the routes.
//
// Concurrency: safe from any goroutine.
type inbox struct {
	pre  string // "_INBOX.<nuid>."
	sub  *nats.Subscription
	next atomic.Uint64
	mu   sync.Mutex
	wait map[string]chan *nats.Msg
}

func (in *inbox) open(nc *nats.Conn) error {
	in.pre = nats.NewInbox() + "."
	in.wait = map[string]chan *nats.Msg{}
	sub, err := nc.Subscribe(in.pre+"*", func(m *nats.Msg) {
		in.mu.Lock()
		ch := in.wait[m.Subject]
		in.mu.Unlock()
		if ch != nil {
			select {
			case ch <- m:
			default: // more than the read asked for: it gives up on it
			}
		}
	})
	in.sub = sub
	return err
}

// expect registers a reply subject for up to n messages.
func (in *inbox) expect(n int) (string, chan *nats.Msg, func()) {
	subj := in.pre + strconv.FormatUint(in.next.Add(1), 36)
	ch := make(chan *nats.Msg, n)
	in.mu.Lock()
	in.wait[subj] = ch
	in.mu.Unlock()
	return subj, ch, func() {
		in.mu.Lock()
		delete(in.wait, subj)
		in.mu.Unlock()
	}
}

// directRequest is $JS.API.DIRECT.GET's request.
type directRequest struct {
	Seq     uint64 `json:"seq,omitempty"`
	NextFor string `json:"next_by_subj,omitempty"`
	Batch   int    `json:"batch,omitempty"`
}

// readBatch reads up to n messages of subject subj in stream from
// sequence from on, in one batch Direct Get.
func (e *natsEngine) readBatch(ctx context.Context, stream, subj string, from uint64, n int) ([]storedMsg, error) {
	from = max(from, 1)
	req, _ := json.Marshal(directRequest{Seq: from, NextFor: subj, Batch: n})
	reply, ch, done := e.inbox.expect(n + 2)
	defer done()
	if err := e.nc.PublishRequest("$JS.API.DIRECT.GET."+stream, reply, req); err != nil {
		return nil, err
	}
	var out []storedMsg
	for {
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("cluster: reading %s: %w", stream, ctx.Err())
		case m := <-ch:
			if len(m.Data) == 0 && m.Header.Get("Status") != "" {
				switch m.Header.Get("Status") {
				case "204": // end of batch
					return out, nil
				case "404": // nothing at or after from
					return out, nil
				case "503":
					return nil, fmt.Errorf("cluster: reading %s: %w", stream, nats.ErrNoResponders)
				}
				return nil, fmt.Errorf("cluster: reading %s: status %s %s", stream, m.Header.Get("Status"), m.Header.Get("Description"))
			}
			sm, err := parseStored(m.Header, m.Data)
			if err != nil {
				return nil, fmt.Errorf("cluster: reading %s: %w", stream, err)
			}
			out = append(out, sm)
		}
	}
}

// parseStored reads a message as Direct Get or the republish gives it.
func parseStored(h nats.Header, data []byte) (storedMsg, error) {
	sm := storedMsg{data: data}
	var err error
	if sm.seq, err = strconv.ParseUint(h.Get("Nats-Sequence"), 10, 64); err != nil || sm.seq == 0 {
		return sm, errors.New("no Nats-Sequence")
	}
	if ts, err := time.Parse(time.RFC3339Nano, h.Get("Nats-Time-Stamp")); err == nil {
		sm.ts = ts.UnixNano()
	}
	if v := h.Get("Nats-Num-Pending"); v != "" {
		sm.pending, _ = strconv.ParseUint(v, 10, 64)
	}
	if v, err := strconv.ParseUint(h.Get(hdrFrom), 10, 16); err == nil {
		sm.from = Incarnation(v)
	}
	if v, err := strconv.ParseUint(h.Get(hdrKind), 10, 8); err == nil {
		sm.kind = uint8(v)
	}
	return sm, nil
}

// msgGetResponse is $JS.API.STREAM.MSG.GET's answer.
type msgGetResponse struct {
	Message *struct {
		Subject string    `json:"subject"`
		Seq     uint64    `json:"seq"`
		Hdrs    []byte    `json:"hdrs"`
		Data    []byte    `json:"data"`
		Time    time.Time `json:"time"`
	} `json:"message"`
	Error *struct {
		Code    int    `json:"code"`
		ErrCode int    `json:"err_code"`
		Desc    string `json:"description"`
	} `json:"error"`
}

// readLeader reads the channel's first message at or after from, from
// the stream's leader; found is false when there is none.
func (e *natsEngine) readLeader(ctx context.Context, stream, subj string, from uint64) (sm storedMsg, found bool, err error) {
	req, _ := json.Marshal(directRequest{Seq: max(from, 1), NextFor: subj})
	return e.getLeader(ctx, stream, req)
}

// leaderLast is the sequence of the channel's last message (0: none),
// from the stream's leader: every message acknowledged so far is at or
// before it, where a replica's Direct Get may lag behind.
func (e *natsEngine) leaderLast(ctx context.Context, stream, subj string) (uint64, error) {
	req, _ := json.Marshal(struct {
		LastFor string `json:"last_by_subj"`
	}{subj})
	sm, _, err := e.getLeader(ctx, stream, req)
	return sm.seq, err
}

// getLeader asks the stream's leader for one message (a MSG.GET
// request); found is false when there is none.
func (e *natsEngine) getLeader(ctx context.Context, stream string, req []byte) (sm storedMsg, found bool, err error) {
	m, err := e.nc.RequestWithContext(ctx, "$JS.API.STREAM.MSG.GET."+stream, req)
	if err != nil {
		return sm, false, fmt.Errorf("cluster: reading %s from its leader: %w", stream, err)
	}
	var r msgGetResponse
	if err := json.Unmarshal(m.Data, &r); err != nil {
		return sm, false, fmt.Errorf("cluster: reading %s from its leader: %w", stream, err)
	}
	if r.Error != nil {
		if r.Error.ErrCode == 10037 { // no message found
			return sm, false, nil
		}
		return sm, false, fmt.Errorf("cluster: reading %s from its leader: %s", stream, r.Error.Desc)
	}
	if r.Message == nil {
		return sm, false, fmt.Errorf("cluster: reading %s from its leader: empty answer", stream)
	}
	h := nats.Header{}
	if len(r.Message.Hdrs) > 0 {
		if h, err = nats.DecodeHeadersMsg(r.Message.Hdrs); err != nil {
			return sm, false, err
		}
	}
	sm = storedMsg{seq: r.Message.Seq, ts: r.Message.Time.UnixNano(), data: r.Message.Data}
	if v, err := strconv.ParseUint(h.Get(hdrFrom), 10, 16); err == nil {
		sm.from = Incarnation(v)
	}
	if v, err := strconv.ParseUint(h.Get(hdrKind), 10, 8); err == nil {
		sm.kind = uint8(v)
	}
	return sm, true, nil
}

// readRange reads the channel's messages from sequence from on: at most
// n, and all those up to need (0: no such bound) when the stream still
// has them. It tries replicas first (three times, since one may lag
// behind a message the node was given), then the leader.
func (e *natsEngine) readRange(ctx context.Context, hs *histStream, subj string, from, need uint64, n int) ([]storedMsg, error) {
	if hide := e.cfg.testHideStored; hide != nil {
		msgs, err := e.readRangeAll(ctx, hs, subj, from, need, n)
		return slices.DeleteFunc(msgs, func(sm storedMsg) bool { return hide(sm.seq) }), err
	}
	return e.readRangeAll(ctx, hs, subj, from, need, n)
}

func (e *natsEngine) readRangeAll(ctx context.Context, hs *histStream, subj string, from, need uint64, n int) ([]storedMsg, error) {
	covers := func(msgs []storedMsg) bool {
		return need == 0 || len(msgs) >= n || len(msgs) > 0 && msgs[len(msgs)-1].seq >= need
	}
	var msgs []storedMsg
	var err error
	for try := 0; try < 3; try++ {
		if try > 0 {
			if err := pause(ctx, time.Duration(try)*10*time.Millisecond); err != nil {
				return nil, err
			}
		}
		msgs, err = e.readBatch(ctx, hs.name, subj, from, n)
		if lacks := e.cfg.testReplicaLacks; lacks != nil {
			msgs = slices.DeleteFunc(msgs, func(sm storedMsg) bool { return lacks(sm.seq) })
		}
		if err == nil && covers(msgs) {
			return msgs, nil
		}
	}
	// From the leader, one by one, from where the replica stopped.
	next := from
	if len(msgs) > 0 {
		next = msgs[len(msgs)-1].seq + 1
	}
	for len(msgs) < n {
		sm, found, err := e.readLeader(ctx, hs.name, subj, next)
		if err != nil {
			return nil, err
		}
		if !found {
			break
		}
		msgs = append(msgs, sm)
		if sm.seq >= need {
			break
		}
		next = sm.seq + 1
	}
	return msgs, nil
}

// firstSeq is the stream's first sequence (any channel): messages
// before it are gone. 0 when the stream is empty.
func (e *natsEngine) firstSeq(ctx context.Context, hs *histStream) (uint64, error) {
	req, _ := json.Marshal(directRequest{Seq: 1, Batch: 1})
	reply, ch, done := e.inbox.expect(3)
	defer done()
	if err := e.nc.PublishRequest("$JS.API.DIRECT.GET."+hs.name, reply, req); err != nil {
		return 0, err
	}
	for {
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case m := <-ch:
			if st := m.Header.Get("Status"); len(m.Data) == 0 && st != "" {
				if st == "404" || st == "204" {
					return 0, nil
				}
				return 0, fmt.Errorf("cluster: reading %s: status %s", hs.name, st)
			}
			return strconv.ParseUint(m.Header.Get("Nats-Sequence"), 10, 64)
		}
	}
}

// lastSeq is the sequence of the channel's last message in the stream
// (0: none), read from any replica.
func (e *natsEngine) lastSeq(ctx context.Context, hs *histStream, subj string) (seq uint64, ts int64, err error) {
	return e.readLast(ctx, hs, "$JS.API.DIRECT.GET."+hs.name+"."+subj, nil)
}

// streamLastSeq is the sequence of the stream's last message, of any
// channel (0: none), read from any replica.
func (e *natsEngine) streamLastSeq(ctx context.Context, hs *histStream) (seq uint64, ts int64, err error) {
	req, _ := json.Marshal(struct {
		LastFor string `json:"last_by_subj"`
	}{">"})
	return e.readLast(ctx, hs, "$JS.API.DIRECT.GET."+hs.name, req)
}

// readLast asks a Direct Get for one message: its sequence and time
// (0: none).
func (e *natsEngine) readLast(ctx context.Context, hs *histStream, subj string, req []byte) (seq uint64, ts int64, err error) {
	m, err := e.nc.RequestWithContext(ctx, subj, req)
	if err != nil {
		return 0, 0, fmt.Errorf("cluster: reading %s: %w", hs.name, err)
	}
	if st := m.Header.Get("Status"); len(m.Data) == 0 && st != "" {
		if st == "404" {
			return 0, 0, nil
		}
		return 0, 0, fmt.Errorf("cluster: reading %s: status %s %s", hs.name, st, m.Header.Get("Description"))
	}
	sm, err := parseStored(m.Header, m.Data)
	return sm.seq, sm.ts, err
}

// intact reports whether no message of the channel after sequence
// after has been removed from the stream, given msgs, its messages read
// from after on (after itself first, if it is still there). The stream
// removes the oldest first, by age (the whole stream's) and by count
// (the channel's): if after is still there, nothing after it went; if
// not, a removal by age would have moved the stream's first sequence
// past after+1, and one by count would have left the channel holding
// keep messages after after.
func (e *natsEngine) intact(ctx context.Context, hs *histStream, after uint64, msgs []storedMsg) (bool, error) {
	if after > 0 && len(msgs) > 0 && msgs[0].seq == after {
		return true, nil
	}
	first, err := e.firstSeq(ctx, hs)
	if err != nil {
		return false, err
	}
	if first > after+1 {
		return false, nil
	}
	var count uint64
	if len(msgs) > 0 {
		count = msgs[0].pending + 1
		if msgs[0].pending == 0 {
			count = uint64(len(msgs)) // read from the leader: no pending count
		}
	}
	return hs.keep < 0 || count < uint64(hs.keep), nil
}
