package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"math/bits"
	"os"
	"strconv"
	"sync/atomic"
	"time"
)

// histogram is a log-linear histogram of nanosecond values: each power of
// two is split into 16 linear sub-buckets, so a bucket is at most ~6% wide.
// It is owned by one goroutine until merged.
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
	rank := max(uint64(math.Ceil(q*float64(h.n))), 1)
	var seen uint64
	for b, c := range h.counts {
		seen += c
		if seen >= rank && c > 0 {
			return time.Duration(upper(b))
		}
	}
	return 0
}

// stats is what one worker (connection) counts; merged at the end.
type stats struct {
	ops    uint64 // echoes, handshakes or requests in the measured window
	behind uint64 // -rate: messages due in the window that no link could take (all at -depth)
	errors uint64
	first  error
	hist   histogram
}

func (s *stats) fail(err error) {
	if err == nil {
		return
	}
	s.errors++
	if s.first == nil {
		s.first = err
	}
}

func (s *stats) merge(o *stats) {
	s.ops += o.ops
	s.behind += o.behind
	s.errors += o.errors
	if s.first == nil {
		s.first = o.first
	}
	s.hist.merge(&o.hist)
}

// cpuTicks returns utime+stime of a process (all its threads, including
// exited ones) in clock ticks, from /proc/PID/stat.
func cpuTicks(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name (field 2) is in parentheses and may hold spaces:
	// count fields after the last ')'. utime and stime are fields 14, 15.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, fmt.Errorf("/proc/%d/stat: malformed", pid)
	}
	f := bytes.Fields(b[i+1:]) // f[0] is field 3 (state)
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: malformed", pid)
	}
	ut, err1 := strconv.ParseInt(string(f[11]), 10, 64)
	st, err2 := strconv.ParseInt(string(f[12]), 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("/proc/%d/stat: malformed", pid)
	}
	return ut + st, nil
}

// clockTick is USER_HZ, the unit of /proc/PID/stat times: 100 on every
// Linux architecture Go supports (it is fixed by the kernel ABI).
const clockTick = 10 * time.Millisecond

// cpuMeter samples a server's CPU time at the start and end of the
// measured window. With pid 0 it measures nothing.
// It also measures the load tool itself: a load tool near 100% of its
// core is the bottleneck, and then the rate says little about the server.
type cpuMeter struct {
	pid      int
	t0, s0   int64
	wall0    time.Time
	used     time.Duration // server
	self     time.Duration // load tool
	wall     time.Duration
	failed   error
	selfFail error
}

func (m *cpuMeter) start() {
	m.wall0 = time.Now()
	m.s0, m.selfFail = cpuTicks(os.Getpid())
	if m.pid > 0 {
		m.t0, m.failed = cpuTicks(m.pid)
	}
}

func (m *cpuMeter) stop() {
	m.wall = time.Since(m.wall0)
	if s1, err := cpuTicks(os.Getpid()); err == nil && m.selfFail == nil {
		m.self = time.Duration(s1-m.s0) * clockTick
	}
	if m.pid <= 0 || m.failed != nil {
		return
	}
	t1, err := cpuTicks(m.pid)
	if err != nil {
		m.failed = err
		return
	}
	m.used = time.Duration(t1-m.t0) * clockTick
}

// result is one run's figures: the one printed line and the JSON object.
type result struct {
	Mode    string  `json:"mode"`
	Unit    string  `json:"unit"` // what rate counts: msgs/s, connects/s, req/s
	Conns   int     `json:"conns"`
	Depth   int     `json:"depth,omitempty"`
	Size    int     `json:"size"`
	Seconds float64 `json:"seconds"`
	Ops     uint64  `json:"ops"`
	Rate    float64 `json:"rate"`
	P50us   float64 `json:"p50_us"`
	P99us   float64 `json:"p99_us"`
	P999us  float64 `json:"p999_us"`
	Errors  uint64  `json:"errors"`
	// Server CPU (with -pid): CPU time per operation (idle mode: per link
	// opened), and the share of one core the server used during the window.
	CPUusPerOp float64 `json:"cpu_us_per_op,omitempty"`
	ServerCPU  float64 `json:"server_cpu,omitempty"`
	// The load tool's own CPU, as a share of one core.
	LoadCPU float64 `json:"load_cpu,omitempty"`
	// Idle mode.
	Links        int     `json:"links,omitempty"`
	RSSBefore    int64   `json:"rss_before,omitempty"`
	RSSAfter     int64   `json:"rss_after,omitempty"`
	BytesPerLink float64 `json:"bytes_per_link,omitempty"`
	FirstError   string  `json:"first_error,omitempty"`
	// -idle: links held open, sending nothing, while this mode ran.
	IdleLinks int `json:"idle_links,omitempty"`
	// -rate: the offered rate, and the messages due in the window that
	// were not sent because every link had -depth in flight (the server
	// did not keep up).
	Offered int    `json:"offered,omitempty"`
	Behind  uint64 `json:"behind,omitempty"`
}

func newResult(cfg config, mode, unit string, s *stats, elapsed time.Duration, cpu *cpuMeter) *result {
	us := func(d time.Duration) float64 { return math.Round(float64(d)/100) / 10 }
	r := &result{
		Mode: mode, Unit: unit, Conns: cfg.conns, Size: cfg.size,
		Seconds: math.Round(elapsed.Seconds()*1000) / 1000,
		Ops:     s.ops,
		Rate:    math.Round(float64(s.ops) / elapsed.Seconds()),
		P50us:   us(s.hist.quantile(0.50)),
		P99us:   us(s.hist.quantile(0.99)),
		P999us:  us(s.hist.quantile(0.999)),
		Errors:  s.errors,
	}
	if mode == "echo" {
		r.Depth = cfg.depth
		r.Offered, r.Behind = cfg.rate, s.behind
	}
	if s.first != nil {
		r.FirstError = s.first.Error()
	}
	if cpu != nil {
		cpu.fill(r, s.ops)
	}
	return r
}

// fill sets r's load CPU, and with a server pid its CPU per operation
// over ops and its share of a core, from a stopped meter.
func (m *cpuMeter) fill(r *result, ops uint64) {
	if m.wall <= 0 {
		return
	}
	r.LoadCPU = math.Round(float64(m.self)/float64(m.wall)*1000) / 1000
	if m.pid <= 0 || m.failed != nil {
		return
	}
	if ops > 0 {
		r.CPUusPerOp = math.Round(float64(m.used)/float64(ops)/10) / 100
	}
	r.ServerCPU = math.Round(float64(m.used)/float64(m.wall)*1000) / 1000
}

// print writes the result line (and the JSON line with -json); it returns
// the exit status: 1 if there were errors.
func (r *result) print(cfg config) int {
	if r.Mode != "idle" {
		r.IdleLinks = cfg.idleOpen
	}
	if r.Mode == "idle" {
		fmt.Printf("idle_links=%d rss_before=%d rss_after=%d bytes_per_link=%.0f server_cpu/link=%.2fus errors=%d\n",
			r.Links, r.RSSBefore, r.RSSAfter, r.BytesPerLink, r.CPUusPerOp, r.Errors)
	} else {
		fmt.Printf("%s=%.0f p50=%.1fus p99=%.1fus p999=%.1fus errors=%d", r.Unit, r.Rate, r.P50us, r.P99us, r.P999us, r.Errors)
		if r.ServerCPU > 0 {
			fmt.Printf(" server_cpu/op=%.2fus server_cpu=%.0f%%", r.CPUusPerOp, r.ServerCPU*100)
		}
		fmt.Printf(" load_cpu=%.0f%%", r.LoadCPU*100)
		if r.IdleLinks > 0 {
			fmt.Printf(" idle_links=%d", r.IdleLinks)
		}
		if r.Offered > 0 {
			fmt.Printf(" offered=%d behind=%d", r.Offered, r.Behind)
		}
		fmt.Println()
	}
	if r.FirstError != "" {
		fmt.Fprintln(os.Stderr, "wsload: first error:", r.FirstError)
	}
	if cfg.json {
		out, _ := json.Marshal(r)
		fmt.Println(string(out))
	}
	if r.Errors > 0 {
		return 1
	}
	return 0
}

// measure lets the load run cfg.warmup, then measures for cfg.dur: the
// phase is measure in between and stop after. It returns the server's and
// the load tool's CPU over the window and the window's length.
func measure(cfg config, phase *atomic.Int32) (cpuMeter, time.Duration) {
	cpu := cpuMeter{pid: cfg.pid}
	time.Sleep(cfg.warmup)
	cpu.start()
	start := time.Now()
	phase.Store(phaseMeasure)
	time.Sleep(cfg.dur)
	phase.Store(phaseStop)
	elapsed := time.Since(start)
	cpu.stop()
	return cpu, elapsed
}
