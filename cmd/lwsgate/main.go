// Command lwsgate is a WebSocket and HTTP gateway on libwebsockets.
//
// With no arguments it listens on :8090 for both link types of the system
// it descends from: tcplisten (long links: WebSocket, echoed) and httplisten
// (short links: HTTP, e.g. POST /v1/api/createtoken), keeps a table of live
// links and writes one reason-log line per libwebsockets callback:
//
//	[2026-11-24 10:05:47.123][DEBUG] cb ctx:1 wsi:7 reason:6 LWS_CALLBACK_RECEIVE
//
// The admin API, metrics and health are on 127.0.0.1:8091. A YAML file
// (-config; "lwsgate defaultconfig" prints the default, "lwsgate
// checkconfig FILE" checks one) configures listeners, backends, routing
// rules, hooks and limits; LWSGATE_* variables and flags override it, and
// SIGHUP reloads it without dropping links. The gateway itself is package
// lws/gateway.
//
// Run lwsgate -h for the flags. Two subcommands make one client link
// through libwebsockets and print its reason log: "lwsgate dial URL"
// (WebSocket) and "lwsgate fetch URL" (HTTP); see client.go. The admin
// commands (lwsgate links, link, trace, send, close, publish, channels,
// nodes...) drive a running gateway's admin API; see admin.go, and
// "lwsgate help" for all of them and their exit codes.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/lwsgate/lwsgate/lws"
	"github.com/lwsgate/lwsgate/lws/gateway"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr, nil))
}

// flagSet holds the flags; each one set on the command line overrides the
// config file and the environment.
type flagSet struct {
	fs         *flag.FlagSet
	config     string
	version    bool
	listen     string
	admin      string
	links      string
	logLevel   string
	logFormat  string
	trace      bool
	eventLoop  string
	maxMessage int64
	maxBody    int64
	tokenTTL   time.Duration
	shutdown   time.Duration
	workers    int

	tlsCert, tlsKey           string
	pingInterval, pingTimeout time.Duration

	upstream         string
	upstreamCA       string
	upstreamInsecure bool
	upstreamTimeout  time.Duration
	forwards         multiFlag
}

// multiFlag collects a repeatable flag.
type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(s string) error { *m = append(*m, s); return nil }

// newFlagSet declares the flags, each defaulting to the default
// configuration's value (gateway.DefaultConfig), which is what the first
// listener has when neither a file nor a flag says otherwise.
func newFlagSet() *flagSet {
	f := &flagSet{fs: flag.NewFlagSet("lwsgate", flag.ContinueOnError)}
	fs := f.fs
	d := gateway.DefaultConfig()
	l := d.Listeners[0]
	fs.SetOutput(io.Discard) // errors are reported in one line by run
	fs.StringVar(&f.config, "config", "", "YAML config `file` (see lwsgate defaultconfig); flags override it")
	fs.BoolVar(&f.version, "version", false, "print the version and how libwebsockets is linked, then exit")
	fs.StringVar(&f.listen, "listen", l.Addr, "`address` of the first listener (host:port; port 0 picks one)")
	fs.StringVar(&f.admin, "admin", d.Admin.Addr, "`address` of the admin API, metrics and health; off to disable")
	fs.StringVar(&f.links, "links", strings.Join(l.Links, ","), "link `types` the first listener accepts: tcplisten (WebSocket), httplisten (HTTP), or both")
	fs.StringVar(&f.logLevel, "log-level", d.Log.Level, "log `level`: debug, info, warn, error")
	fs.StringVar(&f.logFormat, "log-format", d.Log.Format, "log `format`: text or json")
	fs.BoolVar(&f.trace, "trace", *d.Log.Trace, "write one reason-log line per libwebsockets callback")
	fs.StringVar(&f.eventLoop, "event-loop", d.EventLoop, "libwebsockets' event `loop`: libev (epoll) or poll (event_loop)")
	fs.Int64Var(&f.maxMessage, "max-message", int64(l.Limits.MaxMessage), "largest WebSocket message in `bytes` (over it: close 1009)")
	fs.Int64Var(&f.maxBody, "max-body", int64(l.Limits.MaxBody), "largest HTTP request body in `bytes` (over it: 413)")
	fs.DurationVar(&f.tokenTTL, "token-ttl", d.Tokens.TTL.D(), "lifetime of tokens from /v1/api/createtoken")
	fs.IntVar(&f.workers, "workers", d.Workers, "service `threads` sharing the listeners (workers); 0: one per CPU the process may use, 1: one thread")
	fs.DurationVar(&f.shutdown, "shutdown-timeout", d.Shutdown.Drain.D(), "on SIGTERM, close links over this `window` (shutdown.drain)")
	fs.StringVar(&f.tlsCert, "tls-cert", "", "PEM certificate (chain) `file`: serve wss and https")
	fs.StringVar(&f.tlsKey, "tls-key", "", "PEM private key `file` for -tls-cert")
	fs.DurationVar(&f.pingInterval, "ping-interval", l.Keepalive.PingInterval.D(), fmt.Sprintf("ping a WebSocket link silent this `long` (whole seconds; 0: %v)", lws.DefaultPingInterval))
	fs.DurationVar(&f.pingTimeout, "ping-timeout", l.Keepalive.PingTimeout.D(), fmt.Sprintf("drop a WebSocket link silent this `long` (0: ping-interval + %v)", lws.DefaultPingGrace))
	fs.StringVar(&f.upstream, "upstream", "", "relay each WebSocket link to its own link to this ws:// or wss:// `URL` (tcpconnect)")
	fs.StringVar(&f.upstreamCA, "upstream-ca", "", "PEM CA `file` to verify wss/https backends (default: the system store)")
	fs.BoolVar(&f.upstreamInsecure, "upstream-insecure", false, "accept any backend certificate (tests only)")
	fs.DurationVar(&f.upstreamTimeout, "upstream-timeout", gateway.DefaultBackendTimeout, "give up dialling a backend after this `long`, retries included")
	fs.Var(&f.forwards, "forward", "forward HTTP requests under a path prefix to a backend: `PREFIX=URL`, e.g. /v1/backend/=http://127.0.0.1:9000 (httpconnect; repeatable)")
	return f
}

// usage opens lwsgate -h and lwsgate help.
const usage = `usage: lwsgate [flags]                 run the gateway
       lwsgate checkconfig FILE        check a config file
       lwsgate defaultconfig           print the default config
       lwsgate dial URL | fetch URL    one client link through libwebsockets
       lwsgate COMMAND [ARGS]          an admin command (lwsgate help)

Flags of the gateway:
`

func (f *flagSet) printDefaults(w io.Writer) {
	f.fs.SetOutput(w)
	f.fs.PrintDefaults()
	f.fs.SetOutput(io.Discard)
}

// loadConfig builds the configuration: the file (or the built-in
// default), then LWSGATE_* variables, then the flags that were set.
func (f *flagSet) loadConfig(getenv func(string) string) (*gateway.Config, error) {
	var cfg *gateway.Config
	var err error
	if f.config != "" {
		cfg, err = gateway.LoadConfig(f.config)
	} else {
		cfg = gateway.DefaultConfig()
	}
	if err != nil {
		return nil, err
	}
	if err := cfg.ApplyEnv(getenv); err != nil {
		return nil, err
	}
	if err := f.apply(cfg); err != nil {
		return nil, err
	}
	if err := f.applyBackends(cfg); err != nil {
		return nil, err
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return cfg, nil
}

// apply sets what the flags given say of the first listener, the log, the
// tokens and shutdown.
func (f *flagSet) apply(cfg *gateway.Config) error {
	set := map[string]bool{}
	f.fs.Visit(func(fl *flag.Flag) { set[fl.Name] = true })
	l := &cfg.Listeners[0]
	if set["listen"] {
		if err := lws.CheckAddr(f.listen); err != nil {
			return fmt.Errorf("-listen %q: %v", f.listen, err)
		}
		l.Addr = f.listen
	}
	if set["admin"] {
		cfg.Admin.Addr = f.admin
	}
	if set["links"] {
		links, err := gateway.ParseLinkTypes(f.links)
		if err != nil {
			return fmt.Errorf("-links: %v", err)
		}
		l.Links = links
	}
	if set["log-level"] {
		cfg.Log.Level = f.logLevel
	}
	if set["log-format"] {
		cfg.Log.Format = f.logFormat
	}
	if set["trace"] {
		cfg.Log.Trace = new(f.trace)
	}
	if set["event-loop"] {
		cfg.EventLoop = f.eventLoop
	}
	if set["max-message"] {
		if f.maxMessage <= 0 {
			return fmt.Errorf("-max-message %d: must be positive", f.maxMessage)
		}
		l.Limits.MaxMessage = gateway.Size(f.maxMessage)
		// A queue that holds two of the largest messages at least, as
		// lws's default does.
		l.Limits.MaxSendQueue = max(l.Limits.MaxSendQueue, gateway.Size(lws.DefaultMaxSendQueue(f.maxMessage)))
	}
	if set["max-body"] {
		if f.maxBody <= 0 {
			return fmt.Errorf("-max-body %d: must be positive", f.maxBody)
		}
		l.Limits.MaxBody = gateway.Size(f.maxBody)
	}
	if set["token-ttl"] {
		if f.tokenTTL <= 0 {
			return fmt.Errorf("-token-ttl %v: must be positive", f.tokenTTL)
		}
		cfg.Tokens.TTL = gateway.Duration(f.tokenTTL)
	}
	if set["workers"] {
		if f.workers < 0 {
			return fmt.Errorf("-workers %d: must not be negative", f.workers)
		}
		cfg.Workers = f.workers
	}
	if set["shutdown-timeout"] {
		cfg.Shutdown.Drain = gateway.Duration(f.shutdown)
		cfg.Shutdown.Deadline = 0 // its default: drain + 5s
	}
	if (f.tlsCert == "") != (f.tlsKey == "") {
		return errors.New("-tls-cert and -tls-key go together")
	}
	if f.tlsCert != "" {
		l.TLS = &gateway.TLSConfig{Cert: f.tlsCert, Key: f.tlsKey}
	}
	if set["ping-interval"] {
		l.Keepalive.PingInterval = gateway.Duration(f.pingInterval)
	}
	if set["ping-timeout"] {
		l.Keepalive.PingTimeout = gateway.Duration(f.pingTimeout)
	}
	return nil
}

// applyBackends adds the backends -upstream and -forward name, for the
// first listener.
func (f *flagSet) applyBackends(cfg *gateway.Config) error {
	l := &cfg.Listeners[0]
	backend := func(name, raw string) gateway.BackendConfig {
		return gateway.BackendConfig{Name: name, URL: raw, Timeout: gateway.Duration(f.upstreamTimeout),
			CA: f.upstreamCA, Insecure: f.upstreamInsecure}
	}
	if f.upstream != "" {
		u, err := url.Parse(f.upstream)
		if err != nil || (u.Scheme != "ws" && u.Scheme != "wss") || u.Host == "" {
			return fmt.Errorf("-upstream %q: want a ws:// or wss:// URL", f.upstream)
		}
		cfg.Backends = append(cfg.Backends, backend("upstream", f.upstream))
		l.Upstream = "upstream"
	}
	if f.upstreamTimeout <= 0 {
		return fmt.Errorf("-upstream-timeout %v: must be positive", f.upstreamTimeout)
	}
	for i, spec := range f.forwards {
		prefix, raw, ok := strings.Cut(spec, "=")
		if !ok || !strings.HasPrefix(prefix, "/") {
			return fmt.Errorf("-forward %q: want PREFIX=URL with PREFIX starting with /", spec)
		}
		u, err := url.Parse(raw)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("-forward %q: backend %q is not an http:// or https:// URL", spec, raw)
		}
		name := fmt.Sprintf("forward%d", i+1)
		cfg.Backends = append(cfg.Backends, backend(name, raw))
		l.Forward = append(l.Forward, gateway.ForwardConfig{Prefix: prefix, Backend: name})
	}
	return nil
}

// run is main without the process: it returns the exit code (2 for bad
// usage or config, 1 for a failure) and calls ready, if set, once
// listening, with the listeners' addresses (the admin listener last).
func run(ctx context.Context, args []string, stdout, stderr io.Writer, ready func([]net.Addr)) int {
	if len(args) > 0 {
		switch args[0] {
		case "dial":
			return runDial(ctx, args[1:], stdout, stderr)
		case "fetch":
			return runFetch(ctx, args[1:], stdout, stderr)
		case "checkconfig":
			return runCheckConfig(args[1:], stdout, stderr)
		case "defaultconfig":
			fmt.Fprint(stdout, gateway.DefaultYAML)
			return 0
		case "help":
			fmt.Fprint(stdout, usage)
			newFlagSet().printDefaults(stdout)
			fmt.Fprint(stdout, "\n"+adminCommandsHelp()+"\n"+exitCodesHelp)
			return 0
		}
		if c := findAdminCommand(args[0]); c != nil {
			return runAdmin(ctx, c, args[1:], os.Stdin, stdout, stderr, os.Getenv)
		}
	}
	f := newFlagSet()
	err := f.fs.Parse(args)
	if errors.Is(err, flag.ErrHelp) {
		fmt.Fprint(stderr, usage)
		f.printDefaults(stderr)
		fmt.Fprintln(stderr, "\nlwsgate help lists the admin commands and exit codes too.")
		return 0
	}
	if err == nil && f.fs.NArg() > 0 {
		err = fmt.Errorf("unexpected argument %q", f.fs.Arg(0))
	}
	if err != nil {
		fmt.Fprintln(stderr, "lwsgate:", err)
		return 2
	}
	if f.version {
		fmt.Fprintf(stdout, "lwsgate %s\nlibwebsockets %s\nlinked: %s\n", version, lws.Version(), lws.LinkInfo)
		return 0
	}
	cfg, err := f.loadConfig(os.Getenv)
	if err != nil {
		fmt.Fprintln(stderr, "lwsgate:", err)
		return 2
	}
	out := &lockedWriter{w: stderr}
	level := &slog.LevelVar{}
	_ = level.UnmarshalText([]byte(cfg.Log.Level))
	var h slog.Handler = &lineHandler{w: out, level: level}
	if cfg.Log.Format == "json" {
		h = slog.NewJSONHandler(out, &slog.HandlerOptions{Level: level})
	}
	log := slog.New(h)

	gw, err := gateway.New(cfg, &gateway.Options{Logger: log, Level: level, Trace: out, Version: version})
	if err != nil {
		fmt.Fprintln(stderr, "lwsgate:", strings.TrimPrefix(strings.TrimPrefix(err.Error(), "gateway: "), "lws: "))
		return 1
	}
	var addrs []net.Addr
	all := gw.Addrs()
	for _, l := range cfg.Listeners {
		addrs = append(addrs, all[l.Name])
	}
	if a, ok := all[gateway.AdminListener]; ok {
		addrs = append(addrs, a)
	}
	// The addresses bound, not the configured ones: with port 0 the
	// kernel picks them, and this is where an operator (or a test
	// running the binary) learns which.
	admin := cfg.Admin.Addr
	if a, ok := all[gateway.AdminListener]; ok {
		admin = a.String()
	}
	log.Info("lwsgate listening", "addr", addrs[0].String(), "links", strings.Join(cfg.Listeners[0].Links, ","),
		"admin", admin, "tls", cfg.Listeners[0].TLS != nil, "rules", len(cfg.Rules), "backends", len(cfg.Backends),
		"libwebsockets", lws.Version(), "version", version)
	for i, l := range cfg.Listeners[1:] {
		log.Info("listening", "listener", l.Name, "addr", addrs[i+1].String(), "links", strings.Join(l.Links, ","),
			"tls", l.TLS != nil, "compression", l.Compression)
	}
	if ready != nil {
		ready(addrs)
	}
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	for {
		select {
		case <-hup:
			reload(gw, f, log)
			continue
		case <-ctx.Done():
			log.Info("shutting down", "links", len(gw.Links()), "drain", gw.Config().Shutdown.Drain.D())
		case <-gw.Done():
			log.Error("service loop stopped")
		}
		break
	}
	if err := gw.Close(); err != nil {
		log.Error("shutdown", "err", err)
		return 1
	}
	return 0
}

// reload re-reads the config (SIGHUP) and applies what can change without
// dropping links; on an error the running config stays.
func reload(gw *gateway.Gateway, f *flagSet, log *slog.Logger) {
	cfg, err := f.loadConfig(os.Getenv)
	if err == nil {
		err = gw.Reload(cfg)
	}
	if err != nil {
		log.Error("reload failed; the running config stays", "err", err)
	}
}

// runCheckConfig implements "lwsgate checkconfig FILE".
func runCheckConfig(args []string, stdout, stderr io.Writer) int {
	if len(args) != 1 {
		fmt.Fprintln(stderr, "usage: lwsgate checkconfig FILE")
		return 2
	}
	cfg, err := gateway.LoadConfig(args[0])
	if err == nil {
		err = cfg.ApplyEnv(os.Getenv)
	}
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	fmt.Fprintf(stdout, "%s: ok (%d listeners, %d backends, %d rules)\n", args[0], len(cfg.Listeners), len(cfg.Backends), len(cfg.Rules))
	return 0
}
