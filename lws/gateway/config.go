package gateway

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/lwsgate/lwsgate/lws"
)

// Config is the gateway's configuration: a YAML file (see DefaultYAML),
// then LWSGATE_* environment variables (ApplyEnv), then command-line flags.
// The zero value of each field is documented on it; DefaultConfig is what
// lwsgate runs with no file: the seed's single listener on :8090 echoing
// every message.
type Config struct {
	Log       LogConfig        `yaml:"log"`
	Listeners []ListenerConfig `yaml:"listeners"`
	Admin     AdminConfig      `yaml:"admin"`
	Tokens    TokenConfig      `yaml:"tokens"`
	Backends  []BackendConfig  `yaml:"backends"`
	// Rules is the routing step, in order; the first match acts. Empty:
	// every message is answered with an error (there is no route).
	Rules    []RuleConfig   `yaml:"rules"`
	Hooks    HookConfig     `yaml:"hooks"`
	Shutdown ShutdownConfig `yaml:"shutdown"`
	// NetworkTimeout bounds each network step libwebsockets waits on: a
	// handshake, a close acknowledgement, the last writes to a link being
	// closed (a slow consumer's). 0: 15s.
	NetworkTimeout Duration `yaml:"network_timeout"`

	// source maps a field path ("listeners[0].addr") to its line in the
	// file, so that validation errors can name it. nil for configs built
	// in code.
	source *sourceMap
}

// LogConfig: where lwsgate's logs go (stderr) and how they look.
type LogConfig struct {
	// Level is debug, info, warn or error. "": info.
	Level string `yaml:"level"`
	// Format is text or json. "": text.
	Format string `yaml:"format"`
	// Trace writes one reason-log line per libwebsockets callback.
	Trace bool `yaml:"trace"`
	// LinkTrace is how many callback reasons each link remembers for
	// GET /v1/api/links/{id}/trace. 0: 64; negative: none. With the admin
	// API off, links remember none.
	LinkTrace int `yaml:"link_trace"`
}

// ListenerConfig is one public listening address.
type ListenerConfig struct {
	// Name identifies the listener in logs, metrics and rules. "": "main"
	// for the first listener, else the address.
	Name string `yaml:"name"`
	// Addr is host:port. Required.
	Addr string `yaml:"addr"`
	// Links: tcplisten (long links: WebSocket), httplisten (short links:
	// HTTP), or both on one port. Empty: both.
	Links []string `yaml:"links"`
	// Subprotocols accepted besides none. Empty: none other.
	Subprotocols []string `yaml:"subprotocols"`
	// Compression accepts permessage-deflate (RFC 7692) from WebSocket
	// clients that offer it (lws.Listener.Compression); limits.max_message
	// bounds a message after inflation. false: off.
	Compression bool `yaml:"compression"`
	// TrustedProxies are the proxies (an IP address, or a CIDR such as
	// 10.0.0.0/8) whose forwarded_header names the client of a request:
	// that client is the link's remote address in the link table, the
	// logs and the hooks, and what limits.max_links_per_ip counts
	// (lws.Listener.TrustedProxies). From other peers the header is
	// ignored. Empty: none.
	TrustedProxies []string `yaml:"trusted_proxies"`
	// ForwardedHeader is the header trusted_proxies name clients in:
	// x-forwarded-for, or forwarded (RFC 7239; needs libwebsockets 4.3).
	// "": x-forwarded-for.
	ForwardedHeader string `yaml:"forwarded_header"`
	// ProxyProtocol: every connection starts with a PROXY protocol v1 or
	// v2 header (from a load balancer such as HAProxy or AWS's NLB), whose
	// source is the connection's client (lws.Listener.ProxyProtocol).
	// With trusted_proxies, believed from those peers only; without, from
	// every peer, so the port must be reachable by the load balancers
	// alone. A connection without a valid header is closed and logged.
	// false: none.
	ProxyProtocol bool `yaml:"proxy_protocol"`
	// TLS serves wss and https when set.
	TLS *TLSConfig `yaml:"tls"`
	// Keepalive pings silent WebSocket links.
	Keepalive KeepaliveConfig `yaml:"keepalive"`
	// Limits bound what one link may send.
	Limits LimitsConfig `yaml:"limits"`
	// Auth gates WebSocket upgrades.
	Auth AuthConfig `yaml:"auth"`
	// Demo serves the demo page at GET /. Default true for the first
	// listener when it accepts both link types.
	Demo *bool `yaml:"demo"`
	// Forward sends HTTP requests under a path prefix to an http backend
	// (httpconnect).
	Forward []ForwardConfig `yaml:"forward"`
	// Upstream names a ws backend: every WebSocket link of this listener
	// gets its own upstream link there as soon as it opens (tcpconnect,
	// bound as its friend), and its messages are relayed both ways; the
	// rules are skipped. "": links are routed by the rules.
	Upstream string `yaml:"upstream"`
}

// TLSConfig names PEM files.
type TLSConfig struct {
	Cert string `yaml:"cert"` // certificate chain, required
	Key  string `yaml:"key"`  // private key, required
	// ClientCA, when set, requires client certificates signed by it.
	ClientCA string `yaml:"client_ca"`
}

// KeepaliveConfig: server-side ping/pong.
type KeepaliveConfig struct {
	// PingInterval pings a link that had no pong for this long (whole
	// seconds). 0: libwebsockets' 5 minutes.
	PingInterval Duration `yaml:"ping_interval"`
	// PingTimeout drops a link without a pong for this long. 0:
	// ping_interval + 10s.
	PingTimeout Duration `yaml:"ping_timeout"`
}

// LimitsConfig bounds one link.
type LimitsConfig struct {
	// MaxMessage is the largest WebSocket message (close 1009 above it).
	// 0: 1 MiB.
	MaxMessage Size `yaml:"max_message"`
	// MaxBody is the largest HTTP request body (413 above it). 0: 1 MiB.
	MaxBody Size `yaml:"max_body"`
	// MaxSendQueue is how much may wait to be written to one link; a link
	// that does not read is closed with 1008 when it is reached (a slow
	// consumer must not hold the others back). 0: 4 MiB.
	MaxSendQueue Size `yaml:"max_send_queue"`
	// MaxHeaderBytes is the buffer for a request's headers. 0: 4096.
	MaxHeaderBytes Size `yaml:"max_header_bytes"`
	// MaxLinks, MaxLinksPerIP and AcceptRate (connections a second)
	// bound what the listener accepts: lws.Listener's fields of the same
	// names. 0: the binding's defaults (10000, no limit, 1000); negative:
	// no limit. A connection refused gets 503 with Retry-After.
	MaxLinks      int `yaml:"max_links"`
	MaxLinksPerIP int `yaml:"max_links_per_ip"`
	AcceptRate    int `yaml:"accept_rate"`
}

// AuthConfig gates WebSocket upgrades; failures get 401 or 403 before
// any 101.
type AuthConfig struct {
	// RequireToken: an upgrade needs a valid token from
	// /v1/api/createtoken, in the query (?token=) or an Authorization:
	// Bearer header. The token's subject becomes the link's user.
	RequireToken bool `yaml:"require_token"`
	// Origins, when not empty, is the allow-list of Origin header values
	// ("https://app.example.com"; "*" allows any). An upgrade without an
	// allowed Origin gets 403.
	Origins []string `yaml:"origins"`
}

// ForwardConfig sends HTTP requests whose path starts with Prefix to the
// http backend named Backend (the path is appended to its URL).
type ForwardConfig struct {
	Prefix  string `yaml:"prefix"`
	Backend string `yaml:"backend"`
}

// AdminConfig is the operator's listener: the link, route and channel
// API, metrics and health. It should not be reachable from the internet.
type AdminConfig struct {
	// Addr is host:port, or "off". "": 127.0.0.1:8091.
	Addr string `yaml:"addr"`
	// Token, when set, is required as "Authorization: Bearer TOKEN" on
	// the API (not on /healthz, /readyz, /metrics).
	Token string `yaml:"token"`
}

// TokenConfig: the tokens of POST /v1/api/createtoken (HS256 JWT).
type TokenConfig struct {
	// Secret signs them; LWSGATE_TOKEN_SECRET overrides it. "": a random
	// key per process (tokens do not survive a restart), with a warning.
	Secret string `yaml:"secret"`
	// TTL is their lifetime. 0: 1h.
	TTL Duration `yaml:"ttl"`
}

// BackendConfig is an upstream the gateway opens client links to: ws(s)
// backends for the relay action (tcpconnect), http(s) backends for the
// forward action, forward prefixes and hooks (httpconnect).
type BackendConfig struct {
	Name string `yaml:"name"` // required, unique
	URL  string `yaml:"url"`  // ws://, wss://, http:// or https://
	// Timeout bounds one dial (ws, retries included) or one request
	// (http). 0: 10s.
	Timeout Duration `yaml:"timeout"`
	// Reconnect is the backoff between ws dial attempts.
	Reconnect BackoffConfig `yaml:"reconnect"`
	// CA verifies the backend's certificate. "": the system store.
	CA string `yaml:"ca"`
	// Insecure accepts any certificate (tests only).
	Insecure bool `yaml:"insecure"`
}

// BackoffConfig: exponential backoff with jitter.
type BackoffConfig struct {
	Initial Duration `yaml:"initial"` // 0: 200ms
	Max     Duration `yaml:"max"`     // 0: 2s
}

// RuleConfig is one step of the routing rule list: when every set field
// of Match matches, Action runs and routing stops.
type RuleConfig struct {
	// Name appears in logs and metrics. "": "rule N".
	Name  string      `yaml:"name"`
	Match MatchConfig `yaml:"match"`
	// Action is one of Actions: echo (send it back), info (tell the link
	// its id and user), reply (send Reply), publish (to the channel's
	// links), subscribe and unsubscribe (the link, to the channel),
	// forward (POST it to an http backend; the answer comes back to the
	// link), relay (to this link's own upstream link on a ws backend,
	// opened on first use and bound as its friend), drop, close.
	Action string `yaml:"action"`
	// Reply is the message sent back by the reply action.
	Reply string `yaml:"reply"`
	// Channel is the channel of publish, subscribe and unsubscribe.
	Channel string `yaml:"channel"`
	// ChannelField takes the channel from a JSON field of the message
	// instead (dotted path, e.g. "room" or "data.room").
	ChannelField string `yaml:"channel_field"`
	// Backend names the backend of forward (http) and relay (ws).
	Backend string `yaml:"backend"`
	// Code and Reason are the close action's. Code 0: taken from the
	// message text "PREFIX CODE [REASON]" when Match.Prefix is set, else
	// 1000.
	Code   int    `yaml:"code"`
	Reason string `yaml:"reason"`
}

// Actions are the rule actions.
var Actions = []string{"echo", "info", "reply", "publish", "subscribe", "unsubscribe", "forward", "relay", "drop", "close"}

// MatchConfig: every set field must match. All empty: any message.
type MatchConfig struct {
	Listener string `yaml:"listener"` // listener name
	Path     string `yaml:"path"`     // upgrade path; a trailing * matches a prefix
	Type     string `yaml:"type"`     // text or binary
	Prefix   string `yaml:"prefix"`   // message starts with this
	// Field is a dotted path into the message as JSON (like AWS's
	// $request.body.action); with Value unset it matches when the field
	// exists.
	Field string  `yaml:"field"`
	Value *string `yaml:"value"`
}

// HookConfig: HTTP webhooks (POST, JSON) for link events.
type HookConfig struct {
	// Connect is called when a WebSocket link opens; a non-2xx answer
	// closes the link with 4403 (messages wait for the answer).
	Connect string `yaml:"connect"`
	// Message is called for every message a link sends, after routing
	// (fire and forget: its answer is ignored).
	Message string `yaml:"message"`
	// Disconnect is called exactly once per link that opened, with its
	// close code and reason, however it ended.
	Disconnect string `yaml:"disconnect"`
	// Timeout bounds each call. 0: 5s.
	Timeout Duration `yaml:"timeout"`
	// Retries for the disconnect hook, which must not be lost. 0: 3.
	Retries int `yaml:"retries"`
}

// ShutdownConfig: what SIGTERM does.
type ShutdownConfig struct {
	// Drain is the window over which links are closed with 1001, spread
	// out so clients do not all reconnect at once. 0: 5s.
	Drain Duration `yaml:"drain"`
	// Deadline is the hard limit after which the gateway stops anyway.
	// 0: drain + 5s.
	Deadline Duration `yaml:"deadline"`
}

// Duration is a time.Duration written as "1.5s", "100ms", "2m".
type Duration time.Duration

// D returns d as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// UnmarshalYAML parses a duration string.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("line %d: want a duration such as 10s", n.Line)
	}
	v, err := time.ParseDuration(n.Value)
	if err != nil || v < 0 {
		return fmt.Errorf("line %d: %q is not a duration (e.g. 500ms, 10s, 2m)", n.Line, n.Value)
	}
	*d = Duration(v)
	return nil
}

// MarshalYAML writes d as a duration string.
func (d Duration) MarshalYAML() (any, error) { return time.Duration(d).String(), nil }

// Size is a byte count written as 4096, "64KiB", "1MiB" or "16MB".
type Size int64

var sizeRE = regexp.MustCompile(`^([0-9]+)\s*(B|KB|KiB|MB|MiB|GB|GiB)?$`)

// ParseSize parses "1MiB", "64KiB", "4096"...
func ParseSize(s string) (Size, error) {
	m := sizeRE.FindStringSubmatch(strings.TrimSpace(s))
	if m == nil {
		return 0, fmt.Errorf("%q is not a size (e.g. 4096, 64KiB, 1MiB)", s)
	}
	n, err := strconv.ParseInt(m[1], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%q is too large", s)
	}
	mul := map[string]int64{"": 1, "B": 1, "KB": 1000, "KiB": 1 << 10, "MB": 1e6, "MiB": 1 << 20, "GB": 1e9, "GiB": 1 << 30}[m[2]]
	if n > (1<<62)/mul {
		return 0, fmt.Errorf("%q is too large", s)
	}
	return Size(n * mul), nil
}

// UnmarshalYAML parses a size.
func (s *Size) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("line %d: want a size such as 64KiB", n.Line)
	}
	v, err := ParseSize(n.Value)
	if err != nil {
		return fmt.Errorf("line %d: %v", n.Line, err)
	}
	*s = v
	return nil
}

// MarshalYAML writes s in the largest exact binary unit.
func (s Size) MarshalYAML() (any, error) {
	for _, u := range []struct {
		n    int64
		name string
	}{{1 << 30, "GiB"}, {1 << 20, "MiB"}, {1 << 10, "KiB"}} {
		if s != 0 && int64(s)%u.n == 0 {
			return fmt.Sprintf("%d%s", int64(s)/u.n, u.name), nil
		}
	}
	return int64(s), nil
}

// DefaultYAML is the built-in configuration, printed by
// "lwsgate defaultconfig": the seed's listener on :8090 accepting both
// link types, the admin API on loopback, and two rules: "/close CODE
// [REASON]" closes the link, everything else is echoed.
const DefaultYAML = `# lwsgate configuration. Every field is optional; this is the default.
log:
  level: info          # debug, info, warn, error
  format: text         # text or json
  trace: true          # one line per libwebsockets callback reason
  link_trace: 64       # reasons each link keeps for GET /v1/api/links/{id}/trace

listeners:
  - name: main
    addr: ":8090"
    links: [tcplisten, httplisten]   # long links (WebSocket), short links (HTTP)
    subprotocols: [lws-gate]
    compression: false   # permessage-deflate for WebSocket clients that offer it
    trusted_proxies: []  # proxies (IPs, CIDRs) whose forwarded_header names the client
    forwarded_header: x-forwarded-for  # or forwarded (RFC 7239)
    proxy_protocol: false  # connections start with a PROXY v1/v2 header (behind a load balancer)
    keepalive:
      ping_interval: 0s  # 0: libwebsockets' default (5m)
      ping_timeout: 0s   # 0: ping_interval + 10s
    limits:
      max_message: 16MiB
      max_body: 1MiB
      max_send_queue: 32MiB
      max_header_bytes: 4KiB
      max_links_per_ip: 0  # links per client address; 0: no limit (README: client addresses)
    auth:
      require_token: false
      origins: []        # allow-list of Origin values; empty: any
    demo: true           # the demo page at GET /

admin:
  addr: "127.0.0.1:8091" # links, routes, channels, publish, metrics; "off" to disable
  token: ""              # Bearer token required on the API when set

tokens:
  secret: ""             # or LWSGATE_TOKEN_SECRET; empty: random per process
  ttl: 1h

backends: []             # {name, url: ws://|wss://|http://|https://, timeout, reconnect, ca, insecure}

rules:                   # the first match acts; no match: an error message back
  - name: close-command
    match: {type: text, prefix: "/close "}
    action: close        # "/close CODE [REASON]" closes the link with that code
  - name: info
    match: {field: action, value: info}
    action: info         # {"action":"info"}: the link's id and user
  - name: subscribe
    match: {field: action, value: subscribe}
    action: subscribe    # {"action":"subscribe","channel":"demo"}
    channel_field: channel
  - name: unsubscribe
    match: {field: action, value: unsubscribe}
    action: unsubscribe
    channel_field: channel
  - name: publish
    match: {field: action, value: publish}
    action: publish      # the whole message goes to the channel's links
    channel_field: channel
  - name: echo
    action: echo

hooks:
  connect: ""            # POST {link} on open; non-2xx closes the link with 4403
  message: ""            # POST {link, message} per message, fire and forget
  disconnect: ""         # POST {link, code, reason} exactly once per link
  timeout: 5s
  retries: 3

network_timeout: 15s     # handshakes, close acks, a closing link's last writes

shutdown:
  drain: 5s              # links are closed with 1001 over this window
  deadline: 10s          # then the gateway stops regardless
`

// DefaultConfig returns the built-in configuration (DefaultYAML).
func DefaultConfig() *Config {
	c, err := ParseConfig("default", []byte(DefaultYAML))
	if err != nil {
		panic("gateway: DefaultYAML: " + err.Error())
	}
	return c
}

// LoadConfig reads and checks a YAML file. Errors name the file, the line
// and the field: "gate.yaml:7: listeners[0].addr: ...".
func LoadConfig(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %v", err)
	}
	return ParseConfig(path, data)
}

// ParseConfig parses YAML (name is used in errors) strictly: unknown
// fields, wrong types and bad values are errors. Fields left out keep
// their zero value, documented on each, and are then defaulted.
func ParseConfig(name string, data []byte) (*Config, error) {
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return nil, yamlErr(name, err)
	}
	c := &Config{}
	if len(root.Content) > 0 {
		dec := yaml.NewDecoder(bytes.NewReader(data))
		dec.KnownFields(true)
		if err := dec.Decode(c); err != nil {
			return nil, yamlErr(name, err)
		}
		var extra yaml.Node
		if dec.Decode(&extra) == nil {
			return nil, fmt.Errorf("%s: more than one YAML document", name)
		}
	}
	c.source = &sourceMap{file: name, lines: map[string]int{}}
	if len(root.Content) > 0 {
		c.source.walk("", root.Content[0])
	}
	if len(root.Content) == 0 {
		// An empty file is the default configuration.
		d := DefaultConfig()
		d.source = c.source
		c = d
	}
	c.setDefaults()
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return c, nil
}

var yamlLineRE = regexp.MustCompile(`^(?:yaml: )?line (\d+): `)

// yamlErr rewrites yaml's "line N: msg" errors as "file:N: msg".
func yamlErr(name string, err error) error {
	var te *yaml.TypeError
	msgs := []string{err.Error()}
	if errors.As(err, &te) {
		msgs = te.Errors
	}
	for i, m := range msgs {
		if sm := yamlLineRE.FindStringSubmatch(m); sm != nil {
			m = name + ":" + sm[1] + ": " + m[len(sm[0]):]
		} else {
			m = name + ": " + strings.TrimPrefix(m, "yaml: ")
		}
		m = strings.Replace(m, " in type gateway.", " in ", 1)
		msgs[i] = m
	}
	return errors.New(strings.Join(msgs, "\n"))
}

// sourceMap remembers the line of every field path.
type sourceMap struct {
	file  string
	lines map[string]int
}

func (s *sourceMap) walk(path string, n *yaml.Node) {
	if path != "" {
		s.lines[path] = n.Line
	}
	switch n.Kind {
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := n.Content[i]
			p := k.Value
			if path != "" {
				p = path + "." + k.Value
			}
			s.lines[p] = k.Line
			s.walk(p, n.Content[i+1])
		}
	case yaml.SequenceNode:
		for i, e := range n.Content {
			s.walk(fmt.Sprintf("%s[%d]", path, i), e)
		}
	}
}

// errAt formats an error about field path: "file:line: path: msg", or
// "path: msg" for a config built in code.
func (c *Config) errAt(path, format string, args ...any) error {
	msg := path + ": " + fmt.Sprintf(format, args...)
	if c.source == nil {
		return errors.New("config: " + msg)
	}
	// The field may be absent from the file (defaulted): use the nearest
	// parent that is present.
	for p := path; p != ""; {
		if line, ok := c.source.lines[p]; ok {
			return fmt.Errorf("%s:%d: %s", c.source.file, line, msg)
		}
		i := strings.LastIndexAny(p, ".[")
		if i < 0 {
			break
		}
		p = p[:i]
	}
	return fmt.Errorf("%s: %s", c.source.file, msg)
}

// setDefaults fills in what a zero value stands for.
func (c *Config) setDefaults() {
	if c.Log.Level == "" {
		c.Log.Level = "info"
	}
	if c.Log.Format == "" {
		c.Log.Format = "text"
	}
	if c.Log.LinkTrace == 0 {
		c.Log.LinkTrace = 64
	}
	for i := range c.Listeners {
		l := &c.Listeners[i]
		if l.Name == "" {
			l.Name = l.Addr
			if i == 0 {
				l.Name = "main"
			}
		}
		if len(l.Links) == 0 {
			l.Links = []string{"tcplisten", "httplisten"}
		}
		if l.Demo == nil {
			d := i == 0 && len(l.Links) == 2
			l.Demo = &d
		}
		lim := &l.Limits
		if lim.MaxMessage == 0 {
			lim.MaxMessage = 1 << 20
		}
		if lim.MaxBody == 0 {
			lim.MaxBody = 1 << 20
		}
		if lim.MaxSendQueue == 0 {
			lim.MaxSendQueue = 4 << 20
		}
		if lim.MaxHeaderBytes == 0 {
			lim.MaxHeaderBytes = 4096
		}
		if l.Keepalive.PingInterval > 0 && l.Keepalive.PingTimeout == 0 {
			l.Keepalive.PingTimeout = l.Keepalive.PingInterval + Duration(10*time.Second)
		}
	}
	if c.Admin.Addr == "" {
		c.Admin.Addr = "127.0.0.1:8091"
	}
	if c.Tokens.TTL == 0 {
		c.Tokens.TTL = Duration(time.Hour)
	}
	for i := range c.Backends {
		b := &c.Backends[i]
		if b.Timeout == 0 {
			b.Timeout = Duration(10 * time.Second)
		}
		if b.Reconnect.Initial == 0 {
			b.Reconnect.Initial = Duration(200 * time.Millisecond)
		}
		if b.Reconnect.Max == 0 {
			b.Reconnect.Max = Duration(2 * time.Second)
		}
	}
	for i := range c.Rules {
		if c.Rules[i].Name == "" {
			c.Rules[i].Name = fmt.Sprintf("rule %d", i+1)
		}
	}
	if c.Hooks.Timeout == 0 {
		c.Hooks.Timeout = Duration(5 * time.Second)
	}
	if c.Hooks.Retries == 0 {
		c.Hooks.Retries = 3
	}
	if c.NetworkTimeout == 0 {
		c.NetworkTimeout = Duration(15 * time.Second)
	}
	if c.Shutdown.Drain == 0 {
		c.Shutdown.Drain = Duration(5 * time.Second)
	}
	if c.Shutdown.Deadline == 0 {
		c.Shutdown.Deadline = c.Shutdown.Drain + Duration(5*time.Second)
	}
}

// Validate checks a defaulted config. Errors name the file, line and
// field when the config came from a file.
func (c *Config) Validate() error {
	var errs []error
	bad := func(path, format string, args ...any) { errs = append(errs, c.errAt(path, format, args...)) }

	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		bad("log.level", "%q: want debug, info, warn or error", c.Log.Level)
	}
	if c.Log.Format != "text" && c.Log.Format != "json" {
		bad("log.format", "%q: want text or json", c.Log.Format)
	}
	if len(c.Listeners) == 0 {
		bad("listeners", "at least one listener is required")
	}
	backends := map[string]*BackendConfig{}
	for i := range c.Backends {
		b := &c.Backends[i]
		p := fmt.Sprintf("backends[%d]", i)
		if b.Name == "" {
			bad(p+".name", "required")
		} else if backends[b.Name] != nil {
			bad(p+".name", "%q is used twice", b.Name)
		}
		backends[b.Name] = b
		u, err := url.Parse(b.URL)
		if err != nil || u.Host == "" || !map[string]bool{"ws": true, "wss": true, "http": true, "https": true}[u.Scheme] {
			bad(p+".url", "%q: want a ws://, wss://, http:// or https:// URL", b.URL)
		}
		if b.CA != "" {
			if err := readableFile(b.CA); err != nil {
				bad(p+".ca", "%v", err)
			}
		}
		if b.Reconnect.Max < b.Reconnect.Initial {
			bad(p+".reconnect.max", "%v is below initial %v", b.Reconnect.Max.D(), b.Reconnect.Initial.D())
		}
	}
	names := map[string]bool{}
	ports := map[string]string{}
	for i := range c.Listeners {
		l := &c.Listeners[i]
		p := fmt.Sprintf("listeners[%d]", i)
		if names[l.Name] {
			bad(p+".name", "%q is used twice", l.Name)
		}
		names[l.Name] = true
		if err := checkAddr(l.Addr); err != nil {
			bad(p+".addr", "%q: %v", l.Addr, err)
		} else if other, ok := ports[l.Addr]; ok && !strings.HasSuffix(l.Addr, ":0") {
			bad(p+".addr", "%q is also listener %q's", l.Addr, other)
		}
		ports[l.Addr] = l.Name
		if _, err := parseAccept(l.Links); err != nil {
			bad(p+".links", "%v", err)
		}
		if l.TLS != nil {
			if l.TLS.Cert == "" || l.TLS.Key == "" {
				bad(p+".tls", "cert and key are both required")
			}
			for _, f := range []struct{ name, path string }{{"cert", l.TLS.Cert}, {"key", l.TLS.Key}, {"client_ca", l.TLS.ClientCA}} {
				if f.path != "" {
					if err := readableFile(f.path); err != nil {
						bad(p+".tls."+f.name, "%v", err)
					}
				}
			}
		}
		k := l.Keepalive
		if k.PingInterval > 0 {
			if k.PingInterval.D()%time.Second != 0 || k.PingTimeout.D()%time.Second != 0 {
				bad(p+".keepalive", "ping times are whole seconds")
			}
			if k.PingTimeout <= k.PingInterval {
				bad(p+".keepalive.ping_timeout", "%v must exceed ping_interval %v", k.PingTimeout.D(), k.PingInterval.D())
			}
		} else if k.PingTimeout > 0 {
			bad(p+".keepalive.ping_timeout", "set without ping_interval")
		}
		if _, err := parseProxies(l.TrustedProxies); err != nil {
			bad(fmt.Sprintf("%s.trusted_proxies[%d]", p, err.index), "%q: %v", l.TrustedProxies[err.index], err.err)
		}
		if err := lws.CheckForwardedHeader(l.ForwardedHeader); err != nil {
			bad(p+".forwarded_header", "%q: %v", l.ForwardedHeader, err)
		}
		if l.Limits.MaxHeaderBytes > 65535 {
			bad(p+".limits.max_header_bytes", "%d: at most 65535", l.Limits.MaxHeaderBytes)
		}
		for j, o := range l.Auth.Origins {
			if o != "*" {
				if u, err := url.Parse(o); err != nil || u.Scheme == "" || u.Host == "" || (u.Path != "" && u.Path != "/") {
					bad(fmt.Sprintf("%s.auth.origins[%d]", p, j), "%q: want scheme://host[:port] or *", o)
				}
			}
		}
		if l.Upstream != "" {
			if b := backends[l.Upstream]; b == nil {
				bad(p+".upstream", "%q: no such backend", l.Upstream)
			} else if !strings.HasPrefix(b.URL, "ws") {
				bad(p+".upstream", "%q is not a ws(s) backend", l.Upstream)
			}
		}
		for j, f := range l.Forward {
			fp := fmt.Sprintf("%s.forward[%d]", p, j)
			if !strings.HasPrefix(f.Prefix, "/") {
				bad(fp+".prefix", "%q: must start with /", f.Prefix)
			}
			if b := backends[f.Backend]; b == nil {
				bad(fp+".backend", "%q: no such backend", f.Backend)
			} else if !strings.HasPrefix(b.URL, "http") {
				bad(fp+".backend", "%q is not an http(s) backend", f.Backend)
			}
		}
	}
	if c.Admin.Addr != "off" {
		if err := checkAddr(c.Admin.Addr); err != nil {
			bad("admin.addr", "%q: %v", c.Admin.Addr, err)
		}
		for _, l := range c.Listeners {
			if l.Addr == c.Admin.Addr && !strings.HasSuffix(l.Addr, ":0") {
				bad("admin.addr", "%q is also listener %q's", c.Admin.Addr, l.Name)
			}
		}
	}
	if c.Tokens.TTL < Duration(time.Second) {
		bad("tokens.ttl", "%v: at least 1s", c.Tokens.TTL.D())
	}
	for i, r := range c.Rules {
		p := fmt.Sprintf("rules[%d]", i)
		if err := c.checkRule(r, backends, names); err != nil {
			bad(p+"."+err.field, "%s", err.msg)
		}
	}
	for _, h := range []struct{ name, url string }{{"connect", c.Hooks.Connect}, {"message", c.Hooks.Message}, {"disconnect", c.Hooks.Disconnect}} {
		if h.url == "" {
			continue
		}
		if u, err := url.Parse(h.url); err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
			bad("hooks."+h.name, "%q: want an http:// or https:// URL", h.url)
		}
	}
	if c.Hooks.Retries < 0 {
		bad("hooks.retries", "%d: must not be negative", c.Hooks.Retries)
	}
	if c.NetworkTimeout < Duration(time.Second) {
		bad("network_timeout", "%v: at least 1s", c.NetworkTimeout.D())
	}
	if c.Shutdown.Deadline < c.Shutdown.Drain {
		bad("shutdown.deadline", "%v is shorter than drain %v", c.Shutdown.Deadline.D(), c.Shutdown.Drain.D())
	}
	return errors.Join(errs...)
}

type fieldErr struct{ field, msg string }

func (c *Config) checkRule(r RuleConfig, backends map[string]*BackendConfig, listeners map[string]bool) *fieldErr {
	m := r.Match
	if m.Listener != "" && !listeners[m.Listener] {
		return &fieldErr{"match.listener", fmt.Sprintf("%q: no such listener", m.Listener)}
	}
	if m.Type != "" && m.Type != "text" && m.Type != "binary" {
		return &fieldErr{"match.type", fmt.Sprintf("%q: want text or binary", m.Type)}
	}
	if m.Path != "" && !strings.HasPrefix(m.Path, "/") {
		return &fieldErr{"match.path", fmt.Sprintf("%q: must start with /", m.Path)}
	}
	if m.Value != nil && m.Field == "" {
		return &fieldErr{"match.value", "set without match.field"}
	}
	if m.Field != "" && !validFieldPath(m.Field) {
		return &fieldErr{"match.field", fmt.Sprintf("%q: want a dotted path such as action or data.type", m.Field)}
	}
	needBackend := func(schemes ...string) *fieldErr {
		b := backends[r.Backend]
		if b == nil {
			return &fieldErr{"backend", fmt.Sprintf("%q: no such backend", r.Backend)}
		}
		for _, s := range schemes {
			if strings.HasPrefix(b.URL, s+"://") {
				return nil
			}
		}
		return &fieldErr{"backend", fmt.Sprintf("%q is not a %s backend", r.Backend, strings.Join(schemes, "/"))}
	}
	switch r.Action {
	case "echo", "drop", "info":
	case "reply":
		if r.Reply == "" {
			return &fieldErr{"reply", "required by the reply action"}
		}
	case "publish", "subscribe", "unsubscribe":
		if (r.Channel == "") == (r.ChannelField == "") {
			return &fieldErr{"channel", "the " + r.Action + " action needs one of channel and channel_field"}
		}
		if r.ChannelField != "" && !validFieldPath(r.ChannelField) {
			return &fieldErr{"channel_field", fmt.Sprintf("%q: want a dotted path", r.ChannelField)}
		}
	case "forward":
		return needBackend("http", "https")
	case "relay":
		return needBackend("ws", "wss")
	case "close":
		if r.Code != 0 && !lws.StatusCode(r.Code).Sendable() {
			return &fieldErr{"code", fmt.Sprintf("%d: not a close code that may be sent (1000-1003, 1007-1014, 3000-4999)", r.Code)}
		}
		if len(r.Reason) > 123 {
			return &fieldErr{"reason", "longer than 123 bytes"}
		}
	case "":
		return &fieldErr{"action", "required: one of " + strings.Join(Actions, ", ")}
	default:
		return &fieldErr{"action", fmt.Sprintf("%q: want one of %s", r.Action, strings.Join(Actions, ", "))}
	}
	return nil
}

func validFieldPath(s string) bool {
	if s == "" {
		return false
	}
	for _, p := range strings.Split(s, ".") {
		if p == "" {
			return false
		}
	}
	return true
}

func checkAddr(addr string) error {
	h, p, err := net.SplitHostPort(addr)
	if err != nil {
		return err
	}
	n, err := strconv.Atoi(p)
	if err != nil || n < 0 || n > 65535 {
		return fmt.Errorf("port %q: want 0..65535", p)
	}
	if h != "" && h != "localhost" && net.ParseIP(h) == nil {
		return fmt.Errorf("host %q: want an IP address", h)
	}
	return nil
}

// readableFile checks that a certificate or key file can be read (they
// are small): a missing file, a directory or no permission is an error
// now rather than when the listener starts.
func readableFile(path string) error {
	_, err := os.ReadFile(path)
	return err
}

// ApplyEnv applies LWSGATE_* overrides; getenv is os.Getenv in lwsgate.
// Errors name the variable.
//
//	LWSGATE_LISTEN        first listener's addr
//	LWSGATE_ADMIN_ADDR    admin.addr ("off" disables)
//	LWSGATE_ADMIN_TOKEN   admin.token
//	LWSGATE_LOG_LEVEL     log.level
//	LWSGATE_LOG_FORMAT    log.format
//	LWSGATE_TOKEN_SECRET  tokens.secret
//	LWSGATE_TOKEN_TTL     tokens.ttl
func (c *Config) ApplyEnv(getenv func(string) string) error {
	set := func(name string, f func(v string) error) error {
		if v := getenv(name); v != "" {
			if err := f(v); err != nil {
				return fmt.Errorf("%s=%q: %v", name, v, err)
			}
		}
		return nil
	}
	str := func(dst *string) func(string) error { return func(v string) error { *dst = v; return nil } }
	errs := []error{
		set("LWSGATE_LISTEN", func(v string) error {
			if len(c.Listeners) == 0 {
				c.Listeners = []ListenerConfig{{}}
			}
			c.Listeners[0].Addr = v
			return checkAddr(v)
		}),
		set("LWSGATE_ADMIN_ADDR", str(&c.Admin.Addr)),
		set("LWSGATE_ADMIN_TOKEN", str(&c.Admin.Token)),
		set("LWSGATE_LOG_LEVEL", str(&c.Log.Level)),
		set("LWSGATE_LOG_FORMAT", str(&c.Log.Format)),
		set("LWSGATE_TOKEN_SECRET", str(&c.Tokens.Secret)),
		set("LWSGATE_TOKEN_TTL", func(v string) error {
			d, err := time.ParseDuration(v)
			c.Tokens.TTL = Duration(d)
			return err
		}),
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	c.setDefaults()
	return c.Validate()
}

// Clone returns a deep copy of c.
func (c *Config) Clone() *Config {
	out, err := yaml.Marshal(c)
	if err != nil {
		panic(err)
	}
	var d Config
	if err := yaml.Unmarshal(out, &d); err != nil {
		panic(err)
	}
	d.source = c.source
	return &d
}

// YAML returns c as YAML.
func (c *Config) YAML() []byte {
	out, err := yaml.Marshal(c)
	if err != nil {
		panic(err)
	}
	return out
}

// proxyError is an entry of trusted_proxies that is not an address or
// prefix.
type proxyError struct {
	index int
	err   error
}

// parseProxies parses trusted_proxies: IP addresses (one address each)
// and CIDR prefixes.
func parseProxies(list []string) ([]netip.Prefix, *proxyError) {
	var out []netip.Prefix
	for i, s := range list {
		s = strings.TrimSpace(s)
		if p, err := netip.ParsePrefix(s); err == nil {
			out = append(out, p)
			continue
		}
		a, err := netip.ParseAddr(s)
		if err != nil || a.Zone() != "" {
			return nil, &proxyError{i, fmt.Errorf("want an IP address or a CIDR prefix")}
		}
		out = append(out, netip.PrefixFrom(a, a.BitLen()))
	}
	return out, nil
}
