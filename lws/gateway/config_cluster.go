package gateway

import (
	"errors"
	"time"

	"github.com/lwsgate/lwsgate/lws/gateway/cluster"
)

// ClusterConfig is the cluster section: many lwsgate nodes acting as one
// gateway (README: Cluster). Its defaults are the engine's own
// (cluster.Config, stated once there): setDefaults copies them, except
// node (the host name, read at start) and the nats section, whose zero
// values the engine resolves when engine is nats.
//
// Concurrency: a value, like Config.
type ClusterConfig struct {
	// Engine is memory (one process: today's behaviour and speed) or nats
	// (many nodes over NATS). "": memory.
	Engine string `yaml:"engine"`
	// Name prefixes the cluster's NATS subjects and buckets, so that
	// several clusters can share one NATS system. "": lwsgate.
	Name string `yaml:"name"`
	// Node names this node, uniquely in the cluster. "": the host name.
	Node string `yaml:"node"`
	// Lease: a node not renewing its registration for this long is dead
	// to the others (whole seconds). 0: 5s.
	Lease Duration `yaml:"lease"`
	// ReapAfter is the grace period: a node cut off this long closes its
	// links (1012) and goes unready; a node dead this long has its links'
	// disconnect hooks fired by a survivor (1006). Longer than lease.
	// 0: 30s.
	ReapAfter Duration `yaml:"reap_after"`
	// SurveyTimeout bounds how long a listing waits for the slowest node
	// (it is then named in Lwsgate-Partial). 0: 250ms.
	SurveyTimeout Duration `yaml:"survey_timeout"`
	// CallTimeout bounds an operation on another node's link. 0: 2s.
	CallTimeout Duration `yaml:"call_timeout"`
	// Linger keeps a channel's subscription this long after its last
	// member here left. 0: 5s.
	Linger Duration `yaml:"linger"`
	// DeliverQueue is how many messages from other nodes may wait to be
	// delivered here; more are dropped and counted. 0: 65536.
	DeliverQueue int `yaml:"deliver_queue"`
	// Channels give the channels they match a history (README: History
	// and recovery): the first entry whose match fits a channel applies;
	// other channels are plain (at most once). It needs engine nats: the
	// history is kept in JetStream (a single node embeds one), and the
	// memory engine refuses the section rather than keep a history that
	// one process could lose. Every node must list the same entries.
	// Empty: no channel has a history.
	Channels []ChannelHistoryConfig `yaml:"channels"`
	// HistoryShards is how many JetStream streams share the channels of
	// each entry of channels (by a hash of the name). 0: 4.
	HistoryShards int `yaml:"history_shards"`
	// HistoryCheck: a history channel quiet this long is compared with
	// its stream, so that a lost last message is delivered too. 0: 5s.
	HistoryCheck Duration `yaml:"history_check"`
	// ResumeLimit is the most messages one resume catches a link up
	// with; one that missed more gets recovered false. 0: 10000.
	ResumeLimit int `yaml:"resume_limit"`
	// HookAckWait: a node that took a disconnect hook from the cluster's
	// queue and has not delivered it this long (it died sending it) loses
	// it to another node, which delivers it again. Longer than
	// hooks.timeout. 0: 30s.
	HookAckWait Duration `yaml:"hook_ack_wait"`
	// NATS: where the nats engine's NATS comes from.
	NATS ClusterNATSConfig `yaml:"nats"`
}

// ChannelHistoryConfig is one entry of cluster.channels
// (cluster.ChannelConfig).
//
// Concurrency: a value, like Config.
type ChannelHistoryConfig struct {
	// Match is a channel name, or a prefix followed by * ("room:*").
	// Required.
	Match string `yaml:"match"`
	// History: how much of each channel is kept. Required: size, ttl or
	// both.
	History HistoryLimits `yaml:"history"`
	// Envelope wraps each delivery of these channels as {"channel",
	// "offset", "epoch", "data" or "data_base64"}, so that a client
	// knows its position to resume from. false: the data alone.
	Envelope bool `yaml:"envelope"`
}

// HistoryLimits is cluster.channels[].history: whichever limit is
// reached first drops the oldest messages.
//
// Concurrency: a value, like Config.
type HistoryLimits struct {
	// Size is how many messages of each channel are kept. 0: no limit by
	// count.
	Size int `yaml:"size"`
	// TTL is how long a message is kept. 0: no limit by age.
	TTL Duration `yaml:"ttl"`
}

// ClusterNATSConfig is cluster.nats (cluster.NATSConfig).
type ClusterNATSConfig struct {
	// URL joins an external NATS system (nats://, tls://, ws://, wss://;
	// a comma-separated list). "": a NATS server embedded in lwsgate.
	URL string `yaml:"url"`
	// Replicas of the cluster's buckets. 0: 3 with three nodes or more,
	// else 1.
	Replicas int `yaml:"replicas"`
	// Embedded configures the embedded server (url empty).
	Embedded ClusterEmbeddedConfig `yaml:"embedded"`
}

// ClusterEmbeddedConfig is cluster.nats.embedded
// (cluster.EmbeddedConfig). Without cluster_listen the node is alone.
type ClusterEmbeddedConfig struct {
	// ClusterListen is the host:port other nodes' routes connect to. "":
	// not clustered.
	ClusterListen string `yaml:"cluster_listen"`
	// Advertise is the host:port given to the other nodes. "":
	// cluster_listen's.
	Advertise string `yaml:"advertise"`
	// Routes are every node's nats://host:port, this one's included.
	// Required with cluster_listen.
	Routes []string `yaml:"routes"`
	// ClientListen is a host:port for NATS clients. "": 127.0.0.1:0 when
	// clustered (nats-server#5174), none otherwise.
	ClientListen string `yaml:"client_listen"`
	// StoreDir is JetStream's directory. Required with engine nats.
	StoreDir string `yaml:"store_dir"`
	// MaxMemory and MaxStore bound JetStream's memory and file storage.
	// 0: 256MiB and 1GiB.
	MaxMemory Size `yaml:"max_memory"`
	MaxStore  Size `yaml:"max_store"`
	// PingInterval pings each route; max_pings_out unanswered pings drop
	// it. 0: 1s and 3.
	PingInterval Duration `yaml:"ping_interval"`
	MaxPingsOut  int      `yaml:"max_pings_out"`
	// Sync is when JetStream flushes to disk: a duration (every so
	// often) or always (before each acknowledgement); README: History
	// and recovery says what an acknowledged publish survives under
	// each. "": every 2 minutes, JetStream's default.
	Sync string `yaml:"sync"`
}

// setDefaults copies the engine's defaults into the fields left out.
func (c *ClusterConfig) setDefaults() {
	d := cluster.Config{Node: "-"}.WithDefaults()
	setDefault(&c.Engine, d.Engine)
	setDefault(&c.Name, d.Name)
	setDefault(&c.Lease, Duration(d.Lease))
	setDefault(&c.ReapAfter, Duration(d.ReapAfter))
	setDefault(&c.SurveyTimeout, Duration(d.SurveyTimeout))
	setDefault(&c.CallTimeout, Duration(d.CallTimeout))
	setDefault(&c.Linger, Duration(d.Linger))
	setDefault(&c.DeliverQueue, d.DeliverQueue)
	setDefault(&c.HistoryShards, d.HistoryShards)
	setDefault(&c.HistoryCheck, Duration(d.HistoryCheck))
	setDefault(&c.ResumeLimit, d.ResumeLimit)
	setDefault(&c.HookAckWait, Duration(d.HookAckWait))
}

// engine returns the engine's configuration.
func (c *ClusterConfig) engine() cluster.Config {
	e := c.NATS.Embedded
	var chs []cluster.ChannelConfig
	for _, ch := range c.Channels {
		chs = append(chs, cluster.ChannelConfig{
			Match:    ch.Match,
			History:  cluster.HistoryConfig{Size: ch.History.Size, TTL: ch.History.TTL.D()},
			Envelope: ch.Envelope,
		})
	}
	return cluster.Config{
		Engine:        c.Engine,
		Name:          c.Name,
		Node:          c.Node,
		Lease:         c.Lease.D(),
		ReapAfter:     c.ReapAfter.D(),
		SurveyTimeout: c.SurveyTimeout.D(),
		CallTimeout:   c.CallTimeout.D(),
		Linger:        c.Linger.D(),
		DeliverQueue:  c.DeliverQueue,
		Channels:      chs,
		HistoryShards: c.HistoryShards,
		HistoryCheck:  c.HistoryCheck.D(),
		ResumeLimit:   c.ResumeLimit,
		HookAckWait:   c.HookAckWait.D(),
		NATS: cluster.NATSConfig{
			URL:      c.NATS.URL,
			Replicas: c.NATS.Replicas,
			Embedded: cluster.EmbeddedConfig{
				ClusterListen: e.ClusterListen,
				Advertise:     e.Advertise,
				Routes:        e.Routes,
				ClientListen:  e.ClientListen,
				StoreDir:      e.StoreDir,
				MaxMemory:     int64(e.MaxMemory),
				MaxStore:      int64(e.MaxStore),
				PingInterval:  e.PingInterval.D(),
				MaxPingsOut:   e.MaxPingsOut,
				Sync:          e.Sync,
			},
		},
	}
}

// cluster checks the cluster section through the engine's own
// validation, each error at its field's line.
func (v *validator) cluster() {
	if cc := v.c.Cluster; cc.Engine == cluster.EngineNATS && cc.HookAckWait != 0 && cc.HookAckWait.D() <= v.c.Hooks.Timeout.D() {
		v.bad("cluster.hook_ack_wait", "%v: want longer than hooks.timeout (%v), or a hook still being sent is sent again by another node",
			cc.HookAckWait.D(), v.c.Hooks.Timeout.D())
	}
	err := v.c.Cluster.engine().WithDefaults().Validate()
	if err == nil {
		return
	}
	var errs []error
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		errs = j.Unwrap()
	} else {
		errs = []error{err}
	}
	for _, e := range errs {
		var fe *cluster.FieldError
		if errors.As(e, &fe) {
			v.bad("cluster."+fe.Field, "%s", fe.Msg)
		} else {
			v.bad("cluster", "%v", e)
		}
	}
}

// requireSecret refuses a cluster without tokens.secret: a token one
// node issues must verify on every other. Checked once the environment
// is applied (ApplyEnv, New), as LWSGATE_TOKEN_SECRET may give it.
func (c *Config) requireSecret() error {
	if c.Cluster.Engine == cluster.EngineNATS && c.Tokens.Secret == "" {
		return c.errAt("tokens.secret", "required with cluster.engine nats (or LWSGATE_TOKEN_SECRET): a token issued by one node must verify on all")
	}
	return nil
}

// clusterJoinTimeout bounds how long New waits for the cluster (the
// other nodes' servers, a JetStream leader) before it gives up.
const clusterJoinTimeout = 2 * time.Minute
