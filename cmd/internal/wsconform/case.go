package wsconform

import (
	"bytes"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"
	"unicode/utf8"
)

// Verdict is how a case went.
type Verdict uint8

const (
	// OK: the implementation did what RFC 6455 asks, the preferred way.
	OK Verdict = iota
	// NonStrict: what it did is allowed by RFC 6455 but not ideal; the
	// Result says why.
	NonStrict
	// Failed: it broke RFC 6455, or did not echo what it was sent.
	Failed
)

func (v Verdict) String() string {
	switch v {
	case OK:
		return "OK"
	case NonStrict:
		return "NON-STRICT"
	}
	return "FAILED"
}

// Result is a case's verdict and what led to it.
type Result struct {
	Verdict Verdict
	Detail  string
	// Closing is how the link's TCP connection ended, judged apart from
	// the verdict as Autobahn's "closing behaviour" is.
	Closing Closing
}

// Closing is how the TCP connection ended once both close frames went.
type Closing struct {
	// Measured: a closing handshake ended and the peer waited for the
	// end of TCP (not when the implementation dropped TCP without a
	// close frame, which ends a failed link at once).
	Measured bool
	// After is the time from the end of the closing handshake (the
	// later of the peer's close frame written and the implementation's
	// read) to the implementation's TCP close, as the peer saw it.
	After time.Duration
	// Dropped: the implementation had not closed TCP Options.CloseWait
	// after the handshake, and the peer closed it instead.
	Dropped bool
}

// Describe names the closing behaviour for a report: the time to close,
// or "FAILED BY CLIENT" (Autobahn's name, when the implementation is the
// server) or "FAILED BY SERVER", or "" when nothing was measured.
func (c Closing) Describe(target Target) string {
	switch {
	case !c.Measured:
		return ""
	case c.Dropped:
		return fmt.Sprintf("%s (TCP open %v after the handshake)", droppedName(target), c.After)
	}
	return closeTime(c.After)
}

// droppedName is Autobahn's name for a server that left the peer to close
// TCP, and its mirror for a client.
func droppedName(target Target) string {
	if target == TargetServer {
		return "FAILED BY CLIENT"
	}
	return "FAILED BY SERVER"
}

// closeTime formats a time to close: microseconds below a millisecond.
func closeTime(d time.Duration) string {
	if d < time.Millisecond {
		return d.Round(time.Microsecond).String()
	}
	return d.Round(100 * time.Microsecond).String()
}

func ok() Result { return Result{Verdict: OK} }

func nonStrict(format string, args ...any) Result {
	return Result{Verdict: NonStrict, Detail: fmt.Sprintf(format, args...)}
}

func failed(format string, args ...any) Result {
	return Result{Verdict: Failed, Detail: fmt.Sprintf(format, args...)}
}

// Case is one conformance case.
type Case struct {
	ID     string // "1.1.1", as in Autobahn where the case exists there
	Desc   string
	Expect string
	// Only restricts the case to one target; 0: both.
	Only Target
	// Lwsgate marks cases that are not in Autobahn's list.
	Lwsgate bool
	// Offer is the Sec-WebSocket-Extensions header the peer sends as a
	// client (TargetServer only).
	Offer string
	// RespondExt is a Sec-WebSocket-Extensions header the peer adds to
	// its 101 as a server (TargetClient only).
	RespondExt string
	// Accept, when set, makes that header from the client's offers (the
	// values of its Sec-WebSocket-Extensions headers, joined; "": none),
	// as a server that negotiates does (TargetClient only).
	Accept func(offer string) string
	// Run plays the case after the opening handshake.
	Run func(t *T) Result
}

// Family is the case's first number: "6" for "6.4.3".
func (c *Case) Family() string {
	f, _, _ := strings.Cut(c.ID, ".")
	return f
}

// T is what a case's Run plays with: the peer and the handshake.
type T struct {
	p      *Peer
	target Target
	opts   *Options
	// resp is the implementation's 101 (TargetServer), req its upgrade
	// request (TargetClient).
	resp *http.Response
	req  *http.Request
	// dialErr waits for the result of the implementation's dial
	// (TargetClient).
	dialErr func() error
	// pmdWhy says why the implementation's 101 is no valid acceptance of
	// the permessage-deflate offer (TargetServer), or "".
	pmdWhy string
	// closing is what awaitTCPClose saw; the run puts it in the Result.
	closing Closing
}

// Deflated reports whether the handshake agreed permessage-deflate.
func (t *T) Deflated() bool { return t.p.pmd != nil }

// Compressed returns a message compressed as the agreement allows, as
// frames of at most frag bytes of compressed data each (frag <= 0: one
// frame); RSV1 is set on the first. Deflated must be true.
func (t *T) Compressed(op byte, msg []byte, frag int) []Frame {
	fs := Fragments(op, t.p.pmd.tx.compress(msg), frag)
	fs[0].Rsv = 4
	return fs
}

// Send sends frames, each in its own write.
func (t *T) Send(frames ...Frame) { t.p.write(-1, frames...) }

// SendJoined sends frames in one write.
func (t *T) SendJoined(frames ...Frame) { t.p.write(0, frames...) }

// SendChopped sends frames as one byte stream cut into writes of n bytes.
func (t *T) SendChopped(n int, frames ...Frame) { t.p.write(n, frames...) }

// SendRaw writes bytes as they are.
func (t *T) SendRaw(b []byte) { t.p.writeBufs([][]byte{b}) }

// Encode returns a frame's wire bytes as this peer would send it.
func (t *T) Encode(f Frame) []byte { return f.encode(nil, t.p.masks(f)) }

// Next returns the next event, waiting at most Options.Wait.
func (t *T) Next() Event { return t.p.next(t.opts.Wait) }

// NextWithin returns the next event, waiting at most d.
func (t *T) NextWithin(d time.Duration) Event { return t.p.next(d) }

// Want is an event a case expects.
type Want struct {
	Kind EventKind
	Op   byte
	Data []byte
}

// WantText expects a text message.
func WantText(p []byte) Want { return Want{Kind: EvMessage, Op: OpText, Data: p} }

// WantBinary expects a binary message.
func WantBinary(p []byte) Want { return Want{Kind: EvMessage, Op: OpBinary, Data: p} }

// WantPong expects a pong.
func WantPong(p []byte) Want { return Want{Kind: EvPong, Data: p} }

func (w Want) matches(e Event) bool {
	return e.Kind == w.Kind && (w.Kind != EvMessage || e.Op == w.Op) && bytes.Equal(e.Data, w.Data)
}

func (w Want) String() string {
	return Event{Kind: w.Kind, Op: w.Op, Data: w.Data}.String()
}

// describe names an event for a failure message.
func describe(e Event) string {
	if e.Kind == EvTimeout {
		return "nothing"
	}
	return e.String()
}

// expect checks that the next events are wants, in order. It returns a
// failed Result on a mismatch, or nil.
func (t *T) expect(wants ...Want) *Result {
	for i, w := range wants {
		e := t.Next()
		if !w.matches(e) {
			r := failed("expected %s (event %d of %d), got %s", w, i+1, len(wants), describe(e))
			if e.Kind == w.Kind && e.Kind != EvTimeout {
				r.Detail += payloadDiff(w.Data, e.Data)
			}
			return &r
		}
	}
	return nil
}

func payloadDiff(want, got []byte) string {
	if len(want) != len(got) {
		return fmt.Sprintf(" (%d bytes, want %d)", len(got), len(want))
	}
	for i := range want {
		if want[i] != got[i] {
			return fmt.Sprintf(" (differs at byte %d)", i)
		}
	}
	return ""
}

// Echo expects the wanted events in order, then closes the link normally.
func (t *T) Echo(wants ...Want) Result {
	if r := t.expect(wants...); r != nil {
		return *r
	}
	return t.CloseNormally()
}

// CloseNormally starts the closing handshake with 1000 and expects it
// completed: the implementation answers with a close (1000 or no code) and,
// as a server, then closes TCP.
func (t *T) CloseNormally() Result {
	return t.closeWith(Close(1000, ""), []int{1000, 1005})
}

// closeWith sends a close frame and expects the implementation's close
// answer with one of codes, then the end of the link.
func (t *T) closeWith(f Frame, codes []int) Result {
	t.Send(f)
	e := t.Next()
	switch e.Kind {
	case EvClose:
		if !slices.Contains(codes, e.Code) {
			return failed("answered the close with %s, want %s", describe(e), codeList(codes))
		}
		return t.afterClose(OK, "")
	case EvEOF, EvReset:
		return failed("%s instead of answering the close frame", describe(e))
	case EvViolation:
		return failed("%s", e)
	}
	return failed("expected the close answer, got %s", describe(e))
}

// afterClose finishes a link once both close frames went: the
// implementation must send nothing more and close TCP (awaitTCPClose).
func (t *T) afterClose(v Verdict, detail string) Result {
	e := t.awaitTCPClose()
	switch e.Kind {
	case EvEOF, EvReset, EvTimeout:
		return Result{Verdict: v, Detail: detail}
	}
	return failed("after the closing handshake: %s", describe(e))
}

// awaitTCPClose waits, once both close frames went, for the implementation
// to close TCP, and records how that went in t.closing. RFC 6455 section
// 7.1.1: the server closes TCP first, "immediately" after the handshake;
// the client waits for that and may close it itself after a while. So as
// the server the peer closes its side (a FIN) at once. As the client it
// waits Options.CloseWait and then closes TCP itself, as Autobahn does
// (which calls that closing behaviour FAILED BY CLIENT). It returns the
// event that ended the wait: EvEOF or EvReset, EvTimeout, or whatever else
// the implementation sent after its close.
func (t *T) awaitTCPClose() Event {
	done := t.p.handshakeDone()
	if done.IsZero() {
		done = time.Now()
	}
	if t.target == TargetClient {
		t.p.closeWrite()
	}
	e := t.NextWithin(max(time.Until(done.Add(t.opts.CloseWait)), 0))
	switch e.Kind {
	case EvEOF, EvReset:
		t.closing = Closing{Measured: true, After: max(e.At.Sub(done), 0)}
	case EvTimeout:
		t.closing = Closing{Measured: true, After: t.opts.CloseWait, Dropped: true}
	}
	return e
}

func join(a, b string) string {
	if a == "" {
		return b
	}
	return a + "; " + b
}

func codeList(codes []int) string {
	var s []string
	for _, c := range codes {
		if c == 1005 {
			s = append(s, "none")
		} else {
			s = append(s, fmt.Sprint(c))
		}
	}
	return strings.Join(s, " or ")
}

// failSpec says how a case expects the implementation to fail the link.
type failSpec struct {
	codes []int // acceptable close codes
	// wrongCodeFails makes another close code FAILED rather than
	// NON-STRICT (the close-handling cases, where the code is the point).
	wrongCodeFails bool
}

// ExpectFail expects the link to be failed (RFC 6455 section 7.1.7): a close
// with one of codes or without a code (answered by the peer), or TCP closed
// without one. A different close code is NON-STRICT: the link was failed,
// with the wrong reason.
func (t *T) ExpectFail(codes ...int) Result {
	return t.expectFail(failSpec{codes: codes})
}

// ExpectFailStrict is ExpectFail where a wrong close code is FAILED.
func (t *T) ExpectFailStrict(codes ...int) Result {
	return t.expectFail(failSpec{codes: codes, wrongCodeFails: true})
}

func (t *T) expectFail(s failSpec) Result {
	e := t.Next()
	for e.Kind == EvViolation && strings.HasPrefix(e.Detail, "a close frame with a 1-byte payload") {
		// Reported with the close event that follows.
		e = t.Next()
	}
	switch e.Kind {
	case EvClose:
		// Answer the close as RFC 6455 section 5.5.1 asks, unless it
		// answered the peer's.
		switch {
		case t.p.sentClose():
		case SendableCode(e.Code):
			t.Send(Close(e.Code, ""))
		default:
			t.Send(Close(1002, ""))
		}
		if e.Code != 1005 && (!SendableCode(e.Code) || !validUTF8(e.Data)) {
			return failed("failed the link with an invalid close frame: %s", describe(e))
		}
		// A close without a code is allowed: the code is a MAY
		// (RFC 6455 section 5.5.1), as Autobahn has it.
		if e.Code != 1005 && !slices.Contains(s.codes, e.Code) {
			if s.wrongCodeFails {
				return failed("closed with %d, want %s", e.Code, codeList(s.codes))
			}
			return t.afterClose(NonStrict, fmt.Sprintf("failed the link with %d where RFC 6455 section 7.4.1 names %s", e.Code, codeList(s.codes)))
		}
		return t.afterClose(OK, "")
	case EvEOF, EvReset:
		// Dropping TCP is how section 7.1.7 fails a link; the close
		// frame before it is a MAY.
		return ok()
	case EvTimeout:
		return failed("the link was not failed: nothing arrived")
	case EvViolation:
		return failed("%s", e)
	}
	return failed("the link should have been failed, got %s", describe(e))
}

func validUTF8(closePayload []byte) bool {
	if len(closePayload) < 2 {
		return true
	}
	return utf8.Valid(closePayload[2:])
}
