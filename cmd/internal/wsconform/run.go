package wsconform

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"time"
)

// Options configure a run. A nil *Options means all defaults.
type Options struct {
	// Wait bounds each wait for the implementation: an event, a
	// connection, a handshake. 0: 10s.
	Wait time.Duration
	// CloseWait is how long the peer waits, once both close frames went,
	// for the implementation to close TCP before it closes it itself
	// (Result.Closing.Dropped). 0: 1s, as Autobahn's client waits for a
	// server (its serverConnectionDropTimeout, and killAfter(1) in the
	// cases where the server fails the link).
	CloseWait time.Duration
	// MaxMessage is the implementation's message size limit, which the
	// 9.10.x cases exceed; 0: skip those cases.
	MaxMessage int64
	// Cases selects cases by ID or ID prefix ("6.4" runs 6.4.x); empty:
	// all.
	Cases []string
	// LibVersion is the implementation's libwebsockets version, such as
	// lws.Version()'s "4.1.6-": KnownFailures entries fixed in it or
	// earlier do not apply. "": unknown, every entry applies.
	LibVersion string
	// Progress, when non-nil, receives each result as soon as it is known.
	Progress func(CaseResult)
	// Deflate says the implementation has permessage-deflate (RFC 7692)
	// enabled: the 12.x and 13.x cases then check that it is agreed and
	// used as negotiated, instead of declined. false: they check that it
	// is declined (as a server) or not offered (as a client).
	Deflate bool
	// Messages is how many messages each of Autobahn's 12.x and 13.x cases
	// sends, one after the echo of the other (Autobahn: 1000). 0:
	// DefaultMessages.
	Messages int
}

// DefaultMessages is Options.Messages when it is 0: a tenth of Autobahn's
// 1000, as family 9 is scaled down, for a run of minutes, not tens of them.
const DefaultMessages = 100

func (o *Options) messages() int {
	if o.Messages > 0 {
		return o.Messages
	}
	return DefaultMessages
}

func (o *Options) withDefaults() *Options {
	var out Options
	if o != nil {
		out = *o
	}
	if out.Wait <= 0 {
		out.Wait = 10 * time.Second
	}
	if out.CloseWait <= 0 {
		out.CloseWait = time.Second
	}
	return &out
}

func (o *Options) selected(c *Case, target Target) bool {
	if c.Only != 0 && c.Only != target {
		return false
	}
	if strings.HasPrefix(c.ID, "9.10.") && o.MaxMessage <= 0 {
		return false
	}
	if len(o.Cases) == 0 {
		return true
	}
	for _, p := range o.Cases {
		if c.ID == p || strings.HasPrefix(c.ID, p+".") {
			return true
		}
	}
	return false
}

// Outcome is a result judged against KnownFailures.
type Outcome uint8

// Outcomes.
const (
	OutcomeOK        Outcome = iota // OK
	OutcomeNonStrict                // NON-STRICT
	OutcomeFailed                   // FAILED and not a known failure
	OutcomeKnown                    // FAILED, as KnownFailures says
	OutcomeStale                    // listed in KnownFailures but passed
)

func (o Outcome) String() string {
	return [...]string{"OK", "NON-STRICT", "FAILED", "KNOWN-FAILURE", "NOW-PASSES"}[o]
}

// CaseResult is one case's result in one run.
type CaseResult struct {
	Case   *Case
	Target Target
	Result
	// Known is the KnownFailures entry for this case and target, if any.
	Known    *Known
	Duration time.Duration
}

// Outcome judges the result against KnownFailures.
func (r CaseResult) Outcome() Outcome {
	switch {
	case r.Verdict == Failed && r.Known != nil:
		return OutcomeKnown
	case r.Verdict == Failed:
		return OutcomeFailed
	case r.Known != nil && !r.Known.Intermittent:
		return OutcomeStale
	case r.Verdict == NonStrict:
		return OutcomeNonStrict
	}
	return OutcomeOK
}

// Report is the result of one run against one target.
type Report struct {
	Target  Target
	Where   string // the address or URL the run used
	Results []CaseResult
}

// Problems returns the results that fail a run: unexpected failures,
// known failures that now pass (their KnownFailures entry is stale), and
// links whose TCP connection the peer had to close (Closing.Dropped).
func (r *Report) Problems() []CaseResult {
	var out []CaseResult
	for _, c := range r.Results {
		if o := c.Outcome(); o == OutcomeFailed || o == OutcomeStale || c.Closing.Dropped {
			out = append(out, c)
		}
	}
	return out
}

// peerReadLimit bounds a frame the peer accepts from the implementation.
const peerReadLimit = 64 << 20

// RunServer runs every selected case against the WebSocket server at addr
// ("host:port"), which must echo each message it receives.
func RunServer(addr string, opts *Options) *Report {
	o := opts.withDefaults()
	rep := &Report{Target: TargetServer, Where: "ws://" + addr + "/"}
	for _, c := range Cases() {
		if !o.selected(c, TargetServer) {
			continue
		}
		start := time.Now()
		res := runServerCase(addr, c, o)
		rep.add(o, c, TargetServer, res, time.Since(start))
	}
	return rep
}

func runServerCase(addr string, c *Case, o *Options) Result {
	conn, err := net.DialTimeout("tcp", addr, o.Wait)
	if err != nil {
		return failed("connecting: %v", err)
	}
	br := bufio.NewReaderSize(conn, 64<<10)
	var extra http.Header
	if c.Offer != "" {
		extra = http.Header{"Sec-WebSocket-Extensions": {c.Offer}}
	}
	resp, err := clientHandshake(conn, br, addr, "/conformance/"+c.ID, extra, o.Wait)
	if err != nil {
		conn.Close()
		return failed("opening handshake: %v", err)
	}
	offer, answer, why := agreement(c.Offer, resp.Header.Values("Sec-WebSocket-Extensions"))
	var pmd *pmdLink
	if answer != nil && why == "" {
		pmd = newPMDLink(true, offer, answer)
	}
	p := newPeer(conn, br, true, peerReadLimit, pmd)
	defer p.shutdown()
	return play(c, &T{p: p, target: TargetServer, opts: o, resp: resp, pmdWhy: why})
}

// play runs a case and adds how the link's TCP connection ended.
func play(c *Case, t *T) Result {
	r := c.Run(t)
	r.Closing = t.closing
	return r
}

// Dialer makes the implementation dial url as a WebSocket client that
// echoes each message it receives. It returns when the link is open (nil)
// or the dial failed.
type Dialer func(url string) error

// RunClient runs every selected case against a WebSocket client: for each
// case it listens on 127.0.0.1, calls dial with a URL for the case and plays
// the server.
func RunClient(dial Dialer, opts *Options) (*Report, error) {
	o := opts.withDefaults()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	defer ln.Close()
	tl := ln.(*net.TCPListener)
	rep := &Report{Target: TargetClient, Where: "ws://" + ln.Addr().String() + "/"}
	for _, c := range Cases() {
		if !o.selected(c, TargetClient) {
			continue
		}
		start := time.Now()
		res := runClientCase(tl, dial, c, o)
		rep.add(o, c, TargetClient, res, time.Since(start))
	}
	return rep, nil
}

func runClientCase(ln *net.TCPListener, dial Dialer, c *Case, o *Options) Result {
	url := fmt.Sprintf("ws://%s/conformance/%s", ln.Addr(), c.ID)
	dres := make(chan error, 1)
	go func() { dres <- dial(url) }()
	var derr error
	dialDone := false
	waitDial := func() error {
		if dialDone {
			return derr
		}
		select {
		case derr = <-dres:
		case <-time.After(o.Wait):
			derr = errors.New("the dial did not return")
			return derr // not done: waited for again below
		}
		dialDone = true
		return derr
	}
	// Every dial has returned before the next case starts.
	defer waitDial()

	_ = ln.SetDeadline(time.Now().Add(o.Wait))
	conn, err := ln.Accept()
	if err != nil {
		if derr := waitDial(); derr != nil {
			return failed("the client did not connect: %v", derr)
		}
		return failed("the client did not connect: %v", err)
	}
	br := bufio.NewReaderSize(conn, 64<<10)
	respond := func(string) string { return c.RespondExt }
	switch {
	case c.Accept != nil:
		respond = c.Accept
	case c.RespondExt == "" && o.Deflate && c.Family() == "12":
		// With Options.Deflate the 12.x cases accept the client's offer.
		respond = acceptance
	}
	req, ext, err := serverHandshake(conn, br, respond, o.Wait)
	if err != nil {
		conn.Close()
		return failed("opening handshake: %v", err)
	}
	if want := "/conformance/" + c.ID; req.URL.Path != want {
		conn.Close()
		return failed("the client asked for %q, want %q", req.URL.Path, want)
	}
	var pmd *pmdLink
	offer, answer, why := agreement(strings.Join(req.Header.Values("Sec-WebSocket-Extensions"), ","), []string{ext})
	if answer != nil && why == "" {
		pmd = newPMDLink(false, offer, answer)
	}
	p := newPeer(conn, br, false, peerReadLimit, pmd)
	defer p.shutdown()
	return play(c, &T{p: p, target: TargetClient, opts: o, req: req, dialErr: waitDial})
}

func (r *Report) add(o *Options, c *Case, target Target, res Result, d time.Duration) {
	cr := CaseResult{Case: c, Target: target, Result: res, Known: knownFailure(c.ID, target, o.LibVersion), Duration: d}
	r.Results = append(r.Results, cr)
	if o.Progress != nil {
		o.Progress(cr)
	}
}
