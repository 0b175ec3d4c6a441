package cluster

import (
	"context"
	"errors"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// store is one JetStream KV bucket, written with compare-and-swap on
// the key's last revision and with per-message TTLs: the KV API offers
// a TTL only on Create, and a lease must be renewed by compare-and-swap
// with a TTL on every write. Each write is one stored message, so the
// bucket is also readable with the KV API and `nats kv`.
//
// Concurrency: safe from any goroutine.
type store struct {
	js     jetstream.JetStream
	kv     jetstream.KeyValue
	stream jetstream.Stream
	subj   string // "$KV.<bucket>."
}

// entry is a key's last stored message.
// Concurrency: a value.
type entry struct {
	rev  uint64
	val  []byte
	hdr  nats.Header
	live bool // a value: not a delete, purge or expiry marker
}

// errConflict: the key's last revision was not the one expected.
var errConflict = errors.New("cluster: revision conflict")

func openStore(ctx context.Context, js jetstream.JetStream, cfg jetstream.KeyValueConfig) (*store, error) {
	kv, err := js.CreateKeyValue(ctx, cfg)
	if errors.Is(err, jetstream.ErrBucketExists) {
		// Made by another node, maybe with other settings (replicas):
		// the first node's stand.
		kv, err = js.KeyValue(ctx, cfg.Bucket)
	}
	if err != nil {
		return nil, err
	}
	st, err := js.Stream(ctx, "KV_"+cfg.Bucket)
	if err != nil {
		return nil, err
	}
	return &store{js: js, kv: kv, stream: st, subj: "$KV." + cfg.Bucket + "."}, nil
}

// last reads key's last message; found is false when the key has none.
func (s *store) last(ctx context.Context, key string) (e entry, found bool, err error) {
	m, err := s.stream.GetLastMsgForSubject(ctx, s.subj+key)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return entry{}, false, nil
	}
	if err != nil {
		return entry{}, false, err
	}
	e = entry{rev: m.Sequence, val: m.Data, hdr: m.Header}
	e.live = m.Header.Get("KV-Operation") == "" && m.Header.Get(jetstream.MarkerReasonHeader) == ""
	return e, true, nil
}

// put writes val as key's next revision, whatever the last one was, with
// a TTL when ttl > 0.
func (s *store) put(ctx context.Context, key string, val []byte, ttl time.Duration) error {
	var opts []jetstream.PublishOpt
	if ttl > 0 {
		opts = append(opts, jetstream.WithMsgTTL(ttl))
	}
	_, err := s.js.PublishMsg(ctx, &nats.Msg{Subject: s.subj + key, Data: val}, opts...)
	return err
}

// cas writes val (with hdr, and a TTL when ttl > 0) as key's next
// revision if its last one is rev (0: the key has no message). It
// returns the new revision, or errConflict.
func (s *store) cas(ctx context.Context, key string, val []byte, hdr nats.Header, rev uint64, ttl time.Duration) (uint64, error) {
	m := &nats.Msg{Subject: s.subj + key, Data: val, Header: hdr}
	opts := []jetstream.PublishOpt{jetstream.WithExpectLastSequencePerSubject(rev)}
	if ttl > 0 {
		opts = append(opts, jetstream.WithMsgTTL(ttl))
	}
	ack, err := s.js.PublishMsg(ctx, m, opts...)
	if err != nil {
		var api *jetstream.APIError
		if errors.As(err, &api) && (api.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence ||
			api.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant) {
			return 0, errConflict
		}
		return 0, err
	}
	return ack.Sequence, nil
}
