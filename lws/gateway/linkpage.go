package gateway

import (
	"cmp"
	"container/heap"
	"encoding/base64"
	"net/url"
	"slices"
	"strconv"
	"strings"
)

// A page of the link table: GET /v1/api/links?limit=N and the console's
// event stream ask for one, filtered, sorted and a page at a time, from
// a table of 100,000 links without copying it.
//
// Sorted by ID (the default), with no filter on user or channel, a page
// is read from the table's B-tree from the cursor on: O(log n + page).
// Any other order has to look at every link that passes the filters,
// since counters change all the time and no index can keep them in
// order; the scan reads the table a chunk at a time (never holding the
// lock long), keeps the page in a heap of limit+1 entries, and copies
// only the rows it returns. A channel filter scans the channel's members
// only.
//
// Paging is by cursor (keyset), not offset: a page starts after (or
// ends before) the sort key of a row of the page before, so that deep
// pages cost what the first does. The table is live: a link whose
// counters move between two pages may show on both or neither.

// LinkQuery selects and orders a page of the link table.
//
// Concurrency: a value.
type LinkQuery struct {
	// Filters; "" matches any. All must match.
	Type, User, Channel, Node string
	// Sort is a key of linkSorts; "": "id".
	Sort string
	// Desc sorts in descending order.
	Desc bool
	// Limit is the page size, 1 to maxPage; 0: every link that matches.
	Limit int
	// After and Before are cursors from an earlier page's Next and Prev
	// (for the same Sort): the page starts after, or ends before, that
	// row. At most one.
	After, Before string
}

// LinkPage is a page of links.
//
// Concurrency: a value.
type LinkPage struct {
	Links []LinkInfo `json:"links"`
	Total int        `json:"total"`          // links that match the filters
	Next  string     `json:"next,omitempty"` // cursor of the next page (After)
	Prev  string     `json:"prev,omitempty"` // cursor of the page before (Before)
}

// maxPage is the largest page (LinkQuery.Limit).
const maxPage = 1000

// QueryError is a LinkQuery the table cannot answer: the parameter at
// fault, its value (when it is worth quoting) and why.
//
// Concurrency: a value.
type QueryError struct {
	Param, Value, Msg string
}

func (e *QueryError) Error() string {
	if e.Value != "" {
		return e.Param + " " + strconv.Quote(e.Value) + ": " + e.Msg
	}
	return e.Param + ": " + e.Msg
}

// pageKey is a link's place in a sort order: the key's value, then the
// link's ID, which makes the order total.
//
// Concurrency: a value.
type pageKey struct {
	n  int64
	s  string
	id uint64
}

func (a pageKey) cmp(b pageKey) int {
	if c := cmp.Compare(a.n, b.n); c != 0 {
		return c
	}
	if c := strings.Compare(a.s, b.s); c != 0 {
		return c
	}
	return cmp.Compare(a.id, b.id)
}

// linkSorts are the orders of the link table, by the name the API
// gives them (the Link fields they sort by).
var linkSorts = map[string]func(*LinkRecord) pageKey{
	"id":            func(l *LinkRecord) pageKey { return pageKey{id: l.ID} },
	"type":          func(l *LinkRecord) pageKey { return pageKey{s: l.Type, id: l.ID} },
	"listener":      func(l *LinkRecord) pageKey { return pageKey{s: l.Listener, id: l.ID} },
	"user":          func(l *LinkRecord) pageKey { return pageKey{s: l.User, id: l.ID} },
	"remote":        func(l *LinkRecord) pageKey { return pageKey{s: l.Remote, id: l.ID} },
	"opened":        func(l *LinkRecord) pageKey { return pageKey{n: l.Opened.UnixNano(), id: l.ID} },
	"last_activity": func(l *LinkRecord) pageKey { return pageKey{n: l.lastActivity(), id: l.ID} },
	"messages_in":   func(l *LinkRecord) pageKey { return pageKey{n: l.msgsIn.Load(), id: l.ID} },
	"messages_out":  func(l *LinkRecord) pageKey { return pageKey{n: l.msgsOut.Load(), id: l.ID} },
	"bytes_in":      func(l *LinkRecord) pageKey { return pageKey{n: l.bytesIn.Load(), id: l.ID} },
	"bytes_out":     func(l *LinkRecord) pageKey { return pageKey{n: l.bytesOut.Load(), id: l.ID} },
}

// lastActivity is LinkInfo.LastActivity in unix nanoseconds.
func (l *LinkRecord) lastActivity() int64 {
	if t := l.last.Load(); t != 0 {
		return t
	}
	return l.Opened.UnixNano()
}

// sortNames lists linkSorts' keys, for error messages.
func sortNames() string {
	names := make([]string, 0, len(linkSorts))
	for k := range linkSorts {
		names = append(names, k)
	}
	slices.Sort(names)
	return strings.Join(names, ", ")
}

// encodeCursor makes the cursor of a row: its key in sort order srt.
func encodeCursor(srt string, k pageKey) string {
	raw := srt + "\x00" + strconv.FormatInt(k.n, 10) + "\x00" + strconv.FormatUint(k.id, 10) + "\x00" + k.s
	return base64.RawURLEncoding.EncodeToString([]byte(raw))
}

// decodeCursor reads a cursor made by encodeCursor for sort order srt.
func decodeCursor(param, srt, c string) (pageKey, error) {
	bad := &QueryError{param, "", "not a cursor of this API (take it from a page's next or prev)"}
	raw, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil {
		return pageKey{}, bad
	}
	f := strings.SplitN(string(raw), "\x00", 4)
	if len(f) != 4 {
		return pageKey{}, bad
	}
	if f[0] != srt {
		return pageKey{}, &QueryError{param, "", "a cursor of sort " + strconv.Quote(f[0]) + ", not " + strconv.Quote(srt)}
	}
	n, err1 := strconv.ParseInt(f[1], 10, 64)
	id, err2 := strconv.ParseUint(f[2], 10, 64)
	if err1 != nil || err2 != nil || id == 0 {
		return pageKey{}, bad
	}
	return pageKey{n: n, s: f[3], id: id}, nil
}

// ParseLinkQuery reads a LinkQuery from the query parameters of GET
// /v1/api/links: type, user, channel, node, sort, order (asc or desc),
// limit, after, before. It checks what does not need the table.
func ParseLinkQuery(v url.Values) (LinkQuery, error) {
	q := LinkQuery{Type: v.Get("type"), User: v.Get("user"), Channel: v.Get("channel"), Node: v.Get("node"),
		Sort: v.Get("sort"), After: v.Get("after"), Before: v.Get("before")}
	switch o := v.Get("order"); o {
	case "", "asc":
	case "desc":
		q.Desc = true
	default:
		return q, &QueryError{"order", o, "want asc or desc"}
	}
	if s := v.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > maxPage {
			return q, &QueryError{"limit", s, "want 1 to " + strconv.Itoa(maxPage)}
		}
		q.Limit = n
	}
	return q, q.check()
}

// check checks what a query says by itself.
func (q *LinkQuery) check() error {
	if q.Type != "" && !slices.Contains(linkTypes, q.Type) {
		return &QueryError{"type", q.Type, "want one of " + strings.Join(linkTypes, ", ")}
	}
	if q.Sort == "" {
		q.Sort = "id"
	}
	if linkSorts[q.Sort] == nil {
		return &QueryError{"sort", q.Sort, "want one of " + sortNames()}
	}
	if q.Limit < 0 || q.Limit > maxPage {
		return &QueryError{"limit", strconv.Itoa(q.Limit), "want 1 to " + strconv.Itoa(maxPage)}
	}
	if q.After != "" && q.Before != "" {
		return &QueryError{"before", "", "give after or before, not both"}
	}
	for _, c := range [][2]string{{"after", q.After}, {"before", q.Before}} {
		if c[1] != "" {
			if q.Limit == 0 {
				return &QueryError{c[0], "", "a cursor needs a limit"}
			}
			if _, err := decodeCursor(c[0], q.Sort, c[1]); err != nil {
				return err
			}
		}
	}
	return nil
}

// LinksPage returns a page of the link table. Its error is a
// *QueryError.
func (g *Gateway) LinksPage(q LinkQuery) (LinkPage, error) {
	if err := q.check(); err != nil {
		return LinkPage{}, err
	}
	if q.Node != "" && q.Node != g.self.name {
		return LinkPage{}, &QueryError{"node", q.Node, "not a node of this cluster (" + g.self.name + ")"}
	}
	// dir is the direction the page is read in: the sort order, or
	// against it when the page ends before a cursor.
	dir := 1
	if q.Desc {
		dir = -1
	}
	var cur *pageKey
	if c := q.After + q.Before; c != "" { // one of them (checked)
		k, _ := decodeCursor("", q.Sort, c) // checked
		cur = &k
		if q.Before != "" {
			dir = -dir
		}
	}
	var r pageRun
	if q.Sort == "id" && q.User == "" && q.Channel == "" {
		r = g.links.pageByID(q, dir, cur)
	} else {
		r = g.pageByScan(q, dir, cur)
	}
	if q.Before != "" {
		slices.Reverse(r.rows)
	}
	p := LinkPage{Links: make([]LinkInfo, len(r.rows)), Total: r.total}
	for i, e := range r.rows {
		p.Links[i] = e.l.Info()
	}
	if len(r.rows) > 0 {
		first, last := encodeCursor(q.Sort, r.rows[0].k), encodeCursor(q.Sort, r.rows[len(r.rows)-1].k)
		// more: rows beyond the page in the reading direction; behind:
		// rows on the cursor's side.
		next, prev := r.more, r.behind
		if q.Before != "" {
			next, prev = r.behind, r.more
		}
		if next && q.Limit > 0 {
			p.Next = last
		}
		if prev && q.Limit > 0 {
			p.Prev = first
		}
	}
	return p, nil
}

// pageRun is what reading a page found: its rows in reading order,
// whether more follow them, whether any precede the cursor, and how
// many links passed the filters (the page's Total).
//
// Concurrency: a value.
type pageRun struct {
	rows   []pageRow
	more   bool
	behind bool
	total  int
}

// pageRow is a link in a page being built, with its sort key.
//
// Concurrency: a value.
type pageRow struct {
	k pageKey
	l *LinkRecord
}

// pageByID reads a page in ID order straight from the B-tree: q has no
// user or channel filter.
func (t *linkTable) pageByID(q LinkQuery, dir int, cur *pageKey) pageRun {
	r := pageRun{total: t.count(q.Type)}
	var from uint64
	if cur != nil {
		from = cur.id
	}
	want := q.Limit
	t.scan(from, dir < 0, func(l *LinkRecord) bool {
		if q.Type != "" && l.Type != q.Type {
			return true
		}
		if want > 0 && len(r.rows) == want {
			r.more = true
			return false
		}
		r.rows = append(r.rows, pageRow{pageKey{id: l.ID}, l})
		return true
	})
	if cur != nil {
		// Is there a row on the cursor's side, the cursor's row
		// included (the last row of the page it came from)?
		start := cur.id + 1
		if dir < 0 {
			start = cur.id - 1
		}
		t.scan(start, dir > 0, func(l *LinkRecord) bool {
			r.behind = q.Type == "" || l.Type == q.Type
			return !r.behind
		})
	}
	return r
}

// pageByScan reads a page by looking at every link that passes the
// filters (a channel's members only, with a channel filter).
func (g *Gateway) pageByScan(q LinkQuery, dir int, cur *pageKey) pageRun {
	key := linkSorts[q.Sort]
	h := &pageHeap{dir: dir, max: q.Limit + 1}
	if q.Limit == 0 {
		h.max = 0 // every row
	}
	var r pageRun
	visit := func(l *LinkRecord) bool {
		if q.Type != "" && l.Type != q.Type || q.User != "" && l.User != q.User {
			return true
		}
		r.total++
		k := key(l)
		if cur != nil && dir*k.cmp(*cur) <= 0 {
			r.behind = true
			return true
		}
		h.offer(pageRow{k, l})
		return true
	}
	if q.Channel != "" {
		for _, l := range g.hub.members(q.Channel) {
			visit(l)
		}
	} else {
		g.links.scan(0, false, visit)
	}
	r.rows = h.sorted()
	if q.Limit > 0 && len(r.rows) > q.Limit {
		r.rows, r.more = r.rows[:q.Limit], true
	}
	return r
}

// pageHeap keeps the first max rows in direction dir (all with max 0):
// a heap whose top is the last of them, the one a better row evicts.
//
// Concurrency: one LinksPage call's scratch.
type pageHeap struct {
	rows []pageRow
	dir  int
	max  int
}

func (h *pageHeap) Len() int           { return len(h.rows) }
func (h *pageHeap) Less(i, j int) bool { return h.dir*h.rows[i].k.cmp(h.rows[j].k) > 0 }
func (h *pageHeap) Swap(i, j int)      { h.rows[i], h.rows[j] = h.rows[j], h.rows[i] }
func (h *pageHeap) Push(x any)         { h.rows = append(h.rows, x.(pageRow)) }
func (h *pageHeap) Pop() any {
	x := h.rows[len(h.rows)-1]
	h.rows = h.rows[:len(h.rows)-1]
	return x
}

func (h *pageHeap) offer(r pageRow) {
	switch {
	case h.max == 0:
		h.rows = append(h.rows, r)
	case len(h.rows) < h.max:
		heap.Push(h, r)
	case h.dir*r.k.cmp(h.rows[0].k) < 0:
		h.rows[0] = r
		heap.Fix(h, 0)
	}
}

// sorted returns the rows in direction dir.
func (h *pageHeap) sorted() []pageRow {
	slices.SortFunc(h.rows, func(a, b pageRow) int { return h.dir * a.k.cmp(b.k) })
	return h.rows
}
