package lws

import (
	"io"
	"log/slog"
	"net/netip"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
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
		k, ok := ipKey(tc.in)
		assert.True(t, ok)
		assert.Equal(t, tc.want, k.String())
	}
	_, ok := ipKey([]byte{1, 2, 3})
	assert.False(t, ok)
}

// TestAdmitAcceptRate drives the token bucket with a made-up clock.
func TestAdmitAcceptRate(t *testing.T) {
	var hits []string
	c := &Context{log: slog.New(slog.NewTextHandler(io.Discard, nil)), cfg: &Config{
		OnLimit: func(_, limit string) { hits = append(hits, limit) },
	}}
	lis := &listener{cfg: Listener{Name: "edge", AcceptRate: 10}}
	ip := []byte{192, 0, 2, 1}
	t0 := time.Unix(1000, 0)
	admitted := 0
	for i := 0; i < 15; i++ {
		if c.admit(lis, ip, t0) == 0 {
			admitted++
		}
	}
	assert.Equal(t, 10, admitted, "a full bucket holds one second's worth")
	assert.Len(t, hits, 5)
	assert.Equal(t, -1, c.admit(lis, ip, t0.Add(50*time.Millisecond)), "half a token")
	assert.Equal(t, 0, c.admit(lis, ip, t0.Add(100*time.Millisecond)), "one token after 1/rate")
	assert.Equal(t, -1, c.admit(lis, ip, t0.Add(100*time.Millisecond)))
	for i := 0; i < 10; i++ {
		assert.Equal(t, 0, c.admit(lis, ip, t0.Add(time.Hour)), "refilled, but never beyond one second's worth")
	}
	assert.Equal(t, -1, c.admit(lis, ip, t0.Add(time.Hour)))
	for _, h := range hits {
		assert.Equal(t, LimitAcceptRate, h)
	}
}

func TestAdmitLinkCounts(t *testing.T) {
	var hits []string
	c := &Context{log: slog.New(slog.NewTextHandler(io.Discard, nil)), cfg: &Config{
		OnLimit: func(_, limit string) { hits = append(hits, limit) },
	}}
	lis := &listener{cfg: Listener{Name: "edge", MaxLinks: 3, MaxLinksPerIP: 2, AcceptRate: -1}}
	a, b := []byte{192, 0, 2, 1}, []byte{192, 0, 2, 2}
	now := time.Now()
	var recs []*rec
	open := func(ip []byte) bool {
		if c.admit(lis, ip, now) != 0 {
			return false
		}
		r := &rec{lis: lis}
		c.countLink(r) // r.wsi is 0: no timer is armed
		recs = append(recs, r)
		return true
	}
	assert.True(t, open(a))
	assert.True(t, open(a))
	assert.False(t, open(a), "third from one address")
	assert.True(t, open(b))
	assert.False(t, open(b), "fourth in all")
	assert.Equal(t, []string{LimitMaxLinksPerIP, LimitMaxLinks}, hits)
	c.uncountLink(recs[0])
	c.uncountLink(recs[0]) // idempotent
	assert.True(t, open(a))
	for _, r := range recs {
		c.uncountLink(r)
	}
	assert.Zero(t, lis.adm.live)
	assert.Empty(t, lis.adm.perIP)
}
