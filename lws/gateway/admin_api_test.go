package gateway

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"regexp"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lwsgate/lwsgate/lws"
)

// TestAdminMethodNotAllowed: a path the admin API serves, asked with a
// method it does not serve there, answers 405 with Allow (RFC 9110,
// 15.5.6), not 404 as if the path did not exist.
func TestAdminMethodNotAllowed(t *testing.T) {
	g := startGW(t, "", nil)
	resp, body := g.rawAPI(t, "PUT", "/v1/api/links/7", "", "")
	assert.Equal(t, 405, resp.StatusCode, body)
	assert.Equal(t, "GET, DELETE", resp.Header.Get("Allow"))
	assert.JSONEq(t, `{"code":405,"error":"PUT /v1/api/links/7: method not allowed (allowed: GET, DELETE)"}`, body)
	resp, _ = g.rawAPI(t, "GET", "/v1/api/publish", "", "")
	assert.Equal(t, 405, resp.StatusCode)
	assert.Equal(t, "POST", resp.Header.Get("Allow"))
	resp, body = g.rawAPI(t, "GET", "/v1/api/nothing", "", "")
	assert.Equal(t, 404, resp.StatusCode, body)
	assert.Empty(t, resp.Header.Get("Allow"))
}

// TestAdminChallenge: a request without the admin token gets 401 with
// WWW-Authenticate naming the Bearer scheme (RFC 9110, 11.6.1: a 401
// must carry it); with the token, none.
func TestAdminChallenge(t *testing.T) {
	g := startGW(t, "admin:\n  addr: 127.0.0.1:0\n  token: s3cret\n", nil)
	for _, tok := range []string{"", "wrong"} {
		resp, body := g.rawAPI(t, "GET", "/v1/api/links", tok, "")
		assert.Equal(t, 401, resp.StatusCode, body)
		assert.Equal(t, `Bearer realm="lwsgate admin"`, resp.Header.Get("WWW-Authenticate"))
	}
	resp, _ := g.rawAPI(t, "GET", "/v1/api/links", "s3cret", "")
	assert.Equal(t, 200, resp.StatusCode)
	assert.Empty(t, resp.Header.Get("WWW-Authenticate"))
}

// TestAdminGoneSaysHow: the 410 for a link that has closed says with
// which code and reason, by which side and when, for a close by the
// admin API, by the client and by a lost connection.
func TestAdminGoneSaysHow(t *testing.T) {
	g := startGW(t, "", nil)
	gone := func(id uint64) (ans struct {
		Code   int
		Error  string
		Closed *ClosedLink
	}) {
		t.Helper()
		require.Eventually(t, func() bool { _, err := g.Link(id); return errors.Is(err, ErrGone) }, 10*time.Second, 5*time.Millisecond)
		resp, body := g.rawAPI(t, "GET", fmt.Sprintf("/v1/api/links/%d", id), "", "")
		require.Equal(t, 410, resp.StatusCode, body)
		require.NoError(t, json.Unmarshal([]byte(body), &ans))
		require.NotNil(t, ans.Closed, body)
		return ans
	}
	before := time.Now()

	ws := g.dial(t, "/", nil)
	id := linkID(t, ws)
	require.Equal(t, 202, g.api(t, "POST", fmt.Sprintf("/v1/api/links/%d/close", id), `{"code":4001,"reason":"kicked"}`, nil))
	closeCode(t, ws)
	ans := gone(id)
	assert.Equal(t, 410, ans.Code)
	assert.Equal(t, ClosedLink{Code: 4001, Reason: "kicked", By: "gateway", At: ans.Closed.At}, *ans.Closed)
	assert.WithinRange(t, ans.Closed.At, before, time.Now())

	ws = g.dial(t, "/", nil)
	id = linkID(t, ws)
	require.NoError(t, ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(4100, "bye"), time.Now().Add(time.Second)))
	closeCode(t, ws)
	ans = gone(id)
	assert.Equal(t, ClosedLink{Code: 4100, Reason: "bye", By: "peer", At: ans.Closed.At}, *ans.Closed)

	ws = g.dial(t, "/", nil)
	id = linkID(t, ws)
	ws.UnderlyingConn().(*net.TCPConn).SetLinger(0)
	ws.UnderlyingConn().Close() // RST, no close frame
	ans = gone(id)
	assert.Equal(t, 1006, ans.Closed.Code)
	assert.Equal(t, "peer", ans.Closed.By)

	// The other operations on it say the same.
	resp, body := g.rawAPI(t, "POST", fmt.Sprintf("/v1/api/links/%d/send", id), "", "late")
	assert.Equal(t, 410, resp.StatusCode)
	assert.Contains(t, body, `"closed":{"code":1006`)
}

// TestClosedLinksForgetsTheOldest: the record keeps the last closedKeep
// links and no more.
func TestClosedLinksForgetsTheOldest(t *testing.T) {
	c := newClosedLinks()
	for id := uint64(1); id <= closedKeep+10; id++ {
		c.add(id, lws.CloseError{Code: lws.StatusCode(1000 + id%7)}, time.Now(), nil)
	}
	_, ok := c.get(10)
	assert.False(t, ok, "the oldest are forgotten")
	cl, ok := c.get(11)
	assert.True(t, ok)
	assert.Equal(t, 1000+11%7, cl.Code)
	cl, ok = c.get(closedKeep + 10)
	assert.True(t, ok)
	assert.Equal(t, 1000+(closedKeep+10)%7, cl.Code)
	for id := uint64(11); id <= closedKeep+10; id++ {
		cl, ok := c.get(id)
		require.True(t, ok, "link %d", id)
		require.Equal(t, int(1000+id%7), cl.Code, "link %d", id)
	}
	_, ok = c.get(0)
	assert.False(t, ok, "0 is no link's ID (an empty slot's)")
}

// TestAdminTraceOff: with link traces off, a live link's trace is
// refused with 409 naming the setting, not a 400 naming lws's field as
// if the request were malformed.
func TestAdminTraceOff(t *testing.T) {
	g := startGW(t, "log: {link_trace: -1}\n", nil)
	id := linkID(t, g.dial(t, "/", nil))
	resp, body := g.rawAPI(t, "GET", fmt.Sprintf("/v1/api/links/%d/trace", id), "", "")
	assert.Equal(t, 409, resp.StatusCode)
	assert.JSONEq(t, `{"code":409,"error":"link traces are off (log.link_trace is negative)"}`, body)
}

// TestAdminNodes: without cluster mode the cluster is this node alone,
// named after the host, with its version, start time, workers and links.
func TestAdminNodes(t *testing.T) {
	before := time.Now()
	g := startGW(t, "workers: 2\n", &Options{Version: "v1.2.3"})
	g.dial(t, "/", nil)
	linkID(t, g.dial(t, "/", nil)) // both are in the table once this answers
	var nodes []NodeInfo
	require.Equal(t, 200, g.api(t, "GET", "/v1/api/nodes", "", &nodes))
	require.Len(t, nodes, 1)
	host, _ := os.Hostname()
	n := nodes[0]
	assert.Equal(t, NodeInfo{Name: host, Self: true, Ready: true, Started: n.Started, Version: "v1.2.3",
		Libwebsockets: lws.Version(), Workers: 2, WorkerList: []WorkerInfo{{ID: 0, Links: 1}, {ID: 1, Links: 1}}, Links: 2}, n)
	assert.WithinRange(t, n.Started, before, time.Now())
}

// TestAdminLinksFilters: a listing filter with a value that can match
// nothing by construction (a link type that does not exist, a node not
// in the cluster) is refused with 400 naming it, not answered with an
// empty list that reads as "no such links"; the node's own name filters
// nothing out.
func TestAdminLinksFilters(t *testing.T) {
	g := startGW(t, "", nil)
	id := linkID(t, g.dial(t, "/", nil))
	resp, body := g.rawAPI(t, "GET", "/v1/api/links?type=tcplistne", "", "")
	assert.Equal(t, 400, resp.StatusCode)
	assert.JSONEq(t, `{"code":400,"error":"type \"tcplistne\": want one of tcplisten, httplisten, tcpconnect, httpconnect"}`, body)
	resp, body = g.rawAPI(t, "GET", "/v1/api/links?node=elsewhere", "", "")
	assert.Equal(t, 400, resp.StatusCode)
	assert.Contains(t, body, `node \"elsewhere\": not a node of this cluster`)
	var links []LinkInfo
	require.Equal(t, 200, g.api(t, "GET", "/v1/api/links?type=tcplisten&node="+g.self.name, "", &links))
	require.Len(t, links, 1)
	assert.Equal(t, id, links[0].ID)
}

// TestAdminClosedTrace: a link that has closed keeps the end of its
// trace and its last snapshot: GET of its trace answers 410 with the
// callbacks up to WSI_DESTROY (the echo's write, the close sequence),
// which a live link's trace never shows, and GET of the link 410 with
// its final counters.
func TestAdminClosedTrace(t *testing.T) {
	g := startGW(t, "", nil)
	ws := g.dial(t, "/", nil)
	id := linkID(t, ws)
	send(t, ws, "hello")
	require.Equal(t, "hello", read(t, ws))
	require.Equal(t, 202, g.api(t, "POST", fmt.Sprintf("/v1/api/links/%d/close", id), `{"code":4001,"reason":"kicked"}`, nil))
	code, _ := closeCode(t, ws)
	require.Equal(t, 4001, code)
	require.Eventually(t, func() bool { _, err := g.Link(id); return errors.Is(err, ErrGone) }, 10*time.Second, 5*time.Millisecond)

	var ans struct {
		Closed  *ClosedLink
		Link    *LinkInfo
		Reasons []struct{ Name string }
	}
	resp, body := g.rawAPI(t, "GET", fmt.Sprintf("/v1/api/links/%d/trace", id), "", "")
	require.Equal(t, 410, resp.StatusCode, body)
	require.NoError(t, json.Unmarshal([]byte(body), &ans))
	require.NotNil(t, ans.Closed, body)
	assert.Equal(t, 4001, ans.Closed.Code)
	assert.Nil(t, ans.Link, "the trace's 410 carries the trace, not the link")
	var names []string
	for _, r := range ans.Reasons {
		names = append(names, r.Name)
	}
	require.NotEmpty(t, names, body)
	assert.Equal(t, "LWS_CALLBACK_WSI_DESTROY", names[len(names)-1], "%v", names)
	assert.Contains(t, names, "LWS_CALLBACK_SERVER_WRITEABLE")
	assert.Contains(t, names, "LWS_CALLBACK_CLOSED")

	ans.Reasons, ans.Closed = nil, nil
	resp, body = g.rawAPI(t, "GET", fmt.Sprintf("/v1/api/links/%d", id), "", "")
	require.Equal(t, 410, resp.StatusCode, body)
	require.NoError(t, json.Unmarshal([]byte(body), &ans))
	require.NotNil(t, ans.Link, body)
	assert.Equal(t, id, ans.Link.ID)
	assert.Equal(t, int64(2), ans.Link.MessagesIn, "info and hello")
	assert.Equal(t, int64(len("hello")+len(`{"action":"info"}`)), ans.Link.BytesIn)
	assert.Empty(t, ans.Reasons, "the link's 410 carries the link, not the trace")
	assert.NotEmpty(t, ans.Link.Node)
}

// TestAdminLinksPaging: GET /v1/api/links with limit answers a page,
// X-Total-Count the links that match, and Link the next and previous
// pages, which a client follows as given.
func TestAdminLinksPaging(t *testing.T) {
	g := startGW(t, "", nil)
	var ids []uint64
	for range 3 {
		ids = append(ids, linkID(t, g.dial(t, "/", nil)))
	}
	next := regexp.MustCompile(`<([^>]+)>; rel="next"`)
	prev := regexp.MustCompile(`<([^>]+)>; rel="prev"`)
	get := func(path string) (got []uint64, link string) {
		t.Helper()
		resp, body := g.rawAPI(t, "GET", path, "", "")
		require.Equal(t, 200, resp.StatusCode, body)
		assert.Equal(t, "3", resp.Header.Get("X-Total-Count"))
		var links []LinkInfo
		require.NoError(t, json.Unmarshal([]byte(body), &links))
		for _, l := range links {
			got = append(got, l.ID)
		}
		return got, resp.Header.Get("Link")
	}
	got, link := get("/v1/api/links?type=tcplisten&order=desc&limit=2")
	assert.Equal(t, []uint64{ids[2], ids[1]}, got)
	assert.False(t, prev.MatchString(link), link)
	m := next.FindStringSubmatch(link)
	require.NotNil(t, m, link)
	assert.Contains(t, m[1], "type=tcplisten")
	got, link = get(m[1])
	assert.Equal(t, []uint64{ids[0]}, got)
	assert.False(t, next.MatchString(link), link)
	m = prev.FindStringSubmatch(link)
	require.NotNil(t, m, link)
	got, _ = get(m[1])
	assert.Equal(t, []uint64{ids[2], ids[1]}, got)
}
