package lws

import (
	"bytes"
	"context"
	"errors"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Keepalive settings of these tests: a link is pinged one second after its
// last pong (or its opening), and hung up two seconds after: by the binding
// on server links, by libwebsockets on client links.
const (
	kaPing    = time.Second
	kaTimeout = 2 * time.Second
	// kaSurvive is how long an answering peer must stay connected: three
	// whole ping-and-timeout cycles.
	kaSurvive = 3 * (kaPing + kaTimeout)
	// kaDropBound bounds how long a silent peer may stay connected; the
	// drop is expected after about kaTimeout.
	kaDropBound = 10 * time.Second
)

// kaEvents records a keepalive test's server links, keyed by link ID.
type kaEvents struct {
	opens  chan *Conn
	closes chan closeEvent
	mu     sync.Mutex
	pongs  map[uint64]int
	closed map[uint64]time.Time
}

func newKAEvents() *kaEvents {
	return &kaEvents{opens: make(chan *Conn, 16), closes: make(chan closeEvent, 16), pongs: map[uint64]int{}, closed: map[uint64]time.Time{}}
}

func (e *kaEvents) handler() Handler {
	return HandlerFuncs{
		Open:    func(c *Conn) { e.opens <- c },
		Message: func(c *Conn, typ MessageType, data []byte) { _ = c.Send(typ, data) },
		Pong: func(c *Conn, data []byte) {
			e.mu.Lock()
			e.pongs[c.ID()]++
			e.mu.Unlock()
		},
		Close: func(c *Conn, ce CloseError) {
			e.mu.Lock()
			e.closed[c.ID()] = time.Now()
			e.mu.Unlock()
			e.closes <- closeEvent{c, ce}
		},
	}
}

func (e *kaEvents) pongCount(id uint64) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.pongs[id]
}

func (e *kaEvents) isClosed(id uint64) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	_, ok := e.closed[id]
	return ok
}

// waitCloseOf waits (bounded) for the OnClose of link id, keeping the
// others' events for later.
func (e *kaEvents) waitCloseOf(t *testing.T, id uint64, bound time.Duration, others map[uint64]CloseError) CloseError {
	t.Helper()
	timeout := time.After(bound)
	for {
		select {
		case ev := <-e.closes:
			if ev.c.ID() == id {
				return ev.ce
			}
			others[ev.c.ID()] = ev.ce
		case <-timeout:
			require.FailNow(t, "link was not dropped", "link %d still open after %v", id, bound)
		}
	}
}

// gorillaReader reads a gorilla link in the background (so that gorilla
// answers pings) and reports messages and the final error.
type gorillaReader struct {
	msgs chan []byte
	err  chan error
}

func readInBackground(ws *websocket.Conn) *gorillaReader {
	r := &gorillaReader{msgs: make(chan []byte, 64), err: make(chan error, 1)}
	go func() {
		for {
			_, msg, err := ws.ReadMessage()
			if err != nil {
				r.err <- err
				return
			}
			r.msgs <- msg
		}
	}()
	return r
}

// requireLinkEnded reads a gorilla link that was not read so far and
// requires that it ends (not that the read times out).
func requireLinkEnded(t *testing.T, ws *websocket.Conn) error {
	t.Helper()
	require.NoError(t, ws.SetReadDeadline(time.Now().Add(5*time.Second)))
	for {
		_, _, err := ws.ReadMessage()
		if err == nil {
			continue // echoes queued before the drop
		}
		var ne net.Error
		require.False(t, errors.As(err, &ne) && ne.Timeout(), "gorilla's link is still up: %v", err)
		return err
	}
}

// TestKeepaliveServer runs three gorilla clients against one listener with
// PingInterval 1s, PingTimeout 2s, at the same time: one that never reads
// (so never answers the pings) is dropped; one that sends a message every
// 200 ms but never reads is dropped too, because only pongs count as proof
// of life, not data (as with libwebsockets' own policy); one that reads
// survives three ping cycles, pinged with the binding's payload, and its
// pongs do not reach HandlerFuncs.Pong.
func TestKeepaliveServer(t *testing.T) {
	t.Parallel()
	ev := newKAEvents()
	_, addr := startServer(t, Listener{Handler: ev.handler(), PingInterval: kaPing, PingTimeout: kaTimeout})
	start := time.Now()

	silent := dial(t, addr, nil)
	silentID := waitFor(t, ev.opens, "silent open").ID()

	answering := dial(t, addr, nil)
	answeringID := waitFor(t, ev.opens, "answering open").ID()
	answeringSince := time.Now()
	var pingsMu sync.Mutex
	var pings []string
	answering.SetPingHandler(func(s string) error {
		pingsMu.Lock()
		pings = append(pings, s)
		pingsMu.Unlock()
		return answering.WriteControl(websocket.PongMessage, []byte(s), time.Now().Add(time.Second))
	})
	reader := readInBackground(answering)

	busy := dial(t, addr, nil)
	busyID := waitFor(t, ev.opens, "busy open").ID()
	stopBusy := make(chan struct{})
	busyDone := make(chan struct{})
	go func() {
		defer close(busyDone)
		tick := time.NewTicker(200 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stopBusy:
				return
			case <-tick.C:
				if busy.WriteMessage(websocket.TextMessage, []byte("still here")) != nil {
					return
				}
			}
		}
	}()
	stopBusyWriter := sync.OnceFunc(func() { close(stopBusy); <-busyDone })
	defer stopBusyWriter()

	others := map[uint64]CloseError{}
	ce := ev.waitCloseOf(t, silentID, kaDropBound, others)
	t.Logf("silent client dropped after %v: %+v", time.Since(start), ce)
	// A hang-up without a close frame.
	assert.Equal(t, StatusAbnormalClosure, ce.Code)
	err := requireLinkEnded(t, silent)
	t.Logf("silent client saw: %v", err)

	ce, ok := others[busyID]
	if !ok {
		ce = ev.waitCloseOf(t, busyID, kaDropBound, others)
	}
	t.Logf("busy client dropped after %v: %+v", time.Since(start), ce)
	assert.Equal(t, StatusAbnormalClosure, ce.Code)
	stopBusyWriter()
	err = requireLinkEnded(t, busy)
	t.Logf("busy client saw: %v", err)

	// The answering client outlives three ping cycles.
	select {
	case ev := <-ev.closes:
		require.FailNow(t, "link dropped", "link %d (answering is %d) closed: %+v", ev.c.ID(), answeringID, ev.ce)
	case err := <-reader.err:
		require.FailNow(t, "answering client's link ended", "%v", err)
	case <-time.After(time.Until(answeringSince.Add(kaSurvive))):
	}
	assert.False(t, ev.isClosed(answeringID))
	require.NoError(t, answering.WriteMessage(websocket.TextMessage, []byte("alive")))
	assert.Equal(t, "alive", string(waitFor(t, reader.msgs, "echo")))
	pongs := ev.pongCount(answeringID)
	t.Logf("answering client alive after %v; HandlerFuncs.Pong saw %d pongs", time.Since(answeringSince), pongs)
	assert.Zero(t, ev.pongCount(silentID))

	// The answering client's pongs kept its link valid: it was pinged
	// once a second with the binding's payload (libwebsockets does not
	// report an empty pong on server links: keepalive.go), and those
	// pongs are not OnPong's (PongHandler).
	pingsMu.Lock()
	got := append([]string(nil), pings...)
	pingsMu.Unlock()
	assert.GreaterOrEqual(t, len(got), 3, "keepalive pings in %v", kaSurvive)
	for _, p := range got {
		assert.Equal(t, string(keepalivePing), p, "keepalive ping payload")
	}
	assert.Zero(t, pongs, "a keepalive pong reached OnPong")
}

// TestKeepaliveClient dials two gorilla servers with PingInterval 1s,
// PingTimeout 2s, at the same time: the link to a server that never reads
// (so never answers) is dropped, the one to a server that reads survives
// three ping cycles and its Handler sees the pongs.
func TestKeepaliveClient(t *testing.T) {
	t.Parallel()
	s := startGoWSServer(t, nil, func(s *goWSServer, ws *websocket.Conn, r *http.Request) {
		if r.URL.Path == "/silent" {
			<-s.stop
			return
		}
		goEcho(s, ws, r)
	})
	c := tlsClientContext(t)
	opts := func(h Handler) *DialOptions {
		return &DialOptions{Handler: h, PingInterval: kaPing, PingTimeout: kaTimeout}
	}
	start := time.Now()
	silentSink, answeringSink := newClientSink(), newClientSink()
	_, err := c.Dial(context.Background(), s.URL+"/silent", opts(silentSink.handler()))
	require.NoError(t, err)
	answering, err := c.Dial(context.Background(), s.URL+"/echo", opts(answeringSink.handler()))
	require.NoError(t, err)
	answeringSince := time.Now()

	select {
	case ce := <-silentSink.closes:
		t.Logf("link to the silent server dropped after %v: %+v", time.Since(start), ce)
		// libwebsockets hangs up without a close frame.
		assert.Equal(t, StatusAbnormalClosure, ce.Code)
		assert.False(t, ce.Local)
	case <-time.After(kaDropBound):
		require.FailNow(t, "the link to the silent server was not dropped")
	}

	select {
	case ce := <-answeringSink.closes:
		require.FailNow(t, "link to the answering server dropped", "%+v", ce)
	case <-time.After(time.Until(answeringSince.Add(kaSurvive))):
	}
	require.NoError(t, answering.SendText("alive"))
	assert.Equal(t, "alive", string(waitFor(t, answeringSink.msgs, "echo").data))
	pongs := len(answeringSink.pongs)
	t.Logf("link to the answering server alive after %v; %d pongs", time.Since(answeringSince), pongs)
	assert.Positive(t, pongs)
	for range pongs {
		assert.Empty(t, <-answeringSink.pongs, "keepalive pings carry no payload")
	}
	assert.Empty(t, silentSink.pongs)
	closeClient(t, answering, answeringSink)
}

// TestPingServerToGorilla: Conn.Ping from the server reaches the gorilla
// client's PingHandler, and the pong comes back to OnPong, same payload.
func TestPingServerToGorilla(t *testing.T) {
	opens := make(chan *Conn, 1)
	pongs := make(chan []byte, 16)
	_, addr := startServer(t, Listener{Handler: HandlerFuncs{
		Open: func(c *Conn) { opens <- c },
		Pong: func(c *Conn, data []byte) { pongs <- append([]byte(nil), data...) },
	}})
	ws := dial(t, addr, nil)
	pings := make(chan []byte, 16)
	ws.SetPingHandler(func(data string) error {
		pings <- []byte(data)
		return ws.WriteControl(websocket.PongMessage, []byte(data), time.Now().Add(5*time.Second))
	})
	readInBackground(ws)
	c := waitFor(t, opens, "OnOpen")

	for _, payload := range [][]byte{[]byte("ping-1"), {0}, bytes.Repeat([]byte{0xa5}, 125)} {
		require.NoError(t, c.Ping(payload))
		assert.Equal(t, string(payload), string(waitFor(t, pings, "gorilla's ping")), "ping payload")
		assert.Equal(t, string(payload), string(waitFor(t, pongs, "OnPong")), "pong payload")
	}
	assert.Error(t, c.Ping(make([]byte, 126)), "ping payloads are at most 125 bytes")

	// An empty ping is answered by an empty pong, which libwebsockets 4.1
	// and 4.3 do not report on server links (see TestKeepaliveServer): OnPong
	// next sees the pong of the following ping.
	t.Run("empty payload", func(t *testing.T) {
		require.NoError(t, c.Ping(nil))
		assert.Empty(t, waitFor(t, pings, "gorilla's empty ping"))
		require.NoError(t, c.Ping([]byte("after-empty")))
		assert.Equal(t, "after-empty", string(waitFor(t, pings, "gorilla's ping")))
		assert.Equal(t, "after-empty", string(waitFor(t, pongs, "OnPong")), "4.1 and 4.3 do not report an empty pong on server links")
	})
}

// TestPingClientToGorilla: Conn.Ping from an lws client reaches a gorilla
// server, whose pong comes back to the client's OnPong.
func TestPingClientToGorilla(t *testing.T) {
	pings := make(chan []byte, 16)
	s := startGoWSServer(t, nil, func(s *goWSServer, ws *websocket.Conn, r *http.Request) {
		ws.SetPingHandler(func(data string) error {
			pings <- []byte(data)
			return ws.WriteControl(websocket.PongMessage, []byte(data), time.Now().Add(5*time.Second))
		})
		goEcho(s, ws, r)
	})
	c := tlsClientContext(t)
	sink := newClientSink()
	conn, err := c.Dial(context.Background(), s.URL+"/", &DialOptions{Handler: sink.handler()})
	require.NoError(t, err)
	for _, payload := range [][]byte{[]byte("from-client"), {}, bytes.Repeat([]byte{'p'}, 125)} {
		require.NoError(t, conn.Ping(payload))
		assert.Equal(t, string(payload), string(waitFor(t, pings, "gorilla's ping")))
		assert.Equal(t, string(payload), string(waitFor(t, sink.pongs, "OnPong")))
	}
	closeClient(t, conn, sink)
}
