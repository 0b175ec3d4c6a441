// Command conformance runs the WebSocket conformance suite of
// cmd/internal/wsconform (Autobahn TestSuite's case families, written from
// RFC 6455) and prints an Autobahn-style report.
//
// With no flags it starts an lws echo server and an lws echo client in the
// process and runs every case against both:
//
//	go run ./cmd/conformance            # server and client, in process
//	go run ./cmd/conformance -v         # every case, not only those not OK
//	go run ./cmd/conformance -cases 6.4,7.9
//	go run ./cmd/conformance -server 127.0.0.1:8090 -max-message 8388608
//	go run ./cmd/conformance -compression -cases 12,13
//	go run ./cmd/conformance -relay     # through lwsgate's relay
//
// -compression turns permessage-deflate on (Listener.Compression and
// DialOptions.Compression in process; for -server, it says the server has
// it on), and the 12.x/13.x cases then check that it is agreed and used
// rather than declined (wsconform.Options.Deflate).
//
// -relay runs the in-process cases through lwsgate's relay (package
// lws/gateway, listeners[].upstream): the server cases against a relay in
// front of an lws echo server, the client cases against the relay's
// upstream links, with an lws echo client on the relay's other side (see
// relay.go).
//
// -server runs the server cases against a running echo server instead, such
// as lwsgate (whose -max-message must allow the 4 MiB messages of 9.x).
//
// After each closing handshake the peer waits -close-wait (1s) for the
// implementation to close TCP; one it had to close itself is FAILED BY
// CLIENT (the implementation as the server) or FAILED BY SERVER, and fails
// the run.
//
// -messages sets how many messages each of Autobahn's 12.x/13.x cases sends
// (default wsconform.DefaultMessages; Autobahn's suite sends 1000).
//
// Exit status: 0 when no case failed unexpectedly, no known failure passes
// and no TCP connection was left open, 1 otherwise, 2 on trouble (usage, a server that would not start).
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/lwsgate/lwsgate/cmd/internal/wsconform"
	"github.com/lwsgate/lwsgate/lws"
)

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }

// inProcessMaxMessage is the message size limit of the in-process server
// and client: above the 4 MiB of the largest 9.x message, and what 9.10.x
// test.
const inProcessMaxMessage = 5 << 20

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("conformance", flag.ContinueOnError)
	fs.SetOutput(stderr)
	server := fs.String("server", "", "run the server cases against the echo server at `host:port` instead of an in-process one")
	target := fs.String("target", "both", "which side of the binding to test in process: server, client or both")
	cases := fs.String("cases", "", "comma-separated case IDs or ID prefixes (\"6.4\" selects 6.4.x); empty: all")
	maxMessage := fs.Int64("max-message", 0, "the server's message size limit, for the 9.10.x cases (0: skip them; in process: 5 MiB)")
	wait := fs.Duration("wait", 10*time.Second, "bound on each wait for the implementation")
	closeWait := fs.Duration("close-wait", time.Second, "how long the peer waits after the closing handshake for the implementation to close TCP before it does (FAILED BY CLIENT)")
	verbose := fs.Bool("v", false, "list every case, not only those not OK")
	libVersion := fs.String("lib-version", "", "the -server's libwebsockets version, e.g. 4.3.5, for the known failures fixed upstream (default: unknown, all apply)")
	showLog := fs.Bool("log", false, "show the binding's and libwebsockets' log (warnings and errors) on stderr")
	compression := fs.Bool("compression", false, "permessage-deflate on: Listener.Compression and DialOptions.Compression in process (for -server: the server has it on)")
	messages := fs.Int("messages", wsconform.DefaultMessages, "messages each of Autobahn's 12.x and 13.x cases sends (Autobahn: 1000)")
	relay := fs.Bool("relay", false, "run the in-process cases through lwsgate's relay: peer -> relay -> lws echo server, lws echo client -> relay -> peer")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() != 0 {
		fmt.Fprintln(stderr, "conformance: unexpected arguments:", fs.Args())
		return 2
	}
	opts := &wsconform.Options{Wait: *wait, CloseWait: *closeWait, MaxMessage: *maxMessage, LibVersion: *libVersion, Deflate: *compression, Messages: *messages}
	if *cases != "" {
		for _, c := range strings.Split(*cases, ",") {
			opts.Cases = append(opts.Cases, strings.TrimSpace(c))
		}
	}
	logger := slog.New(slog.DiscardHandler)
	if *showLog {
		logger = slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	version := "libwebsockets " + lws.Version()
	with := ""
	if *compression {
		with = " with permessage-deflate"
	}

	var reports []*wsconform.Report
	var titles []string
	if *relay && (*server != "" || *compression && *target != "server") {
		fmt.Fprintln(stderr, "conformance: -relay runs in process, and its upstream links offer no compression: not with -server, nor -compression for the client cases")
		return 2
	}
	if *server != "" {
		reports = append(reports, wsconform.RunServer(*server, opts))
		titles = append(titles, "server at "+*server+with)
	} else {
		doServer, doClient := *target == "both" || *target == "server", *target == "both" || *target == "client"
		if !doServer && !doClient {
			fmt.Fprintf(stderr, "conformance: -target %q: want server, client or both\n", *target)
			return 2
		}
		if opts.MaxMessage == 0 {
			opts.MaxMessage = inProcessMaxMessage
		}
		opts.LibVersion = lws.Version()
		runServer, runClient := runInProcessServer, runInProcessClient
		serverTitle := "lws server (in process, lws.EchoHandler" + with + "), " + version
		clientTitle := "lws client (in process, lws.Dial with lws.EchoHandler" + with + "), " + version
		if *relay {
			runServer, runClient = runRelayServer, runRelayClient
			serverTitle = "lwsgate relay (in process" + with + ") in front of an lws echo server, " + version
			clientTitle = "lwsgate relay's upstream links (in process), an lws echo client behind, " + version
		}
		if doServer {
			rep, err := runServer(opts, logger)
			if err != nil {
				fmt.Fprintln(stderr, "conformance:", err)
				return 2
			}
			reports = append(reports, rep)
			titles = append(titles, serverTitle)
		}
		if doClient {
			rep, err := runClient(opts, logger)
			if err != nil {
				fmt.Fprintln(stderr, "conformance:", err)
				return 2
			}
			reports = append(reports, rep)
			titles = append(titles, clientTitle)
		}
	}
	status := 0
	for i, rep := range reports {
		rep.WriteTable(stdout, titles[i], *verbose)
		if len(rep.Problems()) > 0 {
			status = 1
		}
	}
	return status
}

// runInProcessServer runs the server cases against an lws echo server.
func runInProcessServer(opts *wsconform.Options, logger *slog.Logger) (*wsconform.Report, error) {
	c, err := startEchoServer(opts, logger)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	return wsconform.RunServer(c.Addrs()[0].String(), opts), nil
}

// startEchoServer starts an lws echo server with the options' message
// limit and compression.
func startEchoServer(opts *wsconform.Options, logger *slog.Logger) (*lws.Context, error) {
	return lws.New(&lws.Config{
		Logger: logger,
		Listeners: []lws.Listener{{
			Addr:           "127.0.0.1:0",
			Accept:         lws.AcceptWebSocket,
			Handler:        lws.EchoHandler{},
			MaxMessageSize: opts.MaxMessage,
			Compression:    opts.Deflate,
		}},
	})
}

// runInProcessClient runs the client cases against lws client links that
// echo.
func runInProcessClient(opts *wsconform.Options, logger *slog.Logger) (*wsconform.Report, error) {
	c, err := lws.New(&lws.Config{Logger: logger})
	if err != nil {
		return nil, err
	}
	defer c.Close()
	dial := func(url string) error {
		_, err := c.Dial(context.Background(), url, &lws.DialOptions{
			Handler:          lws.EchoHandler{},
			MaxMessageSize:   opts.MaxMessage,
			HandshakeTimeout: opts.Wait,
			Compression:      opts.Deflate,
		})
		return err
	}
	return wsconform.RunClient(dial, opts)
}
