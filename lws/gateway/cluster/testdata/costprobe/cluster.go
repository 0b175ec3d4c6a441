//go:build nats

package main

import (
	"context"
	"log/slog"
	"time"

	"github.com/lwsgate/lwsgate/lws/gateway/cluster"
)

func init() {
	open = func(engine, dir string) (func(), error) {
		cfg := cluster.Config{Node: "probe"}
		if engine == "embedded" {
			cfg.Engine = cluster.EngineNATS
			cfg.NATS.Embedded.StoreDir = dir
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		e, err := cluster.Open(ctx, cfg, cluster.Hooks{Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			return nil, err
		}
		return func() { _ = e.Close(context.Background()) }, nil
	}
}
