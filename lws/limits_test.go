package lws

import (
	"io"
	"log/slog"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestIPKey(t *testing.T) {
	for _, tc := range []struct {
		in   []byte
		want string
	}{
		{[]byte{192, 0, 2, 7}, "192.0.2.7"},
		{netip.MustParseAddr("::ffff:192.0.2.7").AsSlice(), "192.0.2.7"},
		{netip.MustParseAddr("2001:db8:1:2:aaaa:bbbb:cccc:dddd").AsSlice(), "2001:db8:1:2::"},
		{netip.MustParseAddr("2001:db8:1:2::1").AsSlice(), "2001:db8:1:2::"},
	} {
		a, ok := addrOf(tc.in)
		assert.True(t, ok)
		assert.Equal(t, tc.want, ipKey(a).String())
	}
	_, ok := addrOf([]byte{1, 2, 3})
	assert.False(t, ok)
	assert.Equal(t, "2001:db8:1:2::/64", keyString(ipKey(netip.MustParseAddr("2001:db8:1:2::1"))))
	assert.Equal(t, "192.0.2.7", keyString(ipKey(netip.MustParseAddr("::ffff:192.0.2.7"))))
}

// TestAdmitAcceptRate drives the token bucket with a made-up clock.
func TestAdmitAcceptRate(t *testing.T) {
	var hits []Limit
	c := &Context{log: slog.New(slog.NewTextHandler(io.Discard, nil)), cfg: &Config{
		OnLimit: func(_ string, limit Limit) { hits = append(hits, limit) },
	}}
	lis := &listener{cfg: Listener{Name: "edge", AcceptRate: 10}}
	ip := netip.MustParseAddr("192.0.2.1")
	t0 := time.Unix(1000, 0)
	n := 0
	for i := 0; i < 15; i++ {
		if c.admission(lis, ip, true, t0) == admitted {
			n++
		}
	}
	assert.Equal(t, 10, n, "a full bucket holds one second's worth")
	assert.Len(t, hits, 5)
	assert.Equal(t, overAcceptRate, c.admission(lis, ip, true, t0.Add(50*time.Millisecond)), "half a token")
	assert.Equal(t, admitted, c.admission(lis, ip, true, t0.Add(100*time.Millisecond)), "one token after 1/rate")
	assert.Equal(t, overAcceptRate, c.admission(lis, ip, true, t0.Add(100*time.Millisecond)))
	for i := 0; i < 10; i++ {
		assert.Equal(t, admitted, c.admission(lis, ip, true, t0.Add(time.Hour)), "refilled, but never beyond one second's worth")
	}
	assert.Equal(t, overAcceptRate, c.admission(lis, ip, true, t0.Add(time.Hour)))
	for _, h := range hits {
		assert.Equal(t, LimitAcceptRate, h)
	}
}

func TestAdmitLinkCounts(t *testing.T) {
	var hits []Limit
	c := &Context{log: slog.New(slog.NewTextHandler(io.Discard, nil)), cfg: &Config{
		OnLimit: func(_ string, limit Limit) { hits = append(hits, limit) },
	}}
	lis := &listener{cfg: Listener{Name: "edge", MaxLinks: 3, MaxLinksPerIP: 2, AcceptRate: -1}}
	a, b := []byte{192, 0, 2, 1}, []byte{192, 0, 2, 2}
	now := time.Now()
	var recs []*rec
	open := func(ip []byte) bool {
		require.Zero(t, c.admit(lis, ip, now), "taken, if only to answer 503")
		r := &rec{ctx: c, lis: lis}
		r.countLink() // r.wsi is 0: no timer is armed
		if r.held {
			r.uncountLink()
			return false
		}
		recs = append(recs, r)
		return true
	}
	assert.True(t, open(a))
	assert.True(t, open(a))
	assert.False(t, open(a), "third from one address")
	assert.True(t, open(b))
	assert.False(t, open(b), "fourth in all")
	assert.Equal(t, []Limit{LimitMaxLinksPerIP, LimitMaxLinks}, hits)
	recs[0].uncountLink()
	recs[0].uncountLink() // idempotent
	assert.True(t, open(a))
	for _, r := range recs {
		r.uncountLink()
	}
	assert.Zero(t, lis.adm.live)
	assert.Zero(t, lis.adm.refusing)
	assert.Empty(t, lis.adm.perIP)
}

// TestAdmitRefusals: a refused connection is held to be answered 503, up
// to maxRefusing at once, then closed at accept; each limit's warning is
// logged at once, then at most once per refusalLogEvery with the count of
// refusals it did not log.
func TestAdmitRefusals(t *testing.T) {
	var log lockedBuffer
	c := &Context{log: slog.New(slog.NewTextHandler(&log, nil)), cfg: &Config{}}
	lis := &listener{cfg: Listener{Name: "edge", MaxLinks: 1, AcceptRate: -1}}
	ip := []byte{192, 0, 2, 1}
	t0 := time.Unix(1000, 0)
	require.Zero(t, c.admit(lis, ip, t0))
	(&rec{ctx: c, lis: lis}).countLink()
	require.Equal(t, 1, lis.adm.live)
	var held []*rec
	for i := 0; i < maxRefusing; i++ {
		require.Zero(t, c.admit(lis, ip, t0.Add(time.Duration(i)*time.Second)), "refusal %d is held", i)
		r := &rec{ctx: c, lis: lis}
		r.countLink()
		require.True(t, r.held)
		require.Equal(t, overMaxLinks, r.refuse)
		held = append(held, r)
	}
	assert.Equal(t, 1, lis.adm.live, "held refusals are not links")
	assert.Equal(t, -1, c.admit(lis, ip, t0.Add(100*time.Second)), "beyond maxRefusing: closed at accept")
	held[0].uncountLink()
	assert.Zero(t, c.admit(lis, ip, t0.Add(101*time.Second)), "a held refusal answered makes room")

	lines := strings.Split(strings.TrimSpace(log.String()), "\n")
	// Refusals at t0+0s..63s, +100s, +101s: logged at 0, 10, 20... 60
	// (7), then 100 (1); 101 is quiet.
	require.Len(t, lines, 8, log.String())
	for _, l := range lines {
		assert.Contains(t, l, "level=WARN")
		assert.Contains(t, l, "limit=max_links")
		assert.Contains(t, l, "remote=192.0.2.1")
	}
	assert.NotContains(t, lines[0], "since_last_warning")
	assert.Contains(t, lines[1], "since_last_warning=9")
	assert.Contains(t, lines[7], "answer=\"closed at accept\"")
	assert.Contains(t, lines[7], "since_last_warning=3")
}

// TestNoPerAddressLimitByDefault: a listener without MaxLinksPerIP takes
// more than 256 links from one address (the old default refused the
// 257th: an outage behind NAT or an untrusted proxy).
func TestNoPerAddressLimitByDefault(t *testing.T) {
	lim := newLimitLog()
	_, addr := startServer(t, Listener{Handler: EchoHandler{}}, lim.hook)
	for i := 0; i < 300; i++ {
		dial(t, addr, nil)
	}
	lim.none(t)
}
