package lws

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"log"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// HTTP clients and servers: Go's, against the binding's listeners, and for
// the binding's Transport.

// httpClient returns a client with its own keep-alive pool, closed when the
// test ends.
func httpClient(t testing.TB) *http.Client {
	tr := &http.Transport{MaxConnsPerHost: 1, MaxIdleConnsPerHost: 1, DisableCompression: true}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: hangTimeout}
}

// doHTTP sends a request and returns the response with its body read.
func doHTTP(t testing.TB, cl *http.Client, method, url string, body []byte, hdr http.Header) (*http.Response, []byte) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, url, rd)
	require.NoError(t, err)
	for k, vs := range hdr {
		req.Header[k] = vs
	}
	resp, err := cl.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp, b
}

// reqCapture is an HTTPHandler that keeps a copy of each request and
// answers with respond.
type reqCapture struct {
	reqs    chan *Request
	respond func(w *ResponseWriter, r *Request)
}

func newCapture(respond func(w *ResponseWriter, r *Request)) *reqCapture {
	return &reqCapture{reqs: make(chan *Request, 256), respond: respond}
}

func (h *reqCapture) ServeHTTP(w *ResponseWriter, r *Request) {
	h.reqs <- r
	h.respond(w, r)
}

// hostileServer is a listener serving WebSocket echo and HTTP "ok".
func hostileServer(t *testing.T, l Listener, mod ...func(*Config)) (*Context, string) {
	t.Helper()
	if l.Handler == nil {
		l.Handler = EchoHandler{}
	}
	if l.HTTPHandler == nil {
		l.HTTPHandler = HTTPHandlerFunc(func(w *ResponseWriter, r *Request) {
			_ = w.Respond(http.StatusOK, []byte("ok"))
		})
	}
	return startServer(t, l, mod...)
}

// healthy checks that the listener at addr still serves a fresh WebSocket
// echo and an HTTP request.
func healthy(t *testing.T, addr string) {
	t.Helper()
	echo(t, dial(t, addr, nil), "still healthy")
	resp, body := rawHTTP(t, addr, "GET /health HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n")
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Equal(t, "ok", string(body))
}

// refusedBody is the 503 an admission limit answers with.
func refusedBody(t *testing.T, resp *http.Response, body []byte, limit Limit) {
	t.Helper()
	require.NotNil(t, resp, "no HTTP answer")
	assert.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)
	assert.NotEmpty(t, resp.Header.Get("Retry-After"))
	assert.True(t, resp.Close, "Connection: close")
	assert.Contains(t, string(body), "503 Service Unavailable: "+string(limit)+": ")
}

// hcContext starts a Context without listeners, closed when the
// test ends.
func hcContext(t testing.TB) *Context {
	t.Helper()
	c, err := New(&Config{Logger: testLogger(t)})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, c.Close()) })
	return c
}

// hcClient is an http.Client over a Transport on c.
func hcClient(c *Context, mod ...func(*Transport)) *http.Client {
	tr := &Transport{Context: c}
	for _, m := range mod {
		m(tr)
	}
	return &http.Client{Transport: tr, Timeout: hangTimeout}
}

// hcServer starts an httptest server, closed when the test ends, that
// does not log to stderr. sndbuf > 0 fixes the accepted sockets' send
// buffer (no autotuning).
func hcServer(t testing.TB, h http.HandlerFunc, sndbuf int) *httptest.Server {
	t.Helper()
	srv := httptest.NewUnstartedServer(h)
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	if sndbuf > 0 {
		srv.Listener = hcSndbufListener{srv.Listener, sndbuf}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	return srv
}

type hcSndbufListener struct {
	net.Listener
	size int
}

func (l hcSndbufListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetWriteBuffer(l.size)
	}
	return c, err
}

// hcRawServer accepts TCP connections on 127.0.0.1 and runs serve on each;
// at the end of the test the listener and every connection are closed and
// the goroutines waited for.
func hcRawServer(t testing.TB, serve func(net.Conn)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		conns []net.Conn
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, nc)
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				serve(nc)
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, nc := range conns {
			nc.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return ln.Addr().String()
}

// hcRandBytes returns n deterministic pseudo-random bytes.
func hcRandBytes(n int, seed uint64) []byte {
	var key [32]byte
	key[0] = byte(seed)
	b := make([]byte, n)
	_, _ = rand.NewChaCha8(key).Read(b)
	return b
}

func hcSum(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// hcDialErr asserts err is (or wraps) a *DialError and returns it.
func hcDialErr(t testing.TB, err error) *DialError {
	t.Helper()
	var de *DialError
	require.ErrorAs(t, err, &de, "not a *DialError: %v", err)
	return de
}

func hcGet(t testing.TB, cl *http.Client, url string) (*http.Response, []byte) {
	t.Helper()
	resp, err := cl.Get(url)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp, b
}

// hcStallingBody serves a response that sends part of its body and then
// waits until the client goes away; the server's closes channel receives
// once per connection the client closed.
func hcStallingBody(t testing.TB) (url string, sent, closes chan struct{}) {
	sent, closes = make(chan struct{}, 4), make(chan struct{}, 4)
	srv := hcServer(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "1000000")
		_, _ = w.Write(bytes.Repeat([]byte("a"), 1000))
		w.(http.Flusher).Flush()
		sent <- struct{}{}
		select {
		case <-r.Context().Done():
			closes <- struct{}{}
		case <-time.After(hangTimeout):
		}
	}, 0)
	return srv.URL, sent, closes
}
