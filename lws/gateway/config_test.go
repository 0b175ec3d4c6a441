package gateway

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
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
	assert.Equal(t, ActionEcho, c.Rules[len(c.Rules)-1].Action)
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

// TestDefaultYAMLIsDefaultConfig: DefaultYAML, decoded as written
// (without defaults), is DefaultConfig: it states every value the
// defaults give, and no other.
func TestDefaultYAMLIsDefaultConfig(t *testing.T) {
	raw, err := decodeConfig("default.yaml", []byte(DefaultYAML))
	require.NoError(t, err)
	assert.Equal(t, string(DefaultConfig().YAML()), string(raw.YAML()))
	parsed, err := ParseConfig("default.yaml", []byte(DefaultYAML))
	require.NoError(t, err)
	assert.Equal(t, string(DefaultConfig().YAML()), string(parsed.YAML()))
}

// TestConfigLeftOutIsTheDefault: what a file leaves out has
// DefaultConfig's value, at every level; a list written out replaces the
// default one, even empty.
func TestConfigLeftOutIsTheDefault(t *testing.T) {
	parse := func(y string) *Config {
		t.Helper()
		c, err := ParseConfig("min.yaml", []byte(y))
		require.NoError(t, err, y)
		return c
	}
	def := DefaultConfig()
	same := func(want, got *Config, y string) {
		t.Helper()
		assert.Equal(t, string(want.YAML()), string(got.YAML()), y)
	}

	// One bare listener: the default listener at another address, and
	// the default everything else (the rules that end in echo included).
	c := parse("listeners:\n  - addr: 127.0.0.1:0\n")
	want := def.Clone()
	want.Listeners[0].Addr = "127.0.0.1:0"
	same(want, c, "bare listener")
	l := c.Listeners[0]
	assert.Equal(t, "main", l.Name)
	assert.Equal(t, Size(16<<20), l.Limits.MaxMessage, "the default config's max_message, not the binding's 1 MiB")
	assert.Equal(t, Size(32<<20), l.Limits.MaxSendQueue)
	assert.Equal(t, Size(4096), l.Limits.MaxHeaderBytes)
	assert.Equal(t, []string{"lws-gate"}, l.Subprotocols)
	assert.True(t, *c.Log.Trace)
	assert.Equal(t, time.Hour, c.Tokens.TTL.D())
	assert.Equal(t, 10*time.Second, c.Shutdown.Deadline.D())
	assert.Equal(t, def.Rules, c.Rules, "no rules: section is the default rules, echo last")

	// A second listener left bare is the default listener too, but for
	// its name (its address) and the demo page (the first listener's).
	c = parse("listeners:\n  - addr: 127.0.0.1:0\n  - addr: 127.0.0.1:1\n")
	second := def.Listeners[0]
	second.Name, second.Addr, second.Demo = "127.0.0.1:1", "127.0.0.1:1", new(false)
	assert.Equal(t, second, c.Listeners[1])

	// Every section alone changes only what it writes.
	for y, change := range map[string]func(*Config){
		"log: {level: warn}\n":     func(c *Config) { c.Log.Level = "warn" },
		"log: {trace: false}\n":    func(c *Config) { c.Log.Trace = new(false) },
		"admin: {addr: \"off\"}\n": func(c *Config) { c.Admin.Addr = "off" },
		"tokens: {ttl: 5m}\n":      func(c *Config) { c.Tokens.TTL = Duration(5 * time.Minute) },
		"hooks: {retries: 5}\n":    func(c *Config) { c.Hooks.Retries = 5 },
		"shutdown: {drain: 1s}\n": func(c *Config) {
			c.Shutdown.Drain, c.Shutdown.Deadline = Duration(time.Second), Duration(6*time.Second)
		},
		"network_timeout: 20s\n": func(c *Config) { c.NetworkTimeout = Duration(20 * time.Second) },
		"event_loop: poll\n":     func(c *Config) { c.EventLoop = "poll" },
		"backends: []\n":         func(*Config) {},
		"listeners:\n  - addr: \":8090\"\n    limits: {max_message: 1MiB}\n": func(c *Config) {
			c.Listeners[0].Limits.MaxMessage, c.Listeners[0].Limits.MaxSendQueue = 1<<20, 4<<20 // the queue follows
		},
	} {
		want := def.Clone()
		change(want)
		same(want, parse(y), y)
	}

	// A list written out replaces the default one, even empty or bare.
	assert.Empty(t, parse("rules: []\n").Rules)
	assert.Empty(t, parse("rules:\n").Rules)
	assert.Empty(t, parse("listeners:\n  - {addr: 127.0.0.1:0, subprotocols: []}\n").Listeners[0].Subprotocols)
	for _, y := range []string{"listeners: []\n", "listeners:\n"} {
		_, err := ParseConfig("bad.yaml", []byte(y))
		assert.ErrorContains(t, err, "bad.yaml:1: listeners: at least one listener is required", y)
	}

	// In Go the zero value is what the file leaves out.
	z := &Config{Listeners: []ListenerConfig{{Addr: "127.0.0.1:0"}}}
	require.NoError(t, z.Validate())
	z.setDefaults()
	want = def.Clone()
	want.Listeners[0].Addr = "127.0.0.1:0"
	same(want, z, "Go")
	same(def, func() *Config { c := &Config{}; c.setDefaults(); return c }(), "zero Config")
}

// TestCloneIsDeep fills every field of a Config (lists of one, pointers
// set, through reflection, so a field added later is covered): the clone
// is equal and shares nothing; nil and empty lists stay so.
func TestCloneIsDeep(t *testing.T) {
	c := &Config{}
	fillAll(reflect.ValueOf(c).Elem())
	d := c.Clone()
	assert.Equal(t, c, d)
	assertShareNothing(t, "Config", reflect.ValueOf(c).Elem(), reflect.ValueOf(d).Elem())
	// Changing the clone leaves the original be.
	d.Listeners[0].Subprotocols[0] = "changed"
	assert.NotEqual(t, "changed", c.Listeners[0].Subprotocols[0])

	e := &Config{Rules: []RuleConfig{}, Listeners: []ListenerConfig{{Subprotocols: []string{}}}}
	f := e.Clone()
	assert.NotNil(t, f.Rules)
	assert.Empty(t, f.Rules)
	assert.NotNil(t, f.Listeners[0].Subprotocols)
	assert.Nil(t, f.Backends)
	assert.Nil(t, f.Log.Trace)
}

// fillAll sets every exported field of v to something non-zero.
func fillAll(v reflect.Value) {
	switch v.Kind() {
	case reflect.Struct:
		for i := 0; i < v.NumField(); i++ {
			if v.Type().Field(i).IsExported() {
				fillAll(v.Field(i))
			}
		}
	case reflect.Pointer:
		v.Set(reflect.New(v.Type().Elem()))
		fillAll(v.Elem())
	case reflect.Slice:
		v.Set(reflect.MakeSlice(v.Type(), 1, 1))
		fillAll(v.Index(0))
	case reflect.Map:
		v.Set(reflect.MakeMap(v.Type()))
		k, e := reflect.New(v.Type().Key()).Elem(), reflect.New(v.Type().Elem()).Elem()
		fillAll(k)
		fillAll(e)
		v.SetMapIndex(k, e)
	case reflect.String:
		v.SetString("x")
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Int, reflect.Int64:
		v.SetInt(1)
	default:
		panic("fillAll: a field of kind " + v.Kind().String())
	}
}

// assertShareNothing fails where a and b hold the same pointer or the
// same backing array.
func assertShareNothing(t *testing.T, path string, a, b reflect.Value) {
	t.Helper()
	switch a.Kind() {
	case reflect.Struct:
		for i := 0; i < a.NumField(); i++ {
			if a.Type().Field(i).IsExported() {
				assertShareNothing(t, path+"."+a.Type().Field(i).Name, a.Field(i), b.Field(i))
			}
		}
	case reflect.Pointer:
		if !a.IsNil() {
			assert.NotEqual(t, a.Pointer(), b.Pointer(), "%s is shared", path)
			assertShareNothing(t, path, a.Elem(), b.Elem())
		}
	case reflect.Map:
		if a.Len() > 0 {
			assert.NotEqual(t, a.Pointer(), b.Pointer(), "%s is shared", path)
		}
	case reflect.Slice:
		if a.Len() > 0 {
			assert.NotEqual(t, a.Pointer(), b.Pointer(), "%s is shared", path)
			for i := 0; i < a.Len(); i++ {
				assertShareNothing(t, fmt.Sprintf("%s[%d]", path, i), a.Index(i), b.Index(i))
			}
		}
	}
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
		{"id_field off publish", "rules:\n  - {action: subscribe, channel: c, id_field: id}\n", []string{"bad.yaml:2:", "rules[0].id_field", "only the publish action"}},
		{"bad id_field", "rules:\n  - {action: publish, channel: c, id_field: 'a..b'}\n", []string{"bad.yaml:2:", "rules[0].id_field", "dotted path"}},
		{"ping timeout", "listeners:\n  - addr: :1\n    keepalive: {ping_interval: 5s, ping_timeout: 2s}\n", []string{"bad.yaml:3:", "ping_timeout"}},
		{"dup listener", "listeners:\n  - {name: a, addr: ':1'}\n  - {name: a, addr: ':2'}\n", []string{"bad.yaml:3:", "listeners[1].name"}},
		{"admin clash", "listeners:\n  - addr: 127.0.0.1:9\nadmin:\n  addr: 127.0.0.1:9\n", []string{"bad.yaml:4:", "admin.addr"}},
		{"hook url", "hooks:\n  disconnect: ftp://x\n", []string{"bad.yaml:2:", "hooks.disconnect"}},
		{"bad origin", "listeners:\n  - addr: :1\n    auth: {origins: [example.com]}\n", []string{"bad.yaml:3:", "origins[0]"}},
		{"bad trusted proxy", "listeners:\n  - addr: :1\n    trusted_proxies:\n      - 10.0.0.0/8\n      - 10.0.0.0/33\n", []string{"bad.yaml:5:", `listeners[0].trusted_proxies[1]: "10.0.0.0/33": want an IP address or a CIDR prefix`}},
		{"bad event loop", "event_loop: epoll\n", []string{"bad.yaml:1:", `event_loop: "epoll": unknown event loop (want "libev" or "poll")`}},
		{"bad forwarded header", "listeners:\n  - addr: :1\n    forwarded_header: x-real-ip\n", []string{"bad.yaml:3:", `listeners[0].forwarded_header: "x-real-ip": want X-Forwarded-For or Forwarded`}},
		{"hop-by-hop forwarded", "backends:\n  - name: a\n    url: http://127.0.0.1:1\n    forward_headers: [cookie, Connection]\n", []string{"bad.yaml:4:", "backends[0].forward_headers[1]: Connection: a hop-by-hop header, never passed on"}},
		{"proxy header forwarded", "backends:\n  - {name: a, url: \"http://127.0.0.1:1\", forward_headers: [proxy-authorization]}\n", []string{"bad.yaml:2:", "backends[0].forward_headers[0]", "hop-by-hop"}},
		{"handshake header forwarded", "hooks:\n  forward_headers:\n    - sec-websocket-protocol\n", []string{"bad.yaml:3:", "hooks.forward_headers[0]", "a WebSocket handshake header"}},
		{"gateway's header forwarded", "hooks:\n  forward_headers: [x-forwarded-for]\n", []string{"bad.yaml:2:", "hooks.forward_headers[0]", "written by the gateway"}},
		{"header listed twice", "hooks:\n  forward_headers: [cookie, Cookie]\n", []string{"bad.yaml:2:", "hooks.forward_headers[1]", "listed twice"}},
		{"bad header name", "hooks:\n  forward_headers: [\"x y\"]\n", []string{"bad.yaml:2:", "not a header name"}},
		{"static content-type", "backends:\n  - name: a\n    url: http://127.0.0.1:1\n    headers:\n      content-type: text/html\n", []string{"bad.yaml:5:", "backends[0].headers.content-type"}},
		{"static header splits", "hooks:\n  headers:\n    x-key: \"a\\r\\nx-evil: 1\"\n", []string{"bad.yaml:3:", "hooks.headers.x-key", "CR, LF or NUL"}},
		{"auth without require_token", "listeners:\n  - addr: :1\n    auth:\n      issuer: https://idp\n", []string{"bad.yaml:4:", "listeners[0].auth.issuer: set without require_token"}},
		{"bad key alg", "listeners:\n  - addr: :1\n    auth:\n      require_token: true\n      keys:\n        - {file: /nonexistent.pem, alg: HS256}\n", []string{"bad.yaml:6:", "listeners[0].auth.keys[0].alg", `"HS256": want RS256, ES256 or EdDSA`}},
		{"missing key file", "listeners:\n  - addr: :1\n    auth:\n      require_token: true\n      keys:\n        - {file: /nonexistent.pem, alg: RS256}\n", []string{"bad.yaml:6:", "listeners[0].auth.keys[0].file", "/nonexistent.pem"}},
		{"bad jwks url", "listeners:\n  - addr: :1\n    auth: {require_token: true, jwks_url: \"ftp://idp/keys\"}\n", []string{"bad.yaml:3:", "listeners[0].auth.jwks_url"}},
		{"jwks refresh below min", "listeners:\n  - addr: :1\n    auth: {require_token: true, jwks_url: \"https://idp/k\", jwks_refresh: 10s, jwks_min_interval: 1m}\n", []string{"bad.yaml:3:", "listeners[0].auth.jwks_refresh: 10s is below jwks_min_interval 1m0s"}},
		{"leeway too long", "listeners:\n  - addr: :1\n    auth:\n      leeway: 1h\n", []string{"bad.yaml:4:", "listeners[0].auth.leeway: 1h0m0s: at most 5m0s"}},
		{"token prefix as subprotocol", "listeners:\n  - addr: :1\n    subprotocols: [lws-gate, bearer.x]\n", []string{"bad.yaml:3:", "listeners[0].subprotocols[1]"}},
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

// TestAuthKeyErrors: a key file that does not hold the key its alg
// verifies, or keys a token could not tell apart, are errors naming the
// file, line and field.
func TestAuthKeyErrors(t *testing.T) {
	k := testIDPKeys(t)
	dir := t.TempDir()
	rsaPEM, ecPEM, edPEM := pemFile(t, dir, "rsa.pem", &k.rsa.PublicKey), pemFile(t, dir, "ec.pem", &k.ec.PublicKey), pemFile(t, dir, "ed.pem", k.ed.Public())
	small, err := rsa.GenerateKey(rand.Reader, 1024)
	require.NoError(t, err)
	smallPEM := pemFile(t, dir, "small.pem", &small.PublicKey)
	privPEM := filepath.Join(dir, "priv.pem")
	der, err := x509.MarshalPKCS8PrivateKey(k.ed)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(privPEM, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600))
	for _, tc := range []struct {
		name, keys string
		want       []string
	}{
		{"RSA key for ES256", "{file: " + rsaPEM + ", alg: ES256}", []string{"bad.yaml:7:", "keys[0].file", "an RSA key, for RS256, not ES256"}},
		{"Ed25519 key for RS256", "{file: " + edPEM + ", alg: RS256}", []string{"bad.yaml:7:", "an Ed25519 key, for EdDSA, not RS256"}},
		{"small RSA key", "{file: " + smallPEM + ", alg: RS256}", []string{"bad.yaml:7:", "an RSA key of 1024 bits; at least 2048"}},
		{"a private key", "{file: " + privPEM + ", alg: EdDSA}", []string{"bad.yaml:7:", "priv.pem", "never a private key"}},
		{"two keys without kid", "{file: " + ecPEM + ", alg: ES256}\n        - {file: " + ecPEM + ", alg: ES256}", []string{"bad.yaml:8:", "keys[1].kid", "a second ES256 key without kid"}},
		{"kid twice", "{file: " + ecPEM + ", alg: ES256, kid: k}\n        - {file: " + edPEM + ", alg: EdDSA, kid: k}", []string{"bad.yaml:8:", "keys[1].kid", `"k" is used twice`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseConfig("bad.yaml", []byte("listeners:\n  - addr: :1\n    auth:\n      require_token: true\n      issuer: x\n      keys:\n        - "+tc.keys+"\n"))
			require.Error(t, err)
			for _, w := range tc.want {
				assert.Contains(t, err.Error(), w)
			}
		})
	}
}

// TestEnvInHeaders: a static header written ${NAME} is the variable NAME;
// one not set is an error naming the field and the variable.
func TestEnvInHeaders(t *testing.T) {
	c, err := ParseConfig("gate.yaml", []byte("backends:\n  - name: api\n    url: http://127.0.0.1:1\n    headers:\n      x-api-key: ${API_KEY}\n      x-plain: \"$API_KEY\"\nhooks:\n  headers: {x-hook: \"${HOOK_KEY}\"}\n"))
	require.NoError(t, err)
	env := map[string]string{"API_KEY": "k-1", "HOOK_KEY": "k-2"}
	require.NoError(t, c.ApplyEnv(func(n string) string { return env[n] }))
	assert.Equal(t, map[string]string{"x-api-key": "k-1", "x-plain": "$API_KEY"}, c.Backends[0].Headers)
	assert.Equal(t, "k-2", c.Hooks.Headers["x-hook"])

	c, err = ParseConfig("gate.yaml", []byte("backends:\n  - name: api\n    url: http://127.0.0.1:1\n    headers:\n      x-api-key: ${API_KEY}\n"))
	require.NoError(t, err)
	err = c.ApplyEnv(func(string) string { return "" })
	require.Error(t, err)
	assert.Contains(t, err.Error(), "gate.yaml:5: backends[0].headers.x-api-key: ${API_KEY}: the variable API_KEY is not set")
	// A value with a line break is refused, wherever it came from.
	c, _ = ParseConfig("gate.yaml", []byte("hooks:\n  headers: {x-hook: \"${HOOK_KEY}\"}\n"))
	err = c.ApplyEnv(func(n string) string { return map[string]string{"HOOK_KEY": "a\r\nx-evil: 1"}[n] })
	require.Error(t, err)
	assert.Contains(t, err.Error(), "hooks.headers.x-hook")
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
