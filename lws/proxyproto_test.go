package lws

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"encoding/binary"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/lwsgate/lwsgate/internal/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// proxyV2 encodes a v2 header: command (0 LOCAL, 1 PROXY), family byte
// (0x11 TCP over IPv4...), the address block and TLVs as given.
func proxyV2(cmd, fam byte, block []byte) []byte {
	b := append([]byte(nil), proxyV2Sig...)
	b = append(b, 0x20|cmd, fam, byte(len(block)>>8), byte(len(block)))
	return append(b, block...)
}

// proxyV2Addrs is the address block of a TCP header from src to dst.
func proxyV2Addrs(src, dst netip.AddrPort) []byte {
	var b []byte
	b = append(b, src.Addr().AsSlice()...)
	b = append(b, dst.Addr().AsSlice()...)
	b = binary.BigEndian.AppendUint16(b, src.Port())
	return binary.BigEndian.AppendUint16(b, dst.Port())
}

var (
	ppSrc4 = netip.MustParseAddrPort("203.0.113.7:51234")
	ppDst4 = netip.MustParseAddrPort("192.0.2.1:443")
	ppSrc6 = netip.MustParseAddrPort("[2001:db8::7]:4711")
	ppDst6 = netip.MustParseAddrPort("[2001:db8::1]:443")
)

// TestReadProxyHeader: what each header says, that exactly the header is
// read (the request after it is left), and that every malformed one is an
// error, never more than a header's bytes read.
func TestReadProxyHeader(t *testing.T) {
	tlv := []byte{0x04, 0x00, 0x02, 'h', 'i'} // PP2_TYPE_NOOP
	for _, tc := range []struct {
		name  string
		in    []byte
		want  proxyHeader
		error string
	}{
		{name: "v1 TCP4", in: []byte("PROXY TCP4 203.0.113.7 192.0.2.1 51234 443\r\n"), want: proxyHeader{version: 1, src: ppSrc4, dst: ppDst4}},
		{name: "v1 TCP6", in: []byte("PROXY TCP6 2001:db8::7 2001:db8::1 4711 443\r\n"), want: proxyHeader{version: 1, src: ppSrc6, dst: ppDst6}},
		{name: "v1 shortest TCP6", in: []byte("PROXY TCP6 :: :: 0 0\r\n"), want: proxyHeader{version: 1, src: netip.MustParseAddrPort("[::]:0"), dst: netip.MustParseAddrPort("[::]:0")}},
		{name: "v1 UNKNOWN", in: []byte("PROXY UNKNOWN\r\n"), want: proxyHeader{version: 1, local: true}},
		{name: "v1 UNKNOWN with addresses", in: []byte("PROXY UNKNOWN ffff:f...f ffff:f...f 65535 65535\r\n"), want: proxyHeader{version: 1, local: true}},
		{name: "v2 TCP4", in: proxyV2(1, 0x11, proxyV2Addrs(ppSrc4, ppDst4)), want: proxyHeader{version: 2, src: ppSrc4, dst: ppDst4}},
		{name: "v2 TCP6 with TLVs", in: proxyV2(1, 0x21, append(proxyV2Addrs(ppSrc6, ppDst6), tlv...)), want: proxyHeader{version: 2, src: ppSrc6, dst: ppDst6}},
		{name: "v2 LOCAL", in: proxyV2(0, 0x00, nil), want: proxyHeader{version: 2, local: true}},
		{name: "v2 LOCAL with addresses", in: proxyV2(0, 0x11, proxyV2Addrs(ppSrc4, ppDst4)), want: proxyHeader{version: 2, local: true}},
		{name: "v2 UNSPEC", in: proxyV2(1, 0x00, tlv), want: proxyHeader{version: 2, local: true}},
		{name: "v2 AF_UNIX stream", in: proxyV2(1, 0x31, make([]byte, 216)), want: proxyHeader{version: 2, local: true}},

		{name: "HTTP, no header", in: []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"), error: "not a PROXY protocol header"},
		{name: "wrong v1 signature", in: []byte("PROXZ TCP4 203.0.113.7 192.0.2.1 51234 443\r\n"), error: "not a PROXY protocol header"},
		{name: "wrong v2 signature", in: append([]byte("\r\n\r\n\x00\r\nQUIX\n"), 0x21, 0x11, 0, 12), error: "not a PROXY protocol header"},
		{name: "v1 truncated", in: []byte("PROXY TCP4 203.0.113.7 192.0.2.1 51"), error: "truncated"},
		{name: "v1 too short", in: []byte("PROXY TCP"), error: "truncated"},
		{name: "v1 too long", in: []byte("PROXY TCP4 " + strings.Repeat("1", 120) + "\r\n"), error: "longer than 107 bytes"},
		{name: "v1 LF only", in: []byte("PROXY TCP4 203.0.113.7 192.0.2.1 51234 443\n"), error: "not ended by CRLF"},
		{name: "v1 family mismatch", in: []byte("PROXY TCP4 2001:db8::7 192.0.2.1 51234 443\r\n"), error: "not a TCP4 address"},
		{name: "v1 mapped address", in: []byte("PROXY TCP6 ::ffff:1.2.3.4 2001:db8::1 1 2\r\n"), error: "not a TCP6 address"},
		{name: "v1 port too big", in: []byte("PROXY TCP4 203.0.113.7 192.0.2.1 65536 443\r\n"), error: "is not a port"},
		{name: "v1 port leading zero", in: []byte("PROXY TCP4 203.0.113.7 192.0.2.1 051234 443\r\n"), error: "is not a port"},
		{name: "v1 missing field", in: []byte("PROXY TCP4 203.0.113.7 192.0.2.1 51234\r\n"), error: "want PROXY TCP4|TCP6"},
		{name: "v1 double space", in: []byte("PROXY TCP4  203.0.113.7 192.0.2.1 51234 443\r\n"), error: "want PROXY TCP4|TCP6"},
		{name: "v1 UDP4", in: []byte("PROXY UDP4 203.0.113.7 192.0.2.1 51234 443\r\n"), error: "want PROXY TCP4|TCP6"},
		{name: "v2 version 1", in: append(append([]byte(nil), proxyV2Sig...), 0x11, 0x11, 0, 12), error: "version 1"},
		{name: "v2 command 2", in: proxyV2(2, 0x11, proxyV2Addrs(ppSrc4, ppDst4)), error: "command 0x2"},
		{name: "v2 UDP", in: proxyV2(1, 0x12, proxyV2Addrs(ppSrc4, ppDst4)), error: "datagram"},
		{name: "v2 family 4", in: proxyV2(1, 0x41, make([]byte, 12)), error: "address family 0x4"},
		{name: "v2 addresses too short", in: proxyV2(1, 0x21, proxyV2Addrs(ppSrc4, ppDst4)), error: "12 bytes for 36"},
		{name: "v2 too long", in: proxyV2(1, 0x11, make([]byte, proxyV2Max+1)), error: "at most 1536"},
		{name: "v2 truncated signature", in: proxyV2Sig[:10], error: "truncated"},
		{name: "v2 truncated length", in: proxyV2(1, 0x11, nil)[:15], error: "truncated"},
		{name: "v2 truncated block", in: proxyV2(1, 0x11, proxyV2Addrs(ppSrc4, ppDst4))[:20], error: "truncated"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// What follows a valid header must be left; a malformed
			// one is all there is.
			after := []byte("GET / HTTP/1.1\r\n\r\n")
			if tc.error != "" {
				after = nil
			}
			r := bytes.NewReader(append(append([]byte(nil), tc.in...), after...))
			h, err := readProxyHeader(r)
			if tc.error != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tc.error)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, h)
			rest, _ := io.ReadAll(r)
			assert.Equal(t, after, rest, "exactly the header was read")
		})
	}
}

// FuzzReadProxyHeader: any input is read without a panic, and never more
// than the longest header allowed.
func FuzzReadProxyHeader(f *testing.F) {
	f.Add([]byte("PROXY TCP4 203.0.113.7 192.0.2.1 51234 443\r\nGET /"))
	f.Add([]byte("PROXY UNKNOWN\r\n"))
	f.Add(proxyV2(1, 0x21, proxyV2Addrs(ppSrc6, ppDst6)))
	f.Add(proxyV2(0, 0x00, nil))
	f.Fuzz(func(t *testing.T, in []byte) {
		r := bytes.NewReader(in)
		h, err := readProxyHeader(r)
		read := int(r.Size()) - r.Len()
		if read > 16+proxyV2Max {
			t.Fatalf("read %d bytes", read)
		}
		if err == nil && !h.local && (!h.src.IsValid() || !h.dst.IsValid() || h.src.Addr().Is4In6()) {
			t.Fatalf("header %+v without usable addresses", h)
		}
		if err == nil && h.version == 1 && (read > proxyV1Max || !bytes.HasSuffix(in[:read], []byte("\r\n"))) {
			t.Fatalf("v1 header of %d bytes not ended by CRLF", read)
		}
	})
}

// proxyServer runs a ProxyProtocol listener that echoes WebSocket
// messages and answers HTTP requests with the request's Remote.
func proxyServer(t *testing.T, l Listener, mod ...func(*Config)) (*Context, string) {
	t.Helper()
	l.ProxyProtocol = true
	if l.Handler == nil {
		l.Handler = EchoHandler{}
	}
	l.HTTPHandler = HTTPHandlerFunc(func(w *ResponseWriter, r *Request) {
		_ = w.Respond(http.StatusOK, []byte(r.Remote.String()))
	})
	return startServer(t, l, mod...)
}

// proxyConn connects to addr and writes header, in pieces of at most
// chop bytes (0: at once), each its own TCP segment.
func proxyConn(t *testing.T, addr string, header []byte, chop int) net.Conn {
	t.Helper()
	nc := rawDial(t, addr)
	if chop == 0 {
		chop = len(header)
	}
	for len(header) > 0 {
		n := min(chop, len(header))
		_, err := nc.Write(header[:n])
		require.NoError(t, err)
		header = header[n:]
		if len(header) > 0 {
			// TCP_NODELAY is on: the pause makes each piece its own
			// segment, each its own read on the server.
			time.Sleep(20 * time.Millisecond)
		}
	}
	return nc
}

// proxyGet sends a GET after header and returns the answer's body: the
// Remote the server saw.
func proxyGet(t *testing.T, addr string, header []byte, chop int) string {
	t.Helper()
	nc := proxyConn(t, addr, header, chop)
	_, err := io.WriteString(nc, "GET /who HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n")
	require.NoError(t, err)
	resp, err := http.ReadResponse(bufio.NewReader(nc), nil)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return string(b)
}

// proxyDial opens a WebSocket link over a connection that starts with
// header.
func proxyDial(t *testing.T, addr string, header []byte) (*websocket.Conn, *http.Response, error) {
	t.Helper()
	d := websocket.Dialer{HandshakeTimeout: 5 * time.Second, NetDial: func(_, _ string) (net.Conn, error) {
		nc, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err == nil {
			_, err = nc.Write(header)
		}
		return nc, err
	}}
	ws, resp, err := d.Dial("ws://"+addr+"/", nil)
	if ws != nil {
		t.Cleanup(func() { ws.Close() })
	}
	return ws, resp, err
}

// TestProxyProtocol: on a ProxyProtocol listener the header's source is
// the request's and the link's Remote, for v1 and v2, IPv4 and IPv6, a
// header split across TCP segments, and TLS after the header; LOCAL and
// UNKNOWN keep the TCP peer.
func TestProxyProtocol(t *testing.T) {
	links := make(chan Link, 4)
	_, addr := proxyServer(t, Listener{Name: "lb"}, func(c *Config) {
		c.OnLinkOpen = func(l Link) {
			if l.Kind == LinkWebSocket {
				links <- l
			}
		}
	})
	v2 := proxyV2(1, 0x11, proxyV2Addrs(ppSrc4, ppDst4))
	for _, tc := range []struct {
		name   string
		header []byte
		chop   int
		want   string
	}{
		{"v1 TCP4", []byte("PROXY TCP4 203.0.113.7 192.0.2.1 51234 443\r\n"), 0, "203.0.113.7:51234"},
		{"v1 TCP6", []byte("PROXY TCP6 2001:db8::7 2001:db8::1 4711 443\r\n"), 0, "[2001:db8::7]:4711"},
		{"v1 in 5-byte segments", []byte("PROXY TCP4 203.0.113.7 192.0.2.1 51234 443\r\n"), 5, "203.0.113.7:51234"},
		{"v2 TCP4", v2, 0, "203.0.113.7:51234"},
		{"v2 TCP6", proxyV2(1, 0x21, proxyV2Addrs(ppSrc6, ppDst6)), 0, "[2001:db8::7]:4711"},
		{"v2 split across segments", v2, 7, "203.0.113.7:51234"},
		{"v2 LOCAL", proxyV2(0, 0x00, nil), 0, "127.0.0.1:"},
		{"v1 UNKNOWN", []byte("PROXY UNKNOWN\r\n"), 0, "127.0.0.1:"},
	} {
		got := proxyGet(t, addr, tc.header, tc.chop)
		assert.True(t, strings.HasPrefix(got, tc.want), "%s: Remote %s, want %s", tc.name, got, tc.want)
	}

	ws, _, err := proxyDial(t, addr, proxyV2(1, 0x21, proxyV2Addrs(ppSrc6, ppDst6)))
	require.NoError(t, err)
	echo(t, ws, "through the proxy")
	assert.Equal(t, "[2001:db8::7]:4711", waitFor(t, links, "OnLinkOpen").Remote.String())
}

// TestProxyProtocolTLS: the PROXY header comes before the TLS handshake,
// which libwebsockets then makes on the socket it was handed.
func TestProxyProtocolTLS(t *testing.T) {
	p := newTestPKI(t)
	_, addr := proxyServer(t, Listener{TLS: &TLSFiles{CertFile: p.ServerChain, KeyFile: p.ServerKey}})
	nc := proxyConn(t, addr, proxyV2(1, 0x11, proxyV2Addrs(ppSrc4, ppDst4)), 0)
	tc := tls.Client(nc, &tls.Config{RootCAs: p.Pool(), ServerName: "127.0.0.1"})
	_, err := io.WriteString(tc, "GET /who HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n")
	require.NoError(t, err)
	resp, err := http.ReadResponse(bufio.NewReader(tc), nil)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	assert.Equal(t, "203.0.113.7:51234", string(b))
}

// TestProxyProtocolHostile: a connection without a valid PROXY header is
// closed with a FIN (the client reads EOF, not a reset), reported as
// bad_proxy_header or header_timeout and logged with the peer's address;
// the listener carries on.
func TestProxyProtocolHostile(t *testing.T) {
	lim := newLimitLog()
	var log testutil.Buffer
	_, addr := proxyServer(t, Listener{Name: "lb", HeaderTimeout: time.Second}, lim.hook, logTo(t, &log))
	for _, tc := range []struct {
		name  string
		in    []byte
		limit Limit
	}{
		{"plain HTTP", []byte("GET / HTTP/1.1\r\nHost: test\r\n\r\n"), LimitBadProxyHeader},
		{"wrong v1 signature", []byte("PROXZ TCP4 203.0.113.7 192.0.2.1 51234 443\r\n"), LimitBadProxyHeader},
		{"v1 too long", []byte("PROXY TCP4 " + strings.Repeat("9", 120)), LimitBadProxyHeader},
		{"v1 bad address", []byte("PROXY TCP4 203.0.113.777 192.0.2.1 51234 443\r\nGET / HTTP/1.1\r\n\r\n"), LimitBadProxyHeader},
		{"v2 wrong signature", append([]byte("\r\n\r\n\x00\r\nQUIX\n"), 0x21, 0x11, 0, 12), LimitBadProxyHeader},
		{"v2 version 3", append(append([]byte(nil), proxyV2Sig...), 0x31, 0x11, 0, 0), LimitBadProxyHeader},
		{"v2 length 65535", append(append([]byte(nil), proxyV2Sig...), 0x21, 0x11, 0xff, 0xff), LimitBadProxyHeader},
		{"v2 UDP", proxyV2(1, 0x12, proxyV2Addrs(ppSrc4, ppDst4)), LimitBadProxyHeader},
		{"v2 truncated", proxyV2(1, 0x11, proxyV2Addrs(ppSrc4, ppDst4))[:20], LimitHeaderTimeout},
		{"nothing", nil, LimitHeaderTimeout},
	} {
		t.Run(tc.name, func(t *testing.T) {
			nc := proxyConn(t, addr, tc.in, 0)
			b, err := io.ReadAll(nc)
			assert.NoError(t, err, "closed with a FIN, not a reset")
			assert.Empty(t, b)
			lim.expect(t, "lb", tc.limit)
		})
	}
	// Truncated, then the peer closes: the same, without the timeout.
	nc := proxyConn(t, addr, []byte("PROXY TCP4 203.0.113.7"), 0)
	require.NoError(t, nc.(*net.TCPConn).CloseWrite())
	b, _ := io.ReadAll(nc)
	assert.Empty(t, b)
	lim.expect(t, "lb", LimitBadProxyHeader)
	assert.Contains(t, log.String(), `msg="lws: connection closed: no valid PROXY protocol header" listener=lb limit=bad_proxy_header remote=127.0.0.1 why="not a PROXY protocol header"`)
	assert.Contains(t, log.String(), "limit=header_timeout")
	assert.Equal(t, "203.0.113.7:51234", proxyGet(t, addr, proxyV2(1, 0x11, proxyV2Addrs(ppSrc4, ppDst4)), 0), "still serving")
	lim.none(t)
}

// TestProxyProtocolTrusted: with TrustedProxies, a PROXY header from a
// peer not in it is read and ignored (its forged source changes nothing),
// with a warning; from a trusted peer it is believed, and counted against
// MaxLinksPerIP by its source.
func TestProxyProtocolTrusted(t *testing.T) {
	var log testutil.Buffer
	_, addr := proxyServer(t, Listener{Name: "lb", TrustedProxies: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}}, logTo(t, &log))
	assert.True(t, strings.HasPrefix(proxyGet(t, addr, proxyV2(1, 0x11, proxyV2Addrs(ppSrc4, ppDst4)), 0), "127.0.0.1:"))
	assert.Contains(t, log.String(), `msg="lws: PROXY protocol header from a peer not in TrustedProxies ignored" listener=lb remote=127.0.0.1 named=203.0.113.7`)

	_, addr = proxyServer(t, Listener{Name: "lb2", MaxLinksPerIP: 1, TrustedProxies: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}})
	a := proxyV2(1, 0x11, proxyV2Addrs(ppSrc4, ppDst4))
	_, _, err := proxyDial(t, addr, a)
	require.NoError(t, err)
	_, _, err = proxyDial(t, addr, proxyV2(1, 0x11, proxyV2Addrs(netip.MustParseAddrPort("203.0.113.8:1"), ppDst4)))
	require.NoError(t, err, "another client behind the same proxy")
	_, resp, err := proxyDial(t, addr, a)
	require.Error(t, err, "the client's second link opened")
	require.NotNil(t, resp)
	body, _ := io.ReadAll(resp.Body)
	refusedBody(t, resp, body, LimitMaxLinksPerIP)
	assert.Contains(t, string(body), "203.0.113.7 holds the limit of 1 links per address")
}
