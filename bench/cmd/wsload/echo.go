package main

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"runtime"
	"sync/atomic"
	"syscall"
	"time"
)

// Phases of an echo run, read by every connection on each echo.
const (
	phaseWarmup = iota
	phaseMeasure
	phaseStop
)

var t0 = time.Now() // timestamps are nanoseconds since t0 (monotonic)

// runEcho is the echo load: -c links, each keeping -depth messages of -size
// bytes in flight (-depth 1 is ping-pong, more is pipelined), all driven by
// one event loop (evloop.go). With several URLs, link i goes to URL i mod
// their number.
func runEcho(cfg config, mode string) int {
	ts, err := parseTargets(cfg.url, "ws")
	if err != nil {
		fmt.Fprintln(os.Stderr, "wsload:", err)
		return 2
	}
	var total stats
	bufSize := max(64<<10, 2*(cfg.size+14))
	var links []*elink
	for i := range cfg.conns {
		c, err := dialWS(ts[i%len(ts)], cfg.subprotocol, 5*time.Second, bufSize)
		if err == nil {
			var l *elink
			if l, err = newElink(c, cfg); err == nil {
				links = append(links, l)
				continue
			}
		}
		total.fail(fmt.Errorf("dial: %w", err))
	}
	defer func() {
		for _, l := range links {
			if l.fd >= 0 {
				syscall.Close(l.fd)
			}
		}
	}()

	var phase atomic.Int32
	done := make(chan struct{})
	var st stats
	go func() {
		defer close(done)
		runtime.LockOSThread()
		echoLoop(links, cfg, &phase, &st)
	}()

	cpu, elapsed := measure(cfg, &phase)
	<-done

	total.merge(&st)
	r := newResult(cfg, "echo", "msgs/s", &total, elapsed, &cpu)
	if mode == "pipelined" {
		r.Mode = mode
	}
	return r.print(cfg)
}

// elink is one link of the echo load.
type elink struct {
	econn
	mask   [4]byte
	pl     *payload
	hdr    []byte // the header every message of this link has
	op     byte
	sent   uint64
	recvd  uint64
	msg    []byte // a fragmented echo being reassembled
	msgOp  byte
	state  int
	failed error
}

// Link states.
const (
	linkRunning   = iota
	linkCloseSent // our close frame is out; waiting for the server's
	linkGotClose  // waiting for the server to close TCP
	linkDone
)

func newElink(c *wsConn, cfg config) (*elink, error) {
	fd, err := detach(c.nc)
	if err != nil {
		return nil, err
	}
	op := byte(opBinary)
	if !cfg.binary {
		op = opText
	}
	return &elink{
		econn: econn{fd: fd, rxbuf: c.rxbuf},
		mask:  c.mask,
		pl:    newPayload(cfg.size, cfg.binary, c.mask),
		hdr:   appendFrameHeader(nil, op, cfg.size, c.mask),
		op:    op,
	}, nil
}

// queue appends k messages to the output.
func (l *elink) queue(k int) {
	ts := uint64(time.Since(t0))
	for range k {
		l.out = append(l.out, l.hdr...)
		off := len(l.out)
		l.out = append(l.out, l.pl.masked...)
		l.pl.put(l.out[off:], 0, ts, &l.mask)
		l.pl.put(l.out[off:], 8, l.sent, &l.mask)
		l.sent++
	}
}

// echoLoop drives every link until the stop phase and then closes them
// cleanly (each once its in-flight echoes are back), within 10 s.
func echoLoop(links []*elink, cfg config, phase *atomic.Int32, st *stats) {
	p, err := newPoller(len(links))
	if err != nil {
		st.fail(err)
		return
	}
	defer p.close()
	byFD := map[int32]*elink{}
	live := 0
	end := func(l *elink, err error) {
		if err != nil {
			st.fail(err)
		}
		syscall.Close(l.fd)
		delete(byFD, int32(l.fd))
		l.fd, l.state = -1, linkDone
		live--
	}
	for _, l := range links {
		byFD[int32(l.fd)] = l
		live++
		if err := p.add(l.fd); err != nil {
			end(l, err)
			continue
		}
		if cfg.rate == 0 {
			l.queue(cfg.depth)
		}
		if err := l.flush(p); err != nil {
			end(l, err)
		}
	}
	pc := pacer{rate: cfg.rate, start: time.Now()}
	wait := 10
	if cfg.rate > 0 {
		wait = 1 // the pacer's tick
	}
	ticker := -1 // -tick: the pacer runs only when it expires
	if cfg.rate > 0 && cfg.tick > 0 {
		if ticker, err = newTicker(cfg.tick); err == nil {
			err = p.add(ticker)
		}
		if err != nil {
			st.fail(err)
			return
		}
		defer syscall.Close(ticker)
		wait = 10 // the ticker wakes the loop
	}
	var deadline time.Time
	for live > 0 {
		evs, err := p.wait(wait)
		if err != nil {
			st.fail(err)
			return
		}
		ph := int(phase.Load())
		if ph == phaseStop && deadline.IsZero() {
			deadline = time.Now().Add(10 * time.Second)
		}
		ticked := ticker < 0
		for _, ev := range evs {
			if int(ev.Fd) == ticker {
				readTicks(ticker)
				ticked = true
				continue
			}
			l := byFD[ev.Fd]
			if l == nil {
				continue
			}
			if ev.Events&syscall.EPOLLOUT != 0 {
				if err := l.flush(p); err != nil {
					end(l, err)
					continue
				}
			}
			if ev.Events&(syscall.EPOLLIN|syscall.EPOLLHUP|syscall.EPOLLERR) != 0 {
				if err := l.readable(p, cfg, ph, st); err != nil {
					end(l, err)
				} else if l.state == linkDone {
					end(l, nil)
				}
			}
		}
		if cfg.rate > 0 && (ticked || ph == phaseStop) {
			for _, l := range pc.due(links, cfg, ph, st) {
				if err := l.flush(p); err != nil {
					end(l, err)
				}
			}
		}
		if !deadline.IsZero() && time.Now().After(deadline) {
			for _, l := range byFD {
				end(l, fmt.Errorf("link still open 10 s after the end (echo %d of %d sent, state %d)", l.recvd, l.sent, l.state))
			}
			return
		}
	}
}

// readable handles what arrived on a link.
func (l *elink) readable(p *poller, cfg config, ph int, st *stats) error {
	got, err := l.fill(l.space())
	if err != nil {
		return fmt.Errorf("read (echo %d of %d sent): %w", l.recvd, l.sent, err)
	}
	if !got && l.eof {
		if l.state == linkGotClose {
			l.state = linkDone
			return nil
		}
		return fmt.Errorf("server closed the connection (echo %d of %d sent, state %d)", l.recvd, l.sent, l.state)
	}
	now := uint64(time.Since(t0))
	refill := 0
	for {
		fop, fin, pl, ok, err := l.frame()
		if err != nil {
			return err
		}
		if !ok {
			break
		}
		switch {
		case fop == opPing || fop == opPong:
			continue
		case l.state == linkGotClose:
			return errors.New("close: data after the server's close frame")
		case fop == opClose:
			if l.state != linkCloseSent {
				return fmt.Errorf("server closed the link (close frame %x)", pl)
			}
			if len(pl) >= 2 && binary.BigEndian.Uint16(pl) != 1000 {
				return fmt.Errorf("close: server closed with %d", binary.BigEndian.Uint16(pl))
			}
			l.state = linkGotClose
			continue
		case l.state == linkCloseSent:
			return fmt.Errorf("close: unexpected frame (opcode %d) before the close frame", fop)
		case fop == opCont:
			if l.msg == nil {
				return errors.New("continuation frame without a message")
			}
			l.msg = append(l.msg, pl...)
		default:
			if l.msg != nil {
				return errors.New("new message inside a fragmented one")
			}
			l.msgOp = fop
			if !fin {
				l.msg = append(make([]byte, 0, cfg.size), pl...)
			}
		}
		if !fin {
			continue
		}
		if l.msg != nil {
			pl, l.msg = l.msg, nil
		}
		seq := l.recvd
		l.recvd++
		if l.recvd > l.sent {
			return fmt.Errorf("echo %d: more echoes than messages sent", seq)
		}
		if err := l.pl.check(l.msgOp, l.op, pl, seq); err != nil {
			return err
		}
		switch ph {
		case phaseMeasure:
			st.ops++
			if cfg.size >= 8 {
				ts := l.pl.get(pl, 0)
				if !l.pl.bin { // 48 bits: put back the high bits of now
					ts |= now &^ (1<<48 - 1)
				}
				st.hist.record(now - ts)
			}
			refill++
		case phaseWarmup:
			refill++
		}
		// phaseStop: send nothing more, drain what is in flight.
	}
	if refill > 0 && l.state == linkRunning && cfg.rate == 0 {
		l.queue(refill)
	}
	l.closeIfDrained(ph)
	return l.flush(p)
}

// closeIfDrained queues the close frame once the stop phase has come and
// every echo is back.
func (l *elink) closeIfDrained(ph int) {
	if ph != phaseStop || l.state != linkRunning || l.recvd != l.sent {
		return
	}
	f := appendFrameHeader(l.out, opClose, 2, l.mask)
	code := []byte{0x03, 0xe8} // 1000
	maskBytes(code, l.mask, 0)
	l.out = append(f, code...)
	l.state = linkCloseSent
}

// pacer sends -rate messages a second in all, round-robin over the links
// that have fewer than -depth in flight. What falls due while every link
// is full is counted (behind) in the measured window and not sent later:
// the offered load stays the rate, it does not catch up in bursts.
type pacer struct {
	rate   int
	start  time.Time
	issued uint64 // messages due so far, sent or counted behind
	next   int    // the link to try first
}

// due queues the messages due by now and returns the links given some;
// in the stop phase it queues each drained link's close frame instead.
func (pc *pacer) due(links []*elink, cfg config, ph int, st *stats) []*elink {
	var touched []*elink
	if ph == phaseStop {
		for _, l := range links {
			if l.state == linkRunning && l.recvd == l.sent {
				l.closeIfDrained(ph)
				touched = append(touched, l)
			}
		}
		return touched
	}
	owed := uint64(time.Since(pc.start).Seconds()*float64(pc.rate)) - pc.issued
	for tried := 0; owed > 0 && tried < len(links); {
		l := links[pc.next]
		pc.next = (pc.next + 1) % len(links)
		if l.state != linkRunning || l.fd < 0 || l.sent-l.recvd >= uint64(cfg.depth) {
			tried++
			continue
		}
		tried = 0
		l.queue(1)
		pc.issued++
		owed--
		if len(touched) == 0 || touched[len(touched)-1] != l {
			touched = append(touched, l)
		}
	}
	if owed > 0 {
		if ph == phaseMeasure {
			st.behind += owed
		}
		pc.issued += owed
	}
	return touched
}

// payload is the message a link sends, kept pre-masked: bytes 0-7 carry
// the send time, 8-15 the sequence number (binary: little-endian; text:
// 8 base-64 digits of 48 bits each, so text stays valid UTF-8), the rest a
// fixed filler. Every echo is checked against it.
type payload struct {
	plain  []byte // what the server must echo (stamps aside)
	masked []byte // plain XOR the link's mask, sent after each header
	bin    bool
}

const digits = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"

var digitValue = func() (t [256]byte) {
	for i := range len(digits) {
		t[digits[i]] = byte(i)
	}
	return t
}()

func newPayload(size int, bin bool, mask [4]byte) *payload {
	p := &payload{plain: make([]byte, size), bin: bin}
	for i := range p.plain {
		if bin {
			p.plain[i] = byte(i*31 + 7)
		} else {
			p.plain[i] = 'a' + byte(i%26)
		}
	}
	p.masked = bytes.Clone(p.plain)
	maskBytes(p.masked, mask, 0)
	return p
}

// put writes v's encoding at dst[at:at+8], masked like the payload.
func (p *payload) put(dst []byte, at int, v uint64, mask *[4]byte) {
	if at+8 > len(dst) {
		return
	}
	var b [8]byte
	if p.bin {
		binary.LittleEndian.PutUint64(b[:], v)
	} else {
		for i := 7; i >= 0; i-- {
			b[i] = digits[v&63]
			v >>= 6
		}
	}
	for i := range b {
		dst[at+i] = b[i] ^ mask[(at+i)&3]
	}
}

func (p *payload) get(src []byte, at int) uint64 {
	if p.bin {
		return binary.LittleEndian.Uint64(src[at:])
	}
	var v uint64
	for _, ch := range src[at : at+8] {
		v = v<<6 | uint64(digitValue[ch])
	}
	return v
}

// check compares an echo with message seq.
func (pl *payload) check(got, want byte, p []byte, seq uint64) error {
	switch {
	case got != want:
		return fmt.Errorf("echo %d: opcode %d, want %d", seq, got, want)
	case len(p) != len(pl.plain):
		return fmt.Errorf("echo %d: %d bytes, want %d", seq, len(p), len(pl.plain))
	}
	from := min(len(p), 16)
	if !bytes.Equal(p[from:], pl.plain[from:]) {
		return fmt.Errorf("echo %d: payload differs from what was sent", seq)
	}
	if len(p) >= 16 && pl.get(p, 8)&(1<<48-1) != seq&(1<<48-1) {
		return fmt.Errorf("echo %d: carries sequence number %d (out of order or lost)", seq, pl.get(p, 8))
	}
	return nil
}
