package interop

// The interop matrix: bin/lwsgate, at the default config lwsgate
// defaultconfig prints (listeners varied one setting at a time, see
// server_test.go), against WebSocket clients this repository did not
// write, each from its own ecosystem's registry: Chromium (Debian),
// Node's ws (npm, pinned in clients/package-lock.json), Python's
// websockets (Debian's python3-websockets) and Go's gorilla/websocket and
// coder/websocket (the Go module proxy; this module of its own keeps them
// out of what a user of package lws downloads).
//
// Each client runs the same sessions (below): connect with the subprotocol
// and with or without a permessage-deflate offer, echo text and binary
// from 0 B to 16 MiB, whole and fragmented, ping, then close with a code
// or be closed by the /close rule, the admin API or the max_message
// limit, over ws and wss. The external clients are driven by small
// scripts in clients/ that take a session as JSON and print one JSON line
// per step; this test owns the server and every verdict: it checks the
// events against what it sent, and the disconnect hook against what the
// client did. A client that cannot connect or sees a wrong byte fails.

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lwsgate/lwsgate/internal/testutil"
)

// step is one thing a client does, as the scripts get it.
type step struct {
	Op     string `json:"op"`               // info, echo, send, ping, idle, close, await_close
	Type   string `json:"type,omitempty"`   // echo, send: text or binary
	File   string `json:"file,omitempty"`   // echo, send: the payload
	Splits []int  `json:"splits,omitempty"` // echo: send it fragmented, new fragments at these offsets
	Text   string `json:"text,omitempty"`   // send: a text message
	Data   string `json:"data,omitempty"`   // ping: the payload
	Ms     int    `json:"ms,omitempty"`     // idle: how long, answering pings
	Code   int    `json:"code,omitempty"`   // close: the code to close with
	Reason string `json:"reason,omitempty"` // close: the reason

	p      *payload // echo, send
	admin  bool     // await_close: close the link through the admin API
	expect closing  // await_close: the server's close
	feats  []string // the matrix columns this step proves
}

// closing is a close code and reason.
type closing struct {
	Code   int
	Reason string
}

// caseJSON is what a driver gets: one session of one client.
type caseJSON struct {
	Name         string   `json:"name"`
	URL          string   `json:"url"`
	CA           string   `json:"ca,omitempty"` // PEM file to trust for wss
	Subprotocols []string `json:"subprotocols"`
	Compress     bool     `json:"compress"`               // offer permessage-deflate
	IgnorePings  bool     `json:"ignore_pings,omitempty"` // do not answer the server's pings
	Steps        []step   `json:"steps"`
}

// event is one line a driver prints: "open" first, then one per step
// ("waiting" before a server close, which does not count).
type event struct {
	Ev         string  `json:"ev"` // open, info, echo, pong, idle, sent, waiting, closed, error
	Protocol   string  `json:"protocol,omitempty"`
	Extensions string  `json:"extensions,omitempty"` // what the client says it agreed
	Text       string  `json:"text,omitempty"`       // info: the reply
	Type       string  `json:"type,omitempty"`       // echo
	Len        int     `json:"len"`                  // echo
	SHA256     string  `json:"sha256,omitempty"`     // echo
	Sent       string  `json:"sent,omitempty"`       // pong: the ping's payload
	Data       *string `json:"data,omitempty"`       // pong: its payload
	Pings      int     `json:"pings"`                // idle: pings seen, -1: the client cannot tell
	Code       int     `json:"code"`                 // closed: the close frame received
	Reason     *string `json:"reason,omitempty"`     // closed; nil: the client cannot tell
	Msg        string  `json:"msg,omitempty"`        // error
}

// client is one WebSocket client and what it can do.
type client struct {
	name     string
	version  string
	canFrag  bool   // sends a message as fragments of its caller's choosing
	canPing  bool   // sends pings
	canNoPMD bool   // can connect without offering permessage-deflate
	canMute  bool   // can leave the server's pings unanswered
	missing  string // why it cannot run here ("": it can)
	// run connects as c says and sends one event per step on events; it
	// returns when the session is over.
	run func(ctx context.Context, c *caseJSON, events chan<- event) error
}

// session is one connection of a client.
type session struct {
	name     string
	listener string
	offer    bool // the client offers permessage-deflate
	mute     bool // the client does not answer pings (canMute only)
	steps    []step
	feats    []string // columns every step of it proves
	noCounts bool     // the server's message counts are not checked
}

// Matrix columns.
const (
	fConnect     = "connect+subprotocol"
	fPMDOn       = "deflate on"
	fPMDOff      = "deflate off"
	fText        = "text"
	fBinary      = "binary"
	fEmpty       = "0 B"
	fBig         = "16 MiB"
	fOver        = "16 MiB+1: 1009"
	fFrag        = "fragmented"
	fPing        = "ping/pong"
	fServerPing  = "server ping"
	fClientClose = "client close"
	fRuleClose   = "/close rule"
	fAdminClose  = "admin close"
	fTLS         = "wss"
)

var columns = []string{fConnect, fPMDOn, fPMDOff, fText, fBinary, fEmpty, fBig, fOver, fFrag, fPing,
	fServerPing, fClientClose, fRuleClose, fAdminClose, fTLS}

// knownFailures are cases that fail for a defect another part of issue 13
// fixes: "client/session/feature" -> the item. They are reported, not
// failed; one that passes fails the run, so that the list stays true.
var knownFailures = map[string]string{}

// sessions is what every client runs. The 16 MiB messages go over ws with
// and without compression and over wss with it; the others stop at 1 MiB
// to keep the matrix within a minute or two on two cores.
func sessions(ps map[string]*payload) []session {
	echoes := func(upTo int, typs ...string) []step {
		var out []step
		for _, typ := range typs {
			for _, n := range sizes {
				if n > upTo {
					continue
				}
				p := ps[fmt.Sprintf("%s-%d", typ, n)]
				feats := []string{fText}
				if typ == "binary" {
					feats = []string{fBinary}
				}
				switch n {
				case 0:
					feats = append(feats, fEmpty)
				case maxMessage:
					feats = append(feats, fBig)
				}
				out = append(out, step{Op: "echo", Type: typ, File: p.file, p: p, feats: feats})
			}
		}
		return out
	}
	frag := func() []step {
		t, b := ps[fmt.Sprintf("text-%d", mib)], ps[fmt.Sprintf("binary-%d", mib)]
		return []step{
			{Op: "echo", Type: "text", File: t.file, Splits: t.splits, p: t, feats: []string{fFrag, fText}},
			{Op: "echo", Type: "binary", File: b.file, Splits: b.splits, p: b, feats: []string{fFrag, fBinary}},
		}
	}
	info := step{Op: "info"}
	ping := func(data string) step { return step{Op: "ping", Data: data, feats: []string{fPing}} }
	closeBy := func(code int, reason string) step {
		return step{Op: "close", Code: code, Reason: reason, feats: []string{fClientClose}}
	}
	seq := func(parts ...[]step) []step {
		var out []step
		for _, p := range parts {
			out = append(out, p...)
		}
		return out
	}
	over := ps[fmt.Sprintf("binary-%d", maxMessage+1)]
	return []session{
		{name: "ws", listener: lPlain, offer: true, feats: []string{fPMDOff},
			steps: seq([]step{info}, echoes(maxMessage, "text", "binary"), frag(),
				[]step{ping("ws ping"), closeBy(4000, "client bye é")})},
		{name: "ws+deflate", listener: lDeflate, offer: true, feats: []string{fPMDOn},
			steps: seq([]step{info}, echoes(maxMessage, "text", "binary"), frag(), []step{ping("deflate ping"),
				{Op: "send", Type: "text", Text: "/close 4001 closed by rule", feats: []string{fRuleClose}},
				{Op: "await_close", expect: closing{4001, "closed by rule"}, feats: []string{fRuleClose}}})},
		{name: "ws, no offer", listener: lDeflate, feats: []string{fPMDOff},
			steps: seq([]step{info}, echoes(65537, "text", "binary"), []step{ping(""),
				{Op: "await_close", admin: true, expect: closing{4002, "closed by admin"}, feats: []string{fAdminClose}}})},
		{name: "wss", listener: lTLS, offer: true, feats: []string{fTLS, fPMDOff},
			steps: seq([]step{info}, echoes(mib, "text", "binary"), frag(), []step{ping("tls ping"), closeBy(1000, "")})},
		{name: "wss+deflate", listener: lTLSDeflate, offer: true, feats: []string{fTLS, fPMDOn},
			steps: seq([]step{info}, echoes(mib, "text"), echoes(maxMessage, "binary"), frag(), []step{ping("tls deflate ping"),
				{Op: "await_close", admin: true, expect: closing{4003, "tls admin bye"}, feats: []string{fAdminClose}}})},
		{name: "server ping", listener: lKeepalive, offer: true, feats: []string{fPMDOff},
			steps: seq([]step{info, {Op: "idle", Ms: 3500, feats: []string{fServerPing}}}, echoes(125, "text"),
				[]step{closeBy(3000, "idle done")})},
		// The control for "server ping": a client that does not answer
		// is dropped, so the links above that stayed up answered.
		{name: "server ping, unanswered", listener: lKeepalive, mute: true, feats: []string{fServerPing},
			steps: []step{info, {Op: "await_close", expect: closing{1006, ""}}}},
		{name: "max_message", listener: lPlain, offer: true, feats: []string{fPMDOff}, noCounts: true,
			steps: []step{info, {Op: "send", Type: "binary", File: over.file, p: over, feats: []string{fOver}},
				{Op: "await_close", expect: closing{1009, ""}, feats: []string{fOver}}}},
	}
}

// cell is one client's result for one column.
type cell struct {
	ran    int
	fails  []string
	known  []string
	passed []string // known failures that passed
}

// results is the matrix.
//
// Concurrency: safe from any goroutine.
type results struct {
	mu    sync.Mutex
	cells map[string]map[string]*cell // client -> column
	notes map[string]string           // client -> why it did not run
}

func (r *results) cell(cl, col string) *cell {
	if r.cells[cl] == nil {
		r.cells[cl] = map[string]*cell{}
	}
	if r.cells[cl][col] == nil {
		r.cells[cl][col] = &cell{}
	}
	return r.cells[cl][col]
}

// record notes that a step of cl with feats ran and failed with msg ("":
// passed), and returns whether it is a failure of the run.
func (r *results) record(cl, sess string, feats []string, msg string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	bad := false
	for _, f := range feats {
		c := r.cell(cl, f)
		c.ran++
		item, known := knownFailures[cl+"/"+sess+"/"+f]
		switch {
		case msg != "" && known:
			c.known = append(c.known, fmt.Sprintf("%s: %s (known: %s)", sess, msg, item))
		case msg != "":
			c.fails = append(c.fails, sess+": "+msg)
			bad = true
		case known:
			c.passed = append(c.passed, sess)
			bad = true
		}
	}
	return bad
}

// table renders the matrix, one row per client.
func (r *results) table(cls []client) string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var b strings.Builder
	b.WriteString("| client | " + strings.Join(columns, " | ") + " |\n|---|")
	b.WriteString(strings.Repeat("---|", len(columns)) + "\n")
	var notes []string
	for _, cl := range cls {
		b.WriteString("| " + cl.name + " " + cl.version + " |")
		for _, col := range columns {
			c := r.cells[cl.name][col]
			switch {
			case cl.missing != "":
				b.WriteString(" skipped |")
			case c == nil || c.ran == 0:
				b.WriteString(" n/a |")
			case len(c.fails) > 0:
				b.WriteString(" FAIL |")
				for _, f := range c.fails {
					notes = append(notes, fmt.Sprintf("%s, %s: %s", cl.name, col, f))
				}
			case len(c.passed) > 0:
				b.WriteString(" passes, listed as known |")
				notes = append(notes, fmt.Sprintf("%s, %s: passes in %v, remove it from knownFailures", cl.name, col, c.passed))
			case len(c.known) > 0:
				b.WriteString(" known |")
				for _, f := range c.known {
					notes = append(notes, fmt.Sprintf("%s, %s: %s", cl.name, col, f))
				}
			default:
				b.WriteString(fmt.Sprintf(" ok (%d) |", c.ran))
			}
		}
		b.WriteString("\n")
		if cl.missing != "" {
			notes = append(notes, cl.name+": "+cl.missing)
		}
	}
	sort.Strings(notes)
	for _, n := range notes {
		b.WriteString("\n- " + n)
	}
	return b.String()
}

func TestInterop(t *testing.T) {
	dir := t.TempDir()
	cert, err := testutil.SelfSigned(dir)
	if err != nil {
		t.Fatal(err)
	}
	ps := payloads(t, dir)
	g := startGate(t, lwsgateBin(t, dir), dir, cert)
	clients := allClients(t, dir, cert)
	res := &results{cells: map[string]map[string]*cell{}}
	require := os.Getenv("LWSGATE_REQUIRE_INTEROP") != ""

	start := time.Now()
	t.Run("clients", func(t *testing.T) {
		for _, cl := range clients {
			t.Run(cl.name, func(t *testing.T) {
				if cl.missing != "" {
					if require {
						t.Fatalf("%s: %s (make test installs it: scripts/test-deps.sh)", cl.name, cl.missing)
					}
					t.Skipf("%s: %s; make test installs it", cl.name, cl.missing)
				}
				t.Parallel()
				for _, s := range sessions(ps) {
					runSession(t, g, cl, s, cert, res)
				}
			})
		}
	})
	t.Logf("interop matrix (lwsgate %s, %.1f s):\n%s", g.addr[lPlain], time.Since(start).Seconds(), res.table(clients))
	if err := g.alive(); err != nil {
		t.Fatal(err)
	}
}

// runSession runs s on cl against g and records each step's verdict.
func runSession(t *testing.T, g *gate, cl client, s session, cert *testutil.Cert, res *results) {
	if (!s.offer && !cl.canNoPMD) || (s.mute && !cl.canMute) {
		return // Chromium always offers permessage-deflate, and answers pings
	}
	scheme := "ws"
	if s.listener == lTLS || s.listener == lTLSDeflate {
		scheme = "wss"
	}
	c := &caseJSON{
		Name:         cl.name + "/" + s.name,
		URL:          fmt.Sprintf("%s://%s/interop/%s", scheme, g.addr[s.listener], cl.name),
		Subprotocols: []string{"lws-gate"},
		Compress:     s.offer,
		IgnorePings:  s.mute,
	}
	if scheme == "wss" {
		c.CA = cert.CertFile
	}
	for _, st := range s.steps {
		switch {
		case st.Splits != nil && !cl.canFrag:
			continue
		case st.Op == "ping" && !cl.canPing:
			continue
		}
		st.feats = append(append([]string{}, st.feats...), s.feats...)
		c.Steps = append(c.Steps, st)
	}
	pmd := s.offer && (s.listener == lDeflate || s.listener == lTLSDeflate)

	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	events := make(chan event, 16)
	var driverErr error
	go func() {
		driverErr = cl.run(ctx, c, events)
		close(events)
	}()
	// next returns the driver's next event, or an error one when the
	// driver ended or the session timed out.
	next := func() event {
		select {
		case ev, ok := <-events:
			if !ok {
				return event{Ev: "error", Msg: fmt.Sprintf("client ended: %v", driverErr)}
			}
			return ev
		case <-ctx.Done():
			return event{Ev: "error", Msg: "timed out"}
		}
	}

	failed := false
	verdict := func(feats []string, format string, args ...any) {
		msg := ""
		if format != "" {
			msg = fmt.Sprintf(format, args...)
		}
		if res.record(cl.name, s.name, feats, msg) {
			failed = true
			t.Errorf("%s: %v: %s", c.Name, feats, msg)
		}
	}

	ev := next()
	open := []string{fConnect}
	if scheme == "wss" {
		open = append(open, fTLS)
	}
	if ev.Ev != "open" {
		all := append(open, s.feats...)
		for _, st := range c.Steps {
			all = append(all, st.feats...)
		}
		verdict(all, "did not connect: %s %s", ev.Ev, ev.Msg)
		return
	}
	if ev.Protocol != "lws-gate" {
		verdict(open, "subprotocol %q, want lws-gate", ev.Protocol)
	} else {
		verdict(open, "")
	}
	pmdCol := fPMDOff
	if pmd {
		pmdCol = fPMDOn
	}
	if got := strings.Contains(ev.Extensions, "permessage-deflate"); got != pmd {
		verdict([]string{pmdCol}, "extensions %q: permessage-deflate agreed %v, want %v", ev.Extensions, got, pmd)
	}

	var link uint64
	var in, out, inBytes, outBytes int64
	serverSaw := closing{Code: -1}
	for i, st := range c.Steps {
		ev := next()
		if ev.Ev == "waiting" && st.Op == "await_close" {
			if st.admin {
				if err := g.adminClose(ctx, link, st.expect.Code, st.expect.Reason); err != nil {
					verdict(st.feats, "%v", err)
				}
			}
			ev = next()
		}
		if ev.Ev == "error" {
			verdict(st.feats, "step %d (%s): %s", i, st.Op, ev.Msg)
			var rest []string
			for _, r := range c.Steps[i+1:] {
				rest = append(rest, r.feats...)
			}
			if len(rest) > 0 {
				verdict(rest, "not run: step %d (%s) failed", i, st.Op)
			}
			break
		}
		msg := checkStep(st, ev)
		verdict(st.feats, "%s", msg)
		switch st.Op {
		case "info":
			var r struct {
				Link uint64 `json:"link"`
			}
			if json.Unmarshal([]byte(ev.Text), &r) == nil {
				link = r.Link
			}
			in, inBytes, out, outBytes = in+1, inBytes+int64(len(`{"action":"info"}`)), out+1, outBytes+int64(len(ev.Text))
		case "echo":
			in, inBytes, out, outBytes = in+1, inBytes+int64(st.p.size), out+1, outBytes+int64(st.p.size)
		case "send":
			in, inBytes = in+1, inBytes+int64(len(st.Text))
		case "close":
			serverSaw = closing{st.Code, st.Reason}
		case "await_close":
			serverSaw = st.expect
		}
	}
	for ev := range events { // until the driver has ended (or the timeout ended it)
		if !failed {
			verdict(s.feats, "an event after the last step: %+v", ev)
		}
	}
	if driverErr != nil && !failed {
		verdict(s.feats, "client: %v", driverErr)
	}
	if link == 0 {
		return
	}
	// What the server saw, from its disconnect hook.
	last := c.Steps[len(c.Steps)-1]
	h, err := g.hooks.disconnect(ctx, link)
	switch {
	case err != nil:
		verdict(last.feats, "server side: %v", err)
	case serverSaw.Code >= 0 && (h.Code != serverSaw.Code || (serverSaw.Reason != "" && h.Reason != serverSaw.Reason) ||
		(serverSaw.Reason == "" && last.Op == "close" && h.Reason != "")):
		verdict(last.feats, "server side: the disconnect hook says %d %q, want %d %q", h.Code, h.Reason, serverSaw.Code, serverSaw.Reason)
	case !s.noCounts && !failed && (h.Link.MessagesIn != in || h.Link.BytesIn != inBytes || h.Link.MessagesOut != out || h.Link.BytesOut != outBytes):
		verdict(last.feats, "server side: in %d messages %d bytes, out %d messages %d bytes; want in %d/%d, out %d/%d",
			h.Link.MessagesIn, h.Link.BytesIn, h.Link.MessagesOut, h.Link.BytesOut, in, inBytes, out, outBytes)
	}
}

// checkStep is the verdict on one step's event: "" when it is right.
func checkStep(st step, ev event) string {
	want := map[string]string{"info": "info", "echo": "echo", "send": "sent", "ping": "pong", "idle": "idle",
		"close": "closed", "await_close": "closed"}[st.Op]
	if ev.Ev != want {
		return fmt.Sprintf("got %q (%s), want %q", ev.Ev, ev.Msg, want)
	}
	switch st.Op {
	case "info":
		var r struct {
			Type string `json:"type"`
			Link uint64 `json:"link"`
		}
		if err := json.Unmarshal([]byte(ev.Text), &r); err != nil || r.Type != "info" || r.Link == 0 {
			return fmt.Sprintf("info reply %q", ev.Text)
		}
	case "echo":
		if ev.Type != st.p.typ || ev.Len != st.p.size || ev.SHA256 != st.p.sum {
			return fmt.Sprintf("echo of %s: got %s of %d bytes, sha256 %.12s; want %s, %d, %.12s",
				st.p.name, ev.Type, ev.Len, ev.SHA256, st.p.typ, st.p.size, st.p.sum)
		}
	case "ping":
		if ev.Data == nil || *ev.Data != ev.Sent {
			return fmt.Sprintf("pong %v for ping %q", ev.Data, ev.Sent)
		}
	case "idle":
		if ev.Pings == 0 {
			return fmt.Sprintf("no ping from the server in %d ms", st.Ms)
		}
	case "close":
		// The server answers a close with the same code (RFC 6455 5.5.1).
		if ev.Code != st.Code {
			return fmt.Sprintf("closed with %d, the server answered %d", st.Code, ev.Code)
		}
	case "await_close":
		if ev.Code != st.expect.Code || (st.expect.Reason != "" && ev.Reason != nil && *ev.Reason != st.expect.Reason) {
			r := "(unknown)"
			if ev.Reason != nil {
				r = *ev.Reason
			}
			return fmt.Sprintf("server closed with %d %q, want %d %q", ev.Code, r, st.expect.Code, st.expect.Reason)
		}
	}
	return ""
}
