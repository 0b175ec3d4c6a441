package lws

import (
	"bytes"
	"compress/flate"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/lwsgate/lwsgate/callbacks"
	"github.com/lwsgate/lwsgate/cgo"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// countConn counts the bytes a connection reads and writes, handshake
// included: what crossed the wire.
type countConn struct {
	net.Conn
	rd, wr atomic.Int64
}

func (c *countConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.rd.Add(int64(n))
	return n, err
}

func (c *countConn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	c.wr.Add(int64(n))
	return n, err
}

// deflateSizes are the message sizes of the echo tests: the frame length
// encodings' edges, a message that libwebsockets' 64 KiB write chunks
// split, and 4 MiB.
var deflateSizes = []int{0, 1, 125, 126, 65535, 65536, 64<<10 + 1, 1 << 20, 4 << 20}

// deflatePayloads returns a compressible and an incompressible payload of
// n bytes.
func deflatePayloads(n int) map[string][]byte {
	rnd := make([]byte, n)
	_, _ = rand.NewChaCha8([32]byte{byte(n), byte(n >> 8), byte(n >> 16)}).Read(rnd)
	return map[string][]byte{
		"text":   bytes.Repeat([]byte("permessage-deflate, RFC 7692. "), n/30+1)[:n],
		"random": rnd,
	}
}

// linkOpens records Config.OnLinkOpen.
func linkOpens(ch chan Link) func(*Config) {
	return func(c *Config) { c.OnLinkOpen = func(l Link) { ch <- l } }
}

// TestDeflateServerGorillaClient: a gorilla client with compression
// against a listener with Compression: the 101 names permessage-deflate,
// the link says Compression, and every message comes back intact, whole
// or fragmented by the client, while fewer bytes than the messages hold
// cross the wire in each direction.
func TestDeflateServerGorillaClient(t *testing.T) {
	opens := make(chan Link, 4)
	_, addr := startServer(t, Listener{Handler: EchoHandler{}, Compression: true, MaxMessageSize: 8 << 20}, linkOpens(opens))
	var cc *countConn
	var tap *frameTap
	d := websocket.Dialer{
		HandshakeTimeout: 5 * time.Second, EnableCompression: true,
		// A small buffer: gorilla sends a message that compresses to
		// over 1 KiB as several frames.
		WriteBufferSize: 1024,
		NetDial: func(network, a string) (net.Conn, error) {
			nc, err := net.Dial(network, a)
			if err != nil {
				return nil, err
			}
			tap = &frameTap{Conn: nc}
			cc = &countConn{Conn: tap}
			return cc, nil
		},
	}
	ws, resp, err := dialWith(t, &d, addr, "/", nil)
	require.NoError(t, err)
	assert.Equal(t, []string{"permessage-deflate; server_no_context_takeover; client_no_context_takeover"}, resp.Header.Values("Sec-Websocket-Extensions"))
	assert.True(t, waitFor(t, opens, "OnLinkOpen").Compression, "Link.Compression")
	ws.SetReadLimit(8 << 20)

	for _, n := range deflateSizes {
		for kind, msg := range deflatePayloads(n) {
			for _, typ := range []int{websocket.TextMessage, websocket.BinaryMessage} {
				if typ == websocket.TextMessage && kind == "random" {
					continue // not UTF-8
				}
				rd, wr, nf := cc.rd.Load(), cc.wr.Load(), len(tap.seen())
				require.NoError(t, ws.WriteMessage(typ, msg))
				_ = ws.SetReadDeadline(time.Now().Add(hangTimeout))
				gt, got, err := ws.ReadMessage()
				require.NoError(t, err, "%s %d", kind, n)
				assert.Equal(t, typ, gt)
				require.True(t, bytes.Equal(msg, got), "%s %d: echo differs (%d bytes back)", kind, n, len(got))
				if kind == "random" && n >= 65535 {
					frames := tap.seen()[nf:]
					require.Greater(t, len(frames), 1, "%d random bytes in one frame", n)
					assert.Equal(t, byte(typ), frames[0].op)
					assert.False(t, frames[0].fin)
					assert.Equal(t, byte(0), frames[1].op, "continuation")
					assert.True(t, frames[len(frames)-1].fin)
				}
				if kind == "text" && n >= 65535 {
					out, in := cc.wr.Load()-wr, cc.rd.Load()-rd
					assert.Less(t, out, int64(n/10), "%d bytes of text sent as %d", n, out)
					assert.Less(t, in, int64(n/10), "%d bytes of text echoed as %d", n, in)
				}
			}
		}
	}
}

// gorillaDeflateEcho is a gorilla server with compression that echoes, in
// frames of at most about 1 KiB, and reports each upgrade request's offer.
func gorillaDeflateEcho(t testing.TB, offers chan<- []string) *httptest.Server {
	up := websocket.Upgrader{EnableCompression: true, WriteBufferSize: 1024}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		offers <- r.Header.Values("Sec-Websocket-Extensions")
		c, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer c.Close()
		c.SetReadLimit(16 << 20)
		for {
			mt, p, err := c.ReadMessage()
			if err != nil {
				return
			}
			if err := c.WriteMessage(mt, p); err != nil {
				return
			}
		}
	}))
	t.Cleanup(srv.Close)
	return srv
}

// TestDeflateDialGorillaServer: lws.Dial with Compression against a gorilla
// server with compression: the offer is seen, the link says Compression,
// and every message comes back intact (the client's messages over 64 KiB
// go in several writes, the server's echo in 1 KiB frames).
func TestDeflateDialGorillaServer(t *testing.T) {
	offers := make(chan []string, 4)
	srv := gorillaDeflateEcho(t, offers)
	c := newClientContext(t)
	s := newSink()
	conn, err := c.Dial(context.Background(), wsURL(srv), &DialOptions{Handler: s, Compression: true, MaxMessageSize: 8 << 20})
	require.NoError(t, err)
	assert.Equal(t, []string{"permessage-deflate; client_max_window_bits"}, waitFor(t, offers, "the upgrade"))
	assert.True(t, conn.Link().Compression, "Link.Compression")
	for _, n := range deflateSizes {
		for kind, msg := range deflatePayloads(n) {
			for _, typ := range []MessageType{TextMessage, BinaryMessage} {
				if typ == TextMessage && kind == "random" {
					continue
				}
				require.NoError(t, conn.Send(typ, msg))
				m := s.next(t)
				assert.Equal(t, typ, m.typ)
				require.True(t, bytes.Equal(msg, m.data), "%s %d: echo differs (%d bytes back)", kind, n, len(m.data))
			}
		}
	}
	require.NoError(t, conn.Close(StatusNormalClosure, ""))
	assert.Equal(t, StatusNormalClosure, s.waitClose(t).Code)
}

// TestDeflateOffByDefault: without Compression a listener ignores the
// offer and a dial makes none, and messages go uncompressed.
func TestDeflateOffByDefault(t *testing.T) {
	opens := make(chan Link, 4)
	_, addr := startServer(t, Listener{Handler: EchoHandler{}}, linkOpens(opens))
	d := websocket.Dialer{EnableCompression: true}
	ws, resp, err := dialWith(t, &d, addr, "/", nil)
	require.NoError(t, err)
	assert.Empty(t, resp.Header.Values("Sec-Websocket-Extensions"))
	assert.False(t, waitFor(t, opens, "OnLinkOpen").Compression)
	echo(t, ws, "plain")

	offers := make(chan []string, 4)
	srv := gorillaDeflateEcho(t, offers)
	s := newSink()
	conn, err := newClientContext(t).Dial(context.Background(), wsURL(srv), &DialOptions{Handler: s})
	require.NoError(t, err)
	assert.Empty(t, waitFor(t, offers, "the upgrade"))
	assert.False(t, conn.Link().Compression)
	require.NoError(t, conn.SendText("plain"))
	assert.Equal(t, "plain", string(s.next(t).data))
}

// zeroBomb returns a permessage-deflate payload (without the final 4
// bytes) that inflates to mib MiB of zeros: one deflated MiB, then the
// same deflated MiB again and again. After a MiB of zeros the window holds
// only zeros, so a segment that encodes a MiB of them by reference to the
// window is valid after any other.
func zeroBomb(t testing.TB, mib int) []byte {
	t.Helper()
	var b bytes.Buffer
	fw, err := flate.NewWriter(&b, flate.BestCompression)
	require.NoError(t, err)
	z := make([]byte, 1<<20)
	_, _ = fw.Write(z)
	require.NoError(t, fw.Flush())
	first := b.Len()
	_, _ = fw.Write(z)
	require.NoError(t, fw.Flush())
	seg := append([]byte(nil), b.Bytes()[first:]...)
	out := append([]byte(nil), b.Bytes()[:first]...)
	for range mib - 1 {
		out = append(out, seg...)
	}
	return out[:len(out)-4]
}

// TestZeroBomb checks the bomb builder itself on a small bomb.
func TestZeroBomb(t *testing.T) {
	got, err := inflateMsg(zeroBomb(t, 5), nil)
	require.NoError(t, err)
	assert.Equal(t, 5<<20, len(got))
	assert.Equal(t, -1, bytes.IndexFunc(got, func(r rune) bool { return r != 0 }))
}

// vmRSS is the process's resident set in bytes (Linux).
func vmRSS(t testing.TB) int64 {
	t.Helper()
	b, err := os.ReadFile("/proc/self/status")
	require.NoError(t, err)
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			require.NoError(t, err)
			return kb << 10
		}
	}
	t.Fatal("no VmRSS")
	return 0
}

func receiveCount(c *Context) uint64 {
	for _, rc := range c.ReasonCounts() {
		if rc.Reason == int(callbacks.Receive) || rc.Reason == int(callbacks.ClientReceive) {
			return rc.Count
		}
	}
	return 0
}

// TestDeflateBombInflated: one compressed message of 1 MiB on the wire
// that inflates to 1 GiB, against the default MaxMessageSize of 1 MiB. The
// link is closed with 1009 (max_message) once a MiB has been inflated:
// the binding counts inflated bytes, and neither Go nor C memory grows by
// anything like the inflated size.
func TestDeflateBombInflated(t *testing.T) {
	lim := newLimitLog()
	c, addr := startServer(t, Listener{Name: "edge", Handler: EchoHandler{}, Compression: true}, lim.hook, quickClose)
	bomb := zeroBomb(t, 1024)
	frame := clientFrame(true, true, 2, bomb)
	w := dialPMD(t, addr, "permessage-deflate")
	require.Equal(t, "permessage-deflate", w.resp.Header.Get("Sec-Websocket-Extensions"))

	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	rss, recv := vmRSS(t), receiveCount(c)
	go func() { _, _ = w.nc.Write(frame) }() // may fail once the server closes
	assert.Equal(t, int(StatusMessageTooBig), w.readCloseCode())
	runtime.ReadMemStats(&after)
	grownRSS := vmRSS(t) - rss
	allocated := after.TotalAlloc - before.TotalAlloc
	callbacks := receiveCount(c) - recv
	t.Logf("bomb: %d bytes on the wire inflating to %d; server: %d RECEIVE callbacks, %d bytes allocated by Go, RSS %+d bytes",
		len(bomb), 1<<30, callbacks, allocated, grownRSS)
	assert.Less(t, allocated, uint64(16<<20), "Go allocations while the bomb went off")
	assert.Less(t, grownRSS, int64(64<<20), "RSS growth while the bomb went off")
	lim.expect(t, "edge", LimitMaxMessage)
	lim.none(t)
	echo(t, dial(t, addr, nil), "still serving")
}

// TestDeflateBombEmptyBlocks: a compressed message that never ends and
// inflates to nothing: one frame announcing 1 GiB of empty deflate blocks,
// or fragments of them without end (each a sync flush, as a sender that
// flushes at every fragment sends). The client sends 1 MiB of it. No
// inflated byte ever counts against MaxMessageSize (64 KiB), but the
// compressed bytes do: the link is closed with 1009 (max_compressed) once
// the message has brought more than 64 KiB + 8 KiB + 4 KiB = 77824. (A
// server without the bound waits for the rest of the message, and the
// test fails at hangTimeout.)
func TestDeflateBombEmptyBlocks(t *testing.T) {
	lim := newLimitLog()
	_, addr := startServer(t, Listener{Name: "edge", Handler: EchoHandler{}, Compression: true, MaxMessageSize: 64 << 10}, lim.hook, quickClose)
	assert.Equal(t, int64(77824), maxCompressed(64<<10))

	t.Run("one frame", func(t *testing.T) {
		w := dialPMD(t, addr, "permessage-deflate")
		require.Equal(t, "permessage-deflate", w.resp.Header.Get("Sec-Websocket-Extensions"))
		// clientFrame's header and mask, for a frame announcing 1 GiB
		// of which the first MiB (a multiple of 4 and 5) follows.
		body := emptyBlocks(1048560)
		f := clientFrame(true, true, 2, body)
		hdr := append([]byte{f[0], 0x80 | 127}, binary.BigEndian.AppendUint64(nil, 1<<30)...)
		hdr = append(hdr, f[len(f)-len(body)-4:len(f)-len(body)]...)
		assert.Equal(t, int(StatusMessageTooBig), w.sendThenReadClose(append(hdr, f[len(f)-len(body):]...)))
		lim.expect(t, "edge", LimitMaxCompressed)
	})
	t.Run("fragments", func(t *testing.T) {
		w := dialPMD(t, addr, "permessage-deflate")
		b := clientFrame(false, true, 2, emptyBlocks(1020))
		for range 1023 {
			b = append(b, clientFrame(false, false, 0, emptyBlocks(1020))...)
		}
		assert.Equal(t, int(StatusMessageTooBig), w.sendThenReadClose(b))
		lim.expect(t, "edge", LimitMaxCompressed)
	})
	lim.none(t)
	echo(t, dial(t, addr, nil), "still serving")
}

// TestDeflateBombClient: the same bombs against a link lws.Dial made,
// with MaxMessageSize 64 KiB: the client closes with 1009 and reports
// the limit (listener "").
func TestDeflateBombClient(t *testing.T) {
	for _, tc := range []struct {
		name    string
		limit   Limit
		payload []byte
	}{
		{"inflated", LimitMaxMessage, zeroBomb(t, 64)},
		{"empty blocks", LimitMaxCompressed, emptyBlocks(1 << 20)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			lim := newLimitLog()
			codes := make(chan int, 1)
			url := rawServer(t, "permessage-deflate", func(w *rawPeer) {
				go func() { _, _ = w.nc.Write(serverFrame(true, true, 2, tc.payload)) }()
				codes <- w.readCloseCode()
			})
			c := newClientContext(t, lim.hook, quickClose)
			s := newSink()
			conn, err := c.Dial(context.Background(), url, &DialOptions{Handler: s, Compression: true, MaxMessageSize: 64 << 10})
			require.NoError(t, err)
			require.True(t, conn.Link().Compression)
			ce := s.waitClose(t)
			assert.Equal(t, StatusMessageTooBig, ce.Code)
			assert.True(t, ce.Local)
			lim.expect(t, "", tc.limit)
			assert.Equal(t, int(StatusMessageTooBig), waitFor(t, codes, "the close frame"))
		})
	}
}

func TestDeflateOfferOK(t *testing.T) {
	for _, tc := range []struct {
		offers []string
		ok     bool
	}{
		{[]string{"permessage-deflate"}, true},
		{[]string{"permessage-deflate; client_max_window_bits"}, true},
		{[]string{"permessage-deflate; client_max_window_bits=10"}, true},
		{[]string{`permessage-deflate; client_max_window_bits="15"`}, true},
		{[]string{"permessage-deflate; server_no_context_takeover; client_no_context_takeover"}, true},
		{[]string{"x-webkit-deflate-frame, permessage-deflate"}, true},
		{[]string{"x-foo", "permessage-deflate;client_no_context_takeover"}, true},
		{[]string{"permessage-deflate; client_max_window_bits, permessage-deflate"}, true},
		{[]string{"permessage-deflate, permessage-deflate; client_max_window_bits"}, false},
		{[]string{"permessage-deflate", "permessage-deflate; client_max_window_bits"}, false},
		{[]string{"permessage-deflate; server_max_window_bits=10"}, false},
		{[]string{"permessage-deflate; server_max_window_bits=15"}, false},
		{[]string{"permessage-deflate; client_max_window_bits=7"}, false},
		{[]string{"permessage-deflate; client_max_window_bits=08"}, false},
		{[]string{"permessage-deflate; client_max_window_bits=16"}, false},
		{[]string{"permessage-deflate; client_no_context_takeover; client_no_context_takeover"}, false},
		{[]string{"permessage-deflate; client_no_context_takeover=1"}, false},
		{[]string{"permessage-deflate; mystery"}, false},
		{[]string{"x-webkit-deflate-frame"}, false},
		{nil, false},
	} {
		assert.Equal(t, tc.ok, deflateOfferOK(tc.offers), "%q", tc.offers)
	}
}

func TestDeflateOffer(t *testing.T) {
	for _, tc := range []struct {
		offers []string
		want   string
	}{
		{[]string{"permessage-deflate"}, "permessage-deflate"},
		{[]string{"permessage-deflate; client_max_window_bits=10"}, "permessage-deflate"},
		{[]string{"permessage-deflate;client_no_context_takeover ;server_no_context_takeover"},
			"permessage-deflate; server_no_context_takeover; client_no_context_takeover"},
		{[]string{"x-webkit-deflate-frame, permessage-deflate; server_no_context_takeover"}, "permessage-deflate; server_no_context_takeover"},
		{[]string{"permessage-deflate, permessage-deflate"}, "permessage-deflate"},
		{[]string{"permessage-deflate; server_max_window_bits=8, permessage-deflate; client_no_context_takeover"}, "permessage-deflate; client_no_context_takeover"},
		{[]string{"permessage-deflate; mystery", "permessage-deflate; client_max_window_bits"}, "permessage-deflate"},
		{[]string{"permessage-deflate;", "permessage-deflate; client_max_window_bits=16"}, ""},
		{[]string{"permessage-deflate; server_max_window_bits=15"}, ""},
		{[]string{"x-webkit-deflate-frame"}, ""},
		{nil, ""},
	} {
		assert.Equal(t, tc.want, deflateOffer(tc.offers), "%q", tc.offers)
	}
}

// FuzzDeflateOffer: any header value; the offer chosen is one of the four
// libwebsockets is given, and only when the value holds a
// permessage-deflate offer without server_max_window_bits with that
// offer's context takeover parameters.
func FuzzDeflateOffer(f *testing.F) {
	for _, s := range []string{"permessage-deflate", "x, permessage-deflate; server_no_context_takeover",
		"permessage-deflate; server_max_window_bits=9, permessage-deflate", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		got := deflateOffer([]string{v})
		if got == "" {
			return
		}
		for _, el := range strings.Split(v, ",") {
			name, _, _ := strings.Cut(el, ";")
			if strings.TrimSpace(name) != "permessage-deflate" || strings.Contains(el, "server_max_window_bits") {
				continue
			}
			want := "permessage-deflate"
			if strings.Contains(el, "server_no_context_takeover") {
				want += "; server_no_context_takeover"
			}
			if strings.Contains(el, "client_no_context_takeover") {
				want += "; client_no_context_takeover"
			}
			if got == want {
				return
			}
		}
		t.Fatalf("%q: chose %q, which none of its offers is", v, got)
	})
}

// FuzzDeflateOfferOK: any header value; an accepted one has a first
// permessage-deflate offer, without server_max_window_bits.
func FuzzDeflateOfferOK(f *testing.F) {
	for _, s := range []string{"permessage-deflate", "permessage-deflate; client_max_window_bits=10",
		"permessage-deflate, permessage-deflate; x", "x, permessage-deflate; server_max_window_bits=9", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		if !deflateOfferOK([]string{v}) {
			return
		}
		for _, el := range strings.Split(v, ",") {
			name, _, _ := strings.Cut(el, ";")
			if strings.TrimSpace(name) == "permessage-deflate" {
				if strings.Contains(el, "server_max_window_bits") {
					t.Fatalf("%q accepted with server_max_window_bits", v)
				}
				return
			}
		}
		t.Fatalf("%q accepted without a permessage-deflate offer", v)
	})
}

// TestDeflateOffers: what a listener with Compression answers to offer
// lists: the first permessage-deflate offer it can accept, wherever it
// stands in the list, or none; then a message each way, compressed when
// agreed. libwebsockets alone dropped the connection unanswered for a list
// of 255 bytes or more (Autobahn 13.7's, the 366-byte ones) and for a
// second offer after a bare one it accepted, and considered the first
// permessage-deflate offer only.
func TestDeflateOffers(t *testing.T) {
	_, addr := startServer(t, Listener{Handler: EchoHandler{}, Compression: true})
	long := strings.Repeat("x-unknown; a=1, ", 20) + "permessage-deflate; client_no_context_takeover"
	for _, tc := range []struct{ offer, answer string }{
		{"permessage-deflate", "permessage-deflate"},
		{"permessage-deflate; client_max_window_bits", "permessage-deflate"},
		{"permessage-deflate; client_max_window_bits=10", "permessage-deflate"},
		{"permessage-deflate; server_no_context_takeover", "permessage-deflate; server_no_context_takeover"},
		{"permessage-deflate; client_no_context_takeover", "permessage-deflate; client_no_context_takeover"},
		{"permessage-deflate, permessage-deflate", "permessage-deflate"},
		{"permessage-deflate, permessage-deflate; client_max_window_bits", "permessage-deflate"},
		{"permessage-deflate; server_max_window_bits=10, permessage-deflate; server_no_context_takeover", "permessage-deflate; server_no_context_takeover"},
		{autobahn137, "permessage-deflate; server_no_context_takeover; client_no_context_takeover"},
		{long, "permessage-deflate; client_no_context_takeover"},
		{"permessage-deflate;\tserver_no_context_takeover", "permessage-deflate; server_no_context_takeover"},
		{"permessage-deflate; server_max_window_bits=10", ""},
		{"permessage-deflate; mystery", ""},
		{"x-webkit-deflate-frame", ""},
		{strings.Repeat("x-unknown; a=1, ", 20) + "permessage-deflate; server_max_window_bits=9", ""},
	} {
		w := dialPMD(t, addr, tc.offer)
		assert.Equal(t, tc.answer, w.resp.Header.Get("Sec-Websocket-Extensions"), "offer %q", tc.offer)
		msg := bytes.Repeat([]byte("offer "), 40)
		if tc.answer == "" {
			w.write(t, clientFrame(true, false, 1, msg))
		} else {
			w.write(t, clientFrame(true, true, 1, deflateMsg(t, msg, nil)))
		}
		op, compressed, p, err := w.readMessage()
		require.NoError(t, err, "offer %q", tc.offer)
		assert.Equal(t, byte(1), op)
		assert.Equal(t, tc.answer != "", compressed, "offer %q", tc.offer)
		if compressed {
			p, err = inflateMsg(p, nil)
			require.NoError(t, err)
		}
		assert.Equal(t, msg, p, "offer %q", tc.offer)
		w.nc.Close()
	}
}

// TestDeflateOffersManyLinks: 300 upgrades whose headers arrive together,
// so that libwebsockets holds 300 header buffers at once, each answered as
// its Autobahn 13.7 offer list asks: the binding finds each one's buffer
// among the others (cgo.WSI.SetExtensionOffer), and forgets them all when
// the context closes.
func TestDeflateOffersManyLinks(t *testing.T) {
	c, addr := startServer(t, Listener{Handler: EchoHandler{}, Compression: true, MaxLinksPerIP: -1})
	req := upgradeRequest("/", "Sec-WebSocket-Extensions: "+autobahn137+"\r\n")
	for i, resp := range upgradesAtOnce(t, addr, req, 300) {
		require.Equal(t, http.StatusSwitchingProtocols, resp.StatusCode, "link %d", i)
		require.Equal(t, "permessage-deflate; server_no_context_takeover; client_no_context_takeover",
			resp.Header.Get("Sec-Websocket-Extensions"), "link %d", i)
	}
	require.NoError(t, c.Close())
	assert.Zero(t, cgo.HeaderBuffers(), "header buffers recorded after the context closed")
}

// TestDeflateContextTakeover: three equal messages each way, for each
// combination of the two no_context_takeover parameters the client
// offers. The client compresses with its window kept from the messages
// before unless it offered client_no_context_takeover; the server must
// inflate that, and must not refer back to an earlier message when it
// agreed to server_no_context_takeover (each echo then inflates alone).
// libwebsockets (4.1.6 to its main branch) resets a server's inflater for
// the server's parameter and its deflater for the client's: without the
// binding's swap (cgo/pmd.c) the first case failed, the server dropping
// the link at the second message ("invalid distance too far back").
func TestDeflateContextTakeover(t *testing.T) {
	_, addr := startServer(t, Listener{Handler: EchoHandler{}, Compression: true})
	msg := bytes.Repeat([]byte("context takeover "), 100)
	for _, offer := range []string{
		"permessage-deflate; server_no_context_takeover",
		"permessage-deflate; client_no_context_takeover",
		"permessage-deflate",
		"permessage-deflate; server_no_context_takeover; client_no_context_takeover",
	} {
		w := dialPMD(t, addr, offer)
		require.Equal(t, offer, w.resp.Header.Get("Sec-Websocket-Extensions"))
		clientKeeps := !strings.Contains(offer, "client_no_context_takeover")
		serverKeeps := !strings.Contains(offer, "server_no_context_takeover")
		var sent, got []byte // the windows so far, each way
		referredBack := false
		for i := range 3 {
			w.write(t, clientFrame(true, true, 1, deflateMsg(t, msg, sent)))
			if clientKeeps {
				sent = msg
			}
			op, compressed, p, err := w.readMessage()
			require.NoError(t, err, "offer %q, message %d", offer, i)
			require.Equal(t, byte(1), op, "offer %q, message %d: %x", offer, i, p)
			require.True(t, compressed)
			echo, err := inflateMsg(p, got)
			require.NoError(t, err)
			assert.Equal(t, msg, echo, "offer %q, message %d", offer, i)
			if _, err := inflateMsg(p, nil); err != nil {
				referredBack = true
			}
			got = msg
		}
		assert.Equal(t, serverKeeps, referredBack, "offer %q: the server referred back to earlier messages", offer)
		w.nc.Close()
	}
}

// TestDeflateEmptyMessage: an empty message on a link whose deflate
// stream carries over between messages (context takeover, what browsers,
// Node's ws and Python's websockets agree). libwebsockets 4.1.6 and 4.3.5
// compress it with a sync flush that zlib answers with no bytes at all
// (nothing since the last flush), and abort the process on assert(0)
// ("FAIL want to trim out length 0", extension-permessage-deflate.c); so
// the binding sends an empty message uncompressed, which RFC 7692 allows
// for any message. Server and client side, text and binary, each between
// compressed messages that still inflate against the carried-over window.
func TestDeflateEmptyMessage(t *testing.T) {
	msg := bytes.Repeat([]byte("context takeover "), 100)
	t.Run("server", func(t *testing.T) {
		_, addr := startServer(t, Listener{Handler: EchoHandler{}, Compression: true})
		w := dialPMD(t, addr, "permessage-deflate")
		require.Equal(t, "permessage-deflate", w.resp.Header.Get("Sec-Websocket-Extensions"))
		var sent, got []byte // the windows so far, each way
		for i, op := range []byte{1, 1, 2, 2} {
			w.write(t, clientFrame(true, true, op, deflateMsg(t, msg, sent)))
			sent = msg
			o, compressed, p, err := w.readMessage()
			require.NoError(t, err, "message %d", i)
			require.Equal(t, op, o)
			require.True(t, compressed)
			echo, err := inflateMsg(p, got)
			require.NoError(t, err)
			require.Equal(t, msg, echo, "message %d", i)
			got = msg

			w.write(t, clientFrame(true, false, op, nil)) // empty, uncompressed
			o, compressed, p, err = w.readMessage()
			require.NoError(t, err, "the empty message after message %d: the server is gone", i)
			require.Equal(t, op, o)
			if compressed {
				p, err = inflateMsg(p, got)
				require.NoError(t, err)
			}
			require.Empty(t, p)
		}
	})
	t.Run("client", func(t *testing.T) {
		_, addr := startServer(t, Listener{Handler: EchoHandler{}, Compression: true})
		s := newSink()
		conn, err := newClientContext(t).Dial(context.Background(), "ws://"+addr+"/", &DialOptions{Handler: s, Compression: true})
		require.NoError(t, err)
		require.True(t, conn.Link().Compression)
		for _, typ := range []MessageType{TextMessage, TextMessage, BinaryMessage} {
			for _, m := range [][]byte{msg, {}} {
				require.NoError(t, conn.Send(typ, m))
				got := s.next(t)
				assert.Equal(t, typ, got.typ)
				require.Equal(t, len(m), len(got.data))
				require.True(t, bytes.Equal(m, got.data))
			}
		}
		require.NoError(t, conn.Close(StatusNormalClosure, ""))
		assert.Equal(t, StatusNormalClosure, s.waitClose(t).Code)
	})
}

// TestDeflateConcurrentLinks: a compressed message must inflate to its own
// bytes while other links are read. libwebsockets inflates a message a
// buffer at a time and leaves the rest of its compressed input where it
// was read, in the buffer every link of the thread reads into; the next
// link read overwrote it (data from the other link in a binary message,
// 1007 for text), so lwsgo_pmd keeps that input in the link's own memory.
// Server side: a gorilla client sending big compressed messages while
// another streams uncompressed ones (failed in every run before the fix,
// from the first message). Client side: lws.Dial links to a gorilla
// server, one compressed, one not; it passed before the fix too (the
// client parser copies the payload into the link's own buffer first) and
// stays as a guard.
func TestDeflateConcurrentLinks(t *testing.T) {
	const rounds = 3
	sizes := []int{1 << 20, 4 << 20}
	// run drives two links at once: send and read one echo each, over
	// and over; the first carries the big compressed messages.
	run := func(t *testing.T, echo [2]func(typ int, msg []byte) ([]byte, error)) {
		errs := make(chan error, 2)
		for i := range 2 {
			go func() {
				for r := range rounds {
					for _, n := range sizes {
						if i == 1 {
							n = 256 << 10
						}
						msg := make([]byte, n)
						_, _ = rand.NewChaCha8([32]byte{byte(i), byte(r), byte(n >> 20)}).Read(msg)
						typ := websocket.BinaryMessage
						if r == 1 {
							typ = websocket.TextMessage
							for k := range msg {
								msg[k] = 'a' + msg[k]%26
							}
						}
						got, err := echo[i](typ, msg)
						if err != nil {
							errs <- fmt.Errorf("link %d, round %d, %d bytes: %w", i, r, n, err)
							return
						}
						if !bytes.Equal(got, msg) {
							k := 0
							for k < min(len(got), len(msg)) && got[k] == msg[k] {
								k++
							}
							errs <- fmt.Errorf("link %d, round %d, %d bytes: the echo differs from byte %d (%d bytes back)", i, r, n, k, len(got))
							return
						}
					}
				}
				errs <- nil
			}()
		}
		for range 2 {
			require.NoError(t, <-errs)
		}
	}

	t.Run("server", func(t *testing.T) {
		_, addr := startServer(t, Listener{Handler: EchoHandler{}, Compression: true, MaxMessageSize: 8 << 20, MaxSendQueue: 32 << 20})
		var echo [2]func(int, []byte) ([]byte, error)
		for i := range 2 {
			d := websocket.Dialer{HandshakeTimeout: 5 * time.Second, EnableCompression: i == 0}
			ws, resp, err := dialWith(t, &d, addr, "/", nil)
			require.NoError(t, err)
			require.Equal(t, i == 0, resp.Header.Get("Sec-Websocket-Extensions") != "")
			ws.SetReadLimit(8 << 20)
			echo[i] = func(typ int, msg []byte) ([]byte, error) {
				if err := ws.WriteMessage(typ, msg); err != nil {
					return nil, err
				}
				_ = ws.SetReadDeadline(time.Now().Add(hangTimeout))
				_, p, err := ws.ReadMessage()
				return p, err
			}
		}
		run(t, echo)
	})
	t.Run("client", func(t *testing.T) {
		srv := gorillaDeflateEcho(t, make(chan []string, 4))
		c := newClientContext(t)
		var echo [2]func(int, []byte) ([]byte, error)
		for i := range 2 {
			s := newSink()
			conn, err := c.Dial(context.Background(), wsURL(srv), &DialOptions{Handler: s, Compression: i == 0, MaxMessageSize: 8 << 20})
			require.NoError(t, err)
			require.Equal(t, i == 0, conn.Link().Compression)
			echo[i] = func(typ int, msg []byte) ([]byte, error) {
				mt := BinaryMessage
				if typ == websocket.TextMessage {
					mt = TextMessage
				}
				if err := conn.Send(mt, msg); err != nil {
					return nil, err
				}
				select {
				case m := <-s.msgs:
					return m.data, nil
				case ce := <-s.closed:
					return nil, fmt.Errorf("closed: %v", ce)
				case <-time.After(hangTimeout):
					return nil, errors.New("no echo")
				}
			}
		}
		run(t, echo)
	})
}

// TestDeflateFrameSize: a compressed message goes out in frames of up to
// 16 KiB, server and client side. libwebsockets' default is 1 KiB, which
// cut a 16 MiB message of random bytes into over 16,384 frames, more than
// Node's ws accepts by default ("Too many message fragments").
func TestDeflateFrameSize(t *testing.T) {
	msg := make([]byte, 1<<20)
	_, _ = rand.NewChaCha8([32]byte{'f'}).Read(msg) // incompressible
	// frames reads one message's frames and says how many and how big.
	frames := func(w *rawPeer) (n, biggest int, err error) {
		for {
			fin, _, op, p, err := w.read()
			if err != nil {
				return n, biggest, err
			}
			if op >= 8 {
				continue
			}
			n++
			biggest = max(biggest, len(p))
			if fin {
				return n, biggest, nil
			}
		}
	}
	check := func(t *testing.T, n, biggest int) {
		assert.LessOrEqual(t, biggest, 16<<10+64, "largest frame")
		// Not all full: the binding hands libwebsockets 64 KiB at a
		// time, and the end of each is flushed (79 frames here, 1,036
		// with 1 KiB frames).
		assert.LessOrEqual(t, n, len(msg)/(8<<10), "frames for %d bytes", len(msg))
	}
	t.Run("server", func(t *testing.T) {
		_, addr := startServer(t, Listener{Handler: EchoHandler{}, Compression: true, MaxMessageSize: 2 << 20})
		w := dialPMD(t, addr, "permessage-deflate; client_no_context_takeover")
		w.write(t, clientFrame(true, true, 2, deflateMsg(t, msg, nil)))
		n, biggest, err := frames(w)
		require.NoError(t, err)
		check(t, n, biggest)
	})
	t.Run("client", func(t *testing.T) {
		type result struct{ n, biggest int }
		got := make(chan result, 1)
		url := rawServer(t, "permessage-deflate; server_no_context_takeover; client_no_context_takeover", func(w *rawPeer) {
			n, biggest, _ := frames(w)
			got <- result{n, biggest}
		})
		conn, err := newClientContext(t, quickClose).Dial(context.Background(), url, &DialOptions{Handler: newSink(), Compression: true})
		require.NoError(t, err)
		require.True(t, conn.Link().Compression)
		require.NoError(t, conn.Send(BinaryMessage, msg))
		r := waitFor(t, got, "the message")
		check(t, r.n, r.biggest)
	})
}

// TestDeflatePendingInputAcrossLinks: a compressed message that inflates to
// more than libwebsockets inflates in one pass (1 KiB) leaves compressed
// input in zlib for later passes, and on a server that input is in the
// service thread's one read buffer, which the next link's read overwrites
// (libwebsockets 4.1.6 lib/roles/ws/server-ws.c, lws_ws_frame_rest_is_payload).
// Each round sends such a message on link A and, right behind it, a message
// on link B, read in the same pass: A's echo must inflate to what A sent,
// B's must be B's, and the server must neither fail A nor abort (the zlib
// error led to an assertion in libwebsockets' inflate code).
func TestDeflatePendingInputAcrossLinks(t *testing.T) {
	_, addr := startServer(t, Listener{Handler: EchoHandler{}, Compression: true, MaxMessageSize: 1 << 20})
	a := dialPMD(t, addr, "permessage-deflate")
	b := dialPMD(t, addr, "")
	msgA := deflatePayloads(32 << 10)["text"]
	msgB := deflatePayloads(32 << 10)["random"]
	// A's windows: context takeover both ways.
	var sentA, gotA []byte
	for i := range 20 {
		a.write(t, clientFrame(true, true, 2, deflateMsg(t, msgA, sentA)))
		b.write(t, clientFrame(true, false, 2, msgB))
		sentA = msgA
		op, compressed, p, err := a.readMessage()
		require.NoError(t, err, "round %d: link A", i)
		require.Equal(t, byte(2), op, "round %d: link A got opcode %d: %q", i, op, p)
		require.True(t, compressed)
		echo, err := inflateMsg(p, gotA)
		require.NoError(t, err, "round %d", i)
		require.True(t, bytes.Equal(msgA, echo), "round %d: link A's echo differs", i)
		gotA = msgA
		op, _, p, err = b.readMessage()
		require.NoError(t, err, "round %d: link B", i)
		require.Equal(t, byte(2), op)
		require.True(t, bytes.Equal(msgB, p), "round %d: link B's echo differs", i)
	}
}
