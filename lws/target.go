package lws

import (
	"context"
	"fmt"
	"maps"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
)

// Where a client link goes: the URL given to Dial or a Transport, parsed
// and resolved in Go, and the request headers it carries.

// target is a parsed client URL.
//
// Concurrency: a value, read-only once parsed.
type target struct {
	url    string
	tls    bool
	host   string // name or IP, without brackets
	port   int
	hostHd string // Host header: host, or host:port when not the default
	path   string // path and query, at least "/"
}

// parseTarget parses a client URL whose scheme is one of schemes.
func parseTarget(raw string, schemes map[string]bool) (*target, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("lws: bad URL %q: %w", raw, err)
	}
	sch := strings.ToLower(u.Scheme)
	if !schemes[sch] {
		want := slices.Sorted(maps.Keys(schemes))
		return nil, fmt.Errorf("lws: URL %q: scheme %q is not one of %s", raw, u.Scheme, strings.Join(want, ", "))
	}
	t := &target{url: raw, tls: sch == "wss" || sch == "https", host: u.Hostname()}
	if t.host == "" {
		return nil, fmt.Errorf("lws: URL %q has no host", raw)
	}
	t.port = 80
	if t.tls {
		t.port = 443
	}
	if p := u.Port(); p != "" {
		n, err := strconv.Atoi(p)
		if err != nil || n <= 0 || n > 65535 {
			return nil, fmt.Errorf("lws: URL %q: bad port %q", raw, p)
		}
		t.port = n
	}
	t.hostHd = u.Host
	if u.Port() != "" && ((t.tls && t.port == 443) || (!t.tls && t.port == 80)) {
		t.hostHd = u.Hostname()
		if strings.Contains(t.hostHd, ":") {
			t.hostHd = "[" + t.hostHd + "]"
		}
	}
	t.path = u.RequestURI()
	if t.path == "" {
		t.path = "/"
	}
	return t, nil
}

// resolve finds an address for t.host in Go, so that libwebsockets never
// blocks its service thread in getaddrinfo. IPv4 is preferred.
func resolve(ctx context.Context, host string) (string, error) {
	if ip := net.ParseIP(host); ip != nil {
		return ip.String(), nil
	}
	addrs, err := net.DefaultResolver.LookupIPAddr(ctx, host)
	if err != nil {
		return "", err
	}
	for _, a := range addrs {
		if a.IP.To4() != nil {
			return a.IP.String(), nil
		}
	}
	if len(addrs) == 0 {
		return "", fmt.Errorf("no address for %q", host)
	}
	return addrs[0].IP.String(), nil
}

// headerBlob turns headers into the "name\x00value\x00" pairs of the C
// layer, rejecting what could split the request.
func headerBlob(b []byte, h http.Header, skip func(string) bool) ([]byte, error) {
	for name, vals := range h {
		if !validHeaderName(name) {
			return nil, fmt.Errorf("lws: header name %q is not valid", name)
		}
		if skip != nil && skip(http.CanonicalHeaderKey(name)) {
			continue
		}
		for _, v := range vals {
			if strings.ContainsAny(v, "\r\n\x00") {
				return nil, fmt.Errorf("lws: header %s: value contains CR, LF or NUL", name)
			}
			b = append(b, strings.ToLower(name)...)
			b = append(b, 0)
			b = append(b, v...)
			b = append(b, 0)
		}
	}
	return b, nil
}
