package lws

import (
	"context"
	"errors"
	"net"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// closeWithin is how soon a failed link's TCP connection must close once
// the closing handshake is over (issue 13 item 3). libwebsockets alone
// waits 5 s for a close answer it does not see after some protocol errors,
// or that never comes when the peer's close came first.
const closeWithin = 100 * time.Millisecond

// badFrame is a frame that makes the other end fail the link.
type badFrame struct {
	name string
	op   byte
	rsv  byte // RSV bits, as in the first header byte (0x40 is RSV1)
	data []byte
}

// closes reports whether the bad frame is itself a close frame: the
// failing end's close then answers it, and nothing more is sent.
func (f badFrame) closes() bool { return f.op == 0x8 }

// encode returns the frame, masked when the sender is a client.
func (f badFrame) encode(client bool) []byte {
	var b []byte
	if client {
		b = clientFrame(true, false, f.op, f.data)
	} else {
		b = serverFrame(true, false, f.op, f.data)
	}
	b[0] |= f.rsv
	return b
}

// badFrames are the ways a peer gets a link failed: by libwebsockets'
// frame parser (reserved bits and opcodes, a long control frame, a
// continuation of nothing), by the binding (a close frame that may not be
// echoed, text that is not UTF-8, a message over the limit).
var badFrames = []badFrame{
	{name: "RSV1 without an extension", op: 0x1, rsv: 0x40, data: []byte("Hello, world!")},
	{name: "RSV2 and RSV3", op: 0x2, rsv: 0x30, data: []byte{0, 1, 2}},
	{name: "RSV on a ping", op: 0x9, rsv: 0x60, data: []byte("ping")},
	{name: "reserved opcode 3", op: 0x3, data: []byte("x")},
	{name: "reserved control opcode 11", op: 0xb, data: []byte("x")},
	{name: "ping of 126 bytes", op: 0x9, data: make([]byte, 126)},
	{name: "continuation of nothing", op: 0x0, data: []byte("x")},
	{name: "text not UTF-8", op: 0x1, data: []byte("ok \xed\xa0\x80")},
	{name: "message over the limit", op: 0x2, data: make([]byte, 2048)},
	{name: "close with a 1-byte payload", op: 0x8, data: []byte{0x03}},
	{name: "close code 0", op: 0x8, data: []byte{0, 0}},
	{name: "close code 1005", op: 0x8, data: []byte{0x03, 0xed}},
	{name: "close code 2999", op: 0x8, data: []byte{0x0b, 0xb7}},
	{name: "close reason not UTF-8", op: 0x8, data: []byte{0x03, 0xe8, 0xce, 0xba, 0xe1, 0xbd, 0xb9, 0xed, 0xa0, 0x80}},
}

// closeAfterHandshake plays the peer's side of the end of a failed link
// on nc: it reads the failing end's close frame, answers it (unless the
// peer's own bad frame was a close), and returns how long the failing end
// then took to close TCP, or an error if it had not after hangWait. A
// failing end may also drop TCP without a close frame: the time then runs
// from the bad frame.
func closeAfterHandshake(w *rawPeer, f badFrame, sent time.Time, client bool) (time.Duration, error) {
	const hangWait = 3 * time.Second
	_ = w.nc.SetReadDeadline(time.Now().Add(hangWait))
	start := sent
	for {
		_, _, op, p, err := w.read()
		if err != nil {
			return time.Since(start), closedErr(err)
		}
		if op != 0x8 {
			continue
		}
		start = time.Now()
		if !f.closes() {
			answer := p[:min(len(p), 2)]
			var b []byte
			if client {
				b = clientFrame(true, false, 0x8, answer)
			} else {
				b = serverFrame(true, false, 0x8, answer)
			}
			if _, err := w.nc.Write(b); err != nil {
				return 0, err
			}
			start = time.Now()
		}
		break
	}
	for {
		if _, _, _, _, err := w.read(); err != nil {
			return time.Since(start), closedErr(err)
		}
	}
}

// closedErr is nil for the end of a connection the other end closed, and
// err for a read that timed out.
func closedErr(err error) error {
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return errors.New("TCP still open")
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return err
	}
	return nil // EOF, or a reset
}

// TestFailedLinkClosesTCP: a server that fails a link closes TCP at once
// once its close frame is out, rather than after libwebsockets' 5 s wait
// for a close answer (Autobahn 3.x, 7.3.2, 7.5.1, 7.9.x: "failed by
// client").
func TestFailedLinkClosesTCP(t *testing.T) {
	rec := newRecorder()
	_, addr := hostileServer(t, Listener{Name: "edge", Handler: rec, MaxMessageSize: 1024})
	for _, f := range badFrames {
		t.Run(f.name, func(t *testing.T) {
			ws := dialRawWS(t, addr)
			waitFor(t, rec.opens, "OnOpen")
			w := &rawPeer{nc: ws.nc, br: ws.br}
			w.write(t, f.encode(true))
			took, err := closeAfterHandshake(w, f, time.Now(), true)
			require.NoError(t, err)
			t.Logf("TCP closed %v after the closing handshake", took)
			assert.Less(t, took, closeWithin)
			waitFor(t, rec.closes, "OnClose")
		})
	}
	healthy(t, addr)
}

// TestDialFailedLinkClosesTCP is TestFailedLinkClosesTCP for a dialled
// link: the client closes TCP at once once its close frame is out, even
// when the server answers it and leaves TCP open.
func TestDialFailedLinkClosesTCP(t *testing.T) {
	c := newClientContext(t, quickClose)
	for _, f := range badFrames {
		t.Run(f.name, func(t *testing.T) {
			type result struct {
				took time.Duration
				err  error
			}
			res := make(chan result, 1)
			url := rawServer(t, "", func(w *rawPeer) {
				if _, err := w.nc.Write(f.encode(false)); err != nil {
					res <- result{err: err}
					return
				}
				took, err := closeAfterHandshake(w, f, time.Now(), false)
				res <- result{took, err}
			})
			s := newSink()
			_, err := c.Dial(context.Background(), url, &DialOptions{Handler: s, MaxMessageSize: 1024})
			require.NoError(t, err)
			r := waitFor(t, res, "the end of the link")
			require.NoError(t, r.err)
			t.Logf("TCP closed %v after the closing handshake", r.took)
			assert.Less(t, r.took, closeWithin)
			s.waitClose(t)
		})
	}
}
