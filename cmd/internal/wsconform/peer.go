package wsconform

import (
	"bufio"
	"bytes"
	"crypto/sha1"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"
	"unicode/utf8"
)

// Target says which side of a WebSocket link the implementation under test
// plays; the peer plays the other.
type Target uint8

const (
	// TargetServer: the implementation accepts the link; the peer is
	// the client and masks its frames.
	TargetServer Target = 1 << iota
	// TargetClient: the implementation dialled the link; the peer is the
	// server and does not mask its frames.
	TargetClient
)

func (t Target) String() string {
	switch t {
	case TargetServer:
		return "server"
	case TargetClient:
		return "client"
	}
	return "both"
}

// EventKind is what the peer observed.
type EventKind uint8

// Event kinds.
const (
	EvMessage   EventKind = iota + 1 // a whole text or binary message
	EvPing                           // a ping frame
	EvPong                           // a pong frame
	EvClose                          // a close frame
	EvEOF                            // the implementation closed TCP (terminal)
	EvReset                          // a read error such as a reset (terminal)
	EvViolation                      // the implementation broke RFC 6455
	EvTimeout                        // nothing arrived within the wait
)

// Event is one thing the peer observed.
type Event struct {
	Kind EventKind
	Op   byte   // EvMessage: OpText or OpBinary
	Data []byte // message, ping or pong payload; raw close payload
	// Code is an EvClose's status code: 1005 when the payload is empty,
	// -1 when it is a single byte.
	Code   int
	Reason string
	Detail string // EvViolation, EvReset: what happened
	// At is when the peer read it (for EvEOF and EvReset: when reading
	// ended).
	At time.Time
}

func (e Event) String() string {
	switch e.Kind {
	case EvMessage:
		typ := "text"
		if e.Op == OpBinary {
			typ = "binary"
		}
		return fmt.Sprintf("%s message of %d bytes", typ, len(e.Data))
	case EvPing:
		return fmt.Sprintf("ping of %d bytes", len(e.Data))
	case EvPong:
		return fmt.Sprintf("pong of %d bytes", len(e.Data))
	case EvClose:
		switch e.Code {
		case 1005:
			return "close without status code"
		case -1:
			return fmt.Sprintf("close with a 1-byte payload %x", e.Data)
		}
		if e.Reason != "" {
			return fmt.Sprintf("close %d %q", e.Code, e.Reason)
		}
		return fmt.Sprintf("close %d", e.Code)
	case EvEOF:
		return "TCP closed"
	case EvReset:
		return "connection lost (" + e.Detail + ")"
	case EvViolation:
		return "protocol violation: " + e.Detail
	case EvTimeout:
		return "nothing"
	}
	return "?"
}

// Peer is the raw-frame end of a link: it writes frames exactly as told and
// reads, checks and reassembles what the implementation sends.
type Peer struct {
	conn   net.Conn
	br     *bufio.Reader
	client bool // the peer is the client: it masks, and expects no masks
	maxMsg int64
	pmd    *pmdLink // permessage-deflate, when the handshake agreed it

	wmu         sync.Mutex
	werr        error     // first write error
	closeSent   bool      // a close frame was written
	closeSentAt time.Time // when the first one was

	closeRecvAt time.Time // when the implementation's close frame was read; mu

	mu     sync.Mutex
	q      []Event
	final  *Event // EvEOF or EvReset once reading ended
	notify chan struct{}
	done   chan struct{} // closed when the reader returns

	// Reader goroutine only.
	fragOp  byte // opcode of the message being reassembled, 0: none
	fragZ   bool // that message is compressed (RSV1 on its first frame)
	frag    []byte
	gotClos bool
}

func newPeer(conn net.Conn, br *bufio.Reader, client bool, maxMsg int64, pmd *pmdLink) *Peer {
	p := &Peer{conn: conn, br: br, client: client, maxMsg: maxMsg, pmd: pmd, notify: make(chan struct{}, 1), done: make(chan struct{})}
	go p.read()
	return p
}

func (p *Peer) push(e Event) {
	e.At = time.Now()
	p.mu.Lock()
	if e.Kind == EvClose && p.closeRecvAt.IsZero() {
		p.closeRecvAt = e.At
	}
	if e.Kind == EvEOF || e.Kind == EvReset {
		p.final = &e
	} else {
		p.q = append(p.q, e)
	}
	p.mu.Unlock()
	select {
	case p.notify <- struct{}{}:
	default:
	}
}

// read runs until the connection ends, turning frames into events.
func (p *Peer) read() {
	defer close(p.done)
	for {
		f, err := readFrame(p.br, p.maxMsg)
		if err != nil {
			var fe *errFrame
			switch {
			case errors.As(err, &fe):
				p.push(Event{Kind: EvViolation, Detail: fe.msg})
				p.push(Event{Kind: EvReset, Detail: "peer stopped reading after a malformed frame"})
			case err == io.EOF:
				p.push(Event{Kind: EvEOF})
			default:
				p.push(Event{Kind: EvReset, Detail: err.Error()})
			}
			return
		}
		p.frame(f)
	}
}

// frame checks one frame against RFC 6455 and turns it into events.
func (p *Peer) frame(f *rawFrame) {
	violation := func(format string, args ...any) {
		p.push(Event{Kind: EvViolation, Detail: fmt.Sprintf(format, args...)})
	}
	if p.gotClos {
		violation("a frame (opcode %d) after the close frame (section 5.5.1)", f.opcode)
	}
	if p.client && f.masked {
		violation("the server masked a frame (section 5.1)")
	}
	if !p.client && !f.masked {
		violation("the client sent an unmasked frame (section 5.1)")
	}
	switch {
	case f.rsv == 0:
	case p.pmd == nil:
		violation("RSV bits %03b set with no extension negotiated (section 5.2)", f.rsv)
	case f.rsv != 4:
		violation("RSV bits %03b set; permessage-deflate defines RSV1 only (section 5.2)", f.rsv)
	case f.opcode != OpText && f.opcode != OpBinary:
		violation("RSV1 set on a frame with opcode %d: permessage-deflate sets it on a message's first frame only (RFC 7692 section 6)", f.opcode)
	}
	if !f.minimal {
		violation("payload length %d not in the minimal encoding (section 5.2)", len(f.payload))
	}
	if isControl(f.opcode) {
		if !f.fin {
			violation("fragmented control frame (section 5.5)")
		}
		if len(f.payload) > 125 {
			violation("control frame with a %d-byte payload (section 5.5)", len(f.payload))
		}
	}
	switch f.opcode {
	case OpText, OpBinary:
		if p.fragOp != 0 {
			violation("a new data frame inside a fragmented message (section 5.4)")
		}
		z := f.rsv&4 != 0 && p.pmd != nil
		if f.fin {
			p.message(f.opcode, z, f.payload)
			return
		}
		p.fragOp, p.fragZ, p.frag = f.opcode, z, append(p.frag[:0], f.payload...)
	case OpContinuation:
		if p.fragOp == 0 {
			violation("a continuation frame with no message to continue (section 5.4)")
			return
		}
		p.frag = append(p.frag, f.payload...)
		if f.fin {
			op := p.fragOp
			p.fragOp = 0
			p.message(op, p.fragZ, bytes.Clone(p.frag))
		}
	case OpPing:
		p.push(Event{Kind: EvPing, Data: f.payload})
	case OpPong:
		p.push(Event{Kind: EvPong, Data: f.payload})
	case OpClose:
		p.gotClos = true
		e := Event{Kind: EvClose, Data: f.payload, Code: 1005}
		switch {
		case len(f.payload) == 1:
			e.Code = -1
			violation("a close frame with a 1-byte payload (section 5.5.1)")
		case len(f.payload) >= 2:
			e.Code = int(binary.BigEndian.Uint16(f.payload))
			e.Reason = string(f.payload[2:])
			if !SendableCode(e.Code) {
				violation("close code %d may not be sent (section 7.4)", e.Code)
			}
			if !utf8.Valid(f.payload[2:]) {
				violation("close reason is not valid UTF-8 (section 5.5.1)")
			}
		}
		p.push(e)
	default:
		violation("reserved opcode %d (section 5.2)", f.opcode)
	}
}

func (p *Peer) message(op byte, compressed bool, data []byte) {
	if compressed {
		out, err := p.pmd.rx.inflate(data, p.maxMsg)
		if err != nil {
			how := "with the window of the messages before"
			if p.pmd.rx.noTakeover {
				how = "on its own, as the agreed no_context_takeover requires"
			}
			p.push(Event{Kind: EvViolation, Detail: fmt.Sprintf("a compressed message of %d bytes does not inflate %s: %v (RFC 7692 section 7.2.2)", len(data), how, err)})
			return
		}
		data = out
	}
	if op == OpText && !utf8.Valid(data) {
		p.push(Event{Kind: EvViolation, Detail: "a text message that is not valid UTF-8 (section 8.1)"})
	}
	p.push(Event{Kind: EvMessage, Op: op, Data: data})
}

// SendableCode reports whether a close frame may carry code (RFC 6455
// section 7.4 and the IANA registry): 1000-1003, 1007-1014, 3000-4999.
func SendableCode(code int) bool {
	return code >= 1000 && code <= 1003 || code >= 1007 && code <= 1014 || code >= 3000 && code <= 4999
}

// next returns the next event, waiting at most wait. After the connection
// ended it returns the terminal event (EvEOF or EvReset) every time.
func (p *Peer) next(wait time.Duration) Event {
	timer := time.NewTimer(wait)
	defer timer.Stop()
	for {
		p.mu.Lock()
		if len(p.q) > 0 {
			e := p.q[0]
			p.q = p.q[1:]
			p.mu.Unlock()
			return e
		}
		if p.final != nil {
			e := *p.final
			p.mu.Unlock()
			return e
		}
		p.mu.Unlock()
		select {
		case <-p.notify:
		case <-timer.C:
			return Event{Kind: EvTimeout}
		}
	}
}

// write sends frames: joined into one write (chop 0), each in its own write
// (chop < 0), or in writes of chop bytes. A write error is recorded, not
// returned: the implementation may rightly have closed the link.
func (p *Peer) write(chop int, frames ...Frame) {
	closing := false
	for _, f := range frames {
		closing = closing || f.Opcode == OpClose
	}
	if closing {
		p.wmu.Lock()
		p.closeSent = true
		p.wmu.Unlock()
		defer func() {
			// Once written: the implementation cannot act on it before.
			p.wmu.Lock()
			if p.closeSentAt.IsZero() {
				p.closeSentAt = time.Now()
			}
			p.wmu.Unlock()
		}()
	}
	var bufs [][]byte
	if chop < 0 {
		for _, f := range frames {
			bufs = append(bufs, f.encode(nil, p.masks(f)))
		}
	} else {
		var b []byte
		for _, f := range frames {
			b = f.encode(b, p.masks(f))
		}
		if chop == 0 {
			bufs = [][]byte{b}
		} else {
			for len(b) > 0 {
				n := min(chop, len(b))
				bufs = append(bufs, b[:n])
				b = b[n:]
			}
		}
	}
	p.writeBufs(bufs)
}

func (p *Peer) writeBufs(bufs [][]byte) {
	p.wmu.Lock()
	defer p.wmu.Unlock()
	if p.werr != nil {
		return
	}
	_ = p.conn.SetWriteDeadline(time.Now().Add(writeTimeout))
	for _, b := range bufs {
		if _, err := p.conn.Write(b); err != nil {
			p.werr = err
			return
		}
	}
}

// writeTimeout bounds each batch of writes: an implementation that stopped
// reading must not hang the suite.
const writeTimeout = 30 * time.Second

func (p *Peer) masks(f Frame) bool {
	switch f.Mask {
	case MaskOn:
		return true
	case MaskOff:
		return false
	}
	return p.client
}

func (p *Peer) sentClose() bool {
	p.wmu.Lock()
	defer p.wmu.Unlock()
	return p.closeSent
}

// handshakeDone returns when the closing handshake ended for the peer: the
// later of its close frame written and the implementation's read; zero
// when either is missing.
func (p *Peer) handshakeDone() time.Time {
	p.wmu.Lock()
	sent := p.closeSentAt
	p.wmu.Unlock()
	p.mu.Lock()
	recv := p.closeRecvAt
	p.mu.Unlock()
	if sent.IsZero() || recv.IsZero() {
		return time.Time{}
	}
	if sent.After(recv) {
		return sent
	}
	return recv
}

// closeWrite ends the peer's side of the TCP connection (a FIN), leaving
// it open for reading.
func (p *Peer) closeWrite() {
	p.wmu.Lock()
	defer p.wmu.Unlock()
	if cw, ok := p.conn.(interface{ CloseWrite() error }); ok {
		_ = cw.CloseWrite()
	}
}

// shutdown closes the connection and waits for the reader.
func (p *Peer) shutdown() {
	p.conn.Close()
	<-p.done
}

// The opening handshake (RFC 6455 section 4).

const wsGUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

func acceptKey(key string) string {
	h := sha1.Sum([]byte(key + wsGUID))
	return base64.StdEncoding.EncodeToString(h[:])
}

func headerHasToken(h http.Header, name, token string) bool {
	for _, v := range h.Values(name) {
		for _, t := range strings.Split(v, ",") {
			if strings.EqualFold(strings.TrimSpace(t), token) {
				return true
			}
		}
	}
	return false
}

// clientHandshake sends an upgrade request for path with extra headers and
// checks the 101 response. It returns the response even when the check
// fails, so cases about the handshake can look at it.
func clientHandshake(conn net.Conn, br *bufio.Reader, host, path string, extra http.Header, wait time.Duration) (*http.Response, error) {
	var k [16]byte
	binary.LittleEndian.PutUint64(k[:], rand.Uint64())
	binary.LittleEndian.PutUint64(k[8:], rand.Uint64())
	key := base64.StdEncoding.EncodeToString(k[:])
	var b strings.Builder
	fmt.Fprintf(&b, "GET %s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n", path, host)
	fmt.Fprintf(&b, "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n", key)
	for name, vs := range extra {
		for _, v := range vs {
			fmt.Fprintf(&b, "%s: %s\r\n", name, v)
		}
	}
	b.WriteString("\r\n")
	_ = conn.SetDeadline(time.Now().Add(wait))
	defer conn.SetDeadline(time.Time{})
	if _, err := io.WriteString(conn, b.String()); err != nil {
		return nil, fmt.Errorf("sending the upgrade request: %w", err)
	}
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		return nil, fmt.Errorf("reading the upgrade response: %w", err)
	}
	switch {
	case resp.StatusCode != http.StatusSwitchingProtocols:
		return resp, fmt.Errorf("upgrade answered %s", resp.Status)
	case !headerHasToken(resp.Header, "Upgrade", "websocket"):
		return resp, fmt.Errorf("101 without Upgrade: websocket")
	case !headerHasToken(resp.Header, "Connection", "upgrade"):
		return resp, fmt.Errorf("101 without Connection: Upgrade")
	case resp.Header.Get("Sec-WebSocket-Accept") != acceptKey(key):
		return resp, fmt.Errorf("101 with Sec-WebSocket-Accept %q, want %q", resp.Header.Get("Sec-WebSocket-Accept"), acceptKey(key))
	}
	return resp, nil
}

// serverHandshake reads an upgrade request, checks it and answers 101,
// with Sec-WebSocket-Extensions: ext unless ext is "", where ext is what
// answer makes of the request's offers (its Sec-WebSocket-Extensions
// values, joined). It returns the request and ext.
func serverHandshake(conn net.Conn, br *bufio.Reader, answer func(offer string) string, wait time.Duration) (*http.Request, string, error) {
	_ = conn.SetDeadline(time.Now().Add(wait))
	defer conn.SetDeadline(time.Time{})
	req, err := http.ReadRequest(br)
	if err != nil {
		return nil, "", fmt.Errorf("reading the upgrade request: %w", err)
	}
	key := req.Header.Get("Sec-WebSocket-Key")
	raw, kerr := base64.StdEncoding.DecodeString(key)
	var bad string
	switch {
	case req.Method != http.MethodGet:
		bad = "method " + req.Method
	case !headerHasToken(req.Header, "Upgrade", "websocket"):
		bad = "no Upgrade: websocket"
	case !headerHasToken(req.Header, "Connection", "upgrade"):
		bad = "no Connection: Upgrade"
	case req.Header.Get("Sec-WebSocket-Version") != "13":
		bad = fmt.Sprintf("Sec-WebSocket-Version %q", req.Header.Get("Sec-WebSocket-Version"))
	case kerr != nil || len(raw) != 16:
		bad = fmt.Sprintf("Sec-WebSocket-Key %q is not 16 bytes in base64", key)
	}
	if bad != "" {
		_, _ = io.WriteString(conn, "HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 0\r\n\r\n")
		return req, "", fmt.Errorf("bad upgrade request: %s", bad)
	}
	var b strings.Builder
	b.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n")
	fmt.Fprintf(&b, "Sec-WebSocket-Accept: %s\r\n", acceptKey(key))
	ext := answer(strings.Join(req.Header.Values("Sec-WebSocket-Extensions"), ","))
	if ext != "" {
		fmt.Fprintf(&b, "Sec-WebSocket-Extensions: %s\r\n", ext)
	}
	b.WriteString("\r\n")
	if _, err := io.WriteString(conn, b.String()); err != nil {
		return req, ext, fmt.Errorf("sending 101: %w", err)
	}
	return req, ext, nil
}
