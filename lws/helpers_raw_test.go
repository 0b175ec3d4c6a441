package lws

import (
	"bufio"
	"bytes"
	"compress/flate"
	"crypto/sha1"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// Hand-driven peers, for bytes a library would not send: WebSocket ends
// (rawPeer, rawWS), upgrade requests and raw HTTP exchanges, deflate data.

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
	return rawServerThen(t, ext, nil, play)
}

// rawServerThen is rawServer with first (whole frames) written in the
// same write as the 101, so that the client reads both at once.
func rawServerThen(t testing.TB, ext string, first []byte, play func(w *rawPeer)) string {
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
		if _, err := nc.Write(append([]byte(resp+"\r\n"), first...)); err != nil {
			return
		}
		play(&rawPeer{nc: nc, br: br})
	}()
	return "ws://" + ln.Addr().String() + "/"
}

// upgradeRequest is a valid WebSocket upgrade request for path, with extra
// header lines ("Name: value\r\n" each).
func upgradeRequest(path, extra string) string {
	return "GET " + path + " HTTP/1.1\r\nHost: test\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n" + extra + "\r\n"
}

// rawDial connects to addr for a hand-driven peer: closed when the test
// ends (or earlier by the caller), every read and write bounded by
// hangTimeout.
func rawDial(t testing.TB, addr string) net.Conn {
	t.Helper()
	nc, err := net.DialTimeout("tcp", addr, 5*time.Second)
	require.NoError(t, err)
	t.Cleanup(func() { nc.Close() })
	require.NoError(t, nc.SetDeadline(time.Now().Add(hangTimeout)))
	return nc
}

// rawExchange writes request on a new TCP connection and reads until the
// server closes it (bounded by hangTimeout). It returns everything read and
// whether the server closed the connection (EOF or reset) rather than the
// read timing out.
func rawExchange(t testing.TB, addr, request string) (string, bool) {
	t.Helper()
	nc := rawDial(t, addr)
	defer nc.Close()
	_, err := io.WriteString(nc, request)
	require.NoError(t, err)
	b, err := io.ReadAll(nc)
	var ne net.Error
	timedOut := errors.As(err, &ne) && ne.Timeout()
	return string(b), !timedOut
}

// parseRaw parses the first response in raw.
func parseRaw(t testing.TB, raw string) (*http.Response, string) {
	t.Helper()
	resp, err := http.ReadResponse(bufio.NewReader(strings.NewReader(raw)), nil)
	require.NoError(t, err, "response %q", raw)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err, "response %q", raw)
	return resp, string(b)
}

// keepAliveThen sends first on a new connection, reads its response, and
// only then sends second, so that libwebsockets has released the first
// request's header table in between. It returns what followed the first
// response until the server closed the connection.
func keepAliveThen(t *testing.T, addr, first, second string) string {
	t.Helper()
	nc := rawDial(t, addr)
	defer nc.Close()
	_, err := io.WriteString(nc, first)
	require.NoError(t, err)
	resp, err := http.ReadResponse(newBufReader(nc), nil)
	require.NoError(t, err)
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	_, err = io.WriteString(nc, second)
	require.NoError(t, err)
	rest, err := io.ReadAll(nc)
	require.NoError(t, err, "connection not closed after the second request")
	return string(rest)
}

func newBufReader(r io.Reader) *bufio.Reader { return bufio.NewReader(r) }

// rawExchangeUntil writes request on a new connection and reads until the
// bytes read contain marker or the server closes the connection. It
// returns what was read and whether the server closed it.
func rawExchangeUntil(t testing.TB, addr, request, marker string) (string, bool) {
	t.Helper()
	nc := rawDial(t, addr)
	defer nc.Close()
	_, err := io.WriteString(nc, request)
	require.NoError(t, err)
	var got []byte
	buf := make([]byte, 4096)
	for !strings.Contains(string(got), marker) {
		n, err := nc.Read(buf)
		got = append(got, buf[:n]...)
		if err != nil {
			var ne net.Error
			require.False(t, errors.As(err, &ne) && ne.Timeout(), "timed out; read %q", got)
			return string(got), true
		}
	}
	return string(got), false
}

// rawWS is a hand-driven WebSocket client connection.
type rawWS struct {
	t  *testing.T
	nc net.Conn
	br *bufio.Reader
}

// dialRawWS opens a WebSocket link to addr by hand and checks the 101.
func dialRawWS(t *testing.T, addr string) *rawWS {
	t.Helper()
	nc := rawDial(t, addr)
	_, err := io.WriteString(nc, upgradeRequest("/", ""))
	require.NoError(t, err)
	br := bufio.NewReader(nc)
	resp, err := http.ReadResponse(br, nil)
	require.NoError(t, err)
	require.Equal(t, http.StatusSwitchingProtocols, resp.StatusCode)
	return &rawWS{t: t, nc: nc, br: br}
}

// frame writes one frame; masked as a client must unless masked is false.
func (w *rawWS) frame(fin bool, op byte, payload []byte, masked bool) {
	w.t.Helper()
	b0 := op
	if fin {
		b0 |= 0x80
	}
	hdr := []byte{b0}
	mbit := byte(0)
	if masked {
		mbit = 0x80
	}
	switch n := len(payload); {
	case n < 126:
		hdr = append(hdr, mbit|byte(n))
	case n < 65536:
		hdr = append(hdr, mbit|126, byte(n>>8), byte(n))
	default:
		hdr = append(hdr, mbit|127, 0, 0, 0, 0, byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
	}
	p := append([]byte(nil), payload...)
	if masked {
		key := [4]byte{0x12, 0x34, 0x56, 0x78}
		hdr = append(hdr, key[:]...)
		for i := range p {
			p[i] ^= key[i&3]
		}
	}
	_, err := w.nc.Write(append(hdr, p...))
	require.NoError(w.t, err)
}

// read reads one frame from the server (unmasked); ok is false when the
// connection ended first.
func (w *rawWS) read() (op byte, payload []byte, ok bool) {
	var h [2]byte
	if _, err := io.ReadFull(w.br, h[:]); err != nil {
		return 0, nil, false
	}
	n := int(h[1] & 0x7f)
	switch n {
	case 126:
		var e [2]byte
		if _, err := io.ReadFull(w.br, e[:]); err != nil {
			return 0, nil, false
		}
		n = int(e[0])<<8 | int(e[1])
	case 127:
		var e [8]byte
		if _, err := io.ReadFull(w.br, e[:]); err != nil {
			return 0, nil, false
		}
		n = 0
		for _, b := range e {
			n = n<<8 | int(b)
		}
	}
	payload = make([]byte, n)
	if _, err := io.ReadFull(w.br, payload); err != nil {
		return 0, nil, false
	}
	return h[0] & 0x0f, payload, true
}

// closeFrame reads frames until a close frame and returns its payload; ok
// is false when the connection ended without one.
func (w *rawWS) closeFrame() ([]byte, bool) {
	for {
		op, p, ok := w.read()
		if !ok {
			return nil, false
		}
		if op == 0x8 {
			return p, true
		}
	}
}

// dialPMD opens a WebSocket link to addr offering the given
// Sec-WebSocket-Extensions value ("" for none) and reads the 101.
func dialPMD(t testing.TB, addr, offer string) *rawPeer {
	t.Helper()
	extra := ""
	if offer != "" {
		extra = "Sec-WebSocket-Extensions: " + offer + "\r\n"
	}
	w := dialUpgrade(t, addr, extra)
	require.Equal(t, http.StatusSwitchingProtocols, w.resp.StatusCode)
	return w
}

// dialUpgrade sends an upgrade request with the extra header lines to addr
// and reads the response, whatever its status.
func dialUpgrade(t testing.TB, addr, extra string) *rawPeer {
	t.Helper()
	nc := rawDial(t, addr)
	_, err := io.WriteString(nc, upgradeRequest("/", extra))
	require.NoError(t, err)
	br := bufio.NewReader(nc)
	resp, err := http.ReadResponse(br, nil)
	require.NoError(t, err, "the server closed the connection without an answer")
	return &rawPeer{nc: nc, br: br, resp: resp}
}

// readMessage reads one whole data message: its opcode, whether it was
// compressed, and its payload as sent (not inflated).
func (w *rawPeer) readMessage() (op byte, compressed bool, payload []byte, err error) {
	for {
		fin, rsv1, o, p, e := w.read()
		if e != nil {
			return 0, false, nil, e
		}
		if o >= 8 {
			if o == 8 {
				return o, false, p, nil
			}
			continue
		}
		if o != 0 {
			op, compressed = o, rsv1
		}
		payload = append(payload, p...)
		if fin {
			return op, compressed, payload, nil
		}
	}
}

// deflateMsg compresses msg as one permessage-deflate message: a sync
// flush without its final 4 bytes (RFC 7692 section 7.2.1). dict is what
// the peer's window holds from earlier messages (nil: no context takeover).
func deflateMsg(t testing.TB, msg, dict []byte) []byte {
	t.Helper()
	var b bytes.Buffer
	fw, err := flate.NewWriterDict(&b, flate.DefaultCompression, dict)
	require.NoError(t, err)
	_, err = fw.Write(msg)
	require.NoError(t, err)
	require.NoError(t, fw.Flush())
	out := b.Bytes()
	require.True(t, bytes.HasSuffix(out, []byte{0, 0, 0xff, 0xff}))
	return out[:len(out)-4]
}

// inflateMsg inflates one permessage-deflate message; dict as deflateMsg.
func inflateMsg(p, dict []byte) ([]byte, error) {
	src := io.MultiReader(bytes.NewReader(p), bytes.NewReader([]byte{0, 0, 0xff, 0xff, 1, 0, 0, 0xff, 0xff}))
	out, err := io.ReadAll(flate.NewReaderDict(src, dict))
	if errors.Is(err, io.ErrUnexpectedEOF) {
		err = errors.New("truncated deflate stream")
	}
	return out, err
}

// emptyBlocks is n bytes of empty, non-final stored deflate blocks (5
// bytes each, n a multiple of 5): compressed data that inflates to nothing.
func emptyBlocks(n int) []byte { return bytes.Repeat([]byte{0, 0, 0, 0xff, 0xff}, n/5) }

// autobahn137 is the offer list of Autobahn's 13.7.x cases (296 bytes):
// three configurations, the first asking for an 8-bit server window.
const autobahn137 = "permessage-deflate; client_no_context_takeover; client_max_window_bits; server_no_context_takeover; server_max_window_bits=8, " +
	"permessage-deflate; client_no_context_takeover; client_max_window_bits; server_no_context_takeover, " +
	"permessage-deflate; client_no_context_takeover; client_max_window_bits"

// rawHTTP writes a raw request on a new TCP connection and reads one
// response.
func rawHTTP(t testing.TB, addr, request string) (*http.Response, []byte) {
	t.Helper()
	nc := rawDial(t, addr)
	defer nc.Close()
	_, err := io.WriteString(nc, request)
	require.NoError(t, err)
	resp, err := http.ReadResponse(bufio.NewReader(nc), nil)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp, b
}

// upgradesAtOnce sends req on n connections so that libwebsockets holds n
// header buffers at once (the first 40 bytes of each, then the rest of
// each), and returns each connection's response (headers only; the
// connections close when the test ends).
func upgradesAtOnce(t *testing.T, addr, req string, n int) []*http.Response {
	t.Helper()
	conns := make([]net.Conn, n)
	for i := range conns {
		nc := rawDial(t, addr)
		_, err := io.WriteString(nc, req[:40]) // lws takes a header buffer
		require.NoError(t, err)
		conns[i] = nc
	}
	for _, nc := range conns {
		_, err := io.WriteString(nc, req[40:])
		require.NoError(t, err)
	}
	out := make([]*http.Response, n)
	for i, nc := range conns {
		resp, err := http.ReadResponse(bufio.NewReader(nc), nil)
		require.NoError(t, err, "link %d", i)
		out[i] = resp
		nc.Close()
	}
	return out
}
