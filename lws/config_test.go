package lws

import (
	"net"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lwsgate/lwsgate/callbacks"
	"github.com/lwsgate/lwsgate/internal/testutil"
)

// newErr runs New with listeners that must be refused.
func newErr(t *testing.T, ls ...Listener) error {
	t.Helper()
	c, err := New(&Config{Listeners: ls, Logger: testLogger(t)})
	if err == nil {
		c.Close()
	}
	return err
}

func TestConfigPortInUse(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	addr := ln.Addr().String()

	err = newErr(t, Listener{Name: "busy", Addr: addr, Handler: EchoHandler{}})
	require.Error(t, err)
	assert.Contains(t, err.Error(), addr)
	assert.Contains(t, err.Error(), "address already in use")
	assert.Contains(t, err.Error(), `"busy"`)

	// Also when another Context holds it.
	_, taken := startServer(t, Listener{Handler: EchoHandler{}})
	err = newErr(t, Listener{Addr: taken, Handler: EchoHandler{}})
	require.Error(t, err)
	assert.Contains(t, err.Error(), taken)
	assert.Contains(t, err.Error(), "address already in use")
}

func TestConfigTLSMissingFile(t *testing.T) {
	dir := t.TempDir()
	missing := dir + "/nope/cert.pem"
	err := newErr(t, Listener{Addr: "127.0.0.1:0", TLS: &TLSFiles{CertFile: missing, KeyFile: missing}})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "TLS.CertFile")
	assert.Contains(t, err.Error(), missing)

	err = newErr(t, Listener{Addr: "127.0.0.1:0", TLS: &TLSFiles{CertFile: dir, KeyFile: missing}})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "TLS.CertFile")
	assert.Contains(t, err.Error(), "is a directory")

	err = newErr(t, Listener{Addr: "127.0.0.1:0", TLS: &TLSFiles{KeyFile: missing}})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "TLS.CertFile")
	assert.Contains(t, err.Error(), "required")
}

func TestConfigBadAddr(t *testing.T) {
	for _, addr := range []string{"", "127.0.0.1", "127.0.0.1:99999", "127.0.0.1:http", "example.com:80", ":-1"} {
		err := newErr(t, Listener{Name: "x", Addr: addr})
		if assert.Error(t, err, "Addr %q", addr) {
			assert.Contains(t, err.Error(), ".Addr", "Addr %q", addr)
			assert.Contains(t, err.Error(), strconv.Quote(addr), "Addr %q", addr)
		}
	}
}

func TestConfigDuplicateNames(t *testing.T) {
	err := newErr(t,
		Listener{Name: "api", Addr: "127.0.0.1:0"},
		Listener{Name: "api", Addr: "127.0.0.1:0"})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "duplicate")
	assert.Contains(t, err.Error(), "api")

	// Names default to Addr, so two listeners on one address clash too.
	err = newErr(t, Listener{Addr: "127.0.0.1:0"}, Listener{Addr: "127.0.0.1:0"})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "duplicate")
}

func TestConfigOtherFields(t *testing.T) {
	for _, tc := range []struct {
		l     Listener
		field string
	}{
		{Listener{Accept: 4}, "Accept"},
		{Listener{MaxSendQueue: -1}, "MaxSendQueue"},
		{Listener{MaxBodySize: -1}, "MaxBodySize"},
		{Listener{MaxHeaderBytes: 70000}, "MaxHeaderBytes"},
		{Listener{HeaderTimeout: time.Millisecond}, "HeaderTimeout"},
		{Listener{BodyTimeout: -time.Second}, "BodyTimeout"},
		{Listener{PingInterval: 5 * time.Second, PingTimeout: time.Second}, "PingTimeout"},
		{Listener{Subprotocols: []string{"a b"}}, "Subprotocols[0]"},
		{Listener{Subprotocols: []string{"chat", "http"}}, "Subprotocols[1]"},
		{Listener{ExtraHeaders: []string{"X-A:"}}, "ExtraHeaders[0]"},
	} {
		tc.l.Addr = "127.0.0.1:0"
		err := newErr(t, tc.l)
		if assert.Error(t, err, tc.field) {
			assert.Contains(t, err.Error(), "."+tc.field)
		}
	}
	_, err := New(&Config{NetworkTimeout: time.Millisecond})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "NetworkTimeout")
	_, err = New(&Config{MaxHeaderBytes: 70000})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "Config.MaxHeaderBytes")
}

func TestConfigNotModified(t *testing.T) {
	cfg := &Config{Listeners: []Listener{{Addr: "127.0.0.1:0"}}, Logger: testLogger(t)}
	c, err := New(cfg)
	require.NoError(t, err)
	require.NoError(t, c.Close())
	assert.Equal(t, Listener{Addr: "127.0.0.1:0"}, cfg.Listeners[0])
	assert.Zero(t, cfg.NetworkTimeout)
}

// TestCheckKeepalive: one check of ping times for Listener, DialOptions
// and the gateway's keepalive section, naming the field at fault.
func TestCheckKeepalive(t *testing.T) {
	s := time.Second
	for _, tc := range []struct {
		interval, timeout time.Duration
		field             string // "": accepted
	}{
		{0, 0, ""},
		{0, 5 * s, ""}, // the default pings: the timeout is not used
		{5 * s, 0, ""}, // 0: 15s
		{5 * s, 6 * s, ""},
		{65525 * s, 0, ""},
		{-s, 0, "PingTimeout"},
		{0, -s, "PingTimeout"},
		{5 * s, 5 * s, "PingTimeout"},
		{5 * s, 2 * s, "PingTimeout"},
		{500 * time.Millisecond, 0, "PingInterval"},
		{1500 * time.Millisecond, 0, "PingInterval"},
		{5 * s, 7500 * time.Millisecond, "PingInterval"},
		{5 * s, 65536 * s, "PingInterval"},
		{65530 * s, 0, "PingInterval"}, // 0 stands for 65540s
	} {
		err := CheckKeepalive(tc.interval, tc.timeout)
		if tc.field == "" {
			assert.NoError(t, err, "%v %v", tc.interval, tc.timeout)
			continue
		}
		var ke *KeepaliveError
		if assert.ErrorAs(t, err, &ke, "%v %v", tc.interval, tc.timeout) {
			assert.Equal(t, tc.field, ke.Field, "%v %v", tc.interval, tc.timeout)
			assert.True(t, strings.HasPrefix(err.Error(), tc.field), err.Error())
		}
	}
	// What a listener's links are pinged with (keepalive.go): PingTimeout
	// alone changes nothing.
	for _, tc := range []struct {
		l    Listener
		want keepalive
	}{
		{Listener{}, keepalive{5 * time.Minute, 5*time.Minute + 10*s}},
		{Listener{PingTimeout: 5 * s}, keepalive{5 * time.Minute, 5*time.Minute + 10*s}},
		{Listener{PingInterval: 5 * s}, keepalive{5 * s, 15 * s}},
		{Listener{PingInterval: 5 * s, PingTimeout: 6 * s}, keepalive{5 * s, 6 * s}},
	} {
		assert.Equal(t, tc.want, keepaliveOf(&tc.l), "%+v", tc.l)
	}
	// A listener's ping times are whole seconds, as a dialled link's.
	err := newErr(t, Listener{Addr: "127.0.0.1:0", PingInterval: 1500 * time.Millisecond})
	assert.ErrorContains(t, err, ".PingInterval: ping times are whole seconds")
	_, err = Dial(t.Context(), "ws://127.0.0.1:1/", &DialOptions{PingInterval: 1500 * time.Millisecond})
	assert.ErrorContains(t, err, "lws: DialOptions.PingInterval: ping times are whole seconds")
}

func TestDefaultMaxSendQueue(t *testing.T) {
	assert.Equal(t, int64(4<<20), DefaultMaxSendQueue(0))
	assert.Equal(t, int64(4<<20), DefaultMaxSendQueue(-1), "no message limit")
	assert.Equal(t, int64(4<<20), DefaultMaxSendQueue(DefaultMaxMessageSize))
	assert.Equal(t, int64(32<<20), DefaultMaxSendQueue(16<<20))
}

func TestAcceptString(t *testing.T) {
	assert.Equal(t, "ws", AcceptWebSocket.String())
	assert.Equal(t, "http", AcceptHTTP.String())
	assert.Equal(t, "ws,http", (AcceptWebSocket | AcceptHTTP).String())
}

var traceLine = regexp.MustCompile(`^\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}\]\[DEBUG\] cb ctx:\d+ wsi:\d+ reason:\d+ LWS_CALLBACK_[A-Z0-9_]+$`)

func TestReasonLog(t *testing.T) {
	var buf testutil.Buffer
	links := make(chan Link, 1)
	closed := make(chan Link, 1)
	ctx, addr := startServer(t, Listener{Handler: EchoHandler{}}, func(c *Config) {
		c.Trace = &buf
		c.OnLinkOpen = func(l Link) { links <- l }
		c.OnLinkClose = func(l Link, _ CloseError) { closed <- l }
	})
	ws := dial(t, addr, nil)
	link := waitFor(t, links, "OnLinkOpen")
	echo(t, ws, "traced")
	require.NoError(t, ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(1000, ""), time.Now().Add(5*time.Second)))
	assert.Equal(t, link.ID, waitFor(t, closed, "OnLinkClose").ID)
	// The log is flushed once per service pass; Close flushes the last.
	require.NoError(t, ctx.Close())

	lines := strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n")
	require.NotEmpty(t, lines)
	want := []callbacks.Reason{callbacks.Established, callbacks.Receive, callbacks.ServerWriteable, callbacks.Closed, callbacks.WSIDestroy}
	next := 0
	ctxIDs := map[string]bool{}
	linkTag := " wsi:" + strconv.FormatUint(link.ID, 10) + " "
	for _, l := range lines {
		require.Regexp(t, traceLine, l)
		f := strings.Fields(l)
		ctxIDs[f[3]] = true
		// reason:N matches the name.
		n, err := strconv.Atoi(strings.TrimPrefix(f[5], "reason:"))
		require.NoError(t, err)
		assert.Equal(t, callbacks.Reason(n).String(), f[6], l)
		if next < len(want) && strings.Contains(l, linkTag) && n == int(want[next]) {
			next++
		}
	}
	assert.Len(t, ctxIDs, 1, "one context, one ctx number")
	assert.Equal(t, len(want), next, "server link %d: saw only %v of %v in order", link.ID, want[:next], want)
}
