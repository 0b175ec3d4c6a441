package lws

import (
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
)

// Request is an HTTP request, or the upgrade request of a WebSocket link.
// Handlers may keep it; it is not reused.
type Request struct {
	// Method is "GET", "POST"...
	Method string
	// Path is the request path as libwebsockets delivers it: URL-decoded
	// and normalised ("/a/../b" arrives as "/b").
	Path string
	// RawQuery is the query: libwebsockets decodes each "name=value"
	// argument, and they are joined here with '&' (values that contained
	// an encoded '&' are therefore ambiguous).
	RawQuery string
	// Proto is the protocol version of the request line, "HTTP/1.1" or
	// "HTTP/1.0".
	Proto string
	// Header holds the request headers libwebsockets parsed, with
	// canonical names, plus Listener.ExtraHeaders.
	Header http.Header
	// Body is the whole request body (at most Listener.MaxBodySize).
	Body []byte
	// Remote is the client's address: the peer's, or behind a proxy
	// (Listener.TrustedProxies, ProxyProtocol) the client it names.
	Remote net.Addr
	// LinkID is the ID of the link (connection) the request came on.
	LinkID uint64
	// Listener is the name of the listener that accepted it.
	Listener string
	// ContentLength is the Content-Length header's value, or -1 when the
	// request has none.
	ContentLength int64

	val any // SetValue
}

// SetValue attaches an application value to the request. On an upgrade
// request, from Listener.CheckUpgrade, the value becomes the link's
// Conn.Value from the start (OnOpen sees it there), so that what
// CheckUpgrade found out, say the subject of a verified token, reaches
// the link without being worked out again. On any other request it is
// only what Value returns. Not safe for concurrent use: call it from the
// handler that has the request (CheckUpgrade, ServeHTTP).
func (r *Request) SetValue(v any) { r.val = v }

// Value returns what SetValue attached, or nil.
func (r *Request) Value() any { return r.val }

// Query parses RawQuery.
func (r *Request) Query() url.Values {
	v := url.Values{}
	for _, kv := range strings.Split(r.RawQuery, "&") {
		if kv == "" {
			continue
		}
		k, val, _ := strings.Cut(kv, "=")
		v.Add(k, val)
	}
	return v
}

// readRequest reads the request headers of r's wsi into req and returns
// what it parsed them from (service goroutine).
func (r *rec) readRequest(req *Request) (raw string, err error) {
	c := r.ctx
	buf, err := r.wsi.HTTPRequest(c.hbuf, r.lis.extra)
	if err != nil {
		return "", err
	}
	if cap(buf) <= 64<<10 {
		c.hbuf = buf[:0]
	}
	var remote net.Addr
	switch {
	case r.peer != nil:
		// A proxy's: each request names its client (below).
	case r.link.Remote != nil:
		// A keep-alive connection's peer does not change: ask the
		// kernel once per connection.
		remote = r.link.Remote
	default:
		remote = r.wsi.RemoteAddr()
	}
	raw = string(buf)
	if err := parseRequest(req, raw, remote, r.id, r.lis.cfg.Name); err != nil {
		return "", err
	}
	if r.peer != nil {
		req.Remote = tcpAddr(r.requestClient(req.Header))
	}
	return raw, nil
}

// parseRequest fills req from raw, what cgo.WSI.HTTPRequest read. The
// request's strings are all slices of raw, and its header's values share
// one backing array: a request is a few allocations, not one per field.
// A WebSocket link keeps only raw for its life and parses it again if
// asked after OnOpen (Conn.Request).
func parseRequest(req *Request, raw string, remote net.Addr, linkID uint64, listener string) error {
	s := raw
	var f [4]string // method, path, query, protocol
	for i := range f {
		j := strings.IndexByte(s, 0)
		if j < 0 {
			return fmt.Errorf("lws: malformed request info")
		}
		f[i], s = s[:j], s[j+1:]
	}
	n := strings.Count(s, "\x00") / 2
	*req = Request{
		Method:        f[0],
		Path:          f[1],
		RawQuery:      f[2],
		Proto:         f[3],
		Header:        make(http.Header, n),
		Remote:        remote,
		LinkID:        linkID,
		Listener:      listener,
		ContentLength: -1,
	}
	vals := make([]string, n)
	for i := range n {
		name, rest, _ := strings.Cut(s, "\x00")
		val, rest, _ := strings.Cut(rest, "\x00")
		s = rest
		key := http.CanonicalHeaderKey(name)
		if old, ok := req.Header[key]; ok {
			req.Header[key] = append(old, val) // a repeated header
			continue
		}
		vals[i] = val
		req.Header[key] = vals[i : i+1 : i+1]
	}
	return nil
}

// validHeaderName reports whether k is an HTTP token (RFC 9110 section
// 5.6.2), as a header name or a method must be.
// CheckHeader checks a request header as the binding sends one
// (DialOptions.Header, Transport): a name that is an HTTP token, and a
// value without CR, LF or NUL, which could split the request. For callers
// that check a config before any link starts.
func CheckHeader(name, value string) error {
	if !validHeaderName(name) {
		return fmt.Errorf("%q is not a header name", name)
	}
	if strings.ContainsAny(value, "\r\n\x00") {
		return fmt.Errorf("header %s: value contains CR, LF or NUL", name)
	}
	return nil
}

func validHeaderName(k string) bool {
	if k == "" {
		return false
	}
	for i := 0; i < len(k); i++ {
		c := k[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte("()<>@,;:\\\"/[]?={}", c) >= 0 {
			return false
		}
	}
	return true
}
