package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/lwsgate/lwsgate/lws"
	"github.com/lwsgate/lwsgate/lws/gateway/cluster"
)

// adminRoute is one route of the admin listener.
//
// Concurrency: a value.
type adminRoute struct {
	pattern string // an http.ServeMux pattern: "METHOD /path/{id}"
	open    bool   // served without admin.token (probes and metrics)
	handler http.Handler
}

// adminRoutes is the admin listener's API, the one table of what it
// serves; openapi.yaml documents each route and TestAdminContract checks
// that the two agree:
//
//	GET    /v1/api/links                     the link table (?type=tcplisten&user=U&channel=C&node=N)
//	GET    /v1/api/links/{id}                one link
//	POST   /v1/api/links/{id}/send           send the body (?type=binary; text by default)
//	POST   /v1/api/links/{id}/close          {"code":4000,"reason":"bye"} (default 1000)
//	DELETE /v1/api/links/{id}                close with 1000
//	GET    /v1/api/links/{id}/trace          its last callback reasons
//	POST   /v1/api/links/{id}/subscribe      {"channel":"room1"} (+ "since" on a history channel)
//	POST   /v1/api/links/{id}/unsubscribe    {"channel":"room1"}
//	POST   /v1/api/publish                   {"channel":"room1","data":"hi"} (or "data_base64")
//	GET    /v1/api/channels                  channels and member counts
//	GET    /v1/api/channels/{ch}/history     a history channel's stored messages (?since=&epoch=&limit=)
//	GET    /v1/api/routes                    the route table
//	GET    /v1/api/nodes                     the cluster's nodes
//	GET    /v1/api/openapi.yaml              the OpenAPI document of this API
//	GET    /v1/api/events                    the console's event stream (a WebSocket: events.go)
//	POST   /v1/api/events/ticket             a ticket for it, for a browser (console.go)
//	GET    /console, /console/{asset}        the console (console.go)
//	GET    /metrics, /healthz, /readyz
//
// An operation on a link that has closed answers 410 Gone, as AWS's
// @connections does; an ID never issued, 404. In a cluster, an operation
// on another node's link is served by that node, and listings are every
// node's (admin_cluster.go).
func (g *Gateway) adminRoutes() []adminRoute {
	api := func(pattern string, f http.HandlerFunc) adminRoute { return adminRoute{pattern, false, f} }
	open := func(pattern string, h http.Handler) adminRoute { return adminRoute{pattern, true, h} }
	return []adminRoute{
		api("GET /v1/api/links", g.apiLinks),
		api("GET /v1/api/links/{id}", g.byID(g.apiLink)),
		api("POST /v1/api/links/{id}/send", g.byID(g.apiSend)),
		api("POST /v1/api/links/{id}/close", g.byID(g.apiClose)),
		api("DELETE /v1/api/links/{id}", g.byID(g.apiClose)),
		api("GET /v1/api/links/{id}/trace", g.byID(g.apiTrace)),
		api("POST /v1/api/links/{id}/subscribe", g.byID(g.apiSubscribe)),
		api("POST /v1/api/links/{id}/unsubscribe", g.byID(g.apiChannel(g.Unsubscribe))),
		api("POST /v1/api/publish", g.apiPublish),
		api("GET /v1/api/channels", g.apiChannels),
		api("GET /v1/api/channels/{ch}/history", g.apiHistory),
		api("GET /v1/api/routes", g.apiRoutes),
		api("GET /v1/api/nodes", g.apiNodes),
		api("GET /v1/api/openapi.yaml", serveOpenAPI),
		api("GET /v1/api/events", g.apiEvents),
		api("POST /v1/api/events/ticket", g.apiTicket),
		open("GET /console", http.HandlerFunc(serveConsole)),
		open("GET /console/{asset}", http.HandlerFunc(serveConsole)),
		open("GET /metrics", promhttp.HandlerFor(g.metrics.reg, promhttp.HandlerOpts{})),
		open("GET /healthz", http.HandlerFunc(g.apiProbe)),
		open("GET /readyz", http.HandlerFunc(g.apiProbe)),
	}
}

// adminHandler serves adminRoutes. Any other request gets a JSON 405 with
// Allow when its path has routes for other methods, else a JSON 404.
func (g *Gateway) adminHandler() http.Handler {
	mux := http.NewServeMux()
	var methods []string
	for _, rt := range g.adminRoutes() {
		h := rt.handler
		if !rt.open {
			h = g.adminAuth(h)
		}
		mux.Handle(rt.pattern, h)
		if m, _, _ := strings.Cut(rt.pattern, " "); !slices.Contains(methods, m) {
			methods = append(methods, m)
		}
	}
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		var allow []string
		for _, m := range methods {
			probe := r.Clone(r.Context())
			probe.Method = m
			if _, p := mux.Handler(probe); p != "/" {
				allow = append(allow, m)
			}
		}
		if len(allow) > 0 {
			w.Header().Set("Allow", strings.Join(allow, ", "))
			writeJSON(w, 405, apiError{405, r.Method + " " + r.URL.Path + ": method not allowed (allowed: " + strings.Join(allow, ", ") + ")"})
			return
		}
		writeJSON(w, 404, apiError{404, "no route for " + r.Method + " " + r.URL.Path})
	})
	return mux
}

// writeJSON answers with v as JSON, and a newline (as json.Encoder
// writes it).
func writeJSON(w http.ResponseWriter, status int, v any) {
	status, body := marshalJSON(status, v)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(append(body, '\n'))
}

// adminChallenge is the WWW-Authenticate of the admin API's 401s.
const adminChallenge = `Bearer realm="lwsgate admin"`

func (g *Gateway) adminAuth(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if tok := g.cfg.Load().Admin.Token; tok != "" && !forwarded(r) { // a forwarded request passed its node's check
			if !bearerOK(r.Header, tok) {
				// RFC 9110, 11.6.1: a 401 names the scheme it wants.
				w.Header().Set("WWW-Authenticate", adminChallenge)
				writeJSON(w, 401, apiError{401, "admin token required (Authorization: Bearer)"})
				return
			}
		}
		h.ServeHTTP(w, r)
	})
}

// apiProbe serves /healthz and /readyz (g.probe).
func (g *Gateway) apiProbe(w http.ResponseWriter, r *http.Request) {
	status, body, _ := g.probe(r.URL.Path)
	writeJSON(w, status, body)
}

// goneError is the 410 answer: how the link ended, when the gateway
// still knows (the last closedKeep links to close); GET of the link adds
// its last snapshot, GET of its trace the end of its trace.
//
// Concurrency: a value.
type goneError struct {
	apiError
	Closed  *ClosedLink  `json:"closed,omitempty"`
	Link    *LinkInfo    `json:"link,omitempty"`
	Reasons []traceEntry `json:"reasons,omitempty"`
}

// goneDetail is what a 410 adds to how the link ended.
type goneDetail uint8

const (
	goneLink  goneDetail = 1 << iota // its last snapshot
	goneTrace                        // the end of its trace
)

// gone is the 410 answer for link id.
func (g *Gateway) gone(id uint64, more goneDetail) goneError {
	ans := goneError{apiError: apiError{410, "link is gone"}}
	if cl, last, tr, ok := g.closed.final(id); ok {
		ans.Closed = &cl
		if more&goneLink != 0 {
			ans.Link = last
		}
		if more&goneTrace != 0 {
			ans.Reasons = traceJSON(tr.Entries())
		}
	}
	return ans
}

func isGone(err error) bool {
	return errors.Is(err, ErrGone) || errors.Is(err, lws.ErrClosed) || errors.Is(err, lws.ErrLinkNotOpen)
}

// linkErr writes the answer for an operation's error on link id.
func (g *Gateway) linkErr(w http.ResponseWriter, id uint64, err error) {
	switch {
	case isGone(err):
		writeJSON(w, 410, g.gone(id, 0))
	case errors.Is(err, ErrUnknownLink):
		writeJSON(w, 404, apiError{404, "no such link"})
	case errors.Is(err, ErrNotWebSocket):
		writeJSON(w, 409, apiError{409, "not a WebSocket link"})
	case errors.Is(err, lws.ErrSendQueueFull):
		writeJSON(w, 429, apiError{429, "link send queue full: the link is being closed (slow consumer)"})
	default:
		writeJSON(w, 400, apiError{400, err.Error()})
	}
}

func pathID(w http.ResponseWriter, r *http.Request) (uint64, bool) {
	id, ok := parseID(r.PathValue("id"))
	if !ok {
		writeJSON(w, 400, apiError{400, "link id " + strconv.Quote(r.PathValue("id")) + ": want a positive integer"})
	}
	return id, ok
}

// apiLinks serves the link table: every link, or with limit a page of
// it (linkpage.go); X-Total-Count says how many match the filters and
// Link (RFC 8288) gives the next and previous pages.
func (g *Gateway) apiLinks(w http.ResponseWriter, r *http.Request) {
	q, err := ParseLinkQuery(r.URL.Query())
	if err == nil {
		var p LinkPage
		if g.multi {
			var ok bool
			if p, ok, err = g.clusterLinksPage(w, r, q); !ok {
				return // answered
			}
		} else {
			p, err = g.LinksPage(q)
		}
		if err == nil {
			var links []string
			for _, c := range [][2]string{{"next", p.Next}, {"prev", p.Prev}} {
				if c[1] != "" {
					v := r.URL.Query()
					v.Del("after")
					v.Del("before")
					v.Set(map[string]string{"next": "after", "prev": "before"}[c[0]], c[1])
					links = append(links, "<"+r.URL.Path+"?"+v.Encode()+`>; rel="`+c[0]+`"`)
				}
			}
			if len(links) > 0 {
				w.Header().Set("Link", strings.Join(links, ", "))
			}
			w.Header().Set("X-Total-Count", strconv.Itoa(p.Total))
			writeJSON(w, 200, p.Links)
			return
		}
	}
	writeJSON(w, 400, apiError{400, err.Error()})
}

var linkTypes = []string{TypeTCPListen, TypeHTTPListen, TypeTCPConnect, TypeHTTPConnect}

func (g *Gateway) apiLink(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(w, r)
	if !ok {
		return
	}
	in, err := g.Link(id)
	switch {
	case isGone(err):
		writeJSON(w, 410, g.gone(id, goneLink))
	case err != nil:
		g.linkErr(w, id, err)
	default:
		writeJSON(w, 200, in)
	}
}

func (g *Gateway) apiSend(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(w, r)
	if !ok {
		return
	}
	body, _ := io.ReadAll(r.Body)
	typ := lws.TextMessage
	switch r.URL.Query().Get("type") {
	case "", "text":
	case "binary":
		typ = lws.BinaryMessage
	default:
		writeJSON(w, 400, apiError{400, "type: want text or binary"})
		return
	}
	if err := g.Send(id, typ, body); err != nil {
		g.linkErr(w, id, err)
		return
	}
	writeJSON(w, 200, map[string]any{"queued": len(body)})
}

type closeRequest struct {
	Code   int    `json:"code"`
	Reason string `json:"reason"`
}

func (g *Gateway) apiClose(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(w, r)
	if !ok {
		return
	}
	req := closeRequest{Code: 1000}
	if r.ContentLength > 0 {
		if !decodeBody(w, r, &req) {
			return
		}
	}
	if !lws.StatusCode(req.Code).Sendable() {
		writeJSON(w, 400, apiError{400, "code " + strconv.Itoa(req.Code) + ": " + notSendable})
		return
	}
	if !validCloseReason(req.Reason) {
		writeJSON(w, 400, apiError{400, "reason: at most " + strconv.Itoa(lws.MaxCloseReason) + " bytes"})
		return
	}
	if err := g.CloseLink(id, lws.StatusCode(req.Code), req.Reason); err != nil {
		g.linkErr(w, id, err)
		return
	}
	writeJSON(w, 202, map[string]any{"closing": id, "code": req.Code})
}

func decodeBody(w http.ResponseWriter, r *http.Request, v any) bool {
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		writeJSON(w, 400, apiError{400, "body: " + err.Error()})
		return false
	}
	return true
}

// apiTrace serves a link's trace: 200 with its last callbacks while it
// is open; once it has closed, 410 with the end of its trace.
func (g *Gateway) apiTrace(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(w, r)
	if !ok {
		return
	}
	l, err := g.record(id)
	if err == nil && linkTrace(g.cfg.Load()) == 0 {
		writeJSON(w, 409, apiError{409, "link traces are off (log.link_trace is negative)"})
		return
	}
	var tr []lws.TraceEntry
	if err == nil {
		tr, err = l.w.ctx.LinkTrace(id & cluster.MaxLocal) // on its worker, which knows it by its number; lws.ErrLinkNotOpen: it has just closed
	}
	switch {
	case isGone(err):
		writeJSON(w, 410, g.gone(id, goneTrace))
	case err != nil:
		g.linkErr(w, id, err)
	default:
		writeJSON(w, 200, map[string]any{"link": id, "reasons": traceJSON(tr)})
	}
}

// traceEntry is a callback of a trace as the API shows it.
//
// Concurrency: a value.
type traceEntry struct {
	Time   string `json:"time"`
	Reason int    `json:"reason"`
	Name   string `json:"name"`
}

func traceJSON(tr []lws.TraceEntry) []traceEntry {
	out := make([]traceEntry, len(tr))
	for i, e := range tr {
		out[i] = traceEntry{e.Time.Format("2006-01-02T15:04:05.000000Z07:00"), e.Reason, e.Name}
	}
	return out
}

type channelRequest struct {
	Channel string `json:"channel"`
}

// apiChannel serves unsubscribe: op on the link and the body's channel.
func (g *Gateway) apiChannel(op func(id uint64, channel string) error) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		id, ok := pathID(w, r)
		if !ok {
			return
		}
		var req channelRequest
		if !decodeBody(w, r, &req) {
			return
		}
		if !validChannel(req.Channel) {
			writeJSON(w, 400, apiError{400, "channel: 1 to " + strconv.Itoa(maxChannel) + " bytes required"})
			return
		}
		if err := op(id, req.Channel); err != nil {
			g.linkErr(w, id, err)
			return
		}
		writeJSON(w, 200, map[string]any{"link": id, "channel": req.Channel})
	}
}

// subscribeRequest is the body of a link's subscribe by id: since, on a
// channel with a history, is the position to join at (as a link's own
// subscribe gives it).
//
// Concurrency: a value.
type subscribeRequest struct {
	Channel string    `json:"channel"`
	Since   *Position `json:"since"`
}

// membershipAt answers a subscribe by id that joined a history channel:
// as a link's own subscribe is answered (subscribedReply), the link
// named.
//
// Concurrency: a value.
type membershipAt struct {
	Link      uint64 `json:"link"`
	Channel   string `json:"channel"`
	Recovered bool   `json:"recovered"`
	Position
}

// apiSubscribe serves a link's subscribe by id. On a channel with a
// history the link joins as its own subscribe would join it (joinAt), at
// since if given: the link is sent the subscribed reply and what it
// missed, and the answer says whether that is all of it (recovered) and
// the position; since on a channel without a history is refused.
func (g *Gateway) apiSubscribe(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(w, r)
	if !ok {
		return
	}
	var req subscribeRequest
	if !decodeBody(w, r, &req) {
		return
	}
	ch := req.Channel
	if !validChannel(ch) {
		writeJSON(w, 400, apiError{400, "channel: 1 to " + strconv.Itoa(maxChannel) + " bytes required"})
		return
	}
	member := map[string]any{"link": id, "channel": ch}
	if !g.hasHistory(ch) {
		if req.Since != nil {
			writeJSON(w, 400, apiError{400, "since: channel " + strconv.Quote(ch) + " has no history (cluster.channels)"})
			return
		}
		if err := g.Subscribe(id, ch); err != nil {
			g.linkErr(w, id, err)
			return
		}
		writeJSON(w, 200, member)
		return
	}
	l, err := g.wsLink(id)
	if err != nil {
		g.linkErr(w, id, err)
		return
	}
	var since Position
	if req.Since != nil {
		since = *req.Since
	}
	ctx, cancel := context.WithTimeout(r.Context(), historyTimeout)
	defer cancel()
	var c cluster.Catchup
	err = errMember
	if !g.hub.isMember(l, ch) {
		c, err = g.joinAt(ctx, l, ch, since)
	}
	switch {
	case errors.Is(err, errMember) && req.Since == nil:
		writeJSON(w, 200, member) // as a plain subscribe: done already
	case errors.Is(err, errMember):
		writeJSON(w, 409, apiError{409, "link " + strconv.FormatUint(id, 10) + " is a member of " + strconv.Quote(ch) +
			" already: unsubscribe it first to join at a position"})
	case errors.Is(err, ErrGone): // closed meanwhile
		g.linkErr(w, id, err)
	case err != nil:
		g.log.Warn("subscribe at a position failed", "link", id, "channel", ch, "err", err)
		w.Header().Set("Retry-After", "1")
		writeJSON(w, 503, apiError{503, "subscribe " + strconv.Quote(ch) + " at a position: " + err.Error()})
	default:
		writeJSON(w, 200, membershipAt{Link: id, Channel: ch, Recovered: c.Recovered, Position: c.Position})
	}
}

type publishRequest struct {
	Channel        string `json:"channel"`
	Data           string `json:"data"`
	DataBase64     []byte `json:"data_base64"`
	IdempotencyKey string `json:"idempotency_key"`
}

func (g *Gateway) apiPublish(w http.ResponseWriter, r *http.Request) {
	var req publishRequest
	if !decodeBody(w, r, &req) {
		return
	}
	if req.Channel == "" {
		writeJSON(w, 400, apiError{400, "channel: required"})
		return
	}
	typ, data := lws.TextMessage, []byte(req.Data)
	if req.DataBase64 != nil {
		if req.Data != "" {
			writeJSON(w, 400, apiError{400, "data and data_base64: give one"})
			return
		}
		typ, data = lws.BinaryMessage, req.DataBase64
	}
	key, err := idempotencyKey(r, req.IdempotencyKey)
	if err != nil {
		writeJSON(w, 400, apiError{400, err.Error()})
		return
	}
	if g.hasHistory(req.Channel) {
		g.publishHistory(w, r, req.Channel, typ, data, key)
		return
	}
	writeJSON(w, 200, g.publishOnService(req.Channel, typ, data))
}
