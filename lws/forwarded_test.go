package lws

import (
	"io"
	"net/http"
	"net/netip"
	"testing"

	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lwsgate/lwsgate/cgo"
	"github.com/lwsgate/lwsgate/internal/testutil"
)

func hopStrings(hops []netip.AddrPort) []string {
	var out []string
	for _, h := range hops {
		if !h.IsValid() {
			out = append(out, "?")
			continue
		}
		if h.Port() == 0 {
			out = append(out, h.Addr().String())
		} else {
			out = append(out, h.String())
		}
	}
	return out
}

func TestForwardedHops(t *testing.T) {
	for _, tc := range []struct {
		vals      []string
		forwarded bool
		want      []string
	}{
		{[]string{"203.0.113.7"}, false, []string{"203.0.113.7"}},
		{[]string{"203.0.113.7, 10.0.0.1,10.0.0.2 "}, false, []string{"203.0.113.7", "10.0.0.1", "10.0.0.2"}},
		{[]string{"6.6.6.6", "203.0.113.7, 10.0.0.1"}, false, []string{"6.6.6.6", "203.0.113.7", "10.0.0.1"}},
		{[]string{"2001:db8::1, [2001:db8::2], [2001:db8::3]:443, 192.0.2.1:80, ::ffff:192.0.2.9"}, false,
			[]string{"2001:db8::1", "2001:db8::2", "[2001:db8::3]:443", "192.0.2.1:80", "192.0.2.9"}},
		{[]string{"unknown, 203.0.113.7, not an address, fe80::1%eth0"}, false, []string{"?", "203.0.113.7", "?", "?"}},
		{[]string{",, 203.0.113.7,"}, false, []string{"203.0.113.7"}},
		{[]string{"for=192.0.2.60;proto=http;by=203.0.113.43"}, true, []string{"192.0.2.60"}},
		{[]string{`for="[2001:db8:cafe::17]:4711", For=198.51.100.17;by=x`}, true, []string{"[2001:db8:cafe::17]:4711", "198.51.100.17"}},
		{[]string{`for=_gazonk, for=unknown, proto=https, for="203.0.113.7"`}, true, []string{"?", "?", "?", "203.0.113.7"}},
		{[]string{`by="a,b";for=192.0.2.1, for=192.0.2.2`}, true, []string{"192.0.2.1", "192.0.2.2"}},
		{[]string{`for="192.0.2.1`}, true, []string{"?"}},
	} {
		assert.Equal(t, tc.want, hopStrings(forwardedHops(tc.vals, tc.forwarded)), "%q", tc.vals)
	}
}

func TestClientOf(t *testing.T) {
	l := &listener{cfg: Listener{TrustedProxies: []netip.Prefix{
		netip.MustParsePrefix("10.0.0.0/8"), normPrefix(netip.MustParsePrefix("::ffff:172.16.0.0/108")), netip.MustParsePrefix("2001:db8:f::/48"),
	}}}
	ap := func(s string) netip.AddrPort { return netip.AddrPortFrom(netip.MustParseAddr(s), 0) }
	hops := func(s string) []netip.AddrPort { return forwardedHops([]string{s}, false) }
	for _, tc := range []struct {
		peer, header, want string
	}{
		{"198.51.100.1", "203.0.113.7", "198.51.100.1"},                                // not a trusted peer: header ignored
		{"10.1.2.3", "203.0.113.7", "203.0.113.7"},                                     // one trusted proxy
		{"10.1.2.3", "6.6.6.6, 203.0.113.7, 10.9.9.9", "203.0.113.7"},                  // the forged left end is never reached
		{"10.1.2.3", "10.7.7.7, 10.9.9.9", "10.7.7.7"},                                 // all trusted: the leftmost
		{"10.1.2.3", "", "10.1.2.3"},                                                   // no header: the proxy itself
		{"10.1.2.3", "203.0.113.7, unknown", "10.1.2.3"},                               // not an address: stop at the proxy
		{"172.16.5.5", "2001:db8:f::1, 2001:db8:1::1, 2001:db8:f::2", "2001:db8:1::1"}, // mapped prefix, IPv6 proxies
		{"::ffff:10.1.2.3", "203.0.113.7", "203.0.113.7"},                              // a mapped peer
	} {
		got := l.clientOf(ap(tc.peer), hops(tc.header))
		assert.Equal(t, tc.want, got.Addr().Unmap().String(), "peer %s, %q", tc.peer, tc.header)
	}
}

func FuzzForwardedHops(f *testing.F) {
	f.Add("203.0.113.7, 10.0.0.1", false)
	f.Add(`for="[2001:db8:cafe::17]:4711";by=x, for=unknown`, true)
	f.Add(`"\",,;for=`, true)
	l := &listener{cfg: Listener{TrustedProxies: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("2001:db8::/32")}}}
	peer := netip.AddrPortFrom(netip.MustParseAddr("10.0.0.1"), 443)
	f.Fuzz(func(t *testing.T, v string, forwarded bool) {
		hops := forwardedHops([]string{v}, forwarded)
		for _, h := range hops {
			if h.IsValid() && (h.Addr().Is4In6() || h.Addr().Zone() != "") {
				t.Fatalf("hop %v from %q: not unmapped and zone-free", h, v)
			}
		}
		got := l.clientOf(peer, hops)
		ok := got == peer
		for _, h := range hops {
			ok = ok || got == h
		}
		if !ok {
			t.Fatalf("client %v from %q is neither the peer nor a hop", got, v)
		}
	})
}

// proxyRequest sends one request as a proxy would, from 127.0.0.1, with
// extra header lines, and returns the response.
func proxyRequest(t *testing.T, addr, hdrs string) *http.Response {
	t.Helper()
	resp, _ := rawHTTP(t, addr, "GET /who HTTP/1.1\r\nHost: test\r\nConnection: close\r\n"+hdrs+"\r\n")
	return resp
}

// TestForwardedForUntrusted: from a peer that is not a trusted proxy,
// X-Forwarded-For (and Forwarded) change nothing: the request's and the
// link's Remote are the peer's, and a forged header does not escape the
// per-address limit.
func TestForwardedForUntrusted(t *testing.T) {
	for _, trusted := range [][]netip.Prefix{nil, {netip.MustParsePrefix("10.0.0.0/8")}} {
		cap := newCapture(func(w *ResponseWriter, r *Request) { _ = w.Respond(200, []byte(r.Remote.String())) })
		links := make(chan Link, 4)
		_, addr := startServer(t, Listener{Handler: EchoHandler{}, HTTPHandler: cap, TrustedProxies: trusted, MaxLinksPerIP: 1}, func(c *Config) {
			c.OnLinkOpen = func(l Link) {
				if l.Kind == LinkWebSocket {
					links <- l
				}
			}
		})
		proxyRequest(t, addr, "X-Forwarded-For: 203.0.113.9\r\nForwarded: for=203.0.113.9\r\n")
		req := <-cap.reqs
		assert.Equal(t, "127.0.0.1", addrPortOf(req.Remote).Addr().String(), "trusted %v", trusted)

		dial(t, addr, http.Header{"X-Forwarded-For": {"203.0.113.9"}})
		l := waitFor(t, links, "OnLinkOpen")
		assert.Equal(t, "127.0.0.1", addrPortOf(l.Remote).Addr().String())
		_, resp, err := dialWith(t, &websocket.Dialer{}, addr, "/", http.Header{"X-Forwarded-For": {"203.0.113.10"}})
		require.Error(t, err, "a forged header escaped MaxLinksPerIP")
		assert.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)
	}
}

// TestForwardedForTrusted: from a trusted proxy, X-Forwarded-For is walked
// from the right past trusted addresses: the client it names is the
// request's and the link's Remote (and what OnLinkClose reports), what
// MaxLinksPerIP counts (each client its own limit; the proxy's HTTP
// connections and its own upgrades not at all) and what the refusal's
// warning names, with the proxy.
func TestForwardedForTrusted(t *testing.T) {
	var log testutil.Buffer
	cap := newCapture(func(w *ResponseWriter, r *Request) { _ = w.Respond(200, []byte(r.Remote.String())) })
	opened := make(chan Link, 8)
	closed := make(chan Link, 8)
	_, addr := startServer(t, Listener{Name: "edge", Handler: EchoHandler{}, HTTPHandler: cap, MaxLinksPerIP: 1,
		TrustedProxies: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}}, logTo(t, &log), func(c *Config) {
		c.OnLinkOpen = func(l Link) {
			if l.Kind == LinkWebSocket {
				opened <- l
			}
		}
		c.OnLinkClose = func(l Link, _ CloseError) {
			if l.Kind == LinkWebSocket {
				closed <- l
			}
		}
	})
	for _, tc := range []struct{ hdrs, want string }{
		{"X-Forwarded-For: 198.51.100.1, 203.0.113.9\r\n", "203.0.113.9"},
		{"X-Forwarded-For: 198.51.100.1, 127.0.0.5\r\n", "198.51.100.1"},
		// A second line, the proxy's, after one the client wrote.
		{"X-Forwarded-For: 6.6.6.6\r\nX-Forwarded-For: 203.0.113.9\r\n", "203.0.113.9"},
		{"X-Forwarded-For: [2001:db8::7]:4711\r\n", "2001:db8::7"},
		{"X-Forwarded-For: unknown\r\n", "127.0.0.1"},
		{"Forwarded: for=203.0.113.9\r\n", "127.0.0.1"}, // not the configured header
		{"", "127.0.0.1"},
	} {
		proxyRequest(t, addr, tc.hdrs)
		req := waitFor(t, cap.reqs, "the request")
		assert.Equal(t, tc.want, addrPortOf(req.Remote).Addr().String(), "%q", tc.hdrs)
	}
	// Many HTTP connections naming one client: not counted by address.
	for i := 0; i < 3; i++ {
		proxyRequest(t, addr, "X-Forwarded-For: 203.0.113.9\r\n")
		waitFor(t, cap.reqs, "the request")
	}

	a := dial(t, addr, http.Header{"X-Forwarded-For": {"203.0.113.9"}})
	l := waitFor(t, opened, "OnLinkOpen")
	assert.Equal(t, "203.0.113.9", addrPortOf(l.Remote).Addr().String())
	dial(t, addr, http.Header{"X-Forwarded-For": {"203.0.113.10"}})
	waitFor(t, opened, "OnLinkOpen: another client")
	dial(t, addr, nil)
	dial(t, addr, nil)
	waitFor(t, opened, "OnLinkOpen: the proxy's own")
	waitFor(t, opened, "OnLinkOpen: the proxy's own, not counted")

	_, resp, err := dialWith(t, &websocket.Dialer{}, addr, "/", http.Header{"X-Forwarded-For": {"198.51.100.1, 203.0.113.9"}})
	require.Error(t, err, "client 203.0.113.9's second link opened")
	body, _ := io.ReadAll(resp.Body)
	refusedBody(t, resp, body, LimitMaxLinksPerIP)
	assert.Contains(t, string(body), "203.0.113.9 holds the limit of 1 links per address")
	assert.Contains(t, log.String(), `msg="lws: connection refused" listener=edge limit=max_links_per_ip remote=203.0.113.9 via=127.0.0.1 answer=503`)

	a.Close()
	assert.Equal(t, "203.0.113.9", addrPortOf(waitFor(t, closed, "OnLinkClose").Remote).Addr().String())
	dial(t, addr, http.Header{"X-Forwarded-For": {"203.0.113.9"}})
	waitFor(t, opened, "OnLinkOpen: the client's slot is free again")
}

// TestForwardedHeaderForwarded: with ForwardedHeader "Forwarded", its for=
// parameters are walked, X-Forwarded-For is ignored, and a request that
// repeats the header names no client (libwebsockets shows only its first
// line). libwebsockets 4.1 cannot tell a repeated header: the listener is
// refused there.
func TestForwardedHeaderForwarded(t *testing.T) {
	l := Listener{Addr: "127.0.0.1:0", ForwardedHeader: "forwarded", TrustedProxies: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}}
	if !cgo.CountsCustomHeaders() {
		_, err := New(&Config{Logger: testLogger(t), Listeners: []Listener{l}})
		require.Error(t, err)
		assert.Contains(t, err.Error(), "ForwardedHeader")
		assert.Contains(t, err.Error(), "needs libwebsockets 4.3")
		t.Skipf("libwebsockets %s cannot count repeated custom headers", Version())
	}
	cap := newCapture(func(w *ResponseWriter, r *Request) { _ = w.Respond(200, nil) })
	l.HTTPHandler = cap
	_, addr := startServer(t, l)
	for _, tc := range []struct{ hdrs, want string }{
		{"Forwarded: for=198.51.100.1, for=\"[2001:db8::7]:4711\";proto=https\r\n", "2001:db8::7"},
		{"Forwarded: for=_hidden\r\n", "127.0.0.1"},
		{"X-Forwarded-For: 203.0.113.9\r\n", "127.0.0.1"},
		{"Forwarded: for=6.6.6.6\r\nForwarded: for=203.0.113.9\r\n", "127.0.0.1"},
	} {
		proxyRequest(t, addr, tc.hdrs)
		req := waitFor(t, cap.reqs, "the request")
		assert.Equal(t, tc.want, addrPortOf(req.Remote).Addr().String(), "%q", tc.hdrs)
	}
}

// TestTrustedProxiesValidation: a bad ForwardedHeader is refused by name.
func TestTrustedProxiesValidation(t *testing.T) {
	_, err := New(&Config{Logger: testLogger(t), Listeners: []Listener{{Addr: "127.0.0.1:0", ForwardedHeader: "X-Real-IP"}}})
	require.Error(t, err)
	assert.Contains(t, err.Error(), `ForwardedHeader "X-Real-IP": want X-Forwarded-For or Forwarded`)
	_, err = New(&Config{Logger: testLogger(t), Listeners: []Listener{{Addr: "127.0.0.1:0", TrustedProxies: []netip.Prefix{{}}}}})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "TrustedProxies[0]")
}
