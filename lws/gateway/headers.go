package gateway

import (
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"

	"github.com/lwsgate/lwsgate/lws"
)

// The headers the gateway sends a backend or a hook on a client's behalf:
// the client's headers an allow-list names (forward_headers), static
// headers (headers), and the client's address (X-Forwarded-For). Some
// headers are never passed, whatever a list says: they belong to one hop
// (RFC 9110 section 7.6.1), to the request's framing, to the WebSocket
// handshake (which carries a token in Sec-WebSocket-Protocol), or are the
// gateway's to write.

// unforwardable says why a header (canonical name) is never passed from
// a client to a backend, or "" when it may be.
func unforwardable(name string) string {
	switch {
	case hopByHop(name):
		return "a hop-by-hop header"
	case name == "Host", name == "Content-Length":
		return "written by the gateway's HTTP client"
	case strings.HasPrefix(name, "Sec-Websocket-"):
		return "a WebSocket handshake header"
	case name == "X-Forwarded-For", name == "Forwarded", strings.HasPrefix(name, "X-Lwsgate-"):
		return "written by the gateway"
	}
	return ""
}

// hopByHop reports whether a header (canonical name) is one of the fixed
// hop-by-hop ones; those a message's Connection header names are too
// (connectionNamed).
func hopByHop(name string) bool {
	switch name {
	case "Connection", "Keep-Alive", "Te", "Trailer", "Transfer-Encoding", "Upgrade":
		return true
	}
	return strings.HasPrefix(name, "Proxy-")
}

// unsettable says why a static header (canonical name) may not be set, or
// "" when it may be: those that are never forwarded, and Content-Type,
// which describes the body the gateway sends.
func unsettable(name string) string {
	if name == "Content-Type" {
		return "written by the gateway"
	}
	return unforwardable(name)
}

// checkHeaders checks a forward_headers list and a headers map; bad calls
// bad(field, message) for each fault, field relative to the section.
func checkHeaders(names []string, static map[string]string, bad func(field, format string, args ...any)) {
	seen := map[string]bool{}
	for i, n := range names {
		f := fmt.Sprintf("forward_headers[%d]", i)
		c := http.CanonicalHeaderKey(n)
		switch {
		case lws.CheckHeader(n, "") != nil:
			bad(f, "%q is not a header name", n)
		case unforwardable(c) != "":
			bad(f, "%s: %s, never passed on", n, unforwardable(c))
		case seen[c]:
			bad(f, "%s is listed twice", n)
		}
		seen[c] = true
	}
	for _, n := range slices.Sorted(maps.Keys(static)) {
		f := "headers." + n
		c := http.CanonicalHeaderKey(n)
		switch {
		case lws.CheckHeader(n, static[n]) != nil:
			bad(f, "%v", lws.CheckHeader(n, static[n]))
		case unsettable(c) != "":
			bad(f, "%s: %s", n, unsettable(c))
		}
	}
}

// headerPolicy is a forward_headers list and a headers map compiled: what
// a backend or the hooks get of a client's headers, and what is set.
//
// Concurrency: read-only once made.
type headerPolicy struct {
	all    bool            // forward_headers nil on an HTTP forward: every header that may pass
	names  map[string]bool // canonical names allowed
	static http.Header
}

// newHeaderPolicy compiles checked lists; all is what a nil list means.
func newHeaderPolicy(names []string, static map[string]string, all bool) *headerPolicy {
	p := &headerPolicy{all: all && names == nil, names: map[string]bool{}, static: http.Header{}}
	for _, n := range names {
		p.names[http.CanonicalHeaderKey(n)] = true
	}
	for n, v := range static {
		p.static.Set(n, v)
	}
	return p
}

// apply sets on dst the client's headers p allows, then p's static ones.
// The client's hop-by-hop headers, those its Connection header names, and
// every header unforwardable names are left out.
func (p *headerPolicy) apply(dst, client http.Header) {
	if p.all || len(p.names) > 0 {
		hop := connectionNamed(client)
		for k, vs := range client {
			if (p.all || p.names[k]) && !hop[k] && unforwardable(k) == "" {
				dst[k] = slices.Clone(vs)
			}
		}
	}
	for k, vs := range p.static {
		dst[k] = slices.Clone(vs)
	}
}

// connectionNamed returns the headers a request's Connection header
// names, which are hop-by-hop too (RFC 9110 section 7.6.1).
func connectionNamed(h http.Header) map[string]bool {
	var out map[string]bool
	for _, v := range h.Values("Connection") {
		for t := range strings.SplitSeq(v, ",") {
			if t = strings.TrimSpace(t); t != "" {
				if out == nil {
					out = map[string]bool{}
				}
				out[http.CanonicalHeaderKey(t)] = true
			}
		}
	}
	return out
}

// keptHeaders are the header names a link keeps from its upgrade request
// for its backends and hooks (LinkRecord.hdr), and the ones the listeners
// ask libwebsockets to keep (lws.Listener.ExtraHeaders, for headers it
// does not know itself): every name a forward_headers list of cfg gives.
func keptHeaders(cfg *Config) []string {
	var out []string
	add := func(names []string) {
		for _, n := range names {
			if c := http.CanonicalHeaderKey(n); !slices.Contains(out, c) {
				out = append(out, c)
			}
		}
	}
	for _, b := range cfg.Backends {
		add(b.ForwardHeaders)
	}
	add(cfg.Hooks.ForwardHeaders)
	slices.Sort(out)
	return out
}

// linkHeaders returns what a link keeps of its upgrade request's headers:
// the kept names' (keptHeaders), without the hop-by-hop ones, nil when
// none.
func linkHeaders(kept []string, r *lws.Request) http.Header {
	if len(kept) == 0 || r == nil {
		return nil
	}
	hop := connectionNamed(r.Header())
	var out http.Header
	for _, k := range kept {
		if vs := r.Header().Values(k); len(vs) > 0 && !hop[k] {
			if out == nil {
				out = http.Header{}
			}
			out[k] = slices.Clone(vs)
		}
	}
	return out
}

// clientIP is the host of a client's address, for X-Forwarded-For.
func clientIP(remote string) string {
	if i := strings.LastIndex(remote, ":"); i > 0 {
		remote = remote[:i]
	}
	return strings.Trim(remote, "[]")
}
