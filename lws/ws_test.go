package lws

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/lwsgate/lwsgate/cgo"
	"github.com/lwsgate/lwsgate/internal/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestEchoSizes(t *testing.T) {
	_, addr := startServer(t, Listener{Handler: EchoHandler{}, MaxMessageSize: 16<<20 + 1})
	ws := dial(t, addr, nil)
	for _, n := range []int{0, 125, 126, 64 << 10, 16 << 20} {
		for _, typ := range []int{websocket.BinaryMessage, websocket.TextMessage} {
			msg := bytes.Repeat([]byte("abcdefghij"), n/10+1)[:n]
			require.NoError(t, ws.WriteMessage(typ, msg))
			gt, got, err := ws.ReadMessage()
			require.NoError(t, err, "size %d", n)
			assert.Equal(t, typ, gt, "size %d", n)
			assert.True(t, bytes.Equal(msg, got), "size %d: echo differs (got %d bytes)", n, len(got))
		}
	}
}

// --- helpers -----------------------------------------------------------

// --- messages ----------------------------------------------------------

func TestFragmentedMessagesReassembled(t *testing.T) {
	_, addr := startServer(t, Listener{Handler: EchoHandler{}})
	var tap *frameTap
	ws, _, err := dialWith(t, tappedDialer(&tap), addr, "/", nil)
	require.NoError(t, err)

	for _, typ := range []int{websocket.TextMessage, websocket.BinaryMessage} {
		msg := bytes.Repeat([]byte("0123456789abcdef"), 300) // 4800 bytes
		before := len(tap.seen())
		require.NoError(t, writeFragmented(ws, typ, msg, 100))
		frames := tap.seen()[before:]
		// The client really sent fragments: a first frame with the
		// message's opcode and FIN clear, continuations, and a final FIN.
		require.Greater(t, len(frames), 2, "message was not fragmented: %+v", frames)
		assert.Equal(t, byte(typ), frames[0].op)
		assert.False(t, frames[0].fin)
		for _, f := range frames[1:] {
			assert.Equal(t, byte(0), f.op, "continuation opcode")
		}
		assert.True(t, frames[len(frames)-1].fin)

		gt, got, err := ws.ReadMessage()
		require.NoError(t, err)
		assert.Equal(t, typ, gt, "echoed message type")
		assert.True(t, bytes.Equal(msg, got), "reassembled message differs (%d bytes)", len(got))
	}
}

func TestInvalidUTF8Closes1007(t *testing.T) {
	bad := []byte{'o', 'k', 0xff, 0xfe, 'x'}
	t.Run("validated", func(t *testing.T) {
		rec := newRecorder()
		_, addr := startServer(t, Listener{Handler: rec})
		ws := dial(t, addr, nil)
		require.NoError(t, ws.WriteMessage(websocket.TextMessage, bad))
		ce := readClose(t, ws)
		assert.Equal(t, websocket.CloseInvalidFramePayloadData, ce.Code)
		// libwebsockets rejects the frame itself and never tells the
		// binding why (OnClose sees 1006): only the wire is checked.
		waitFor(t, rec.closes, "OnClose")
	})
	t.Run("binary is not validated", func(t *testing.T) {
		_, addr := startServer(t, Listener{Handler: EchoHandler{}})
		ws := dial(t, addr, nil)
		require.NoError(t, ws.WriteMessage(websocket.BinaryMessage, bad))
		typ, got, err := ws.ReadMessage()
		require.NoError(t, err)
		assert.Equal(t, websocket.BinaryMessage, typ)
		assert.Equal(t, bad, got)
	})
	t.Run("DisableUTF8Validation", func(t *testing.T) {
		_, addr := startServer(t, Listener{Handler: EchoHandler{}}, func(c *Config) { c.DisableUTF8Validation = true })
		ws := dial(t, addr, nil)
		require.NoError(t, ws.WriteMessage(websocket.TextMessage, bad))
		typ, got, err := ws.ReadMessage()
		require.NoError(t, err)
		assert.Equal(t, websocket.TextMessage, typ)
		assert.Equal(t, bad, got)
	})
}

func TestMaxMessageSize(t *testing.T) {
	const limit = 1024
	t.Run("at limit accepted", func(t *testing.T) {
		_, addr := startServer(t, Listener{Handler: EchoHandler{}, MaxMessageSize: limit})
		ws := dial(t, addr, nil)
		msg := bytes.Repeat([]byte{'a'}, limit)
		require.NoError(t, ws.WriteMessage(websocket.BinaryMessage, msg))
		_, got, err := ws.ReadMessage()
		require.NoError(t, err)
		assert.Equal(t, msg, got)
	})
	t.Run("one frame over", func(t *testing.T) {
		rec := newRecorder()
		_, addr := startServer(t, Listener{Handler: rec, MaxMessageSize: limit})
		ws := dial(t, addr, nil)
		require.NoError(t, ws.WriteMessage(websocket.BinaryMessage, make([]byte, limit+1)))
		assert.Equal(t, websocket.CloseMessageTooBig, readClose(t, ws).Code)
		ev := waitFor(t, rec.closes, "OnClose")
		assert.Equal(t, StatusMessageTooBig, ev.ce.Code)
	})
	t.Run("fragmented over", func(t *testing.T) {
		rec := newRecorder()
		_, addr := startServer(t, Listener{Handler: rec, MaxMessageSize: limit})
		var tap *frameTap
		ws, _, err := dialWith(t, tappedDialer(&tap), addr, "/", nil)
		require.NoError(t, err)
		// Every fragment is under the limit; only their sum is over.
		_ = writeFragmented(ws, websocket.BinaryMessage, make([]byte, 4*limit), 100)
		for _, f := range tap.seen() {
			require.Less(t, f.n, limit, "a single fragment is over the limit")
		}
		require.Greater(t, len(tap.seen()), 4)
		assert.Equal(t, websocket.CloseMessageTooBig, readClose(t, ws).Code)
		ev := waitFor(t, rec.closes, "OnClose")
		assert.Equal(t, StatusMessageTooBig, ev.ce.Code)
	})
}

// --- closing -----------------------------------------------------------

func TestCloseFromClient(t *testing.T) {
	rec := newRecorder()
	_, addr := startServer(t, Listener{Handler: rec})
	ws := dial(t, addr, nil)
	waitFor(t, rec.opens, "OnOpen")
	require.NoError(t, ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(4001, "bye"), time.Now().Add(5*time.Second)))
	ev := waitFor(t, rec.closes, "OnClose")
	assert.Equal(t, CloseError{Code: 4001, Reason: "bye", Local: false}, ev.ce)
	// lws answers the close frame.
	assert.Equal(t, 4001, readClose(t, ws).Code)
}

func TestCloseFromServer(t *testing.T) {
	rec := newRecorder()
	_, addr := startServer(t, Listener{Handler: rec})
	ws := dial(t, addr, nil)
	c := waitFor(t, rec.opens, "OnOpen")
	require.NoError(t, c.Close(4002, "srv"))
	ce := readClose(t, ws)
	assert.Equal(t, 4002, ce.Code)
	assert.Equal(t, "srv", ce.Text)
	ev := waitFor(t, rec.closes, "OnClose")
	assert.Equal(t, CloseError{Code: 4002, Reason: "srv", Local: true}, ev.ce)
	// A second Close is refused: the link is closed.
	assert.ErrorIs(t, c.Close(1000, ""), ErrClosed)
}

func TestAbruptCloseIs1006Once(t *testing.T) {
	rec := newRecorder()
	ctx, addr := startServer(t, Listener{Handler: rec})
	ws := dial(t, addr, nil)
	c := waitFor(t, rec.opens, "OnOpen")
	echo(t, ws, "hi")
	require.NoError(t, ws.UnderlyingConn().Close()) // no close frame
	ev := waitFor(t, rec.closes, "OnClose")
	assert.Equal(t, StatusAbnormalClosure, ev.ce.Code)
	assert.Equal(t, c.ID(), ev.c.ID())
	// Once the context is gone no callback can still come: count them.
	require.NoError(t, ctx.Close())
	assert.Equal(t, 1, rec.closeCount(c.ID()))
	assert.Empty(t, rec.closes)
}

func TestCloseInvalidCode(t *testing.T) {
	rec := newRecorder()
	_, addr := startServer(t, Listener{Handler: rec})
	ws := dial(t, addr, nil)
	c := waitFor(t, rec.opens, "OnOpen")
	for _, code := range []StatusCode{1005, 1006, 999, 1015, 1004, 2999, 5000} {
		assert.ErrorIs(t, c.Close(code, "x"), ErrInvalidCloseCode, "code %d", code)
	}
	// The link is still usable.
	echo(t, ws, "still open")
}

func TestSendAfterClose(t *testing.T) {
	rec := newRecorder()
	_, addr := startServer(t, Listener{Handler: rec})
	ws := dial(t, addr, nil)
	c := waitFor(t, rec.opens, "OnOpen")
	require.NoError(t, ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(4001, "bye"), time.Now().Add(5*time.Second)))
	waitFor(t, rec.closes, "OnClose")
	err := c.Send(TextMessage, []byte("late"))
	require.Error(t, err)
	assert.ErrorIs(t, err, ErrClosed)
	assert.Equal(t, StatusCode(4001), CloseStatus(err))
	assert.ErrorIs(t, c.SendText("late"), ErrClosed)
	assert.Zero(t, c.Queued())
}

// --- concurrency -------------------------------------------------------

func TestManyLinks(t *testing.T) {
	if testing.Short() {
		t.Skip("1,000 links: skipped with -short")
	}
	const links, msgs = 1000, 100
	var opened, closed atomic.Int64
	// All links come from 127.0.0.1: lift the per-address cap.
	ctx, addr := startServer(t, Listener{Handler: EchoHandler{}, MaxLinksPerIP: -1}, func(c *Config) {
		c.OnLinkOpen = func(Link) { opened.Add(1) }
		c.OnLinkClose = func(Link, CloseError) { closed.Add(1) }
	})
	conns := make([]*websocket.Conn, links)
	var wg sync.WaitGroup
	sem := make(chan struct{}, 64) // bound concurrent handshakes
	errs := make(chan error, links)
	for i := range conns {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			d := websocket.Dialer{HandshakeTimeout: hangTimeout, ReadBufferSize: 1024, WriteBufferSize: 1024}
			ws, resp, err := d.Dial("ws://"+addr+"/", nil)
			if resp != nil && resp.Body != nil {
				resp.Body.Close()
			}
			if err != nil {
				errs <- fmt.Errorf("dial %d: %w", i, err)
				return
			}
			conns[i] = ws
		}()
	}
	wg.Wait()
	t.Cleanup(func() {
		for _, ws := range conns {
			if ws != nil {
				ws.Close()
			}
		}
	})
	require.Empty(t, errs)
	// All links are open at once: exchange on every one concurrently.
	for i, ws := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = ws.SetReadDeadline(time.Now().Add(60 * time.Second))
			_ = ws.SetWriteDeadline(time.Now().Add(60 * time.Second))
			go func() {
				for j := 0; j < msgs; j++ {
					if err := ws.WriteMessage(websocket.TextMessage, fmt.Appendf(nil, "link %d msg %d", i, j)); err != nil {
						return
					}
				}
			}()
			for j := 0; j < msgs; j++ {
				_, got, err := ws.ReadMessage()
				if err != nil {
					errs <- fmt.Errorf("link %d read %d: %w", i, j, err)
					return
				}
				if want := fmt.Sprintf("link %d msg %d", i, j); string(got) != want {
					errs <- fmt.Errorf("link %d: got %q, want %q", i, got, want)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		assert.NoError(t, err)
	}
	for _, ws := range conns {
		_ = ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(1000, ""), time.Now().Add(5*time.Second))
	}
	require.NoError(t, ctx.Close())
	assert.Equal(t, int64(links), opened.Load())
	assert.Equal(t, int64(links), closed.Load())
}

// payloadFor is the deterministic message seq of sender g.
func payloadFor(g, seq int) []byte {
	b := fmt.Appendf(nil, "%02d:%06d:", g, seq)
	n := (seq*7 + g*13) % 300
	for i := 0; i < n; i++ {
		b = append(b, byte('a'+(g+seq+i)%26))
	}
	return b
}

func TestConcurrentSendOneLink(t *testing.T) {
	const senders, each = 50, 200
	rec := newRecorder()
	_, addr := startServer(t, Listener{Handler: rec, MaxSendQueue: 64 << 20})
	ws := dial(t, addr, nil)
	c := waitFor(t, rec.opens, "OnOpen")

	start := make(chan struct{})
	sendErrs := make(chan error, senders)
	var wg sync.WaitGroup
	for g := 0; g < senders; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			for i := 0; i < each; i++ {
				if err := c.Send(BinaryMessage, payloadFor(g, i)); err != nil {
					sendErrs <- fmt.Errorf("sender %d msg %d: %w", g, i, err)
					return
				}
			}
		}()
	}
	close(start)

	next := make([]int, senders)
	for n := 0; n < senders*each; n++ {
		typ, got, err := ws.ReadMessage()
		require.NoError(t, err, "after %d messages", n)
		require.Equal(t, websocket.BinaryMessage, typ)
		var g, seq int
		_, err = fmt.Sscanf(string(got), "%02d:%06d:", &g, &seq)
		require.NoError(t, err, "message %q", got)
		require.True(t, g >= 0 && g < senders, "sender %d", g)
		require.Equal(t, next[g], seq, "sender %d out of order", g)
		require.Equal(t, payloadFor(g, seq), got, "sender %d msg %d corrupted", g, seq)
		next[g]++
	}
	wg.Wait()
	close(sendErrs)
	for err := range sendErrs {
		assert.NoError(t, err)
	}
	for g, n := range next {
		assert.Equal(t, each, n, "sender %d", g)
	}
}

// fillQueue sends 16 KiB messages to a client that does not read until
// Send fails, and returns how many were accepted and the error.
func fillQueue(t *testing.T, c *Conn) (int, error) {
	t.Helper()
	msg := bytes.Repeat([]byte{'q'}, 16<<10)
	// Bounded: far more than the kernel's socket buffers can absorb.
	for i := 0; i < 1<<16; i++ {
		if err := c.Send(BinaryMessage, msg); err != nil {
			return i, err
		}
	}
	require.FailNow(t, "the send queue never filled")
	return 0, nil
}

func TestSendQueueFullReject(t *testing.T) {
	rec := newRecorder()
	_, addr := startServer(t, Listener{Handler: rec, MaxSendQueue: 64 << 10})
	ws := dial(t, addr, nil)
	c := waitFor(t, rec.opens, "OnOpen")
	accepted, err := fillQueue(t, c)
	require.ErrorIs(t, err, ErrSendQueueFull)
	assert.LessOrEqual(t, c.Queued(), int64(64<<10))

	// The link stays open, and a rejected message was not queued: the
	// client gets exactly the accepted ones, then the marker.
	got := make(chan int, 1)
	go func() {
		n := 0
		for {
			typ, data, err := ws.ReadMessage()
			if err != nil || typ == websocket.TextMessage && string(data) == "end" {
				got <- n
				return
			}
			if len(data) == 16<<10 {
				n++
			}
		}
	}()
	deadline := time.Now().Add(hangTimeout)
	for {
		err := c.SendText("end")
		if err == nil {
			break
		}
		require.ErrorIs(t, err, ErrSendQueueFull)
		require.True(t, time.Now().Before(deadline), "queue never drained")
		time.Sleep(time.Millisecond)
	}
	assert.Equal(t, accepted, waitFor(t, got, "the client to read everything"))
	select {
	case ev := <-rec.closes:
		t.Fatalf("link closed: %+v", ev.ce)
	default:
	}
}

// stuffSocket sends 16 KiB messages one at a time, each once the previous
// one left the queue, until one stays queued: the kernel's socket buffers
// towards a client that does not read are then full. (The wait for the
// queue to empty only decides when to stop; it asserts nothing.)
func stuffSocket(t *testing.T, c *Conn) {
	t.Helper()
	msg := bytes.Repeat([]byte{'s'}, 16<<10)
	for i := 0; i < 1<<14; i++ { // at most 256 MiB
		require.NoError(t, c.Send(BinaryMessage, msg))
		stuck := true
		for j := 0; j < 200; j++ {
			if c.Queued() == 0 {
				stuck = false
				break
			}
			time.Sleep(time.Millisecond)
		}
		if stuck {
			return
		}
	}
	require.FailNow(t, "the socket never filled")
}

func TestSendQueueFullCloseSlowConsumer(t *testing.T) {
	for _, stuffed := range []bool{false, true} {
		t.Run(fmt.Sprintf("socket full %v", stuffed), func(t *testing.T) {
			rec := newRecorder()
			_, addr := startServer(t, Listener{Handler: rec, MaxSendQueue: 64 << 10, SlowConsumer: CloseSlowConsumer},
				func(c *Config) { c.NetworkTimeout = time.Second })
			dial(t, addr, nil) // never reads
			c := waitFor(t, rec.opens, "OnOpen")
			if stuffed {
				// Nothing more can reach the client: the close frame
				// can never be written, and the close must not wait
				// for it forever.
				stuffSocket(t, c)
			}
			_, err := fillQueue(t, c)
			require.ErrorIs(t, err, ErrSendQueueFull)
			assert.ErrorIs(t, c.SendText("more"), ErrClosed, "link not closing after the queue overflowed")
			// The client does not read, so it cannot see the close
			// frame: the server side reports it.
			ev := waitFor(t, rec.closes, "OnClose of the slow consumer")
			assert.Equal(t, StatusPolicyViolation, ev.ce.Code)
			assert.True(t, ev.ce.Local)
			assert.ErrorIs(t, c.SendText("more"), ErrClosed)
		})
	}
}

func TestHandlerPanicClosesOnlyItsLink(t *testing.T) {
	rec := newRecorder()
	rec.message = func(c *Conn, typ MessageType, data []byte) {
		if string(data) == "boom" {
			panic("boom")
		}
		_ = c.Send(typ, data)
	}
	_, addr := startServer(t, Listener{Handler: rec})
	a := dial(t, addr, nil)
	ca := waitFor(t, rec.opens, "OnOpen a")
	b := dial(t, addr, nil)
	waitFor(t, rec.opens, "OnOpen b")
	echo(t, a, "a before")
	echo(t, b, "b before")

	require.NoError(t, a.WriteMessage(websocket.TextMessage, []byte("boom")))
	assert.Equal(t, websocket.CloseInternalServerErr, readClose(t, a).Code)
	ev := waitFor(t, rec.closes, "OnClose a")
	assert.Equal(t, ca.ID(), ev.c.ID())
	assert.Equal(t, StatusInternalError, ev.ce.Code)

	for i := 0; i < 10; i++ {
		echo(t, b, fmt.Sprintf("b after %d", i))
	}
}

// --- handshake ---------------------------------------------------------

func TestSubprotocols(t *testing.T) {
	rec := newRecorder()
	_, addr := startServer(t, Listener{Handler: rec, Subprotocols: []string{"lws-gate"}})

	t.Run("offered", func(t *testing.T) {
		ws, _, err := dialWith(t, &websocket.Dialer{Subprotocols: []string{"other", "lws-gate"}}, addr, "/", nil)
		require.NoError(t, err)
		assert.Equal(t, "lws-gate", ws.Subprotocol())
		c := waitFor(t, rec.opens, "OnOpen")
		assert.Equal(t, "lws-gate", c.Link().Subprotocol)
		echo(t, ws, "sub")
	})
	t.Run("none", func(t *testing.T) {
		ws, _, err := dialWith(t, &websocket.Dialer{}, addr, "/", nil)
		require.NoError(t, err)
		assert.Equal(t, "", ws.Subprotocol())
		c := waitFor(t, rec.opens, "OnOpen")
		assert.Equal(t, "", c.Link().Subprotocol)
	})
	t.Run("unknown only", func(t *testing.T) {
		ws, _, err := dialWith(t, &websocket.Dialer{Subprotocols: []string{"unknown"}}, addr, "/", nil)
		require.Error(t, err, "handshake with only an unknown subprotocol succeeded")
		assert.Nil(t, ws)
		select {
		case c := <-rec.opens:
			t.Fatalf("link %d opened", c.ID())
		default:
		}
	})
}

func TestUpgradeRequest(t *testing.T) {
	rec := newRecorder()
	_, addr := startServer(t, Listener{Handler: rec, ExtraHeaders: []string{"X-Token"}})
	ws, _, err := dialWith(t, &websocket.Dialer{}, addr, "/v1/stream?room=7", http.Header{
		"X-Token":    {"abc"},
		"User-Agent": {"lwsgate-test"},
	})
	require.NoError(t, err)
	c := waitFor(t, rec.opens, "OnOpen")
	req := c.Request()
	require.NotNil(t, req)
	assert.Equal(t, "GET", req.Method)
	assert.Equal(t, "/v1/stream", req.Path)
	assert.Equal(t, "room=7", req.RawQuery)
	assert.Equal(t, "abc", req.Header().Get("X-Token"))
	assert.Equal(t, "lwsgate-test", req.Header().Get("User-Agent"))
	assert.True(t, strings.EqualFold(req.Header().Get("Upgrade"), "websocket"), "Upgrade: %q", req.Header().Get("Upgrade"))
	assert.Equal(t, c.ID(), req.LinkID)
	assert.Equal(t, "/v1/stream", c.Link().Path)
	assert.Equal(t, LinkWebSocket, c.Link().Kind)
	assert.Equal(t, ws.LocalAddr().String(), c.RemoteAddr().String())
}

// TestRemoteAddrIPv6: an IPv6 link and request report the client's own
// address, port included (since 971b3f3 taken from FILTER_NETWORK_CONNECTION's
// data, an IPv6 address then the port in network order).
func TestRemoteAddrIPv6(t *testing.T) {
	if l, err := net.Listen("tcp6", "[::1]:0"); err != nil {
		t.Skip("no IPv6 loopback:", err)
	} else {
		l.Close()
	}
	rec := newRecorder()
	var remote atomic.Value
	_, addr := startServer(t, Listener{Addr: "[::1]:0", Handler: rec, Accept: AcceptWebSocket | AcceptHTTP,
		HTTPHandler: HTTPHandlerFunc(func(w *ResponseWriter, r *Request) {
			remote.Store(r.Remote.String())
			_ = w.Respond(http.StatusNoContent, nil)
		})})
	ws, _, err := dialWith(t, &websocket.Dialer{}, addr, "/", nil)
	require.NoError(t, err)
	c := waitFor(t, rec.opens, "OnOpen")
	assert.Equal(t, ws.LocalAddr().String(), c.RemoteAddr().String())
	assert.Equal(t, ws.LocalAddr().String(), c.Request().Remote.String())

	nc, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	defer nc.Close()
	_, err = nc.Write([]byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"))
	require.NoError(t, err)
	resp, err := http.ReadResponse(bufio.NewReader(nc), nil)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusNoContent, resp.StatusCode)
	assert.Equal(t, nc.LocalAddr().String(), remote.Load())
}

// A link keeps its upgrade request's bytes, not the parsed Request: the
// one OnOpen sees is let go when OnOpen returns, and Request parses it
// again, once, when asked later, from any goroutine.
func TestUpgradeRequestAfterOpen(t *testing.T) {
	type open struct {
		c   *Conn
		req *Request
	}
	opens := make(chan open, 1)
	ctx, addr := startServer(t, Listener{Handler: HandlerFuncs{Open: func(c *Conn) {
		r1 := c.Request()
		assert.Same(t, r1, c.Request(), "during OnOpen: one Request")
		opens <- open{c, r1}
	}}, ExtraHeaders: []string{"X-Token"}})
	_, _, err := dialWith(t, &websocket.Dialer{}, addr, "/v1/stream?room=7", http.Header{"X-Token": {"abc"}})
	require.NoError(t, err)
	o := waitFor(t, opens, "OnOpen")
	require.NotNil(t, o.req)
	assert.Equal(t, int64(-1), o.req.ContentLength)
	// OnOpen sent o before it returned: wait until it has (Do runs
	// after the callback on the service goroutine), or a Request asked
	// for meanwhile is still OnOpen's.
	require.NoError(t, ctx.Do(func() {}))

	var wg sync.WaitGroup
	got := make([]*Request, 8)
	for i := range got {
		wg.Add(1)
		go func() { defer wg.Done(); got[i] = o.c.Request() }()
	}
	wg.Wait()
	for _, r := range got {
		require.Same(t, got[0], r, "after OnOpen: parsed once, then kept")
	}
	after := got[0]
	assert.NotSame(t, o.req, after)
	assert.Equal(t, "abc", after.Header().Get("X-Token"))
	o.req.Header() // both maps made, for the comparison
	assert.Equal(t, o.req, after)
	assert.Equal(t, "room=7", after.RawQuery)
	assert.Equal(t, o.c.ID(), after.LinkID)
	assert.Equal(t, o.c.RemoteAddr(), after.Remote)
}

// Each WebSocket link's receive buffer is a slot of the shim's pool
// (cgo/rxpool.c): taken at the upgrade, written by messages of every size
// up to a whole buffer, and given back when the link ends.
func TestRxBufferPool(t *testing.T) {
	base := cgo.PooledRxBuffers()
	ctx, addr := startServer(t, Listener{Handler: newRecorder(), MaxMessageSize: 1 << 20})
	var wss []*websocket.Conn
	for range 3 {
		ws, _, err := dialWith(t, &websocket.Dialer{}, addr, "/", nil)
		require.NoError(t, err)
		wss = append(wss, ws)
	}
	want := base + 3
	if !cgo.RxPoolEnabled() {
		// make asan: the buffers are malloc's; the echoes still count.
		want = 0
	}
	require.Eventually(t, func() bool { return cgo.PooledRxBuffers() == want }, 5*time.Second, 10*time.Millisecond,
		"pooled buffers: %d, want %d", cgo.PooledRxBuffers(), want)
	for i, ws := range wss {
		for _, n := range []int{1, 4096, 64 << 10, 200 << 10} {
			msg := bytes.Repeat([]byte{byte('a' + i)}, n)
			require.NoError(t, ws.WriteMessage(websocket.BinaryMessage, msg))
			_, got, err := ws.ReadMessage()
			require.NoError(t, err)
			require.Equal(t, msg, got, "link %d, %d bytes", i, n)
		}
	}
	for _, ws := range wss {
		ws.Close()
	}
	require.Eventually(t, func() bool { return cgo.PooledRxBuffers() == base }, 5*time.Second, 10*time.Millisecond,
		"pooled buffers: %d, want %d", cgo.PooledRxBuffers(), base)
	require.NoError(t, ctx.Close())
}

func TestLinkHooksOncePerLink(t *testing.T) {
	rec := newRecorder()
	var mu sync.Mutex
	opens, closes := map[uint64]int{}, map[uint64]int{}
	ctx, addr := startServer(t, Listener{Handler: rec}, func(c *Config) {
		c.OnLinkOpen = func(l Link) {
			mu.Lock()
			opens[l.ID]++
			mu.Unlock()
		}
		c.OnLinkClose = func(l Link, ce CloseError) {
			mu.Lock()
			closes[l.ID]++
			mu.Unlock()
		}
	})
	var ws [4]*websocket.Conn
	var conns [4]*Conn
	ids := map[uint64]bool{}
	for i := range ws {
		ws[i] = dial(t, addr, nil)
		conns[i] = waitFor(t, rec.opens, "OnOpen")
		ids[conns[i].ID()] = true
	}
	require.Len(t, ids, len(ws), "link IDs are not unique")
	// Each link ends differently: client close, abrupt, server close, and
	// one left for the context's Close.
	require.NoError(t, ws[0].WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(1000, ""), time.Now().Add(5*time.Second)))
	require.NoError(t, ws[1].UnderlyingConn().Close())
	require.NoError(t, conns[2].Close(1000, "srv"))
	assert.Equal(t, 1000, readClose(t, ws[2]).Code)
	for i := 0; i < 3; i++ {
		waitFor(t, rec.closes, "OnClose")
	}
	go func() { _, _, _ = ws[3].ReadMessage() }() // answer the 1001
	require.NoError(t, ctx.Close())

	mu.Lock()
	defer mu.Unlock()
	assert.Len(t, opens, len(ws))
	assert.Len(t, closes, len(ws))
	for id := range ids {
		assert.Equal(t, 1, opens[id], "OnLinkOpen of %d", id)
		assert.Equal(t, 1, closes[id], "OnLinkClose of %d", id)
		assert.Equal(t, 1, rec.closeCount(id), "OnClose of %d", id)
	}
}

// TestSendWakesIdleService pushes from the server with no client traffic:
// every Send must wake the service goroutine, including right after work
// queued from a Do function (which runs outside any callback).
func TestSendWakesIdleService(t *testing.T) {
	rec := newRecorder()
	ctx, addr := startServer(t, Listener{Handler: rec})
	ws := dial(t, addr, nil)
	c := waitFor(t, rec.opens, "OnOpen")
	for i := 0; i < 20; i++ {
		var err error
		require.NoError(t, ctx.Do(func() { err = c.SendText(fmt.Sprint("from Do ", i)) }))
		require.NoError(t, err)
		_, got, err := ws.ReadMessage()
		require.NoError(t, err)
		require.Equal(t, fmt.Sprint("from Do ", i), string(got))
		// Nothing else happens on the network now: only the wake-up
		// can get this out.
		require.NoError(t, c.SendText(fmt.Sprint("pushed ", i)))
		_, got, err = ws.ReadMessage()
		require.NoError(t, err, "push %d never arrived: lost wake-up", i)
		require.Equal(t, fmt.Sprint("pushed ", i), string(got))
	}
}

// TestBatchedWrites: a burst of messages of every header size, text and
// binary, empty and too large to batch, queued at once, arrives whole and
// in order; and runs of small ones went out as batches (one send each).
func TestBatchedWrites(t *testing.T) {
	sizes := []int{0, 1, 125, 126, 127, 1000, 0xffff, 0x10000, batchFrameMax, batchFrameMax + 1, 70000, 3}
	msg := func(i int) (MessageType, []byte) {
		n := sizes[i%len(sizes)]
		p := make([]byte, n)
		for j := range p {
			p[j] = byte('a' + (i+j)%26)
		}
		if i%2 == 0 {
			return TextMessage, p
		}
		return BinaryMessage, p
	}
	const total = 600
	ctx, addr := startServer(t, Listener{MaxSendQueue: 256 << 20, Handler: HandlerFuncs{Open: func(c *Conn) {
		for i := range total {
			typ, p := msg(i)
			if err := c.Send(typ, p); err != nil {
				t.Errorf("Send %d: %v", i, err)
				return
			}
		}
	}}})
	ws := dial(t, addr, nil)
	ws.SetReadLimit(1 << 20)
	for i := range total {
		typ, got, err := ws.ReadMessage()
		require.NoError(t, err, "message %d", i)
		wantTyp, want := msg(i)
		require.Equal(t, int(wantTyp), typ, "message %d type", i)
		require.Equal(t, want, got, "message %d (%d bytes)", i, len(want))
	}
	var batches uint64
	require.NoError(t, ctx.Do(func() { batches = ctx.tx.batches }))
	assert.Positive(t, batches, "no batched write was made")
}

// TestEchoOnePassPerMessage: an echo of a message that arrives alone costs
// one lws_service pass more than what reading it costs, not two: the
// WRITEABLE callback the RECEIVE asked for is delivered right after the
// pass (writeNow), not by another wait that returns at once with the
// socket writable. On poll a pass is a poll(2) of every open descriptor:
// 400 passes for 200 echoes before, 200-202 after. On libev a pass is one
// epoll wait, and lws' libev plugin adds one after each event (its idle
// watcher) whatever the binding does: 544-602 before, 341-401 after, and
// the two epoll_ctl of a WRITEABLE that waits for epoll are saved too
// (see EventLoopLibev).
func TestEchoOnePassPerMessage(t *testing.T) {
	for _, tc := range []struct {
		loop EventLoop
		max  uint64 // passes per 2 echoes
	}{{EventLoopPoll, 3}, {EventLoopLibev, 5}} {
		t.Run(string(tc.loop), func(t *testing.T) {
			ctx, addr := startServer(t, Listener{Handler: EchoHandler{}}, func(c *Config) { c.EventLoop = tc.loop })
			ws := dial(t, addr, nil)
			passes := func() (n uint64) {
				require.NoError(t, ctx.Do(func() { n = ctx.passes }))
				return n
			}
			const msgs = 200
			before := passes()
			for i := range msgs {
				require.NoError(t, ws.WriteMessage(websocket.BinaryMessage, []byte(fmt.Sprint("m", i))))
				_, got, err := ws.ReadMessage()
				require.NoError(t, err)
				require.Equal(t, fmt.Sprint("m", i), string(got))
			}
			n := passes() - before
			t.Logf("%d passes for %d echoes", n, msgs)
			// The bound leaves room for the Do calls and other wake-ups
			// (lws timers; on 4.3 its netlink socket, which route and
			// link changes of the host wake).
			assert.LessOrEqual(t, n, msgs*tc.max/2, "a second wait per echoed message")
		})
	}
}

// TestEchoMidPass: when one pass brings the messages of many links, their
// echoes start going out before the pass has read them all (midPass, every
// 64 links on libev; see evloop.c), and every link gets its own echo.
// The service goroutine is held in a Do while 200 links send, so that the
// waits after it report many of them together. The handler notes, as each
// message arrives, the pass it arrives in and how many echoes midPass has
// written so far: two messages of one pass on either side of a hand-over
// show that echoes went out before that pass had read everything.
func TestEchoMidPass(t *testing.T) {
	type seen struct{ pass, midWrites uint64 }
	seenc := make(chan seen, 1024)
	h := HandlerFuncs{Message: func(c *Conn, typ MessageType, data []byte) {
		ctx := c.r.ctx // the service goroutine's own fields
		seenc <- seen{ctx.passes, ctx.midWrites}
		_ = c.Send(typ, data)
	}}
	ctx, addr := startServer(t, Listener{Handler: h}, func(c *Config) { c.EventLoop = EventLoopLibev })
	const links = 200
	ws := make([]*websocket.Conn, links)
	for i := range ws {
		ws[i] = dial(t, addr, nil)
	}
	held := make(chan struct{})
	go func() {
		_ = ctx.Do(func() {
			close(held)
			time.Sleep(300 * time.Millisecond)
		})
	}()
	<-held
	for i, c := range ws {
		require.NoError(t, c.WriteMessage(websocket.BinaryMessage, []byte(fmt.Sprint("m", i))))
	}
	for i, c := range ws {
		require.NoError(t, c.SetReadDeadline(time.Now().Add(5*time.Second)))
		_, got, err := c.ReadMessage()
		require.NoError(t, err)
		require.Equal(t, fmt.Sprint("m", i), string(got))
	}
	first := map[uint64]uint64{} // pass: midWrites at its first message
	within := 0                  // messages that came after a hand-over of their own pass
	for range links {
		s := <-seenc
		if w, ok := first[s.pass]; !ok {
			first[s.pass] = s.midWrites
		} else if s.midWrites > w {
			within++
		}
	}
	t.Logf("%d passes; %d messages read after a hand-over of their own pass", len(first), within)
	assert.Positive(t, within, "no echo went out before its pass had read every message")
}

// TestCloseUnanswered: a link closed by Close, whose peer never answers
// the close frame, ends within lws' own 5 s wait for the answer, not
// NetworkTimeout, wherever Close was called from. Close also bounds the
// handshake by NetworkTimeout (the queued data and the close frame must go
// out), which the service goroutine set when it took the link from its
// queue; when a WRITEABLE asked for earlier sent the close frame first (a
// Send just before the Close, from another goroutine), that bound came
// after and replaced lws' wait: a shutdown then waited out its whole
// deadline for such a link (seen on 4.3.5).
func TestCloseUnanswered(t *testing.T) {
	const links = 20
	closed := make(chan time.Duration, links)
	var opened sync.Map
	h := HandlerFuncs{
		Open: func(c *Conn) {
			opened.Store(c, time.Now())
			go func() {
				_ = c.Send(BinaryMessage, []byte("last words"))
				_ = c.Close(StatusGoingAway, "bye")
			}()
		},
		Close: func(c *Conn, _ CloseError) {
			at, _ := opened.Load(c)
			closed <- time.Since(at.(time.Time))
		},
	}
	_, addr := startServer(t, Listener{Handler: h}, func(c *Config) { c.NetworkTimeout = 30 * time.Second })
	for range links {
		dial(t, addr, nil) // reads nothing: never answers the close
	}
	var slowest time.Duration
	for range links {
		select {
		case d := <-closed:
			slowest = max(slowest, d)
		case <-time.After(40 * time.Second):
			t.Fatal("a link never closed")
		}
	}
	t.Logf("slowest close %v", slowest.Round(time.Millisecond))
	assert.Less(t, slowest, 8*time.Second, "lws' 5 s wait for the close answer")
}

// TestIdleLoopWaits: on the libev loop, a context whose links are silent
// but ping every second waits between lws' timers instead of going round
// without waiting. On 4.3 the loop's "does lws hold input to hand over?"
// also said yes for a timer due within a millisecond, and the loop went
// round without waiting until the timer was due, at every ping of every
// link. (lws' own poll loop does that by itself: it polls with the time to
// the next timer in whole milliseconds, 0 when it is less than one; 3,689
// passes here on 4.1.6.)
func TestIdleLoopWaits(t *testing.T) {
	ctx, addr := startServer(t, Listener{Handler: EchoHandler{}, PingInterval: time.Second, PingTimeout: 5 * time.Second},
		func(c *Config) { c.EventLoop = EventLoopLibev })
	const links = 50
	for range links {
		ws := dial(t, addr, nil)
		go func() { // reads, so that gorilla answers the pings
			for {
				if _, _, err := ws.ReadMessage(); err != nil {
					return
				}
			}
		}()
	}
	passes := func() (n uint64) {
		require.NoError(t, ctx.Do(func() { n = ctx.passes }))
		return n
	}
	before := passes()
	time.Sleep(2500 * time.Millisecond)
	n := passes() - before
	t.Logf("%d passes in 2.5 s with %d links pinging every second", n, links)
	// About 2 pings per link, each a few passes (the timer, the ping's
	// WRITEABLE, the pong), and lws' own timers.
	assert.LessOrEqual(t, n, uint64(links*2*8+200), "passes while idle")
}

// TestPeerResetMidRound: links whose peer resets the connection while the
// server streams to them end cleanly: every one is closed and released,
// and no callback panics, whichever write of a WRITEABLE round the reset
// fails (a round that failed after writing some of its queue left the
// written frames' empty slots in the queue, which WSI_DESTROY released
// again).
func TestPeerResetMidRound(t *testing.T) {
	var logs testutil.Buffer
	var closed atomic.Int32
	stream := HandlerFuncs{
		Open: func(c *Conn) {
			go func() {
				small, big := make([]byte, 32), make([]byte, 100<<10)
				for i := 0; ; i++ {
					p := small
					if i%3 == 2 {
						p = big
					}
					switch err := c.Send(BinaryMessage, p); {
					case errors.Is(err, ErrSendQueueFull):
						time.Sleep(100 * time.Microsecond) // the queue is full: back off
					case err != nil:
						return
					}
				}
			}()
		},
		Close: func(*Conn, CloseError) { closed.Add(1) },
	}
	_, addr := startServer(t, Listener{Handler: stream, MaxSendQueue: 4 << 20}, logTo(t, &logs))
	const links = 40
	for i := range links {
		ws := dial(t, addr, nil)
		for range 1 + i%4 {
			if _, _, err := ws.ReadMessage(); err != nil {
				t.Fatalf("link %d: %v", i, err)
			}
		}
		tc := ws.UnderlyingConn().(*net.TCPConn)
		require.NoError(t, tc.SetLinger(0)) // close sends RST
		require.NoError(t, tc.Close())
	}
	require.Eventually(t, func() bool { return closed.Load() == links }, 10*time.Second, 5*time.Millisecond, "links closed: %d of %d", closed.Load(), links)
	assert.NotContains(t, logs.String(), "panic in callback")
}

// TestServiceNotStarvedBySends: Sends from another goroutine, as fast as
// it can make them, do not keep the service goroutine from its other
// links. On libwebsockets 4.3 the loop goes round again without polling
// while work is queued that its own callbacks queued without a wake-up
// (kick); work queued from elsewhere comes with a wake-up, and polling
// then must not wait for a queue that other goroutines keep filling.
func TestServiceNotStarvedBySends(t *testing.T) {
	rec := newRecorder()
	_, addr := startServer(t, Listener{Handler: rec})
	flooded := dial(t, addr, nil)
	a := waitFor(t, rec.opens, "OnOpen")
	go func() { // the flooded link's client reads whatever comes
		for {
			if _, _, err := flooded.ReadMessage(); err != nil {
				return
			}
		}
	}()
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		msg := []byte("flood")
		for {
			select {
			case <-stop:
				return
			default:
			}
			_ = a.Send(BinaryMessage, msg)
		}
	}()
	defer func() { close(stop); <-done }()
	ws := dial(t, addr, nil)
	waitFor(t, rec.opens, "OnOpen")
	start := time.Now()
	for i := range 50 {
		require.NoError(t, ws.SetReadDeadline(time.Now().Add(5*time.Second)))
		require.NoError(t, ws.WriteMessage(websocket.BinaryMessage, []byte(fmt.Sprint("m", i))))
		_, got, err := ws.ReadMessage()
		require.NoError(t, err, "echo %d while another link is flooded", i)
		require.Equal(t, fmt.Sprint("m", i), string(got))
	}
	t.Logf("50 echoes in %v while another link was flooded", time.Since(start))
}

// TestWriteAlone: with the reason log off, an echo is written by the C
// layer from the WRITEABLE callback writeNow delivers (writeAlone), which
// does not cross into Go; the callback is still counted and still in the
// link's trace. With the reason log on, every WRITEABLE crosses and has
// its line.
func TestWriteAlone(t *testing.T) {
	const n = 50
	for _, logged := range []bool{false, true} {
		t.Run(fmt.Sprintf("reason log %v", logged), func(t *testing.T) {
			var log testutil.Buffer
			var id atomic.Uint64
			h := HandlerFuncs{
				Open:    func(c *Conn) { id.Store(c.ID()) },
				Message: func(c *Conn, typ MessageType, data []byte) { _ = c.Send(typ, data) },
			}
			ctx, addr := startServer(t, Listener{Handler: h}, func(c *Config) {
				c.LinkTrace = 16 * n // with the reason log on, every callback
				if logged {
					c.Trace = &log
				}
			})
			ws := dial(t, addr, nil)
			for i := range n {
				echo(t, ws, fmt.Sprint("message ", i))
			}
			var alone uint64
			require.NoError(t, ctx.Do(func() { alone = ctx.aloneWrites }))
			tr, err := ctx.LinkTrace(id.Load())
			require.NoError(t, err)
			writeables := 0
			for _, e := range tr {
				if e.Name == "LWS_CALLBACK_SERVER_WRITEABLE" {
					writeables++
				}
			}
			assert.GreaterOrEqual(t, writeables, n, "SERVER_WRITEABLE in the link's trace")
			var counted uint64
			require.Eventually(t, func() bool {
				for _, rc := range ctx.ReasonCounts() {
					if rc.Name == "LWS_CALLBACK_SERVER_WRITEABLE" {
						counted = rc.Count
					}
				}
				return counted >= n
			}, 5*time.Second, 10*time.Millisecond, "SERVER_WRITEABLE counted %d times", counted)
			if logged {
				assert.Zero(t, alone, "WRITEABLE answered in C with the reason log on")
				assert.GreaterOrEqual(t, strings.Count(log.String(), "LWS_CALLBACK_SERVER_WRITEABLE"), n)
				return
			}
			assert.Equal(t, uint64(n), alone, "echoes written by the C layer")
		})
	}
}

// TestWriteAloneWaits: a message writeAlone hands over while
// libwebsockets still holds bytes the socket did not take is not written
// (libwebsockets does not call back) but waits for the socket, and every
// message reaches a peer that reads late, whole and in order.
func TestWriteAloneWaits(t *testing.T) {
	const n, size = 800, 16 << 10
	sent := make(chan error, 1)
	h := HandlerFuncs{Open: func(c *Conn) {
		go func() {
			msg := make([]byte, size)
			for i := range n {
				binary.BigEndian.PutUint32(msg, uint32(i))
				if err := c.Send(BinaryMessage, msg); err != nil {
					sent <- err
					return
				}
				// Alone in the queue when writeNow takes it.
				time.Sleep(500 * time.Microsecond)
			}
			sent <- nil
		}()
	}}
	ctx, addr := startServer(t, Listener{Handler: h, MaxSendQueue: 2 * n * size})
	ws := dial(t, addr, nil)
	// Not read until all is sent: 12.8 MB, more than the socket buffers
	// take (the sender's grows to 4 MiB here, tcp_wmem).
	require.NoError(t, waitFor(t, sent, "the sends"))
	for i := range n {
		require.NoError(t, ws.SetReadDeadline(time.Now().Add(10*time.Second)))
		typ, got, err := ws.ReadMessage()
		require.NoError(t, err)
		require.Equal(t, websocket.BinaryMessage, typ)
		require.Len(t, got, size)
		require.Equal(t, uint32(i), binary.BigEndian.Uint32(got), "message %d out of order", i)
	}
	var writes, waits uint64
	require.NoError(t, ctx.Do(func() { writes, waits = ctx.aloneWrites, ctx.aloneWaits }))
	t.Logf("%d messages written by the C layer, %d waited for the socket", writes, waits)
	assert.Positive(t, writes)
	assert.Positive(t, waits, "libwebsockets never held bytes when a message was handed over")
}
