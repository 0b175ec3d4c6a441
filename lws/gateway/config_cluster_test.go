package gateway

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestClusterConfigErrors: a bad cluster section is refused with the
// file, line and field at fault; engine nats needs tokens.secret, which
// the environment may give.
func TestClusterConfigErrors(t *testing.T) {
	for _, tc := range []struct{ yaml, want string }{
		{"tokens: {secret: s}\ncluster:\n  engine: nats\n  nats:\n    url: http://127.0.0.1:4222\n",
			`c.yaml:5: cluster.nats.url: "http://127.0.0.1:4222": want a URL of scheme nats, tls, ws, wss`},
		{"tokens: {secret: s}\ncluster:\n  engine: nats\n  nats:\n    embedded:\n      max_store: 1GiB\n",
			"c.yaml:6: cluster.nats.embedded.store_dir: required"},
		{"cluster:\n  engine: redis\n", `c.yaml:2: cluster.engine: "redis": want memory or nats`},
		{"cluster:\n  nats:\n    url: nats://127.0.0.1:4222\n", "c.yaml:2: cluster.engine: memory, but a nats section is set"},
		{"tokens: {secret: s}\ncluster:\n  engine: nats\n  lease: 1500ms\n  nats: {url: nats://127.0.0.1:4222}\n", "c.yaml:4: cluster.lease: 1.5s: want whole seconds"},
		{"tokens: {secret: s}\nhooks: {timeout: 5s}\ncluster:\n  engine: nats\n  hook_ack_wait: 3s\n  nats: {url: nats://127.0.0.1:4222}\n",
			"c.yaml:5: cluster.hook_ack_wait: 3s: want longer than hooks.timeout (5s)"},
		{"tokens: {secret: s}\ncluster:\n  engine: nats\n  nats:\n    embedded:\n      store_dir: /tmp/x\n      cluster_listen: 127.0.0.1:0\n      routes: [127.0.0.1:1]\n",
			`c.yaml:8: cluster.nats.embedded.routes[0]: "127.0.0.1:1"`},
		// History: the memory engine refuses it (one process could lose
		// it); each entry's fields are checked at their lines.
		{"cluster:\n  channels:\n    - {match: \"room:*\", history: {size: 10}}\n",
			"c.yaml:3: cluster.channels: history needs engine: nats"},
		{"tokens: {secret: s}\ncluster:\n  engine: nats\n  nats: {url: nats://127.0.0.1:4222}\n  channels:\n    - match: a\n      history: {size: 10}\n    - match: \"r*x\"\n      history: {size: -1}\n",
			`c.yaml:8: cluster.channels[1].match: "r*x": * may only end the pattern`},
		{"tokens: {secret: s}\ncluster:\n  engine: nats\n  nats: {url: nats://127.0.0.1:4222}\n  channels:\n    - match: a\n      history: {size: 10}\n    - match: \"r*x\"\n      history: {size: -1}\n",
			"c.yaml:9: cluster.channels[1].history.size: -1: want 0 to 1048576"},
		{"tokens: {secret: s}\ncluster:\n  engine: nats\n  nats:\n    url: nats://127.0.0.1:4222\n  channels: [{match: a, history: {}}]\n",
			"c.yaml:6: cluster.channels[0].history: want size, ttl or both"},
		{"tokens: {secret: s}\ncluster:\n  engine: nats\n  nats:\n    embedded:\n      store_dir: /tmp/x\n      sync: sometimes\n",
			`c.yaml:7: cluster.nats.embedded.sync: "sometimes": want always, or a positive duration`},
	} {
		_, err := ParseConfig("c.yaml", []byte(tc.yaml))
		require.Error(t, err, tc.yaml)
		assert.Contains(t, err.Error(), tc.want)
	}

	// tokens.secret: required in a cluster, from the file or the
	// environment, once the environment is applied.
	y := "cluster:\n  engine: nats\n  nats:\n    url: nats://127.0.0.1:4222\n"
	c, err := ParseConfig("c.yaml", []byte(y))
	require.NoError(t, err)
	err = c.ApplyEnv(func(string) string { return "" })
	require.Error(t, err)
	assert.Contains(t, err.Error(), "c.yaml: tokens.secret: required with cluster.engine nats")
	_, err = New(c, &Options{Logger: newDiscard()})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "tokens.secret: required")
	c, err = ParseConfig("c.yaml", []byte(y))
	require.NoError(t, err)
	require.NoError(t, c.ApplyEnv(func(k string) string {
		if k == "LWSGATE_TOKEN_SECRET" {
			return "from-env"
		}
		return ""
	}))
}

// TestClusterReloadNeedsRestart: a change of the cluster section (its
// history channels included) is refused by Reload, naming it, rather
// than ignored by the running engine.
func TestClusterReloadNeedsRestart(t *testing.T) {
	a := DefaultConfig()
	b := a.Clone()
	require.NoError(t, restartNeeded(a, b))
	b.Cluster.Channels = []ChannelHistoryConfig{{Match: "room:*", History: HistoryLimits{Size: 10}}}
	err := restartNeeded(a, b)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "cluster changed: restart to apply")
}
