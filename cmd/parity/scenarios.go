package main

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"syscall"
	"time"

	"github.com/gorilla/websocket"

	"github.com/lwsgate/lwsgate/internal/testutil"
)

// program is one implementation under test and how to ask it for each
// role.
type program struct {
	name, path string
	// server returns the arguments of a server on a kernel-chosen port.
	server func(o serverOpts) []string
	// dial and fetch return the arguments of the client roles.
	dial  func(url string) []string
	fetch func(url, body string) []string
}

type serverOpts struct {
	tls          bool
	ping, hangup int // keepalive seconds, 0: none
}

// env holds what every scenario needs: the two programs and a TLS
// certificate made for this run (no keys in git).
type env struct {
	gate, native      *program
	dir               string
	certFile, keyFile string
	cert              tls.Certificate
	pool              *x509.CertPool
}

// newEnv runs both programs on the event loop named loop (poll or libev):
// lwsgate with -event-loop, the native program with -e.
func newEnv(gatePath, nativePath, loop string) (*env, error) {
	for _, p := range []string{gatePath, nativePath} {
		if _, err := os.Stat(p); err != nil {
			return nil, fmt.Errorf("%w (build it with make build native)", err)
		}
	}
	dir, err := os.MkdirTemp("", "parity")
	if err != nil {
		return nil, err
	}
	e := &env{dir: dir}
	if err := e.makeCert(); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	e.native = &program{
		name: "native", path: nativePath,
		server: func(o serverOpts) []string {
			a := []string{"-p", "0", "-i", "127.0.0.1", "-t", "-e", loop}
			if o.tls {
				a = append(a, "-C", e.certFile, "-K", e.keyFile)
			}
			if o.ping > 0 {
				a = append(a, "-P", fmt.Sprint(o.ping), "-Q", fmt.Sprint(o.hangup))
			}
			return a
		},
		dial:  func(url string) []string { return []string{"-t", "-k", "-e", loop, "-c", url, "-s", "hello world"} },
		fetch: func(url, body string) []string { return []string{"-t", "-k", "-e", loop, "-H", url, "-D", body} },
	}
	e.gate = &program{
		name: "lwsgate", path: gatePath,
		server: func(o serverOpts) []string {
			// No admin listener: it is a second vhost, whose
			// PROTOCOL_INIT/DESTROY the one-vhost native program
			// has no counterpart for.
			// One worker: the native program has one service thread.
			a := []string{"-listen", "127.0.0.1:0", "-admin", "off", "-trace", "-workers", "1", "-event-loop", loop}
			if o.tls {
				a = append(a, "-tls-cert", e.certFile, "-tls-key", e.keyFile)
			}
			if o.ping > 0 {
				a = append(a, "-ping-interval", fmt.Sprintf("%ds", o.ping), "-ping-timeout", fmt.Sprintf("%ds", o.hangup))
			}
			return a
		},
		dial: func(url string) []string {
			return []string{"dial", "-insecure", "-event-loop", loop, "-send", "hello world", url}
		},
		fetch: func(url, body string) []string {
			return []string{"fetch", "-insecure", "-event-loop", loop, "-X", "POST", "-d", body, url}
		},
	}
	return e, nil
}

func (e *env) close() { os.RemoveAll(e.dir) }

func (e *env) makeCert() error {
	c, err := testutil.SelfSigned(e.dir)
	if err != nil {
		return err
	}
	e.certFile, e.keyFile, e.cert, e.pool = c.CertFile, c.KeyFile, c.Pair, c.Pool
	return nil
}

var listenRE = regexp.MustCompile(`listening (?:on |addr=)(127\.0\.0\.1:\d+)`)

// startServer runs p as a server and returns its address and a stop
// function that ends it with SIGTERM and returns everything it wrote.
func startServer(p *program, o serverOpts) (string, func() ([]byte, error), error) {
	out := &testutil.Buffer{} // stdout and stderr
	cmd := exec.Command(p.path, p.server(o)...)
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		return "", nil, err
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	stop := func() ([]byte, error) {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case err := <-done:
			return out.Bytes(), err
		case <-time.After(15 * time.Second):
			_ = cmd.Process.Kill()
			<-done
			return out.Bytes(), errors.New("did not stop within 15s of SIGTERM")
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		if m := listenRE.FindSubmatch(out.Bytes()); m != nil {
			return string(m[1]), stop, nil
		}
		select {
		case err := <-done:
			return "", nil, fmt.Errorf("exited before listening (%v):\n%s", err, out.Bytes())
		default:
		}
		if time.Now().After(deadline) {
			b, _ := stop()
			return "", nil, fmt.Errorf("not listening after 10s:\n%s", b)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// runClient runs p in a client role to completion.
func runClient(p *program, args []string) ([]byte, error) {
	out := &testutil.Buffer{} // stdout and stderr
	cmd := exec.Command(p.path, args...)
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		return out.Bytes(), err
	case <-time.After(20 * time.Second):
		_ = cmd.Process.Kill()
		<-done
		return out.Bytes(), errors.New("client did not finish within 20s")
	}
}

// scenario is one parity scenario.
type scenario struct {
	name, about string
	conns       map[int]string // what each renumbered wsi is, for the docs
	run         func(e *env, p *program) ([]byte, error)
}

// serverScenario wraps a client-side driver into a scenario against p as
// server.
func serverScenario(o serverOpts, drive func(e *env, addr string) error) func(e *env, p *program) ([]byte, error) {
	return func(e *env, p *program) ([]byte, error) {
		addr, stop, err := startServer(p, o)
		if err != nil {
			return nil, err
		}
		derr := drive(e, addr)
		out, serr := stop()
		if derr != nil {
			return out, fmt.Errorf("driver: %w", derr)
		}
		if serr != nil {
			return out, fmt.Errorf("server: %w", serr)
		}
		return out, nil
	}
}

func (e *env) wsDial(addr string, useTLS bool) (*websocket.Conn, error) {
	d := websocket.Dialer{HandshakeTimeout: 5 * time.Second, TLSClientConfig: &tls.Config{RootCAs: e.pool}}
	scheme := "ws"
	if useTLS {
		scheme = "wss"
	}
	ws, resp, err := d.Dial(scheme+"://"+addr+"/", nil)
	if err != nil {
		return nil, err
	}
	resp.Body.Close()
	_ = ws.SetReadDeadline(time.Now().Add(10 * time.Second))
	return ws, nil
}

// echoOnce sends "hello world" and reads the echo.
func echoOnce(ws *websocket.Conn) error {
	if err := ws.WriteMessage(websocket.TextMessage, []byte("hello world")); err != nil {
		return err
	}
	_, p, err := ws.ReadMessage()
	if err != nil {
		return err
	}
	if string(p) != "hello world" {
		return fmt.Errorf("echo %q", p)
	}
	return nil
}

// closeAndWait does a client-initiated closing handshake.
func closeAndWait(ws *websocket.Conn, code int) error {
	if err := ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(code, ""), time.Now().Add(time.Second)); err != nil {
		return err
	}
	_, _, err := ws.ReadMessage()
	if !websocket.IsCloseError(err, code) {
		return fmt.Errorf("close: %v", err)
	}
	return ws.Close()
}

// settle gives the server time to finish with a connection the client
// has left, before it is stopped (the log is read after stop).
func settle() { time.Sleep(300 * time.Millisecond) }

func wsEcho(useTLS bool) func(e *env, addr string) error {
	return func(e *env, addr string) error {
		ws, err := e.wsDial(addr, useTLS)
		if err != nil {
			return err
		}
		if err := echoOnce(ws); err != nil {
			return err
		}
		if err := closeAndWait(ws, 1000); err != nil {
			return err
		}
		settle()
		return nil
	}
}

const tokenBody = `{"UserName": "keda", "RequestId": "1614738418531"}`

func (e *env) httpClient() *http.Client {
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		DisableKeepAlives: true,
		TLSClientConfig:   &tls.Config{RootCAs: e.pool},
	}}
}

func createToken(useTLS bool) func(e *env, addr string) error {
	return func(e *env, addr string) error {
		scheme := "http"
		if useTLS {
			scheme = "https"
		}
		resp, err := e.httpClient().Post(scheme+"://"+addr+"/v1/api/createtoken", "application/json", strings.NewReader(tokenBody))
		if err != nil {
			return err
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), `"code":0`) {
			return fmt.Errorf("createtoken: %d %s", resp.StatusCode, body)
		}
		settle()
		return nil
	}
}

// peer runs a Go server for the client scenarios.
func (e *env) peer(useTLS bool, h http.Handler) *httptest.Server {
	s := httptest.NewUnstartedServer(h)
	if useTLS {
		s.TLS = &tls.Config{Certificates: []tls.Certificate{e.cert}}
		s.StartTLS()
	} else {
		s.Start()
	}
	return s
}

func wsEchoPeer() http.Handler {
	up := websocket.Upgrader{}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer ws.Close()
		for {
			mt, p, err := ws.ReadMessage()
			if err != nil {
				return
			}
			_ = ws.WriteMessage(mt, p)
		}
	})
}

func clientWS(useTLS bool) func(e *env, p *program) ([]byte, error) {
	return func(e *env, p *program) ([]byte, error) {
		s := e.peer(useTLS, wsEchoPeer())
		defer s.Close()
		url := "ws" + strings.TrimPrefix(s.URL, "http") + "/"
		out, err := runClient(p, p.dial(url))
		if err == nil && !bytes.Contains(out, []byte("hello world")) {
			err = errors.New("no echo in the client's output")
		}
		return out, err
	}
}

func clientHTTP(useTLS bool) func(e *env, p *program) ([]byte, error) {
	return func(e *env, p *program) ([]byte, error) {
		s := e.peer(useTLS, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			b, _ := io.ReadAll(r.Body)
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprintf(w, `{"code":0,"got":%d}`, len(b))
		}))
		defer s.Close()
		out, err := runClient(p, p.fetch(s.URL+"/v1/api/createtoken", tokenBody))
		if err == nil && !bytes.Contains(out, []byte(`"code":0`)) {
			err = errors.New("no reply in the client's output")
		}
		return out, err
	}
}

var scenarios = []scenario{
	{
		name: "ws-echo", about: `ws connect, send "hello world", receive the echo, client closes with 1000`,
		conns: map[int]string{1: "listener", 2: "ws link"},
		run:   serverScenario(serverOpts{}, wsEcho(false)),
	},
	{
		name: "ws-abrupt", about: "ws connect, echo, then the client drops TCP without a close frame",
		conns: map[int]string{1: "listener", 2: "ws link"},
		run: serverScenario(serverOpts{}, func(e *env, addr string) error {
			ws, err := e.wsDial(addr, false)
			if err != nil {
				return err
			}
			if err := echoOnce(ws); err != nil {
				return err
			}
			ws.UnderlyingConn().Close()
			settle()
			return nil
		}),
	},
	{
		name: "ws-server-close", about: `the client sends "/close 4001 bye": the server closes with 4001`,
		conns: map[int]string{1: "listener", 2: "ws link"},
		run: serverScenario(serverOpts{}, func(e *env, addr string) error {
			ws, err := e.wsDial(addr, false)
			if err != nil {
				return err
			}
			if err := ws.WriteMessage(websocket.TextMessage, []byte("/close 4001 bye")); err != nil {
				return err
			}
			_, _, err = ws.ReadMessage()
			if !websocket.IsCloseError(err, 4001) {
				return fmt.Errorf("want close 4001, got %v", err)
			}
			ws.Close()
			settle()
			return nil
		}),
	},
	{
		name: "http-createtoken", about: "POST /v1/api/createtoken with the seed's JSON body (Connection: close)",
		conns: map[int]string{1: "listener", 2: "http connection"},
		run:   serverScenario(serverOpts{}, createToken(false)),
	},
	{
		name: "http-client-cancel", about: "GET /v1/api/slow?ms=1000; the client gives up after 200 ms",
		conns: map[int]string{1: "listener", 2: "http connection"},
		run: serverScenario(serverOpts{}, func(e *env, addr string) error {
			c := e.httpClient()
			c.Timeout = 200 * time.Millisecond
			resp, err := c.Get("http://" + addr + "/v1/api/slow?ms=1000")
			if err == nil {
				resp.Body.Close()
				return errors.New("the slow reply came before the client gave up")
			}
			// past the server's timer: it must write nothing
			time.Sleep(1200 * time.Millisecond)
			return nil
		}),
	},
	{
		name: "keepalive", about: "server pings after 1 s without a pong; the client answers for 2.5 s, then closes",
		conns: map[int]string{1: "listener", 2: "ws link"},
		run: serverScenario(serverOpts{ping: 1, hangup: 3}, func(e *env, addr string) error {
			ws, err := e.wsDial(addr, false)
			if err != nil {
				return err
			}
			pings := 0
			ws.SetPingHandler(func(s string) error {
				pings++
				return ws.WriteControl(websocket.PongMessage, []byte(s), time.Now().Add(time.Second))
			})
			_ = ws.SetReadDeadline(time.Now().Add(2500 * time.Millisecond))
			_, _, err = ws.ReadMessage() // answers pings until the deadline
			var ne net.Error
			if !errors.As(err, &ne) || !ne.Timeout() {
				return fmt.Errorf("read: %v", err)
			}
			if pings == 0 {
				return errors.New("no ping in 2.5 s")
			}
			// gorilla cannot be used after a read timeout: drop TCP
			ws.UnderlyingConn().Close()
			settle()
			return nil
		}),
	},
	{
		name: "wss-echo", about: "ws-echo over TLS",
		conns: map[int]string{1: "listener", 2: "ws link"},
		run:   serverScenario(serverOpts{tls: true}, wsEcho(true)),
	},
	{
		name: "https-createtoken", about: "http-createtoken over TLS",
		conns: map[int]string{1: "listener", 2: "http connection"},
		run:   serverScenario(serverOpts{tls: true}, createToken(true)),
	},
	{
		name: "client-ws", about: `ws client: connect to a Go echo server, send "hello world", receive, close with 1000`,
		conns: map[int]string{1: "client link"},
		run:   clientWS(false),
	},
	{
		name: "client-http", about: "http client: POST the createtoken body to a Go server",
		conns: map[int]string{1: "client connection"},
		run:   clientHTTP(false),
	},
	{
		name: "client-wss", about: "client-ws over TLS (certificate checks off)",
		conns: map[int]string{1: "client link"},
		run:   clientWS(true),
	},
	{
		name: "client-https", about: "client-http over TLS (certificate checks off)",
		conns: map[int]string{1: "client connection"},
		run:   clientHTTP(true),
	},
}
