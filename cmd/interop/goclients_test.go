package interop

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"os"
	"sync/atomic"
	"time"

	coder "github.com/coder/websocket"
	"github.com/gorilla/websocket"
)

// goConn is what the two Go clients have in common for the steps: serve
// drives either through it.
type goConn interface {
	read(ctx context.Context) received // the next message, or the end of the link
	write(ctx context.Context, binary bool, data []byte, splits []int) error
	ping(ctx context.Context, data string) (sent, got string, err error)
	close(code int, reason string) error
	pings() int // pings received from the server so far
	// closeOf is the close frame read's error carries (1006 and nil
	// when there was none).
	closeOf(err error) (code int, reason *string)
}

// received is what a Go client's reader goroutine read: a message or
// the end of the link.
type received struct {
	binary bool
	data   []byte
	err    error
}

// emit sends ev unless the session is over.
func emit(ctx context.Context, events chan<- event, ev event) error {
	select {
	case events <- ev:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// serve runs c's steps on a Go client's open link, reading it all the
// while (so that pings are answered and pongs seen).
func serve(ctx context.Context, c *caseJSON, gc goConn, protocol, extensions string, events chan<- event) error {
	msgs := make(chan received, 1)
	go func() {
		for {
			m := gc.read(ctx)
			select {
			case msgs <- m:
			case <-ctx.Done():
				return
			}
			if m.err != nil {
				return
			}
		}
	}()
	if err := emit(ctx, events, event{Ev: "open", Protocol: protocol, Extensions: extensions}); err != nil {
		return err
	}
	recv := func() received {
		select {
		case m := <-msgs:
			return m
		case <-ctx.Done():
			return received{err: ctx.Err()}
		}
	}
	// untilClosed reads to the end of the link and reports its close.
	untilClosed := func() event {
		for {
			m := recv()
			if m.err != nil {
				code, reason := gc.closeOf(m.err)
				return event{Ev: "closed", Code: code, Reason: reason, Msg: m.err.Error()}
			}
		}
	}
	for _, st := range c.Steps {
		var ev event
		switch st.Op {
		case "info":
			if err := gc.write(ctx, false, []byte(`{"action":"info"}`), nil); err != nil {
				return err
			}
			m := recv()
			if m.err != nil {
				return m.err
			}
			ev = event{Ev: "info", Text: string(m.data)}
		case "echo":
			data, err := os.ReadFile(st.File)
			if err != nil {
				return err
			}
			if err := gc.write(ctx, st.Type == "binary", data, st.Splits); err != nil {
				return err
			}
			m := recv()
			if m.err != nil {
				return m.err
			}
			sum := sha256.Sum256(m.data)
			ev = event{Ev: "echo", Type: map[bool]string{false: "text", true: "binary"}[m.binary], Len: len(m.data),
				SHA256: hex.EncodeToString(sum[:])}
		case "send":
			data := []byte(st.Text)
			if st.File != "" {
				var err error
				if data, err = os.ReadFile(st.File); err != nil {
					return err
				}
			}
			// A refused message may end the link before it is all
			// written; the close that follows is the verdict.
			_ = gc.write(ctx, st.Type == "binary", data, nil)
			ev = event{Ev: "sent"}
		case "ping":
			sent, got, err := gc.ping(ctx, st.Data)
			if err != nil {
				return err
			}
			ev = event{Ev: "pong", Sent: sent, Data: &got}
		case "idle":
			before := gc.pings()
			select {
			case <-time.After(time.Duration(st.Ms) * time.Millisecond):
			case <-ctx.Done():
				return ctx.Err()
			}
			ev = event{Ev: "idle", Pings: gc.pings() - before}
		case "close":
			if err := gc.close(st.Code, st.Reason); err != nil {
				return err
			}
			ev = untilClosed()
		case "await_close":
			if err := emit(ctx, events, event{Ev: "waiting"}); err != nil {
				return err
			}
			ev = untilClosed()
		default:
			return fmt.Errorf("unknown step %q", st.Op)
		}
		if err := emit(ctx, events, ev); err != nil {
			return err
		}
	}
	return nil
}

// chunks cuts data at splits.
func chunks(data []byte, splits []int) [][]byte {
	var out [][]byte
	at := 0
	for _, s := range splits {
		out = append(out, data[at:s])
		at = s
	}
	return append(out, data[at:])
}

// gorillaClient is github.com/gorilla/websocket's Dialer. It fragments
// whatever does not fit its 4 KiB write buffer; a fragmented send writes
// the pieces through one NextWriter.
func gorillaClient(pool *x509.CertPool) client {
	return client{name: "gorilla", version: moduleVersion("github.com/gorilla/websocket"), canFrag: true, canPing: true, canNoPMD: true, canMute: true,
		run: func(ctx context.Context, c *caseJSON, events chan<- event) error {
			d := websocket.Dialer{Subprotocols: c.Subprotocols, EnableCompression: c.Compress,
				HandshakeTimeout: 10 * time.Second, TLSClientConfig: &tls.Config{RootCAs: pool}}
			conn, resp, err := d.DialContext(ctx, c.URL, nil)
			if err != nil {
				return err
			}
			resp.Body.Close()
			defer conn.Close()
			stop := context.AfterFunc(ctx, func() { conn.Close() })
			defer stop()
			g := &gorillaConn{conn: conn, pongs: make(chan string, 4)}
			conn.SetPongHandler(func(s string) error {
				select {
				case g.pongs <- s:
				default:
				}
				return nil
			})
			conn.SetPingHandler(func(s string) error {
				g.npings.Add(1)
				if c.IgnorePings {
					return nil
				}
				err := conn.WriteControl(websocket.PongMessage, []byte(s), time.Now().Add(5*time.Second))
				if errors.Is(err, websocket.ErrCloseSent) {
					return nil
				}
				return err
			})
			return serve(ctx, c, g, conn.Subprotocol(), resp.Header.Get("Sec-WebSocket-Extensions"), events)
		}}
}

type gorillaConn struct {
	conn   *websocket.Conn
	pongs  chan string
	npings atomic.Int64
}

func (g *gorillaConn) read(context.Context) received {
	typ, data, err := g.conn.ReadMessage()
	return received{binary: typ == websocket.BinaryMessage, data: data, err: err}
}

func (g *gorillaConn) closeOf(err error) (int, *string) {
	var ce *websocket.CloseError
	if errors.As(err, &ce) {
		return ce.Code, &ce.Text
	}
	return 1006, nil
}

func (g *gorillaConn) write(_ context.Context, binary bool, data []byte, splits []int) error {
	typ := websocket.TextMessage
	if binary {
		typ = websocket.BinaryMessage
	}
	if splits == nil {
		return g.conn.WriteMessage(typ, data)
	}
	w, err := g.conn.NextWriter(typ)
	if err != nil {
		return err
	}
	for _, p := range chunks(data, splits) {
		if _, err := w.Write(p); err != nil {
			return err
		}
	}
	return w.Close()
}

func (g *gorillaConn) ping(ctx context.Context, data string) (string, string, error) {
	if err := g.conn.WriteControl(websocket.PingMessage, []byte(data), time.Now().Add(5*time.Second)); err != nil {
		return "", "", err
	}
	select {
	case p := <-g.pongs:
		return data, p, nil
	case <-time.After(10 * time.Second):
		return "", "", errors.New("no pong in 10 s")
	case <-ctx.Done():
		return "", "", ctx.Err()
	}
}

func (g *gorillaConn) close(code int, reason string) error {
	return g.conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(code, reason), time.Now().Add(5*time.Second))
}

func (g *gorillaConn) pings() int { return int(g.npings.Load()) }

// coderClient is github.com/coder/websocket's Dial. It offers
// permessage-deflate with context takeover; each Write of a fragmented
// send is a frame of its own.
func coderClient(pool *x509.CertPool) client {
	return client{name: "coder", version: moduleVersion("github.com/coder/websocket"), canFrag: true, canPing: true, canNoPMD: true,
		run: func(ctx context.Context, c *caseJSON, events chan<- event) error {
			cc := &coderConn{pongs: make(chan string, 4)}
			mode := coder.CompressionDisabled
			if c.Compress {
				mode = coder.CompressionContextTakeover
			}
			conn, resp, err := coder.Dial(ctx, c.URL, &coder.DialOptions{
				HTTPClient:      &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}, Timeout: 10 * time.Second},
				Subprotocols:    c.Subprotocols,
				CompressionMode: mode,
				OnPingReceived:  func(context.Context, []byte) bool { cc.npings.Add(1); return true },
				OnPongReceived: func(_ context.Context, p []byte) {
					select {
					case cc.pongs <- string(p):
					default:
					}
				},
			})
			if err != nil {
				return err
			}
			defer conn.CloseNow()
			cc.conn = conn
			conn.SetReadLimit(2 * maxMessage)
			return serve(ctx, c, cc, conn.Subprotocol(), resp.Header.Get("Sec-WebSocket-Extensions"), events)
		}}
}

type coderConn struct {
	conn       *coder.Conn
	pongs      chan string
	npings     atomic.Int64
	closedWith atomic.Int64
}

func (c *coderConn) read(ctx context.Context) received {
	typ, data, err := c.conn.Read(ctx)
	return received{binary: typ == coder.MessageBinary, data: data, err: err}
}

func (c *coderConn) closeOf(err error) (int, *string) {
	var ce coder.CloseError
	if errors.As(err, &ce) {
		return int(ce.Code), &ce.Reason
	}
	if code := c.closedWith.Load(); code != 0 {
		// Close returns nil only when the server's close frame had its
		// code; the reader did not see the frame.
		return int(code), nil
	}
	return 1006, nil
}

func (c *coderConn) write(ctx context.Context, binary bool, data []byte, splits []int) error {
	typ := coder.MessageText
	if binary {
		typ = coder.MessageBinary
	}
	if splits == nil {
		return c.conn.Write(ctx, typ, data)
	}
	w, err := c.conn.Writer(ctx, typ)
	if err != nil {
		return err
	}
	for _, p := range chunks(data, splits) {
		if _, err := w.Write(p); err != nil {
			return err
		}
	}
	return w.Close()
}

// ping cannot choose the payload: coder's Ping sends a counter and
// returns only once a pong with it came back.
func (c *coderConn) ping(ctx context.Context, _ string) (string, string, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := c.conn.Ping(ctx); err != nil {
		return "", "", err
	}
	select {
	case p := <-c.pongs:
		return p, p, nil
	case <-ctx.Done():
		return "", "", errors.New("Ping returned but OnPongReceived was not called")
	}
}

func (c *coderConn) close(code int, reason string) error {
	if err := c.conn.Close(coder.StatusCode(code), reason); err != nil {
		return err
	}
	c.closedWith.Store(int64(code))
	return nil
}

func (c *coderConn) pings() int { return int(c.npings.Load()) }
