// Command wsload is a small WebSocket echo load generator for lwsgate and the
// native reference server (testdata/native/lwsnative.c). Besides the echo
// load described here it has an idle-link memory mode, a connect-rate mode
// and an HTTP POST mode (-mode; see modes.go).
//
// Each connection first sends -depth messages, then sends one more for every
// echo it receives, so -depth messages are always in flight (-depth 1 is
// ping-pong). Every echo is checked for type and length, and a random sample
// also for content. When -size >= 8 the first 8 bytes of each message carry
// the send time, giving the round-trip latency of every echo.
//
// Only echoes received after -warmup and before -warmup+-d are counted. The
// result is one line:
//
//	msgs/s=123456 p50=41.0us p99=80.5us p999=120.2us errors=0
//
// plus, with -json, the same figures as one JSON object. The exit status is
// non-zero if any error occurred.
//
// Echoes arrive in send order (one TCP stream, FIFO server queue), so the
// reader knows the sequence number of each echo without it being on the wire.
package main

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"math/bits"
	"math/rand/v2"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
)

// Phases of a run, read by every connection on each echo.
const (
	phaseWarmup = iota
	phaseMeasure
	phaseStop
)

var (
	phase atomic.Int32
	t0    = time.Now() // timestamps are nanoseconds since t0 (monotonic)
)

type config struct {
	url, subprotocol   string
	conns, depth, size int
	dur, warmup        time.Duration
	binary, json       bool
	body               string
}

func main() {
	var cfg config
	flag.StringVar(&cfg.url, "url", "ws://127.0.0.1:8090/", "WebSocket URL")
	flag.StringVar(&cfg.subprotocol, "subprotocol", "", "Sec-WebSocket-Protocol to request (e.g. lws-gate)")
	flag.IntVar(&cfg.conns, "c", 1, "connections")
	flag.IntVar(&cfg.depth, "depth", 1, "messages in flight per connection (1 = ping-pong)")
	flag.IntVar(&cfg.size, "size", 64, "message size in bytes")
	flag.DurationVar(&cfg.dur, "d", 5*time.Second, "measured duration")
	flag.DurationVar(&cfg.warmup, "warmup", time.Second, "warm-up before measuring")
	flag.BoolVar(&cfg.binary, "binary", true, "binary messages (false: text)")
	flag.BoolVar(&cfg.json, "json", false, "also print the result as a JSON line")
	mode := flag.String("mode", "echo", "echo, idle, connect or http (see modes.go)")
	pid := flag.Int("pid", 0, "server process id (-mode idle reads its RSS)")
	flag.StringVar(&cfg.body, "body", "", "request body for -mode http (default: -size bytes of 'x')")
	flag.Parse()
	if cfg.conns < 1 || cfg.depth < 1 || cfg.size < 0 || cfg.dur <= 0 || cfg.warmup < 0 {
		fmt.Fprintln(os.Stderr, "wsload: -c and -depth must be >= 1, -size >= 0, -d > 0, -warmup >= 0")
		os.Exit(2)
	}
	switch *mode {
	case "echo":
		os.Exit(run(cfg))
	case "idle":
		os.Exit(runIdle(cfg, *pid))
	case "connect":
		os.Exit(runConnect(cfg))
	case "http":
		os.Exit(runHTTP(cfg))
	}
	fmt.Fprintf(os.Stderr, "wsload: -mode %q: want echo, idle, connect or http\n", *mode)
	os.Exit(2)
}

func run(cfg config) int {
	stats := make([]*connStats, cfg.conns)
	conns := make([]*websocket.Conn, cfg.conns)
	dialer := websocket.Dialer{HandshakeTimeout: 5 * time.Second}
	if cfg.subprotocol != "" {
		dialer.Subprotocols = []string{cfg.subprotocol}
	}

	var wg sync.WaitGroup
	for i := range cfg.conns {
		stats[i] = &connStats{}
		c, _, err := dialer.Dial(cfg.url, nil)
		if err != nil {
			stats[i].fail(fmt.Errorf("dial: %w", err))
			continue
		}
		conns[i] = c
		wg.Add(1)
		go func() {
			defer wg.Done()
			stats[i].fail(runConn(c, cfg, stats[i]))
		}()
	}

	time.Sleep(cfg.warmup)
	start := time.Now()
	phase.Store(phaseMeasure)
	time.Sleep(cfg.dur)
	phase.Store(phaseStop)
	elapsed := time.Since(start)

	// Connections drain their in-flight echoes and close; don't wait forever.
	for _, c := range conns {
		if c != nil {
			c.SetReadDeadline(time.Now().Add(5 * time.Second))
		}
	}
	wg.Wait()

	var total connStats
	for _, s := range stats {
		total.merge(s)
	}
	report(cfg, &total, elapsed)
	if total.errors > 0 {
		return 1
	}
	return 0
}

// runConn drives one connection until the stop phase, then closes it
// cleanly. Only this goroutine reads and writes c.
func runConn(c *websocket.Conn, cfg config, st *connStats) error {
	defer c.Close()

	mtype := websocket.BinaryMessage
	if !cfg.binary {
		mtype = websocket.TextMessage
	}
	out := make([]byte, cfg.size)
	in := make([]byte, cfg.size+1) // +1 detects over-long echoes
	rng := rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64()))

	var sent, recvd uint64 // sequence numbers
	send := func() error {
		fill(out, sent, cfg.binary)
		sent++
		return c.WriteMessage(mtype, out)
	}
	for range cfg.depth {
		if err := send(); err != nil {
			return fmt.Errorf("write: %w", err)
		}
	}

	for recvd < sent {
		typ, r, err := c.NextReader()
		if err != nil {
			return fmt.Errorf("read: %w", err)
		}
		n, err := readAll(r, in)
		if err != nil {
			return fmt.Errorf("read: %w", err)
		}
		now := time.Since(t0)
		seq := recvd
		recvd++

		switch {
		case typ != mtype:
			return fmt.Errorf("echo %d: message type %d, want %d", seq, typ, mtype)
		case n != cfg.size:
			return fmt.Errorf("echo %d: %d bytes, want %d", seq, n, cfg.size)
		case rng.IntN(16) == 0 && !check(in[:n], seq, cfg.binary):
			return fmt.Errorf("echo %d: payload differs from what was sent", seq)
		}

		switch phase.Load() {
		case phaseMeasure:
			st.msgs++
			if cfg.size >= 8 {
				st.hist.record(uint64(now) - stamp(in, cfg.binary))
			}
			fallthrough
		case phaseWarmup:
			if err := send(); err != nil {
				return fmt.Errorf("write: %w", err)
			}
		}
		// phaseStop: send nothing more, drain what is in flight.
	}

	// Clean close: send a close frame, wait for the server's close frame.
	msg := websocket.FormatCloseMessage(websocket.CloseNormalClosure, "")
	if err := c.WriteControl(websocket.CloseMessage, msg, time.Now().Add(5*time.Second)); err != nil {
		return fmt.Errorf("close: %w", err)
	}
	_, _, err := c.NextReader()
	switch {
	case err == nil:
		return errors.New("close: message received after the last echo")
	case websocket.IsCloseError(err, websocket.CloseNormalClosure):
		return nil
	default:
		return fmt.Errorf("close: %w", err)
	}
}

// readAll reads one message into buf. A message longer than len(buf)-1
// bytes returns n == len(buf), which the caller reports as a length error.
func readAll(r io.Reader, buf []byte) (int, error) {
	n := 0
	for n < len(buf) {
		m, err := r.Read(buf[n:])
		n += m
		if err == io.EOF {
			return n, nil
		}
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// Payload layout: bytes 0-7 the send timestamp (binary: little-endian
// nanoseconds since t0; text: 8 base-64 digits of 48 bits of it, so text
// messages stay valid UTF-8), then a filler derived from the sequence number.

const digits = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"

func fill(p []byte, seq uint64, bin bool) {
	for i := range p {
		p[i] = filler(seq, i, bin)
	}
	if len(p) < 8 {
		return
	}
	ts := uint64(time.Since(t0))
	if bin {
		binary.LittleEndian.PutUint64(p, ts)
		return
	}
	for i := 7; i >= 0; i-- {
		p[i] = digits[ts&63]
		ts >>= 6
	}
}

func stamp(p []byte, bin bool) uint64 {
	if bin {
		return binary.LittleEndian.Uint64(p)
	}
	var ts uint64
	for _, ch := range p[:8] {
		ts = ts<<6 | uint64(digitValue[ch])
	}
	// Undo the 48-bit truncation relative to the current time.
	now := uint64(time.Since(t0))
	return now&^(1<<48-1) | ts
}

var digitValue = func() (t [256]byte) {
	for i := range len(digits) {
		t[digits[i]] = byte(i)
	}
	return t
}()

func filler(seq uint64, i int, bin bool) byte {
	if bin {
		return byte(seq*31 + uint64(i))
	}
	return 'a' + byte((seq+uint64(i))%26)
}

// check compares an echo with what message seq contained (timestamp aside).
func check(p []byte, seq uint64, bin bool) bool {
	i := 0
	if len(p) >= 8 {
		i = 8
	}
	for ; i < len(p); i++ {
		if p[i] != filler(seq, i, bin) {
			return false
		}
	}
	return true
}

// connStats is owned by one connection goroutine until the run ends.
type connStats struct {
	msgs   uint64
	errors uint64
	first  error
	hist   histogram
}

func (s *connStats) fail(err error) {
	if err == nil {
		return
	}
	s.errors++
	if s.first == nil {
		s.first = err
		fmt.Fprintln(os.Stderr, "wsload:", err)
	}
}

func (s *connStats) merge(o *connStats) {
	s.msgs += o.msgs
	s.errors += o.errors
	s.hist.merge(&o.hist)
}

// histogram is a log-linear histogram of nanosecond values: each power of
// two is split into 16 linear sub-buckets, so a bucket is at most ~6% wide.
type histogram struct {
	counts [64 * subBuckets]uint64
	n      uint64
}

const subBits = 4
const subBuckets = 1 << subBits

func bucketOf(v uint64) int {
	if v < subBuckets {
		return int(v)
	}
	e := bits.Len64(v) - 1 - subBits // shift that leaves subBits+1 bits
	return (e+1)*subBuckets + int(v>>e) - subBuckets
}

// upper returns the largest value that falls into bucket b.
func upper(b int) uint64 {
	if b < subBuckets {
		return uint64(b)
	}
	e := b/subBuckets - 1
	m := uint64(b%subBuckets + subBuckets)
	return (m+1)<<e - 1
}

func (h *histogram) record(v uint64) {
	if v > math.MaxInt64 { // clock went backwards: count as 0
		v = 0
	}
	h.counts[bucketOf(v)]++
	h.n++
}

func (h *histogram) merge(o *histogram) {
	for i, c := range o.counts {
		h.counts[i] += c
	}
	h.n += o.n
}

// quantile returns the upper bound of the bucket holding quantile q.
func (h *histogram) quantile(q float64) time.Duration {
	if h.n == 0 {
		return 0
	}
	rank := uint64(math.Ceil(q * float64(h.n)))
	var seen uint64
	for b, c := range h.counts {
		seen += c
		if seen >= rank && c > 0 {
			return time.Duration(upper(b))
		}
	}
	return 0
}

func report(cfg config, s *connStats, elapsed time.Duration) {
	rate := float64(s.msgs) / elapsed.Seconds()
	p50, p99, p999 := s.hist.quantile(0.50), s.hist.quantile(0.99), s.hist.quantile(0.999)
	us := func(d time.Duration) float64 { return math.Round(float64(d)/100) / 10 }

	fmt.Printf("msgs/s=%.0f p50=%.1fus p99=%.1fus p999=%.1fus errors=%d\n",
		rate, us(p50), us(p99), us(p999), s.errors)
	if !cfg.json {
		return
	}
	out, _ := json.Marshal(struct {
		URL        string  `json:"url"`
		Conns      int     `json:"conns"`
		Depth      int     `json:"depth"`
		Size       int     `json:"size"`
		Binary     bool    `json:"binary"`
		Seconds    float64 `json:"seconds"`
		Msgs       uint64  `json:"msgs"`
		MsgsPerSec float64 `json:"msgs_per_sec"`
		P50us      float64 `json:"p50_us"`
		P99us      float64 `json:"p99_us"`
		P999us     float64 `json:"p999_us"`
		Errors     uint64  `json:"errors"`
	}{cfg.url, cfg.conns, cfg.depth, cfg.size, cfg.binary, elapsed.Seconds(),
		s.msgs, math.Round(rate), us(p50), us(p99), us(p999), s.errors})
	fmt.Println(string(out))
}

// jsonLine prints v as one JSON line.
func jsonLine(v any) error {
	out, err := json.Marshal(v)
	if err != nil {
		return err
	}
	fmt.Println(string(out))
	return nil
}
