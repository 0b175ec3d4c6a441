// Command lwsgate is a WebSocket and HTTP gateway on libwebsockets.
//
// With no arguments it listens on :8090 for both link types of the system
// it descends from: tcplisten (long links: WebSocket, echoed) and httplisten
// (short links: HTTP, e.g. POST /v1/api/createtoken), keeps a table of live
// links and writes one reason-log line per libwebsockets callback:
//
//	[2026-11-24 10:05:47.123][DEBUG] cb ctx:1 wsi:7 reason:6 LWS_CALLBACK_RECEIVE
//
// Run lwsgate -h for the flags. Two subcommands make one client link
// through libwebsockets and print its reason log: "lwsgate dial URL"
// (WebSocket) and "lwsgate fetch URL" (HTTP); see client.go.
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
	"net/http"
	"net/url"
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

	tlsCert, tlsKey          string
	pingInterval, pingTimout time.Duration

	upstream         string
	upstreamCA       string
	upstreamInsecure bool
	upstreamTimeout  time.Duration
	forwards         []string
}

// multiFlag collects a repeatable flag.
type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(s string) error { *m = append(*m, s); return nil }

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
	fs.StringVar(&o.tlsCert, "tls-cert", "", "PEM certificate (chain) `file`: serve wss and https")
	fs.StringVar(&o.tlsKey, "tls-key", "", "PEM private key `file` for -tls-cert")
	fs.DurationVar(&o.pingInterval, "ping-interval", 0, "ping a WebSocket link silent this `long` (whole seconds; 0: libwebsockets' 5m)")
	fs.DurationVar(&o.pingTimout, "ping-timeout", 0, "drop a WebSocket link silent this `long` (0: ping-interval + 10s)")
	fs.StringVar(&o.upstream, "upstream", "", "relay each WebSocket link to its own link to this ws:// or wss:// `URL` (tcpconnect)")
	fs.StringVar(&o.upstreamCA, "upstream-ca", "", "PEM CA `file` to verify wss/https backends (default: the system store)")
	fs.BoolVar(&o.upstreamInsecure, "upstream-insecure", false, "accept any backend certificate (tests only)")
	fs.DurationVar(&o.upstreamTimeout, "upstream-timeout", 10*time.Second, "give up dialling a backend after this `long`, retries included")
	fs.Var((*multiFlag)(&o.forwards), "forward", "forward HTTP requests under a path prefix to a backend: `PREFIX=URL`, e.g. /v1/backend/=http://127.0.0.1:9000 (httpconnect; repeatable)")
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
	if (o.tlsCert == "") != (o.tlsKey == "") {
		return nil, errors.New("-tls-cert and -tls-key go together")
	}
	if o.upstream != "" {
		u, err := url.Parse(o.upstream)
		if err != nil || (u.Scheme != "ws" && u.Scheme != "wss") || u.Host == "" {
			return nil, fmt.Errorf("-upstream %q: want a ws:// or wss:// URL", o.upstream)
		}
	}
	if o.upstreamTimeout <= 0 {
		return nil, fmt.Errorf("-upstream-timeout %v: must be positive", o.upstreamTimeout)
	}
	for _, f := range o.forwards {
		if _, _, err := parseForward(f); err != nil {
			return nil, fmt.Errorf("-forward %v", err)
		}
	}
	return o, nil
}

// run is main without the process: it returns the exit code (2 for bad
// usage, 1 for a failure) and calls ready, if set, once listening.
func run(ctx context.Context, args []string, stdout, stderr io.Writer, ready func([]net.Addr)) int {
	if len(args) > 0 {
		switch args[0] {
		case "dial":
			return runDial(ctx, args[1:], stdout, stderr)
		case "fetch":
			return runFetch(ctx, args[1:], stdout, stderr)
		}
	}
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
	routes := newRouteTable(log)
	var upTLS *lws.ClientTLS
	if o.upstreamCA != "" || o.upstreamInsecure {
		upTLS = &lws.ClientTLS{CAFile: o.upstreamCA, InsecureSkipVerify: o.upstreamInsecure}
	}
	a := &api{log: log, secret: secret, ttl: o.tokenTTL, links: links, routes: routes}
	for _, spec := range o.forwards {
		prefix, base, _ := parseForward(spec)
		a.forwards = append(a.forwards, &forwarder{
			prefix:  prefix,
			base:    base,
			tls:     upTLS,
			maxBody: o.maxBody,
			log:     log,
		})
	}
	var handler lws.Handler = router{log: log}
	if o.upstream != "" {
		rl := &relay{
			url:     o.upstream,
			opts:    lws.DialOptions{TLS: upTLS, MaxMessageSize: o.maxMessage, PingInterval: o.pingInterval, PingTimeout: o.pingTimout},
			backoff: lws.Backoff{Initial: 200 * time.Millisecond, Max: 2 * time.Second},
			timeout: o.upstreamTimeout,
			maxWait: o.maxMessage,
			routes:  routes,
			log:     log,
		}
		handler = rl.downstream()
	}
	listener := lws.Listener{
		Name:           "main",
		Addr:           o.listen,
		Links:          o.links,
		Handler:        handler,
		HTTPHandler:    a,
		Subprotocols:   []string{"lws-gate"},
		MaxMessageSize: o.maxMessage,
		MaxBodySize:    o.maxBody,
		PingInterval:   o.pingInterval,
		PingTimeout:    o.pingTimout,
	}
	if o.tlsCert != "" {
		listener.TLS = &lws.TLSFiles{CertFile: o.tlsCert, KeyFile: o.tlsKey}
	}
	cfg := &lws.Config{
		Logger:          log,
		ShutdownTimeout: o.shutdown,
		OnLinkOpen:      links.add,
		OnLinkClose: func(l lws.Link, ce lws.CloseError) {
			links.del(l, ce)
			routes.del(l.ID)
		},
		Listeners: []lws.Listener{listener},
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
		"tls", o.tlsCert != "", "upstream", o.upstream, "forwards", len(a.forwards),
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

// noRedirect hands a backend's redirect to the client unchanged.
func noRedirect(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
