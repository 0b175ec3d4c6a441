package wsconform

import (
	"bufio"
	"bytes"
	"compress/flate"
	"context"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestUTF8Vectors checks that each 6.5-6.23 sequence is declared valid or
// invalid as unicode/utf8 (RFC 3629) judges it.
func TestUTF8Vectors(t *testing.T) {
	n := 0
	for _, g := range utf8Groups() {
		for i, s := range g.seqs {
			assert.Equal(t, utf8.ValidString(s.s), s.valid, "%s #%d %x", g.name, i+1, s.s)
			n++
		}
	}
	assert.Equal(t, 132, n, "sequences in 6.5-6.23, as in Autobahn")
}

// TestCases checks the case list: IDs unique per target, every case
// described and runnable, every family named.
func TestCases(t *testing.T) {
	seen := map[Target]map[string]bool{TargetServer: {}, TargetClient: {}}
	for _, c := range Cases() {
		assert.NotEmpty(t, c.Desc, c.ID)
		assert.NotEmpty(t, c.Expect, c.ID)
		assert.NotNil(t, c.Run, c.ID)
		assert.Contains(t, FamilyNames, c.Family(), c.ID)
		for _, tg := range []Target{TargetServer, TargetClient} {
			if c.Only != 0 && c.Only != tg {
				continue
			}
			assert.False(t, seen[tg][c.ID], "case %s twice for the %s target", c.ID, tg)
			seen[tg][c.ID] = true
		}
		if c.RespondExt != "" || c.Accept != nil {
			assert.Equal(t, TargetClient, c.Only, "%s: RespondExt and Accept are for client targets", c.ID)
		}
	}
}

// TestKnownFailuresNameCases checks that every known failure names a case
// that runs on its target.
func TestKnownFailuresNameCases(t *testing.T) {
	for _, k := range KnownFailures {
		found := false
		for _, c := range Cases() {
			if c.ID == k.Case && (c.Only == 0 || k.Target == 0 || c.Only == k.Target) {
				found = true
			}
		}
		assert.True(t, found, "KnownFailures names case %s (%s), which does not exist", k.Case, k.Target)
		assert.NotEmpty(t, k.Reason, k.Case)
		assert.NotEmpty(t, k.Fix, k.Case)
	}
}

func TestFrameRoundTrip(t *testing.T) {
	for _, n := range []int{0, 1, 125, 126, 127, 0xFFFF, 0x10000, 70000} {
		for _, masked := range []bool{false, true} {
			p := bytes.Repeat([]byte{0xa5}, n)
			f := Frame{Fin: n%2 == 0, Rsv: 5, Opcode: OpBinary, Payload: p}
			b := f.encode(nil, masked)
			got, err := readFrame(bufio.NewReader(bytes.NewReader(b)), 1<<20)
			require.NoError(t, err)
			assert.Equal(t, f.Fin, got.fin)
			assert.Equal(t, byte(5), got.rsv)
			assert.Equal(t, OpBinary, got.opcode)
			assert.Equal(t, masked, got.masked)
			assert.True(t, got.minimal, "length %d", n)
			assert.Equal(t, p, got.payload, "length %d masked %v", n, masked)
			assert.Equal(t, bytes.Repeat([]byte{0xa5}, n), p, "encode must not mask the caller's payload")
		}
	}
	// A 16-bit length where 7 bits do is not minimal.
	_, err := readFrame(bufio.NewReader(bytes.NewReader([]byte{0x82, 126, 0, 5, 1, 2, 3, 4, 5})), 1<<20)
	require.NoError(t, err)
	got, _ := readFrame(bufio.NewReader(bytes.NewReader([]byte{0x82, 126, 0, 5, 1, 2, 3, 4, 5})), 1<<20)
	assert.False(t, got.minimal)
	// The most significant bit of a 64-bit length must be 0.
	_, err = readFrame(bufio.NewReader(bytes.NewReader(Frame{Opcode: OpBinary, Len64: 1 << 63}.encode(nil, false))), 1<<20)
	assert.ErrorContains(t, err, "most significant bit")
}

func TestFragments(t *testing.T) {
	fs := Fragments(OpText, []byte("abcdefg"), 3)
	require.Len(t, fs, 3)
	assert.Equal(t, Frame{Opcode: OpText, Payload: []byte("abc")}, fs[0])
	assert.Equal(t, Frame{Opcode: OpContinuation, Payload: []byte("def")}, fs[1])
	assert.Equal(t, Frame{Fin: true, Opcode: OpContinuation, Payload: []byte("g")}, fs[2])
	assert.Equal(t, []Frame{{Fin: true, Opcode: OpBinary, Payload: []byte("ab")}}, Fragments(OpBinary, []byte("ab"), 0))
}

func TestVersionBefore(t *testing.T) {
	for _, tc := range []struct {
		v, w string
		want bool
	}{
		{"4.1.6-", "4.3.1", true},
		{"4.3.5-v4.3.5", "4.3.1", false},
		{"4.3.1", "4.3.1", false},
		{"4.3.0", "4.3.1", true},
		{"5.0.0", "5.0.0", false},
		{"", "4.3.1", true},
		{"unknown", "4.3.1", true},
	} {
		assert.Equal(t, tc.want, versionBefore(tc.v, tc.w), "%q before %q", tc.v, tc.w)
	}
}

func TestKnownFailureVersions(t *testing.T) {
	// 1.3.2 is fixed in 4.3.1; a failure that appeared in 4.2.0 (none
	// does today: 7.9.10 on the client did, until the binding refused
	// 1015 itself) is known from then on only.
	saved := KnownFailures
	t.Cleanup(func() { KnownFailures = saved })
	KnownFailures = append(append([]Known(nil), saved...), Known{Case: "0.0.1", Target: TargetClient, Since: "4.2.0"})
	assert.NotNil(t, knownFailure("1.3.2", TargetClient, "4.1.6-"))
	assert.Nil(t, knownFailure("1.3.2", TargetClient, "4.3.5-unknown"))
	assert.NotNil(t, knownFailure("1.3.2", TargetClient, ""))
	assert.Nil(t, knownFailure("0.0.1", TargetClient, "4.1.6-"))
	assert.NotNil(t, knownFailure("0.0.1", TargetClient, "4.3.5-unknown"))
	assert.Nil(t, knownFailure("0.0.1", TargetClient, ""))
	assert.Nil(t, knownFailure("0.0.1", TargetServer, "4.3.5"))
	assert.Nil(t, knownFailure("7.9.10", TargetClient, "4.3.5-unknown"))
	assert.NotNil(t, knownFailure("7.7.14", TargetServer, "4.3.5"))
	assert.Nil(t, knownFailure("7.7.14", TargetClient, "4.3.5"))
}

func TestOutcome(t *testing.T) {
	known := &Known{Case: "x"}
	flaky := &Known{Case: "x", Intermittent: true}
	for _, tc := range []struct {
		v     Verdict
		k     *Known
		want  Outcome
		probs bool
	}{
		{OK, nil, OutcomeOK, false},
		{NonStrict, nil, OutcomeNonStrict, false},
		{Failed, nil, OutcomeFailed, true},
		{Failed, known, OutcomeKnown, false},
		{OK, known, OutcomeStale, true},
		{NonStrict, known, OutcomeStale, true},
		{Failed, flaky, OutcomeKnown, false},
		{OK, flaky, OutcomeOK, false},
	} {
		r := CaseResult{Case: &Case{ID: "x"}, Result: Result{Verdict: tc.v}, Known: tc.k}
		assert.Equal(t, tc.want, r.Outcome(), "%v %+v", tc.v, tc.k)
		rep := &Report{Results: []CaseResult{r}}
		assert.Equal(t, tc.probs, len(rep.Problems()) > 0, "%v %+v", tc.v, tc.k)
	}
	// The report names a stale entry.
	var b strings.Builder
	rep := &Report{Results: []CaseResult{{Case: &Case{ID: "7.3.2"}, Result: Result{Verdict: OK}, Known: &Known{Case: "7.3.2", Fix: "item 3"}}}}
	rep.WriteTable(&b, "t", false)
	assert.Contains(t, b.String(), "7.3.2 now passes (OK): remove its entry from KnownFailures")
}

// TestSuiteAgainstGorilla runs some cases against gorilla/websocket, a
// second implementation: the cases libwebsockets fails pass there, so the
// failures are libwebsockets' and the binding's, not the suite's; and
// gorilla's echo of invalid UTF-8 (it leaves text validation to the
// application) and its client's acceptance of an extension it did not
// offer are caught.
func TestSuiteAgainstGorilla(t *testing.T) {
	addr := serveGorilla(t, &websocket.Upgrader{})
	got := verdictsOf(t, RunServer(addr, &Options{Cases: []string{"1.3.1", "2.10", "3.2", "4.1.3", "5.15", "7.3.2", "7.7.14", "6.3.1", "6.2.1", "12.1.1"}, Messages: 3}))
	want := map[string]Verdict{"1.3.1": OK, "2.10": OK, "3.2": OK, "4.1.3": OK, "5.15": OK, "7.3.2": OK, "7.7.14": OK, "6.3.1": Failed, "6.2.1": OK, "12.1.1": OK}
	assert.Equal(t, want, got, "server verdicts")

	dial := func(url string) error {
		c, _, err := websocket.DefaultDialer.Dial(url, nil)
		if err != nil {
			return err
		}
		go gorillaEcho(c)
		return nil
	}
	crep, err := RunClient(dial, &Options{Cases: []string{"1.3.2", "2.10", "13.1.1", "13.12.1"}, Messages: 3})
	require.NoError(t, err)
	got = verdictsOf(t, crep)
	want = map[string]Verdict{"1.3.2": OK, "2.10": OK, "13.1.1": OK, "13.12.1": Failed}
	assert.Equal(t, want, got, "client verdicts")
}

// TestSuiteDeflateAgainstGorilla runs permessage-deflate cases with
// Options.Deflate against gorilla/websocket with compression, a second
// implementation of the extension: the peer's codec interoperates with it
// both ways, and the negotiation checks catch what gorilla gets wrong. As
// a server it answers every offer with both no_context_takeover
// parameters and nothing else, which accepts Autobahn 13.7's list by its
// second offer, but answers an offer of server_max_window_bits with an
// answer that does not accept it (13.3.x, 13.11.1); as a client it offers
// both parameters and no client_max_window_bits (so Autobahn's accept5
// declines it, 13.5.x), and fails the handshake unless the answer names
// both, which RFC 7692 does not require of client_no_context_takeover
// (13.9.1), while it rightly fails an answer without
// server_no_context_takeover (13.8.1).
func TestSuiteDeflateAgainstGorilla(t *testing.T) {
	addr := serveGorilla(t, &websocket.Upgrader{EnableCompression: true})
	got := verdictsOf(t, RunServer(addr, &Options{Deflate: true, Messages: 3,
		Cases: []string{"12.1.1", "12.2.5", "12.3.15", "12.5.18", "12.6.1", "12.7.1", "13.3.1", "13.7.10", "13.11.1", "13.12.1"}}))
	want := map[string]Verdict{"12.1.1": OK, "12.2.5": OK, "12.3.15": OK, "12.5.18": OK, "12.6.1": OK, "12.7.1": OK,
		"13.3.1": Failed, "13.7.10": OK, "13.11.1": Failed, "13.12.1": OK}
	assert.Equal(t, want, got, "server verdicts")

	d := websocket.Dialer{EnableCompression: true}
	dial := func(url string) error {
		c, _, err := d.Dial(url, nil)
		if err != nil {
			return err
		}
		go gorillaEcho(c)
		return nil
	}
	crep, err := RunClient(dial, &Options{Deflate: true, Messages: 3,
		Cases: []string{"12.1.1", "12.7.2", "13.2.11", "13.5.1", "13.7.18", "13.8.1", "13.9.1"}})
	require.NoError(t, err)
	got = verdictsOf(t, crep)
	want = map[string]Verdict{"12.1.1": OK, "12.7.2": OK, "13.2.11": OK, "13.5.1": OK, "13.7.18": OK, "13.8.1": OK, "13.9.1": Failed}
	assert.Equal(t, want, got, "client verdicts")
}

// TestClosingBehaviour: the peer times how soon the implementation closes
// TCP after the closing handshake, and reports one that leaves it open as
// Autobahn does (FAILED BY CLIENT for a server), a problem for the run.
// gorilla closes at once when its handler returns; held, it does not.
func TestClosingBehaviour(t *testing.T) {
	opts := &Options{Cases: []string{"7.1.1", "7.9.1"}, CloseWait: 200 * time.Millisecond}
	for _, hold := range []bool{false, true} {
		up := &websocket.Upgrader{}
		addr := serveGorillaWith(t, func(w http.ResponseWriter, r *http.Request) {
			if c, err := up.Upgrade(w, r, nil); err == nil {
				echoThenHold(c, hold)
			}
		})
		rep := RunServer(addr, opts)
		for _, r := range rep.Results {
			assert.True(t, r.Closing.Measured, "%s hold=%v", r.Case.ID, hold)
			assert.Equal(t, hold, r.Closing.Dropped, "%s hold=%v: %s", r.Case.ID, hold, r.Closing.Describe(TargetServer))
			if !hold {
				assert.Less(t, r.Closing.After, 100*time.Millisecond, r.Case.ID)
			}
		}
		assert.Equal(t, hold, len(rep.Problems()) == 2, "hold=%v", hold)
		var b strings.Builder
		rep.WriteTable(&b, "t", false)
		assert.Equal(t, hold, strings.Contains(b.String(), "7.1.1 FAILED BY CLIENT"), b.String())
	}

	// As the server, the peer closes its side first; a client that never
	// closes TCP after that is reported too.
	for _, hold := range []bool{false, true} {
		dial := func(url string) error {
			c, _, err := websocket.DefaultDialer.Dial(url, nil)
			if err != nil {
				return err
			}
			go echoThenHold(c, hold)
			return nil
		}
		rep, err := RunClient(dial, opts)
		require.NoError(t, err)
		for _, r := range rep.Results {
			assert.True(t, r.Closing.Measured, "%s hold=%v", r.Case.ID, hold)
			assert.Equal(t, hold, r.Closing.Dropped, "client %s hold=%v: %s", r.Case.ID, hold, r.Closing.Describe(TargetClient))
		}
		assert.Equal(t, hold, len(rep.Problems()) == 2, "client hold=%v", hold)
	}
}

// echoThenHold echoes every message of c until reading fails, then, with
// hold, keeps TCP open for a second before closing it.
func echoThenHold(c *websocket.Conn, hold bool) {
	c.SetReadLimit(1 << 20)
	for {
		mt, p, err := c.ReadMessage()
		if err != nil {
			break
		}
		_ = c.WriteMessage(mt, p)
	}
	if hold {
		time.Sleep(time.Second)
	}
	c.Close()
}

// gorillaEcho echoes every message of c until it fails.
func gorillaEcho(c *websocket.Conn) { echoThenHold(c, false) }

// serveGorilla runs a gorilla echo server with up on loopback until the
// test ends and returns its address.
func serveGorilla(t *testing.T, up *websocket.Upgrader) string {
	return serveGorillaWith(t, func(w http.ResponseWriter, r *http.Request) {
		if c, err := up.Upgrade(w, r, nil); err == nil {
			gorillaEcho(c)
		}
	})
}

// serveGorillaWith serves h on loopback until the test ends and returns
// its address.
func serveGorillaWith(t *testing.T, h http.HandlerFunc) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	srv := &http.Server{Handler: h}
	go srv.Serve(ln)
	t.Cleanup(func() { _ = srv.Shutdown(context.Background()) })
	return ln.Addr().String()
}

// verdictsOf maps each case of rep to its verdict, logging the details.
func verdictsOf(t *testing.T, rep *Report) map[string]Verdict {
	m := map[string]Verdict{}
	for _, r := range rep.Results {
		m[r.Case.ID] = r.Verdict
		t.Logf("%s %s: %s %s", rep.Target, r.Case.ID, r.Verdict, r.Detail)
	}
	return m
}

// TestAutobahnAnswer checks the acceptances 13.1-13.7 play as a server
// against Autobahn's accept1-accept7, for the offer libwebsockets' client
// makes and for one without client_max_window_bits.
func TestAutobahnAnswer(t *testing.T) {
	lws := "permessage-deflate; client_max_window_bits"
	bare := "x-foo, permessage-deflate; server_no_context_takeover"
	for j, want := range []struct{ lws, bare string }{
		{"permessage-deflate", "permessage-deflate; server_no_context_takeover"},
		{"permessage-deflate; client_no_context_takeover", "permessage-deflate; server_no_context_takeover; client_no_context_takeover"},
		{"permessage-deflate; client_max_window_bits=8", ""},
		{"permessage-deflate; client_max_window_bits=15", ""},
		{"permessage-deflate; client_no_context_takeover; client_max_window_bits=8", ""},
		{"permessage-deflate; client_no_context_takeover; client_max_window_bits=15", ""},
		{"permessage-deflate; client_no_context_takeover; client_max_window_bits=8", "permessage-deflate; server_no_context_takeover; client_no_context_takeover"},
	} {
		assert.Equal(t, want.lws, autobahnAnswer(j+1, lws), "13.%d, offer %q", j+1, lws)
		assert.Equal(t, want.bare, autobahnAnswer(j+1, bare), "13.%d, offer %q", j+1, bare)
		assert.Empty(t, autobahnAnswer(j+1, ""), "13.%d, no offer", j+1)
		if want.lws != "" {
			_, _, why := agreement(lws, []string{want.lws})
			assert.Empty(t, why, "13.%d: the answer must accept the offer", j+1)
		}
	}
}

// TestCorpora checks the 12.x data sets: 256 KiB each, the same on every
// call, text ones ASCII (any slice of them is valid UTF-8), and each
// compressing as its kind does: the noisy bitmap and the PDF's streams
// least, markup and records most.
func TestCorpora(t *testing.T) {
	for _, c := range corpora {
		d := c.data()
		require.Len(t, d, corpusSize, c.name)
		assert.Equal(t, d, c.data(), c.name)
		if c.op == OpText {
			for i, b := range d {
				require.Less(t, b, byte(0x80), "%s: byte %d is not ASCII", c.name, i)
			}
		}
		var b bytes.Buffer
		w, _ := flate.NewWriter(&b, flate.DefaultCompression)
		_, _ = w.Write(d)
		_ = w.Close()
		t.Logf("%s: deflates to %.0f%%", c.name, 100*float64(b.Len())/float64(len(d)))
		assert.Less(t, b.Len(), len(d), c.name)
	}
	pos := corpusSize - 3
	assert.Equal(t, append(append([]byte(nil), corpora[3].data()[corpusSize-3:]...), corpora[3].data()[:5]...),
		slice(corpora[3].data(), &pos, 8), "a slice wraps around the end")
	assert.Equal(t, 5, pos)
}
