package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// The modes besides the echo load:
//
//	-mode idle    -c N -pid PID   open N links, keep them silent, report the
//	                              server's RSS growth per link (/proc/PID/status)
//	                              and its CPU time per link accepted
//	-mode connect -c W            W workers open a link and close it cleanly,
//	                              again and again: handshakes per second
//	-mode http    -c W -size B    W keep-alive connections POST B bytes (or
//	                              -body) to -url (http://...): requests per second

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
// link: (RSS with the links open - RSS before) / links, and its CPU time
// per link (accept, handshake and the link's state; utime+stime from
// before the first link to the RSS reading, divided by the links). The
// same for every server: nothing but the handshake is sent, and the RSS is
// read -warmup after the last link opened.
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
	cpu := &cpuMeter{pid: cfg.pid}
	cpu.start()
	held := openIdle(t, cfg.subprotocol, cfg.conns)
	defer held.close()
	links, firstErr := held.links, held.firstErr
	// Let the server settle (its last accepts and handshakes).
	time.Sleep(cfg.warmup)
	cpu.stop()
	after, err := rssBytes(cfg.pid)
	if err != nil {
		fmt.Fprintln(os.Stderr, "wsload:", err)
		return 2
	}
	r := &result{Mode: "idle", Conns: cfg.conns, Links: links, RSSBefore: before, RSSAfter: after,
		BytesPerLink: float64(int64(float64(after-before)/float64(max(links, 1))*10)) / 10,
		Errors:       held.errs}
	cpu.fill(r, uint64(links)) // the operation of this mode is a link accepted
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
	cpu, elapsed := measure(cfg, &phase)
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

// runHTTP measures keep-alive POST requests per second: -c connections,
// each with one request outstanding, driven by one event loop. Every
// response must be a 2xx with a body; a connection the server closes is
// reopened.
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

	var phase atomic.Int32
	var st stats
	done := make(chan struct{})
	go func() {
		defer close(done)
		runtime.LockOSThread()
		httpLoop(t, req, cfg, &phase, &st)
	}()
	cpu, elapsed := measure(cfg, &phase)
	<-done
	return newResult(cfg, "http", "req/s", &st, elapsed, &cpu).print(cfg)
}

// hconn is one keep-alive connection of -mode http.
type hconn struct {
	econn
	sent  time.Time // when the outstanding request went out
	phase int32     // the phase it went out in
}

func httpLoop(t target, req []byte, cfg config, phase *atomic.Int32, st *stats) {
	p, err := newPoller(cfg.conns)
	if err != nil {
		st.fail(err)
		return
	}
	defer p.close()
	byFD := map[int32]*hconn{}
	defer func() {
		for _, h := range byFD {
			syscall.Close(h.fd)
		}
	}()
	// open dials a connection and sends its first request.
	open := func() error {
		nc, err := net.DialTimeout("tcp", t.hostport, 5*time.Second)
		if err != nil {
			return err
		}
		fd, err := detach(nc)
		if err != nil {
			return err
		}
		h := &hconn{econn: econn{fd: fd, rxbuf: rxbuf{b: make([]byte, 16<<10)}}}
		if err := p.add(fd); err != nil {
			syscall.Close(fd)
			return err
		}
		byFD[int32(fd)] = h
		return h.send(p, req, phase.Load())
	}
	drop := func(h *hconn) {
		syscall.Close(h.fd)
		delete(byFD, int32(h.fd))
	}
	for range cfg.conns {
		if err := open(); err != nil {
			st.fail(err)
		}
	}
	for len(byFD) > 0 {
		evs, err := p.wait(10)
		if err != nil {
			st.fail(err)
			return
		}
		ph := phase.Load()
		if ph == phaseStop {
			return // outstanding requests are not counted
		}
		for _, ev := range evs {
			h := byFD[ev.Fd]
			if h == nil {
				continue
			}
			keep, err := h.readable(p, req, ph, st)
			if err != nil {
				st.fail(err)
			}
			if err != nil || !keep {
				drop(h)
				if err := open(); err != nil {
					st.fail(err)
					time.Sleep(time.Millisecond) // don't spin on a dead server
				}
			}
		}
	}
}

func (h *hconn) send(p *poller, req []byte, ph int32) error {
	h.out = append(h.out[:0], req...)
	h.outOff = 0
	h.sent, h.phase = time.Now(), ph
	return h.flush(p)
}

// readable reads and, once a whole response is in, checks it, counts it and
// sends the next request. keep is false when the connection must go.
func (h *hconn) readable(p *poller, req []byte, ph int32, st *stats) (keep bool, err error) {
	if len(h.out) > h.outOff {
		if err := h.flush(p); err != nil {
			return false, err
		}
	}
	if h.w == len(h.b) {
		if h.r > 0 {
			h.w = copy(h.b, h.b[h.r:h.w])
			h.r = 0
		} else {
			h.b = append(h.b, make([]byte, len(h.b))...)
		}
	}
	got, err := h.fill(h.b[h.w:])
	if err != nil {
		return false, err
	}
	if !got {
		if h.eof {
			return false, errors.New("server closed the connection with a request outstanding")
		}
		return true, nil
	}
	n, keep, err := parseResponse(h.b[h.r:h.w])
	if err != nil || n == 0 {
		return err == nil, err
	}
	h.r += n
	if h.r == h.w {
		h.r, h.w = 0, 0
	}
	if ph == phaseMeasure && h.phase == phaseMeasure {
		st.ops++
		st.hist.record(uint64(time.Since(h.sent)))
	}
	if !keep {
		return false, nil
	}
	return true, h.send(p, req, ph)
}

// parseResponse parses one response at the start of b: n is its length (0
// if incomplete), keep whether the connection stays open.
func parseResponse(b []byte) (n int, keep bool, err error) {
	he := bytes.Index(b, []byte("\r\n\r\n"))
	if he < 0 {
		if len(b) > 64<<10 {
			return 0, false, errors.New("response: headers too long")
		}
		return 0, false, nil
	}
	lines := bytes.Split(b[:he], []byte("\r\n"))
	f := bytes.Fields(lines[0])
	if len(f) < 2 || !bytes.HasPrefix(f[0], []byte("HTTP/1.")) {
		return 0, false, fmt.Errorf("response: status line %q", lines[0])
	}
	status, _ := strconv.Atoi(string(f[1]))
	keep = string(f[0]) == "HTTP/1.1"
	clen := -1
	for _, l := range lines[1:] {
		name, val, _ := bytes.Cut(l, []byte(":"))
		val = bytes.TrimSpace(val)
		switch strings.ToLower(string(name)) {
		case "content-length":
			if clen, err = strconv.Atoi(string(val)); err != nil {
				return 0, false, fmt.Errorf("response: content-length %q", val)
			}
		case "connection":
			switch strings.ToLower(string(val)) {
			case "close":
				keep = false
			case "keep-alive":
				keep = true
			}
		case "transfer-encoding":
			return 0, false, errors.New("response: chunked bodies are not supported by the load tool")
		}
	}
	if clen < 0 {
		return 0, false, errors.New("response: no content-length")
	}
	if len(b) < he+4+clen {
		return 0, false, nil
	}
	switch {
	case status < 200 || status > 299:
		err = fmt.Errorf("status %d", status)
	case clen == 0:
		err = errors.New("response: empty body")
	}
	return he + 4 + clen, keep, err
}

// idleSet is a set of open links that send nothing: the idle scenario's
// links, or the background of -idle (links open while another mode is
// measured).
type idleSet struct {
	conns    []*wsConn
	links    int
	errs     uint64
	firstErr error
}

// idlePerSource is how many links one source address opens before the
// next (127.0.0.2, .3, ...) takes over: one address has about 28,000
// ephemeral ports towards one server port.
var idlePerSource = 20000 // a variable for the test

// openIdle opens n links to t, a few dialers in parallel, each link with a
// tiny read buffer; past idlePerSource links to a loopback server they
// come from further 127.0.0.x addresses.
func openIdle(t target, subprotocol string, n int) *idleSet {
	set := &idleSet{conns: make([]*wsConn, n)}
	loop := strings.HasPrefix(t.hostport, "127.")
	var next atomic.Int64
	var errs atomic.Uint64
	var once sync.Once
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1) - 1
				if i >= int64(n) {
					return
				}
				var local net.Addr
				if src := i / int64(idlePerSource); loop && src > 0 {
					local = &net.TCPAddr{IP: net.IPv4(127, 0, 0, byte(1+src))}
				}
				c, err := dialWSFrom(local, t, subprotocol, 10*time.Second, 1024)
				if err != nil {
					errs.Add(1)
					once.Do(func() { set.firstErr = err })
					continue
				}
				set.conns[i] = c
			}
		}()
	}
	wg.Wait()
	set.errs = errs.Load()
	for _, c := range set.conns {
		if c != nil {
			set.links++
		}
	}
	return set
}

func (s *idleSet) close() {
	for _, c := range s.conns {
		if c != nil {
			c.nc.Close()
		}
	}
}
