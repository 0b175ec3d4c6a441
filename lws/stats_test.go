package lws

import (
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
	ctx, addr := startServer(t, Listener{Handler: h}, func(c *Config) { c.LinkTrace = 4 })
	ws := dial(t, addr, nil)
	id := <-ids
	for i := 0; i < 3; i++ {
		require.NoError(t, ws.WriteMessage(websocket.TextMessage, []byte("hi")))
		_, _, err := ws.ReadMessage()
		require.NoError(t, err)
	}
	tr, err := ctx.LinkTrace(id)
	require.NoError(t, err)
	require.Len(t, tr, 4, "the ring keeps the last 4")
	var names []string
	for i, e := range tr {
		names = append(names, e.Name)
		if i > 0 {
			assert.False(t, e.Time.Before(tr[i-1].Time), "oldest first")
		}
	}
	// Three echoes: RECEIVE then SERVER_WRITEABLE each; the last four are
	// the last two pairs.
	assert.Equal(t, []string{"LWS_CALLBACK_RECEIVE", "LWS_CALLBACK_SERVER_WRITEABLE", "LWS_CALLBACK_RECEIVE", "LWS_CALLBACK_SERVER_WRITEABLE"}, names)

	counts := map[string]uint64{}
	for _, rc := range ctx.ReasonCounts() {
		counts[rc.Name] = rc.Count
	}
	assert.Equal(t, uint64(3), counts["LWS_CALLBACK_RECEIVE"])
	assert.Equal(t, uint64(1), counts["LWS_CALLBACK_ESTABLISHED"])

	ws.Close()
	require.Eventually(t, func() bool {
		_, err := ctx.LinkTrace(id)
		return err == ErrNoLink
	}, 10*time.Second, 10*time.Millisecond, "a destroyed link has no trace")
}

// One word per entry keeps the time to the microsecond and every reason
// libwebsockets has (up to LWS_CALLBACK_USER, 1000).
func TestLinkTraceRing(t *testing.T) {
	tr := linkTrace{ring: make([]uint64, 3)}
	t0 := time.Date(2026, 11, 24, 10, 5, 47, 123456789, time.UTC)
	reasons := []callbacks.Reason{callbacks.Receive, callbacks.ServerWriteable, 1000, callbacks.Closed}
	for i, r := range reasons {
		tr.add(t0.Add(time.Duration(i)*time.Second), r)
	}
	got := tr.entries()
	require.Len(t, got, 3)
	for i, e := range got {
		assert.Equal(t, int(reasons[i+1]), e.Reason)
		assert.True(t, e.Time.Equal(t0.Add(time.Duration(i+1)*time.Second).Truncate(time.Microsecond)), "entry %d: %v", i, e.Time)
	}
}
