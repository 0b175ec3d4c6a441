package lws

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha1"
	"encoding/base64"
	"encoding/binary"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// rawPeer is a hand-driven WebSocket end, for frames a library would not
// send: the client of a link to a listener, or the server (rawServer) of a
// link lws.Dial made.
type rawPeer struct {
	nc   net.Conn
	br   *bufio.Reader
	resp *http.Response // the 101, when the peer is the client
}

// clientFrame encodes one masked client frame (rsv1: RSV1 set).
func clientFrame(fin, rsv1 bool, op byte, payload []byte) []byte {
	b0 := op
	if fin {
		b0 |= 0x80
	}
	if rsv1 {
		b0 |= 0x40
	}
	b := []byte{b0}
	switch n := len(payload); {
	case n <= 125:
		b = append(b, 0x80|byte(n))
	case n <= 0xffff:
		b = append(b, 0x80|126, byte(n>>8), byte(n))
	default:
		b = append(b, 0x80|127)
		b = binary.BigEndian.AppendUint64(b, uint64(n))
	}
	key := [4]byte{0x12, 0x34, 0x56, 0x78}
	b = append(b, key[:]...)
	for i, c := range payload {
		b = append(b, c^key[i&3])
	}
	return b
}

// serverFrame encodes one unmasked server frame.
func serverFrame(fin, rsv1 bool, op byte, payload []byte) []byte {
	f := clientFrame(fin, rsv1, op, payload)
	hl := len(f) - len(payload) - 4 // the header, without the masking key
	f[1] &^= 0x80
	return append(f[:hl:hl], payload...)
}

func (w *rawPeer) write(t testing.TB, b []byte) {
	t.Helper()
	_, err := w.nc.Write(b)
	require.NoError(t, err)
}

// read reads one frame, unmasking a client's.
func (w *rawPeer) read() (fin, rsv1 bool, op byte, payload []byte, err error) {
	var h [2]byte
	if _, err = io.ReadFull(w.br, h[:]); err != nil {
		return
	}
	fin, rsv1, op = h[0]&0x80 != 0, h[0]&0x40 != 0, h[0]&0xf
	masked := h[1]&0x80 != 0
	n := uint64(h[1] & 0x7f)
	switch n {
	case 126:
		var b [2]byte
		if _, err = io.ReadFull(w.br, b[:]); err != nil {
			return
		}
		n = uint64(binary.BigEndian.Uint16(b[:]))
	case 127:
		var b [8]byte
		if _, err = io.ReadFull(w.br, b[:]); err != nil {
			return
		}
		n = binary.BigEndian.Uint64(b[:])
	}
	var key [4]byte
	if masked {
		if _, err = io.ReadFull(w.br, key[:]); err != nil {
			return
		}
	}
	payload = make([]byte, n)
	_, err = io.ReadFull(w.br, payload)
	for i := range payload {
		payload[i] ^= key[i&3] // 0 when not masked
	}
	return
}

// readCloseCode reads frames until a close frame and returns its code
// (0: the connection ended without one).
func (w *rawPeer) readCloseCode() int {
	for {
		_, _, op, p, err := w.read()
		if err != nil {
			return 0
		}
		if op == 8 && len(p) >= 2 {
			return int(binary.BigEndian.Uint16(p))
		}
	}
}

// sendThenReadClose writes b (whole frames) while it waits for the other
// end's close frame, and returns its code (0: none came). The write may
// stall once the other end stops reading; closing the connection ends it.
// b is not endless: an end that closes while unread data waits in its
// socket makes the kernel reset the connection, and the reset can overtake
// the close frame.
func (w *rawPeer) sendThenReadClose(b []byte) int {
	done := make(chan struct{})
	go func() {
		defer close(done)
		_, _ = w.nc.Write(b)
	}()
	code := w.readCloseCode()
	w.nc.Close()
	<-done
	return code
}

// rawServer accepts one WebSocket link and hands it to play. When ext is
// set and the client offered any extension, the 101 names ext in
// Sec-WebSocket-Extensions. It returns the ws:// URL to dial.
func rawServer(t testing.TB, ext string, play func(w *rawPeer)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	done := make(chan struct{})
	t.Cleanup(func() {
		ln.Close()
		<-done
	})
	go func() {
		defer close(done)
		nc, err := ln.Accept()
		if err != nil {
			return
		}
		defer nc.Close()
		_ = nc.SetDeadline(time.Now().Add(hangTimeout))
		br := bufio.NewReader(nc)
		req, err := http.ReadRequest(br)
		if err != nil {
			return
		}
		h := sha1.Sum([]byte(req.Header.Get("Sec-WebSocket-Key") + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))
		resp := "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
			"Sec-WebSocket-Accept: " + base64.StdEncoding.EncodeToString(h[:]) + "\r\n"
		if ext != "" && req.Header.Get("Sec-WebSocket-Extensions") != "" {
			resp += "Sec-WebSocket-Extensions: " + ext + "\r\n"
		}
		if _, err := io.WriteString(nc, resp+"\r\n"); err != nil {
			return
		}
		play(&rawPeer{nc: nc, br: br})
	}()
	return "ws://" + ln.Addr().String() + "/"
}

// quickClose bounds Close's wait for links that never finish their
// closing handshake (their raw peers stop reading).
func quickClose(c *Config) { c.ShutdownTimeout = time.Second }

// TestDialLongFrameOverMax: a server sends a dialled link one 1 MiB frame
// against MaxMessageSize 64 KiB. The link closes with 1009 and the process
// survives: libwebsockets' client parser overflows its frame buffer when
// CLIENT_RECEIVE returns -1 in the middle of a long frame (see
// Conn.receive), which crashed this test with SIGSEGV before.
func TestDialLongFrameOverMax(t *testing.T) {
	lim := newLimitLog()
	codes := make(chan int, 1)
	url := rawServer(t, "", func(w *rawPeer) {
		go func() { _, _ = w.nc.Write(serverFrame(true, false, 2, bytes.Repeat([]byte("x"), 1<<20))) }()
		codes <- w.readCloseCode()
	})
	c := newClientContext(t, lim.hook, quickClose)
	s := newSink()
	_, err := c.Dial(context.Background(), url, &DialOptions{Handler: s, MaxMessageSize: 64 << 10})
	require.NoError(t, err)
	ce := s.waitClose(t)
	assert.Equal(t, StatusMessageTooBig, ce.Code)
	assert.True(t, ce.Local)
	lim.expect(t, "", LimitMaxMessage)
	assert.Equal(t, int(StatusMessageTooBig), waitFor(t, codes, "the close frame"))
}
