package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strings"

	"github.com/lwsgate/lwsgate/lws/gateway/cluster"
)

// The admin API across a cluster. An operation on a link of another node
// is forwarded whole to its owner, found from the id alone (its
// incarnation), which serves it through its own admin handler: the
// answer is the owner's, byte for byte. The engine answers for an owner
// that cannot: 410 when its node is gone, 404 for an incarnation never
// issued, 503 when it is alive but did not answer. Listings ask every
// live node and merge the answers; the nodes that did not answer within
// cluster.survey_timeout are named in the Lwsgate-Partial header.

// The ops this node serves to the others (cluster.Engine.Handle).
const (
	opAdmin    = "admin"    // a forwarded admin request (fwdRequest)
	opLinks    = "links"    // a page of this node's links for a query string (LinkPage)
	opChannels = "channels" // this node's channels, with their users (channelPresence)
	opRoutes   = "routes"   // this node's route table
	opNode     = "node"     // this node's NodeInfo, in a list
)

// PartialHeader names, on a listing, the nodes that did not answer in
// time: "missing=n2,n3". Absent: every live node answered.
const PartialHeader = "Lwsgate-Partial"

// fwdRequest is an admin request forwarded to the owner of its link.
//
// Concurrency: a value.
type fwdRequest struct {
	Method string `json:"m"`
	URI    string `json:"u"` // path and query
	Body   []byte `json:"b,omitempty"`
}

// fwdResponse is the owner's answer to a fwdRequest.
//
// Concurrency: a value.
type fwdResponse struct {
	Status int               `json:"s"`
	Header map[string]string `json:"h,omitempty"`
	Body   []byte            `json:"b,omitempty"`
}

// fwdHeaders are the answer headers a forwarded request carries back.
var fwdHeaders = []string{"Content-Type", "Allow", "Retry-After", "WWW-Authenticate"}

// forwardedKey marks, in its context, a request another node forwarded:
// it was authenticated there, and is served here, never forwarded again.
//
// Concurrency: a value.
type forwardedKey struct{}

func forwarded(r *http.Request) bool { return r.Context().Value(forwardedKey{}) != nil }

// handleOps registers the ops the other nodes call.
func (g *Gateway) handleOps() {
	g.eng.Handle(opAdmin, g.serveForwarded)
	g.eng.Handle(opLinks, func(_ context.Context, body []byte) ([]byte, error) {
		v, err := url.ParseQuery(string(body))
		if err != nil {
			return nil, err
		}
		q, err := ParseLinkQuery(v)
		if err != nil {
			return nil, err
		}
		p, err := g.LinksPage(q)
		if err != nil {
			return nil, err
		}
		return json.Marshal(p)
	})
	g.eng.Handle(opChannels, func(context.Context, []byte) ([]byte, error) { return json.Marshal(g.hub.presence()) })
	g.eng.Handle(opRoutes, func(context.Context, []byte) ([]byte, error) { return json.Marshal(g.Routes()) })
	g.eng.Handle(opNode, func(context.Context, []byte) ([]byte, error) { return json.Marshal(g.Nodes()) })
}

// byID serves a route on one link (its {id}) here when the link is this
// node's, else forwards the request to its owner.
func (g *Gateway) byID(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		id, ok := parseID(r.PathValue("id"))
		if !g.multi || forwarded(r) || !ok || g.ownInc(id) {
			h(w, r)
			return
		}
		g.forward(w, r, id)
	}
}

// forward sends r to the node of link id and writes its answer.
func (g *Gateway) forward(w http.ResponseWriter, r *http.Request, id uint64) {
	inc, _, _ := cluster.SplitLinkID(id) // parseID's ids fit: a larger one answers 404 below
	body, err := io.ReadAll(r.Body)
	if err != nil {
		writeJSON(w, 400, apiError{400, "body: " + err.Error()})
		return
	}
	req, _ := json.Marshal(fwdRequest{Method: r.Method, URI: r.URL.RequestURI(), Body: body})
	var out []byte
	if id > cluster.MaxLinkID {
		err = &cluster.CallError{Op: opAdmin, Err: cluster.ErrNotIssued}
	} else {
		out, err = g.eng.Call(r.Context(), inc, opAdmin, req)
	}
	if err != nil {
		g.callErr(w, id, err)
		return
	}
	var resp fwdResponse
	if err := json.Unmarshal(out, &resp); err != nil || resp.Status < 100 || resp.Status > 599 {
		writeJSON(w, 502, apiError{502, "the link's node answered in an unknown format"})
		return
	}
	for k, v := range resp.Header {
		w.Header().Set(k, v)
	}
	w.WriteHeader(resp.Status)
	_, _ = w.Write(resp.Body)
}

// callErr answers for an owner that could not answer itself.
func (g *Gateway) callErr(w http.ResponseWriter, id uint64, err error) {
	switch {
	case errors.Is(err, cluster.ErrNotIssued):
		writeJSON(w, 404, apiError{404, "no such link"})
	case errors.Is(err, cluster.ErrGone):
		writeJSON(w, 410, goneError{apiError: apiError{410, "link is gone: its node has left the cluster"}})
	case errors.Is(err, cluster.ErrUnreachable):
		w.Header().Set("Retry-After", "1")
		writeJSON(w, 503, apiError{503, "the link's node did not answer (cut off, or lost and not yet known so)"})
	case errors.Is(err, cluster.ErrFenced), errors.Is(err, cluster.ErrClosed):
		w.Header().Set("Retry-After", "1")
		writeJSON(w, 503, apiError{503, "this node is cut off from the cluster: ask another"})
	default:
		g.log.Warn("cluster: forwarding an admin request failed", "link", id, "err", err)
		writeJSON(w, 502, apiError{502, "the link's node failed: " + err.Error()})
	}
}

// serveForwarded serves a request another node forwarded (opAdmin).
func (g *Gateway) serveForwarded(ctx context.Context, body []byte) ([]byte, error) {
	g.waitStarted()
	if g.ctx == nil {
		return nil, errors.New("the node is not running")
	}
	var req fwdRequest
	if err := json.Unmarshal(body, &req); err != nil {
		return nil, err
	}
	hr, err := http.NewRequestWithContext(context.WithValue(ctx, forwardedKey{}, true), req.Method, req.URI, bytes.NewReader(req.Body))
	if err != nil {
		return nil, err
	}
	rec := &answerRecorder{hdr: http.Header{}, status: 200}
	g.admin.ServeHTTP(rec, hr)
	resp := fwdResponse{Status: rec.status, Body: rec.body.Bytes(), Header: map[string]string{}}
	for _, k := range fwdHeaders {
		if v := rec.hdr.Get(k); v != "" {
			resp.Header[k] = v
		}
	}
	return json.Marshal(resp)
}

// answerRecorder is the http.ResponseWriter of a forwarded request.
//
// Concurrency: one handler's.
type answerRecorder struct {
	hdr    http.Header
	status int
	wrote  bool
	body   bytes.Buffer
}

func (a *answerRecorder) Header() http.Header { return a.hdr }

func (a *answerRecorder) WriteHeader(status int) {
	if !a.wrote {
		a.status, a.wrote = status, true
	}
}

func (a *answerRecorder) Write(p []byte) (int, error) {
	a.wrote = true
	return a.body.Write(p)
}

// survey asks every live node for op and marks the answer partial when
// some did not answer; ok is false when it answered itself (503).
func (g *Gateway) survey(w http.ResponseWriter, r *http.Request, op string, body []byte) (replies []cluster.Reply, ok bool) {
	res, err := g.eng.Survey(r.Context(), op, body)
	if err != nil {
		w.Header().Set("Retry-After", "1")
		writeJSON(w, 503, apiError{503, "this node is cut off from the cluster: ask another"})
		return nil, false
	}
	if res.Partial() {
		names := make([]string, len(res.Missing))
		for i, m := range res.Missing {
			names[i] = m.Name
			g.log.Info("cluster: a node did not answer a listing", "op", op, "node", m.Name, "err", m.Err)
		}
		w.Header().Set(PartialHeader, "missing="+strings.Join(names, ","))
	}
	return res.Replies, true
}

// gather surveys op, whose every node answers a JSON T, and returns each
// node's answer; ok is false when it answered itself (503).
func gather[T any](g *Gateway, w http.ResponseWriter, r *http.Request, op string, body []byte) (answers []nodeAnswer[T], ok bool) {
	replies, ok := g.survey(w, r, op, body)
	return decodeAnswers[T](g, op, replies), ok
}

// surveyed is gather for callers without an HTTP answer to write (the
// console's event stream): each node's answer, the nodes that did not
// answer, or an error when this node is cut off from the cluster.
func surveyed[T any](ctx context.Context, g *Gateway, op string) (answers []nodeAnswer[T], missing []string, err error) {
	res, err := g.eng.Survey(ctx, op, nil)
	if err != nil {
		return nil, nil, err
	}
	for _, m := range res.Missing {
		missing = append(missing, m.Name)
	}
	return decodeAnswers[T](g, op, res.Replies), missing, nil
}

// decodeAnswers reads each node's JSON T, leaving out (and logging) one
// that cannot be read.
func decodeAnswers[T any](g *Gateway, op string, replies []cluster.Reply) (answers []nodeAnswer[T]) {
	for _, rp := range replies {
		var v T
		if err := json.Unmarshal(rp.Body, &v); err != nil {
			g.log.Warn("cluster: a node's listing is unreadable", "op", op, "node", rp.Name, "err", err)
			continue
		}
		answers = append(answers, nodeAnswer[T]{rp.Node, v})
	}
	return answers
}

// nodeAnswer is one node's answer to a listing.
type nodeAnswer[T any] struct {
	node cluster.Node
	v    T
}

// clusterLinksPage is GET /v1/api/links in a cluster: each node reads
// the page from its own table, and the pages merge in the sort order
// (which is total: the key, then the id) into one of q.Limit rows, whose
// cursors every node can read. ok is false when it answered itself.
func (g *Gateway) clusterLinksPage(w http.ResponseWriter, r *http.Request, q LinkQuery) (p LinkPage, ok bool, err error) {
	if q.Node != "" && !slices.ContainsFunc(g.eng.Nodes(), func(n cluster.Node) bool { return n.Name == q.Node }) {
		return p, true, &QueryError{"node", q.Node, "not a live node of this cluster (see /v1/api/nodes)"}
	}
	if err := q.check(); err != nil {
		return p, true, err
	}
	v := r.URL.Query()
	v.Del("node")
	pages, ok := gather[LinkPage](g, w, r, opLinks, []byte(v.Encode()))
	if !ok {
		return p, false, nil
	}
	var rows []LinkInfo
	var anyNext, anyPrev bool
	for _, np := range pages {
		if q.Node != "" && np.node.Name != q.Node {
			continue
		}
		rows = append(rows, np.v.Links...)
		p.Total += np.v.Total
		anyNext, anyPrev = anyNext || np.v.Next != "", anyPrev || np.v.Prev != ""
	}
	dir := 1
	if q.Desc {
		dir = -1
	}
	slices.SortFunc(rows, func(a, b LinkInfo) int { return dir * infoKey(q.Sort, a).cmp(infoKey(q.Sort, b)) })
	var droppedHead, droppedTail bool
	if q.Limit > 0 && len(rows) > q.Limit {
		if q.Before != "" { // the rows just before the cursor
			rows, droppedHead = rows[len(rows)-q.Limit:], true
		} else {
			rows, droppedTail = rows[:q.Limit], true
		}
	}
	p.Links = rows
	if p.Links == nil {
		p.Links = []LinkInfo{}
	}
	if q.Limit > 0 && len(rows) > 0 {
		if anyNext || droppedTail {
			p.Next = encodeCursor(q.Sort, infoKey(q.Sort, rows[len(rows)-1]))
		}
		if anyPrev || droppedHead {
			p.Prev = encodeCursor(q.Sort, infoKey(q.Sort, rows[0]))
		}
	}
	return p, true, nil
}

// infoKey is a LinkInfo's place in sort order srt, as linkSorts gives
// it for the LinkRecord it was taken from.
func infoKey(srt string, in LinkInfo) pageKey {
	k := pageKey{id: in.ID}
	switch srt {
	case "type":
		k.s = in.Type
	case "listener":
		k.s = in.Listener
	case "user":
		k.s = in.User
	case "remote":
		k.s = in.Remote
	case "opened":
		k.n = in.Opened.UnixNano()
	case "last_activity":
		k.n = in.LastActivity.UnixNano()
	case "messages_in":
		k.n = in.MessagesIn
	case "messages_out":
		k.n = in.MessagesOut
	case "bytes_in":
		k.n = in.BytesIn
	case "bytes_out":
		k.n = in.BytesOut
	}
	return k
}

// apiChannels serves GET /v1/api/channels: in a cluster, the members of
// each channel summed over the nodes, and its users counted once.
func (g *Gateway) apiChannels(w http.ResponseWriter, r *http.Request) {
	if !g.multi {
		writeJSON(w, 200, g.Channels())
		return
	}
	lists, ok := gather[[]channelPresence](g, w, r, opChannels, nil)
	if !ok {
		return
	}
	writeJSON(w, 200, mergeChannels(lists))
}

// mergeChannels sums the nodes' channel listings: members added up,
// users counted once each across the cluster.
func mergeChannels(lists []nodeAnswer[[]channelPresence]) []ChannelInfo {
	members, users := map[string]int{}, map[string]map[string]bool{}
	for _, l := range lists {
		for _, c := range l.v {
			members[c.Name] += c.Members
			if users[c.Name] == nil {
				users[c.Name] = map[string]bool{}
			}
			for _, u := range c.Users {
				users[c.Name][u] = true
			}
		}
	}
	out := make([]ChannelInfo, 0, len(members))
	for name, n := range members {
		out = append(out, ChannelInfo{name, n, len(users[name])})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// apiRoutes serves GET /v1/api/routes: in a cluster, every node's.
func (g *Gateway) apiRoutes(w http.ResponseWriter, r *http.Request) {
	if !g.multi {
		writeJSON(w, 200, g.Routes())
		return
	}
	lists, ok := gather[[]Route](g, w, r, opRoutes, nil)
	if !ok {
		return
	}
	out := []Route{}
	for _, l := range lists {
		out = append(out, l.v...)
	}
	writeJSON(w, 200, out)
}

// apiNodes serves GET /v1/api/nodes: in a cluster, every live node that
// answered, by name.
func (g *Gateway) apiNodes(w http.ResponseWriter, r *http.Request) {
	if !g.multi {
		writeJSON(w, 200, g.Nodes())
		return
	}
	lists, ok := gather[[]NodeInfo](g, w, r, opNode, nil)
	if !ok {
		return
	}
	writeJSON(w, 200, mergeNodes(lists))
}

// mergeNodes lists the nodes that answered, by name.
func mergeNodes(lists []nodeAnswer[[]NodeInfo]) []NodeInfo {
	out := []NodeInfo{}
	for _, l := range lists {
		for _, n := range l.v {
			n.Self = l.node.Self
			out = append(out, n)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// clusterChannels is GET /v1/api/channels for the console's stream: the
// cluster's channels, and the nodes that did not answer (this node's
// without cluster mode).
func (g *Gateway) clusterChannels(ctx context.Context) ([]ChannelInfo, []string, error) {
	return clusterListing(ctx, g, opChannels, g.Channels, mergeChannels)
}

// clusterNodes is GET /v1/api/nodes for the console's stream.
func (g *Gateway) clusterNodes(ctx context.Context) ([]NodeInfo, []string, error) {
	return clusterListing(ctx, g, opNode, g.Nodes, mergeNodes)
}

// clusterListing surveys op and merges the nodes' answers, T each, into
// an R; without cluster mode it is local's.
func clusterListing[T, R any](ctx context.Context, g *Gateway, op string, local func() R, merge func([]nodeAnswer[T]) R) (R, []string, error) {
	if !g.multi {
		return local(), nil, nil
	}
	lists, missing, err := surveyed[T](ctx, g, op)
	if err != nil {
		var zero R
		return zero, nil, err
	}
	return merge(lists), missing, nil
}
