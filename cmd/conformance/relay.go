package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/lwsgate/lwsgate/cmd/internal/wsconform"
	"github.com/lwsgate/lwsgate/lws"
	"github.com/lwsgate/lwsgate/lws/gateway"
)

// With -relay the cases run through lwsgate's relay (a gateway listener
// whose links each get their own upstream link, listeners[].upstream):
//
//	server cases: the peer -> the relay -> an lws echo server (the backend)
//	client cases: an lws echo client -> the relay -> the peer (the backend)
//
// so that each side of a relayed pair meets every bad frame, close and
// failure of the suite while the other side is being dialled, open or
// closing. The verdicts are the relay's: what the peer sees of it.

// relayBackend is the name of the relay's one backend.
const relayBackend = "backend"

// relayConfig is a gateway with one WebSocket listener relaying every link
// to backendURL, and nothing else (no admin API, no rules, no hooks).
func relayConfig(backendURL string, opts *wsconform.Options) *gateway.Config {
	return &gateway.Config{
		Log: gateway.LogConfig{Level: "warn"},
		Listeners: []gateway.ListenerConfig{{
			Name:        "relay",
			Addr:        "127.0.0.1:0",
			Links:       []string{gateway.TypeTCPListen},
			Compression: opts.Deflate,
			Upstream:    relayBackend,
			Limits: gateway.LimitsConfig{
				MaxMessage: gateway.Size(opts.MaxMessage),
				// Room for a 4 MiB echo (9.x) both ways.
				MaxSendQueue: gateway.Size(4 * opts.MaxMessage),
			},
		}},
		Admin:  gateway.AdminConfig{Addr: "off"},
		Tokens: gateway.TokenConfig{Secret: "conformance"},
		Backends: []gateway.BackendConfig{{
			Name: relayBackend,
			URL:  backendURL,
			// One dial attempt per link: a retry would land on the
			// next case's listener (client cases). A dial that fails
			// closes the client's link with 1013 when this ends.
			Timeout:   gateway.Duration(relayDialTimeout),
			Reconnect: gateway.BackoffConfig{Initial: gateway.Duration(time.Hour), Max: gateway.Duration(time.Hour)},
		}},
	}
}

// relayDialTimeout bounds the relay's upstream dial: well above a loopback
// handshake, well below Options.Wait.
const relayDialTimeout = 2 * time.Second

// startRelay starts the relay gateway in front of backendURL.
func startRelay(backendURL string, opts *wsconform.Options, logger *slog.Logger) (*gateway.Gateway, *gateway.Config, error) {
	cfg := relayConfig(backendURL, opts)
	g, err := gateway.New(cfg, &gateway.Options{Logger: logger})
	if err != nil {
		return nil, nil, fmt.Errorf("relay: %w", err)
	}
	return g, cfg, nil
}

// runRelayServer runs the server cases against the relay in front of an lws
// echo server.
func runRelayServer(opts *wsconform.Options, logger *slog.Logger) (*wsconform.Report, error) {
	backend, err := startEchoServer(opts, logger)
	if err != nil {
		return nil, err
	}
	defer backend.Close()
	g, _, err := startRelay("ws://"+backend.Addrs()[0].String()+"/", opts, logger)
	if err != nil {
		return nil, err
	}
	defer g.Close()
	return wsconform.RunServer(g.Addrs()["relay"].String(), opts), nil
}

// runRelayClient runs the client cases against the relay's upstream links:
// for each case the relay's backend becomes the case's URL (a reload, as
// SIGHUP would do), and an lws client that echoes opens a link to the
// relay, which dials the peer.
func runRelayClient(opts *wsconform.Options, logger *slog.Logger) (*wsconform.Report, error) {
	cli, err := lws.New(&lws.Config{Logger: logger})
	if err != nil {
		return nil, err
	}
	defer cli.Close()
	g, cfg, err := startRelay("ws://127.0.0.1:1/", opts, logger)
	if err != nil {
		return nil, err
	}
	defer g.Close()
	relayURL := "ws://" + g.Addrs()["relay"].String() + "/"
	dial := func(url string) error {
		cfg.Backends[0].URL = url
		if err := g.Reload(cfg); err != nil {
			return err
		}
		return dialThroughRelay(cli, relayURL, opts)
	}
	return wsconform.RunClient(dial, opts)
}

// errUpstreamUnavailable is the relay's word that its upstream dial failed.
var errUpstreamUnavailable = errors.New("the relay closed the link: upstream unavailable")

// dialThroughRelay opens an echoing client link to the relay and returns
// the outcome of the relay's upstream dial, as the link shows it: nil at
// the first message relayed from upstream or a close that did not come
// from a failed dial (the upstream link was open), errUpstreamUnavailable
// at the relay's 1013 "upstream unavailable".
func dialThroughRelay(cli *lws.Context, relayURL string, opts *wsconform.Options) error {
	outcome := make(chan error, 1)
	report := func(err error) {
		select {
		case outcome <- err:
		default:
		}
	}
	h := lws.HandlerFuncs{
		Message: func(c *lws.Conn, typ lws.MessageType, data []byte) {
			report(nil)
			_ = c.Send(typ, data)
		},
		Close: func(_ *lws.Conn, ce lws.CloseError) {
			// The code is 1013, which a libwebsockets client before
			// 4.2 reports as 1002 (see KnownFailures, 7.7.15): the
			// reason says it.
			if ce.Reason == "upstream unavailable" {
				report(errUpstreamUnavailable)
				return
			}
			report(nil)
		},
	}
	ctx, cancel := context.WithTimeout(context.Background(), opts.Wait)
	defer cancel()
	conn, err := cli.Dial(ctx, relayURL, &lws.DialOptions{
		Handler:          h,
		MaxMessageSize:   opts.MaxMessage,
		MaxSendQueue:     4 * opts.MaxMessage,
		HandshakeTimeout: opts.Wait,
	})
	if err != nil {
		return fmt.Errorf("dialling the relay: %w", err)
	}
	t := time.NewTimer(2 * opts.Wait)
	defer t.Stop()
	select {
	case err := <-outcome:
		return err
	case <-t.C:
		_ = conn.Close(lws.StatusGoingAway, "")
		return errors.New("neither a message nor a close came through the relay")
	}
}
