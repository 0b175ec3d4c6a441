package lws

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// WebSocket peers made with gorilla (clients, and Go servers for the
// binding's client links), and handlers that record what links see.

// goWSServer is a Go WebSocket server (gorilla behind httptest) whose
// every link runs handle. Its links are closed when the test ends.
type goWSServer struct {
	URL  string // ws:// or wss:// with the server's address, no path
	Addr string
	srv  *httptest.Server
	stop chan struct{} // closed at cleanup: handlers must return
	wg   sync.WaitGroup
	mu   sync.Mutex
	ws   []*websocket.Conn
}

// startGoWSServer starts the server, with TLS when cfg is not nil.
func startGoWSServer(t testing.TB, cfg *tls.Config, handle func(s *goWSServer, ws *websocket.Conn, r *http.Request)) *goWSServer {
	t.Helper()
	s := &goWSServer{stop: make(chan struct{})}
	up := websocket.Upgrader{ReadBufferSize: 64 << 10, WriteBufferSize: 64 << 10}
	s.srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		s.mu.Lock()
		select {
		case <-s.stop:
			s.mu.Unlock()
			ws.Close()
			return
		default:
		}
		s.wg.Add(1)
		s.ws = append(s.ws, ws)
		s.mu.Unlock()
		defer s.wg.Done()
		defer ws.Close()
		handle(s, ws, r)
	}))
	// Failed handshakes are the point of some tests: keep them quiet.
	s.srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	scheme := "ws://"
	if cfg != nil {
		s.srv.TLS = cfg
		s.srv.StartTLS()
		scheme = "wss://"
	} else {
		s.srv.Start()
	}
	s.Addr = s.srv.Listener.Addr().String()
	s.URL = scheme + s.Addr
	t.Cleanup(func() {
		s.mu.Lock()
		close(s.stop)
		for _, ws := range s.ws {
			ws.Close()
		}
		s.mu.Unlock()
		s.srv.Close()
		done := make(chan struct{})
		go func() { s.wg.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(hangTimeout):
			t.Error("Go WebSocket server handlers did not return")
		}
	})
	return s
}

// goEcho is a goWSServer handler that echoes every message.
func goEcho(s *goWSServer, ws *websocket.Conn, r *http.Request) {
	for {
		typ, msg, err := ws.ReadMessage()
		if err != nil {
			return
		}
		if err := ws.WriteMessage(typ, msg); err != nil {
			return
		}
	}
}

// dial opens a gorilla client link to addr.
func dial(t testing.TB, addr string, hdr http.Header) *websocket.Conn {
	t.Helper()
	d := websocket.Dialer{HandshakeTimeout: 5 * time.Second, ReadBufferSize: 64 << 10, WriteBufferSize: 64 << 10}
	ws, resp, err := d.Dial(fmt.Sprintf("ws://%s/", addr), hdr)
	require.NoError(t, err)
	if resp != nil && resp.Body != nil {
		resp.Body.Close()
	}
	t.Cleanup(func() { ws.Close() })
	_ = ws.SetReadDeadline(time.Now().Add(20 * time.Second))
	return ws
}

// closeEvent is one Handler.OnClose call.
type closeEvent struct {
	c  *Conn
	ce CloseError
}

// recorder is a Handler that echoes (unless message is set) and reports
// opens and closes on buffered channels, so that it never blocks.
type recorder struct {
	message func(c *Conn, typ MessageType, data []byte)
	opens   chan *Conn
	closes  chan closeEvent
	mu      sync.Mutex
	nclose  map[uint64]int
}

func newRecorder() *recorder {
	return &recorder{opens: make(chan *Conn, 4096), closes: make(chan closeEvent, 4096), nclose: map[uint64]int{}}
}

func (r *recorder) OnOpen(c *Conn) { r.opens <- c }

func (r *recorder) OnMessage(c *Conn, typ MessageType, data []byte) {
	if r.message != nil {
		r.message(c, typ, data)
		return
	}
	_ = c.Send(typ, data)
}

func (r *recorder) OnClose(c *Conn, ce CloseError) {
	r.mu.Lock()
	r.nclose[c.ID()]++
	r.mu.Unlock()
	r.closes <- closeEvent{c, ce}
}

func (r *recorder) closeCount(id uint64) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.nclose[id]
}

// dialWith dials ws://addr+path with d, without failing on a refused
// handshake, and closes the client when the test ends.
func dialWith(t testing.TB, d *websocket.Dialer, addr, path string, hdr http.Header) (*websocket.Conn, *http.Response, error) {
	t.Helper()
	if d.HandshakeTimeout == 0 {
		d.HandshakeTimeout = 5 * time.Second
	}
	ws, resp, err := d.Dial("ws://"+addr+path, hdr)
	if resp != nil && resp.Body != nil {
		resp.Body.Close()
	}
	if err != nil {
		return nil, resp, err
	}
	t.Cleanup(func() { ws.Close() })
	_ = ws.SetReadDeadline(time.Now().Add(hangTimeout))
	return ws, resp, nil
}

// readClose reads until the link fails and returns the close frame the
// client received (nil when it ended without one).
func readClose(t testing.TB, ws *websocket.Conn) *websocket.CloseError {
	t.Helper()
	_ = ws.SetReadDeadline(time.Now().Add(hangTimeout))
	for i := 0; ; i++ {
		_, _, err := ws.ReadMessage()
		if err == nil {
			continue
		}
		var ce *websocket.CloseError
		if errors.As(err, &ce) {
			return ce
		}
		require.FailNow(t, "link ended without a close frame", "%v", err)
	}
}

// echo sends msg and expects it back.
func echo(t testing.TB, ws *websocket.Conn, msg string) {
	t.Helper()
	require.NoError(t, ws.WriteMessage(websocket.TextMessage, []byte(msg)))
	typ, got, err := ws.ReadMessage()
	require.NoError(t, err)
	assert.Equal(t, websocket.TextMessage, typ)
	assert.Equal(t, msg, string(got))
}

// wireFrame is one WebSocket frame header seen on the wire.
type wireFrame struct {
	op  byte
	fin bool
	n   int
}

// frameTap wraps a client's net.Conn and parses the frames it writes after
// the HTTP handshake, so that a test can see how a message was fragmented.
type frameTap struct {
	net.Conn
	mu     sync.Mutex
	hsDone bool
	buf    []byte
	skip   int
	frames []wireFrame
}

func (f *frameTap) Write(p []byte) (int, error) {
	f.mu.Lock()
	f.parse(p)
	f.mu.Unlock()
	return f.Conn.Write(p)
}

func (f *frameTap) parse(p []byte) {
	f.buf = append(f.buf, p...)
	if !f.hsDone {
		i := bytes.Index(f.buf, []byte("\r\n\r\n"))
		if i < 0 {
			return
		}
		f.hsDone = true
		f.buf = f.buf[i+4:]
	}
	for {
		if f.skip > 0 {
			n := min(f.skip, len(f.buf))
			f.buf, f.skip = f.buf[n:], f.skip-n
			if f.skip > 0 {
				return
			}
		}
		if len(f.buf) < 2 {
			return
		}
		b := f.buf
		hl, n := 2, int(b[1]&0x7f)
		switch n {
		case 126:
			if len(b) < 4 {
				return
			}
			hl, n = 4, int(b[2])<<8|int(b[3])
		case 127:
			if len(b) < 10 {
				return
			}
			hl, n = 10, 0
			for _, c := range b[2:10] {
				n = n<<8 | int(c)
			}
		}
		if b[1]&0x80 != 0 {
			hl += 4 // mask key
		}
		if len(b) < hl {
			return
		}
		f.frames = append(f.frames, wireFrame{op: b[0] & 0x0f, fin: b[0]&0x80 != 0, n: n})
		f.buf, f.skip = b[hl:], n
	}
}

func (f *frameTap) seen() []wireFrame {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]wireFrame(nil), f.frames...)
}

// tappedDialer returns a dialer with a small write buffer (so NextWriter
// fragments messages) whose connection is tapped.
func tappedDialer(tap **frameTap) *websocket.Dialer {
	return &websocket.Dialer{
		HandshakeTimeout: 5 * time.Second,
		WriteBufferSize:  256,
		NetDialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			*tap = &frameTap{Conn: c}
			return *tap, nil
		},
	}
}

// writeFragmented writes msg as one message through NextWriter in writes
// of chunk bytes.
func writeFragmented(ws *websocket.Conn, typ int, msg []byte, chunk int) error {
	w, err := ws.NextWriter(typ)
	if err != nil {
		return err
	}
	for off := 0; off < len(msg); off += chunk {
		if _, err := w.Write(msg[off:min(off+chunk, len(msg))]); err != nil {
			return err
		}
	}
	return w.Close()
}

// gorillaEcho is a Go WebSocket server that echoes, with the subprotocols
// it accepts.
func gorillaEcho(t testing.TB, protos ...string) *httptest.Server {
	up := websocket.Upgrader{Subprotocols: protos, ReadBufferSize: 64 << 10, WriteBufferSize: 64 << 10, CheckOrigin: func(*http.Request) bool { return true }}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws, err := up.Upgrade(w, r, http.Header{"X-Path": {r.URL.RequestURI()}})
		if err != nil {
			return
		}
		defer ws.Close()
		ws.SetReadLimit(64 << 20)
		if r.Header.Get("X-Hello") != "" {
			_ = ws.WriteMessage(websocket.TextMessage, []byte("hdr:"+r.Header.Get("X-Hello")+" origin:"+r.Header.Get("Origin")+" path:"+r.URL.RequestURI()))
		}
		for {
			mt, p, err := ws.ReadMessage()
			if err != nil {
				if ce, ok := err.(*websocket.CloseError); ok {
					_ = ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(ce.Code, ce.Text), time.Now().Add(time.Second))
				}
				return
			}
			if err := ws.WriteMessage(mt, p); err != nil {
				return
			}
		}
	}))
	t.Cleanup(srv.Close)
	return srv
}

func wsURL(s *httptest.Server) string { return "ws" + strings.TrimPrefix(s.URL, "http") }

// sink is a Handler that hands messages and the close to channels.
type sink struct {
	msgs   chan message
	closed chan CloseError
	pongs  chan []byte
}

type message struct {
	typ  MessageType
	data []byte
}

func newSink() *sink {
	return &sink{msgs: make(chan message, 64), closed: make(chan CloseError, 1), pongs: make(chan []byte, 16)}
}

func (r *sink) OnOpen(*Conn) {}

func (r *sink) OnMessage(_ *Conn, typ MessageType, data []byte) {
	r.msgs <- message{typ, append([]byte(nil), data...)}
}

func (r *sink) OnClose(_ *Conn, ce CloseError) { r.closed <- ce }

func (r *sink) OnPong(_ *Conn, data []byte) { r.pongs <- append([]byte(nil), data...) }

func (r *sink) next(t testing.TB) message {
	t.Helper()
	select {
	case m := <-r.msgs:
		return m
	case <-time.After(10 * time.Second):
		t.Fatal("no message within 10s")
	}
	return message{}
}

func (r *sink) waitClose(t testing.TB) CloseError {
	t.Helper()
	select {
	case ce := <-r.closed:
		return ce
	case <-time.After(15 * time.Second):
		t.Fatal("no close within 15s")
	}
	return CloseError{}
}
