package main

import (
	"bytes"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestDefaultConfigAndCheckConfig(t *testing.T) {
	var out, errb bytes.Buffer
	require.Equal(t, 0, run(t.Context(), []string{"defaultconfig"}, &out, &errb, nil))
	p := filepath.Join(t.TempDir(), "gate.yaml")
	require.NoError(t, os.WriteFile(p, out.Bytes(), 0o600))
	out.Reset()
	require.Equal(t, 0, run(t.Context(), []string{"checkconfig", p}, &out, &errb, nil), errb.String())
	assert.Contains(t, out.String(), "ok (1 listeners")

	bad := filepath.Join(t.TempDir(), "bad.yaml")
	require.NoError(t, os.WriteFile(bad, []byte("listeners:\n  - addr: :8090\n    limits:\n      max_mesage: 1KiB\n"), 0o600))
	errb.Reset()
	assert.Equal(t, 1, run(t.Context(), []string{"checkconfig", bad}, &out, &errb, nil))
	assert.Contains(t, errb.String(), "bad.yaml:4:")
	assert.Contains(t, errb.String(), "max_mesage")

	// Running with it fails the same way, as a usage error.
	errb.Reset()
	assert.Equal(t, 2, run(t.Context(), []string{"-config", bad}, &out, &errb, nil))
	assert.Contains(t, errb.String(), "bad.yaml:4:")
}

func TestConfigFileFlagsAndSIGHUP(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "gate.yaml")
	write := func(reply string) {
		cfg := "listeners:\n  - addr: 127.0.0.1:0\nrules:\n  - {action: reply, reply: " + reply + "}\n"
		require.NoError(t, os.WriteFile(p, []byte(cfg), 0o600))
	}
	write("one")
	// -listen from startGateway overrides the file's address.
	addr, logs := startGateway(t, "-config", p, "-trace=false")
	ws, resp, err := websocket.DefaultDialer.Dial("ws://"+addr+"/", nil)
	require.NoError(t, err)
	resp.Body.Close()
	defer ws.Close()
	_ = ws.SetReadDeadline(time.Now().Add(10 * time.Second))
	require.NoError(t, ws.WriteMessage(websocket.TextMessage, []byte("x")))
	_, m, err := ws.ReadMessage()
	require.NoError(t, err)
	assert.Equal(t, "one", string(m))

	write("two")
	require.NoError(t, syscall.Kill(os.Getpid(), syscall.SIGHUP))
	require.Eventually(t, func() bool { return strings.Contains(logs.String(), "config reloaded") }, 10*time.Second, 10*time.Millisecond)
	require.NoError(t, ws.WriteMessage(websocket.TextMessage, []byte("x")))
	_, m, err = ws.ReadMessage()
	require.NoError(t, err)
	assert.Equal(t, "two", string(m), "the same link, the reloaded rules")

	// A broken file: the reload is refused and the running config stays.
	require.NoError(t, os.WriteFile(p, []byte("rules: [{action: teleport}]\n"), 0o600))
	require.NoError(t, syscall.Kill(os.Getpid(), syscall.SIGHUP))
	require.Eventually(t, func() bool { return strings.Contains(logs.String(), "reload failed") }, 10*time.Second, 10*time.Millisecond)
	require.NoError(t, ws.WriteMessage(websocket.TextMessage, []byte("x")))
	_, m, err = ws.ReadMessage()
	require.NoError(t, err)
	assert.Equal(t, "two", string(m))
	assert.Contains(t, logs.String(), "teleport")
}

func TestJSONLogs(t *testing.T) {
	addr, logs := startGateway(t, "-log-format", "json", "-trace=false")
	r, err := http.Get("http://" + addr + "/healthz")
	require.NoError(t, err)
	r.Body.Close()
	for _, l := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
		assert.True(t, json.Valid([]byte(l)), "not JSON: %s", l)
	}
	assert.Contains(t, logs.String(), `"msg":"lwsgate listening"`)
}

// Listeners on port 0 get their ports from the kernel; the log names each
// address bound (the admin listener's too), so that whoever started
// lwsgate can reach them.
func TestLogNamesBoundAddresses(t *testing.T) {
	p := filepath.Join(t.TempDir(), "gate.yaml")
	cfg := "listeners:\n  - addr: 127.0.0.1:0\n  - {name: second, addr: \"127.0.0.1:0\", compression: true}\n"
	require.NoError(t, os.WriteFile(p, []byte(cfg), 0o600))
	first, logs := startGateway(t, "-config", p, "-trace=false")

	found := func(re string) string {
		m := regexp.MustCompile(re).FindStringSubmatch(logs.String())
		require.NotNil(t, m, "%s in the log:\n%s", re, logs)
		return m[1]
	}
	addrs := map[string]string{
		"main":   found(`lwsgate listening addr=(127\.0\.0\.1:\d+) `),
		"admin":  found(`lwsgate listening .* admin=(127\.0\.0\.1:\d+) `),
		"second": found(`listening listener=second addr=(127\.0\.0\.1:\d+) .*compression=true`),
	}
	assert.Equal(t, first, addrs["main"])
	for name, a := range addrs {
		assert.NotEqual(t, "127.0.0.1:0", a, name)
		r, err := http.Get("http://" + a + "/healthz")
		require.NoError(t, err, name)
		r.Body.Close()
		assert.Equal(t, http.StatusOK, r.StatusCode, name)
	}
}

// TestWorkersFlag: -workers N runs N workers (the startup log names their
// reason-log contexts); a negative count is a usage error naming it.
func TestWorkersFlag(t *testing.T) {
	_, logs := startGateway(t, "-workers", "3", "-trace=false")
	m := regexp.MustCompile(`workers listener=main n=3 first=0 reason_log_ctx="\[(\d+) (\d+) (\d+)\]"`).FindStringSubmatch(logs.String())
	require.NotNil(t, m, "the workers line in the log:\n%s", logs)

	var out, errb bytes.Buffer
	assert.Equal(t, 2, run(t.Context(), []string{"-workers", "-1"}, &out, &errb, nil))
	assert.Contains(t, errb.String(), "-workers -1")
}
