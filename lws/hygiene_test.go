package lws

import (
	"maps"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
)

// refUTF8 is a byte-by-byte reading of the Unicode standard's table of
// well-formed UTF-8 byte sequences (Table 3-7), as an oracle for
// utf8Prefix: the length of the longest prefix of whole characters, and
// whether a byte breaks the table (as opposed to the input ending early).
func refUTF8(b []byte) (int, bool) {
	i := 0
	for i < len(b) {
		c := b[i]
		need, lo, hi := 0, byte(0x80), byte(0xBF)
		switch {
		case c <= 0x7F:
			i++
			continue
		case c >= 0xC2 && c <= 0xDF:
			need = 2
		case c == 0xE0:
			need, lo = 3, 0xA0
		case c >= 0xE1 && c <= 0xEC, c == 0xEE, c == 0xEF:
			need = 3
		case c == 0xED:
			need, hi = 3, 0x9F
		case c == 0xF0:
			need, lo = 4, 0x90
		case c >= 0xF1 && c <= 0xF3:
			need = 4
		case c == 0xF4:
			need, hi = 4, 0x8F
		default:
			return i, true
		}
		for k := 1; k < need; k++ {
			if i+k == len(b) {
				return i, false // cut short: more bytes may complete it
			}
			l, h := byte(0x80), byte(0xBF)
			if k == 1 {
				l, h = lo, hi
			}
			if b[i+k] < l || b[i+k] > h {
				return i, true
			}
		}
		i += need
	}
	return i, false
}

func TestUTF8Prefix(t *testing.T) {
	for _, tc := range []struct {
		in   string
		n    int
		bad  bool
		name string
	}{
		{"", 0, false, "empty"},
		{"κόσμε", len("κόσμε"), false, "valid"},
		{"ok\xce", 2, false, "cut after a first byte"},
		{"ok\xe2\x82", 2, false, "cut after two of three"},
		{"ok\xf0\x9f\x98", 2, false, "cut after three of four"},
		{"\xed\xa0", 0, true, "surrogate start"},
		{"\xf4\x90", 0, true, "above U+10FFFF"},
		{"\xe0\x80", 0, true, "overlong start"},
		{"\xc0", 0, true, "never-valid byte"},
		{"a\xffb", 0, true, "invalid in the middle"},
		{"\xce\xba\xce", 2, false, "one whole, one cut"},
		{"\x80", 0, true, "lone continuation"},
	} {
		n, bad := utf8Prefix([]byte(tc.in))
		assert.Equal(t, tc.bad, bad, tc.name)
		if !tc.bad {
			assert.Equal(t, tc.n, n, tc.name)
		}
	}
}

// FuzzUTF8Prefix checks utf8Prefix against the table-driven oracle.
func FuzzUTF8Prefix(f *testing.F) {
	for _, s := range []string{"", "κόσμε", "ok\xe2\x82", "\xed\xa0\x80", "\xf4\x90\x80", "\xf0\x9f\x98\x80x", "a\xffb"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		n, bad := utf8Prefix(b)
		rn, rbad := refUTF8(b)
		if bad != rbad {
			t.Fatalf("utf8Prefix(%q) bad=%v, oracle %v", b, bad, rbad)
		}
		if !bad {
			if n != rn || !utf8.Valid(b[:n]) {
				t.Fatalf("utf8Prefix(%q) = %d, oracle %d", b, n, rn)
			}
		}
		if !bad && n == len(b) != utf8.Valid(b) {
			t.Fatalf("utf8Prefix(%q) = %d of %d but utf8.Valid = %v", b, n, len(b), utf8.Valid(b))
		}
	})
}

var decimalRE = regexp.MustCompile(`^[ \t]*([0-9]{1,18})[ \t]*$`)

func TestParseContentLength(t *testing.T) {
	for _, tc := range []struct {
		vals []string
		n    int64
		ok   bool
	}{
		{nil, -1, true},
		{[]string{"0"}, 0, true},
		{[]string{" 42 "}, 42, true},
		{[]string{"000000000000000007"}, 7, true},
		{[]string{"999999999999999999"}, 999999999999999999, true},
		{[]string{"1000000000000000000"}, 0, false},
		{[]string{"3", "3"}, 0, false},
		{[]string{"3, 3"}, 0, false},
		{[]string{"+3"}, 0, false},
		{[]string{"-1"}, 0, false},
		{[]string{"3abc"}, 0, false},
		{[]string{"0x10"}, 0, false},
		{[]string{""}, 0, false},
		{[]string{"1 2"}, 0, false},
	} {
		n, ok := contentLength(tc.vals)
		assert.Equal(t, tc.ok, ok, "%q", tc.vals)
		if tc.ok {
			assert.Equal(t, tc.n, n, "%q", tc.vals)
		}
	}
}

// contentLength is parseContentLength of the lines vals.
func contentLength(vals []string) (int64, bool) {
	first := ""
	if len(vals) > 0 {
		first = vals[0]
	}
	return parseContentLength(len(vals), first)
}

// FuzzParseContentLength: exactly one line of optional whitespace around
// 1 to 18 digits is accepted, with its value; nothing else is.
func FuzzParseContentLength(f *testing.F) {
	for _, s := range []string{"0", " 42\t", "+3", "-1", "3, 3", "99999999999999999999", "0x3", ""} {
		f.Add(s, false)
	}
	f.Add("3", true)
	f.Fuzz(func(t *testing.T, v string, twice bool) {
		vals := []string{v}
		if twice {
			vals = append(vals, v)
		}
		n, ok := contentLength(vals)
		m := decimalRE.FindStringSubmatch(v)
		want := m != nil && !twice
		if ok != want {
			t.Fatalf("parseContentLength(%q) ok=%v, want %v", vals, ok, want)
		}
		if ok {
			w, _ := strconv.ParseInt(m[1], 10, 64)
			if n != w || n < 0 {
				t.Fatalf("parseContentLength(%q) = %d, want %d", vals, n, w)
			}
		}
	})
}

func TestCheckClosePayload(t *testing.T) {
	for _, tc := range []struct {
		p    string
		ok   bool
		code StatusCode
	}{
		{"", true, 0},
		{"\x03", false, 1002},
		{"\x03\xe8", true, 0},
		{"\x03\xe8bye", true, 0},
		{"\x03\xe8\xff", false, 1007},
		{"\x03\xe8\xce", false, 1007},
		{"\x03\xe7", false, 1002},
		{"\x03\xed", false, 1002},
		{"\x03\xf4", true, 0},
		{"\x0b\xb8", true, 0},
		{"\x13\x87", true, 0},
		{"\x13\x88", false, 1002},
	} {
		code, ok := checkClosePayload([]byte(tc.p), true)
		assert.Equal(t, tc.ok, ok, "%q", tc.p)
		assert.Equal(t, tc.code, code, "%q", tc.p)
	}
	_, ok := checkClosePayload([]byte("\x03\xe8\xff"), false)
	assert.True(t, ok, "reason checked with UTF-8 validation off")
}

// FuzzCheckClosePayload: a payload passes exactly when it is empty or a
// sendable code and a UTF-8 reason; a failure answers 1002, or 1007 when
// only the reason is wrong.
func FuzzCheckClosePayload(f *testing.F) {
	for _, s := range []string{"", "\x03", "\x03\xe8bye", "\x03\xe8\xff", "\x13\x88", "\x0f\xa0"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, p []byte) {
		code, ok := checkClosePayload(p, true)
		want := len(p) == 0 || len(p) >= 2 && StatusCode(int(p[0])<<8|int(p[1])).Sendable() && utf8.Valid(p[2:])
		if ok != want {
			t.Fatalf("checkClosePayload(%q) ok=%v, want %v", p, ok, want)
		}
		switch {
		case ok && code != 0:
			t.Fatalf("checkClosePayload(%q) passed with code %d", p, code)
		case !ok && len(p) >= 2 && StatusCode(int(p[0])<<8|int(p[1])).Sendable():
			if code != StatusInvalidPayloadData {
				t.Fatalf("checkClosePayload(%q) = %d, want 1007", p, code)
			}
		case !ok && code != StatusProtocolError:
			t.Fatalf("checkClosePayload(%q) = %d, want 1002", p, code)
		}
	})
}

// upgradeReq builds the parsed form of a valid upgrade request.
func upgradeReq() *Request {
	return &Request{Method: "GET", Proto: "HTTP/1.1", ContentLength: -1, header: http.Header{
		"Host":                  {"t"},
		"Upgrade":               {"websocket"},
		"Connection":            {"keep-alive, Upgrade"},
		"Sec-Websocket-Key":     {"dGhlIHNhbXBsZSBub25jZQ=="},
		"Sec-Websocket-Version": {"13"},
	}}
}

// FuzzCheckUpgrade varies the fields an upgrade is judged by: checkFraming
// and checkUpgrade never panic, and whatever passes has the properties
// RFC 6455 section 4.2.1 asks for.
func FuzzCheckUpgrade(f *testing.F) {
	f.Add("GET", "HTTP/1.1", "websocket", "Upgrade", "dGhlIHNhbXBsZSBub25jZQ==", "13", "", "", "")
	f.Add("POST", "HTTP/1.0", "h2c", "close", "abc", "8", "chat, http", "5", "chunked")
	f.Add("GET", "HTTP/1.1", "WebSocket", "keep-alive,upgrade", "AAAAAAAAAAAAAAAAAAAAAA==", " 13 ", "other,chat", "0", "")
	protos := []string{httpProtocol, "chat"}
	f.Fuzz(func(t *testing.T, method, proto, upgrade, conn, key, version, subp, cl, te string) {
		req := upgradeReq()
		req.Method, req.Proto = method, proto
		set := func(name, v string) {
			if v == "" {
				delete(req.header, name)
				return
			}
			req.header[name] = strings.Split(v, "\n")
		}
		set("Upgrade", upgrade)
		set("Connection", conn)
		set("Sec-Websocket-Key", key)
		set("Sec-Websocket-Version", version)
		set("Sec-Websocket-Protocol", subp)
		set("Content-Length", cl)
		set("Transfer-Encoding", te)
		// As the C layer gives them: NUL-terminated name, value pairs,
		// one per line, which hold no NUL.
		for _, name := range slices.Sorted(maps.Keys(req.header)) {
			for _, v := range req.header[name] {
				if strings.Contains(v, "\x00") {
					t.Skip("a NUL in a header line")
				}
				req.hraw += name + "\x00" + v + "\x00"
			}
		}
		req.header = nil
		r := checkFraming(req)
		if r.ok() {
			r, _ = checkUpgrade(req, protos, upgradeOffers{})
		}
		if !r.ok() {
			if r.status != 400 && r.status != 426 && r.status != 501 {
				t.Fatalf("refused with status %d", r.status)
			}
			return
		}
		if method != "GET" || proto != "HTTP/1.1" || len(req.Header()["Upgrade"]) != 1 ||
			!strings.EqualFold(strings.Trim(upgrade, " \t"), "websocket") ||
			len(req.Header()["Sec-Websocket-Version"]) != 1 || strings.Trim(version, " \t") != "13" ||
			te != "" || req.ContentLength > 0 {
			t.Fatalf("accepted %+v", req)
		}
		if subp != "" && !strings.Contains(subp, "chat") {
			t.Fatalf("accepted subprotocols %q", subp)
		}
	})
}
