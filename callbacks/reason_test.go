package callbacks

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestReasonStringIsCName(t *testing.T) {
	assert.Equal(t, "LWS_CALLBACK_RECEIVE", Receive.String())
	assert.Equal(t, "LWS_CALLBACK_EVENT_WAIT_CANCELLED", EventWaitCancelled.String())
	assert.Equal(t, "LWS_CALLBACK_UNKNOWN(4242)", Reason(4242).String())
	assert.False(t, Reason(4242).Known())
	for _, r := range Reasons() {
		assert.True(t, strings.HasPrefix(r.String(), "LWS_CALLBACK_"), r)
		assert.True(t, r.Known())
	}
}

func TestSeedValues(t *testing.T) {
	// The values the seed's note recorded on the original system.
	seed := map[Reason]int{
		Established: 0, ClientConnectionError: 1, Closed: 4, ClosedHTTP: 5, Receive: 6,
		ServerWriteable: 11, HTTP: 12, HTTPBody: 13, HTTPBodyCompletion: 14,
		HTTPWriteable: 16, FilterNetworkConnection: 17, FilterHTTPConnection: 18,
		ServerNewClientInstantiated: 19, FilterProtocolConnection: 20, ProtocolInit: 27,
		WSICreate: 29, WSIDestroy: 30, WSPeerInitiatedClose: 38, HTTPBindProtocol: 49,
		HTTPDropProtocol: 50, AddHeaders: 53, EventWaitCancelled: 71, WSServerDropProtocol: 78,
		HTTPConfirmUpgrade: 86,
	}
	for r, v := range seed {
		assert.Equal(t, v, int(r), r.String())
	}
}

func TestReasonsSortedAndUnique(t *testing.T) {
	rs := Reasons()
	require.NotEmpty(t, rs)
	for i := 1; i < len(rs); i++ {
		assert.Less(t, rs[i-1], rs[i])
	}
}

func TestAppendTraceLine(t *testing.T) {
	ts := time.Date(2026, 11, 24, 10, 5, 47, 123_999_999, time.Local)
	got := string(AppendTraceLine(nil, ts, 1, 7, Receive))
	assert.Equal(t, "[2026-11-24 10:05:47.123][DEBUG] cb ctx:1 wsi:7 reason:6 LWS_CALLBACK_RECEIVE\n", got)
	ts = time.Date(2026, 1, 2, 3, 4, 5, 0, time.Local)
	got = string(AppendTraceLine(nil, ts, 12, 0, Reason(999)))
	assert.Equal(t, "[2026-01-02 03:04:05.000][DEBUG] cb ctx:12 wsi:0 reason:999 LWS_CALLBACK_UNKNOWN(999)\n", got)
}

func TestAppendTraceLineDoesNotAllocate(t *testing.T) {
	buf := make([]byte, 0, 256)
	ts := time.Now()
	allocs := testing.AllocsPerRun(100, func() {
		buf = AppendTraceLine(buf[:0], ts, 1, 2, ServerWriteable)
	})
	assert.Zero(t, allocs)
}

func TestFlagsComplete(t *testing.T) {
	assert.True(t, (FinalFragment | NoRemaining).Complete())
	assert.True(t, (FirstFragment | FinalFragment | NoRemaining | Binary).Complete())
	assert.False(t, FinalFragment.Complete())
	assert.False(t, (FirstFragment | NoRemaining).Complete())
}

func TestFakeWSI(t *testing.T) {
	assert.True(t, EventWaitCancelled.FakeWSI())
	assert.True(t, ProtocolInit.FakeWSI())
	assert.False(t, FilterNetworkConnection.FakeWSI(), "17 carries the listening wsi, a real one")
	assert.False(t, Receive.FakeWSI())
}
