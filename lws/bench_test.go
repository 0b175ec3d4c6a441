package lws

import (
	"bytes"
	"context"
	"net"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/lwsgate/lwsgate/callbacks"
)

// The hot paths of a WebSocket echo, measured with go test -bench (issue 6
// item 4). Allocation counts are per message; the target is 0 in steady
// state.

// BenchmarkReceiveReassembly: a whole message arriving in one RECEIVE
// callback is copied out of libwebsockets' buffer and handed to the
// handler (no wsi needed).
func BenchmarkReceiveReassembly(b *testing.B) {
	for _, size := range []int{32, 1024, 64 << 10} {
		b.Run(byteSize(size), func(b *testing.B) {
			got := 0
			c := &Conn{r: &rec{}}
			c.o.Store(&linkOpts{maxMessage: -1, handler: HandlerFuncs{
				Message: func(_ *Conn, _ MessageType, data []byte) { got += len(data) },
			}})
			payload := make([]byte, size)
			ev := &callbacks.Event{Reason: callbacks.Receive, Data: payload,
				Flags: callbacks.FirstFragment | callbacks.FinalFragment | callbacks.Binary | callbacks.NoRemaining}
			b.SetBytes(int64(size))
			b.ReportAllocs()
			for b.Loop() {
				c.onReceive(ev)
			}
			if got != size*b.N {
				b.Fatalf("handler saw %d bytes, want %d", got, size*b.N)
			}
		})
	}
}

// BenchmarkEcho: one lws client link and one lws server link in the same
// process, ping-pong: each iteration is Send, the server's echo, and the
// client's receive, across two contexts (two service threads).
func BenchmarkEcho(b *testing.B) {
	for _, size := range []int{32, 1024, 64 << 10} {
		b.Run(byteSize(size), func(b *testing.B) {
			srv, err := New(&Config{Logger: testLogger(b), Listeners: []Listener{{Addr: "127.0.0.1:0", Handler: EchoHandler{}, MaxMessageSize: 1 << 20}}})
			if err != nil {
				b.Fatal(err)
			}
			defer srv.Close()
			cli, err := New(&Config{Logger: testLogger(b)})
			if err != nil {
				b.Fatal(err)
			}
			defer cli.Close()
			replies := make(chan struct{}, 1)
			conn, err := cli.Dial(context.Background(), "ws://"+srv.Addrs()[0].String()+"/", &DialOptions{
				MaxMessageSize: 1 << 20,
				Handler:        HandlerFuncs{Message: func(*Conn, MessageType, []byte) { replies <- struct{}{} }},
			})
			if err != nil {
				b.Fatal(err)
			}
			msg := make([]byte, size)
			b.SetBytes(int64(size))
			b.ReportAllocs()
			cpu0 := processCPU(b)
			for b.Loop() {
				if err := conn.Send(BinaryMessage, msg); err != nil {
					b.Fatal(err)
				}
				<-replies
			}
			b.StopTimer()
			// Both sides' CPU (client and server contexts, one process).
			b.ReportMetric(float64(processCPU(b)-cpu0)/float64(b.N), "cpu-ns/op")
			_ = conn.Close(StatusNormalClosure, "")
		})
	}
}

// BenchmarkSendPipelined: Send from another goroutine as fast as the queue
// takes it (MaxSendQueue bounds it; a full queue is retried), the server
// echoing; measures the send queue, the wake-up and write batching.
func BenchmarkSendPipelined(b *testing.B) {
	srv, err := New(&Config{Logger: testLogger(b), Listeners: []Listener{{Addr: "127.0.0.1:0", Handler: EchoHandler{}}}})
	if err != nil {
		b.Fatal(err)
	}
	defer srv.Close()
	cli, err := New(&Config{Logger: testLogger(b)})
	if err != nil {
		b.Fatal(err)
	}
	defer cli.Close()
	const depth = 64
	credits := make(chan struct{}, depth)
	for range depth {
		credits <- struct{}{}
	}
	conn, err := cli.Dial(context.Background(), "ws://"+srv.Addrs()[0].String()+"/", &DialOptions{
		Handler: HandlerFuncs{Message: func(*Conn, MessageType, []byte) { credits <- struct{}{} }},
	})
	if err != nil {
		b.Fatal(err)
	}
	msg := make([]byte, 32)
	b.SetBytes(32)
	b.ReportAllocs()
	for b.Loop() {
		<-credits
		if err := conn.Send(BinaryMessage, msg); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	for range depth {
		<-credits
	}
	_ = conn.Close(StatusNormalClosure, "")
}

func byteSize(n int) string {
	switch {
	case n >= 1<<10 && n%(1<<10) == 0:
		return itoaB(n>>10) + "KiB"
	}
	return itoaB(n) + "B"
}

func itoaB(n int) string {
	if n == 0 {
		return "0"
	}
	var b []byte
	for ; n > 0; n /= 10 {
		b = append([]byte{byte('0' + n%10)}, b...)
	}
	return string(b)
}

// BenchmarkHTTPRequest: one keep-alive POST and its answer per iteration,
// from a raw TCP client that allocates nothing, so that allocs/op are the
// server's: request, response writer, headers, body copies. The handler
// sets its Content-Type with Header().Set (the http.Header map, made when
// first asked for) or with SetHeader (no map).
func BenchmarkHTTPRequest(b *testing.B) {
	b.Run("Header", func(b *testing.B) {
		benchHTTPRequest(b, func(w *ResponseWriter, r *Request) {
			w.Header().Set("Content-Type", "application/json")
			_ = w.Respond(200, r.Body)
		})
	})
	b.Run("SetHeader", func(b *testing.B) {
		benchHTTPRequest(b, func(w *ResponseWriter, r *Request) {
			w.SetHeader("Content-Type", "application/json")
			_ = w.Respond(200, r.Body)
		})
	})
	b.Run("RespondAppend", func(b *testing.B) {
		benchHTTPRequest(b, func(w *ResponseWriter, r *Request) {
			w.SetHeader("Content-Type", "application/json")
			_ = w.RespondAppend(200, len(r.Body), func(b []byte) []byte { return append(b, r.Body...) })
		})
	})
}

func benchHTTPRequest(b *testing.B, h HTTPHandlerFunc) {
	srv, err := New(&Config{Logger: testLogger(b), Listeners: []Listener{{Addr: "127.0.0.1:0", Accept: AcceptHTTP,
		HTTPHandler: h}}})
	if err != nil {
		b.Fatal(err)
	}
	defer srv.Close()
	roundTrip := createTokenClient(b, srv.Addrs()[0].String())
	b.ReportAllocs()
	for b.Loop() {
		roundTrip()
	}
}

// createTokenClient connects a raw TCP client that allocates nothing to
// addr, whose handler must echo the body, and returns its round trip: one
// keep-alive POST of a createtoken body and the whole answer, which must be
// as long as the first one.
func createTokenClient(tb testing.TB, addr string) (roundTrip func()) {
	nc, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { nc.Close() })
	body := `{"UserName":"keda","RequestId":"1614738418531"}`
	req := []byte("POST /v1/api/createtoken HTTP/1.1\r\nHost: bench\r\nContent-Type: application/json\r\nContent-Length: " +
		strconv.Itoa(len(body)) + "\r\n\r\n" + body)
	buf := make([]byte, 4096)
	exchange := func(want int) int {
		if _, err := nc.Write(req); err != nil {
			tb.Fatal(err)
		}
		n := 0
		for {
			m, err := nc.Read(buf[n:])
			if err != nil {
				tb.Fatal(err)
			}
			n += m
			if want > 0 && n >= want {
				return n
			}
			if want == 0 {
				if i := bytes.Index(buf[:n], []byte("\r\n\r\n")); i >= 0 && bytes.HasSuffix(buf[:n], []byte(body)) {
					return n
				}
			}
		}
	}
	size := exchange(0)
	return func() {
		if n := exchange(size); n != size {
			tb.Fatalf("answer of %d bytes, want %d", n, size)
		}
	}
}

// BenchmarkAcceptCPU: the process CPU (clients included: same for each)
// per short HTTP connection (connect, one GET with Connection: close, read
// to EOF), accepted by libwebsockets' own listener (one Context) or by a
// Group's acceptor, which accepts in Go and hands the socket over
// (adopt): what workers: N costs per connection.
func BenchmarkAcceptCPU(b *testing.B) {
	l := Listener{Addr: "127.0.0.1:0", MaxLinks: -1, AcceptRate: -1,
		HTTPHandler: HTTPHandlerFunc(func(w *ResponseWriter, r *Request) { _ = w.Respond(200, nil) })}
	cfg := func(int) *Config { return &Config{Logger: testLogger(b), Listeners: []Listener{l}} }
	run := func(b *testing.B, addr string) {
		req := []byte("GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
		start := processCPU(b)
		// 8 clients per GOMAXPROCS at once: accepts come in bursts, as
		// under load, rather than one at a time.
		b.SetParallelism(8)
		b.RunParallel(func(pb *testing.PB) {
			buf := make([]byte, 4096)
			for pb.Next() {
				nc, err := net.Dial("tcp", addr)
				if err != nil {
					b.Error(err)
					return
				}
				if _, err := nc.Write(req); err != nil {
					b.Error(err)
				}
				for {
					if _, err := nc.Read(buf); err != nil {
						break
					}
				}
				nc.Close()
			}
		})
		b.ReportMetric(float64(processCPU(b)-start)/float64(b.N), "cpu-ns/op")
	}
	b.Run("context", func(b *testing.B) {
		c, err := New(cfg(0))
		if err != nil {
			b.Fatal(err)
		}
		defer c.Close()
		run(b, c.Addrs()[0].String())
	})
	for _, n := range []int{1, 2} {
		b.Run("group-"+strconv.Itoa(n), func(b *testing.B) {
			g, err := NewGroup(n, cfg)
			if err != nil {
				b.Fatal(err)
			}
			defer g.Close()
			run(b, g.Addrs()[0].String())
		})
	}
}

// processCPU is the CPU time (user and system) this process has used.
func processCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkCheckUpgrade: the checks every WebSocket upgrade passes
// (checkFraming, checkUpgrade) on the headers a browser sends, read as
// parseRequest leaves them.
func BenchmarkCheckUpgrade(b *testing.B) {
	hdr := "Host\x00example.com\x00Upgrade\x00websocket\x00Connection\x00Upgrade\x00" +
		"Sec-Websocket-Key\x00dGhlIHNhbXBsZSBub25jZQ==\x00Sec-Websocket-Version\x0013\x00" +
		"Origin\x00https://example.com\x00User-Agent\x00Mozilla/5.0 (X11; Linux x86_64)\x00" +
		"Sec-Websocket-Extensions\x00permessage-deflate; client_max_window_bits\x00"
	raw := "GET\x00/\x00\x00HTTP/1.1\x00" + hdr
	protos := []string{"lws-go-http"}
	b.ReportAllocs()
	for b.Loop() {
		var req Request
		if err := parseRequest(&req, raw, nil, 1, "ws"); err != nil {
			b.Fatal(err)
		}
		if f := checkFraming(&req); !f.ok() {
			b.Fatal(f.why)
		}
		var pbuf, ebuf [4]string // as onConfirmUpgrade keeps them
		if f, _ := checkUpgrade(&req, protos, upgradeOffers{protocols: pbuf[:0], extensions: ebuf[:0]}); !f.ok() {
			b.Fatal(f.why)
		}
	}
}
