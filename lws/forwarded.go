package lws

import (
	"fmt"
	"net"
	"net/netip"
	"strings"
	"time"

	"github.com/lwsgate/lwsgate/cgo"
)

// This file works out a request's client address behind proxies
// (Listener.TrustedProxies). A proxy names the client it serves in a
// header: X-Forwarded-For ("client, proxy1, proxy2", each proxy appending
// the address it got the request from) or Forwarded (RFC 7239:
// "for=client, for=proxy1"). Anyone can write such a header, so only
// what trusted proxies wrote is believed: the chain is walked back from
// the connection's own address, right to left, while the address reached
// is a trusted proxy; the first that is not is the client. The leftmost
// entries, which a client may have forged, are never reached unless every
// proxy after them is trusted.

// forwardedHeaders are the headers ForwardedHeader may name, canonical.
const (
	headerXForwardedFor = "X-Forwarded-For"
	headerForwarded     = "Forwarded"
)

// peerInfo is the address of an accepted connection that came through a
// proxy: one of the TrustedProxies, whose requests name their client, or
// (ProxyProtocol) the source a PROXY header named. Other connections
// have none (rec.peer nil): their TCP peer is their client.
//
// Concurrency: a value.
type peerInfo struct {
	// addr is the connection's address: the PROXY header's source, or
	// the TCP peer's as accept returned it (invalid: read at first use;
	// at WSI_CREATE the socket is not yet the wsi's).
	addr netip.AddrPort
	// trusted: addr is a trusted proxy, whose requests name their client
	// in ForwardedHeader.
	trusted bool
}

// connAddr is the address of r's connection: a PROXY header's source, or
// the TCP peer's.
func (r *rec) connAddr() netip.AddrPort {
	p := r.peer
	switch {
	case p == nil && r.link.Remote != nil:
		return addrPortOf(r.link.Remote)
	case p == nil:
		return addrPortOf(r.wsi.RemoteAddr())
	case !p.addr.IsValid():
		p.addr = addrPortOf(r.wsi.RemoteAddr())
	}
	return p.addr
}

// requestClient is the client of req, a request on r's connection: the
// connection's address, unless that is a trusted proxy, whose forwarding
// header is walked (clientOf). A request that repeats the
// Forwarded header, of which libwebsockets shows the first line only,
// names no client that can be believed: it is the proxy's own.
func (r *rec) requestClient(req *Request) netip.AddrPort {
	peer := r.connAddr()
	if r.peer == nil || !r.peer.trusted {
		return peer
	}
	name := r.lis.cfg.ForwardedHeader
	if name == headerForwarded {
		if n := r.wsi.CustomHeaderCount("forwarded:"); n > 1 {
			r.ctx.warnEvery(r.lis, "repeated_forwarded", "lws: a request repeats the Forwarded header: its proxy is taken as its client", time.Now(),
				"via", peer.Addr(), "why", "libwebsockets shows the first line only, which a client may have written")
			return peer
		} else if n < 1 {
			return peer
		}
	}
	return r.lis.clientOf(peer, forwardedHops(req.Header().Values(name), name == headerForwarded))
}

// trusted reports whether a is one of the listener's trusted proxies.
func (l *listener) trusted(a netip.Addr) bool {
	a = a.Unmap()
	for _, p := range l.cfg.TrustedProxies {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// CheckForwardedHeader checks a Listener.ForwardedHeader: "" (the
// default), X-Forwarded-For, or Forwarded where this libwebsockets lets
// the binding see a repeated Forwarded header (4.3 and later). Names are
// case-insensitive.
func CheckForwardedHeader(name string) error {
	switch {
	case name == "" || strings.EqualFold(name, headerXForwardedFor):
		return nil
	case !strings.EqualFold(name, headerForwarded):
		return fmt.Errorf("want %s or %s", headerXForwardedFor, headerForwarded)
	case !cgo.CountsCustomHeaders():
		return fmt.Errorf("needs libwebsockets 4.3 or later (this is %s), which lets the binding see that a request repeats it: use %s", Version(), headerXForwardedFor)
	}
	return nil
}

// normPrefix masks p, and makes an IPv4-mapped IPv6 prefix (at least
// /96) the IPv4 one it covers, as addresses are compared unmapped.
func normPrefix(p netip.Prefix) netip.Prefix {
	if !p.IsValid() {
		return p
	}
	if a := p.Addr(); a.Is4In6() && p.Bits() >= 96 {
		p = netip.PrefixFrom(a.Unmap(), p.Bits()-96)
	}
	return p.Masked()
}

// forwardedHops returns the hops a forwarding header's lines list, in
// order: the first hop (the client, as the first proxy saw it) to the
// last (the nearest proxy's peer). An entry that is not an address (the
// "unknown" or obfuscated "_name" identifiers of RFC 7239, garbage) is an
// invalid AddrPort in its place. forwarded selects RFC 7239's syntax over
// X-Forwarded-For's.
func forwardedHops(vals []string, forwarded bool) []netip.AddrPort {
	var hops []netip.AddrPort
	for _, v := range vals {
		for _, e := range splitOutsideQuotes(v, ',') {
			e = owsTrim(e)
			if e == "" {
				continue // empty list elements are allowed (RFC 9110 5.6.1)
			}
			if forwarded {
				e = forwardedFor(e)
			}
			hops = append(hops, parseHop(e))
		}
	}
	return hops
}

// forwardedFor returns the value of an RFC 7239 element's "for"
// parameter, unquoted, or "" when it has none.
func forwardedFor(elem string) string {
	for _, pair := range splitOutsideQuotes(elem, ';') {
		name, val, ok := strings.Cut(owsTrim(pair), "=")
		if !ok || !strings.EqualFold(name, "for") {
			continue
		}
		if len(val) >= 2 && val[0] == '"' && val[len(val)-1] == '"' {
			val = strings.ReplaceAll(val[1:len(val)-1], `\`, "")
		}
		return val
	}
	return ""
}

// splitOutsideQuotes splits s at each sep that is not inside a quoted
// string (RFC 9110 section 5.6.4, with its backslash escapes).
func splitOutsideQuotes(s string, sep byte) []string {
	var out []string
	quoted, start := false, 0
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '\\' && quoted:
			i++
		case c == '"':
			quoted = !quoted
		case c == sep && !quoted:
			out = append(out, s[start:i])
			start = i + 1
		}
	}
	return append(out, s[start:])
}

// parseHop parses one hop: an IPv4 or IPv6 address, optionally with a
// port ("192.0.2.1:80", "[2001:db8::1]:80", or "[2001:db8::1]" as RFC
// 7239 writes IPv6). Anything else is the invalid AddrPort.
func parseHop(s string) netip.AddrPort {
	if a, err := netip.ParseAddr(s); err == nil && a.Zone() == "" {
		return netip.AddrPortFrom(a.Unmap(), 0)
	}
	if ap, err := netip.ParseAddrPort(s); err == nil && ap.Addr().Zone() == "" {
		return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	}
	if len(s) > 2 && s[0] == '[' && s[len(s)-1] == ']' {
		if a, err := netip.ParseAddr(s[1 : len(s)-1]); err == nil && a.Is6() && a.Zone() == "" {
			return netip.AddrPortFrom(a.Unmap(), 0)
		}
	}
	return netip.AddrPort{}
}

// clientOf walks back from peer, the connection's address, through hops,
// right to left, while the address reached is a trusted proxy, and
// returns the first that is not. When the hops run out, or the next one
// is not an address, the last trusted address reached is the client: the
// nearest party whose word stops there.
func (l *listener) clientOf(peer netip.AddrPort, hops []netip.AddrPort) netip.AddrPort {
	client := peer
	for i := len(hops) - 1; i >= 0 && l.trusted(client.Addr()); i-- {
		if !hops[i].IsValid() {
			break
		}
		client = hops[i]
	}
	return client
}

// tcpAddr makes a net.Addr of a (nil for the invalid AddrPort).
func tcpAddr(a netip.AddrPort) net.Addr {
	if !a.IsValid() {
		return nil
	}
	return net.TCPAddrFromAddrPort(a)
}

// addrPortOf is the inverse of tcpAddr (the invalid AddrPort for an
// address that is not TCP).
func addrPortOf(a net.Addr) netip.AddrPort {
	if ta, ok := a.(*net.TCPAddr); ok {
		ap := ta.AddrPort()
		return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	}
	return netip.AddrPort{}
}
