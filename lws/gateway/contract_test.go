package gateway

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"
	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lwsgate/lwsgate/lws"
)

// The admin API's contract is openapi.yaml. kin-openapi (getkin) reads
// it: an OpenAPI 3.1 loader and validator whose JSON Schema 2020-12
// checks are santhosh-tekuri/jsonschema's, so the test validates with
// what other tools read, not with a schema checker of our own.

// loadOpenAPI parses and validates the embedded document.
func loadOpenAPI(t *testing.T) *openapi3.T {
	t.Helper()
	// The console's files are text, as text/plain is.
	for _, ct := range []string{"text/html", "text/javascript", "text/css", "image/svg+xml"} {
		openapi3filter.RegisterBodyDecoder(ct, openapi3filter.PlainBodyDecoder)
	}
	doc, err := openapi3.NewLoader().LoadFromData(openAPI)
	require.NoError(t, err)
	require.NoError(t, doc.Validate(context.Background()), "openapi.yaml is not a valid OpenAPI document")
	require.True(t, doc.IsOpenAPI31OrLater())
	return doc
}

// documentedOps is every operation of doc, as "METHOD /path".
func documentedOps(doc *openapi3.T) []string {
	var ops []string
	for path, item := range doc.Paths.Map() {
		for method := range item.Operations() {
			ops = append(ops, method+" "+path)
		}
	}
	slices.Sort(ops)
	return ops
}

// TestAdminRoutesAreDocumented: the admin listener serves exactly the
// operations openapi.yaml documents (adminRoutes is the one table of what
// it serves), with the token required where the document requires it.
func TestAdminRoutesAreDocumented(t *testing.T) {
	doc := loadOpenAPI(t)
	g := startGW(t, "", nil)
	var served []string
	for _, rt := range g.adminRoutes() {
		served = append(served, rt.pattern)
		method, path, _ := strings.Cut(rt.pattern, " ")
		item := doc.Paths.Find(path)
		if item == nil || item.GetOperation(method) == nil {
			continue // reported below
		}
		op := item.GetOperation(method)
		sec := doc.Security
		if op.Security != nil {
			sec = *op.Security
		}
		assert.Equal(t, rt.open, len(sec) == 0, "%s: served without a token, or documented so; not both", rt.pattern)
	}
	slices.Sort(served)
	assert.Equal(t, documentedOps(doc), served, "documented operations (expected) against served routes (actual)")
}

// contract drives a running gateway through openapi.yaml: each call is
// validated against the document, request and answer, and the statuses
// each operation answered are counted.
type contract struct {
	t      *testing.T
	doc    *openapi3.T
	router routers.Router
	token  string
	seen   map[string]map[int]bool // "METHOD /path" -> statuses answered
}

// call is one request and the status it must get.
type call struct {
	g            *testGW
	method, path string
	body, ctype  string
	noToken      bool
	// invalid: the document itself says the request is wrong (the
	// server's 400 or 401 is then the document's word too). Every other
	// request must be valid by it.
	invalid bool
	want    int
}

func (c *contract) do(k call) []byte {
	t := c.t
	t.Helper()
	name := fmt.Sprintf("%s %s %q", k.method, k.path, k.body)
	req, err := http.NewRequest(k.method, "http://"+k.g.admin+k.path, strings.NewReader(k.body))
	require.NoError(t, err)
	if k.body != "" {
		ctype := "application/json"
		if strings.Contains(k.path, "/send") {
			ctype = "text/plain"
		}
		req.Header.Set("Content-Type", cmp.Or(k.ctype, ctype))
	}
	if !k.noToken {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}

	route, params, err := c.router.FindRoute(req)
	require.NoError(t, err, "%s: not in the document", name)
	in := &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route,
		Options: &openapi3filter.Options{AuthenticationFunc: func(_ context.Context, a *openapi3filter.AuthenticationInput) error {
			if a.RequestValidationInput.Request.Header.Get("Authorization") != "Bearer "+c.token {
				return errors.New("no admin token")
			}
			return nil
		}}}
	verr := openapi3filter.ValidateRequest(context.Background(), in)
	if k.invalid {
		require.Error(t, verr, "%s: the document should call this request invalid", name)
	} else {
		require.NoError(t, verr, "%s: the document calls this request invalid", name)
	}
	req.Body = http.NoBody // validation read it
	if k.body != "" {
		req.Body = io.NopCloser(strings.NewReader(k.body))
	}

	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.NoError(t, err)
	require.Equal(t, k.want, resp.StatusCode, "%s: %s", name, body)

	out := &openapi3filter.ResponseValidationInput{RequestValidationInput: in, Status: resp.StatusCode, Header: resp.Header,
		Body: io.NopCloser(bytes.NewReader(body)), Options: &openapi3filter.Options{IncludeResponseStatus: true}}
	require.NoError(t, openapi3filter.ValidateResponse(context.Background(), out), "%s: the answer is not what the document says", name)

	op := route.Method + " " + route.Path
	if c.seen[op] == nil {
		c.seen[op] = map[int]bool{}
	}
	c.seen[op][resp.StatusCode] = true
	return body
}

// TestAdminContract: every operation of openapi.yaml, against a running
// gateway, answers each status the document gives it, in the shape the
// document gives (bodies and headers validated against its schemas), for
// requests the document calls valid; requests it calls invalid get the
// 400 or 401 it promises. A path served for other methods answers 405
// with Allow naming exactly the documented ones, and a path not
// documented answers 404, both as the document's Error.
func TestAdminContract(t *testing.T) {
	doc := loadOpenAPI(t)
	const token = "contract-token"
	backend := wsBackend(t, "up:")
	g := startGW(t, `
admin: {addr: 127.0.0.1:0, token: `+token+`}
shutdown: {drain: 100ms, deadline: 1s} # its clients do not read: do not wait for them
listeners:
  - addr: 127.0.0.1:0
    limits: {max_send_queue: 64KiB}
backends:
  - {name: up, url: "`+backend+`/"}
rules:
  - {match: {path: /relay}, action: relay, backend: up}
  - {match: {field: action, value: info}, action: info}
  - {action: echo}
`, &Options{Version: "v0.0.0-contract"})
	// off: link traces off, and drained at the end for /readyz's 503.
	off := startGW(t, `
admin: {addr: 127.0.0.1:0, token: `+token+`}
log: {link_trace: -1}
shutdown: {drain: 4s, deadline: 6s}
`, nil)

	// cut: a node of a cluster (one embedded NATS node) whose engine
	// has stopped, as when it is cut off: it can neither reach another
	// node's link nor list the cluster.
	cut := startGW(t, `
admin: {addr: 127.0.0.1:0, token: `+token+`}
tokens: {secret: contract-secret}
cluster: {engine: nats, name: contract, node: cut, nats: {embedded: {store_dir: "`+t.TempDir()+`"}},
  channels: [{match: "h:*", history: {size: 10}}]}
`, nil)
	require.NoError(t, cut.eng.Close(context.Background()))
	// hist: a single node with channel history.
	hist := startGW(t, `
admin: {addr: 127.0.0.1:0, token: `+token+`}
tokens: {secret: contract-secret}
cluster: {engine: nats, name: hist, node: hist, nats: {embedded: {store_dir: "`+t.TempDir()+`"}},
  channels: [{match: "h:*", history: {size: 10}}]}
`, nil)

	doc.Servers = openapi3.Servers{{URL: "http://" + g.admin}, {URL: "http://" + off.admin}, {URL: "http://" + cut.admin}, {URL: "http://" + hist.admin}}
	router, err := gorillamux.NewRouter(doc)
	require.NoError(t, err)
	c := &contract{t: t, doc: doc, router: router, token: token, seen: map[string]map[int]bool{}}

	// The links: one live WebSocket link, one relayed to the backend (a
	// tcpconnect link and routes), an HTTP keep-alive connection, one
	// that has closed, one whose queue will overflow, an id never issued.
	ws := g.dial(t, "/", nil)
	live := linkID(t, ws)
	relayed := g.dial(t, "/relay", nil)
	send(t, relayed, "x")
	require.Equal(t, "up:x", read(t, relayed))
	hc, err := net.Dial("tcp", g.pub)
	require.NoError(t, err)
	t.Cleanup(func() { hc.Close() })
	_, err = hc.Write([]byte("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"))
	require.NoError(t, err)
	_, err = hc.Read(make([]byte, 1024))
	require.NoError(t, err)
	httpLink := g.links.list(func(l *LinkRecord) bool { return l.Type == TypeHTTPListen })[0].ID
	closing := linkID(t, g.dial(t, "/", nil))
	deleting := linkID(t, g.dial(t, "/", nil))
	full := linkID(t, g.dial(t, "/", nil))
	goneWS := g.dial(t, "/", nil)
	gone := linkID(t, goneWS)
	require.NoError(t, goneWS.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(4100, "bye"), time.Now().Add(time.Second)))
	closeCode(t, goneWS)
	require.Eventually(t, func() bool { _, err := g.Link(gone); return errors.Is(err, ErrGone) }, 10*time.Second, 5*time.Millisecond)
	const never = 1 << 40
	offWS := off.dial(t, "/", nil)
	offLink := linkID(t, offWS)

	histLink := linkID(t, hist.dial(t, "/", nil))
	stored := make(chan Position, 1)
	hist.PublishAsync("h:3", lws.TextMessage, []byte("before"), "", func(p Position, err error) {
		assert.NoError(t, err)
		stored <- p
	})
	histAt := <-stored

	L := func(id uint64, rest string) string { return fmt.Sprintf("/v1/api/links/%d%s", id, rest) }
	ok := func(method, path, body string, want int) call {
		return call{g: g, method: method, path: path, body: body, want: want}
	}
	bad := func(method, path, body string, want int) call {
		return call{g: g, method: method, path: path, body: body, want: want, invalid: true}
	}
	noToken := func(method, path string) call {
		return call{g: g, method: method, path: path, noToken: true, invalid: true, want: 401}
	}
	perLink := func(method, rest, body string) []call { // 400 401 404 410 for an operation on one link
		return []call{
			bad(method, "/v1/api/links/abc"+rest, body, 400),
			bad(method, "/v1/api/links/0"+rest, body, 400),
			noToken(method, L(live, rest)),
			ok(method, L(never, rest), body, 404),
			ok(method, L(gone, rest), body, 410),
			{g: cut, method: method, path: L(never, rest), body: body, want: 503},
		}
	}
	page, err := g.LinksPage(LinkQuery{Limit: 1})
	require.NoError(t, err)
	require.NotEmpty(t, page.Next)
	calls := []call{
		ok("GET", "/v1/api/links", "", 200),
		ok("GET", "/v1/api/links?limit=1", "", 200),
		ok("GET", "/v1/api/links?limit=1&after="+page.Next, "", 200),
		ok("GET", "/v1/api/links?limit=2&sort=bytes_in&order=desc&type=tcplisten", "", 200),
		bad("GET", "/v1/api/links?limit=0", "", 400),
		bad("GET", "/v1/api/links?sort=age", "", 400),
		ok("GET", "/v1/api/links?limit=1&sort=user&after="+page.Next, "", 400), // a cursor of another sort
		ok("GET", "/v1/api/links?after="+page.Next, "", 400),                   // a cursor needs a limit
		ok("GET", "/v1/api/links?type=tcpconnect", "", 200),
		ok("GET", "/v1/api/links?type=tcplisten&user=nobody&channel=room&node="+g.self.name, "", 200),
		bad("GET", "/v1/api/links?type=tcplistne", "", 400),
		ok("GET", "/v1/api/links?node=elsewhere", "", 400), // which nodes exist is not the document's to say
		noToken("GET", "/v1/api/links"),

		ok("GET", L(live, ""), "", 200),
		ok("GET", L(httpLink, ""), "", 200),

		ok("POST", L(live, "/send"), "pushed", 200),
		{g: g, method: "POST", path: L(live, "/send?type=binary"), body: "\x00\x01", ctype: "application/octet-stream", want: 200},
		bad("POST", L(live, "/send?type=bogus"), "x", 400),
		ok("POST", L(httpLink, "/send"), "x", 409),
		ok("POST", L(full, "/send"), strings.Repeat("f", 65<<10), 429),

		ok("POST", L(live, "/subscribe"), `{"channel":"room"}`, 200),
		bad("POST", L(live, "/subscribe"), `{}`, 400),
		bad("POST", L(live, "/subscribe"), `{"channel":""}`, 400),
		ok("POST", L(httpLink, "/subscribe"), `{"channel":"room"}`, 409),
		ok("POST", L(live, "/unsubscribe"), `{"channel":"nothing"}`, 200),
		bad("POST", L(live, "/unsubscribe"), `{"channel":"room","x":1}`, 400),
		ok("POST", L(httpLink, "/unsubscribe"), `{"channel":"room"}`, 409),

		ok("POST", "/v1/api/publish", `{"channel":"room","data":"hi"}`, 200),
		ok("POST", "/v1/api/publish", `{"channel":"room","data_base64":"AAE="}`, 200),
		bad("POST", "/v1/api/publish", `{"data":"x"}`, 400),
		bad("POST", "/v1/api/publish", `{"channel":"x","bogus":1}`, 400),
		bad("POST", "/v1/api/publish", `{"channel":"x","data":"a","data_base64":"AAE="}`, 400),
		noToken("POST", "/v1/api/publish"),
		{g: hist, method: "POST", path: "/v1/api/publish", body: `{"channel":"h:1","data":"a","idempotency_key":"k"}`, want: 200},
		{g: hist, method: "POST", path: "/v1/api/publish", body: `{"channel":"h:1","data_base64":"AAE="}`, want: 200},
		bad("POST", "/v1/api/publish", `{"channel":"x","idempotency_key":"`+strings.Repeat("k", 257)+`"}`, 400),
		{g: cut, method: "POST", path: "/v1/api/publish", body: `{"channel":"h:1","data":"a"}`, want: 503},

		{g: hist, method: "POST", path: L(histLink, "/subscribe"), body: `{"channel":"h:2"}`, want: 200},
		{g: hist, method: "POST", path: L(histLink, "/subscribe"), body: `{"channel":"h:3","since":{"offset":1,"epoch":"` + histAt.Epoch + `"}}`, want: 200},
		{g: hist, method: "POST", path: L(histLink, "/subscribe"), body: `{"channel":"h:3","since":{"offset":1,"epoch":"x"}}`, want: 409},
		{g: hist, method: "POST", path: L(histLink, "/subscribe"), body: `{"channel":"plain","since":{"offset":1,"epoch":"x"}}`, want: 400},
		{g: hist, method: "POST", path: L(histLink, "/subscribe"), body: `{"channel":"h:2","since":{"offset":"1"}}`, want: 400, invalid: true},
		{g: hist, method: "POST", path: L(histLink, "/unsubscribe"), body: `{"channel":"h:2","since":{"offset":1}}`, want: 400, invalid: true},
		{g: hist, method: "GET", path: "/v1/api/channels/h:1/history", want: 200},
		{g: hist, method: "GET", path: "/v1/api/channels/h:1/history?since=1&epoch=x&limit=1", want: 200},
		{g: hist, method: "GET", path: "/v1/api/channels/plain/history", want: 404},
		ok("GET", "/v1/api/channels/h:1/history", "", 404), // the memory engine keeps no history
		bad("GET", "/v1/api/channels/h:1/history?limit=0", "", 400),
		bad("GET", "/v1/api/channels/h:1/history?since=-1", "", 400),
		noToken("GET", "/v1/api/channels/h:1/history"),
		{g: cut, method: "GET", path: "/v1/api/channels/h:1/history", want: 503},

		ok("GET", "/v1/api/channels", "", 200),
		noToken("GET", "/v1/api/channels"),
		ok("GET", "/v1/api/routes", "", 200),
		noToken("GET", "/v1/api/routes"),
		ok("GET", "/v1/api/nodes", "", 200),
		noToken("GET", "/v1/api/nodes"),
		ok("GET", "/v1/api/openapi.yaml", "", 200),
		noToken("GET", "/v1/api/openapi.yaml"),
		ok("GET", "/metrics", "", 200),
		ok("GET", "/healthz", "", 200),
		ok("GET", "/readyz", "", 200),

		ok("GET", "/console", "", 200),
		ok("GET", "/console/app.js", "", 200),
		ok("GET", "/console/app.css", "", 200),
		ok("GET", "/console/icon.svg", "", 200),
		ok("GET", "/console/nothing.js", "", 404),
		ok("GET", "/v1/api/events", "", 426),
		noToken("GET", "/v1/api/events"),
		ok("POST", "/v1/api/events/ticket", "", 200),
		noToken("POST", "/v1/api/events/ticket"),

		ok("GET", L(live, "/trace"), "", 200),
		{g: off, method: "GET", path: L(offLink, "/trace"), want: 409},

		ok("POST", L(closing, "/close"), `{"code":4001,"reason":"kicked"}`, 202),
		bad("POST", L(live, "/close"), `{"code":1005}`, 400),
		bad("POST", L(live, "/close"), `{"code":`, 400),
		bad("POST", L(live, "/close"), `{"reason":"`+strings.Repeat("r", 124)+`"}`, 400),
		ok("POST", L(httpLink, "/close"), `{"code":1000}`, 409),
		ok("DELETE", L(deleting, ""), "", 202),
		ok("DELETE", L(httpLink, ""), "", 409),
	}
	for _, op := range []struct{ method, rest, body string }{
		{"GET", "", ""}, {"DELETE", "", ""}, {"POST", "/send", "x"}, {"POST", "/close", ""},
		{"GET", "/trace", ""}, {"POST", "/subscribe", `{"channel":"c"}`}, {"POST", "/unsubscribe", `{"channel":"c"}`},
	} {
		calls = append(calls, perLink(op.method, op.rest, op.body)...)
	}
	for _, path := range []string{"/v1/api/links", "/v1/api/channels", "/v1/api/routes", "/v1/api/nodes"} {
		calls = append(calls, call{g: cut, method: "GET", path: path, want: 503})
	}
	for _, k := range calls {
		c.do(k)
	}
	c.upgrade(g, "/v1/api/events", token, eventsProtocol)
	for range maxTickets {
		_, err := off.console.tickets.issue(time.Now())
		require.NoError(t, err)
	}
	c.do(call{g: off, method: "POST", path: "/v1/api/events/ticket", want: 429})

	// The answers carried what the cases were set up for (a listing
	// that validates as an empty array proves little).
	var links, nodes, routes []map[string]any
	c.decode(ok("GET", "/v1/api/links", "", 200), &links)
	types := map[any]bool{}
	for _, l := range links {
		types[l["type"]] = true
	}
	assert.Equal(t, map[any]bool{"tcplisten": true, "tcpconnect": true, "httplisten": true}, types)
	c.decode(ok("GET", "/v1/api/routes", "", 200), &routes)
	assert.NotEmpty(t, routes)
	c.decode(ok("GET", "/v1/api/nodes", "", 200), &nodes)
	assert.Len(t, nodes, 1)
	var link map[string]any
	c.decode(ok("GET", L(live, ""), "", 200), &link)
	assert.Equal(t, []any{"room"}, link["channels"])
	var trace struct{ Reasons []map[string]any }
	c.decode(ok("GET", L(live, "/trace"), "", 200), &trace)
	assert.NotEmpty(t, trace.Reasons)
	var ans struct{ Closed map[string]any }
	c.decode(ok("GET", L(gone, ""), "", 410), &ans)
	assert.Equal(t, 4100.0, ans.Closed["code"], "410 says how it closed")
	assert.Equal(t, string(openAPI), string(c.do(ok("GET", "/v1/api/openapi.yaml", "", 200))))

	// Draining: /readyz answers 503 while links are closed over the
	// drain window.
	// Two links in its table: the second is closed half the drain
	// window (2 s) after the first, and the admin listener serves until
	// then.
	offWS2 := off.dial(t, "/", nil)
	linkID(t, offWS2)
	for _, ws := range []*websocket.Conn{offWS, offWS2} {
		go func() { // answers the drain's close
			for _, _, err := ws.ReadMessage(); err == nil; _, _, err = ws.ReadMessage() {
			}
		}()
	}
	done := make(chan error, 1)
	go func() { done <- off.Shutdown(context.Background()) }()
	require.Eventually(t, func() bool { return !off.Ready() }, 5*time.Second, time.Millisecond)
	c.do(call{g: off, method: "GET", path: "/readyz", want: 503})
	c.do(call{g: off, method: "GET", path: "/healthz", want: 200})
	require.NoError(t, <-done)

	// Every status of every operation was answered.
	for _, op := range documentedOps(doc) {
		method, path, _ := strings.Cut(op, " ")
		for status := range doc.Paths.Value(path).GetOperation(method).Responses.Map() {
			var code int
			_, err := fmt.Sscan(status, &code)
			require.NoError(t, err, "%s: response %q: give each status its own code", op, status)
			assert.True(t, c.seen[op][code], "%s: documented %d, never answered by the cases", op, code)
		}
	}

	// Other methods on a documented path: 405 with Allow naming the
	// documented ones; other paths: 404. Both in the Error shape.
	errSchema := doc.Components.Schemas["Error"].Value
	for path, item := range doc.Paths.Map() {
		concrete := strings.ReplaceAll(path, "{id}", fmt.Sprint(live))
		var allowed []string
		for m := range item.Operations() {
			allowed = append(allowed, m)
		}
		for _, m := range []string{"GET", "POST", "PUT", "PATCH", "DELETE"} {
			if slices.Contains(allowed, m) {
				continue
			}
			resp, body := g.rawAPI(t, m, concrete, token, "")
			require.Equal(t, 405, resp.StatusCode, "%s %s: %s", m, concrete, body)
			got := strings.Split(resp.Header.Get("Allow"), ", ")
			assert.ElementsMatch(t, allowed, got, "%s %s: Allow", m, concrete)
			c.validate(errSchema, body)
		}
	}
	for _, p := range []string{"/v1/api/nothing", "/v1/api/links/1/nothing", "/"} {
		resp, body := g.rawAPI(t, "GET", p, token, "")
		require.Equal(t, 404, resp.StatusCode, p)
		c.validate(errSchema, body)
	}
}

// upgrade opens a WebSocket at path: the request and the 101 are
// validated against the document as c.do validates an HTTP call.
func (c *contract) upgrade(g *testGW, path, token, proto string) {
	t := c.t
	t.Helper()
	req, err := http.NewRequest("GET", "http://"+g.admin+path, nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+token)
	route, params, err := c.router.FindRoute(req)
	require.NoError(t, err)
	in := &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route,
		Options: &openapi3filter.Options{AuthenticationFunc: func(context.Context, *openapi3filter.AuthenticationInput) error { return nil }}}
	require.NoError(t, openapi3filter.ValidateRequest(context.Background(), in))
	d := websocket.Dialer{HandshakeTimeout: 5 * time.Second, Subprotocols: []string{proto}}
	ws, resp, err := d.Dial("ws://"+g.admin+path, req.Header)
	require.NoError(t, err)
	ws.Close()
	out := &openapi3filter.ResponseValidationInput{RequestValidationInput: in, Status: resp.StatusCode, Header: resp.Header,
		Body: http.NoBody, Options: &openapi3filter.Options{IncludeResponseStatus: true}}
	require.NoError(t, openapi3filter.ValidateResponse(context.Background(), out), "the 101 is not what the document says")
	op := route.Method + " " + route.Path
	if c.seen[op] == nil {
		c.seen[op] = map[int]bool{}
	}
	c.seen[op][resp.StatusCode] = true
}

func (c *contract) decode(k call, v any) {
	c.t.Helper()
	require.NoError(c.t, json.Unmarshal(c.do(k), v))
}

// validate checks a JSON body against a schema of the document.
func (c *contract) validate(s *openapi3.Schema, body string) {
	c.t.Helper()
	var v any
	require.NoError(c.t, json.Unmarshal([]byte(body), &v))
	require.NoError(c.t, s.VisitJSON(v, openapi3.EnableJSONSchema2020()), body)
}
