package lws

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lwsgate/lwsgate/cgo"
)

func TestDialEchoSizes(t *testing.T) {
	srv := gorillaEcho(t)
	c := newClientContext(t)
	rec := newSink()
	conn, err := c.Dial(context.Background(), wsURL(srv)+"/echo", &DialOptions{Handler: rec, MaxMessageSize: 32 << 20})
	require.NoError(t, err)
	require.Equal(t, "/echo", conn.Link().Path)
	require.NotEmpty(t, conn.Link().URL)
	require.Empty(t, conn.Link().Listener)
	for _, n := range []int{0, 1, 125, 126, 65535, 65536, 1 << 20, 16 << 20} {
		for _, typ := range []MessageType{TextMessage, BinaryMessage} {
			p := bytes.Repeat([]byte("abcdefghijklmnopqrstuvwxyz"), n/26+1)[:n]
			require.NoError(t, conn.Send(typ, p))
			m := rec.next(t)
			require.Equal(t, typ, m.typ, "size %d", n)
			require.True(t, bytes.Equal(p, m.data), "size %d: payload differs", n)
		}
	}
	require.NoError(t, conn.Close(StatusNormalClosure, "done"))
	ce := rec.waitClose(t)
	require.Equal(t, StatusNormalClosure, ce.Code)
	require.Equal(t, "done", ce.Reason)
}

// A gorilla client sending fragmented messages to an lws server, and an
// lws client receiving fragmented messages from a gorilla server.
func TestDialFragmented(t *testing.T) {
	up := websocket.Upgrader{WriteBufferSize: 1024}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer ws.Close()
		// NextWriter with a small buffer flushes each 1 KiB as a
		// continuation frame.
		wr, _ := ws.NextWriter(websocket.BinaryMessage)
		for i := 0; i < 10; i++ {
			_, _ = wr.Write(bytes.Repeat([]byte{byte('0' + i)}, 1000))
		}
		_ = wr.Close()
		_, _, _ = ws.ReadMessage()
	}))
	defer srv.Close()
	c := newClientContext(t)
	rec := newSink()
	conn, err := c.Dial(context.Background(), wsURL(srv), &DialOptions{Handler: rec})
	require.NoError(t, err)
	m := rec.next(t)
	require.Equal(t, BinaryMessage, m.typ)
	require.Len(t, m.data, 10000)
	for i := 0; i < 10; i++ {
		require.Equal(t, byte('0'+i), m.data[i*1000])
	}
	_ = conn.Close(StatusNormalClosure, "")
}

func TestDialHeadersOriginSubprotocol(t *testing.T) {
	srv := gorillaEcho(t, "chat.v2", "chat.v1")
	c := newClientContext(t)
	rec := newSink()
	conn, err := c.Dial(context.Background(), wsURL(srv)+"/p?a=1&b=two", &DialOptions{
		Handler:      rec,
		Subprotocols: []string{"chat.v1", "chat.v2"},
		Header:       http.Header{"X-Hello": {"world"}},
		Origin:       "https://app.example",
	})
	require.NoError(t, err)
	// gorilla picks its first supported protocol that the client offered
	require.Equal(t, "chat.v2", conn.Link().Subprotocol)
	m := rec.next(t)
	require.Equal(t, "hdr:world origin:https://app.example path:/p?a=1&b=two", string(m.data))
	_ = conn.Close(StatusNormalClosure, "")
}

// The lws client against the lws server, both directions of close.
func TestDialLwsServer(t *testing.T) {
	srvRec := newSink()
	echo := HandlerFuncs{
		Message: func(c *Conn, typ MessageType, data []byte) {
			if string(data) == "close-me" {
				_ = c.Close(StatusCode(4001), "asked")
				return
			}
			_ = c.Send(typ, data)
		},
		Close: func(c *Conn, ce CloseError) { srvRec.closed <- ce },
	}
	_, addr := startServer(t, Listener{Handler: echo, Subprotocols: []string{"v1"}})
	c := newClientContext(t)

	rec := newSink()
	conn, err := c.Dial(context.Background(), "ws://"+addr+"/", &DialOptions{Handler: rec, Subprotocols: []string{"v1"}})
	require.NoError(t, err)
	require.Equal(t, "v1", conn.Link().Subprotocol)
	require.NoError(t, conn.SendText("hello world"))
	require.Equal(t, "hello world", string(rec.next(t).data))
	require.NoError(t, conn.SendText("close-me"))
	ce := rec.waitClose(t)
	require.Equal(t, StatusCode(4001), ce.Code)
	require.Equal(t, "asked", ce.Reason)
	require.False(t, ce.Local)
	sce := srvRec.waitClose(t)
	require.Equal(t, StatusCode(4001), sce.Code)
	require.ErrorIs(t, conn.SendText("late"), ErrClosed)

	// client-initiated close
	rec2 := newSink()
	conn2, err := c.Dial(context.Background(), "ws://"+addr+"/", &DialOptions{Handler: rec2})
	require.NoError(t, err)
	require.NoError(t, conn2.Close(StatusCode(4002), "client says bye"))
	sce = srvRec.waitClose(t)
	require.Equal(t, StatusCode(4002), sce.Code)
	require.Equal(t, "client says bye", sce.Reason)
	require.Equal(t, StatusCode(4002), rec2.waitClose(t).Code)
}

func TestDialFailures(t *testing.T) {
	c := newClientContext(t)
	base := cgo.LiveHandles()

	kindOf := func(t *testing.T, err error) *DialError {
		t.Helper()
		var de *DialError
		require.ErrorAs(t, err, &de, "%v", err)
		return de
	}

	t.Run("refused", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		addr := ln.Addr().String()
		ln.Close()
		_, err = c.Dial(context.Background(), "ws://"+addr+"/", nil)
		require.Equal(t, DialConnect, kindOf(t, err).Kind, "%v", err)
		waitHandles(t, base, "after the failed dial")
	})
	t.Run("dns", func(t *testing.T) {
		_, err := c.Dial(context.Background(), "ws://no-such-host.invalid/", nil)
		require.Equal(t, DialDNS, kindOf(t, err).Kind, "%v", err)
		waitHandles(t, base, "after the failed dial")
	})
	t.Run("status 404", func(t *testing.T) {
		srv := httptest.NewServer(http.NotFoundHandler())
		defer srv.Close()
		_, err := c.Dial(context.Background(), wsURL(srv)+"/nope", nil)
		de := kindOf(t, err)
		require.Equal(t, DialStatus, de.Kind, "%v", err)
		require.Equal(t, 404, de.Status)
		waitHandles(t, base, "after the failed dial")
	})
	t.Run("subprotocol not offered", func(t *testing.T) {
		// A server that answers with a subprotocol the client did not offer.
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			up := websocket.Upgrader{}
			ws, err := up.Upgrade(w, r, http.Header{"Sec-Websocket-Protocol": {"other"}})
			if err == nil {
				_, _, _ = ws.ReadMessage()
				ws.Close()
			}
		}))
		defer srv.Close()
		_, err := c.Dial(context.Background(), wsURL(srv), &DialOptions{Subprotocols: []string{"mine"}})
		require.Equal(t, DialSubprotocol, kindOf(t, err).Kind, "%v", err)
		waitHandles(t, base, "after the failed dial")
	})
	t.Run("closed mid-handshake", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		defer ln.Close()
		go func() {
			for {
				conn, err := ln.Accept()
				if err != nil {
					return
				}
				buf := make([]byte, 512)
				_, _ = conn.Read(buf) // part of the request, then hang up
				conn.Close()
			}
		}()
		_, err = c.Dial(context.Background(), "ws://"+ln.Addr().String()+"/", nil)
		require.Equal(t, DialHandshake, kindOf(t, err).Kind, "%v", err)
		waitHandles(t, base, "after the failed dial")
	})
	t.Run("timeout", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		defer ln.Close()
		held := make(chan net.Conn, 4)
		go func() {
			for {
				conn, err := ln.Accept()
				if err != nil {
					return
				}
				held <- conn // accept, never answer
			}
		}()
		defer func() {
			for len(held) > 0 {
				(<-held).Close()
			}
		}()
		_, err = c.Dial(context.Background(), "ws://"+ln.Addr().String()+"/", &DialOptions{HandshakeTimeout: 300 * time.Millisecond})
		de := kindOf(t, err)
		require.Equal(t, DialTimeout, de.Kind, "%v", err)
		require.True(t, de.Timeout())
		require.ErrorIs(t, err, os.ErrDeadlineExceeded)
		waitHandles(t, base, "after the failed dial")
	})
	t.Run("ctx cancelled mid-dial", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		defer ln.Close()
		accepted := make(chan net.Conn, 1)
		go func() {
			conn, err := ln.Accept()
			if err == nil {
				accepted <- conn
			}
		}()
		ctx, cancel := context.WithCancel(context.Background())
		go func() {
			conn := <-accepted // the handshake is under way: cancel
			cancel()
			defer conn.Close()
		}()
		_, err = c.Dial(ctx, "ws://"+ln.Addr().String()+"/", nil)
		require.ErrorIs(t, err, context.Canceled)
		require.Equal(t, DialCanceled, kindOf(t, err).Kind)
		waitHandles(t, base, "after the failed dial")
	})
	t.Run("bad url", func(t *testing.T) {
		_, err := c.Dial(context.Background(), "http://127.0.0.1:1/", nil)
		require.ErrorContains(t, err, `scheme "http"`)
		_, err = c.Dial(context.Background(), "ws:///nohost", nil)
		require.ErrorContains(t, err, "no host")
		_, err = c.Dial(context.Background(), "ws://127.0.0.1:1/", &DialOptions{Header: http.Header{"X-Bad": {"a\r\nb"}}})
		require.ErrorContains(t, err, "X-Bad")
		_, err = c.Dial(context.Background(), "wss://127.0.0.1:1/", &DialOptions{TLS: &ClientTLS{CAFile: "/nonexistent/ca.pem"}})
		require.ErrorContains(t, err, "CAFile")
	})
}

// Closing the Context closes its client links with 1001 and fails dials.
func TestContextCloseClosesClients(t *testing.T) {
	srv := gorillaEcho(t)
	c, err := New(&Config{Logger: testLogger(t)})
	require.NoError(t, err)
	rec := newSink()
	_, err = c.Dial(context.Background(), wsURL(srv), &DialOptions{Handler: rec})
	require.NoError(t, err)
	require.NoError(t, c.Close())
	ce := rec.waitClose(t)
	require.Equal(t, StatusGoingAway, ce.Code, "%v", ce)
	_, err = c.Dial(context.Background(), wsURL(srv), nil)
	var de *DialError
	require.ErrorAs(t, err, &de)
	require.Equal(t, DialClosed, de.Kind)
	require.ErrorIs(t, err, ErrClosed)
}

func TestPackageDial(t *testing.T) {
	srv := gorillaEcho(t)
	rec := newSink()
	conn, err := Dial(context.Background(), wsURL(srv), &DialOptions{Handler: rec})
	require.NoError(t, err)
	require.NoError(t, conn.SendText("x"))
	require.Equal(t, "x", string(rec.next(t).data))
	require.NoError(t, conn.Close(StatusNormalClosure, ""))
	rec.waitClose(t)
	require.Same(t, DefaultContext(), DefaultContext())
}

// Many goroutines dialling and sending at once.
func TestDialConcurrent(t *testing.T) {
	srv := gorillaEcho(t)
	c := newClientContext(t)
	const n = 50
	errs := make(chan error, n)
	for i := 0; i < n; i++ {
		go func(i int) {
			rec := newSink()
			conn, err := c.Dial(context.Background(), wsURL(srv), &DialOptions{Handler: rec})
			if err != nil {
				errs <- err
				return
			}
			want := fmt.Sprintf("msg %d", i)
			_ = conn.SendText(want)
			select {
			case m := <-rec.msgs:
				if string(m.data) != want {
					errs <- fmt.Errorf("got %q want %q", m.data, want)
					return
				}
			case <-time.After(10 * time.Second):
				errs <- errors.New("no echo")
				return
			}
			_ = conn.Close(StatusNormalClosure, "")
			<-rec.closed
			errs <- nil
		}(i)
	}
	for i := 0; i < n; i++ {
		require.NoError(t, <-errs)
	}
}

// TestDialCanceledAnywhere cancels dials at random points of the connect
// path (TCP connect, the handshake's callbacks, the 101) while other dials
// are in theirs: the abort runs on the service goroutine wherever the
// cancel lands, and must never free a wsi libwebsockets is still inside.
// Each dial must open (then close) or fail as canceled, and every handle
// must be released. Before posted work left callbacks, such an abort at the
// end of a client's own callback freed the wsi under libwebsockets: a
// heap-use-after-free under ASan, SIGSEGV or a NULL wsi->a.vhost without.
func TestDialCanceledAnywhere(t *testing.T) {
	// Hundreds of links a second from one address: no limits.
	srv, addr := startServer(t, Listener{Handler: EchoHandler{}, MaxLinksPerIP: -1, AcceptRate: -1})
	c := newClientContext(t)
	const workers, perWorker = 8, 150
	var opened, canceled atomic.Int64
	errs := make(chan error, workers)
	for w := range workers {
		go func() {
			rng := rand.New(rand.NewPCG(uint64(w), 13))
			for range perWorker {
				ctx, cancel := context.WithCancel(context.Background())
				time.AfterFunc(time.Duration(rng.IntN(1500))*time.Microsecond, cancel)
				conn, err := c.Dial(ctx, "ws://"+addr+"/", nil)
				cancel()
				switch {
				case err == nil:
					opened.Add(1)
					_ = conn.Close(StatusNormalClosure, "")
				case errors.Is(err, context.Canceled):
					canceled.Add(1)
				default:
					errs <- err
					return
				}
			}
			errs <- nil
		}()
	}
	for range workers {
		require.NoError(t, <-errs)
	}
	t.Logf("%d dials opened, %d canceled", opened.Load(), canceled.Load())
	// Every link and dial is released on both sides.
	deadline := time.Now().Add(5 * time.Second)
	for {
		var n int
		require.NoError(t, c.Do(func() { n = c.busyRecs() }))
		var m int
		require.NoError(t, srv.Do(func() { m = srv.busyRecs() }))
		if n == 0 && m == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d client and %d server links or dials still live", n, m)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestBackoffDelay(t *testing.T) {
	b := Backoff{Initial: 100 * time.Millisecond, Max: time.Second, Factor: 2, Jitter: -1}
	require.Equal(t, 100*time.Millisecond, b.Delay(1))
	require.Equal(t, 200*time.Millisecond, b.Delay(2))
	require.Equal(t, 800*time.Millisecond, b.Delay(4))
	require.Equal(t, time.Second, b.Delay(10))
	var z Backoff // defaults: 100ms ±20%
	for i := 0; i < 100; i++ {
		d := z.Delay(1)
		require.True(t, d >= 80*time.Millisecond && d <= 120*time.Millisecond, "%v", d)
	}
}

// DialRetry keeps dialling through refusals until the backend accepts.
func TestDialRetry(t *testing.T) {
	var mu sync.Mutex
	calls := 0
	up := websocket.Upgrader{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		calls++
		n := calls
		mu.Unlock()
		if n <= 2 {
			http.Error(w, "warming up", http.StatusServiceUnavailable)
			return
		}
		ws, err := up.Upgrade(w, r, nil)
		if err == nil {
			_, _, _ = ws.ReadMessage()
			ws.Close()
		}
	}))
	defer srv.Close()
	c := newClientContext(t)
	var fails []int
	conn, err := c.DialRetry(context.Background(), wsURL(srv), nil, Backoff{Initial: 10 * time.Millisecond},
		func(n int, err error, wait time.Duration) {
			var de *DialError
			require.ErrorAs(t, err, &de)
			require.Equal(t, 503, de.Status)
			require.Positive(t, wait)
			fails = append(fails, n)
		})
	require.NoError(t, err)
	require.Equal(t, []int{1, 2}, fails)
	_ = conn.Close(StatusNormalClosure, "")

	// Attempts caps the dials; a bad URL is not retried.
	n := 0
	_, err = c.DialRetry(context.Background(), "ws://127.0.0.1:1/", nil, Backoff{Initial: time.Millisecond, Attempts: 3},
		func(int, error, time.Duration) { n++ })
	require.Error(t, err)
	require.Equal(t, 3, n)
	n = 0
	_, err = c.DialRetry(context.Background(), "ftp://x/", nil, Backoff{}, func(int, error, time.Duration) { n++ })
	require.Error(t, err)
	require.Equal(t, 1, n)
}

// TestDialLongFrameOverMax: a server sends a dialled link one 1 MiB frame
// against MaxMessageSize 64 KiB. The link closes with 1009 and the process
// survives: libwebsockets' client parser overflows its frame buffer when
// CLIENT_RECEIVE returns -1 in the middle of a long frame (see
// Conn.receive), which crashed this test with SIGSEGV before.
func TestDialLongFrameOverMax(t *testing.T) {
	lim := newLimitLog()
	codes := make(chan int, 1)
	url := rawServer(t, "", func(w *rawPeer) {
		go func() { _, _ = w.nc.Write(serverFrame(true, false, 2, bytes.Repeat([]byte("x"), 1<<20))) }()
		codes <- w.readCloseCode()
	})
	c := newClientContext(t, lim.hook, quickClose)
	s := newSink()
	_, err := c.Dial(context.Background(), url, &DialOptions{Handler: s, MaxMessageSize: 64 << 10})
	require.NoError(t, err)
	ce := s.waitClose(t)
	assert.Equal(t, StatusMessageTooBig, ce.Code)
	assert.True(t, ce.Local)
	lim.expect(t, "", LimitMaxMessage)
	assert.Equal(t, int(StatusMessageTooBig), waitFor(t, codes, "the close frame"))
}

// TestDialCloseWith101: a server's close frame that arrives in the same
// read as its 101 is answered, on both loops. libwebsockets keeps such
// bytes in the link's buffer list and parses them after the handshake; a
// WS_PEER_INITIATED_CLOSE that returned -1 there (the binding did for a
// bare 1002) left them unconsumed, and on libev the same service pass
// parsed them again and killed the link before its close frame went out
// (conformance client case 7.7.3).
func TestDialCloseWith101(t *testing.T) {
	for _, loop := range []EventLoop{EventLoopLibev, EventLoopPoll} {
		t.Run(string(loop), func(t *testing.T) {
			c := newClientContext(t, quickClose, func(c *Config) { c.EventLoop = loop })
			for _, code := range []StatusCode{StatusNormalClosure, StatusGoingAway, StatusProtocolError, 4000} {
				for range 5 {
					answer := make(chan []byte, 1)
					url := rawServerThen(t, "", serverFrame(true, false, 8, []byte{byte(code >> 8), byte(code)}), func(w *rawPeer) {
						for {
							_, _, op, p, err := w.read()
							if err != nil {
								answer <- nil
								return
							}
							if op == 8 {
								answer <- p
								return
							}
						}
					})
					s := newSink()
					_, err := c.Dial(context.Background(), url, &DialOptions{Handler: s})
					require.NoError(t, err)
					got := waitFor(t, answer, "the client's answer")
					require.NotNil(t, got, "close %d: TCP closed without the close answer", code)
					assert.Equal(t, []byte{byte(code >> 8), byte(code)}, got, "close %d", code)
					ce := s.waitClose(t)
					assert.Equal(t, code, ce.Code)
					assert.False(t, ce.Local)
				}
			}
		})
	}
}
