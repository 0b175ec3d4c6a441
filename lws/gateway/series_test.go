package gateway

import (
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestSeriesSample: a sample is the gateway's own counters, as rates
// per second over the time since the last sample (messages and bytes
// both ways, links opened) and counts (closes by close code, upgrades
// refused by status), and the links open by type at its time.
func TestSeriesSample(t *testing.T) {
	g := startGW(t, `
tokens: {secret: series-secret}
listeners:
  - {addr: 127.0.0.1:0, subprotocols: [lws-gate], auth: {require_token: true}}
`, nil)
	tok := golangJWT(t, []byte("series-secret"), time.Now(), time.Hour, "series-user", "")
	ws := g.dial(t, "/?token="+tok, nil)
	id := linkID(t, ws)

	var s series // not the gateway's own: this test says when it samples
	t0 := time.Now()
	s.sample(g.Gateway, t0)
	g.dial(t, "/?token="+tok, nil)
	require.Eventually(t, func() bool { return g.links.count(TypeTCPListen) == 2 }, 10*time.Second, 5*time.Millisecond)
	for _, m := range []string{"one", "two", "three"} {
		send(t, ws, m)
		require.Equal(t, m, read(t, ws))
	}
	_, err := g.tryDial("/", nil)
	require.Error(t, err, "no token: refused")
	s.sample(g.Gateway, t0.Add(2*time.Second))

	require.NoError(t, ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(4100, "bye"), time.Now().Add(time.Second)))
	require.Eventually(t, func() bool { _, err := g.Link(id); return err != nil }, 10*time.Second, 5*time.Millisecond)
	s.sample(g.Gateway, t0.Add(3*time.Second))

	got, last := s.since(0)
	require.Len(t, got, 3)
	assert.Equal(t, uint64(3), last)
	first, open, closed := got[0], got[1], got[2]
	assert.Equal(t, uint64(1), first.Seq)
	assert.Zero(t, first.MsgsIn, "the first sample has nothing to be a rate of")

	assert.Equal(t, 2, open.Links[TypeTCPListen])
	assert.Equal(t, 0.5, open.Opened, "1 link in 2 s (the refused upgrade never opened one)")
	assert.Equal(t, 1.5, open.MsgsIn, "3 messages in 2 s")
	assert.Equal(t, 1.5, open.MsgsOut, "3 echoes in 2 s")
	assert.Equal(t, float64(len("onetwothree"))/2, open.BytesIn)
	assert.Equal(t, open.BytesIn, open.BytesOut)
	assert.Equal(t, map[string]int{"401": 1}, open.Refused)
	assert.Nil(t, open.Closes)

	assert.Equal(t, 1, closed.Links[TypeTCPListen])
	assert.Equal(t, map[string]int{"4100": 1}, closed.Closes)
	assert.Zero(t, closed.MsgsIn)
	assert.Nil(t, closed.Refused)
}

// TestSeriesRing: the ring keeps the last seriesKeep samples; since
// returns those after a seq, oldest first.
func TestSeriesRing(t *testing.T) {
	g := startGW(t, "", nil)
	var s series
	t0 := time.Now()
	for i := range seriesKeep + 5 {
		s.sample(g.Gateway, t0.Add(time.Duration(i)*time.Second))
	}
	all, last := s.since(0)
	require.Len(t, all, seriesKeep)
	assert.Equal(t, uint64(seriesKeep+5), last)
	assert.Equal(t, uint64(6), all[0].Seq, "the 5 oldest are gone")
	assert.Equal(t, uint64(seriesKeep+5), all[seriesKeep-1].Seq)
	some, _ := s.since(last - 2)
	require.Len(t, some, 2)
	assert.Equal(t, []uint64{last - 1, last}, []uint64{some[0].Seq, some[1].Seq})
	none, _ := s.since(last)
	assert.Empty(t, none)
}
