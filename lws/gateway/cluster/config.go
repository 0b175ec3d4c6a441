package cluster

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"regexp"
	"strings"
	"time"
)

// Engine names (Config.Engine).
const (
	EngineMemory = "memory"
	EngineNATS   = "nats"
)

// Config is the cluster section of the gateway's configuration. The zero
// value is the memory engine: one process, today's behaviour. Each
// field's zero value is documented on it and applied by Open (and by
// WithDefaults, for callers that want to show the effective values).
//
// Concurrency: a value; Open copies it and never modifies the caller's.
type Config struct {
	// Engine is memory or nats. "": memory.
	Engine string `yaml:"engine"`
	// Name names the cluster: it prefixes every subject (lws.<name>.…)
	// and bucket (lws_<name>…), so several clusters can share one NATS
	// system. Letters, digits, '-' and '_', at most 32. "": lwsgate.
	Name string `yaml:"name"`
	// Node names this node, uniquely in the cluster (a second live node
	// with the same name is refused at start with ErrNameInUse); it is
	// also the embedded server's name. Letters, digits, '.', '-' and
	// '_', at most 64, starting with a letter or digit. "": the host name.
	Node string `yaml:"node"`
	// NATS configures the connection (nats engine only).
	NATS NATSConfig `yaml:"nats"`
	// Lease is how long a node's registration lives without renewal; the
	// node renews it every Lease/5. A node killed without goodbye is
	// known dead within about Lease (plus up to 1s: the server expires
	// keys on a one-second tick). Whole seconds, at least 1s. 0: 5s.
	Lease time.Duration `yaml:"lease"`
	// ReapAfter is the grace period. A node that could not renew its
	// lease for ReapAfter reports itself fenced (Event Fenced); a node
	// whose lease has been expired for ReapAfter is reaped by exactly
	// one survivor (Event Reap). Reaping therefore comes at least Lease
	// after fencing. Must be longer than Lease; with replicated buckets
	// it should also outlast a JetStream leader election (up to about
	// 10s), or every node fences while a leader is being elected. 0: 30s.
	ReapAfter time.Duration `yaml:"reap_after"`
	// SurveyTimeout bounds how long Survey waits for the slowest node;
	// a node that has not answered by then is listed as missing. 0: 250ms.
	SurveyTimeout time.Duration `yaml:"survey_timeout"`
	// CallTimeout bounds a Call (and a handler serving one). 0: 2s.
	CallTimeout time.Duration `yaml:"call_timeout"`
	// Linger keeps a channel's subscription for this long after its last
	// local member left (Interest(ch, false)), so that a member that
	// comes straight back costs no unsubscribe/subscribe round through
	// the cluster. 0: 5s; negative: unsubscribe at once.
	Linger time.Duration `yaml:"linger"`
	// DeliverQueue is how many messages from other nodes may wait for
	// the Deliver hook; beyond it messages are dropped and counted
	// (Stats.Dropped). 0: 65536.
	DeliverQueue int `yaml:"deliver_queue"`

	// Channels give channels a history (see ChannelConfig): the first
	// entry whose Match matches a channel's name applies; a channel that
	// none matches is plain (at most once, no history). History is stored
	// in JetStream, so it needs the nats engine (a single node runs one
	// embedded). Every node must have the same entries. Empty: every
	// channel is plain.
	Channels []ChannelConfig `yaml:"channels"`
	// HistoryShards is how many streams hold the channels of each entry
	// of Channels, a channel going to one by a hash of its name, so that
	// no one stream (and no one stream leader) carries every channel.
	// 1 to 64. 0: 4.
	HistoryShards int `yaml:"history_shards"`
	// HistoryCheck: a node looks in the stream at each history channel it
	// has members of that has been quiet this long, so that a lost last
	// message is noticed too (any other loss shows at the next message).
	// 0: 5s.
	HistoryCheck time.Duration `yaml:"history_check"`
	// ResumeLimit is the most messages one Resume catches a member up
	// with: a member that missed more is told Recovered false, with none
	// of them (the application resyncs from its own data), and goes on
	// from the channel's current position. 1 to 1048576. 0: 10000.
	ResumeLimit int `yaml:"resume_limit"`
	// HookAckWait is how long a node may take over one disconnect hook of
	// the durable queue before the queue hands it to another node: a node
	// that dies while delivering a hook leaves it to be delivered again
	// after this. Longer than the gateway's hook timeout. 0: 30s.
	HookAckWait time.Duration `yaml:"hook_ack_wait"`

	// testServer, when set, is called with the embedded server as soon
	// as it listens, before Open waits for the cluster: the tests point
	// their TCP proxies at its cluster port there.
	testServer func(*embeddedServer)
	// testAfterClaim and testAfterQueue, when set, are called by a
	// reaper right after it won its claim on a dead incarnation, and
	// after it queued a link's hook (before settling its record): the
	// tests kill the reaper there.
	testAfterClaim func(life context.Context, dead Incarnation)
	testAfterQueue func(life context.Context, link uint64)
	// testDropLive, when set, drops the republished history messages
	// for which it returns true, as a lossy path to the node would.
	testDropLive func(seq uint64) bool
	// testHideStored, when set, hides from reads of history the stored
	// messages for which it returns true, as a stream whose replicas and
	// new leader do not show a committed message yet would.
	testHideStored func(seq uint64) bool
	// testReplicaLacks, when set, hides from Direct Gets (any replica)
	// the stored messages for which it returns true, as a replica behind
	// the leader would; the leader's reads still show them.
	testReplicaLacks func(seq uint64) bool
	// testDropAck, when set, drops the acknowledgements of history
	// publishes stored at the sequences for which it returns true, as a
	// stream leader that stored a message and died before it answered
	// would.
	testDropAck func(seq uint64) bool
	// testFailAck, when set, fails the acknowledgements of delivered
	// disconnect hooks (given which delivery of the hook this is) for
	// which it returns true before they are sent, with no responders, as
	// a hook queue whose consumer has no leader would.
	testFailAck func(attempt int) bool
	// testFailProgress, when set, drops the progress reports ("still
	// sending") of the deliveries of disconnect hooks for which it
	// returns true, as a consumer with no leader would: the hook is
	// offered again after HookAckWait.
	testFailProgress func(attempt int) bool
	// testFailMark, when set, fails the marks of delivered disconnect
	// hooks as sent while it returns true, as a bucket with no leader
	// would.
	testFailMark func() bool
}

// NATSConfig: where the nats engine's NATS comes from.
//
// Concurrency: a value, like Config.
type NATSConfig struct {
	// URL, when set, joins an external NATS system as a client: one URL
	// or a comma-separated list (nats://, tls://, ws://, wss://). "": the
	// server is embedded in this process (Embedded).
	URL string `yaml:"url"`
	// Replicas of the cluster's JetStream buckets (registry and link
	// records). 0: 3 when embedded with three routes or more, or when the
	// external server is part of a cluster; 1 otherwise. A cluster of
	// two embedded nodes keeps its buckets on one of them: three survive
	// the loss of any one.
	Replicas int `yaml:"replicas"`
	// Embedded configures the in-process server (URL empty).
	Embedded EmbeddedConfig `yaml:"embedded"`
}

// EmbeddedConfig configures the nats-server embedded in this process.
// Without ClusterListen it is a single node: no listener at all, the
// engine talks to it in-process. With ClusterListen, the nodes listed in
// Routes form one NATS cluster and one JetStream cluster (RAFT) among
// themselves; list every node there, this one included, so each knows
// the cluster's size from the start.
//
// Concurrency: a value, like Config.
type EmbeddedConfig struct {
	// ClusterListen is the host:port other nodes' routes connect to
	// (port 0: chosen by the kernel). "": not clustered.
	ClusterListen string `yaml:"cluster_listen"`
	// Advertise is the host:port this node gives the others for its
	// routes (behind NAT, or a proxy). "": ClusterListen's.
	Advertise string `yaml:"advertise"`
	// Routes are the seed routes, nats://host:port, one per node. Required
	// with ClusterListen.
	Routes []string `yaml:"routes"`
	// ClientListen is a host:port for NATS clients (the nats CLI, say).
	// "": 127.0.0.1:0 when clustered (nats-server#5174: a server that
	// does not listen for clients never opens its routes), none when not.
	ClientListen string `yaml:"client_listen"`
	// StoreDir is JetStream's directory: the registry and link records
	// (and, later, channel history) live there. Required.
	StoreDir string `yaml:"store_dir"`
	// MaxMemory bounds JetStream's memory storage, bytes. 0: 256 MiB.
	MaxMemory int64 `yaml:"max_memory"`
	// MaxStore bounds JetStream's file storage, bytes. 0: 1 GiB.
	MaxStore int64 `yaml:"max_store"`
	// PingInterval pings each route this often; MaxPingsOut unanswered
	// pings close it. A silent peer (a partition, a paused process) is
	// noticed after about PingInterval × MaxPingsOut. 0: 1s (the
	// server's own default is 2 minutes, capped at 30s for routes).
	PingInterval time.Duration `yaml:"ping_interval"`
	// MaxPingsOut: 0: 3.
	MaxPingsOut int `yaml:"max_pings_out"`
	// Sync is when JetStream flushes what it stored to disk (fsync): a
	// duration ("1s": every second, in the background) or "always"
	// (before every acknowledgement). What an acknowledged publish
	// survives follows from it; see doc.go, "Durability". "": every 2
	// minutes, JetStream's own default.
	Sync string `yaml:"sync"`
}

// The defaults, stated once.
const (
	defaultName          = "lwsgate"
	defaultLease         = 5 * time.Second
	defaultReapAfter     = 30 * time.Second
	defaultSurveyTimeout = 250 * time.Millisecond
	defaultCallTimeout   = 2 * time.Second
	defaultLinger        = 5 * time.Second
	defaultDeliverQueue  = 65536
	defaultMaxMemory     = 256 << 20
	defaultMaxStore      = 1 << 30
	defaultPingInterval  = time.Second
	defaultMaxPingsOut   = 3
	defaultClientListen  = "127.0.0.1:0"
	defaultHistoryShards = 4
	defaultHistoryCheck  = 5 * time.Second
	defaultResumeLimit   = 10000
	defaultHookAckWait   = 30 * time.Second
	syncAlways           = "always"
)

// WithDefaults returns c with every zero field set to its default. Node
// defaults to the host name; if that cannot be read, Node stays empty
// and Validate says so.
func (c Config) WithDefaults() Config {
	if c.Engine == "" {
		c.Engine = EngineMemory
	}
	if c.Name == "" {
		c.Name = defaultName
	}
	if c.Node == "" {
		c.Node, _ = os.Hostname()
	}
	if c.Lease == 0 {
		c.Lease = defaultLease
	}
	if c.ReapAfter == 0 {
		c.ReapAfter = defaultReapAfter
	}
	if c.SurveyTimeout == 0 {
		c.SurveyTimeout = defaultSurveyTimeout
	}
	if c.CallTimeout == 0 {
		c.CallTimeout = defaultCallTimeout
	}
	if c.Linger == 0 {
		c.Linger = defaultLinger
	}
	if c.DeliverQueue == 0 {
		c.DeliverQueue = defaultDeliverQueue
	}
	if c.HistoryShards == 0 {
		c.HistoryShards = defaultHistoryShards
	}
	if c.HistoryCheck == 0 {
		c.HistoryCheck = defaultHistoryCheck
	}
	if c.ResumeLimit == 0 {
		c.ResumeLimit = defaultResumeLimit
	}
	if c.HookAckWait == 0 {
		c.HookAckWait = defaultHookAckWait
	}
	e := &c.NATS.Embedded
	if c.Engine == EngineNATS && c.NATS.URL == "" {
		if e.MaxMemory == 0 {
			e.MaxMemory = defaultMaxMemory
		}
		if e.MaxStore == 0 {
			e.MaxStore = defaultMaxStore
		}
		if e.PingInterval == 0 {
			e.PingInterval = defaultPingInterval
		}
		if e.MaxPingsOut == 0 {
			e.MaxPingsOut = defaultMaxPingsOut
		}
		if e.ClusterListen != "" && e.ClientListen == "" {
			e.ClientListen = defaultClientListen
		}
	}
	return c
}

// FieldError is a configuration error: Field is the offending field's
// path inside the cluster section, as written in YAML ("nats.url",
// "nats.embedded.routes[1]"), for the gateway to map to file:line.
//
// Concurrency: a value.
type FieldError struct {
	Field string
	Msg   string
}

func (e *FieldError) Error() string { return "cluster." + e.Field + ": " + e.Msg }

var (
	clusterNameRE = regexp.MustCompile(`^[A-Za-z0-9_-]{1,32}$`)
	nodeNameRE    = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)
)

// Validate checks c after WithDefaults and returns every problem as a
// *FieldError, joined (errors.Join). Validate reads no file and opens no
// socket; Open reports what only the running system can tell (a store
// directory that cannot be written, a name already in use) as
// *FieldError or a typed error too.
func (c Config) Validate() error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, &FieldError{Field: field, Msg: fmt.Sprintf(format, args...)})
	}
	switch c.Engine {
	case EngineMemory:
		if c.NATS.URL != "" || !c.NATS.Embedded.isZero() {
			bad("engine", "memory, but a nats section is set: want engine: nats, or no nats section")
		}
	case EngineNATS:
	default:
		bad("engine", "%q: want memory or nats", c.Engine)
	}
	if !clusterNameRE.MatchString(c.Name) {
		bad("name", "%q: want 1 to 32 letters, digits, '-' or '_'", c.Name)
	}
	if !nodeNameRE.MatchString(c.Node) {
		bad("node", "%q: want 1 to 64 letters, digits, '.', '-' or '_', starting with a letter or digit", c.Node)
	}
	if c.Lease < time.Second || c.Lease%time.Second != 0 {
		bad("lease", "%v: want whole seconds, at least 1s (the server expires keys by the second)", c.Lease)
	}
	if c.ReapAfter <= c.Lease {
		bad("reap_after", "%v: want longer than lease (%v), so that a node fences itself before it can be reaped", c.ReapAfter, c.Lease)
	}
	if c.SurveyTimeout < 0 {
		bad("survey_timeout", "%v: want a positive duration", c.SurveyTimeout)
	}
	if c.CallTimeout < 0 {
		bad("call_timeout", "%v: want a positive duration", c.CallTimeout)
	}
	if c.DeliverQueue < 0 {
		bad("deliver_queue", "%d: want a positive count", c.DeliverQueue)
	}
	if c.HistoryShards < 1 || c.HistoryShards > maxHistoryShards {
		bad("history_shards", "%d: want 1 to %d", c.HistoryShards, maxHistoryShards)
	}
	if c.HistoryCheck < 0 {
		bad("history_check", "%v: want a positive duration", c.HistoryCheck)
	}
	if c.ResumeLimit < 1 || c.ResumeLimit > maxHistorySize {
		bad("resume_limit", "%d: want 1 to %d", c.ResumeLimit, maxHistorySize)
	}
	if c.HookAckWait < time.Second {
		bad("hook_ack_wait", "%v: want at least 1s", c.HookAckWait)
	}
	errs = append(errs, validateChannels(c.Channels)...)
	if len(c.Channels) > 0 && c.Engine == EngineMemory {
		bad("channels", "history needs engine: nats (it is stored in JetStream; a single node runs one embedded)")
	}
	if c.Engine == EngineNATS {
		errs = append(errs, c.NATS.validate()...)
	}
	return errors.Join(errs...)
}

func (n NATSConfig) validate() []error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, &FieldError{Field: field, Msg: fmt.Sprintf(format, args...)})
	}
	if n.Replicas < 0 || n.Replicas > 5 {
		bad("nats.replicas", "%d: want 1 to 5, or 0 for automatic", n.Replicas)
	}
	if n.URL != "" {
		for _, u := range strings.Split(n.URL, ",") {
			if err := checkURL(strings.TrimSpace(u), "nats", "tls", "ws", "wss"); err != nil {
				bad("nats.url", "%v", err)
			}
		}
		if !n.Embedded.isZero() {
			bad("nats.embedded", "set together with nats.url: an external NATS or an embedded server, not both")
		}
		return errs
	}
	e := n.Embedded
	if e.StoreDir == "" {
		bad("nats.embedded.store_dir", "required: JetStream keeps the registry and link records there")
	}
	if e.MaxMemory < 0 {
		bad("nats.embedded.max_memory", "%d: want a positive size", e.MaxMemory)
	}
	if e.MaxStore < 0 {
		bad("nats.embedded.max_store", "%d: want a positive size", e.MaxStore)
	}
	if e.PingInterval < 0 {
		bad("nats.embedded.ping_interval", "%v: want a positive duration", e.PingInterval)
	}
	if e.MaxPingsOut < 0 {
		bad("nats.embedded.max_pings_out", "%d: want a positive count", e.MaxPingsOut)
	}
	if _, _, err := e.syncOption(); err != nil {
		bad("nats.embedded.sync", "%v", err)
	}
	if e.ClientListen != "" {
		if err := checkHostPort(e.ClientListen); err != nil {
			bad("nats.embedded.client_listen", "%v", err)
		}
	}
	if e.ClusterListen == "" {
		if e.Advertise != "" {
			bad("nats.embedded.advertise", "set without cluster_listen")
		}
		if len(e.Routes) > 0 {
			bad("nats.embedded.routes", "set without cluster_listen")
		}
		return errs
	}
	if err := checkHostPort(e.ClusterListen); err != nil {
		bad("nats.embedded.cluster_listen", "%v", err)
	}
	if e.Advertise != "" {
		if err := checkHostPort(e.Advertise); err != nil {
			bad("nats.embedded.advertise", "%v", err)
		}
	}
	if len(e.Routes) == 0 {
		bad("nats.embedded.routes", "required with cluster_listen: list every node's route URL, this one's included")
	}
	for i, r := range e.Routes {
		if err := checkURL(r, "nats"); err != nil {
			bad(fmt.Sprintf("nats.embedded.routes[%d]", i), "%v", err)
		}
	}
	return errs
}

func (e EmbeddedConfig) isZero() bool {
	return e.ClusterListen == "" && e.Advertise == "" && len(e.Routes) == 0 && e.ClientListen == "" &&
		e.StoreDir == "" && e.MaxMemory == 0 && e.MaxStore == 0 && e.PingInterval == 0 && e.MaxPingsOut == 0 &&
		e.Sync == ""
}

// syncOption reads Sync: the server's SyncInterval and SyncAlways.
func (e EmbeddedConfig) syncOption() (interval time.Duration, always bool, err error) {
	switch e.Sync {
	case "":
		return 0, false, nil
	case syncAlways:
		return 0, true, nil
	}
	d, err := time.ParseDuration(e.Sync)
	if err != nil || d <= 0 {
		return 0, false, fmt.Errorf("%q: want always, or a positive duration such as 1s", e.Sync)
	}
	return d, false, nil
}

func checkURL(s string, schemes ...string) error {
	u, err := url.Parse(s)
	if err != nil {
		return fmt.Errorf("%q: %v", s, err)
	}
	ok := false
	for _, sc := range schemes {
		ok = ok || u.Scheme == sc
	}
	if !ok {
		return fmt.Errorf("%q: want a URL of scheme %s", s, strings.Join(schemes, ", "))
	}
	if u.Hostname() == "" || u.Port() == "" {
		return fmt.Errorf("%q: want host:port", s)
	}
	return nil
}

func checkHostPort(s string) error {
	_, port, err := net.SplitHostPort(s)
	if err != nil {
		return fmt.Errorf("%q: want host:port", s)
	}
	if _, err := net.LookupPort("tcp", port); err != nil {
		return fmt.Errorf("%q: bad port", s)
	}
	return nil
}
