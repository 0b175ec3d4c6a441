package cluster

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"strconv"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// embeddedServer is the nats-server of an embedded node, in this
// process. The engine talks to it through an in-process pipe
// (nats.InProcessServer), never a socket.
//
// Concurrency: safe from any goroutine (server.Server's own contract).
type embeddedServer struct {
	ns *server.Server
}

// startEmbedded starts the server cfg describes and waits until it
// accepts connections. JetStream is on, with explicit limits and store
// directory; the server does not handle signals (the gateway does).
func startEmbedded(ctx context.Context, cfg Config, log *slog.Logger) (*embeddedServer, error) {
	e := cfg.NATS.Embedded
	if err := writableDir(e.StoreDir); err != nil {
		return nil, &FieldError{Field: "nats.embedded.store_dir", Msg: err.Error()}
	}
	opts := &server.Options{
		ServerName:             cfg.Node,
		NoSigs:                 true,
		JetStream:              true,
		StoreDir:               e.StoreDir,
		JetStreamMaxMemory:     e.MaxMemory,
		JetStreamMaxStore:      e.MaxStore,
		DisableJetStreamBanner: true,
	}
	// Validate has checked it.
	opts.SyncInterval, opts.SyncAlways, _ = e.syncOption()
	if e.ClientListen == "" {
		opts.DontListen = true
	} else {
		host, port, err := listenAddr(e.ClientListen)
		if err != nil {
			return nil, &FieldError{Field: "nats.embedded.client_listen", Msg: err.Error()}
		}
		opts.Host, opts.Port = host, port
	}
	if e.ClusterListen != "" {
		host, port, err := listenAddr(e.ClusterListen)
		if err != nil {
			return nil, &FieldError{Field: "nats.embedded.cluster_listen", Msg: err.Error()}
		}
		opts.Cluster = server.ClusterOpts{
			Name:         cfg.Name,
			Host:         host,
			Port:         port,
			Advertise:    e.Advertise,
			PingInterval: e.PingInterval,
			MaxPingsOut:  e.MaxPingsOut,
			// One route connection to each node for the gateway's
			// traffic, beside the one pinned for the system account
			// (RAFT, JetStream's API). nats-server pools 3 by default,
			// but it spreads accounts over the pool, not messages, and
			// all of lwsgate's traffic is in one account: the other two
			// connections only pinged, once a second each way
			// (PingInterval), with two goroutines each. Servers of
			// another pool size still route to these (nats-server
			// 2.11+ takes the larger), so nodes can be upgraded one at
			// a time.
			PoolSize: 1,
		}
		for i, r := range e.Routes {
			u, err := url.Parse(r)
			if err != nil {
				return nil, &FieldError{Field: fmt.Sprintf("nats.embedded.routes[%d]", i), Msg: err.Error()}
			}
			opts.Routes = append(opts.Routes, u)
		}
	}
	ns, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("cluster: embedded NATS server: %w", err)
	}
	ns.SetLoggerV2(serverLog{log.With("nats", cfg.Node)}, false, false, false)
	go ns.Start()
	wait := 10 * time.Second
	if dl, ok := ctx.Deadline(); ok {
		wait = time.Until(dl)
	}
	if !ns.ReadyForConnections(wait) {
		ns.Shutdown()
		ns.WaitForShutdown()
		return nil, fmt.Errorf("cluster: embedded NATS server not ready after %v", wait)
	}
	return &embeddedServer{ns: ns}, nil
}

// clustered reports that the server has routes to other servers.
func (s *embeddedServer) clustered() bool { return s.ns.ClusterAddr() != nil }

func (s *embeddedServer) shutdown() {
	s.ns.Shutdown()
	s.ns.WaitForShutdown()
}

// listenAddr splits host:port for server.Options: port 0 becomes
// server.RANDOM_PORT (nats-server reads 0 as "the default port").
func listenAddr(s string) (string, int, error) {
	host, ps, err := net.SplitHostPort(s)
	if err != nil {
		return "", 0, err
	}
	port, err := strconv.Atoi(ps)
	if err != nil || port < 0 || port > 65535 {
		return "", 0, fmt.Errorf("%q: bad port", s)
	}
	if port == 0 {
		port = server.RANDOM_PORT
	}
	return host, port, nil
}

func writableDir(dir string) error {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, ".lwsgate-probe-*")
	if err != nil {
		return fmt.Errorf("%s: not writable: %v", dir, err)
	}
	f.Close()
	return os.Remove(f.Name())
}

// serverLog passes the server's warnings and errors to the engine's
// logger; its notices are debug lines (it is chatty at start).
//
// Concurrency: safe from any goroutine (slog.Logger's contract).
type serverLog struct{ l *slog.Logger }

func (s serverLog) Noticef(f string, v ...any) { s.l.Debug(fmt.Sprintf(f, v...)) }
func (s serverLog) Warnf(f string, v ...any)   { s.l.Warn(fmt.Sprintf(f, v...)) }
func (s serverLog) Fatalf(f string, v ...any)  { s.l.Error(fmt.Sprintf(f, v...)) }
func (s serverLog) Errorf(f string, v ...any)  { s.l.Error(fmt.Sprintf(f, v...)) }
func (s serverLog) Debugf(f string, v ...any)  {}
func (s serverLog) Tracef(f string, v ...any)  {}
