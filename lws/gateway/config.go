package gateway

import (
	"maps"
	"slices"
)

// Config is the gateway's configuration: a YAML file (see DefaultYAML),
// then LWSGATE_* environment variables (ApplyEnv), then command-line flags.
//
// What is left out means the default, and nothing else: a field left out
// of the file, or zero in Go, has the value DefaultConfig has (the one
// "lwsgate defaultconfig" prints), documented on each field. A list
// (listeners, backends, rules) left out, or nil in Go, is the default
// list; one written out replaces it, even empty: "rules: []" (or a bare
// "rules:"; in Go a non-nil empty slice) means no rules, and no listener
// at all is an error. The fields left out of an entry of a list take the
// defaults of such an entry: a listener's are those of the default
// listener, except its name and address. DefaultConfig is the zero
// Config so defaulted: the seed's listener on :8090, the admin API on
// loopback, and rules that end in echo.
type Config struct {
	Log LogConfig `yaml:"log"`
	// Listeners are the public listening addresses. nil: one, on :8090.
	// Empty: an error.
	Listeners []ListenerConfig `yaml:"listeners"`
	Admin     AdminConfig      `yaml:"admin"`
	Tokens    TokenConfig      `yaml:"tokens"`
	// Backends are the upstreams that rules, forward prefixes and
	// listeners' upstream name. nil: none.
	Backends []BackendConfig `yaml:"backends"`
	// Rules is the routing step, in order; the first match acts. nil: the
	// default rules (DefaultYAML: "/close CODE [REASON]", info,
	// subscribe, unsubscribe, publish, then echo). Empty: none, and every
	// message is answered with an error (there is no route).
	Rules    []RuleConfig   `yaml:"rules"`
	Hooks    HookConfig     `yaml:"hooks"`
	Shutdown ShutdownConfig `yaml:"shutdown"`
	// NetworkTimeout bounds each network step libwebsockets waits on: a
	// handshake, a close acknowledgement, the last writes to a link being
	// closed (a slow consumer's). 0: 15s.
	NetworkTimeout Duration `yaml:"network_timeout"`
	// Workers is how many service threads (libwebsockets contexts) serve
	// each listener: each link lives on one, and new connections go to
	// the one with the fewest; with more than one, the admin API has a
	// thread of its own. 1: one thread for everything, as before workers
	// existed.
	// 0: one per CPU the process may use (GOMAXPROCS, which follows the
	// CPU affinity and a container's CPU limit). At most maxWorkers.
	// New raises GOMAXPROCS to workers + 1 when it is lower.
	Workers int `yaml:"workers"`
	// EventLoop is the event loop libwebsockets runs on (lws.Config's
	// EventLoop): libev, whose epoll makes an event cost the same however
	// many links are open, or poll, libwebsockets' own poll(2) over every
	// link at each wake-up. `make parity` compares the reason log with a
	// native program's on each. "": lws.DefaultEventLoop.
	EventLoop string `yaml:"event_loop"`
	// Cluster makes many nodes one gateway; left out: one process.
	Cluster ClusterConfig `yaml:"cluster"`

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
	// Trace writes one reason-log line per libwebsockets callback (to
	// Options.Trace). nil: on, as the seed did.
	Trace *bool `yaml:"trace"`
	// LinkTrace is how many callback reasons each link remembers for
	// GET /v1/api/links/{id}/trace. 0: 64; negative: none. With the admin
	// API off, links remember none.
	LinkTrace int `yaml:"link_trace"`
}

// ListenerConfig is one public listening address. Its zero fields take
// the default listener's values (DefaultConfig's, DefaultYAML shows
// them), except Name and Addr.
type ListenerConfig struct {
	// Name identifies the listener in logs, metrics and rules. "": "main"
	// for the first listener, else the address.
	Name string `yaml:"name"`
	// Addr is host:port. Required.
	Addr string `yaml:"addr"`
	// Links: tcplisten (long links: WebSocket), httplisten (short links:
	// HTTP), or both on one port (ParseLinkTypes). Empty: both.
	Links []string `yaml:"links"`
	// Subprotocols accepted besides none. nil: lws-gate, the seed's.
	// Empty: none other.
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
	// Demo serves the demo page at GET /. nil: true for the first
	// listener when it accepts both link types, else false.
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
	// seconds, lws.CheckKeepalive). 0: lws.DefaultPingInterval (5m).
	PingInterval Duration `yaml:"ping_interval"`
	// PingTimeout drops a link without a pong for this long. 0:
	// ping_interval + 10s (lws.DefaultPingGrace).
	PingTimeout Duration `yaml:"ping_timeout"`
}

// LimitsConfig bounds one link.
type LimitsConfig struct {
	// MaxMessage is the largest WebSocket message (close 1009 above it).
	// 0: 16 MiB.
	MaxMessage Size `yaml:"max_message"`
	// MaxBody is the largest HTTP request body (413 above it). 0: 1 MiB.
	MaxBody Size `yaml:"max_body"`
	// MaxSendQueue is how much may wait to be written to one link; a link
	// that does not read is closed with 1008 when it is reached (a slow
	// consumer must not hold the others back). 0: twice max_message, at
	// least 4 MiB (lws.DefaultMaxSendQueue): 32 MiB by default.
	MaxSendQueue Size `yaml:"max_send_queue"`
	// MaxHeaderBytes is the buffer for a request's headers; it can only
	// raise the binding's lws.DefaultMaxHeaderBytes, which libwebsockets
	// applies to every listener (lws.Listener.MaxHeaderBytes). 0: 4096.
	// At most 65535.
	MaxHeaderBytes Size `yaml:"max_header_bytes"`
	// MaxLinks, MaxLinksPerIP and AcceptRate (connections a second)
	// bound what the listener accepts: lws.Listener's fields of the same
	// names. 0: the binding's defaults (lws.DefaultMaxLinks, no limit,
	// lws.DefaultAcceptRate); negative: no limit. A connection refused
	// gets 503 with Retry-After.
	MaxLinks      int `yaml:"max_links"`
	MaxLinksPerIP int `yaml:"max_links_per_ip"`
	AcceptRate    int `yaml:"accept_rate"`
}

// AuthConfig gates WebSocket upgrades; failures get 401 or 403 before
// any 101, with a WWW-Authenticate header saying why (RFC 6750).
//
// Which tokens a listener takes: without keys and jwks_url, the gateway's
// own (HS256 with tokens.secret, from POST /v1/api/createtoken); with
// them, only tokens signed by those keys (RS256, ES256, EdDSA), never
// HS256: an identity provider's listener must not take the tokens anyone
// may ask createtoken for. Each key has one algorithm, and a token naming
// another is refused (no "alg confusion").
type AuthConfig struct {
	// RequireToken: an upgrade needs a valid token, in an Authorization:
	// Bearer header, a Sec-WebSocket-Protocol entry "bearer.TOKEN" beside
	// a real subprotocol (for browsers, which cannot set Authorization on
	// a WebSocket), or the query (?token=). The token's subject becomes
	// the link's user.
	RequireToken bool `yaml:"require_token"`
	// Origins, when not empty, is the allow-list of Origin header values
	// ("https://app.example.com"; "*" allows any). An upgrade without an
	// allowed Origin gets 403.
	Origins []string `yaml:"origins"`
	// Keys are an identity provider's public keys, each from a PEM file.
	// Empty: none.
	Keys []KeyConfig `yaml:"keys"`
	// JWKSURL is an identity provider's JSON Web Key Set (RFC 7517), such
	// as https://idp.example.com/.well-known/jwks.json, fetched through
	// the gateway's own HTTP client and cached by key id: a token naming
	// a key id the set does not have makes it fetched again (at most once
	// every jwks_min_interval), and a failed fetch keeps the keys known.
	// "": none.
	JWKSURL string `yaml:"jwks_url"`
	// JWKSRefresh is how old the key set may grow before a token checked
	// against it has it fetched again in the background (keys the
	// provider has withdrawn then stop verifying). 0: 1h.
	JWKSRefresh Duration `yaml:"jwks_refresh"`
	// JWKSMinInterval is the least time between two fetches of the key
	// set: tokens naming unknown key ids cannot make the gateway fetch it
	// more often. 0: 30s.
	JWKSMinInterval Duration `yaml:"jwks_min_interval"`
	// JWKSCA verifies an https jwks_url's certificate. "": the system
	// store.
	JWKSCA string `yaml:"jwks_ca"`
	// Issuer, when set, is the iss a token must have. "": not checked.
	Issuer string `yaml:"issuer"`
	// Audience, when set, must be one of a token's aud: a token for
	// another audience is refused. "": not checked.
	Audience string `yaml:"audience"`
	// Leeway is the clock skew allowed when checking exp (always
	// required) and nbf. 0: 5s. At most 5m.
	Leeway Duration `yaml:"leeway"`
	// ChannelsClaim names the claim that lists the channels the link may
	// subscribe and publish to: channel names, or prefixes ending in *
	// ("room:*"; "*" for any). A token without the claim allows none.
	// The claim is read by its top-level name as written (namespaced
	// claims such as "https://example.com/channels" work). "": channels
	// are not restricted by the token.
	ChannelsClaim string `yaml:"channels_claim"`
}

// KeyConfig is one public key of an identity provider (auth.keys).
//
// Concurrency: a value.
type KeyConfig struct {
	// File is a PEM file holding the public key (PKIX "PUBLIC KEY", or
	// PKCS #1 "RSA PUBLIC KEY") or a certificate. Required.
	File string `yaml:"file"`
	// Alg is the one algorithm tokens signed with the key may name: RS256
	// (RSA, at least 2048 bits), ES256 (ECDSA P-256) or EdDSA (Ed25519).
	// Required.
	Alg string `yaml:"alg"`
	// Kid is the key id tokens name in their header. "": the key of
	// tokens that name none (one such key per alg).
	Kid string `yaml:"kid"`
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
	// ForwardHeaders are the client's request headers passed on to the
	// backend (names, case-insensitive): on a forward prefix's requests
	// the request's own, on the forward action's POSTs and a relayed
	// link's upgrade those of the link's upgrade request. nil: a forward
	// prefix passes every header of the request (as a reverse proxy
	// does), the forward and relay actions none. Empty: none. Some are
	// never passed and may not be listed (forwardable): hop-by-hop
	// headers, and those the request's Connection header names, Host,
	// the WebSocket handshake's, the framing and forwarding ones.
	ForwardHeaders []string `yaml:"forward_headers"`
	// Headers are set on every request and upgrade to the backend, over a
	// client's header of the same name (an API key, say). A value written
	// ${NAME} is the environment variable NAME (ApplyEnv), so that a
	// secret need not be in the file. Empty: none.
	Headers map[string]string `yaml:"headers"`
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
	// Action is one of Actions(): echo (send it back), info (tell the
	// link its id and user), reply (send Reply), publish (to the
	// channel's links), subscribe and unsubscribe (the link, to the
	// channel), forward (POST it to an http backend; the answer comes
	// back to the link), relay (to this link's own upstream link on a ws
	// backend, opened on first use and bound as its friend), drop, close.
	// Required.
	Action Action `yaml:"action"`
	// Reply is the message sent back by the reply action.
	Reply string `yaml:"reply"`
	// Channel is the channel of publish, subscribe and unsubscribe: 1 to
	// 256 bytes.
	Channel string `yaml:"channel"`
	// ChannelField takes the channel from a JSON field of the message
	// instead (dotted path, e.g. "room" or "data.room").
	ChannelField string `yaml:"channel_field"`
	// IDField (publish only) takes the publish's id from a JSON field of
	// the message (dotted path, e.g. "id"; a string or a number of at
	// most 256 bytes). On a channel with a history, a message sent again
	// with the same id by the same user (the link's token's subject; a
	// link without one: the same link) within the duplicate window is
	// stored once and answered with the first one's position; the
	// "published" (or error) answer carries the id back. A message
	// without the field has no id. "": none.
	IDField string `yaml:"id_field"`
	// Backend names the backend of forward (http) and relay (ws).
	Backend string `yaml:"backend"`
	// Code and Reason are the close action's (a reason of at most 123
	// bytes). Code 0: taken from the message text "PREFIX CODE [REASON]"
	// when Match.Prefix is set, else 1000.
	Code   int    `yaml:"code"`
	Reason string `yaml:"reason"`
}

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
	// ForwardHeaders are the headers of a link's upgrade request passed
	// on with its hooks, as a backend's (BackendConfig.ForwardHeaders).
	// Empty: none.
	ForwardHeaders []string `yaml:"forward_headers"`
	// Headers are set on every hook request, as a backend's
	// (BackendConfig.Headers). Empty: none.
	Headers map[string]string `yaml:"headers"`
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

// Clone returns a deep copy of c: nothing it holds (lists, pointers) is
// shared with c, and a nil list stays nil, an empty one empty (they mean
// different things). TestCloneIsDeep fills every field to check it.
func (c *Config) Clone() *Config {
	d := *c
	d.Log.Trace = clonePtr(c.Log.Trace)
	d.Listeners = slices.Clone(c.Listeners)
	for i := range d.Listeners {
		d.Listeners[i].clone()
	}
	d.Backends = slices.Clone(c.Backends)
	for i := range d.Backends {
		b := &d.Backends[i]
		b.ForwardHeaders = slices.Clone(b.ForwardHeaders)
		b.Headers = maps.Clone(b.Headers)
	}
	d.Hooks.ForwardHeaders = slices.Clone(c.Hooks.ForwardHeaders)
	d.Hooks.Headers = maps.Clone(c.Hooks.Headers)
	d.Cluster.NATS.Embedded.Routes = slices.Clone(c.Cluster.NATS.Embedded.Routes)
	d.Cluster.Channels = slices.Clone(c.Cluster.Channels)
	d.Rules = slices.Clone(c.Rules)
	for i := range d.Rules {
		d.Rules[i].Match.Value = clonePtr(d.Rules[i].Match.Value)
	}
	return &d // source is shared: it never changes
}

// clone replaces what l shares with its original by copies.
func (l *ListenerConfig) clone() {
	l.Links = slices.Clone(l.Links)
	l.Subprotocols = slices.Clone(l.Subprotocols)
	l.TrustedProxies = slices.Clone(l.TrustedProxies)
	l.TLS = clonePtr(l.TLS)
	l.Auth.Origins = slices.Clone(l.Auth.Origins)
	l.Auth.Keys = slices.Clone(l.Auth.Keys)
	l.Demo = clonePtr(l.Demo)
	l.Forward = slices.Clone(l.Forward)
}

func clonePtr[T any](p *T) *T {
	if p == nil {
		return nil
	}
	v := *p
	return &v
}
