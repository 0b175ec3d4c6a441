package gateway_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/lwsgate/lwsgate/lws"
	"github.com/lwsgate/lwsgate/lws/gateway"
)

// A program embedding the gateway puts its own routing step before the
// configured rules: here a message "upper TEXT" comes back upper-cased,
// and any other goes on to the default rules, which end in echo.
func ExampleNew() {
	cfg := gateway.DefaultConfig()
	cfg.Listeners[0].Addr = "127.0.0.1:0" // a port the kernel picks
	cfg.Admin.Addr = "off"
	upper := gateway.RouterFunc(func(g *gateway.Gateway, m *gateway.Message) bool {
		text, ok := bytes.CutPrefix(m.Data, []byte("upper "))
		if !ok {
			return false // on to the rules
		}
		_ = g.Send(m.Link.ID, lws.TextMessage, bytes.ToUpper(text))
		return true
	})
	g, err := gateway.New(cfg, &gateway.Options{Router: upper, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer g.Close()

	// A client link through libwebsockets, on the gateway's own context.
	got := make(chan string, 1)
	c, err := lws.Dial(context.Background(), "ws://"+g.Addrs()["main"].String()+"/", &lws.DialOptions{
		Context: g.Context(),
		Handler: lws.HandlerFuncs{Message: func(_ *lws.Conn, _ lws.MessageType, data []byte) { got <- string(data) }},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer c.Close(lws.StatusNormalClosure, "")
	for _, msg := range []string{"upper hello", "hello"} {
		_ = c.Send(lws.TextMessage, []byte(msg))
		select {
		case reply := <-got:
			fmt.Println(reply)
		case <-time.After(10 * time.Second):
			fmt.Println("no reply")
		}
	}
	// Output:
	// HELLO
	// hello
}

// A file says what differs from the default configuration; what it leaves
// out is DefaultConfig's. This listener keeps the default listener's
// subprotocol, its send queue follows its smaller max_message, and the
// default rules (echo last) apply.
func ExampleParseConfig() {
	cfg, err := gateway.ParseConfig("gate.yaml", []byte(`
listeners:
  - addr: "127.0.0.1:9000"
    limits: {max_message: 1MiB}
`))
	if err != nil {
		fmt.Println(err)
		return
	}
	l := cfg.Listeners[0]
	fmt.Println(l.Name, l.Limits.MaxMessage, l.Limits.MaxSendQueue, l.Subprotocols)
	fmt.Println(*cfg.Log.Trace, len(cfg.Rules), cfg.Rules[len(cfg.Rules)-1].Action)

	_, err = gateway.ParseConfig("gate.yaml", []byte("listeners:\n  - addr: nohost\n"))
	fmt.Println(err)
	// Output:
	// main 1048576 4194304 [lws-gate]
	// true 6 echo
	// gate.yaml:2: listeners[0].addr: "nohost": address nohost: missing port in address
}

func ExampleParseLinkTypes() {
	links, err := gateway.ParseLinkTypes("ws,httplisten")
	fmt.Println(links, err)
	_, err = gateway.ParseLinkTypes("udp")
	fmt.Println(err)
	// Output:
	// [tcplisten httplisten] <nil>
	// unknown link type "udp" (want tcplisten, httplisten)
}
