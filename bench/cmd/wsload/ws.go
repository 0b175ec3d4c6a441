package main

import (
	"bytes"
	"crypto/rand"
	"crypto/sha1"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"strings"
	"time"
)

// wsConn is the client side of one WebSocket link, just enough of RFC 6455
// for a load generator that must not be the bottleneck: it reads whole
// batches of frames with one read and writes many masked frames with one
// write. Only the goroutine that owns it uses it.
type wsConn struct {
	nc net.Conn
	rxbuf
	mask [4]byte
}

// Opcodes.
const (
	opCont   = 0x0
	opText   = 0x1
	opBinary = 0x2
	opClose  = 0x8
	opPing   = 0x9
	opPong   = 0xA
)

const wsGUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

// target is a parsed ws:// or http:// URL.
type target struct {
	hostport string // for dialling
	host     string // Host header
	path     string // path and query
}

func parseTarget(raw string, schemes ...string) (target, error) {
	if strings.Contains(raw, ",") {
		return target{}, fmt.Errorf("%q: a list of URLs is for -mode echo and pipelined without -idle", raw)
	}
	u, err := url.Parse(raw)
	if err != nil {
		return target{}, err
	}
	ok := false
	for _, s := range schemes {
		ok = ok || u.Scheme == s
	}
	if !ok || u.Host == "" {
		return target{}, fmt.Errorf("%q: want a %s URL", raw, strings.Join(schemes, " or "))
	}
	t := target{hostport: u.Host, host: u.Host, path: u.RequestURI()}
	if u.Port() == "" {
		t.hostport = net.JoinHostPort(u.Hostname(), "80")
	}
	return t, nil
}

// parseTargets is parseTarget for a comma-separated list of URLs: the
// echo load spreads its links over them (a server of several contexts on
// ports of their own).
func parseTargets(raw string, schemes ...string) ([]target, error) {
	var ts []target
	for r := range strings.SplitSeq(raw, ",") {
		t, err := parseTarget(r, schemes...)
		if err != nil {
			return nil, err
		}
		ts = append(ts, t)
	}
	return ts, nil
}

// dialWS opens a link: TCP connect and the opening handshake, with the
// Sec-WebSocket-Accept checked. bufSize is the read buffer's initial size.
func dialWS(t target, subprotocol string, timeout time.Duration, bufSize int) (*wsConn, error) {
	return dialWSFrom(nil, t, subprotocol, timeout, bufSize)
}

// dialWSFrom is dialWS from a chosen local address (nil: the kernel's
// choice).
func dialWSFrom(local net.Addr, t target, subprotocol string, timeout time.Duration, bufSize int) (*wsConn, error) {
	d := net.Dialer{Timeout: timeout, LocalAddr: local}
	nc, err := d.Dial("tcp", t.hostport)
	if err != nil {
		return nil, err
	}
	c := &wsConn{nc: nc, rxbuf: rxbuf{b: make([]byte, max(bufSize, 1024))}}
	if err := c.handshake(t, subprotocol, timeout); err != nil {
		nc.Close()
		return nil, err
	}
	return c, nil
}

func (c *wsConn) handshake(t target, subprotocol string, timeout time.Duration) error {
	var nonce [16]byte
	_, _ = rand.Read(nonce[:])
	_, _ = rand.Read(c.mask[:])
	key := base64.StdEncoding.EncodeToString(nonce[:])
	req := "GET " + t.path + " HTTP/1.1\r\nHost: " + t.host +
		"\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: " + key +
		"\r\nSec-WebSocket-Version: 13\r\n"
	if subprotocol != "" {
		req += "Sec-WebSocket-Protocol: " + subprotocol + "\r\n"
	}
	req += "\r\n"
	_ = c.nc.SetDeadline(time.Now().Add(timeout))
	defer c.nc.SetDeadline(time.Time{})
	if _, err := io.WriteString(c.nc, req); err != nil {
		return fmt.Errorf("handshake: %w", err)
	}
	for {
		if i := bytes.Index(c.b[:c.w], []byte("\r\n\r\n")); i >= 0 {
			if err := checkUpgrade(c.b[:i], key, subprotocol); err != nil {
				return err
			}
			c.r = i + 4 // what follows is WebSocket data
			return nil
		}
		if c.w == len(c.b) {
			return errors.New("handshake: response headers too long")
		}
		n, err := c.nc.Read(c.b[c.w:])
		c.w += n
		if err != nil {
			return fmt.Errorf("handshake: %w", err)
		}
	}
}

func checkUpgrade(head []byte, key, subprotocol string) error {
	lines := strings.Split(string(head), "\r\n")
	if f := strings.Fields(lines[0]); len(f) < 2 || f[1] != "101" {
		return fmt.Errorf("handshake: %q", lines[0])
	}
	sum := sha1.Sum([]byte(key + wsGUID))
	want := base64.StdEncoding.EncodeToString(sum[:])
	var accept, proto string
	for _, l := range lines[1:] {
		name, val, _ := strings.Cut(l, ":")
		switch strings.ToLower(strings.TrimSpace(name)) {
		case "sec-websocket-accept":
			accept = strings.TrimSpace(val)
		case "sec-websocket-protocol":
			proto = strings.TrimSpace(val)
		}
	}
	if accept != want {
		return fmt.Errorf("handshake: Sec-WebSocket-Accept %q, want %q", accept, want)
	}
	if proto != subprotocol {
		return fmt.Errorf("handshake: subprotocol %q, want %q", proto, subprotocol)
	}
	return nil
}

// rxbuf holds received bytes not yet parsed: b[r:w].
type rxbuf struct {
	b    []byte
	r, w int
}

// frameHeader parses the header at b[r:w]. It returns the header length
// (0: incomplete) and the payload length.
func (x *rxbuf) frameHeader() (hl, plen int, err error) {
	b := x.b[x.r:x.w]
	if len(b) < 2 {
		return 0, 0, nil
	}
	if b[1]&0x80 != 0 {
		return 0, 0, errors.New("server sent a masked frame")
	}
	hl, plen = 2, int(b[1]&0x7f)
	switch plen {
	case 126:
		if len(b) < 4 {
			return 0, 0, nil
		}
		hl, plen = 4, int(binary.BigEndian.Uint16(b[2:]))
	case 127:
		if len(b) < 10 {
			return 0, 0, nil
		}
		n := binary.BigEndian.Uint64(b[2:])
		if n > 1<<30 {
			return 0, 0, fmt.Errorf("frame of %d bytes", n)
		}
		hl, plen = 10, int(n)
	}
	return hl, plen, nil
}

// frame returns the next buffered frame, ok false if it is incomplete; the
// payload points into the buffer and is valid until the next read.
func (x *rxbuf) frame() (op byte, fin bool, payload []byte, ok bool, err error) {
	hl, plen, err := x.frameHeader()
	if err != nil || hl == 0 || x.w-x.r < hl+plen {
		return 0, false, nil, false, err
	}
	b := x.b[x.r:]
	op, fin = b[0]&0x0f, b[0]&0x80 != 0
	payload = b[hl : hl+plen]
	x.r += hl + plen
	return op, fin, payload, true, nil
}

// space makes room at b[w:] for the rest of the incomplete frame (or at
// least a header) and returns it; parsed bytes are dropped.
func (x *rxbuf) space() []byte {
	if x.r == x.w {
		x.r, x.w = 0, 0
	}
	need := 14
	if hl, plen, _ := x.frameHeader(); hl > 0 {
		need = hl + plen
	}
	if x.r > 0 && (x.r+need > len(x.b) || len(x.b)-x.w < len(x.b)/4) {
		x.w = copy(x.b, x.b[x.r:x.w])
		x.r = 0
	}
	if need > len(x.b) {
		nb := make([]byte, max(need, 2*len(x.b)))
		x.w = copy(nb, x.b[x.r:x.w])
		x.r, x.b = 0, nb
	}
	return x.b[x.w:]
}

// readFrame returns the next frame, reading as needed; payload points into
// the read buffer and is valid until the next call.
func (c *wsConn) readFrame() (op byte, fin bool, payload []byte, err error) {
	for {
		op, fin, payload, ok, err := c.frame()
		if err != nil || ok {
			return op, fin, payload, err
		}
		n, err := c.nc.Read(c.space())
		c.w += n
		if n == 0 && err != nil {
			return 0, false, nil, err
		}
	}
}

// appendFrameHeader appends the header of a masked client frame of n bytes;
// the payload that follows must be masked with mask from index 0.
func appendFrameHeader(dst []byte, op byte, n int, mask [4]byte) []byte {
	switch {
	case n < 126:
		dst = append(dst, 0x80|op, 0x80|byte(n))
	case n < 1<<16:
		dst = append(dst, 0x80|op, 0x80|126, byte(n>>8), byte(n))
	default:
		dst = append(dst, 0x80|op, 0x80|127)
		dst = binary.BigEndian.AppendUint64(dst, uint64(n))
	}
	return append(dst, mask[:]...)
}

func maskBytes(p []byte, mask [4]byte, pos int) {
	for i := range p {
		p[i] ^= mask[(pos+i)&3]
	}
}

// writeClose sends a close frame with code (masked, no reason).
func (c *wsConn) writeClose(code uint16) error {
	f := appendFrameHeader(nil, opClose, 2, c.mask)
	p := []byte{byte(code >> 8), byte(code)}
	maskBytes(p, c.mask, 0)
	_, err := c.nc.Write(append(f, p...))
	return err
}

// closeHandshake sends a 1000 close and waits for the server's close frame
// and then for the server to close TCP (the server closes first, RFC 6455
// 7.1.1, so TIME_WAIT stays on its side), within timeout.
func (c *wsConn) closeHandshake(timeout time.Duration) error {
	_ = c.nc.SetDeadline(time.Now().Add(timeout))
	if err := c.writeClose(1000); err != nil {
		return fmt.Errorf("close: %w", err)
	}
	gotClose := false
	for {
		op, _, p, err := c.readFrame()
		if err != nil {
			if gotClose && errors.Is(err, io.EOF) {
				return nil
			}
			if !gotClose {
				return fmt.Errorf("close: no close frame from the server: %w", err)
			}
			return fmt.Errorf("close: after the close frame: %w", err)
		}
		switch {
		case gotClose:
			return errors.New("close: data after the server's close frame")
		case op == opClose:
			if len(p) >= 2 && binary.BigEndian.Uint16(p) != 1000 {
				return fmt.Errorf("close: server closed with %d", binary.BigEndian.Uint16(p))
			}
			gotClose = true
		case op == opPing || op == opPong:
		default:
			// Echoes still in flight are drained by the callers;
			// anything here is late data.
			return fmt.Errorf("close: unexpected frame (opcode %d) before the close frame", op)
		}
	}
}
