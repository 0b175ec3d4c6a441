// Command lwsgate is a WebSocket and HTTP gateway on libwebsockets.
//
// With no arguments it listens on :8090 for both link types of the system
// it descends from: tcplisten (long links: WebSocket, echoed) and httplisten
// (short links: HTTP, e.g. POST /v1/api/createtoken), keeps a table of live
// links and writes one reason-log line per libwebsockets callback:
//
//	[2026-11-24 10:05:47.123][DEBUG] cb ctx:1 wsi:7 reason:6 LWS_CALLBACK_RECEIVE
//
// Run lwsgate -h for the flags.
package main

import (
	"context"
	"crypto/rand"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/lwsgate/lwsgate/lws"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr, nil))
}

// options are the parsed flags.
type options struct {
	listen     string
	links      lws.LinkTypes
	logLevel   slog.Level
	trace      bool
	maxMessage int64
	maxBody    int64
	tokenTTL   time.Duration
	shutdown   time.Duration
	version    bool
}

func parseFlags(args []string, stderr io.Writer) (*options, error) {
	o := &options{}
	fs := flag.NewFlagSet("lwsgate", flag.ContinueOnError)
	fs.SetOutput(io.Discard) // errors are reported in one line by run
	fs.StringVar(&o.listen, "listen", ":8090", "`address` to listen on (host:port; port 0 picks one)")
	links := fs.String("links", "tcplisten,httplisten", "link `types` the listener accepts: tcplisten (WebSocket), httplisten (HTTP), or both")
	level := fs.String("log-level", "info", "log `level`: debug, info, warn, error")
	fs.BoolVar(&o.trace, "trace", true, "write one reason-log line per libwebsockets callback")
	fs.Int64Var(&o.maxMessage, "max-message", 16<<20, "largest WebSocket message in `bytes` (over it: close 1009)")
	fs.Int64Var(&o.maxBody, "max-body", 1<<20, "largest HTTP request body in `bytes` (over it: 413)")
	fs.DurationVar(&o.tokenTTL, "token-ttl", time.Hour, "lifetime of tokens from /v1/api/createtoken")
	fs.DurationVar(&o.shutdown, "shutdown-timeout", 5*time.Second, "how long to wait for links to close on SIGTERM")
	fs.BoolVar(&o.version, "version", false, "print the version and how libwebsockets is linked, then exit")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fs.SetOutput(stderr)
			fmt.Fprintln(stderr, "usage: lwsgate [flags]")
			fs.PrintDefaults()
		}
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	var err error
	if o.links, err = lws.ParseLinkTypes(*links); err != nil {
		return nil, fmt.Errorf("-links: %v", err)
	}
	if err := o.logLevel.UnmarshalText([]byte(*level)); err != nil {
		return nil, fmt.Errorf("-log-level %q: want debug, info, warn or error", *level)
	}
	if o.maxMessage <= 0 {
		return nil, fmt.Errorf("-max-message %d: must be positive", o.maxMessage)
	}
	if o.maxBody <= 0 {
		return nil, fmt.Errorf("-max-body %d: must be positive", o.maxBody)
	}
	if o.tokenTTL <= 0 {
		return nil, fmt.Errorf("-token-ttl %v: must be positive", o.tokenTTL)
	}
	if _, _, err := net.SplitHostPort(o.listen); err != nil {
		return nil, fmt.Errorf("-listen %q: %v", o.listen, err)
	}
	return o, nil
}

// run is main without the process: it returns the exit code (2 for bad
// usage, 1 for a failure) and calls ready, if set, once listening.
func run(ctx context.Context, args []string, stdout, stderr io.Writer, ready func([]net.Addr)) int {
	o, err := parseFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintln(stderr, "lwsgate:", err)
		return 2
	}
	if o.version {
		fmt.Fprintf(stdout, "lwsgate %s\nlibwebsockets %s\nlinked: %s\n", version, lws.Version(), lws.LinkInfo)
		return 0
	}
	out := &lockedWriter{w: stderr}
	log := slog.New(&lineHandler{w: out, level: o.logLevel})

	secret, fromEnv := []byte(os.Getenv("LWSGATE_TOKEN_SECRET")), true
	if len(secret) == 0 {
		fromEnv = false
		secret = make([]byte, 32)
		_, _ = rand.Read(secret)
	}
	if !fromEnv {
		log.Warn("LWSGATE_TOKEN_SECRET is not set: tokens are signed with a random per-process key")
	}

	links := newLinkTable(log)
	cfg := &lws.Config{
		Logger:          log,
		ShutdownTimeout: o.shutdown,
		OnLinkOpen:      links.add,
		OnLinkClose:     links.del,
		Listeners: []lws.Listener{{
			Name:           "main",
			Addr:           o.listen,
			Links:          o.links,
			Handler:        router{log: log},
			HTTPHandler:    &api{log: log, secret: secret, ttl: o.tokenTTL, links: links},
			Subprotocols:   []string{"lws-gate"},
			MaxMessageSize: o.maxMessage,
			MaxBodySize:    o.maxBody,
		}},
	}
	if o.trace {
		cfg.Trace = out
	}
	gw, err := lws.New(cfg)
	if err != nil {
		fmt.Fprintln(stderr, "lwsgate:", strings.TrimPrefix(err.Error(), "lws: "))
		return 1
	}
	addrs := gw.Addrs()
	log.Info("lwsgate listening", "addr", addrs[0].String(), "links", o.links.String(),
		"libwebsockets", lws.Version(), "version", version)
	if ready != nil {
		ready(addrs)
	}
	select {
	case <-ctx.Done():
		log.Info("shutting down", "links", links.len(), "timeout", o.shutdown)
	case <-gw.Done():
		log.Error("service loop stopped")
	}
	sctx, cancel := context.WithTimeout(context.Background(), o.shutdown+5*time.Second)
	defer cancel()
	if err := gw.Shutdown(sctx); err != nil {
		log.Error("shutdown", "err", err)
		return 1
	}
	log.Info("stopped")
	return 0
}
