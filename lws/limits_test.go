package lws

import (
	"io"
	"log/slog"
	"net/http"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/lwsgate/lwsgate/internal/testutil"
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
		p, ok := peerOf(append(tc.in, 0x1f, 0x90))
		assert.True(t, ok)
		assert.Equal(t, tc.want, ipKey(p.Addr()).String())
		assert.Equal(t, uint16(8080), p.Port(), "the port in network order")
	}
	for _, bad := range [][]byte{{1, 2, 3}, {192, 0, 2, 7}, make([]byte, 16), make([]byte, 17)} {
		_, ok := peerOf(bad)
		assert.False(t, ok, "%d bytes", len(bad))
	}
	assert.Equal(t, "2001:db8:1:2::/64", keyString(ipKey(netip.MustParseAddr("2001:db8:1:2::1"))))
	assert.Equal(t, "192.0.2.7", keyString(ipKey(netip.MustParseAddr("::ffff:192.0.2.7"))))
}

// TestAdmitAcceptRate drives the token bucket with a made-up clock.
func TestAdmitAcceptRate(t *testing.T) {
	var hits []Limit
	c := &Context{log: slog.New(slog.NewTextHandler(io.Discard, nil)), cfg: &Config{
		OnLimit: func(_ string, limit Limit) { hits = append(hits, limit) },
	}}
	lis := &listener{cfg: Listener{Name: "edge", AcceptRate: 10}, adm: &admission{}}
	ip := netip.MustParseAddr("192.0.2.1")
	t0 := time.Unix(1000, 0)
	n := 0
	for i := 0; i < 15; i++ {
		if c.admission(lis, ip, true, false, t0) == admitted {
			n++
		}
	}
	assert.Equal(t, 10, n, "a full bucket holds one second's worth")
	assert.Len(t, hits, 5)
	assert.Equal(t, overAcceptRate, c.admission(lis, ip, true, false, t0.Add(50*time.Millisecond)), "half a token")
	assert.Equal(t, admitted, c.admission(lis, ip, true, false, t0.Add(100*time.Millisecond)), "one token after 1/rate")
	assert.Equal(t, overAcceptRate, c.admission(lis, ip, true, false, t0.Add(100*time.Millisecond)))
	for i := 0; i < 10; i++ {
		assert.Equal(t, admitted, c.admission(lis, ip, true, false, t0.Add(time.Hour)), "refilled, but never beyond one second's worth")
	}
	assert.Equal(t, overAcceptRate, c.admission(lis, ip, true, false, t0.Add(time.Hour)))
	for _, h := range hits {
		assert.Equal(t, LimitAcceptRate, h)
	}
}

func TestAdmitLinkCounts(t *testing.T) {
	var hits []Limit
	c := &Context{log: slog.New(slog.NewTextHandler(io.Discard, nil)), cfg: &Config{
		OnLimit: func(_ string, limit Limit) { hits = append(hits, limit) },
	}}
	lis := &listener{cfg: Listener{Name: "edge", MaxLinks: 3, MaxLinksPerIP: 2, AcceptRate: -1}, adm: &admission{}}
	a, b := []byte{192, 0, 2, 1, 0, 80}, []byte{192, 0, 2, 2, 0, 80}
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
	var log testutil.Buffer
	c := &Context{log: slog.New(slog.NewTextHandler(&log, nil)), cfg: &Config{}}
	lis := &listener{cfg: Listener{Name: "edge", MaxLinks: 1, AcceptRate: -1}, adm: &admission{}}
	ip := []byte{192, 0, 2, 1, 0, 80}
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

// TestSetListenerLimitsMessage: MaxMessageSize raised and lowered on a
// running Context applies to the link already open and to a new one: a
// message the old limit refused passes after a raise, and one over a
// lowered limit closes the link with 1009, reported as max_message.
func TestSetListenerLimitsMessage(t *testing.T) {
	lim := newLimitLog()
	c, addr := startServer(t, Listener{Name: "edge", Handler: EchoHandler{}, MaxMessageSize: 1 << 10}, lim.hook)
	ws := dial(t, addr, nil)
	echo(t, ws, strings.Repeat("a", 1<<10))
	require.NoError(t, c.SetListenerLimits("edge", ListenerLimits{MaxMessageSize: 64 << 10}))
	echo(t, ws, strings.Repeat("b", 32<<10))
	require.NoError(t, c.SetListenerLimits("edge", ListenerLimits{MaxMessageSize: 16}))
	echo(t, ws, strings.Repeat("c", 16))
	require.NoError(t, ws.WriteMessage(websocket.TextMessage, []byte(strings.Repeat("d", 17))))
	assert.Equal(t, websocket.CloseMessageTooBig, readClose(t, ws).Code)
	lim.expect(t, "edge", LimitMaxMessage)

	ws = dial(t, addr, nil)
	echo(t, ws, strings.Repeat("e", 16))
	require.NoError(t, ws.WriteMessage(websocket.TextMessage, []byte(strings.Repeat("f", 17))))
	assert.Equal(t, websocket.CloseMessageTooBig, readClose(t, ws).Code)
	lim.expect(t, "edge", LimitMaxMessage)
	lim.none(t)
}

// TestSetListenerLimitsCompressed: on a link with permessage-deflate a
// lowered MaxMessageSize bounds the compressed bytes of a message too,
// which the C layer counts (cgo.WSI.SetCompressedLimit): 1 MiB of empty
// deflate blocks, well within the bound of the 16 MiB the link opened
// with, is cut off with 1009 (max_compressed) under 64 KiB's. (Left at
// the old bound, the C layer never calls back for input that inflates
// to nothing, and the test fails at hangTimeout.)
func TestSetListenerLimitsCompressed(t *testing.T) {
	lim := newLimitLog()
	c, addr := startServer(t, Listener{Name: "edge", Handler: EchoHandler{}, Compression: true, MaxMessageSize: 16 << 20}, lim.hook, quickClose)
	w := dialPMD(t, addr, "permessage-deflate")
	require.Equal(t, "permessage-deflate", w.resp.Header.Get("Sec-Websocket-Extensions"))
	require.NoError(t, c.SetListenerLimits("edge", ListenerLimits{MaxMessageSize: 64 << 10}))
	b := clientFrame(false, true, 2, emptyBlocks(1020))
	for range 1023 {
		b = append(b, clientFrame(false, false, 0, emptyBlocks(1020))...)
	}
	assert.Equal(t, int(StatusMessageTooBig), w.sendThenReadClose(b))
	lim.expect(t, "edge", LimitMaxCompressed)
}

// TestSetListenerLimitsSendQueue: MaxSendQueue changed on a running
// Context applies to the next Send of a link already open.
func TestSetListenerLimitsSendQueue(t *testing.T) {
	rec := newRecorder()
	c, addr := startServer(t, Listener{Name: "edge", Handler: rec, MaxSendQueue: 1 << 10})
	ws := dial(t, addr, nil)
	conn := waitFor(t, rec.opens, "OnOpen")
	big := make([]byte, 4<<10)
	require.ErrorIs(t, conn.Send(BinaryMessage, big), ErrSendQueueFull)
	require.NoError(t, c.SetListenerLimits("edge", ListenerLimits{MaxSendQueue: 1 << 20}))
	require.NoError(t, conn.Send(BinaryMessage, big))
	_, got, err := ws.ReadMessage()
	require.NoError(t, err)
	assert.Len(t, got, len(big))
	require.NoError(t, c.SetListenerLimits("edge", ListenerLimits{MaxSendQueue: 1 << 10}))
	assert.ErrorIs(t, conn.Send(BinaryMessage, big), ErrSendQueueFull)
}

// TestSetListenerLimitsBody: MaxBodySize changed on a running Context
// applies to the next request.
func TestSetListenerLimitsBody(t *testing.T) {
	h := HTTPHandlerFunc(func(w *ResponseWriter, r *Request) { _ = w.Respond(http.StatusOK, nil) })
	c, addr := startServer(t, Listener{Name: "edge", HTTPHandler: h, MaxBodySize: 1 << 10})
	cl := httpClient(t)
	post := func(n int) int {
		resp, _ := doHTTP(t, cl, "POST", "http://"+addr+"/", make([]byte, n), nil)
		return resp.StatusCode
	}
	assert.Equal(t, http.StatusRequestEntityTooLarge, post(2<<10))
	require.NoError(t, c.SetListenerLimits("edge", ListenerLimits{MaxBodySize: 4 << 10}))
	assert.Equal(t, http.StatusOK, post(2<<10))
	require.NoError(t, c.SetListenerLimits("edge", ListenerLimits{MaxBodySize: 100}))
	assert.Equal(t, http.StatusRequestEntityTooLarge, post(101))
	assert.Equal(t, http.StatusOK, post(100))
}

// TestSetListenerLimitsLinks: MaxLinks lowered below the links a listener
// holds keeps them and refuses the next; raised, it takes more again.
func TestSetListenerLimitsLinks(t *testing.T) {
	c, addr := startServer(t, Listener{Name: "edge", Handler: EchoHandler{}, MaxLinks: 3})
	a, b := dial(t, addr, nil), dial(t, addr, nil)
	require.NoError(t, c.SetListenerLimits("edge", ListenerLimits{MaxLinks: 1}))
	echo(t, a, "kept")
	echo(t, b, "kept")
	_, resp, err := dialWith(t, &websocket.Dialer{}, addr, "/", nil)
	require.ErrorIs(t, err, websocket.ErrBadHandshake)
	assert.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)
	require.NoError(t, c.SetListenerLimits("edge", ListenerLimits{MaxLinks: 3}))
	echo(t, dial(t, addr, nil), "taken")
}

// TestSetListenerLimitsAcceptRate: AcceptRate lowered on a running
// Context refuses the next connection beyond the new rate, the bucket
// filled at the old one notwithstanding.
func TestSetListenerLimitsAcceptRate(t *testing.T) {
	c, addr := startServer(t, Listener{Name: "edge", Handler: EchoHandler{}, AcceptRate: 1000})
	echo(t, dial(t, addr, nil), "first")
	require.NoError(t, c.SetListenerLimits("edge", ListenerLimits{AcceptRate: 1}))
	echo(t, dial(t, addr, nil), "within the new rate")
	_, resp, err := dialWith(t, &websocket.Dialer{}, addr, "/", nil)
	require.ErrorIs(t, err, websocket.ErrBadHandshake)
	assert.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)
}

// TestSetListenerLimitsDefaults: zero fields mean what they mean to New,
// and what SetListenerLimits refuses is refused whole, naming the field.
func TestSetListenerLimitsDefaults(t *testing.T) {
	c, err := New(&Config{Logger: testLogger(t), Listeners: []Listener{
		{Name: "edge", Addr: "127.0.0.1:0", MaxMessageSize: 1, MaxSendQueue: 2, MaxBodySize: 3, MaxLinks: 4, MaxLinksPerIP: 5, AcceptRate: 6},
		{Name: "zero", Addr: "127.0.0.1:0"},
	}})
	require.NoError(t, err)
	defer c.Close()
	limitsOf := func(i int) (l ListenerLimits, maxMsg int64) {
		require.NoError(t, c.Do(func() {
			cfg := &c.listeners[i].cfg
			l = ListenerLimits{cfg.MaxMessageSize, cfg.MaxSendQueue, cfg.MaxBodySize, cfg.MaxLinks, cfg.MaxLinksPerIP, cfg.AcceptRate}
			maxMsg = c.listeners[i].opts.maxMessage
		}))
		return l, maxMsg
	}
	set := ListenerLimits{MaxMessageSize: 7, MaxSendQueue: 8, MaxBodySize: 9, MaxLinks: 10, MaxLinksPerIP: 11, AcceptRate: 12}
	require.NoError(t, c.SetListenerLimits("edge", set))
	got, maxMsg := limitsOf(0)
	assert.Equal(t, set, got)
	assert.Equal(t, int64(7), maxMsg)

	for _, bad := range []struct {
		lim  ListenerLimits
		want string
	}{
		{ListenerLimits{MaxSendQueue: -1}, `lws: SetListenerLimits("edge"): MaxSendQueue -1: must not be negative`},
		{ListenerLimits{MaxBodySize: -1}, `lws: SetListenerLimits("edge"): MaxBodySize -1: must not be negative`},
	} {
		assert.EqualError(t, c.SetListenerLimits("edge", bad.lim), bad.want)
	}
	got, _ = limitsOf(0)
	assert.Equal(t, set, got, "a refused change applied")
	assert.EqualError(t, c.SetListenerLimits("nope", set), `lws: SetListenerLimits: no listener "nope"`)

	require.NoError(t, c.SetListenerLimits("edge", ListenerLimits{}))
	got, _ = limitsOf(0)
	zero, _ := limitsOf(1)
	assert.Equal(t, zero, got, "zero limits are New's defaults")
	require.NoError(t, c.Close())
	assert.ErrorIs(t, c.SetListenerLimits("edge", set), ErrClosed)
}
