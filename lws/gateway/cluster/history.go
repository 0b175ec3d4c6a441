package cluster

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/fnv"
	"maps"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// ChannelConfig gives the channels it matches a history: each publish is
// stored in a JetStream stream before it is acknowledged, every node
// delivers the channel in the stream's order without gap (it refills
// what it missed from the stream), and a member that comes back with its
// last Position, to any node, gets what it missed (Engine.Resume).
//
// Concurrency: a value.
type ChannelConfig struct {
	// Match is a channel name, or a prefix followed by '*' ("room:*"
	// matches "room:1"); "*" matches every channel. At most 64 bytes.
	// Required.
	Match string `yaml:"match"`
	// History says how much of each channel is kept. Required: at least
	// one of its limits.
	History HistoryConfig `yaml:"history"`
	// Envelope asks the gateway to wrap each delivery of these channels
	// with its channel, offset and epoch, so that a client knows its
	// position. The engine only carries it. false: the data alone.
	Envelope bool `yaml:"envelope"`
}

// HistoryConfig: how much of a channel is kept, by count and by age,
// whichever is reached first; the oldest messages go first. A member
// that missed at most Size messages, the last of them less than TTL
// ago, recovers them all.
//
// Concurrency: a value.
type HistoryConfig struct {
	// Size is how many messages of each channel are kept (the stream
	// keeps one more, to tell that a member missed no more than Size).
	// 0: no limit by count (TTL alone).
	Size int `yaml:"size"`
	// TTL is how long a message is kept. Whole milliseconds. 0: no limit
	// by age (Size alone).
	TTL time.Duration `yaml:"ttl"`
}

const (
	maxHistoryShards = 64
	maxMatchLen      = 64
	maxHistorySize   = 1 << 20
	// maxHistoryRead bounds one History call.
	maxHistoryRead = 10000
	// defaultDuplicates is the history streams' duplicate window (for
	// Message.ID), JetStream's own default; a TTL below it shortens it.
	defaultDuplicates = 2 * time.Minute
	// metaEpoch is the stream metadata key of its epoch.
	metaEpoch = "lws_epoch"
	// Headers of a stored message: its publisher's incarnation and Kind.
	hdrFrom = "Lws-From"
	hdrKind = "Lws-Kind"
)

func (c ChannelConfig) matches(channel string) bool {
	if p, ok := strings.CutSuffix(c.Match, "*"); ok {
		return strings.HasPrefix(channel, p)
	}
	return channel == c.Match
}

func validateChannels(chs []ChannelConfig) []error {
	var errs []error
	bad := func(i int, field, format string, args ...any) {
		errs = append(errs, &FieldError{Field: fmt.Sprintf("channels[%d].%s", i, field), Msg: fmt.Sprintf(format, args...)})
	}
	seen := map[string]int{}
	for i, c := range chs {
		switch {
		case c.Match == "":
			bad(i, "match", "required: a channel name, or a prefix followed by *")
		case len(c.Match) > maxMatchLen:
			bad(i, "match", "%d bytes: want at most %d", len(c.Match), maxMatchLen)
		case strings.Contains(strings.TrimSuffix(c.Match, "*"), "*"):
			bad(i, "match", "%q: * may only end the pattern", c.Match)
		default:
			if j, dup := seen[c.Match]; dup {
				bad(i, "match", "%q: entry %d has it already", c.Match, j)
			}
			seen[c.Match] = i
		}
		h := c.History
		if h.Size < 0 || h.Size > maxHistorySize {
			bad(i, "history.size", "%d: want 0 to %d", h.Size, maxHistorySize)
		}
		if h.TTL < 0 || h.TTL%time.Millisecond != 0 {
			bad(i, "history.ttl", "%v: want a positive duration in whole milliseconds", h.TTL)
		}
		if h.Size == 0 && h.TTL == 0 {
			bad(i, "history", "want size, ttl or both: an entry keeps a history")
		}
	}
	return errs
}

// histStream is one stream of channel history: shard k of entry i of
// Config.Channels, LWS_<cluster>_H_<EncodeToken(match)>_<k>, subjects
// lws.<cluster>.hist.<EncodeToken(match)>.<k>.<channel token>. Its
// RePublish puts each stored message on lws.<cluster>.live.<channel
// token>, with its sequence (Nats-Sequence) and the sequence of the
// channel's previous message (Nats-Last-Sequence).
//
// Concurrency: immutable but for epoch, which is atomic.
type histStream struct {
	name    string
	subjPre string // "lws.<cluster>.hist.<match token>.<k>."
	entry   ChannelConfig
	shard   int
	keep    int64 // MaxMsgsPerSubject: Size+1, or -1
	epoch   atomic.Pointer[string]
}

func (hs *histStream) getEpoch() string {
	if p := hs.epoch.Load(); p != nil {
		return *p
	}
	return ""
}

// history maps channels to their streams.
//
// Concurrency: immutable after Open (the streams' epochs are atomic).
type history struct {
	entries [][]*histStream // [entry][shard]
	byName  map[string]*histStream
}

func newHistory(cfg Config) *history {
	h := &history{byName: map[string]*histStream{}}
	for _, c := range cfg.Channels {
		tok := EncodeToken(c.Match)
		var shards []*histStream
		for k := range cfg.HistoryShards {
			hs := &histStream{
				name:    fmt.Sprintf("LWS_%s_H_%s_%d", cfg.Name, tok, k),
				subjPre: fmt.Sprintf("lws.%s.hist.%s.%d.", cfg.Name, tok, k),
				entry:   c,
				shard:   k,
				keep:    -1,
			}
			if c.History.Size > 0 {
				hs.keep = int64(c.History.Size) + 1
			}
			shards = append(shards, hs)
			h.byName[hs.name] = hs
		}
		h.entries = append(h.entries, shards)
	}
	return h
}

// lookup returns the stream of channel's history, if it has one.
func (h *history) lookup(channel string) (*histStream, bool) {
	for _, shards := range h.entries {
		if shards[0].entry.matches(channel) {
			f := fnv.New32a()
			_, _ = f.Write([]byte(channel))
			return shards[f.Sum32()%uint32(len(shards))], true
		}
	}
	return nil, false
}

func (h *history) all() []*histStream {
	var out []*histStream
	for _, shards := range h.entries {
		out = append(out, shards...)
	}
	return out
}

// streamConfig is what hs must be; epoch goes into its metadata.
func (e *natsEngine) streamConfig(hs *histStream, epoch string) jetstream.StreamConfig {
	dup := defaultDuplicates
	if ttl := hs.entry.History.TTL; ttl > 0 && ttl < dup {
		dup = ttl
	}
	return jetstream.StreamConfig{
		Name: hs.name,
		Description: fmt.Sprintf("lwsgate history of channels %q, shard %d of %d",
			hs.entry.Match, hs.shard+1, e.cfg.HistoryShards),
		Subjects:          []string{hs.subjPre + "*"},
		Retention:         jetstream.LimitsPolicy,
		Discard:           jetstream.DiscardOld,
		MaxMsgs:           -1,
		MaxBytes:          -1,
		MaxAge:            hs.entry.History.TTL,
		MaxMsgsPerSubject: hs.keep,
		Storage:           jetstream.FileStorage,
		Replicas:          e.replicas,
		Duplicates:        dup,
		AllowDirect:       true,
		RePublish: &jetstream.RePublish{
			Source:      hs.subjPre + "*",
			Destination: e.pre + "live.{{wildcard(1)}}",
		},
		Metadata: map[string]string{metaEpoch: epoch},
	}
}

func newEpoch() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// ensureStream creates hs's stream if it does not exist (with a new
// epoch), brings its limits to the configuration's if they differ
// (keeping its epoch), and records its epoch.
func (e *natsEngine) ensureStream(ctx context.Context, hs *histStream) error {
	for {
		st, err := e.js.Stream(ctx, hs.name)
		if errors.Is(err, jetstream.ErrStreamNotFound) {
			epoch := newEpoch()
			_, err = e.js.CreateStream(ctx, e.streamConfig(hs, epoch))
			if errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
				continue // another node made it meanwhile: read it
			}
			if err != nil {
				return fmt.Errorf("cluster: creating stream %s: %w", hs.name, err)
			}
			e.log.Info("cluster: history stream created", "stream", hs.name, "epoch", epoch)
			hs.epoch.Store(&epoch)
			return nil
		}
		if err != nil {
			return fmt.Errorf("cluster: reading stream %s: %w", hs.name, err)
		}
		have := st.CachedInfo().Config
		epoch := have.Metadata[metaEpoch]
		if epoch == "" {
			epoch = newEpoch() // not made by lwsgate: adopt it under an epoch of its own
		}
		want := e.streamConfig(hs, epoch)
		if differs(have, want) {
			want.Metadata = maps.Clone(have.Metadata)
			if want.Metadata == nil {
				want.Metadata = map[string]string{}
			}
			want.Metadata[metaEpoch] = epoch
			if _, err := e.js.UpdateStream(ctx, want); err != nil {
				// Keep serving with the stream as it is: its history is
				// still the channel's.
				e.log.Warn("cluster: history stream differs from the configuration and could not be updated",
					"stream", hs.name, "err", err)
			} else {
				e.log.Info("cluster: history stream updated to the configuration", "stream", hs.name)
			}
		}
		hs.epoch.Store(&epoch)
		return nil
	}
}

// differs reports a difference between a stream's configuration and
// the one wanted, in what the configuration sets.
func differs(have, want jetstream.StreamConfig) bool {
	rp := func(r *jetstream.RePublish) string {
		if r == nil {
			return ""
		}
		return r.Source + " " + r.Destination
	}
	return have.MaxAge != want.MaxAge || have.MaxMsgsPerSubject != want.MaxMsgsPerSubject ||
		have.Duplicates != want.Duplicates || !have.AllowDirect || rp(have.RePublish) != rp(want.RePublish) ||
		have.Replicas != want.Replicas || have.Metadata[metaEpoch] != want.Metadata[metaEpoch] ||
		len(have.Subjects) != 1 || have.Subjects[0] != want.Subjects[0]
}

// ensureStreams makes every history stream, waiting for JetStream as
// retryOpen does.
func (e *natsEngine) ensureStreams(ctx context.Context) error {
	for _, hs := range e.hist.all() {
		for {
			actx, cancel := context.WithTimeout(ctx, 2*time.Second)
			err := e.ensureStream(actx, hs)
			cancel()
			if err == nil {
				break
			}
			if pause(ctx, 100*time.Millisecond) != nil {
				return err
			}
		}
	}
	return nil
}

// checkEpoch reads hs's stream (recreating it if it is gone) and
// reports whether its epoch changed.
func (e *natsEngine) checkEpoch(ctx context.Context, hs *histStream) (changed bool, err error) {
	before := hs.getEpoch()
	if err := e.ensureStream(ctx, hs); err != nil {
		return false, err
	}
	return hs.getEpoch() != before, nil
}

func (e *natsEngine) Channel(channel string) (ChannelConfig, bool) {
	hs, ok := e.hist.lookup(channel)
	if !ok {
		return ChannelConfig{}, false
	}
	return hs.entry, true
}

// histSubject is channel's subject in hs.
func (hs *histStream) subject(channel string) string { return hs.subjPre + EncodeToken(channel) }

// Publish stores m and waits for its acknowledgement until ctx's
// deadline (Config.CallTimeout when ctx has none), trying again what was
// not acknowledged: a stream without a leader (during its election) or
// out of reach is the usual case of a few seconds. A message without an
// ID is given one of this node's, so that sending it again never stores
// it twice.
func (e *natsEngine) Publish(ctx context.Context, channel string, m Message) (Position, error) {
	hs, ok := e.hist.lookup(channel)
	if !ok {
		return e.publishPlain(channel, m)
	}
	began := time.Now()
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = began.Add(e.cfg.CallTimeout)
	}
	id := msgID(channel, m.ID)
	if m.ID == "" {
		id = EncodeToken(channel) + ".." + e.Incarnation().String() + "." + strconv.FormatUint(e.pubIDs.Add(1), 36)
	}
	type result struct {
		pos Position
		err error
	}
	var last error
	for try := 1; ; try++ {
		ch := make(chan result, 1)
		e.publishHist(hs, channel, m, id, deadline, func(p Position, err error) { ch <- result{p, err} })
		var err error
		select {
		case r := <-ch:
			if r.err == nil {
				return r.pos, nil
			}
			err = r.err
		case <-ctx.Done():
			err = fmt.Errorf("%w (stream %s): %w", ErrNotAcknowledged, hs.name, ctx.Err())
			if last != nil {
				err = fmt.Errorf("%w; the try before: %v", err, last)
			}
		}
		last = err
		if errors.Is(err, ErrNotAcknowledged) && ctx.Err() == nil && e.life.Err() == nil &&
			time.Until(deadline) > pubRetryWait && pause(ctx, pubRetryWait) == nil {
			continue
		}
		if errors.Is(err, ErrNotAcknowledged) {
			err = fmt.Errorf("%w (%d tries in %v)", err, try, time.Since(began).Round(time.Millisecond))
			e.log.Warn("cluster: history publish not acknowledged by its deadline", "channel", channel, "err", err)
		}
		return Position{}, err
	}
}

// pubRetryWait is the pause before a history publish that was not
// acknowledged is sent again.
const pubRetryWait = 100 * time.Millisecond

// msgID is the stream's de-duplication ID of a message with ID id on
// channel (scoped to the channel: a stream holds several), "" for none.
// Publish's own IDs, channel ".." node "." number, are never one of
// these: EncodeToken writes no '.'.
func msgID(channel, id string) string {
	if id == "" {
		return ""
	}
	return EncodeToken(channel) + "." + EncodeToken(id)
}

func (e *natsEngine) PublishAsync(channel string, m Message, done func(Position, error)) {
	hs, ok := e.hist.lookup(channel)
	if !ok {
		done(e.publishPlain(channel, m))
		return
	}
	e.publishHist(hs, channel, m, msgID(channel, m.ID), time.Now().Add(e.cfg.CallTimeout), done)
}

// publishHist sends m to hs with de-duplication ID id (none: ""); done
// gets its acknowledgement, or its error once a try was not answered in
// time or what left it unstored lasted until deadline (onPubErr).
func (e *natsEngine) publishHist(hs *histStream, channel string, m Message, id string, deadline time.Time, done func(Position, error)) {
	if e.down.Load() {
		done(Position{}, e.downErr())
		return
	}
	msg := nats.NewMsg(hs.subject(channel))
	msg.Data = append([]byte(nil), m.Data...)
	// The names are in canonical form already: set, not Set, which
	// would canonicalise them again on every publish.
	msg.Header[hdrFrom] = []string{e.Incarnation().String()}
	if m.Kind != 0 {
		msg.Header[hdrKind] = []string{strconv.Itoa(int(m.Kind))}
	}
	if id != "" {
		msg.Header[jetstream.MsgIDHeader] = []string{id}
	}
	p := &histPub{hs: hs, msg: msg, done: done, deadline: deadline}
	n, err := e.addPub(p)
	if err != nil {
		done(Position{}, fmt.Errorf("%w (stream %s): %w", ErrNotAcknowledged, hs.name, err))
		return
	}
	e.sendPub(n, p)
}
