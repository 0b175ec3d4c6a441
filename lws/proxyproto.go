package lws

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"strconv"
	"strings"
)

// This file reads the PROXY protocol header (HAProxy's specification,
// https://www.haproxy.org/download/2.9/doc/proxy-protocol.txt) that a
// load balancer writes at the start of each connection it forwards: v1 is
// a text line ("PROXY TCP4 203.0.113.7 192.0.2.1 51234 443\r\n"), v2 a
// binary block with a 12-byte signature. It reads exactly the header and
// nothing after it, so that what follows (the HTTP request, or a TLS
// handshake) is left on the socket for libwebsockets.

// proxyHeader is what a PROXY protocol header says.
//
// Concurrency: a value.
type proxyHeader struct {
	version int
	// src and dst are the endpoints of the connection the proxy accepted,
	// for a forwarded TCP connection; invalid when local is set.
	src, dst netip.AddrPort
	// local: the header names no client, and the connection's own
	// endpoints stand (v1 UNKNOWN, v2 LOCAL, v2 UNSPEC and AF_UNIX): the
	// specification makes the receiver accept such connections. A proxy
	// sends LOCAL for its own health checks.
	local bool
}

const (
	// proxyV1Max is the longest v1 header, CRLF included (the
	// specification's 107 bytes).
	proxyV1Max = 107
	// proxyV2Max bounds a v2 header's address block and TLVs: addresses
	// take at most 216 bytes (AF_UNIX); what a load balancer adds as TLVs
	// (AWS: a VPC endpoint ID; TLS details) is far below this.
	proxyV2Max = 1536
	// proxyPeek is read before the version is known: the shortest v1
	// header ("PROXY UNKNOWN\r\n"), and all of a v2 header but the low
	// byte of its length.
	proxyPeek = 15
)

var proxyV2Sig = []byte("\r\n\r\n\x00\r\nQUIT\n")

// errNotProxy is the error of a connection that does not start with a
// PROXY protocol header.
var errNotProxy = errors.New("not a PROXY protocol header")

// readProxyHeader reads one PROXY protocol header from r, byte-exact.
func readProxyHeader(r io.Reader) (proxyHeader, error) {
	var buf [proxyV1Max]byte
	if _, err := io.ReadFull(r, buf[:proxyPeek]); err != nil {
		return proxyHeader{}, truncated(err)
	}
	switch {
	case bytes.HasPrefix(buf[:], proxyV2Sig):
		return readProxyV2(r, buf[:proxyPeek])
	case bytes.HasPrefix(buf[:], []byte("PROXY ")):
		return readProxyV1(r, buf[:])
	}
	return proxyHeader{}, errNotProxy
}

func truncated(err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return errors.New("truncated PROXY protocol header")
	}
	return err
}

// readProxyV1 reads the rest of a v1 line whose first proxyPeek bytes are
// in buf, and parses it.
func readProxyV1(r io.Reader, buf []byte) (proxyHeader, error) {
	n := proxyPeek
	// Read at once what the shortest line of the protocol named needs,
	// then a byte at a time: nothing past the CRLF may be read.
	if min := proxyV1MinLen(string(buf[6:n])); min > n {
		if _, err := io.ReadFull(r, buf[n:min]); err != nil {
			return proxyHeader{}, truncated(err)
		}
		n = min
	}
	for buf[n-1] != '\n' {
		if n == proxyV1Max {
			return proxyHeader{}, fmt.Errorf("PROXY v1 header longer than %d bytes", proxyV1Max)
		}
		if _, err := io.ReadFull(r, buf[n:n+1]); err != nil {
			return proxyHeader{}, truncated(err)
		}
		n++
	}
	return parseProxyV1(string(buf[:n]))
}

// proxyV1MinLen is the length of the shortest line for the protocol
// that rest (what follows "PROXY ") starts with.
func proxyV1MinLen(rest string) int {
	switch {
	case strings.HasPrefix(rest, "TCP4 "):
		return len("PROXY TCP4 0.0.0.0 0.0.0.0 0 0\r\n")
	case strings.HasPrefix(rest, "TCP6 "):
		return len("PROXY TCP6 :: :: 0 0\r\n")
	}
	return 0
}

// parseProxyV1 parses a whole v1 line, CRLF included.
func parseProxyV1(line string) (proxyHeader, error) {
	h := proxyHeader{version: 1}
	body, ok := strings.CutSuffix(line, "\r\n")
	if !ok || strings.ContainsAny(body, "\r\n") {
		return h, errors.New("PROXY v1 header not ended by CRLF")
	}
	f := strings.Split(body, " ")
	if len(f) >= 2 && f[1] == "UNKNOWN" {
		// "the receiver must ignore anything presented before the
		// CRLF is found"
		h.local = true
		return h, nil
	}
	if len(f) != 6 || (f[1] != "TCP4" && f[1] != "TCP6") {
		return h, fmt.Errorf("PROXY v1 header %q: want PROXY TCP4|TCP6 SRC DST SPORT DPORT, or UNKNOWN", body)
	}
	var addrs [2]netip.AddrPort
	for i := range addrs {
		a, err := netip.ParseAddr(f[2+i])
		if err != nil || a.Zone() != "" || a.Is4() != (f[1] == "TCP4") || a.Is4In6() {
			return h, fmt.Errorf("PROXY v1 header: %q is not a %s address", f[2+i], f[1])
		}
		port, ok := proxyPort(f[4+i])
		if !ok {
			return h, fmt.Errorf("PROXY v1 header: %q is not a port", f[4+i])
		}
		addrs[i] = netip.AddrPortFrom(a, port)
	}
	h.src, h.dst = addrs[0], addrs[1]
	return h, nil
}

// proxyPort parses a v1 port: 0 to 65535 in decimal, without a sign or a
// leading zero.
func proxyPort(s string) (uint16, bool) {
	if s == "" || len(s) > 5 || (s[0] == '0' && s != "0") || s[0] < '0' || s[0] > '9' {
		return 0, false
	}
	n, err := strconv.ParseUint(s, 10, 16)
	return uint16(n), err == nil
}

// readProxyV2 reads the rest of a v2 header whose first proxyPeek bytes
// are in head, and parses it.
func readProxyV2(r io.Reader, head []byte) (proxyHeader, error) {
	h := proxyHeader{version: 2}
	var lo [1]byte
	if _, err := io.ReadFull(r, lo[:]); err != nil {
		return h, truncated(err)
	}
	verCmd, fam := head[12], head[13]
	n := int(head[14])<<8 | int(lo[0])
	if verCmd>>4 != 2 {
		return h, fmt.Errorf("PROXY v2 header of version %d", verCmd>>4)
	}
	if n > proxyV2Max {
		return h, fmt.Errorf("PROXY v2 header of %d bytes after its first 16: at most %d", n, proxyV2Max)
	}
	block := make([]byte, n)
	if _, err := io.ReadFull(r, block); err != nil {
		return h, truncated(err)
	}
	switch verCmd & 0xf {
	case 0x0: // LOCAL: the proxy's own connection
		h.local = true
		return h, nil
	case 0x1: // PROXY
	default:
		return h, fmt.Errorf("PROXY v2 header with command %#x", verCmd&0xf)
	}
	if transport := fam & 0xf; transport == 0x2 {
		return h, errors.New("PROXY v2 header for a datagram connection")
	} else if transport > 0x2 {
		return h, fmt.Errorf("PROXY v2 header with transport %#x", transport)
	}
	var size int
	switch fam >> 4 {
	case 0x0, 0x3: // AF_UNSPEC, AF_UNIX: no address to use
		h.local = true
		return h, nil
	case 0x1:
		size = 12
	case 0x2:
		size = 36
	default:
		return h, fmt.Errorf("PROXY v2 header with address family %#x", fam>>4)
	}
	if fam&0xf != 0x1 {
		return h, errors.New("PROXY v2 header for an IP address that is not TCP")
	}
	if n < size {
		return h, fmt.Errorf("PROXY v2 header with %d bytes for %d of addresses", n, size)
	}
	al := size/2 - 2 // address length: 4 or 16
	src, _ := netip.AddrFromSlice(block[:al])
	dst, _ := netip.AddrFromSlice(block[al : 2*al])
	h.src = netip.AddrPortFrom(src.Unmap(), binary.BigEndian.Uint16(block[2*al:]))
	h.dst = netip.AddrPortFrom(dst.Unmap(), binary.BigEndian.Uint16(block[2*al+2:]))
	return h, nil
}
