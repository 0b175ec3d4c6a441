// Package wsconform is a WebSocket conformance suite modelled on the case
// families of the Autobahn TestSuite (framing 1.x, ping/pong 2.x, reserved
// bits 3.x, opcodes 4.x, fragmentation 5.x, UTF-8 6.x, close handling 7.x,
// limits 9.x, permessage-deflate 12.x/13.x), written from RFC 6455 and the
// Autobahn case descriptions.
//
// A raw-frame peer written here plays the other end of every case: a client
// when the implementation under test is a server (TargetServer), a server
// when it is a client (TargetClient). The implementation must echo every
// message it receives; the peer sends well-formed and malformed frames and
// judges what comes back, frame by frame. Each case ends with a verdict: OK,
// NON-STRICT (allowed by RFC 6455 but not ideal, always with the reason) or
// FAILED; KnownFailures lists the cases expected to fail today, so a run
// reports unexpected failures and stale known-failure entries apart.
//
// Every wait is bounded (Options.Wait) and ends on an event: a frame, the
// end of the connection. Three waits can only end on time, because nothing
// else is left to observe; each is short and says what its expiry means:
// 6.4.3/6.4.4 wait for a frame cut in the middle to fail the link (expiry:
// no fail-fast, NON-STRICT at best); 2.10/2.11 wait for pongs still missing
// once a message sent after the pings was echoed (expiry: the last ping was
// not answered, FAILED); and a failed link is given half a second to end
// before the peer closes it itself (expiry: no verdict change).
package wsconform

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"math/rand/v2"
)

// Opcodes (RFC 6455 section 5.2).
const (
	OpContinuation byte = 0x0
	OpText         byte = 0x1
	OpBinary       byte = 0x2
	OpClose        byte = 0x8
	OpPing         byte = 0x9
	OpPong         byte = 0xA
)

// isControl reports whether op is a control opcode (0x8-0xF).
func isControl(op byte) bool { return op&0x8 != 0 }

// Masking says whether a frame the peer sends is masked.
type Masking uint8

const (
	// MaskAuto masks frames a client sends and not those a server sends,
	// as RFC 6455 section 5.1 requires.
	MaskAuto Masking = iota
	// MaskOn masks the frame whatever the role (a server that does so
	// breaks section 5.1).
	MaskOn
	// MaskOff sends the frame unmasked whatever the role (a client that
	// does so breaks section 5.1).
	MaskOff
)

// Frame is one WebSocket frame to send.
type Frame struct {
	Fin     bool
	Rsv     byte // RSV1..RSV3 as a 3-bit number: RSV1 = 4, RSV3 = 1
	Opcode  byte
	Payload []byte
	Mask    Masking
	// Len64, when set, encodes the payload length in the 8-byte form
	// with this value instead of the real length (for malformed-length
	// cases); the payload is sent as given.
	Len64 uint64
}

// encode appends the frame's bytes to b; masked says whether to mask it.
func (f Frame) encode(b []byte, masked bool) []byte {
	b0 := f.Rsv&7<<4 | f.Opcode&0xF
	if f.Fin {
		b0 |= 0x80
	}
	var mbit byte
	if masked {
		mbit = 0x80
	}
	n := len(f.Payload)
	switch {
	case f.Len64 != 0:
		b = append(b, b0, mbit|127)
		b = binary.BigEndian.AppendUint64(b, f.Len64)
	case n <= 125:
		b = append(b, b0, mbit|byte(n))
	case n <= 0xFFFF:
		b = append(b, b0, mbit|126)
		b = binary.BigEndian.AppendUint16(b, uint16(n))
	default:
		b = append(b, b0, mbit|127)
		b = binary.BigEndian.AppendUint64(b, uint64(n))
	}
	if !masked {
		return append(b, f.Payload...)
	}
	var key [4]byte
	binary.LittleEndian.PutUint32(key[:], rand.Uint32())
	b = append(b, key[:]...)
	start := len(b)
	b = append(b, f.Payload...)
	maskBytes(b[start:], key)
	return b
}

// maskBytes XORs p with the masking key (RFC 6455 section 5.3), eight
// bytes at a time.
func maskBytes(p []byte, key [4]byte) {
	k := uint64(binary.LittleEndian.Uint32(key[:]))
	k |= k << 32
	for len(p) >= 8 {
		binary.LittleEndian.PutUint64(p, binary.LittleEndian.Uint64(p)^k)
		p = p[8:]
	}
	for i := range p {
		p[i] ^= key[i&3]
	}
}

// Convenience constructors for whole frames.

// Text is an unfragmented text frame.
func Text(p []byte) Frame { return Frame{Fin: true, Opcode: OpText, Payload: p} }

// Binary is an unfragmented binary frame.
func Binary(p []byte) Frame { return Frame{Fin: true, Opcode: OpBinary, Payload: p} }

// Ping is a ping frame.
func Ping(p []byte) Frame { return Frame{Fin: true, Opcode: OpPing, Payload: p} }

// Pong is a pong frame.
func Pong(p []byte) Frame { return Frame{Fin: true, Opcode: OpPong, Payload: p} }

// Close is a close frame with a code and reason; code 0 sends no payload.
func Close(code int, reason string) Frame {
	return Frame{Fin: true, Opcode: OpClose, Payload: ClosePayload(code, reason)}
}

// ClosePayload is the payload of a close frame: none for code 0, else the
// 2-byte code and the reason.
func ClosePayload(code int, reason string) []byte {
	if code == 0 {
		return nil
	}
	return append(binary.BigEndian.AppendUint16(nil, uint16(code)), reason...)
}

// Fragments cuts a message into frames of at most size bytes (one frame
// when size <= 0 or the message is not longer).
func Fragments(op byte, p []byte, size int) []Frame {
	if size <= 0 || len(p) <= size {
		return []Frame{{Fin: true, Opcode: op, Payload: p}}
	}
	var fs []Frame
	for off := 0; off < len(p); off += size {
		end := min(off+size, len(p))
		f := Frame{Opcode: OpContinuation, Payload: p[off:end], Fin: end == len(p)}
		if off == 0 {
			f.Opcode = op
		}
		fs = append(fs, f)
	}
	return fs
}

// rawFrame is a frame as read from the wire.
type rawFrame struct {
	fin     bool
	rsv     byte
	opcode  byte
	masked  bool
	payload []byte
	// minimal is false when the length used a longer form than needed.
	minimal bool
}

// errFrame is a malformed frame (not an I/O error).
type errFrame struct{ msg string }

func (e *errFrame) Error() string { return e.msg }

// readFrame reads one frame, unmasking its payload. max bounds the payload.
func readFrame(r *bufio.Reader, max int64) (*rawFrame, error) {
	var h [2]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return nil, err
	}
	f := &rawFrame{
		fin:     h[0]&0x80 != 0,
		rsv:     h[0] >> 4 & 7,
		opcode:  h[0] & 0xF,
		masked:  h[1]&0x80 != 0,
		minimal: true,
	}
	n := uint64(h[1] & 0x7F)
	switch n {
	case 126:
		var b [2]byte
		if _, err := io.ReadFull(r, b[:]); err != nil {
			return nil, unexpectedEOF(err)
		}
		n = uint64(binary.BigEndian.Uint16(b[:]))
		f.minimal = n > 125
	case 127:
		var b [8]byte
		if _, err := io.ReadFull(r, b[:]); err != nil {
			return nil, unexpectedEOF(err)
		}
		n = binary.BigEndian.Uint64(b[:])
		if n>>63 != 0 {
			return nil, &errFrame{"64-bit payload length with the most significant bit set"}
		}
		f.minimal = n > 0xFFFF
	}
	if int64(n) > max {
		return nil, &errFrame{fmt.Sprintf("frame of %d bytes exceeds the peer's limit of %d", n, max)}
	}
	var key [4]byte
	if f.masked {
		if _, err := io.ReadFull(r, key[:]); err != nil {
			return nil, unexpectedEOF(err)
		}
	}
	f.payload = make([]byte, n)
	if _, err := io.ReadFull(r, f.payload); err != nil {
		return nil, unexpectedEOF(err)
	}
	if f.masked {
		maskBytes(f.payload, key)
	}
	return f, nil
}

func unexpectedEOF(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}
