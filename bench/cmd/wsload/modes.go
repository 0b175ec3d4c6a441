package main

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net/http"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
)

// The modes besides the echo load (issue 6, item 1):
//
//	-mode idle    -c N -pid PID   open N links, keep them silent, report the
//	                              server's RSS growth per link (/proc/PID/status)
//	-mode connect -c W            W workers open a link and close it cleanly,
//	                              again and again: handshakes per second
//	-mode http    -c W -size B    W keep-alive clients POST B bytes (or -body)
//	                              to -url (http://...): requests per second

// rssBytes reads VmRSS of a process.
func rssBytes(pid int) (int64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10, err
		}
	}
	return 0, fmt.Errorf("/proc/%d/status: no VmRSS", pid)
}

// runIdle opens cfg.conns silent links and reports the server's memory per
// link: (RSS with the links open - RSS before) / links.
func runIdle(cfg config, pid int) int {
	if pid <= 0 {
		fmt.Fprintln(os.Stderr, "wsload: -mode idle needs -pid of the server")
		return 2
	}
	before, err := rssBytes(pid)
	if err != nil {
		fmt.Fprintln(os.Stderr, "wsload:", err)
		return 2
	}
	dialer := websocket.Dialer{HandshakeTimeout: 10 * time.Second, ReadBufferSize: 256, WriteBufferSize: 256}
	if cfg.subprotocol != "" {
		dialer.Subprotocols = []string{cfg.subprotocol}
	}
	conns := make([]*websocket.Conn, 0, cfg.conns)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	var errs int
	for range cfg.conns {
		c, _, err := dialer.Dial(cfg.url, nil)
		if err != nil {
			errs++
			if errs == 1 {
				fmt.Fprintln(os.Stderr, "wsload: dial:", err)
			}
			continue
		}
		conns = append(conns, c)
	}
	// Let the server settle (its last accepts and handshakes).
	time.Sleep(cfg.warmup)
	after, err := rssBytes(pid)
	if err != nil {
		fmt.Fprintln(os.Stderr, "wsload:", err)
		return 2
	}
	per := float64(after-before) / float64(max(len(conns), 1))
	fmt.Printf("idle_links=%d rss_before=%d rss_after=%d bytes_per_link=%.0f errors=%d\n", len(conns), before, after, per, errs)
	if cfg.json {
		_ = jsonLine(map[string]any{"mode": "idle", "links": len(conns), "rss_before": before, "rss_after": after, "bytes_per_link": per, "errors": errs})
	}
	if errs > 0 {
		return 1
	}
	return 0
}

// repeat runs op in cfg.conns workers until warm-up and duration have
// passed, and reports how often it succeeded per second of the measured
// part, its p50 and p99, and its errors. label names the rate ("req/s").
func repeat(cfg config, mode, label string, op func() error) int {
	var done, errs atomic.Int64
	var first sync.Once
	var lat latencies
	var wg sync.WaitGroup
	stop := time.Now().Add(cfg.warmup + cfg.dur)
	measureFrom := time.Now().Add(cfg.warmup)
	for range cfg.conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(stop) {
				t := time.Now()
				if err := op(); err != nil {
					if errs.Add(1) == 1 {
						first.Do(func() { fmt.Fprintln(os.Stderr, "wsload: first error:", err) })
					}
					continue
				}
				if t.After(measureFrom) {
					done.Add(1)
					lat.add(time.Since(t))
				}
			}
		}()
	}
	wg.Wait()
	p := lat.percentiles()
	rate := float64(done.Load()) / cfg.dur.Seconds()
	fmt.Printf("%s=%.0f p50=%s p99=%s errors=%d\n", label, rate, p[0], p[1], errs.Load())
	if cfg.json {
		_ = jsonLine(map[string]any{"mode": mode, "per_sec": rate, "p50_us": us(p[0]), "p99_us": us(p[1]), "errors": errs.Load()})
	}
	if errs.Load() > 0 {
		return 1
	}
	return 0
}

// runConnect measures handshakes (dial, then a closing handshake) per second.
func runConnect(cfg config) int {
	dialer := websocket.Dialer{HandshakeTimeout: 5 * time.Second}
	if cfg.subprotocol != "" {
		dialer.Subprotocols = []string{cfg.subprotocol}
	}
	return repeat(cfg, "connect", "connects/s", func() error {
		c, _, err := dialer.Dial(cfg.url, nil)
		if err != nil {
			return err
		}
		defer c.Close()
		_ = c.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(1000, ""), time.Now().Add(5*time.Second))
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		for {
			if _, _, err := c.NextReader(); err != nil {
				return nil // the server's close (or the deadline) ends it
			}
		}
	})
}

// runHTTP measures keep-alive POST requests per second.
func runHTTP(cfg config) int {
	tr := &http.Transport{MaxIdleConnsPerHost: cfg.conns, MaxConnsPerHost: cfg.conns}
	defer tr.CloseIdleConnections()
	cl := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	body := bytes.Repeat([]byte("x"), cfg.size)
	if cfg.body != "" {
		body = []byte(cfg.body)
	}
	return repeat(cfg, "http", "req/s", func() error {
		resp, err := cl.Post(cfg.url, "application/octet-stream", bytes.NewReader(body))
		if err != nil {
			return err
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode >= 300 {
			return fmt.Errorf("status %d", resp.StatusCode)
		}
		return nil
	})
}

// latencies collects durations from many goroutines (these modes are
// slower than the echo, so a mutex is fine).
type latencies struct {
	mu sync.Mutex
	d  []time.Duration
}

func (l *latencies) add(d time.Duration) {
	l.mu.Lock()
	l.d = append(l.d, d)
	l.mu.Unlock()
}

// percentiles returns p50 and p99.
func (l *latencies) percentiles() [2]time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.d) == 0 {
		return [2]time.Duration{}
	}
	sort.Slice(l.d, func(i, j int) bool { return l.d[i] < l.d[j] })
	at := func(q float64) time.Duration { return l.d[min(int(q*float64(len(l.d))), len(l.d)-1)] }
	return [2]time.Duration{at(0.50), at(0.99)}
}

func us(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }
