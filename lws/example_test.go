package lws_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net/http"
	"strconv"
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
	resp, body := serveOne(api, "/v1/whoami?user=alice")
	fmt.Println(resp.StatusCode, string(body))
	// Output: 200 GET /v1/whoami alice
}

// An answer made where it is sent: the body is appended to the buffer the
// response goes out from, instead of being built elsewhere and copied.
func ExampleResponseWriter_RespondAppend() {
	api := lws.HTTPHandlerFunc(func(w *lws.ResponseWriter, r *lws.Request) {
		w.SetHeader("Content-Type", "application/json")
		user := r.Query().Get("user")
		_ = w.RespondAppend(http.StatusOK, 16+len(user), func(b []byte) []byte {
			b = append(b, `{"user":`...)
			b = strconv.AppendQuote(b, user)
			return append(b, '}')
		})
	})
	resp, body := serveOne(api, "/v1/whoami?user=alice")
	fmt.Println(resp.StatusCode, resp.Header.Get("Content-Type"), string(body))
	// Output: 200 application/json {"user":"alice"}
}

// serveOne serves api on a listener of its own for one GET of path, and
// returns the answer and its body.
func serveOne(api lws.HTTPHandler, path string) (*http.Response, []byte) {
	ctx, err := lws.New(&lws.Config{Logger: quiet, Listeners: []lws.Listener{{Addr: "127.0.0.1:0", HTTPHandler: api}}})
	if err != nil {
		log.Fatal(err)
	}
	defer ctx.Close()

	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	cl := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	resp, err := cl.Get("http://" + ctx.Addrs()[0].String() + path)
	if err != nil {
		log.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, body
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

// A libwebsockets client link to a libwebsockets server, both on one
// Context: the client's Handler sees the echo and then the server's close.
func ExampleContext_Dial() {
	c, err := lws.New(&lws.Config{
		Logger: quiet,
		Listeners: []lws.Listener{{
			Addr: "127.0.0.1:0",
			Handler: lws.HandlerFuncs{Message: func(c *lws.Conn, typ lws.MessageType, data []byte) {
				_ = c.Send(typ, data)
				_ = c.Close(lws.StatusNormalClosure, "one is enough")
			}},
		}},
	})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()

	done := make(chan struct{})
	conn, err := c.Dial(context.Background(), "ws://"+c.Addrs()[0].String()+"/chat", &lws.DialOptions{
		Handler: lws.HandlerFuncs{
			Message: func(_ *lws.Conn, _ lws.MessageType, data []byte) { fmt.Printf("got %s\n", data) },
			Close: func(_ *lws.Conn, ce lws.CloseError) {
				fmt.Printf("closed: %d %s\n", ce.Code, ce.Reason)
				close(done)
			},
		},
	})
	if err != nil {
		log.Fatal(err)
	}
	_ = conn.SendText("hello world")
	<-done
	// Output:
	// got hello world
	// closed: 1000 one is enough
}

// A failed dial says which step failed.
func ExampleDialError() {
	c, err := lws.New(&lws.Config{Logger: quiet})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	_, err = c.Dial(context.Background(), "ws://no-such-host.invalid/", nil)
	var de *lws.DialError
	if errors.As(err, &de) {
		fmt.Println(de.Kind)
	}
	// Output: dns
}

// net/http's Client over libwebsockets client connections.
func ExampleTransport() {
	c, err := lws.New(&lws.Config{
		Logger: quiet,
		Listeners: []lws.Listener{{
			Addr: "127.0.0.1:0",
			HTTPHandler: lws.HTTPHandlerFunc(func(w *lws.ResponseWriter, r *lws.Request) {
				_ = w.Respond(http.StatusOK, []byte("hello "+r.Method))
			}),
		}},
	})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()

	client := &http.Client{Transport: &lws.Transport{Context: c}}
	resp, err := client.Get("http://" + c.Addrs()[0].String() + "/")
	if err != nil {
		log.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	fmt.Println(resp.StatusCode, string(body))
	// Output: 200 hello GET
}
