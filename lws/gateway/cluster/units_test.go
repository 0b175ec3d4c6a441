package cluster

import (
	"bytes"
	"context"
	"errors"
	"math/rand/v2"
	"net/textproto"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

func writeFile(path string) error { return os.WriteFile(path, []byte("x"), 0o600) }

func TestLinkIDLayout(t *testing.T) {
	// The memory engine's ids are today's: the local number itself.
	for _, local := range []uint64{1, 7, 123456, MaxLocal} {
		if id, ok := LinkID(0, local); !ok || id != local {
			t.Fatalf("LinkID(0, %d) = %d, %v", local, id, ok)
		}
	}
	if id, ok := LinkID(MaxIncarnation, MaxLocal); !ok || id != 1<<53-1 || MaxLinkID != 1<<53-1 {
		t.Fatalf("the largest id %d is not 2^53-1", id)
	}
	if _, ok := LinkID(1, MaxLocal+1); ok {
		t.Fatal("a local number above 37 bits was accepted")
	}
	r := rand.New(rand.NewPCG(1, 2))
	for range 1000 {
		inc, local := Incarnation(r.IntN(MaxIncarnation+1)), r.Uint64N(MaxLocal+1)
		id, _ := LinkID(inc, local)
		gi, gl, ok := SplitLinkID(id)
		if !ok || gi != inc || gl != local || id > MaxLinkID {
			t.Fatalf("%d/%d -> %d -> %d/%d %v", inc, local, id, gi, gl, ok)
		}
	}
	if _, _, ok := SplitLinkID(1 << 53); ok {
		t.Fatal("an id above 2^53-1 was split")
	}
}

func TestEncodeToken(t *testing.T) {
	for in, want := range map[string]string{
		"":               "=",
		"room-1_A":       "room-1_A",
		"room:42":        "room=3A42",
		"a.b":            "a=2Eb",
		"*>":             "=2A=3E",
		"=":              "=3D",
		"é":              "=C3=A9",
		"with space\r\n": "with=20space=0D=0A",
	} {
		if got := EncodeToken(in); got != want {
			t.Errorf("EncodeToken(%q) = %q, want %q", in, got, want)
		}
	}
	for _, bad := range []string{"", "a=", "a=4", "=3a", "=41", "a.b", "a b", "==", "=GG"} {
		if s, ok := DecodeToken(bad); ok {
			t.Errorf("DecodeToken(%q) accepted: %q", bad, s)
		}
	}
}

// EncodeToken is one-to-one onto tokens valid in NATS subjects and KV
// keys, and DecodeToken inverts it exactly.
func FuzzEncodeToken(f *testing.F) {
	for _, s := range []string{"", "room:1", "a.b *>", "=3D", "\x00\xff", "ü"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		tok := EncodeToken(s)
		if tok == "" || strings.ContainsAny(tok, ". *>\t\r\n") {
			t.Fatalf("EncodeToken(%q) = %q: not one subject token", s, tok)
		}
		for i := 0; i < len(tok); i++ {
			if !plainByte(tok[i]) && tok[i] != '=' {
				t.Fatalf("EncodeToken(%q) = %q: byte %q outside the key alphabet", s, tok, tok[i])
			}
		}
		back, ok := DecodeToken(tok)
		if !ok || back != s {
			t.Fatalf("DecodeToken(EncodeToken(%q)) = %q, %v", s, back, ok)
		}
		// Any token that decodes is the encoding of what it decodes to.
		if d, ok := DecodeToken(s); ok && EncodeToken(d) != s {
			t.Fatalf("DecodeToken(%q) = %q, which encodes to %q", s, d, EncodeToken(d))
		}
	})
}

func TestEnvelope(t *testing.T) {
	m := Message{Data: []byte("hello"), Kind: 2}
	b := appendEnvelope(nil, 65535, 3, 1<<40, m)
	inc, gen, seq, got, ok := parseEnvelope(b)
	if !ok || inc != 65535 || gen != 3 || seq != 1<<40 || got.Kind != 2 || !bytes.Equal(got.Data, m.Data) {
		t.Fatalf("round trip: %d %d %d %+v %v", inc, gen, seq, got, ok)
	}
	for _, bad := range [][]byte{nil, {0}, {2, 1, 1, 1, 0}, {1, 0x80}, {1, 1, 1, 1}, appendEnvelope(nil, 1, 1, 1, m)[:4]} {
		if _, _, _, _, ok := parseEnvelope(bad); ok {
			t.Errorf("parsed %v", bad)
		}
	}
	if _, _, _, _, ok := parseEnvelope([]byte{1, 0xff, 0xff, 0x04, 1, 1, 0}); ok { // incarnation 65536+
		t.Error("parsed an incarnation above 16 bits")
	}
}

// The memory engine: incarnation 0, no other node, nothing to pay.
func TestMemoryEngine(t *testing.T) {
	e, err := Open(context.Background(), Config{Node: "solo"}, Hooks{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if e.Incarnation() != 0 || !e.Ready() || e.Node() != "solo" {
		t.Fatalf("memory engine: inc %d ready %v", e.Incarnation(), e.Ready())
	}
	if err := e.Interest("c", true); err != nil {
		t.Fatal(err)
	}
	if pos, err := e.Publish(ctx, "c", Message{Data: []byte("x")}); err != nil || !pos.IsZero() {
		t.Fatalf("publish: %+v, %v", pos, err)
	}
	e.Handle("echo", func(_ context.Context, b []byte) ([]byte, error) { return b, nil })
	if out, err := e.Call(ctx, 0, "echo", []byte("hi")); err != nil || string(out) != "hi" {
		t.Fatalf("call: %q, %v", out, err)
	}
	if _, err := e.Call(ctx, 1, "echo", nil); !errors.Is(err, ErrNotIssued) {
		t.Fatalf("call to incarnation 1: %v, want ErrNotIssued", err)
	}
	if _, err := e.Call(ctx, 0, "nosuch", nil); !errors.Is(err, ErrNoHandler) {
		t.Fatalf("unknown op: %v", err)
	}
	res, err := e.Survey(ctx, "echo", []byte("s"))
	if err != nil || res.Partial() || len(res.Replies) != 1 || !res.Replies[0].Self || string(res.Replies[0].Body) != "s" {
		t.Fatalf("survey: %+v, %v", res, err)
	}
	if ok, err := e.LinkClosed(ctx, 5, Disconnect{}); !ok || err != nil {
		t.Fatalf("link closed: %v %v", ok, err)
	}
	if err := e.Close(ctx); err != nil || e.Ready() {
		t.Fatalf("close: %v, ready %v", err, e.Ready())
	}
}

// The memory engine's disconnect hooks: queued in this process by
// LinkClosed, sent by RunHooks, a failed send tried again after its
// backoff, a hook given up after MaxAttempts.
func TestMemoryHooks(t *testing.T) {
	e, err := Open(context.Background(), Config{Node: "solo"}, Hooks{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for id := uint64(1); id <= 3; id++ {
		if ok, err := e.LinkClosed(ctx, id, Disconnect{Code: 1000 + int(id)}); !ok || err != nil {
			t.Fatalf("LinkClosed: %v, %v", ok, err)
		}
	}
	var mu sync.Mutex
	sent := map[uint64][]int{} // attempts
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = e.RunHooks(ctx, HookRunOptions{Workers: 2, MaxAttempts: 3, Backoff: 10 * time.Millisecond},
			func(_ context.Context, d Disconnect) error {
				mu.Lock()
				defer mu.Unlock()
				sent[d.Link] = append(sent[d.Link], d.Attempt)
				if d.Code != 1000+int(d.Link) {
					t.Errorf("hook %+v", d)
				}
				switch {
				case d.Link == 2 && d.Attempt < 2: // fails once
					return errors.New("backend down")
				case d.Link == 3: // fails always
					return errors.New("backend refuses")
				}
				return nil
			})
	}()
	eventually(t, 5*time.Second, "the hooks settled", func() bool {
		return e.Stats().HooksDelivered == 2 && e.Stats().HooksDropped == 1
	})
	cancel()
	<-done
	mu.Lock()
	defer mu.Unlock()
	if !slices.Equal(sent[1], []int{1}) || !slices.Equal(sent[2], []int{1, 2}) || !slices.Equal(sent[3], []int{1, 2, 3}) {
		t.Fatalf("attempts: %v", sent)
	}
	if s := e.Stats(); s.HooksQueued != 3 || s.HookFailures != 4 {
		t.Fatalf("stats: %+v", s)
	}
	// Close ends a RunHooks under way, with ErrClosed.
	ran := make(chan error, 1)
	go func() {
		ran <- e.RunHooks(context.Background(), HookRunOptions{}, func(context.Context, Disconnect) error { return nil })
	}()
	if err := e.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-ran:
		if !errors.Is(err, ErrClosed) {
			t.Fatalf("RunHooks after Close: %v, want ErrClosed", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("RunHooks still running 5s after Close")
	}
}

// BenchmarkMemoryPublish is the memory engine's cost on the gateway's
// publish path: nothing.
func BenchmarkMemoryPublish(b *testing.B) {
	e, _ := Open(context.Background(), Config{Node: "solo"}, Hooks{})
	ctx := context.Background()
	m := Message{Data: []byte("x")}
	b.ReportAllocs()
	for b.Loop() {
		_, _ = e.Publish(ctx, "room", m)
	}
}

// TestHistoryHeaderNames: the headers of a stored message are set
// without nats.Header.Set, so their names must be canonical already.
func TestHistoryHeaderNames(t *testing.T) {
	for _, k := range []string{hdrFrom, hdrKind, jetstream.MsgIDHeader} {
		if c := textproto.CanonicalMIMEHeaderKey(k); c != k {
			t.Errorf("header %q: canonical form %q", k, c)
		}
	}
}
