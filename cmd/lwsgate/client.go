package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/lwsgate/lwsgate/lws"
)

// The client subcommands make one client link through libwebsockets, like
// the gateway's tcpconnect and httpconnect links, and write the reason log
// of that link to stderr. They are the client side of the parity scenarios
// and a quick way to poke a backend:
//
//	lwsgate dial -send "hello world" ws://127.0.0.1:8090/
//	lwsgate fetch -X POST -d '{"UserName":"keda"}' http://127.0.0.1:8090/v1/api/createtoken

// clientFlags are the flags both subcommands share.
type clientFlags struct {
	trace     bool
	eventLoop string
	logLevel  slog.Level
	ca        string
	insecure  bool
	timeout   time.Duration
}

func (f *clientFlags) register(fs *flag.FlagSet) *string {
	fs.BoolVar(&f.trace, "trace", true, "write one reason-log line per libwebsockets callback (stderr)")
	fs.StringVar(&f.eventLoop, "event-loop", string(lws.DefaultEventLoop), "libwebsockets' event `loop`: libev (epoll) or poll")
	fs.StringVar(&f.ca, "ca", "", "PEM CA `file` to verify a wss/https server (default: the system store)")
	fs.BoolVar(&f.insecure, "insecure", false, "accept any server certificate (tests only)")
	fs.DurationVar(&f.timeout, "timeout", 10*time.Second, "give up after this `long`")
	return fs.String("log-level", "info", "log `level`: debug, info, warn, error")
}

func (f *clientFlags) tls() *lws.ClientTLS {
	if f.ca == "" && !f.insecure {
		return nil
	}
	return &lws.ClientTLS{CAFile: f.ca, InsecureSkipVerify: f.insecure}
}

// parseClient parses a subcommand's flags and its one URL argument.
func parseClient(name string, fs *flag.FlagSet, f *clientFlags, args []string, stderr io.Writer) (string, error) {
	level := f.register(fs)
	fs.SetOutput(io.Discard)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fs.SetOutput(stderr)
			fmt.Fprintf(stderr, "usage: lwsgate %s [flags] URL\n", name)
			fs.PrintDefaults()
		}
		return "", err
	}
	if err := f.logLevel.UnmarshalText([]byte(*level)); err != nil {
		return "", fmt.Errorf("-log-level %q: want debug, info, warn or error", *level)
	}
	if fs.NArg() != 1 {
		return "", fmt.Errorf("%s: want exactly one URL, got %d arguments", name, fs.NArg())
	}
	return fs.Arg(0), nil
}

// clientContext starts a listener-less Context whose reason log and log go
// to stderr.
func clientContext(f *clientFlags, stderr io.Writer) (*lws.Context, *slog.Logger, error) {
	out := &lockedWriter{w: stderr}
	log := slog.New(&lineHandler{w: out, level: f.logLevel})
	cfg := &lws.Config{Logger: log, EventLoop: lws.EventLoop(f.eventLoop)}
	if f.trace {
		cfg.Trace = out
	}
	c, err := lws.New(cfg)
	return c, log, err
}

// runDial is "lwsgate dial": open a WebSocket link, send each -send
// message and wait for one message back per send (printed to stdout), then
// close with -close and wait for the closing handshake.
func runDial(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	var f clientFlags
	var sends multiFlag
	fs := flag.NewFlagSet("lwsgate dial", flag.ContinueOnError)
	fs.Var(&sends, "send", "text `message` to send, then wait for one reply (repeatable; default \"hello world\")")
	code := fs.Int("close", 1000, "close `code` to end with")
	proto := fs.String("subprotocol", "", "subprotocol to offer")
	u, err := parseClient("dial", fs, &f, args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintln(stderr, "lwsgate:", err)
		return 2
	}
	if !lws.StatusCode(*code).Sendable() {
		fmt.Fprintf(stderr, "lwsgate: -close %d: not a close code that may be sent\n", *code)
		return 2
	}
	if len(sends) == 0 {
		sends = multiFlag{"hello world"}
	}
	c, log, err := clientContext(&f, stderr)
	if err != nil {
		fmt.Fprintln(stderr, "lwsgate:", err)
		return 1
	}
	defer c.Close()

	msgs := make(chan string, len(sends))
	closed := make(chan lws.CloseError, 1)
	opts := &lws.DialOptions{
		Context: c,
		TLS:     f.tls(),
		Handler: lws.HandlerFuncs{
			Message: func(_ *lws.Conn, _ lws.MessageType, data []byte) {
				select {
				case msgs <- string(data):
				default:
				}
			},
			Close: func(_ *lws.Conn, ce lws.CloseError) { closed <- ce },
		},
	}
	if *proto != "" {
		opts.Subprotocols = []string{*proto}
	}
	ctx, cancel := context.WithTimeout(ctx, f.timeout)
	defer cancel()
	conn, err := lws.Dial(ctx, u, opts)
	if err != nil {
		log.Error("dial failed", "err", err)
		return 1
	}
	for _, s := range sends {
		if err := conn.SendText(s); err != nil {
			log.Error("send failed", "err", err)
			return 1
		}
		select {
		case m := <-msgs:
			fmt.Fprintln(stdout, m)
		case ce := <-closed:
			log.Error("closed by the server", "code", int(ce.Code), "reason", ce.Reason)
			return 1
		case <-ctx.Done():
			log.Error("no reply", "err", ctx.Err())
			return 1
		}
	}
	_ = conn.Close(lws.StatusCode(*code), "")
	select {
	case <-closed:
	case <-ctx.Done():
		log.Error("close did not complete", "err", ctx.Err())
		return 1
	}
	return 0
}

// runFetch is "lwsgate fetch": one HTTP request; the status line goes to
// stderr and the body to stdout.
func runFetch(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	var f clientFlags
	fs := flag.NewFlagSet("lwsgate fetch", flag.ContinueOnError)
	method := fs.String("X", "", "request `method` (default GET, or POST with -d)")
	data := fs.String("d", "", "request `body`")
	var hdrs multiFlag
	fs.Var(&hdrs, "H", "request `header` \"Name: value\" (repeatable)")
	u, err := parseClient("fetch", fs, &f, args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintln(stderr, "lwsgate:", err)
		return 2
	}
	m := *method
	if m == "" {
		m = http.MethodGet
		if *data != "" {
			m = http.MethodPost
		}
	}
	var body io.Reader
	if *data != "" {
		body = strings.NewReader(*data)
	}
	ctx, cancel := context.WithTimeout(ctx, f.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, m, u, body)
	if err != nil {
		fmt.Fprintln(stderr, "lwsgate: fetch:", err)
		return 2
	}
	for _, h := range hdrs {
		k, v, ok := strings.Cut(h, ":")
		if !ok {
			fmt.Fprintf(stderr, "lwsgate: -H %q: want \"Name: value\"\n", h)
			return 2
		}
		req.Header.Add(strings.TrimSpace(k), strings.TrimSpace(v))
	}
	c, log, err := clientContext(&f, stderr)
	if err != nil {
		fmt.Fprintln(stderr, "lwsgate:", err)
		return 1
	}
	defer c.Close()
	resp, err := (&lws.Transport{Context: c, TLS: f.tls()}).RoundTrip(req)
	if err != nil {
		log.Error("request failed", "err", err)
		return 1
	}
	defer resp.Body.Close()
	log.Info("response", "status", resp.StatusCode)
	if _, err := io.Copy(stdout, resp.Body); err != nil {
		log.Error("reading the body", "err", err)
		return 1
	}
	return 0
}
