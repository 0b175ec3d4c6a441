package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// The modes besides the echo load:
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
// link: (RSS with the links open - RSS before) / links. The same for every
// server: nothing but the handshake is sent, and the RSS is read -warmup
// after the last link opened.
func runIdle(cfg config) int {
	if cfg.pid <= 0 {
		fmt.Fprintln(os.Stderr, "wsload: -mode idle needs -pid of the server")
		return 2
	}
	t, err := parseTarget(cfg.url, "ws")
	if err != nil {
		fmt.Fprintln(os.Stderr, "wsload:", err)
		return 2
	}
	before, err := rssBytes(cfg.pid)
	if err != nil {
		fmt.Fprintln(os.Stderr, "wsload:", err)
		return 2
	}
	// A few dialers in parallel; each link keeps a tiny read buffer.
	conns := make([]*wsConn, cfg.conns)
	var next atomic.Int64
	var errs atomic.Uint64
	var firstErr error
	var once sync.Once
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1) - 1
				if i >= int64(len(conns)) {
					return
				}
				c, err := dialWS(t, cfg.subprotocol, 10*time.Second, 1024)
				if err != nil {
					errs.Add(1)
					once.Do(func() { firstErr = err })
					continue
				}
				conns[i] = c
			}
		}()
	}
	wg.Wait()
	defer func() {
		for _, c := range conns {
			if c != nil {
				c.nc.Close()
			}
		}
	}()
	links := 0
	for _, c := range conns {
		if c != nil {
			links++
		}
	}
	// Let the server settle (its last accepts and handshakes).
	time.Sleep(cfg.warmup)
	after, err := rssBytes(cfg.pid)
	if err != nil {
		fmt.Fprintln(os.Stderr, "wsload:", err)
		return 2
	}
	r := &result{Mode: "idle", Conns: cfg.conns, Links: links, RSSBefore: before, RSSAfter: after,
		BytesPerLink: float64(int64(float64(after-before)/float64(max(links, 1))*10)) / 10,
		Errors:       errs.Load()}
	if firstErr != nil {
		r.FirstError = firstErr.Error()
	}
	return r.print(cfg)
}

// repeat runs op in cfg.conns workers, each with its own state from
// newWorker, until warm-up and duration have passed, and reports how often
// it succeeded per second of the measured part, its latency quantiles,
// errors and the server's CPU per operation.
func repeat(cfg config, mode, unit string, newWorker func() (op func() error, done func())) int {
	var phase atomic.Int32
	all := make([]*stats, cfg.conns)
	var wg sync.WaitGroup
	for i := range cfg.conns {
		all[i] = &stats{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			st := all[i]
			op, done := newWorker()
			defer done()
			for {
				p := phase.Load()
				if p == phaseStop {
					return
				}
				t := time.Now()
				err := op()
				if err != nil {
					st.fail(err)
					time.Sleep(time.Millisecond) // don't spin on a dead server
					continue
				}
				if p == phaseMeasure && phase.Load() == phaseMeasure {
					st.ops++
					st.hist.record(uint64(time.Since(t)))
				}
			}
		}()
	}
	cpu := cpuMeter{pid: cfg.pid}
	time.Sleep(cfg.warmup)
	cpu.start()
	start := time.Now()
	phase.Store(phaseMeasure)
	time.Sleep(cfg.dur)
	phase.Store(phaseStop)
	elapsed := time.Since(start)
	cpu.stop()
	wg.Wait()
	var total stats
	for _, s := range all {
		total.merge(s)
	}
	return newResult(cfg, mode, unit, &total, elapsed, &cpu).print(cfg)
}

// runConnect measures handshakes per second: TCP connect, opening
// handshake, closing handshake (the server closes TCP first).
func runConnect(cfg config) int {
	t, err := parseTarget(cfg.url, "ws")
	if err != nil {
		fmt.Fprintln(os.Stderr, "wsload:", err)
		return 2
	}
	return repeat(cfg, "connect", "connects/s", func() (func() error, func()) {
		return func() error {
			c, err := dialWS(t, cfg.subprotocol, 5*time.Second, 1024)
			if err != nil {
				return err
			}
			defer c.nc.Close()
			return c.closeHandshake(5 * time.Second)
		}, func() {}
	})
}

// runHTTP measures keep-alive POST requests per second. Each worker keeps
// one connection (reopened when the server closes it) and checks that every
// response is a 2xx with a body.
func runHTTP(cfg config) int {
	t, err := parseTarget(cfg.url, "http")
	if err != nil {
		fmt.Fprintln(os.Stderr, "wsload:", err)
		return 2
	}
	body := bytes.Repeat([]byte("x"), cfg.size)
	if cfg.body != "" {
		body = []byte(cfg.body)
	}
	req := []byte(fmt.Sprintf("POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n",
		t.path, t.host, len(body)))
	req = append(req, body...)
	return repeat(cfg, "http", "req/s", func() (func() error, func()) {
		h := &httpConn{t: t}
		return func() error { return h.do(req) }, h.close
	})
}

// httpConn is one keep-alive client connection of -mode http.
type httpConn struct {
	t  target
	nc net.Conn
	br *bufio.Reader
}

func (h *httpConn) close() {
	if h.nc != nil {
		h.nc.Close()
		h.nc = nil
	}
}

func (h *httpConn) do(req []byte) error {
	if h.nc == nil {
		nc, err := net.DialTimeout("tcp", h.t.hostport, 5*time.Second)
		if err != nil {
			return err
		}
		h.nc, h.br = nc, bufio.NewReaderSize(nc, 16<<10)
	}
	_ = h.nc.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := h.nc.Write(req); err != nil {
		h.close()
		return err
	}
	keep, err := h.readResponse()
	if err != nil || !keep {
		h.close()
	}
	return err
}

// readResponse reads one response; keep reports whether the connection
// may carry the next request.
func (h *httpConn) readResponse() (keep bool, err error) {
	line, err := h.br.ReadSlice('\n')
	if err != nil {
		return false, fmt.Errorf("response: %w", err)
	}
	f := bytes.Fields(line)
	if len(f) < 2 || !bytes.HasPrefix(f[0], []byte("HTTP/1.")) {
		return false, fmt.Errorf("response: status line %q", line)
	}
	status, _ := strconv.Atoi(string(f[1]))
	keep = string(f[0]) == "HTTP/1.1"
	clen := -1
	for {
		l, err := h.br.ReadSlice('\n')
		if err != nil {
			return false, fmt.Errorf("response headers: %w", err)
		}
		l = bytes.TrimRight(l, "\r\n")
		if len(l) == 0 {
			break
		}
		name, val, _ := bytes.Cut(l, []byte(":"))
		val = bytes.TrimSpace(val)
		switch strings.ToLower(string(name)) {
		case "content-length":
			clen, err = strconv.Atoi(string(val))
			if err != nil {
				return false, fmt.Errorf("response: content-length %q", val)
			}
		case "connection":
			switch strings.ToLower(string(val)) {
			case "close":
				keep = false
			case "keep-alive":
				keep = true
			}
		case "transfer-encoding":
			return false, errors.New("response: chunked bodies are not supported by the load tool")
		}
	}
	switch {
	case clen >= 0:
		_, err = h.br.Discard(clen)
	case !keep:
		_, err = io.Copy(io.Discard, h.br)
	default:
		return false, errors.New("response: no content-length on a keep-alive connection")
	}
	if err != nil {
		return false, fmt.Errorf("response body: %w", err)
	}
	if status < 200 || status > 299 {
		return keep, fmt.Errorf("status %d", status)
	}
	if clen == 0 {
		return keep, errors.New("response: empty body")
	}
	return keep, nil
}
