package lws

import (
	"encoding/base64"
	"iter"
	"net/http"
	"strconv"
	"strings"
	"unicode/utf8"
)

// This file holds the checks a request must pass before any handler or
// upgrade sees it. libwebsockets 4.1 parses Content-Length with atoll (so
// "3, 5", "+3" and "3abc" all read as 3, and of two Content-Length lines
// the first wins), ignores a request's Transfer-Encoding, and upgrades a
// request to WebSocket whatever its method, version or key. Each check is a
// pure function of the parsed request so that it can be fuzzed.
//
// libwebsockets 4.1 gives one value per header line for the headers it
// knows, with a repeated header's later lines starting with spaces; that
// is how duplicates are told apart from one line holding a list.

// refusal says why a request is refused; the zero value means it passed.
type refusal struct {
	status int    // HTTP status to answer
	why    string // response body and log text
	hdrs   []byte // extra response headers, NUL-separated name, value pairs
}

func (f refusal) ok() bool { return f.status == 0 }

func refuse(status int, why string) refusal { return refusal{status: status, why: why} }

// owsTrim removes optional whitespace (SP, HTAB) around a field value.
func owsTrim(s string) string { return strings.Trim(s, " \t") }

// parseContentLength parses a request's Content-Length lines, n of them,
// the first holding first: exactly one line holding 1*DIGIT (RFC 9110
// section 8.6) that fits an int64. It returns -1 for no line.
func parseContentLength(lines int, first string) (int64, bool) {
	switch lines {
	case 0:
		return -1, true
	case 1:
	default:
		return 0, false // duplicated, even with equal values
	}
	v := owsTrim(first)
	if v == "" || len(v) > 18 {
		return 0, false // 18 digits always fit an int64
	}
	for i := 0; i < len(v); i++ {
		if v[i] < '0' || v[i] > '9' {
			return 0, false
		}
	}
	n, err := strconv.ParseInt(v, 10, 64)
	return n, err == nil
}

// checkFraming checks what decides where a request ends (RFC 9112 sections
// 3.2, 6.1 and 6.3): one Host line (HTTP/1.1 needs one), no
// Transfer-Encoding (libwebsockets does not decode chunked request bodies:
// one with Content-Length too is a smuggling attempt), and at most one
// plain decimal Content-Length. It sets req.ContentLength.
func checkFraming(req *Request) refusal {
	var host, ncl, te int
	var cl string
	req.eachHeader(func(k, v string) {
		switch k {
		case "Host":
			host++
		case "Content-Length":
			if ncl == 0 {
				cl = v
			}
			ncl++
		case "Transfer-Encoding":
			te++
		}
	})
	if host > 1 || (host == 0 && req.Proto == "HTTP/1.1") {
		return refuse(http.StatusBadRequest, "a request needs exactly one Host header")
	}
	if te > 0 {
		if ncl > 0 {
			return refuse(http.StatusBadRequest, "both Content-Length and Transfer-Encoding")
		}
		return refuse(http.StatusNotImplemented, "request Transfer-Encoding is not supported; send Content-Length")
	}
	n, ok := parseContentLength(ncl, cl)
	if !ok {
		return refuse(http.StatusBadRequest, "invalid Content-Length")
	}
	req.ContentLength = n
	return refusal{}
}

// headerTokens yields the trimmed, non-empty tokens of the lines of a
// comma-separated header.
func headerTokens(vals []string) iter.Seq[string] {
	return func(yield func(string) bool) {
		for _, v := range vals {
			for t := range strings.SplitSeq(v, ",") {
				if t = owsTrim(t); t != "" && !yield(t) {
					return
				}
			}
		}
	}
}

// strictBase64 decodes a Sec-WebSocket-Key (Strict makes a copy of the
// encoding each call).
var strictBase64 = base64.StdEncoding.Strict()

// maxSubprotocolList is the longest Sec-WebSocket-Protocol list (all lines
// joined with ',') libwebsockets (4.1 to main) reads: a longer one fails
// the handshake without a status, and so does a name of more than
// maxSubprotocolName bytes before the one it binds. The binding then
// makes the one it chose the list lws sees (protocolRewrite).
const (
	maxSubprotocolList = 126
	maxSubprotocolName = 63
)

// checkUpgrade checks a WebSocket upgrade request (RFC 6455 section 4.2.1)
// after checkFraming: a GET over HTTP/1.1 with one Upgrade line naming
// websocket, Connection listing upgrade, one Sec-WebSocket-Key that is 16
// bytes in base64, one Sec-WebSocket-Version of 13 (else 426 naming 13), no
// body, and, when subprotocols are asked for, one the listener accepts
// (libwebsockets would otherwise refuse without a status). protos are the
// listener's protocol names as registered: the binding's own first, then
// Listener.Subprotocols. It appends the request's Sec-WebSocket-Protocol
// and -Extensions lines to those of o, for the choices made after it.
func checkUpgrade(req *Request, protos []string, o upgradeOffers) (refusal, upgradeOffers) {
	if req.Method != http.MethodGet {
		return refuse(http.StatusBadRequest, "a WebSocket upgrade must be a GET"), o
	}
	if req.Proto != "HTTP/1.1" {
		return refuse(http.StatusBadRequest, "a WebSocket upgrade needs HTTP/1.1"), o
	}
	// One pass over the lines as read: the Header map is made only if
	// a handler asks for it.
	var nUp, nKey, nVer int
	var up, key, ver string
	conn := false
	req.eachHeader(func(k, v string) {
		switch k {
		case "Upgrade":
			nUp++
			up = v
		case "Connection":
			for t := range headerTokens([]string{v}) {
				conn = conn || strings.EqualFold(t, "upgrade")
			}
		case "Sec-Websocket-Key":
			nKey++
			key = v
		case "Sec-Websocket-Version":
			nVer++
			ver = v
		case "Sec-Websocket-Protocol":
			o.protocols = append(o.protocols, v)
		case "Sec-Websocket-Extensions":
			o.extensions = append(o.extensions, v)
		}
	})
	if nUp != 1 || !strings.EqualFold(owsTrim(up), "websocket") {
		return refuse(http.StatusBadRequest, "Upgrade must be one websocket"), o
	}
	if !conn {
		return refuse(http.StatusBadRequest, "Connection must list upgrade"), o
	}
	if nKey != 1 {
		return refuse(http.StatusBadRequest, "a WebSocket upgrade needs one Sec-WebSocket-Key"), o
	}
	if !validKey(owsTrim(key)) {
		return refuse(http.StatusBadRequest, "Sec-WebSocket-Key must be 16 bytes in base64"), o
	}
	if nVer != 1 || owsTrim(ver) != "13" {
		f := refuse(http.StatusUpgradeRequired, "Sec-WebSocket-Version must be 13")
		f.hdrs = []byte("sec-websocket-version\x0013\x00")
		return f, o
	}
	if req.ContentLength > 0 {
		return refuse(http.StatusBadRequest, "a WebSocket upgrade has no body"), o
	}
	if len(o.protocols) > 0 {
		if o.chosen, o.rewrite = chooseProtocol(o.protocols, protos); o.chosen == 0 {
			return refuse(http.StatusBadRequest, "none of the offered subprotocols is supported"), o
		}
	}
	return refusal{}, o
}

// upgradeOffers are the Sec-WebSocket-Protocol and -Extensions lines of an
// upgrade request, as read, and the subprotocol checkUpgrade chose from
// them (chooseProtocol's answer: an index in protos, 0 when none was
// offered, and whether libwebsockets cannot read the list as sent).
//
// Concurrency: a value.
type upgradeOffers struct {
	protocols, extensions []string
	chosen                int
	rewrite               bool
}

// validKey reports whether k is 16 bytes in strict base64, which is 24
// characters.
func validKey(k string) bool {
	if len(k) != 24 {
		return false
	}
	var in [24]byte
	var out [18]byte
	n, err := strictBase64.Decode(out[:], in[:copy(in[:], k)])
	return err == nil && n == 16
}

// chooseProtocol returns the index in protos of the name libwebsockets
// binds from an upgrade's Sec-WebSocket-Protocol lines: the first offered
// that names any of the listener's protocols, protos[0] (the binding's
// own, for HTTP) included, which must then be refused (0). rewrite says
// that lws cannot read the list as it is (maxSubprotocolList), so that the
// binding must make the chosen name the list lws sees.
func chooseProtocol(offered, protos []string) (chosen int, rewrite bool) {
	total := len(offered) - 1
	for _, v := range offered {
		total += len(v)
	}
	rewrite = total > maxSubprotocolList
	for t := range headerTokens(offered) {
		for i, p := range protos {
			if t == p {
				return i, rewrite
			}
		}
		rewrite = rewrite || len(t) > maxSubprotocolName
	}
	return 0, rewrite
}

// utf8Prefix reports how many leading bytes of b are whole, valid UTF-8
// characters, and whether b holds an invalid sequence, as opposed to one
// merely cut short at its end that more bytes could still complete. It lets
// a text message be checked chunk by chunk as it arrives, failing at the
// first chunk that cannot be valid.
func utf8Prefix(b []byte) (n int, bad bool) {
	if utf8.Valid(b) {
		return len(b), false
	}
	// Only the last character may be incomplete: find where it starts.
	i := len(b) - 1
	for i > 0 && i > len(b)-utf8.UTFMax && !utf8.RuneStart(b[i]) {
		i--
	}
	if i < 0 || utf8.FullRune(b[i:]) || !utf8.Valid(b[:i]) || !validRunePrefix(b[i:]) {
		return 0, true
	}
	return i, false
}

// validRunePrefix reports whether p, shorter than the character its first
// byte announces, can be completed into a valid UTF-8 character.
func validRunePrefix(p []byte) bool {
	need := 0
	switch c := p[0]; {
	case c >= 0xC2 && c <= 0xDF:
		need = 2
	case c >= 0xE0 && c <= 0xEF:
		need = 3
	case c >= 0xF0 && c <= 0xF4:
		need = 4
	default:
		return false
	}
	if len(p) >= need {
		return false
	}
	if len(p) == 1 {
		return true // every such first byte has completions
	}
	// The second byte is the only one whose range depends on the first;
	// once it is given, any continuation byte completes the rest.
	var buf [utf8.UTFMax]byte
	copy(buf[:], p)
	for k := len(p); k < need; k++ {
		buf[k] = 0x80
	}
	_, size := utf8.DecodeRune(buf[:need])
	return size == need
}

// checkClosePayload checks the payload of a close frame the peer sent (RFC
// 6455 sections 5.5.1 and 7.4): empty, or a 2-byte code that may be sent
// followed by a reason that is valid UTF-8 (checked when utf8 is true). On
// failure it returns the code to answer with: 1002, or 1007 for the reason.
func checkClosePayload(p []byte, checkUTF8 bool) (StatusCode, bool) {
	switch {
	case len(p) == 0:
		return 0, true
	case len(p) == 1:
		return StatusProtocolError, false
	case !StatusCode(int(p[0])<<8 | int(p[1])).Sendable():
		return StatusProtocolError, false
	case checkUTF8 && !utf8.Valid(p[2:]):
		return StatusInvalidPayloadData, false
	}
	return 0, true
}
