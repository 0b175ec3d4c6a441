package gateway

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lwsgate/lwsgate/lws"
)

func TestDefaultConfigIsTheSeeds(t *testing.T) {
	c := DefaultConfig()
	require.Len(t, c.Listeners, 1)
	l := c.Listeners[0]
	assert.Equal(t, ":8090", l.Addr)
	assert.Equal(t, []string{"tcplisten", "httplisten"}, l.Links)
	assert.Equal(t, "127.0.0.1:8091", c.Admin.Addr, "admin API off the public port")
	assert.Equal(t, "echo", c.Rules[len(c.Rules)-1].Action)
	assert.Equal(t, Size(16<<20), l.Limits.MaxMessage)
	// An empty file is the default too.
	e, err := ParseConfig("empty.yaml", nil)
	require.NoError(t, err)
	assert.Equal(t, c.YAML(), e.YAML())
	// And the default survives a round trip through YAML.
	r, err := ParseConfig("round", c.YAML())
	require.NoError(t, err)
	assert.Equal(t, c.YAML(), r.YAML())
}

func TestConfigZeroValuesDefault(t *testing.T) {
	c, err := ParseConfig("min.yaml", []byte("listeners:\n  - addr: 127.0.0.1:0\n"))
	require.NoError(t, err)
	l := c.Listeners[0]
	assert.Equal(t, "main", l.Name)
	assert.Equal(t, Size(1<<20), l.Limits.MaxMessage)
	assert.Equal(t, Size(4096), l.Limits.MaxHeaderBytes)
	assert.Equal(t, time.Hour, c.Tokens.TTL.D())
	assert.Equal(t, 10*time.Second, c.Shutdown.Deadline.D())
	assert.Empty(t, c.Rules, "rules are not defaulted: no rules means every message is unroutable")
}

func TestConfigErrorsNameFileLineAndField(t *testing.T) {
	cases := []struct {
		name, yaml string
		want       []string
	}{
		{"unknown key", "listeners:\n  - addr: :1\n    adress: x\n", []string{"bad.yaml:3:", "adress"}},
		{"unknown top key", "listeners: []\n", []string{"bad.yaml:1:", "listeners"}},
		{"bad duration", "tokens:\n  ttl: soon\n", []string{"bad.yaml:2:", `"soon" is not a duration`}},
		{"bad size", "listeners:\n  - addr: :1\n    limits:\n      max_message: lots\n", []string{"bad.yaml:4:", `"lots" is not a size`}},
		{"wrong type", "log:\n  trace: [1]\n", []string{"bad.yaml:2:"}},
		{"bad level", "log:\n  level: loud\n", []string{"bad.yaml:2:", "log.level", "loud"}},
		{"bad addr", "listeners:\n  - addr: nohost\n", []string{"bad.yaml:2:", "listeners[0].addr"}},
		{"bad link type", "listeners:\n  - addr: :1\n    links: [udp]\n", []string{"bad.yaml:3:", "listeners[0].links"}},
		{"missing cert", "listeners:\n  - addr: :1\n    tls: {cert: /nonexistent.pem, key: /nonexistent.key}\n", []string{"bad.yaml:3:", "listeners[0].tls.cert", "/nonexistent.pem"}},
		{"unknown action", "rules:\n  - action: teleport\n", []string{"bad.yaml:2:", "rules[0].action", "teleport"}},
		{"no backend", "rules:\n  - action: forward\n    backend: api\n", []string{"bad.yaml:3:", "rules[0].backend", `"api": no such backend`}},
		{"ws backend for forward", "backends:\n  - {name: b, url: ws://127.0.0.1:1}\nrules:\n  - {action: forward, backend: b}\n", []string{"bad.yaml:4:", "not a http/https backend"}},
		{"bad close code", "rules:\n  - action: close\n    code: 1005\n", []string{"bad.yaml:3:", "rules[0].code"}},
		{"channel missing", "rules:\n  - action: publish\n", []string{"bad.yaml:2:", "channel"}},
		{"ping timeout", "listeners:\n  - addr: :1\n    keepalive: {ping_interval: 5s, ping_timeout: 2s}\n", []string{"bad.yaml:3:", "ping_timeout"}},
		{"dup listener", "listeners:\n  - {name: a, addr: ':1'}\n  - {name: a, addr: ':2'}\n", []string{"bad.yaml:3:", "listeners[1].name"}},
		{"admin clash", "listeners:\n  - addr: 127.0.0.1:9\nadmin:\n  addr: 127.0.0.1:9\n", []string{"bad.yaml:4:", "admin.addr"}},
		{"hook url", "hooks:\n  disconnect: ftp://x\n", []string{"bad.yaml:2:", "hooks.disconnect"}},
		{"bad origin", "listeners:\n  - addr: :1\n    auth: {origins: [example.com]}\n", []string{"bad.yaml:3:", "origins[0]"}},
		{"bad trusted proxy", "listeners:\n  - addr: :1\n    trusted_proxies:\n      - 10.0.0.0/8\n      - 10.0.0.0/33\n", []string{"bad.yaml:5:", `listeners[0].trusted_proxies[1]: "10.0.0.0/33": want an IP address or a CIDR prefix`}},
		{"bad forwarded header", "listeners:\n  - addr: :1\n    forwarded_header: x-real-ip\n", []string{"bad.yaml:3:", `listeners[0].forwarded_header: "x-real-ip": want X-Forwarded-For or Forwarded`}},
		{"two documents", "log: {}\n---\nlog: {}\n", []string{"bad.yaml", "more than one YAML document"}},
		{"not yaml", "listeners: [\n", []string{"bad.yaml:"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseConfig("bad.yaml", []byte(tc.yaml))
			require.Error(t, err)
			for _, w := range tc.want {
				assert.Contains(t, err.Error(), w)
			}
		})
	}
}

func TestConfigReportsEveryError(t *testing.T) {
	_, err := ParseConfig("bad.yaml", []byte("log:\n  level: loud\n  format: xml\n"))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "bad.yaml:2: log.level")
	assert.Contains(t, err.Error(), "bad.yaml:3: log.format")
}

func TestLoadConfigFile(t *testing.T) {
	_, err := LoadConfig(filepath.Join(t.TempDir(), "missing.yaml"))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "missing.yaml")

	p := filepath.Join(t.TempDir(), "gate.yaml")
	require.NoError(t, os.WriteFile(p, []byte("listeners:\n  - addr: 127.0.0.1:0\n    limits: {max_message: 64KiB}\n"), 0o600))
	c, err := LoadConfig(p)
	require.NoError(t, err)
	assert.Equal(t, Size(64<<10), c.Listeners[0].Limits.MaxMessage)
}

func TestEnvOverrides(t *testing.T) {
	c := DefaultConfig()
	env := map[string]string{"LWSGATE_LISTEN": "127.0.0.1:9999", "LWSGATE_ADMIN_ADDR": "off", "LWSGATE_LOG_LEVEL": "debug", "LWSGATE_TOKEN_TTL": "5m", "LWSGATE_TOKEN_SECRET": "s"}
	require.NoError(t, c.ApplyEnv(func(k string) string { return env[k] }))
	assert.Equal(t, "127.0.0.1:9999", c.Listeners[0].Addr)
	assert.Equal(t, "off", c.Admin.Addr)
	assert.Equal(t, "debug", c.Log.Level)
	assert.Equal(t, 5*time.Minute, c.Tokens.TTL.D())
	assert.Equal(t, "s", c.Tokens.Secret)

	for k, v := range map[string]string{"LWSGATE_TOKEN_TTL": "soon", "LWSGATE_LISTEN": "nohost", "LWSGATE_LOG_LEVEL": "loud"} {
		err := DefaultConfig().ApplyEnv(func(n string) string {
			if n == k {
				return v
			}
			return ""
		})
		require.Error(t, err, k)
		if k != "LWSGATE_LOG_LEVEL" {
			assert.Contains(t, err.Error(), k)
		} else {
			assert.Contains(t, err.Error(), "log.level")
		}
	}
}

func TestParseSize(t *testing.T) {
	for in, want := range map[string]Size{"4096": 4096, "64KiB": 64 << 10, "1MiB": 1 << 20, "16MB": 16e6, "2 GiB": 2 << 30} {
		got, err := ParseSize(in)
		require.NoError(t, err, in)
		assert.Equal(t, want, got, in)
	}
	for _, in := range []string{"", "-1", "1.5MiB", "1TB", "99999999999999999999", "9999999999GiB"} {
		_, err := ParseSize(in)
		assert.Error(t, err, in)
	}
}

func FuzzParseConfig(f *testing.F) {
	f.Add([]byte(DefaultYAML))
	f.Add([]byte("listeners:\n  - addr: 127.0.0.1:0\n"))
	f.Add([]byte("rules:\n  - {match: {field: a.b, value: x}, action: publish, channel_field: c}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := ParseConfig("fuzz.yaml", data)
		if err != nil {
			if strings.TrimSpace(err.Error()) == "" {
				t.Fatal("empty error")
			}
			return
		}
		// A config that parses is valid, and stays so through YAML.
		if _, err := ParseConfig("again", c.YAML()); err != nil {
			t.Fatalf("round trip: %v\n%s", err, c.YAML())
		}
	})
}

func TestParseLinkTypes(t *testing.T) {
	for in, want := range map[string][]string{
		"tcplisten": {"tcplisten"}, "httplisten": {"httplisten"}, "ws": {"tcplisten"},
		"tcplisten,httplisten": {"tcplisten", "httplisten"}, " HTTP , ws ": {"tcplisten", "httplisten"},
	} {
		got, err := ParseLinkTypes(in)
		require.NoError(t, err, in)
		assert.Equal(t, want, got, in)
	}
	_, err := ParseLinkTypes("udp")
	assert.ErrorContains(t, err, `"udp"`)
	a, err := parseAccept([]string{"tcplisten", "httplisten"})
	require.NoError(t, err)
	assert.Equal(t, lws.AcceptWebSocket|lws.AcceptHTTP, a)
}
