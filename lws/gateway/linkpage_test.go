package gateway

import (
	"fmt"
	"math/rand/v2"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// pageTestGateway is a Gateway with only what LinksPage reads (the link
// table, the channels, its node), holding n links with varied types,
// users, counters and channels; no libwebsockets behind it.
func pageTestGateway(tb testing.TB, n int, seed uint64) *Gateway {
	tb.Helper()
	g := &Gateway{self: node{name: "n1"}, links: newLinkTable("n1"), hub: newHub()}
	rng := rand.New(rand.NewPCG(seed, 1))
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for i := range n {
		// IDs with gaps, as links that have closed leave.
		id := uint64(i*3 + 1 + rng.IntN(3))
		l := &LinkRecord{ID: id, Type: linkTypes[rng.IntN(len(linkTypes))], Listener: "pub",
			User: fmt.Sprintf("user%d", rng.IntN(20)), Remote: fmt.Sprintf("10.0.%d.%d:%d", rng.IntN(4), rng.IntN(250), 1024+rng.IntN(1000)),
			Opened: t0.Add(time.Duration(rng.IntN(1000)) * time.Second)}
		l.msgsIn.Store(int64(rng.IntN(50)))
		l.msgsOut.Store(int64(rng.IntN(50)))
		l.bytesIn.Store(int64(rng.IntN(5000)))
		l.bytesOut.Store(int64(rng.IntN(5000)))
		if rng.IntN(2) == 0 {
			l.last.Store(l.Opened.Add(time.Duration(rng.IntN(100)) * time.Second).UnixNano())
		}
		g.links.add(l, l.ID)
		if rng.IntN(4) == 0 {
			g.hub.subscribe(l, fmt.Sprintf("room%d", rng.IntN(3)))
		}
	}
	return g
}

// wantPage is the brute-force answer: every link that passes q's
// filters, sorted by q's order.
func wantPage(g *Gateway, q LinkQuery) []uint64 {
	key := linkSorts[cmpOr(q.Sort, "id")]
	var rows []pageRow
	for _, l := range g.links.list(nil) {
		if q.Type != "" && l.Type != q.Type || q.User != "" && l.User != q.User {
			continue
		}
		if q.Channel != "" {
			l.mu.Lock()
			_, in := l.channels[q.Channel]
			l.mu.Unlock()
			if !in {
				continue
			}
		}
		rows = append(rows, pageRow{key(l), l})
	}
	slices.SortFunc(rows, func(a, b pageRow) int {
		if q.Desc {
			return b.k.cmp(a.k)
		}
		return a.k.cmp(b.k)
	})
	var ids []uint64
	for _, r := range rows {
		ids = append(ids, r.l.ID)
	}
	return ids
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// TestLinksPageWalks: for many queries (every sort, both orders,
// filters, page sizes), walking the pages forward with Next, then back
// with Prev, visits exactly the brute-force answer in order, each page
// with the right Total; the first page has no Prev and the last no Next.
func TestLinksPageWalks(t *testing.T) {
	g := pageTestGateway(t, 700, 7)
	rng := rand.New(rand.NewPCG(3, 4))
	sorts := append([]string{""}, strings.Split(sortNames(), ", ")...)
	for i := range 300 {
		q := LinkQuery{Sort: sorts[i%len(sorts)], Desc: rng.IntN(2) == 0, Limit: 1 + rng.IntN(120)}
		switch rng.IntN(5) {
		case 0:
			q.Type = linkTypes[rng.IntN(len(linkTypes))]
		case 1:
			q.User = fmt.Sprintf("user%d", rng.IntN(22)) // user20, user21: none
		case 2:
			q.Channel = fmt.Sprintf("room%d", rng.IntN(4))
		case 3:
			q.Type, q.User = linkTypes[rng.IntN(len(linkTypes))], fmt.Sprintf("user%d", rng.IntN(20))
		}
		want := wantPage(g, q)
		name := fmt.Sprintf("%+v", q)

		var got []uint64
		var pages []LinkPage
		for {
			p, err := g.LinksPage(q)
			require.NoError(t, err, name)
			require.Equal(t, len(want), p.Total, name)
			require.LessOrEqual(t, len(p.Links), q.Limit, name)
			if len(pages) == 0 {
				assert.Empty(t, p.Prev, "%s: the first page has no prev", name)
			}
			for _, in := range p.Links {
				got = append(got, in.ID)
			}
			pages = append(pages, p)
			if p.Next == "" {
				break
			}
			require.NotEmpty(t, p.Links, name)
			q.After, q.Before = p.Next, ""
		}
		require.Equal(t, want, got, name)

		// Back from the last page: the same pages, in reverse.
		for k := len(pages) - 1; k > 0; k-- {
			require.NotEmpty(t, pages[k].Prev, "%s: page %d has a prev", name, k)
			q.After, q.Before = "", pages[k].Prev
			p, err := g.LinksPage(q)
			require.NoError(t, err, name)
			require.Equal(t, pages[k-1].Links, p.Links, "%s: page %d by prev", name, k-1)
			assert.Equal(t, k-1 > 0, p.Prev != "", "%s: page %d prev", name, k-1)
			assert.NotEmpty(t, p.Next, "%s: page %d next", name, k-1)
		}
	}
}

// TestLinksPageLive: rows come and go between pages; a page never
// repeats or skips a link that stayed, in ID order.
func TestLinksPageLive(t *testing.T) {
	g := pageTestGateway(t, 300, 11)
	q := LinkQuery{Limit: 50}
	p, err := g.LinksPage(q)
	require.NoError(t, err)
	last := p.Links[len(p.Links)-1].ID
	// The cursor's own link closes, and new ones open.
	g.links.del(last)
	g.links.add(&LinkRecord{ID: 100000, Type: TypeTCPListen}, 100000)
	q.After = p.Next
	p2, err := g.LinksPage(q)
	require.NoError(t, err)
	require.NotEmpty(t, p2.Links)
	assert.Greater(t, p2.Links[0].ID, last)
	var below []uint64
	for _, l := range g.links.list(func(l *LinkRecord) bool { return l.ID > last }) {
		below = append(below, l.ID)
	}
	var got []uint64
	for _, in := range p2.Links {
		got = append(got, in.ID)
	}
	assert.Equal(t, below[:len(got)], got)
	assert.NotEmpty(t, p2.Prev, "the page before still has rows")
}

// TestParseLinkQuery: each bad parameter is refused naming it.
func TestParseLinkQuery(t *testing.T) {
	g := pageTestGateway(t, 10, 1)
	idCursor := encodeCursor("id", pageKey{id: 3})
	for _, c := range []struct{ query, param string }{
		{"type=tcplistne", "type"},
		{"sort=age", "sort"},
		{"order=up", "order"},
		{"limit=0", "limit"},
		{"limit=1001", "limit"},
		{"limit=x", "limit"},
		{"limit=5&after=zz!", "after"},
		{"limit=5&sort=user&after=" + idCursor, "after"},
		{"after=" + idCursor, "after"},
		{"limit=5&after=" + idCursor + "&before=" + idCursor, "before"},
	} {
		v, err := url.ParseQuery(c.query)
		require.NoError(t, err)
		_, err = ParseLinkQuery(v)
		var qe *QueryError
		require.ErrorAs(t, err, &qe, c.query)
		assert.Equal(t, c.param, qe.Param, c.query)
	}
	_, err := g.LinksPage(LinkQuery{Node: "elsewhere"})
	var qe *QueryError
	require.ErrorAs(t, err, &qe)
	assert.Equal(t, "node", qe.Param)
}

// BenchmarkLinksPage100k: one page of 100 out of 100,000 links, the
// figure for the console's link table. cpu-ns/op is the process's CPU
// time per page (getrusage).
func BenchmarkLinksPage100k(b *testing.B) {
	g := pageTestGateway(b, 100000, 42)
	mid := encodeCursor("id", pageKey{id: 150000})
	for _, c := range []struct {
		name string
		q    LinkQuery
	}{
		{"id", LinkQuery{Limit: 100}},
		{"id-desc", LinkQuery{Limit: 100, Desc: true}},
		{"id-middle", LinkQuery{Limit: 100, After: mid}},
		{"id-type", LinkQuery{Limit: 100, Type: TypeHTTPListen}},
		{"bytes_in-desc", LinkQuery{Limit: 100, Sort: "bytes_in", Desc: true}},
		{"last_activity", LinkQuery{Limit: 100, Sort: "last_activity"}},
		{"user-filter", LinkQuery{Limit: 100, User: "user7"}},
		{"channel", LinkQuery{Limit: 100, Channel: "room1"}},
	} {
		b.Run(c.name, func(b *testing.B) {
			p, err := g.LinksPage(c.q)
			require.NoError(b, err)
			require.Len(b, p.Links, 100)
			b.ReportAllocs()
			b.ResetTimer()
			cpu := startCPU()
			for range b.N {
				_, _ = g.LinksPage(c.q)
			}
			b.ReportMetric(float64(cpu.since())/float64(b.N), "cpu-ns/op")
		})
	}
	b.Run("all-then-slice", func(b *testing.B) {
		// What a page cost before: every link's snapshot (GET
		// /v1/api/links without limit), then 100 of them.
		b.ReportAllocs()
		b.ResetTimer()
		cpu := startCPU()
		for range b.N {
			p, _ := g.LinksPage(LinkQuery{})
			_ = p.Links[:100]
		}
		b.ReportMetric(float64(cpu.since())/float64(b.N), "cpu-ns/op")
	})
}
