package main

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
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
// bytes in flight (-depth 1 is ping-pong, more is pipelined).
func runEcho(cfg config, mode string) int {
	t, err := parseTarget(cfg.url, "ws")
	if err != nil {
		fmt.Fprintln(os.Stderr, "wsload:", err)
		return 2
	}
	var phase atomic.Int32
	all := make([]*stats, cfg.conns)
	conns := make([]*wsConn, cfg.conns)
	bufSize := max(64<<10, 2*(cfg.size+14))
	var wg sync.WaitGroup
	for i := range cfg.conns {
		all[i] = &stats{}
		c, err := dialWS(t, cfg.subprotocol, 5*time.Second, bufSize)
		if err != nil {
			all[i].fail(fmt.Errorf("dial: %w", err))
			continue
		}
		conns[i] = c
	}
	for i, c := range conns {
		if c == nil {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer c.nc.Close()
			all[i].fail(echoConn(c, cfg, &phase, all[i]))
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

	// Links drain their in-flight echoes and close; don't wait forever.
	for _, c := range conns {
		if c != nil {
			_ = c.nc.SetReadDeadline(time.Now().Add(10 * time.Second))
		}
	}
	wg.Wait()

	var total stats
	for _, s := range all {
		total.merge(s)
	}
	r := newResult(cfg, "echo", "msgs/s", &total, elapsed, &cpu)
	if mode == "pipelined" {
		r.Mode = mode
	}
	return r.print(cfg)
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

// echoConn drives one link until the stop phase, then closes it cleanly.
func echoConn(c *wsConn, cfg config, phase *atomic.Int32, st *stats) error {
	op := byte(opBinary)
	if !cfg.binary {
		op = opText
	}
	pl := newPayload(cfg.size, cfg.binary, c.mask)
	hdr := appendFrameHeader(nil, op, cfg.size, c.mask)
	wbuf := make([]byte, 0, cfg.depth*(len(hdr)+cfg.size))
	var sent, recvd uint64
	send := func(k int) error {
		wbuf = wbuf[:0]
		ts := uint64(time.Since(t0))
		for range k {
			wbuf = append(wbuf, hdr...)
			off := len(wbuf)
			wbuf = append(wbuf, pl.masked...)
			pl.put(wbuf[off:], 0, ts, &c.mask)
			pl.put(wbuf[off:], 8, sent, &c.mask)
			sent++
		}
		_, err := c.nc.Write(wbuf)
		return err
	}
	if err := send(cfg.depth); err != nil {
		return fmt.Errorf("write: %w", err)
	}

	var msg []byte // a fragmented echo being reassembled
	var msgOp byte
	refill := 0
	for recvd < sent {
		fop, fin, p, err := c.readFrame()
		if err != nil {
			return fmt.Errorf("read (echo %d of %d sent): %w", recvd, sent, err)
		}
		switch fop {
		case opPing, opPong:
			continue
		case opClose:
			return fmt.Errorf("server closed the link (close frame %x)", p)
		case opCont:
			if msg == nil {
				return errors.New("continuation frame without a message")
			}
			msg = append(msg, p...)
		default:
			if msg != nil {
				return errors.New("new message inside a fragmented one")
			}
			msgOp = fop
			if !fin {
				msg = append(make([]byte, 0, cfg.size), p...)
			}
		}
		if !fin {
			continue
		}
		if msg != nil {
			p, msg = msg, nil
		}
		now := uint64(time.Since(t0))
		seq := recvd
		recvd++
		if err := pl.check(msgOp, op, p, seq); err != nil {
			return err
		}
		switch phase.Load() {
		case phaseMeasure:
			st.ops++
			if cfg.size >= 8 {
				ts := pl.get(p, 0)
				if !pl.bin { // 48 bits: put back the high bits of now
					ts |= now &^ (1<<48 - 1)
				}
				st.hist.record(now - ts)
			}
			refill++
		case phaseWarmup:
			refill++
		}
		// phaseStop: send nothing more, drain what is in flight.
		if refill > 0 && !c.buffered() {
			if err := send(refill); err != nil {
				return fmt.Errorf("write: %w", err)
			}
			refill = 0
		}
	}
	return c.closeHandshake(5 * time.Second)
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
