package lws

import (
	"bytes"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"unsafe"
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
	// Body is the whole request body (at most Listener.MaxBodySize). It
	// is the request's own: package lws does not write or reuse it once
	// the handler is called.
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

	// The headers: hraw holds them as read, canonical name and value
	// pairs, each string NUL-terminated ("" for a Request made here by
	// hand, whose header is set); header is made from it by Header.
	hraw    string
	hdrOnce sync.Once
	header  http.Header
}

// Header returns the request headers libwebsockets parsed, with canonical
// names, plus Listener.ExtraHeaders. The map is made on the first call (a
// request whose headers no one asks for costs none); later calls return
// the same map, which the caller may change. Safe from any goroutine.
func (r *Request) Header() http.Header {
	r.hdrOnce.Do(r.makeHeader)
	return r.header
}

func (r *Request) makeHeader() {
	if r.header != nil {
		return
	}
	s := r.hraw
	n := strings.Count(s, "\x00") / 2
	h := make(http.Header, n)
	vals := make([]string, n)
	for i := range n {
		name, rest, _ := strings.Cut(s, "\x00")
		val, rest, _ := strings.Cut(rest, "\x00")
		s = rest
		if old, ok := h[name]; ok {
			h[name] = append(old, val) // a repeated header
			continue
		}
		vals[i] = val
		h[name] = vals[i : i+1 : i+1]
	}
	r.header = h
}

// eachHeader calls f with the name (canonical) and value of each header
// line as it was read, in order, without making the Header map: one pass
// for the checks every request and upgrade pass (service goroutine). The
// map a handler may change is not looked at, as libwebsockets, which acts
// on the same headers, does not look at it either.
func (r *Request) eachHeader(f func(name, value string)) {
	if r.hraw == "" {
		for k, vs := range r.header {
			for _, v := range vs {
				f(k, v)
			}
		}
		return
	}
	s := r.hraw
	for s != "" {
		k, rest, _ := strings.Cut(s, "\x00")
		v, rest, _ := strings.Cut(rest, "\x00")
		s = rest
		f(k, v)
	}
}

// headerValues appends to dst the values of the lines of header name
// (canonical) as they were read (eachHeader).
func (r *Request) headerValues(name string, dst []string) []string {
	r.eachHeader(func(k, v string) {
		if k == name {
			dst = append(dst, v)
		}
	})
	return dst
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
		// The peer accept returned (countLink), or the one asked for
		// at the connection's first request: it does not change.
		remote = r.link.Remote
	default:
		remote = r.wsi.RemoteAddr()
	}
	if room := bodyRoom(buf); room > 0 {
		// The request and its body in one allocation: the body is
		// read into the room after the request's bytes, which nothing
		// writes once they are a string.
		b := make([]byte, len(buf)+room)
		copy(b, buf)
		raw = unsafe.String(&b[0], len(buf))
		req.Body = b[len(buf):len(buf):len(b)]
	} else {
		raw = string(buf)
	}
	if err := parseRequest(req, raw, remote, r.id, r.lis.cfg.Name); err != nil {
		return "", err
	}
	if r.peer != nil {
		req.Remote = tcpAddr(r.requestClient(req))
	}
	return raw, nil
}

// preallocBody is the largest body read into the allocation of its
// request's bytes (readRequest): a larger one, or one whose length the
// checks will refuse, grows as it arrives.
const preallocBody = 16 << 10

// bodyRoom returns the bytes to make room for after a request, buf as
// cgo.WSI.HTTPRequest read it: the length of a body it announces with one
// plain Content-Length of at most preallocBody, else 0.
func bodyRoom(buf []byte) int {
	m := bytes.IndexByte(buf, 0)
	if m < 0 {
		return 0
	}
	switch string(buf[:m]) {
	case "POST", "PUT", "PATCH":
	default:
		return 0
	}
	// Skip path, query and version, then walk the pairs.
	s := buf[m+1:]
	for range 3 {
		i := bytes.IndexByte(s, 0)
		if i < 0 {
			return 0
		}
		s = s[i+1:]
	}
	n, lines := 0, 0
	for len(s) > 0 {
		i := bytes.IndexByte(s, 0)
		if i < 0 {
			return 0
		}
		name := s[:i]
		s = s[i+1:]
		j := bytes.IndexByte(s, 0)
		if j < 0 {
			return 0
		}
		if string(name) == "Content-Length" {
			lines++
			v, err := strconv.Atoi(string(s[:j]))
			if err != nil || v < 0 || v > preallocBody {
				return 0
			}
			n = v
		}
		s = s[j+1:]
	}
	if lines != 1 {
		return 0
	}
	return n
}

// parseRequest fills req from raw, what cgo.WSI.HTTPRequest read. The
// request's strings are all slices of raw, and its header is made from raw
// only if asked for (Request.Header). A WebSocket link keeps only raw for
// its life and parses it again if asked after OnOpen (Conn.Request).
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
	req.Method = f[0]
	req.Path = f[1]
	req.RawQuery = f[2]
	req.Proto = f[3]
	req.Remote = remote
	req.LinkID = linkID
	req.Listener = listener
	req.ContentLength = -1
	req.hraw = s
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
