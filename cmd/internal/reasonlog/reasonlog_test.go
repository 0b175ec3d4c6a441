package reasonlog

import (
	"bytes"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// A ws echo as the native program logs it on libwebsockets 4.1.6.
const native = `listening on 127.0.0.1:40211
[2026-11-24 10:05:47.001][DEBUG] cb ctx:1 wsi:0 reason:31 LWS_CALLBACK_GET_THREAD_ID
[2026-11-24 10:05:47.001][DEBUG] cb ctx:1 wsi:0 reason:27 LWS_CALLBACK_PROTOCOL_INIT
[2026-11-24 10:05:47.001][DEBUG] cb ctx:1 wsi:0 reason:71 LWS_CALLBACK_EVENT_WAIT_CANCELLED
[2026-11-24 10:05:47.002][DEBUG] cb ctx:1 wsi:1 reason:17 LWS_CALLBACK_FILTER_NETWORK_CONNECTION
[2026-11-24 10:05:47.002][DEBUG] cb ctx:1 wsi:2 reason:29 LWS_CALLBACK_WSI_CREATE
[2026-11-24 10:05:47.002][DEBUG] cb ctx:1 wsi:2 reason:0 LWS_CALLBACK_ESTABLISHED
[2026-11-24 10:05:47.003][DEBUG] cb ctx:1 wsi:2 reason:6 LWS_CALLBACK_RECEIVE
[2026-11-24 10:05:47.003][DEBUG] cb ctx:1 wsi:2 reason:11 LWS_CALLBACK_SERVER_WRITEABLE
[2026-11-24 10:05:47.004][DEBUG] cb ctx:1 wsi:2 reason:4 LWS_CALLBACK_CLOSED
[2026-11-24 10:05:47.004][DEBUG] cb ctx:1 wsi:2 reason:30 LWS_CALLBACK_WSI_DESTROY
`

func parse(t *testing.T, s string) *Log {
	t.Helper()
	lines, err := Parse(strings.NewReader(s))
	require.NoError(t, err)
	return Normalize(lines, DefaultRules)
}

// The same run logged by another process: other times, other numbers,
// other interleaving of connections, other EVENT_WAIT_CANCELLED count, log
// lines in between.
func TestSameDespiteTimingAndNumbering(t *testing.T) {
	other := `[2026-11-24 11:00:00.500][INFO] lwsgate listening addr=127.0.0.1:8090
[2026-11-24 11:00:00.501][DEBUG] cb ctx:3 wsi:0 reason:31 LWS_CALLBACK_GET_THREAD_ID
[2026-11-24 11:00:00.501][DEBUG] cb ctx:3 wsi:0 reason:71 LWS_CALLBACK_EVENT_WAIT_CANCELLED
[2026-11-24 11:00:00.501][DEBUG] cb ctx:3 wsi:0 reason:27 LWS_CALLBACK_PROTOCOL_INIT
[2026-11-24 11:00:00.502][DEBUG] cb ctx:3 wsi:9 reason:17 LWS_CALLBACK_FILTER_NETWORK_CONNECTION
[2026-11-24 11:00:00.502][DEBUG] cb ctx:3 wsi:12 reason:29 LWS_CALLBACK_WSI_CREATE
[2026-11-24 11:00:00.502][DEBUG] cb ctx:3 wsi:0 reason:71 LWS_CALLBACK_EVENT_WAIT_CANCELLED
[2026-11-24 11:00:00.502][DEBUG] cb ctx:3 wsi:12 reason:0 LWS_CALLBACK_ESTABLISHED
[2026-11-24 11:00:00.503][DEBUG] cb ctx:3 wsi:0 reason:71 LWS_CALLBACK_EVENT_WAIT_CANCELLED
[2026-11-24 11:00:00.503][DEBUG] cb ctx:3 wsi:12 reason:6 LWS_CALLBACK_RECEIVE
[2026-11-24 11:00:00.503][INFO] something else entirely
[2026-11-24 11:00:00.503][DEBUG] cb ctx:3 wsi:12 reason:11 LWS_CALLBACK_SERVER_WRITEABLE
[2026-11-24 11:00:00.504][DEBUG] cb ctx:3 wsi:12 reason:4 LWS_CALLBACK_CLOSED
[2026-11-24 11:00:00.504][DEBUG] cb ctx:3 wsi:12 reason:30 LWS_CALLBACK_WSI_DESTROY
`
	a, b := parse(t, native), parse(t, other)
	require.True(t, Equal(a, b))
	var out bytes.Buffer
	require.Zero(t, Report(&out, "native", "lwsgate", a, b, DefaultRules, false))
	require.Contains(t, out.String(), "reason 71 x1 in native, x3 in lwsgate")
	require.Equal(t, 1, a.SetAside[71])
	require.Equal(t, "29 WSI_CREATE, 0 ESTABLISHED, 6 RECEIVE, 11 SERVER_WRITEABLE, 4 CLOSED, 30 WSI_DESTROY", a.Sequence(2))
}

func TestCatchesDroppedReceiveAndMissingDestroy(t *testing.T) {
	for _, tc := range []struct {
		name, drop, want string
	}{
		{"dropped RECEIVE", "reason:6 LWS_CALLBACK_RECEIVE", "6 RECEIVE"},
		{"missing WSI_DESTROY", "reason:30 LWS_CALLBACK_WSI_DESTROY", "30 WSI_DESTROY"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var kept []string
			for _, l := range strings.Split(native, "\n") {
				if !strings.Contains(l, tc.drop) {
					kept = append(kept, l)
				}
			}
			a, b := parse(t, native), parse(t, strings.Join(kept, "\n"))
			require.False(t, Equal(a, b))
			var out bytes.Buffer
			require.Equal(t, 1, Report(&out, "native", "lwsgate", a, b, DefaultRules, true))
			require.Regexp(t, `\s`+tc.want+`\s+<\s*\n`, out.String())
			require.Contains(t, out.String(), "wsi 2: 1 differences")
			require.NotContains(t, out.String(), "wsi 1:", "connections that agree are left out with onlyDiffs")
		})
	}
}

func TestCatchesReorderAndExtra(t *testing.T) {
	swapped := strings.Replace(native,
		"reason:6 LWS_CALLBACK_RECEIVE\n[2026-11-24 10:05:47.003][DEBUG] cb ctx:1 wsi:2 reason:11 LWS_CALLBACK_SERVER_WRITEABLE",
		"reason:11 LWS_CALLBACK_SERVER_WRITEABLE\n[2026-11-24 10:05:47.003][DEBUG] cb ctx:1 wsi:2 reason:6 LWS_CALLBACK_RECEIVE", 1)
	require.NotEqual(t, native, swapped)
	require.False(t, Equal(parse(t, native), parse(t, swapped)))
	extra := native + "[2026-11-24 10:05:47.005][DEBUG] cb ctx:1 wsi:0 reason:28 LWS_CALLBACK_PROTOCOL_DESTROY\n"
	var out bytes.Buffer
	require.Equal(t, 1, Report(&out, "a", "b", parse(t, native), parse(t, extra), DefaultRules, true))
	require.Contains(t, out.String(), "> 28 PROTOCOL_DESTROY")
}

// On the libev loop the WRITEABLE after a DROP_PROTOCOL is timing's, and
// only there: a missing echo WRITEABLE is still a difference.
func TestLibevCloseAckWriteable(t *testing.T) {
	const closing = `[2026-11-24 10:05:47.001][DEBUG] cb ctx:1 wsi:2 reason:29 LWS_CALLBACK_WSI_CREATE
[2026-11-24 10:05:47.001][DEBUG] cb ctx:1 wsi:2 reason:6 LWS_CALLBACK_RECEIVE
[2026-11-24 10:05:47.001][DEBUG] cb ctx:1 wsi:2 reason:11 LWS_CALLBACK_SERVER_WRITEABLE
[2026-11-24 10:05:47.001][DEBUG] cb ctx:1 wsi:2 reason:78 LWS_CALLBACK_WS_SERVER_DROP_PROTOCOL
`
	const end = `[2026-11-24 10:05:47.002][DEBUG] cb ctx:1 wsi:2 reason:4 LWS_CALLBACK_CLOSED
[2026-11-24 10:05:47.002][DEBUG] cb ctx:1 wsi:2 reason:30 LWS_CALLBACK_WSI_DESTROY
`
	const ack = "[2026-11-24 10:05:47.002][DEBUG] cb ctx:1 wsi:2 reason:11 LWS_CALLBACK_SERVER_WRITEABLE\n"
	with, without := closing+ack+end, closing+end
	noEcho := strings.Replace(without, "[2026-11-24 10:05:47.001][DEBUG] cb ctx:1 wsi:2 reason:11 LWS_CALLBACK_SERVER_WRITEABLE\n", "", 1)
	norm := func(s string, r Rules) *Log {
		lines, err := Parse(strings.NewReader(s))
		require.NoError(t, err)
		return Normalize(lines, r)
	}

	require.False(t, Equal(norm(with, DefaultRules), norm(without, DefaultRules)), "poll: compared")
	a, b := norm(with, LibevRules), norm(without, LibevRules)
	require.True(t, Equal(a, b))
	require.Equal(t, 1, a.SetAsideAfter[[2]int{78, 11}])
	var out bytes.Buffer
	require.Zero(t, Report(&out, "native", "lwsgate", a, b, LibevRules, true))
	require.Contains(t, out.String(), "reason 11 after 78 x1 in native, x0 in lwsgate")

	require.NotEqual(t, without, noEcho)
	require.False(t, Equal(norm(noEcho, LibevRules), b), "an echo's WRITEABLE is compared on libev too")
	require.Equal(t, RulesFor("poll").After, DefaultRules.After)
	require.Equal(t, RulesFor("libev").After, LibevRules.After)
}

// A client's WRITEABLEs on libev: two in a row are one; a missing
// RECEIVE or WRITEABLE is still a difference.
func TestLibevClientWriteables(t *testing.T) {
	seq := func(reasons ...int) *Log {
		var b strings.Builder
		for _, r := range reasons {
			fmt.Fprintf(&b, "[2026-11-24 10:05:47.001][DEBUG] cb ctx:1 wsi:1 reason:%d\n", r)
		}
		lines, err := Parse(strings.NewReader(b.String()))
		require.NoError(t, err)
		return Normalize(lines, LibevRules)
	}
	native := seq(44, 2, 3, 10, 8, 10, 80, 75, 30)
	require.True(t, Equal(native, seq(44, 2, 3, 10, 10, 8, 10, 80, 75, 30)))
	require.True(t, Equal(native, seq(44, 2, 3, 10, 8, 10, 10, 80, 75, 30)))
	require.Equal(t, 1, seq(44, 2, 3, 10, 10, 8).SetAsideAfter[[2]int{10, 10}])
	require.False(t, Equal(native, seq(44, 2, 3, 8, 10, 80, 75, 30)), "the first WRITEABLE is compared")
	require.False(t, Equal(native, seq(44, 2, 3, 10, 10, 80, 75, 30)), "the RECEIVE is compared")
	require.False(t, Equal(native, seq(44, 2, 3, 10, 8, 80, 75, 30)), "the closing WRITEABLE is compared")
}
