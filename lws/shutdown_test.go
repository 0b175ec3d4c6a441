package lws

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lwsgate/lwsgate/cgo"
)

// newServer is startServer without the automatic Close: shutdown tests
// close the context themselves.
func newServer(t *testing.T, l Listener, mod ...func(*Config)) (*Context, string) {
	t.Helper()
	// startServer's cleanup Close is a no-op once the test closed it.
	return startServer(t, l, mod...)
}

func TestCloseSendsGoingAway(t *testing.T) {
	rec := newRecorder()
	ctx, addr := newServer(t, Listener{Handler: rec})
	const n = 3
	codes := make(chan *websocket.CloseError, n)
	for i := 0; i < n; i++ {
		ws := dial(t, addr, nil)
		waitFor(t, rec.opens, "OnOpen")
		go func() {
			// Reading makes gorilla answer the close frame.
			for {
				_, _, err := ws.ReadMessage()
				if err != nil {
					ce, _ := err.(*websocket.CloseError)
					codes <- ce
					return
				}
			}
		}()
	}
	require.NoError(t, ctx.Close())
	for i := 0; i < n; i++ {
		ce := waitFor(t, codes, "client close")
		require.NotNil(t, ce, "link ended without a close frame")
		assert.Equal(t, websocket.CloseGoingAway, ce.Code)
	}
	// The handler learnt about every link.
	for i := 0; i < n; i++ {
		ev := waitFor(t, rec.closes, "OnClose")
		assert.Equal(t, StatusGoingAway, ev.ce.Code)
	}
	select {
	case <-ctx.Done():
	default:
		t.Fatal("Done not closed after Close returned")
	}
}

func TestCloseIdempotent(t *testing.T) {
	t.Run("sequential", func(t *testing.T) {
		ctx, _ := newServer(t, Listener{Handler: EchoHandler{}})
		assert.NoError(t, ctx.Close())
		assert.NoError(t, ctx.Close())
	})
	t.Run("concurrent", func(t *testing.T) {
		rec := newRecorder()
		ctx, addr := newServer(t, Listener{Handler: rec})
		ws := dial(t, addr, nil)
		waitFor(t, rec.opens, "OnOpen")
		go func() { _, _, _ = ws.ReadMessage() }()
		var wg sync.WaitGroup
		errs := make([]error, 10)
		start := make(chan struct{})
		for i := range errs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				errs[i] = ctx.Close()
			}()
		}
		close(start)
		wg.Wait()
		for i, err := range errs {
			assert.NoError(t, err, "Close #%d", i)
		}
		assert.NoError(t, ctx.Close())
	})
	t.Run("Shutdown then Close", func(t *testing.T) {
		ctx, _ := newServer(t, Listener{Handler: EchoHandler{}})
		assert.NoError(t, ctx.Shutdown(context.Background()))
		assert.NoError(t, ctx.Close())
	})
}

func TestCloseReleasesHandles(t *testing.T) {
	before := cgo.LiveHandles()
	rec := newRecorder()
	h := HTTPHandlerFunc(func(w *ResponseWriter, r *Request) { _ = w.Respond(http.StatusOK, []byte("ok")) })
	ctx, addr := newServer(t, Listener{Handler: rec, HTTPHandler: h})
	ws := dial(t, addr, nil)
	waitFor(t, rec.opens, "OnOpen")
	echo(t, ws, "x")
	resp, _ := doHTTP(t, httpClient(t), "GET", "http://"+addr+"/", nil, nil)
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Greater(t, cgo.LiveHandles(), before, "no handle while links are open?")
	go func() { _, _, _ = ws.ReadMessage() }()
	require.NoError(t, ctx.Close())
	assert.Equal(t, before, cgo.LiveHandles())
}

func TestSendAfterContextClose(t *testing.T) {
	rec := newRecorder()
	ctx, addr := newServer(t, Listener{Handler: rec})
	ws := dial(t, addr, nil)
	c := waitFor(t, rec.opens, "OnOpen")
	go func() { _, _, _ = ws.ReadMessage() }()
	require.NoError(t, ctx.Close())
	err := c.SendText("after close")
	assert.ErrorIs(t, err, ErrClosed)
	assert.Equal(t, StatusGoingAway, CloseStatus(err))
	assert.ErrorIs(t, c.Close(1000, ""), ErrClosed)
}

func TestDoAfterClose(t *testing.T) {
	ctx, _ := newServer(t, Listener{Handler: EchoHandler{}})
	ran := false
	require.NoError(t, ctx.Do(func() { ran = true }))
	assert.True(t, ran)

	require.NoError(t, ctx.Close())
	ran = false
	assert.ErrorIs(t, ctx.Do(func() { ran = true }), ErrClosed)
	assert.False(t, ran)
}

// readRawClose reads the server's close frame from the raw connection,
// bypassing gorilla so that nothing answers it, and returns its code.
func readRawClose(t *testing.T, nc net.Conn) int {
	t.Helper()
	require.NoError(t, nc.SetReadDeadline(time.Now().Add(hangTimeout)))
	var hdr [2]byte
	_, err := io.ReadFull(nc, hdr[:])
	require.NoError(t, err)
	require.Equal(t, byte(0x88), hdr[0], "not a final close frame")
	payload := make([]byte, hdr[1]&0x7f)
	_, err = io.ReadFull(nc, payload)
	require.NoError(t, err)
	require.GreaterOrEqual(t, len(payload), 2)
	return int(payload[0])<<8 | int(payload[1])
}

// TestCloseWaitsForCloseAck: after Close sent its close frame, the link
// stays until the client answers (or the caller gives up): the server
// does not drop the TCP connection under the client's feet.
func TestCloseWaitsForCloseAck(t *testing.T) {
	for _, answer := range []bool{true, false} {
		t.Run(fmt.Sprintf("client answers %v", answer), func(t *testing.T) {
			rec := newRecorder()
			ctx, addr := newServer(t, Listener{Handler: rec}, func(c *Config) { c.ShutdownTimeout = time.Hour })
			ws := dial(t, addr, nil) // gorilla never reads: nothing answers automatically
			waitFor(t, rec.opens, "OnOpen")
			sctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			done := make(chan error, 1)
			go func() { done <- ctx.Shutdown(sctx) }()

			assert.Equal(t, 1001, readRawClose(t, ws.UnderlyingConn()))
			// Let the service loop make a few passes (no clock involved).
			for i := 0; i < 3; i++ {
				require.NoError(t, ctx.Do(func() {}), "context gone before the close was acknowledged")
			}
			select {
			case ev := <-rec.closes:
				t.Fatalf("link dropped before the client acknowledged the close: %+v", ev.ce)
			case err := <-done:
				t.Fatalf("Shutdown returned %v before the client acknowledged the close", err)
			default:
			}

			if answer {
				require.NoError(t, ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(1001, ""), time.Now().Add(5*time.Second)))
				assert.NoError(t, waitFor(t, done, "Shutdown"))
			} else {
				// Shutdown cannot finish on its own (it would wait an
				// hour): it returns because of cancel, with its error.
				cancel()
				assert.ErrorIs(t, waitFor(t, done, "Shutdown"), context.Canceled)
			}
			ev := waitFor(t, rec.closes, "OnClose")
			assert.Equal(t, CloseError{Code: StatusGoingAway, Reason: "server shutting down", Local: true}, ev.ce)
			<-ctx.Done()
		})
	}
}

func TestCloseLetsHTTPResponseFinish(t *testing.T) {
	writers := make(chan *ResponseWriter, 1)
	h := HTTPHandlerFunc(func(w *ResponseWriter, r *Request) { writers <- w }) // answered later
	rec := newRecorder()
	ctx, addr := newServer(t, Listener{Handler: rec, HTTPHandler: h})
	ws := dial(t, addr, nil) // a sentinel: its 1001 shows Close has begun
	waitFor(t, rec.opens, "OnOpen")

	type result struct {
		status int
		body   string
		err    error
	}
	got := make(chan result, 1)
	go func() {
		tr := &http.Transport{}
		defer tr.CloseIdleConnections()
		resp, err := (&http.Client{Transport: tr, Timeout: hangTimeout}).Get("http://" + addr + "/slow")
		if err != nil {
			got <- result{err: err}
			return
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		got <- result{resp.StatusCode, string(b), err}
	}()
	w := waitFor(t, writers, "the request")

	closed := make(chan error, 1)
	go func() { closed <- ctx.Close() }()
	assert.Equal(t, websocket.CloseGoingAway, readClose(t, ws).Code)
	select {
	case err := <-closed:
		t.Fatalf("Close returned (%v) while a response was pending", err)
	default:
	}
	require.NoError(t, w.Respond(http.StatusOK, []byte("finished")))
	r := waitFor(t, got, "the response")
	require.NoError(t, r.err)
	assert.Equal(t, http.StatusOK, r.status)
	assert.Equal(t, "finished", r.body)
	assert.NoError(t, waitFor(t, closed, "Close"))
}
