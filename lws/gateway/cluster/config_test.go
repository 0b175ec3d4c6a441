package cluster

import (
	"context"
	"errors"
	"fmt"
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
		c.DeliverQueue != 65536 || c.HistoryShards != 4 || c.HistoryCheck != 5*time.Second || c.ResumeLimit != 10000 ||
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
		{"sync", nats(EmbeddedConfig{StoreDir: "/x", Sync: "sometimes"}), []string{"nats.embedded.sync"}},
		{"sync negative", nats(EmbeddedConfig{StoreDir: "/x", Sync: "-1s"}), []string{"nats.embedded.sync"}},
		{"history settings", Config{Node: "n", HistoryShards: 65, HistoryCheck: -1, ResumeLimit: -1, HookAckWait: time.Millisecond},
			[]string{"history_shards", "history_check", "resume_limit", "hook_ack_wait"}},
		{"history with the memory engine", Config{Node: "n", Channels: []ChannelConfig{{Match: "a", History: HistoryConfig{Size: 1}}}},
			[]string{"channels"}},
		{"channels", Config{Engine: EngineNATS, Node: "n", NATS: NATSConfig{URL: "nats://h:4222"}, Channels: []ChannelConfig{
			{History: HistoryConfig{Size: 1}},
			{Match: "a*b", History: HistoryConfig{Size: 1}},
			{Match: strings.Repeat("x", 65), History: HistoryConfig{Size: 1}},
			{Match: "ok", History: HistoryConfig{Size: -1, TTL: 1500 * time.Microsecond}},
			{Match: "ok"},
		}}, []string{"channels[0].match", "channels[1].match", "channels[2].match", "channels[3].history.size",
			"channels[3].history.ttl", "channels[4].match", "channels[4].history"}},
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

func TestChannelMatch(t *testing.T) {
	for _, tc := range []struct {
		match, channel string
		want           bool
	}{
		{"room:*", "room:1", true}, {"room:*", "room:", true}, {"room:*", "roo", false},
		{"lobby", "lobby", true}, {"lobby", "lobby2", false}, {"*", "", true}, {"*", "anything", true},
	} {
		if got := (ChannelConfig{Match: tc.match}).matches(tc.channel); got != tc.want {
			t.Errorf("%q matches %q: %v, want %v", tc.match, tc.channel, got, tc.want)
		}
	}
	// The first entry that matches applies; shards spread channels.
	h := newHistory(Config{Name: "c", HistoryShards: 4, Channels: []ChannelConfig{
		{Match: "room:vip*", History: HistoryConfig{Size: 1}}, {Match: "room:*", History: HistoryConfig{Size: 2}},
	}}.WithDefaults())
	if hs, ok := h.lookup("room:vip1"); !ok || hs.entry.History.Size != 1 {
		t.Fatalf("room:vip1: %+v", hs)
	}
	shards := map[string]bool{}
	for i := range 100 {
		hs, ok := h.lookup(fmt.Sprint("room:", i))
		if !ok || hs.entry.History.Size != 2 {
			t.Fatalf("room:%d: %+v", i, hs)
		}
		shards[hs.name] = true
	}
	if len(shards) != 4 {
		t.Fatalf("100 channels went to %d streams of 4: %v", len(shards), shards)
	}
	if _, ok := h.lookup("lobby"); ok {
		t.Fatal("lobby has a history")
	}
}
