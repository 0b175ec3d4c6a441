package lws_test

import (
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net/http"
	"time"

	"github.com/gorilla/websocket"

	"github.com/lwsgate/lwsgate/lws"
)

// quiet discards the binding's log so that examples print only their output.
var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// An echo server on a kernel-chosen port, and a client that talks to it.
func ExampleNew() {
	ctx, err := lws.New(&lws.Config{
		Logger: quiet,
		Listeners: []lws.Listener{{
			Name:    "gate",
			Addr:    "127.0.0.1:0",
			Handler: lws.EchoHandler{},
		}},
	})
	if err != nil {
		log.Fatal(err)
	}
	defer ctx.Close()

	d := websocket.Dialer{HandshakeTimeout: 5 * time.Second}
	ws, _, err := d.Dial("ws://"+ctx.Addrs()[0].String()+"/", nil)
	if err != nil {
		log.Fatal(err)
	}
	defer ws.Close()
	_ = ws.SetReadDeadline(time.Now().Add(10 * time.Second))

	if err := ws.WriteMessage(websocket.TextMessage, []byte("hello world")); err != nil {
		log.Fatal(err)
	}
	_, msg, err := ws.ReadMessage()
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%s\n", msg)
	// Output: hello world
}

// A Handler built from functions: it answers each message with its length
// and closes the link when asked to.
func ExampleHandlerFuncs() {
	h := lws.HandlerFuncs{
		Message: func(c *lws.Conn, typ lws.MessageType, data []byte) {
			if string(data) == "bye" {
				_ = c.Close(4000, "as you wish")
				return
			}
			_ = c.SendText(fmt.Sprintf("%s: %d bytes", typ, len(data)))
		},
	}
	ctx, err := lws.New(&lws.Config{Logger: quiet, Listeners: []lws.Listener{{Addr: "127.0.0.1:0", Handler: h}}})
	if err != nil {
		log.Fatal(err)
	}
	defer ctx.Close()

	d := websocket.Dialer{HandshakeTimeout: 5 * time.Second}
	ws, _, err := d.Dial("ws://"+ctx.Addrs()[0].String()+"/", nil)
	if err != nil {
		log.Fatal(err)
	}
	defer ws.Close()
	_ = ws.SetReadDeadline(time.Now().Add(10 * time.Second))

	_ = ws.WriteMessage(websocket.BinaryMessage, make([]byte, 42))
	_, msg, _ := ws.ReadMessage()
	fmt.Println(string(msg))
	_ = ws.WriteMessage(websocket.TextMessage, []byte("bye"))
	_, _, err = ws.ReadMessage()
	var ce *websocket.CloseError
	if errors.As(err, &ce) {
		fmt.Println(ce.Code, ce.Text)
	}
	// Output:
	// binary: 42 bytes
	// 4000 as you wish
}

// An HTTP endpoint next to the WebSocket links of the same listener.
func ExampleHTTPHandlerFunc() {
	api := lws.HTTPHandlerFunc(func(w *lws.ResponseWriter, r *lws.Request) {
		w.Header().Set("Content-Type", "text/plain")
		_ = w.Respond(http.StatusOK, []byte(r.Method+" "+r.Path+" "+r.Query().Get("user")))
	})
	ctx, err := lws.New(&lws.Config{Logger: quiet, Listeners: []lws.Listener{{Addr: "127.0.0.1:0", HTTPHandler: api}}})
	if err != nil {
		log.Fatal(err)
	}
	defer ctx.Close()

	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	cl := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	resp, err := cl.Get("http://" + ctx.Addrs()[0].String() + "/v1/whoami?user=alice")
	if err != nil {
		log.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	fmt.Println(resp.StatusCode, string(body))
	// Output: 200 GET /v1/whoami alice
}

func ExampleCloseStatus() {
	// Send on a closed link returns an error wrapping ErrClosed and the
	// link's *CloseError.
	err := fmt.Errorf("%w: %w", lws.ErrClosed, &lws.CloseError{Code: lws.StatusGoingAway, Reason: "server shutting down"})
	fmt.Println(errors.Is(err, lws.ErrClosed))
	fmt.Println(lws.CloseStatus(err))
	fmt.Println(lws.CloseStatus(errors.New("not a close")))
	fmt.Println(lws.StatusCode(4001))
	// Output:
	// true
	// 1001 GoingAway
	// -1
	// 4001
}

func ExampleParseLinkTypes() {
	t, err := lws.ParseLinkTypes("tcplisten,httplisten")
	fmt.Println(t, err)
	_, err = lws.ParseLinkTypes("udp")
	fmt.Println(err)
	// Output:
	// tcplisten,httplisten <nil>
	// unknown link type "udp" (want tcplisten, httplisten)
}
