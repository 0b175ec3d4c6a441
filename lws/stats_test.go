package lws

import (
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lwsgate/lwsgate/callbacks"
)

func TestLinkTraceAndReasonCounts(t *testing.T) {
	ids := make(chan uint64, 1)
	h := HandlerFuncs{
		Open:    func(c *Conn) { ids <- c.ID() },
		Message: func(c *Conn, typ MessageType, data []byte) { _ = c.Send(typ, data) },
	}
	ctx, addr := startServer(t, Listener{Handler: h}, func(c *Config) { c.LinkTrace = 8 })
	ws := dial(t, addr, nil)
	id := <-ids
	for i := 0; i < 3; i++ {
		require.NoError(t, ws.WriteMessage(websocket.TextMessage, []byte("hi")))
		_, _, err := ws.ReadMessage()
		require.NoError(t, err)
	}
	tr, err := ctx.LinkTrace(id)
	require.NoError(t, err)
	require.Len(t, tr, 8, "the ring keeps the last 8 (the link has had 13 or more)")
	var names []string
	for i, e := range tr {
		if e.Reason >= 32 && e.Reason <= 36 {
			continue // 4.3's poll bookkeeping (LOCK_POLL, CHANGE_MODE_POLL_FD...) interleaves
		}
		names = append(names, e.Name)
		if i > 0 {
			assert.False(t, e.Time.Before(tr[i-1].Time), "oldest first")
		}
	}
	// The last callbacks are the echoes: RECEIVE then SERVER_WRITEABLE,
	// the newest last (after the handshake's, if the ring still has them).
	for i, n := range names {
		if n == "LWS_CALLBACK_ESTABLISHED" {
			names = names[i+1:]
			break
		}
	}
	require.GreaterOrEqual(t, len(names), 2)
	for i := range names {
		want := "LWS_CALLBACK_SERVER_WRITEABLE"
		if (len(names)-i)%2 == 0 {
			want = "LWS_CALLBACK_RECEIVE"
		}
		assert.Equal(t, want, names[i], "%v", names)
	}

	counts := map[string]uint64{}
	for _, rc := range ctx.ReasonCounts() {
		counts[rc.Name] = rc.Count
	}
	assert.Equal(t, uint64(3), counts["LWS_CALLBACK_RECEIVE"])
	assert.Equal(t, uint64(1), counts["LWS_CALLBACK_ESTABLISHED"])

	ws.Close()
	require.Eventually(t, func() bool {
		_, err := ctx.LinkTrace(id)
		return err == ErrLinkNotOpen
	}, 10*time.Second, 10*time.Millisecond, "a destroyed link has no trace")
}

// One word per entry keeps the time to the microsecond and every reason
// libwebsockets has (up to LWS_CALLBACK_USER, 1000).
func TestLinkTraceRing(t *testing.T) {
	var tr linkTrace
	t0 := time.Date(2026, 11, 24, 10, 5, 47, 123456789, time.UTC)
	reasons := []callbacks.Reason{callbacks.Receive, callbacks.ServerWriteable, 1000, callbacks.Closed}
	for i, r := range reasons {
		tr.add(t0.Add(time.Duration(i)*time.Second), r, 3)
	}
	got := tr.entries()
	require.Len(t, got, 3)
	for i, e := range got {
		assert.Equal(t, int(reasons[i+1]), e.Reason)
		assert.True(t, e.Time.Equal(t0.Add(time.Duration(i+1)*time.Second).Truncate(time.Microsecond)), "entry %d: %v", i, e.Time)
	}
}

// TestReasonCountsWithoutTrace: with no trace, the reasons Go ignores are
// answered in C without crossing (SetReportAll off), and ReasonCounts
// still counts them: an HTTP request binds and drops the http protocol.
func TestReasonCountsWithoutTrace(t *testing.T) {
	var linkID atomic.Uint64
	ctx, addr := startServer(t, Listener{
		Accept: AcceptHTTP,
		HTTPHandler: HTTPHandlerFunc(func(w *ResponseWriter, r *Request) {
			linkID.Store(r.LinkID)
			_ = w.Respond(200, []byte("ok"))
		}),
	}, func(c *Config) { c.LinkTrace = 256 })
	cl := httpClient(t)
	const n = 5
	for range n {
		resp, body := doHTTP(t, cl, "POST", "http://"+addr+"/x", []byte("body"), nil)
		require.Equal(t, 200, resp.StatusCode)
		require.Equal(t, "ok", string(body))
	}
	counts := func() map[string]uint64 {
		m := map[string]uint64{}
		for _, rc := range ctx.ReasonCounts() {
			m[rc.Name] = rc.Count
		}
		return m
	}
	// The last request's HTTP_DROP_PROTOCOL comes after its answer:
	// wait for the service loop to hand over what it counted.
	require.Eventually(t, func() bool {
		return counts()["LWS_CALLBACK_HTTP_DROP_PROTOCOL"] >= n
	}, 10*time.Second, 10*time.Millisecond)
	m := counts()
	assert.Equal(t, uint64(n), m["LWS_CALLBACK_HTTP"])
	// libwebsockets 4.1 binds (and drops) twice per keep-alive request.
	assert.GreaterOrEqual(t, m["LWS_CALLBACK_HTTP_BIND_PROTOCOL"], uint64(n))
	assert.Equal(t, uint64(n), m["LWS_CALLBACK_FILTER_HTTP_CONNECTION"])

	// They never reached Go: the link's trace (the keep-alive connection
	// is still open) holds the requests but none of them.
	tr, err := ctx.LinkTrace(linkID.Load())
	require.NoError(t, err)
	seen := map[string]int{}
	for _, e := range tr {
		seen[e.Name]++
	}
	assert.Equal(t, n, seen["LWS_CALLBACK_HTTP"], "trace: %v", seen)
	for _, skipped := range []string{"LWS_CALLBACK_HTTP_BIND_PROTOCOL", "LWS_CALLBACK_HTTP_DROP_PROTOCOL", "LWS_CALLBACK_FILTER_HTTP_CONNECTION"} {
		assert.Zero(t, seen[skipped], "%s crossed into Go", skipped)
	}
}

// The ring grows as callbacks come, never past its size, and keeps the
// last size callbacks in order across the growth and the wrap-around.
func TestLinkTraceRingGrows(t *testing.T) {
	const size = 20
	var tr linkTrace
	t0 := time.Date(2026, 11, 24, 10, 5, 47, 0, time.UTC)
	for k := range 50 {
		tr.add(t0, callbacks.Reason(k), size)
		want := min(k+1, size)
		got := tr.entries()
		require.Len(t, got, want)
		for i, e := range got {
			require.Equal(t, k+1-want+i, e.Reason, "after %d callbacks", k+1)
		}
		require.LessOrEqual(t, cap(tr.ring), size)
		if k < 8 {
			require.Equal(t, 8, cap(tr.ring), "the first allocation holds 8")
		}
	}
}

// TestOnLinkTrace: a link's trace outlives it through Config.OnLinkTrace,
// called once, before OnLinkClose, with the end that Context.LinkTrace
// cannot give any more: the echo's writes, the close, WSI_DESTROY last.
func TestOnLinkTrace(t *testing.T) {
	type end struct {
		what string
		id   uint64
		tr   []TraceEntry
	}
	ends := make(chan end, 4)
	ids := make(chan uint64, 1)
	h := HandlerFuncs{
		Open: func(c *Conn) { ids <- c.ID() },
		Message: func(c *Conn, typ MessageType, data []byte) {
			_ = c.Send(typ, data)
			_ = c.Close(4001, "done")
		},
	}
	_, addr := startServer(t, Listener{Handler: h}, func(c *Config) {
		c.LinkTrace = 64
		c.OnLinkTrace = func(l Link, tr Trace) { ends <- end{"trace", l.ID, tr.Entries()} }
		c.OnLinkClose = func(l Link, _ CloseError) { ends <- end{what: "close", id: l.ID} }
	})
	ws := dial(t, addr, nil)
	id := <-ids
	require.NoError(t, ws.WriteMessage(websocket.TextMessage, []byte("hi")))
	_, _, err := ws.ReadMessage()
	require.NoError(t, err)
	_, _, err = ws.ReadMessage()
	require.True(t, websocket.IsCloseError(err, 4001), "%v", err)

	first := waitFor(t, ends, "OnLinkTrace")
	require.Equal(t, "trace", first.what, "OnLinkTrace comes before OnLinkClose")
	require.Equal(t, id, first.id)
	second := waitFor(t, ends, "OnLinkClose")
	require.Equal(t, end{what: "close", id: id}, second)

	var names []string
	for _, e := range first.tr {
		names = append(names, e.Name)
	}
	require.NotEmpty(t, names)
	assert.Equal(t, "LWS_CALLBACK_WSI_DESTROY", names[len(names)-1], "%v", names)
	for _, want := range []string{"LWS_CALLBACK_ESTABLISHED", "LWS_CALLBACK_RECEIVE", "LWS_CALLBACK_SERVER_WRITEABLE"} {
		assert.Contains(t, names, want)
	}
}

// TestTraceClock: link-trace entries share one clock read, at most
// traceClockEvery of them, and the first entry after a wait for events
// reads the clock again.
func TestTraceClock(t *testing.T) {
	c := &Context{}
	first := c.traceClock()
	for i := 1; i < traceClockEvery; i++ {
		require.Equal(t, first, c.traceClock(), "entry %d of a pass", i+1)
	}
	time.Sleep(time.Millisecond)
	next := c.traceClock() // one more than share a read
	require.GreaterOrEqual(t, next.Sub(first), time.Millisecond, "entry %d read the clock again", traceClockEvery+1)
	time.Sleep(time.Millisecond)
	c.passes++ // the service loop waited for events again
	after := c.traceClock()
	require.GreaterOrEqual(t, after.Sub(next), time.Millisecond, "the first entry after a wait read the clock again")
}
