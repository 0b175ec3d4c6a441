package gateway

import (
	"fmt"
	"time"

	"github.com/lwsgate/lwsgate/lws"
)

// The gateway's defaults, each stated once: what a field left out of the
// file (zero in Go) stands for. setDefaults applies them, DefaultConfig is
// the zero Config with them applied, and DefaultYAML shows them
// (TestDefaultYAMLIsDefaultConfig holds the two together). The binding's
// own defaults (lws.Default*) apply where a field says so.
const (
	defaultListenAddr     = ":8090"
	defaultAdminAddr      = "127.0.0.1:8091"
	defaultSubprotocol    = "lws-gate" // the seed's
	defaultForwarded      = "x-forwarded-for"
	defaultLogLevel       = "info"
	defaultLogFormat      = "text"
	defaultTrace          = true
	defaultLinkTrace      = 64
	defaultMaxMessage     = 16 << 20
	defaultMaxBody        = lws.DefaultMaxBodySize
	defaultMaxHeaderBytes = 4 << 10
	defaultTokenTTL       = time.Hour
	defaultLeeway         = 5 * time.Second
	maxLeeway             = 5 * time.Minute
	defaultJWKSRefresh    = time.Hour
	defaultJWKSMin        = 30 * time.Second
	// DefaultBackendTimeout is backends[].timeout left out: how long one
	// dial (ws, retries included) or one request (http) may take.
	DefaultBackendTimeout = 10 * time.Second
	defaultBackoffInitial = 200 * time.Millisecond
	defaultBackoffMax     = 2 * time.Second
	defaultHookTimeout    = 5 * time.Second
	defaultHookRetries    = 3
	defaultNetworkTimeout = lws.DefaultNetworkTimeout
	defaultEventLoop      = string(lws.DefaultEventLoop)
	defaultDrain          = 5 * time.Second
	defaultDeadlineAfter  = 5 * time.Second // shutdown.deadline left out: drain + this
	adminMaxBody          = 16 << 20        // the admin listener's largest request body (openapi.yaml)
	maxWorkers            = 1024            // workers: each is a thread with its own libwebsockets context
)

// DefaultYAML is the built-in configuration, printed by
// "lwsgate defaultconfig": DefaultConfig written out, with every field
// commented. TestDefaultYAMLIsDefaultConfig checks that it states every
// value DefaultConfig has, and nothing else.
const DefaultYAML = `# lwsgate configuration: the default. Every field is optional, and one left out
# has the value shown here. A list written out (listeners, backends, rules)
# replaces the one shown, even empty: "rules: []" means no rules. The fields
# left out of a listener are the ones below (its name and addr apart).
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
      ping_interval: 0s  # 0: 5m
      ping_timeout: 0s   # 0: ping_interval + 10s
    limits:
      max_message: 16MiB
      max_body: 1MiB
      max_send_queue: 32MiB
      max_header_bytes: 4KiB
      max_links_per_ip: 0  # links per client address; 0: no limit (README: client addresses)
    auth:
      require_token: false  # a token: Authorization: Bearer, Sec-WebSocket-Protocol bearer.T, ?token=
      origins: []        # allow-list of Origin values; empty: any
      keys: []           # {file: PEM public key, alg: RS256|ES256|EdDSA, kid}; none: tokens.secret (HS256)
      jwks_url: ""       # an identity provider's JWKS, cached by kid
      jwks_refresh: 1h   # fetched again in the background when older
      jwks_min_interval: 30s  # at most one fetch this often (unknown kids ask for one)
      jwks_ca: ""        # CA file for an https jwks_url; empty: the system store
      issuer: ""         # iss a token must have; empty: not checked
      audience: ""       # one of a token's aud; empty: not checked
      leeway: 5s         # clock skew allowed on exp (required) and nbf
      channels_claim: "" # claim listing the channels a link may use ("room:*"); empty: any
    demo: true           # the demo page at GET /

admin:
  addr: "127.0.0.1:8091" # links, routes, channels, publish, metrics; "off" to disable
  token: ""              # Bearer token required on the API when set

tokens:
  secret: ""             # or LWSGATE_TOKEN_SECRET; empty: random per process
  ttl: 1h

backends: []             # {name, url: ws://|wss://|http://|https://, timeout, reconnect, ca, insecure,
                         #  forward_headers: [cookie, user-agent], headers: {x-api-key: "${API_KEY}"}}

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
    id_field: id         # on a history channel, a retry with the same "id" is stored once
  - name: echo
    action: echo

hooks:
  connect: ""            # POST {link} on open; non-2xx closes the link with 4403
  message: ""            # POST {link, message} per message, fire and forget
  disconnect: ""         # POST {link, code, reason} exactly once per link
  timeout: 5s
  retries: 3
  forward_headers: []    # headers of the link's upgrade request passed on with its hooks
  headers: {}            # set on every hook request; a value ${NAME} is that variable

network_timeout: 15s     # handshakes, close acks, a closing link's last writes
workers: 0               # service threads sharing the listeners; 0: one per CPU the process may use
event_loop: libev        # or poll: libwebsockets' own loop, whose cost grows with open links

shutdown:
  drain: 5s              # links are closed with 1001 over this window
  deadline: 10s          # then the gateway stops regardless

cluster:                 # many nodes as one gateway (README: Cluster)
  engine: memory         # memory: this process alone; nats: a cluster (tokens.secret required)
  name: lwsgate          # prefixes the cluster's NATS subjects and buckets
  node: ""               # this node's name, unique in the cluster; empty: the host name
  lease: 5s              # a node not renewing its lease this long is dead to the others
  reap_after: 30s        # grace: a node cut off this long closes its links (1012); a dead
                         # node's links get their disconnect hooks (1006) from a survivor
  survey_timeout: 250ms  # listings wait this long for each node, then name it (Lwsgate-Partial)
  call_timeout: 2s       # an operation on another node's link
  linger: 5s             # a channel stays subscribed this long after its last member here left
  deliver_queue: 65536   # messages from other nodes waiting here; more are dropped (counted)
  channels: []           # history (engine nats; README: History and recovery), the first match applies:
                         # {match: "room:*", history: {size: 100, ttl: 10m}, envelope: true}
                         # size: messages kept per channel (0: no limit), ttl: their age (0: none);
                         # envelope: each delivery is {channel, offset, epoch, data|data_base64}
  history_shards: 4      # streams sharing each entry's channels
  history_check: 5s      # a quiet history channel is compared with its stream this often
  resume_limit: 10000    # the most missed messages one resume gives; more: recovered false
  hook_ack_wait: 30s     # a disconnect hook its node has not delivered this long (it died) goes to another
  nats:
    url: ""              # an external NATS (nats://host:4222,...); empty: embedded in lwsgate
    replicas: 0          # of the cluster's buckets; 0: 3 with three nodes or more, else 1
    embedded:
      cluster_listen: "" # host:port for the other nodes' routes; empty: a single node
      advertise: ""      # host:port given to the others; empty: cluster_listen
      routes: []         # every node's nats://host:port, this one's included
      client_listen: ""  # host:port for NATS clients; empty: 127.0.0.1:0 when clustered
      store_dir: ""      # JetStream's directory: required with engine nats
      max_memory: 0      # 0: 256MiB
      max_store: 0       # 0: 1GiB
      ping_interval: 0s  # route pings; 0: 1s
      max_pings_out: 0   # unanswered pings that drop a route; 0: 3
      sync: ""           # fsync: a duration (1s) or always; empty: every 2m (README: what "acknowledged" means)
`

// DefaultConfig returns the built-in configuration: the zero Config,
// defaulted. It is what lwsgate runs with no file, and what a file
// leaves out (DefaultYAML writes it out).
func DefaultConfig() *Config {
	c := &Config{}
	c.setDefaults()
	return c
}

// defaultRules are the rules of a config that has none (Config.Rules).
func defaultRules() []RuleConfig {
	info, subscribe, unsubscribe, publish := "info", "subscribe", "unsubscribe", "publish"
	return []RuleConfig{
		{Name: "close-command", Match: MatchConfig{Type: "text", Prefix: "/close "}, Action: ActionClose},
		{Name: "info", Match: MatchConfig{Field: "action", Value: &info}, Action: ActionInfo},
		{Name: "subscribe", Match: MatchConfig{Field: "action", Value: &subscribe}, Action: ActionSubscribe, ChannelField: "channel"},
		{Name: "unsubscribe", Match: MatchConfig{Field: "action", Value: &unsubscribe}, Action: ActionUnsubscribe, ChannelField: "channel"},
		{Name: "publish", Match: MatchConfig{Field: "action", Value: &publish}, Action: ActionPublish, ChannelField: "channel", IDField: "id"},
		{Name: "echo", Action: ActionEcho},
	}
}

// setDefaults gives every field left out (zero, or a nil list) its
// default, in place. It is idempotent.
func (c *Config) setDefaults() {
	setDefault(&c.Log.Level, defaultLogLevel)
	setDefault(&c.Log.Format, defaultLogFormat)
	if c.Log.Trace == nil {
		c.Log.Trace = new(defaultTrace)
	}
	setDefault(&c.Log.LinkTrace, defaultLinkTrace)
	if c.Listeners == nil {
		c.Listeners = []ListenerConfig{{Addr: defaultListenAddr}}
	}
	for i := range c.Listeners {
		c.Listeners[i].setDefaults(i)
	}
	setDefault(&c.Admin.Addr, defaultAdminAddr)
	setDefault(&c.Tokens.TTL, Duration(defaultTokenTTL))
	for i := range c.Backends {
		b := &c.Backends[i]
		setDefault(&b.Timeout, Duration(DefaultBackendTimeout))
		setDefault(&b.Reconnect.Initial, Duration(defaultBackoffInitial))
		setDefault(&b.Reconnect.Max, Duration(defaultBackoffMax))
	}
	if c.Rules == nil {
		c.Rules = defaultRules()
	}
	for i := range c.Rules {
		setDefault(&c.Rules[i].Name, fmt.Sprintf("rule %d", i+1))
	}
	setDefault(&c.Hooks.Timeout, Duration(defaultHookTimeout))
	setDefault(&c.Hooks.Retries, defaultHookRetries)
	setDefault(&c.NetworkTimeout, Duration(defaultNetworkTimeout))
	setDefault(&c.EventLoop, defaultEventLoop)
	setDefault(&c.Shutdown.Drain, Duration(defaultDrain))
	setDefault(&c.Shutdown.Deadline, c.Shutdown.Drain+Duration(defaultDeadlineAfter))
	c.Cluster.setDefaults()
}

// setDefaults gives the fields of listener i left out the default
// listener's values.
func (l *ListenerConfig) setDefaults(i int) {
	if l.Name == "" {
		l.Name = l.Addr
		if i == 0 {
			l.Name = "main"
		}
	}
	if len(l.Links) == 0 {
		l.Links = []string{TypeTCPListen, TypeHTTPListen}
	}
	if l.Subprotocols == nil {
		l.Subprotocols = []string{defaultSubprotocol}
	}
	setDefault(&l.ForwardedHeader, defaultForwarded)
	if l.Demo == nil {
		l.Demo = new(i == 0 && len(l.Links) == 2)
	}
	lim := &l.Limits
	setDefault(&lim.MaxMessage, defaultMaxMessage)
	setDefault(&lim.MaxBody, defaultMaxBody)
	setDefault(&lim.MaxSendQueue, Size(lws.DefaultMaxSendQueue(int64(lim.MaxMessage))))
	setDefault(&lim.MaxHeaderBytes, defaultMaxHeaderBytes)
	a := &l.Auth
	setDefault(&a.Leeway, Duration(defaultLeeway))
	setDefault(&a.JWKSRefresh, Duration(defaultJWKSRefresh))
	setDefault(&a.JWKSMinInterval, Duration(defaultJWKSMin))
}

// setDefault sets *field to def when it is zero.
func setDefault[T comparable](field *T, def T) {
	var zero T
	if *field == zero {
		*field = def
	}
}
