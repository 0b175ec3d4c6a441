package lws

// Pipelined HTTP requests (RFC 9112 section 9.3.2): a client sends its next
// requests before the answers to the last. libwebsockets 4.1.6 and 4.3.5
// both mishandle them (httpConn says how); the binding must answer them in
// order, or answer what it can and then close the connection cleanly, with
// "connection: close" on its last answer. Never a spin, never a stall, and
// never a handler called with bytes of another request.

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// pipeReq is one request of a pipeline; reply, when set, is the answer the
// test gives it (a /slow request).
type pipeReq struct{ method, path, body, reply string }

func (p pipeReq) wire() string {
	if p.method == "GET" {
		return "GET " + p.path + " HTTP/1.1\r\nHost: test\r\n\r\n"
	}
	return fmt.Sprintf("%s %s HTTP/1.1\r\nHost: test\r\nContent-Length: %d\r\n\r\n%s", p.method, p.path, len(p.body), p.body)
}

// answer is what pipeServer's handler answers to p.
func (p pipeReq) answer() string {
	if p.reply != "" {
		return p.reply
	}
	return p.method + " " + p.path + " " + p.body
}

// gets returns n GET requests, every second one a POST when mixed.
func gets(n int, mixed bool) []pipeReq {
	var rs []pipeReq
	for i := range n {
		p := pipeReq{method: "GET", path: fmt.Sprintf("/r%d", i)}
		if mixed && i%2 == 1 {
			p = pipeReq{method: "POST", path: fmt.Sprintf("/r%d", i), body: strings.Repeat("b", i)}
		}
		rs = append(rs, p)
	}
	return rs
}

func posts(n int) []pipeReq {
	var rs []pipeReq
	for i := range n {
		rs = append(rs, pipeReq{method: "POST", path: fmt.Sprintf("/p%d", i), body: fmt.Sprintf("body-%d", i)})
	}
	return rs
}

func wires(rs []pipeReq) string {
	var b strings.Builder
	for _, r := range rs {
		b.WriteString(r.wire())
	}
	return b.String()
}

// pipeServer serves pipeReq.answer; a request for /slow... is handed to the
// returned channel and answered by the test, later, from its goroutine.
func pipeServer(t *testing.T, mod ...func(*Config)) (*Context, string, <-chan *ResponseWriter) {
	t.Helper()
	slow := make(chan *ResponseWriter, 4)
	cfg := &Config{Listeners: []Listener{{Name: "edge", Addr: "127.0.0.1:0", Handler: EchoHandler{},
		HTTPHandler: HTTPHandlerFunc(func(w *ResponseWriter, r *Request) {
			switch {
			case strings.HasPrefix(r.Path, "/slow"):
				slow <- w
				return
			case r.Path == "/health":
				_ = w.Respond(http.StatusOK, []byte("ok")) // healthy
				return
			}
			_ = w.Respond(http.StatusOK, []byte(r.Method+" "+r.Path+" "+string(r.Body)))
		})}}, Logger: testLogger(t)}
	for _, m := range mod {
		m(cfg)
	}
	c, err := New(cfg)
	require.NoError(t, err)
	t.Cleanup(func() { closeCtxWithin(t, c, 10*time.Second) })
	return c, c.Addrs()[0].String(), slow
}

// closeCtxWithin closes c, failing the test instead of hanging when its
// service goroutine does not come back (it is stuck inside libwebsockets).
func closeCtxWithin(t *testing.T, c *Context, d time.Duration) {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- c.Close() }()
	select {
	case err := <-done:
		assert.NoError(t, err)
	case <-time.After(d):
		t.Errorf("Close did not return in %v: the service goroutine is stuck", d)
	}
}

// serviceTID returns the OS thread of c's service goroutine.
func serviceTID(t *testing.T, c *Context) int {
	t.Helper()
	tid := make(chan int, 1)
	require.NoError(t, c.Do(func() { tid <- syscall.Gettid() }))
	return <-tid
}

// readAnswers reads the answers to reqs from rd: in order, each the answer
// to its request, until all came or the server closed the connection. A
// server that stops early must have said "connection: close" on its last
// answer, and then close. It returns how many requests were answered.
func readAnswers(t *testing.T, nc net.Conn, rd *bufio.Reader, reqs []pipeReq) int {
	t.Helper()
	require.NoError(t, nc.SetReadDeadline(time.Now().Add(hangTimeout)))
	served := 0
	for i, req := range reqs {
		resp, err := http.ReadResponse(rd, nil)
		if err != nil {
			require.Positive(t, i, "no answer at all: %v", err)
			t.Fatalf("after %d answers, neither an answer to %s %s nor a clean close: %v", i, req.method, req.path, err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, resp.StatusCode, "answer %d", i)
		require.Equal(t, req.answer(), string(body), "answer %d is not its request's", i)
		served++
		if resp.Close {
			rest, err := io.ReadAll(rd)
			assert.NoError(t, err, "connection not closed after connection: close")
			assert.Empty(t, rest, "bytes after the last answer")
			return served
		}
	}
	return served
}

// idleCPU is the service thread's CPU time over a quiet 300 ms: a thread
// that spins takes all of it.
func idleCPU(t *testing.T, tid int) time.Duration {
	t.Helper()
	before := threadCPU(t, tid)
	time.Sleep(300 * time.Millisecond)
	return threadCPU(t, tid) - before
}

// TestHostilePipelining sends pipelined requests in the ways a client can:
// all in one write, one write each, bodies split across TCP segments, and
// requests arriving while a handler's answer is still pending. Each case
// checks the answers (readAnswers), that the service thread is idle once
// they are out (a spin takes its whole CPU), and that the loop still
// answers; the listener stays healthy.
func TestHostilePipelining(t *testing.T) {
	type step struct {
		send string // written in one write
		gap  bool   // then give the server time to read it alone
		slow bool   // then wait for the handler of its /slow request, answered after the last step
	}
	oneWrite := func(rs []pipeReq) []step { return []step{{send: wires(rs)}} }
	eachWrite := func(rs []pipeReq) []step {
		var s []step
		for _, r := range rs {
			s = append(s, step{send: r.wire()})
		}
		return s
	}
	mixed3 := []pipeReq{{method: "GET", path: "/1"}, {method: "POST", path: "/2", body: "xyz"}, {method: "GET", path: "/3"}}
	split := []pipeReq{{method: "POST", path: "/1", body: "0123456789"}, {method: "POST", path: "/2", body: "ab"}}
	head, tail := split[0].wire()[:len(split[0].wire())-6], split[0].wire()[len(split[0].wire())-6:]
	slowGet := []pipeReq{{method: "GET", path: "/slow"}, {method: "POST", path: "/2", body: "late"}}
	slowPost := []pipeReq{{method: "POST", path: "/slow", body: "first"}, {method: "GET", path: "/2"}}
	slowTwo := []pipeReq{{method: "GET", path: "/slow"}, {method: "POST", path: "/2", body: "late"}, {method: "GET", path: "/3"}}
	// 16 MiB: more than the socket buffers of both ends hold, so the
	// answer is still being written when the next request arrives.
	bigGet := []pipeReq{{method: "GET", path: "/slow", reply: strings.Repeat("big answer ", 16<<20/11)}, {method: "GET", path: "/2"}}
	for _, tc := range []struct {
		name  string
		reqs  []pipeReq
		steps []step
		all   bool // every request must be served
		// answerFirst: the slow request is answered before the
		// steps after it, not after the last.
		answerFirst bool
	}{
		{name: "2 POST, one write", reqs: posts(2), steps: oneWrite(posts(2))},
		{name: "2 GET, one write", reqs: gets(2, false), steps: oneWrite(gets(2, false))},
		{name: "GET POST GET, one write", reqs: mixed3, steps: oneWrite(mixed3)},
		{name: "50 GET, one write", reqs: gets(50, false), steps: oneWrite(gets(50, false))},
		{name: "50 POST, one write", reqs: posts(50), steps: oneWrite(posts(50))},
		{name: "50 GET and POST, a write each", reqs: gets(50, true), steps: eachWrite(gets(50, true))},
		{name: "body split, next request with its end", reqs: split,
			steps: []step{{send: head, gap: true}, {send: tail + split[1].wire()}}},
		{name: "body split, next request after it", reqs: split,
			steps: []step{{send: head, gap: true}, {send: tail, gap: true}, {send: split[1].wire()}}},
		// Rx is paused while an answer is pending: what the client
		// sends meanwhile is read after the answer, as a fresh request.
		{name: "request while a GET's answer is pending", reqs: slowGet, all: true,
			steps: []step{{send: slowGet[0].wire(), slow: true}, {send: slowGet[1].wire()}}},
		{name: "request while a POST's answer is pending", reqs: slowPost, all: true,
			steps: []step{{send: slowPost[0].wire(), slow: true}, {send: slowPost[1].wire()}}},
		{name: "two requests while an answer is pending", reqs: slowTwo,
			steps: []step{{send: slowTwo[0].wire(), slow: true}, {send: wires(slowTwo[1:])}}},
		{name: "request while a large answer is being written", reqs: bigGet, all: true, answerFirst: true,
			steps: []step{{send: bigGet[0].wire(), slow: true}, {send: bigGet[1].wire()}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, addr, slow := pipeServer(t)
			tid := serviceTID(t, c)
			nc, err := net.DialTimeout("tcp", addr, 5*time.Second)
			require.NoError(t, err)
			defer nc.Close()
			var pending *ResponseWriter
			for _, s := range tc.steps {
				if _, err := io.WriteString(nc, s.send); err != nil {
					// The server may have answered and closed
					// already (readAnswers checks it did so cleanly).
					t.Logf("write: %v", err)
					break
				}
				if s.slow {
					pending = waitFor(t, slow, "the slow request")
					if tc.answerFirst {
						require.NoError(t, pending.Respond(http.StatusOK, []byte(tc.reqs[0].answer())))
						pending = nil
						// The client reads nothing yet: the
						// answer waits for the socket.
						assert.Less(t, idleCPU(t, tid), 100*time.Millisecond, "the service thread is busy while the answer waits")
					}
				}
				if s.gap {
					// A split the test cannot observe, only
					// make likely.
					time.Sleep(20 * time.Millisecond)
				}
			}
			if pending != nil {
				// The later requests are on their way: answer now,
				// from this goroutine.
				require.NoError(t, pending.Respond(http.StatusOK, []byte(tc.reqs[0].answer())))
			}
			served := readAnswers(t, nc, bufio.NewReader(nc), tc.reqs)
			cpu := idleCPU(t, tid)
			t.Logf("%d of %d requests served; service thread CPU in the 300 ms after: %v", served, len(tc.reqs), cpu)
			assert.Less(t, cpu, 100*time.Millisecond, "the service thread is busy with nothing to do")
			if tc.all {
				assert.Equal(t, len(tc.reqs), served, "requests not served")
			}
			nc.Close()
			assert.Less(t, idleCPU(t, tid), 100*time.Millisecond, "the service thread is busy after the client left")
			done := make(chan struct{})
			go func() { _ = c.Do(func() {}); close(done) }()
			select {
			case <-done:
			case <-time.After(5 * time.Second):
				t.Fatal("the service goroutine does not run queued work")
			}
			healthy(t, addr)
		})
	}
}
