package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/lwsgate/lwsgate/lws"
)

// linkTable tracks every live link, as the seed's AddLink/DelLink did: a
// link is added when it opens (ESTABLISHED for WebSocket, the first request
// for HTTP) and deleted when libwebsockets destroys it (WSI_DESTROY).
//
// Concurrency: safe from any goroutine; add and del run on the service
// goroutine.
type linkTable struct {
	mu    sync.Mutex
	links map[uint64]lws.Link
	log   *slog.Logger
}

func newLinkTable(log *slog.Logger) *linkTable {
	return &linkTable{links: map[uint64]lws.Link{}, log: log}
}

func (t *linkTable) add(l lws.Link) {
	t.mu.Lock()
	t.links[l.ID] = l
	n := len(t.links)
	t.mu.Unlock()
	t.log.Debug("link add", "link", l.ID, "type", linkType(l), "remote", addrString(l), "path", l.Path, "url", l.URL, "links", n)
}

func (t *linkTable) del(l lws.Link, ce lws.CloseError) {
	t.mu.Lock()
	delete(t.links, l.ID)
	n := len(t.links)
	t.mu.Unlock()
	t.log.Debug("link del", "link", l.ID, "type", linkType(l), "code", int(ce.Code), "reason", ce.Reason, "links", n)
}

// len returns the number of live links.
func (t *linkTable) len() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.links)
}

func addrString(l lws.Link) string {
	if l.Remote == nil {
		return ""
	}
	return l.Remote.String()
}

// router is the routing step every received message passes. This first
// version has two rules: a text message "/close CODE [REASON]" closes the
// link with that code (a server-initiated close, as the native reference
// does for the parity scenarios); everything else is echoed back on the
// link it came from.
type router struct {
	log *slog.Logger
}

func (r router) OnOpen(c *lws.Conn) {}

func (r router) OnMessage(c *lws.Conn, typ lws.MessageType, data []byte) {
	if typ == lws.TextMessage && bytes.HasPrefix(data, []byte("/close ")) {
		code, reason, err := parseCloseCommand(string(data))
		if err != nil {
			r.log.Warn("bad close command", "link", c.ID(), "err", err)
			_ = c.SendText("error: " + err.Error())
			return
		}
		_ = c.Close(code, reason)
		return
	}
	if err := c.Send(typ, data); err != nil {
		r.log.Warn("echo failed", "link", c.ID(), "err", err)
	}
}

// parseCloseCommand parses "/close CODE [REASON]".
func parseCloseCommand(s string) (lws.StatusCode, string, error) {
	rest := strings.TrimPrefix(s, "/close ")
	num, reason, _ := strings.Cut(rest, " ")
	code, err := strconv.Atoi(num)
	if err != nil || !lws.StatusCode(code).Sendable() {
		return 0, "", fmt.Errorf("/close %q: want a close code from 1000-4999 that may be sent", num)
	}
	if len(reason) > 123 {
		return 0, "", fmt.Errorf("/close: reason of %d bytes (at most 123)", len(reason))
	}
	return lws.StatusCode(code), reason, nil
}

func (r router) OnClose(c *lws.Conn, ce lws.CloseError) {}

// api serves the HTTP side of the gateway (httplisten).
type api struct {
	log      *slog.Logger
	secret   []byte
	ttl      time.Duration
	links    *linkTable
	routes   *routeTable
	forwards []*forwarder
}

// createTokenRequest is the body of POST /v1/api/createtoken, as in the
// seed: {"UserName": "keda", "RequestId": "1614738418531"}.
type createTokenRequest struct {
	UserName  string `json:"UserName"`
	RequestID string `json:"RequestId"`
}

type createTokenResponse struct {
	Code      int    `json:"code"`
	RequestID string `json:"RequestId,omitempty"`
	UserName  string `json:"UserName"`
	Token     string `json:"token"`
	ExpiresAt int64  `json:"expires_at"`
}

type errorResponse struct {
	Code  int    `json:"code"`
	Error string `json:"error"`
}

func (a *api) ServeHTTP(w *lws.ResponseWriter, r *lws.Request) {
	for _, f := range a.forwards {
		if strings.HasPrefix(r.Path, f.prefix) {
			// The backend round trip must not block the service
			// goroutine: Respond is safe from any goroutine.
			go f.forward(w, r)
			return
		}
	}
	switch r.Path {
	case "/v1/api/createtoken":
		if r.Method != "POST" {
			w.Header().Set("Allow", "POST")
			a.reply(w, r, http.StatusMethodNotAllowed, errorResponse{http.StatusMethodNotAllowed, "use POST"})
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
				a.log.Warn("respond failed", "link", r.LinkID, "err", err)
			}
		})
	case "/healthz":
		a.reply(w, r, http.StatusOK, map[string]any{"status": "ok", "links": a.links.len(), "routes": a.routes.len()})
	default:
		a.reply(w, r, http.StatusNotFound, errorResponse{http.StatusNotFound, "no route for " + r.Path})
	}
}

func (a *api) createToken(w *lws.ResponseWriter, r *lws.Request) {
	var req createTokenRequest
	dec := json.NewDecoder(bytesReader(r.Body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		a.reply(w, r, http.StatusBadRequest, errorResponse{http.StatusBadRequest, "body: " + err.Error()})
		return
	}
	if req.UserName == "" {
		a.reply(w, r, http.StatusBadRequest, errorResponse{http.StatusBadRequest, "body: UserName is required"})
		return
	}
	exp := time.Now().Add(a.ttl)
	tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{
		"sub": req.UserName,
		"iat": time.Now().Unix(),
		"exp": exp.Unix(),
		"rid": req.RequestID,
	}).SignedString(a.secret)
	if err != nil {
		a.reply(w, r, http.StatusInternalServerError, errorResponse{http.StatusInternalServerError, "signing failed"})
		return
	}
	a.reply(w, r, http.StatusOK, createTokenResponse{Code: 0, RequestID: req.RequestID, UserName: req.UserName, Token: tok, ExpiresAt: exp.Unix()})
}

func (a *api) reply(w *lws.ResponseWriter, r *lws.Request, status int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		status, body = http.StatusInternalServerError, []byte(`{"code":500,"error":"encoding failed"}`)
	}
	w.Header().Set("Content-Type", "application/json")
	if err := w.Respond(status, body); err != nil && !errors.Is(err, lws.ErrClosed) {
		a.log.Warn("respond failed", "link", r.LinkID, "err", err)
	}
	a.log.Debug("http", "link", r.LinkID, "method", r.Method, "path", r.Path, "status", status)
}

func bytesReader(b []byte) io.Reader { return bytes.NewReader(b) }
