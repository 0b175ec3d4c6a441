package gateway

import (
	"bytes"
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unsafe"

	"github.com/lwsgate/lwsgate/lws"
)

//go:embed demo.html
var demoPage []byte

// publicAPI serves the HTTP side (httplisten) of one public listener:
//
//	POST /v1/api/createtoken   {"UserName":"keda","RequestId":"1614738418531"} -> a token
//	GET  /v1/api/slow?ms=N     answers after N ms (the client-cancel scenario)
//	GET  /healthz, /readyz
//	GET  /                     the demo page (listeners[].demo)
//	PREFIX...                  forwarded to an http backend (listeners[].forward)
//
// ServeHTTP runs on the service goroutine; forwards run on their own.
type publicAPI struct {
	g    *Gateway
	name string
}

// createTokenRequest is the body of POST /v1/api/createtoken, as in the
// seed: {"UserName": "keda", "RequestId": "1614738418531"}.
type createTokenRequest struct {
	UserName  string `json:"UserName"`
	RequestID string `json:"RequestId"`
}

func (a *publicAPI) ServeHTTP(w *lws.ResponseWriter, r *lws.Request) {
	g := a.g
	g.waitStarted()
	lc := g.listenerCfg(a.name)
	if lc != nil {
		for _, f := range lc.Forward {
			if strings.HasPrefix(r.Path, f.Prefix) {
				b := g.backend(f.Backend)
				if b == nil || b.http == nil {
					a.reply(w, r, http.StatusBadGateway, apiError{http.StatusBadGateway, "backend " + f.Backend + " is not configured"})
					return
				}
				// The backend round trip must not block the service
				// goroutine: Respond is safe from any goroutine.
				go g.forwardHTTP(b, w, r, int64(lc.Limits.MaxBody))
				return
			}
		}
	}
	switch r.Path {
	case "/v1/api/createtoken":
		if r.Method != "POST" {
			w.Header().Set("Allow", "POST")
			a.reply(w, r, http.StatusMethodNotAllowed, apiError{http.StatusMethodNotAllowed, "use POST"})
			return
		}
		if !g.Ready() {
			a.reply(w, r, http.StatusServiceUnavailable, apiError{http.StatusServiceUnavailable, "draining"})
			return
		}
		a.createToken(w, r)
	case "/v1/api/slow":
		// A reply that takes a while (default 500 ms, at most 10 s): the
		// parity scenario where the client gives up first.
		ms, err := strconv.Atoi(r.Query().Get("ms"))
		if err != nil {
			ms = 500
		}
		ms = min(max(ms, 0), 10000)
		time.AfterFunc(time.Duration(ms)*time.Millisecond, func() {
			w.Header().Set("Content-Type", "text/plain")
			if err := w.Respond(http.StatusOK, []byte("slow\n")); err != nil && !errors.Is(err, lws.ErrClosed) {
				g.log.Warn("respond failed", "link", r.LinkID, "err", err)
			}
		})
	case "/healthz", "/readyz":
		status, body, _ := g.probe(r.Path)
		a.reply(w, r, status, body)
	case "/", "/index.html":
		if lc != nil && lc.Demo != nil && *lc.Demo && r.Method == "GET" {
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			w.Header().Set("Cache-Control", "no-cache")
			_ = w.Respond(http.StatusOK, demoPage)
			return
		}
		fallthrough
	default:
		a.reply(w, r, http.StatusNotFound, apiError{http.StatusNotFound, "no route for " + r.Path})
	}
}

func (a *publicAPI) createToken(w *lws.ResponseWriter, r *lws.Request) {
	req, err := decodeCreateToken(r.Body)
	if err != nil {
		a.reply(w, r, http.StatusBadRequest, apiError{http.StatusBadRequest, "body: " + err.Error()})
		return
	}
	if req.UserName == "" {
		a.reply(w, r, http.StatusBadRequest, apiError{http.StatusBadRequest, "body: UserName is required"})
		return
	}
	now := time.Now()
	w.SetHeader("Content-Type", "application/json")
	err = w.RespondAppend(http.StatusOK, 256+2*(len(req.UserName)+len(req.RequestID)), func(b []byte) []byte {
		return appendCreateToken(b, a.g.tokens, now, req)
	})
	a.replied(r, http.StatusOK, err)
}

// decodeCreateToken decodes a createtoken body as a json.Decoder with
// DisallowUnknownFields does. The common form, an object of the two
// fields with plain strings, is read by hand (a json.Decoder is about
// 1.4 us of the request); anything else, errors included, goes to the
// decoder. FuzzDecodeCreateToken holds the two to the same answers. The
// strings it returns may be b's bytes: b must not change while they are
// in use.
func decodeCreateToken(b []byte) (createTokenRequest, error) {
	if req, ok := quickCreateToken(b); ok {
		return req, nil
	}
	var req createTokenRequest
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	err := dec.Decode(&req)
	return req, err
}

// quickCreateToken reads {"UserName":"...","RequestId":"..."}, either field
// or both, once each, in either order, with whitespace between tokens and
// after the object, and values of printable ASCII without escapes. It
// reports false for anything else. The fields are b's bytes, not a copy.
func quickCreateToken(b []byte) (req createTokenRequest, ok bool) {
	i := skipJSONSpace(b, 0)
	if i >= len(b) || b[i] != '{' {
		return req, false
	}
	var user, id [2]int // a field's value is b[v[0]:v[1]]
	var seenUser, seenID bool
	for first := true; ; first = false {
		i = skipJSONSpace(b, i+1)
		if i >= len(b) {
			return req, false
		}
		if b[i] == '}' && first {
			break
		}
		key, j, ok := plainJSONString(b, i)
		if !ok {
			return req, false
		}
		i = skipJSONSpace(b, j)
		if i >= len(b) || b[i] != ':' {
			return req, false
		}
		k := skipJSONSpace(b, i+1)
		val, j, ok := plainJSONString(b, k)
		if !ok {
			return req, false
		}
		switch v := [2]int{k + 1, k + 1 + len(val)}; {
		case string(key) == "UserName" && !seenUser:
			user, seenUser = v, true
		case string(key) == "RequestId" && !seenID:
			id, seenID = v, true
		default:
			return req, false
		}
		i = skipJSONSpace(b, j)
		if i >= len(b) {
			return req, false
		}
		if b[i] == '}' {
			break
		}
		if b[i] != ',' {
			return req, false
		}
	}
	if skipJSONSpace(b, i+1) != len(b) {
		return req, false
	}
	if seenUser || seenID {
		// The fields alias b instead of copying it: package lws never
		// writes or reuses a request's body once the handler has it
		// (lws.Request.Body), and the gateway does not write it.
		all := unsafe.String(unsafe.SliceData(b), len(b))
		req.UserName, req.RequestID = all[user[0]:user[1]], all[id[0]:id[1]]
	}
	return req, true
}

func skipJSONSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// plainJSONString reads the JSON string at b[i] if it is printable ASCII
// without escapes, returning its bytes and the index after its closing
// quote.
func plainJSONString(b []byte, i int) ([]byte, int, bool) {
	if i >= len(b) || b[i] != '"' {
		return nil, i, false
	}
	for j := i + 1; j < len(b); j++ {
		switch c := b[j]; {
		case c == '"':
			return b[i+1 : j], j + 1, true
		case c < 0x20 || c >= 0x7f || c == '\\':
			return nil, j, false
		}
	}
	return nil, len(b), false
}

// appendCreateToken appends createtoken's answer for req at now,
// {"code":0,"RequestId":...,"UserName":...,"token":...,"expires_at":...}
// (RequestId only when given), as json.Marshal writes it but without the
// reflection (TestIssueMatchesGolangJWT and FuzzIssue compare the two),
// and with the token signed straight into b. createtoken is the gateway's
// hot HTTP path.
func appendCreateToken(b []byte, tk *tokens, now time.Time, req createTokenRequest) []byte {
	exp := tk.expiry(now)
	b = append(b, `{"code":0`...)
	if req.RequestID != "" {
		b = append(b, `,"RequestId":`...)
		b = appendJSONString(b, req.RequestID)
	}
	b = append(b, `,"UserName":`...)
	b = appendJSONString(b, req.UserName)
	b = append(b, `,"token":"`...)
	b = tk.appendToken(b, now, exp, req.UserName, req.RequestID)
	b = append(b, `","expires_at":`...)
	b = strconv.AppendInt(b, exp.Unix(), 10)
	return append(b, '}')
}

func (a *publicAPI) reply(w *lws.ResponseWriter, r *lws.Request, status int, v any) {
	status, body := marshalJSON(status, v)
	w.SetHeader("Content-Type", "application/json")
	a.replied(r, status, w.Respond(status, body))
}

// replied logs what became of an answer with status to r: err, Respond's.
func (a *publicAPI) replied(r *lws.Request, status int, err error) {
	if err != nil && !errors.Is(err, lws.ErrClosed) {
		a.g.log.Warn("respond failed", "link", r.LinkID, "err", err)
	}
	if a.g.log.Enabled(context.Background(), slog.LevelDebug) {
		a.g.log.Debug("http", "link", r.LinkID, "method", r.Method, "path", r.Path, "status", status)
	}
}
