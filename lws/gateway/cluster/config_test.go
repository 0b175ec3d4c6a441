package cluster

import (
	"context"
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func fields(err error) []string {
	var out []string
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		for _, e := range j.Unwrap() {
			var fe *FieldError
			if errors.As(e, &fe) {
				out = append(out, fe.Field)
			}
		}
	}
	return out
}

func TestConfigDefaults(t *testing.T) {
	c := Config{Node: "gw-a"}.WithDefaults()
	if c.Engine != EngineMemory || c.Name != "lwsgate" || c.Lease != 5*time.Second || c.ReapAfter != 30*time.Second ||
		c.SurveyTimeout != 250*time.Millisecond || c.CallTimeout != 2*time.Second || c.Linger != 5*time.Second ||
		c.DeliverQueue != 65536 ||
		c.HookAckWait != 30*time.Second {
		t.Fatalf("defaults: %+v", c)
	}
	if err := c.Validate(); err != nil {
		t.Fatalf("the zero config does not validate: %v", err)
	}
	e := Config{Engine: EngineNATS, Node: "gw-a", NATS: NATSConfig{Embedded: EmbeddedConfig{
		ClusterListen: "127.0.0.1:6222", Routes: []string{"nats://127.0.0.1:6222"}, StoreDir: "/x",
	}}}.WithDefaults().NATS.Embedded
	if e.MaxMemory != 256<<20 || e.MaxStore != 1<<30 || e.PingInterval != time.Second || e.MaxPingsOut != 3 ||
		e.ClientListen != "127.0.0.1:0" {
		t.Fatalf("embedded defaults: %+v", e)
	}
	single := Config{Engine: EngineNATS, NATS: NATSConfig{Embedded: EmbeddedConfig{StoreDir: "/x"}}}.WithDefaults()
	if single.NATS.Embedded.ClientListen != "" {
		t.Fatalf("a single embedded node listens for clients: %q", single.NATS.Embedded.ClientListen)
	}
}

// Every bad field is named, each once.
func TestConfigValidateNamesFields(t *testing.T) {
	nats := func(e EmbeddedConfig) Config {
		return Config{Engine: EngineNATS, Node: "n", NATS: NATSConfig{Embedded: e}}
	}
	for _, tc := range []struct {
		name string
		cfg  Config
		want []string
	}{
		{"unknown engine", Config{Engine: "redis", Node: "n"}, []string{"engine"}},
		{"memory with a nats section", Config{Node: "n", NATS: NATSConfig{URL: "nats://h:4222"}}, []string{"engine"}},
		{"bad names", Config{Name: "a.b", Node: "-x"}, []string{"name", "node"}},
		{"lease", Config{Node: "n", Lease: 1500 * time.Millisecond, ReapAfter: time.Minute}, []string{"lease"}},
		{"grace not above lease", Config{Node: "n", Lease: 5 * time.Second, ReapAfter: 5 * time.Second}, []string{"reap_after"}},
		{"negatives", Config{Node: "n", SurveyTimeout: -1, CallTimeout: -1, DeliverQueue: -1},
			[]string{"survey_timeout", "call_timeout", "deliver_queue"}},
		{"bad url", Config{Engine: EngineNATS, Node: "n", NATS: NATSConfig{URL: "http://h:4222,nats://h"}},
			[]string{"nats.url", "nats.url"}},
		{"url and embedded", Config{Engine: EngineNATS, Node: "n", NATS: NATSConfig{URL: "nats://h:4222",
			Embedded: EmbeddedConfig{StoreDir: "/x"}}}, []string{"nats.embedded"}},
		{"replicas", Config{Engine: EngineNATS, Node: "n", NATS: NATSConfig{URL: "nats://h:4222", Replicas: 7}},
			[]string{"nats.replicas"}},
		{"no store dir", nats(EmbeddedConfig{}), []string{"nats.embedded.store_dir"}},
		{"routes without a cluster", nats(EmbeddedConfig{StoreDir: "/x", Routes: []string{"nats://h:1"}, Advertise: "h:1"}),
			[]string{"nats.embedded.advertise", "nats.embedded.routes"}},
		{"cluster without routes", nats(EmbeddedConfig{StoreDir: "/x", ClusterListen: "h:6222"}),
			[]string{"nats.embedded.routes"}},
		{"bad addresses", nats(EmbeddedConfig{StoreDir: "/x", ClusterListen: "6222", Advertise: "h:x",
			ClientListen: "h", Routes: []string{"nats://h:1", "tcp://h:2"}}),
			[]string{"nats.embedded.client_listen", "nats.embedded.cluster_listen", "nats.embedded.advertise",
				"nats.embedded.routes[1]"}},
		{"negative limits", nats(EmbeddedConfig{StoreDir: "/x", MaxMemory: -1, MaxStore: -1, PingInterval: -1, MaxPingsOut: -1}),
			[]string{"nats.embedded.max_memory", "nats.embedded.max_store", "nats.embedded.ping_interval",
				"nats.embedded.max_pings_out"}},
		{"hook settings", Config{Node: "n", HookAckWait: time.Millisecond}, []string{"hook_ack_wait"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.WithDefaults().Validate()
			got := fields(err)
			if !slices.Equal(got, tc.want) {
				t.Fatalf("fields %q, want %q (%v)", got, tc.want, err)
			}
			if !strings.Contains(err.Error(), "cluster."+tc.want[0]+": ") {
				t.Fatalf("the message does not name cluster.%s: %v", tc.want[0], err)
			}
		})
	}
}

// Open refuses what only the running system can tell, naming the field.
func TestOpenStoreDirNotWritable(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "file")
	if err := writeFile(dir); err != nil {
		t.Fatal(err)
	}
	_, err := Open(context.Background(), Config{Engine: EngineNATS, Node: "n",
		NATS: NATSConfig{Embedded: EmbeddedConfig{StoreDir: filepath.Join(dir, "sub")}}}, Hooks{})
	var fe *FieldError
	if !errors.As(err, &fe) || fe.Field != "nats.embedded.store_dir" {
		t.Fatalf("got %v, want a FieldError on nats.embedded.store_dir", err)
	}
}
