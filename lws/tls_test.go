package lws

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lwsgate/lwsgate/cgo"
)

// tlsEchoSizes are the message sizes echoed over TLS: empty, the 7-bit,
// 16-bit and 64-bit length encodings and their edges, and big messages
// that span many TLS records.
var tlsEchoSizes = []int{0, 1, 125, 126, 65535, 65536, 1 << 20, 16 << 20}

// tlsMaxMessage is the MaxMessageSize of the echo tests: the biggest size.
const tlsMaxMessage = 16 << 20

func sizedMsg(n int) []byte { return bytes.Repeat([]byte("abcdefghij"), n/10+1)[:n] }

// --- lws TLS listener, Go clients ---------------------------------------

func TestTLSListenerEchoGorilla(t *testing.T) {
	p := newTestPKI(t)
	_, addr := startTLSServer(t, p, Listener{Handler: EchoHandler{}, MaxMessageSize: tlsMaxMessage})
	ws := dialWSS(t, p, addr)
	state, ok := ws.UnderlyingConn().(*tls.Conn)
	require.True(t, ok, "gorilla's connection is not TLS")
	// The server sent its chain (leaf + intermediate), which is how a
	// client that trusts only the root verified it.
	require.Len(t, state.ConnectionState().PeerCertificates, 2)
	assert.Equal(t, "localhost", state.ConnectionState().PeerCertificates[0].Subject.CommonName)

	for _, n := range tlsEchoSizes {
		for _, typ := range []int{websocket.BinaryMessage, websocket.TextMessage} {
			msg := sizedMsg(n)
			require.NoError(t, ws.WriteMessage(typ, msg), "size %d", n)
			gt, got, err := ws.ReadMessage()
			require.NoError(t, err, "size %d", n)
			assert.Equal(t, typ, gt, "size %d", n)
			assert.True(t, bytes.Equal(msg, got), "size %d: echo differs (got %d bytes)", n, len(got))
		}
	}
}

func TestTLSListenerFragmentedGorilla(t *testing.T) {
	p := newTestPKI(t)
	_, addr := startTLSServer(t, p, Listener{Handler: EchoHandler{}})
	// Tap the plaintext, above TLS, to see the client really fragments:
	// with a 256-byte write buffer gorilla flushes a frame per buffer.
	var tap *frameTap
	d := &websocket.Dialer{
		HandshakeTimeout: 5 * time.Second,
		WriteBufferSize:  256,
		NetDialTLSContext: func(ctx context.Context, network, a string) (net.Conn, error) {
			c, err := (&net.Dialer{}).DialContext(ctx, network, a)
			if err != nil {
				return nil, err
			}
			tc := tls.Client(c, &tls.Config{RootCAs: p.Pool(), ServerName: "127.0.0.1"})
			if err := tc.HandshakeContext(ctx); err != nil {
				c.Close()
				return nil, err
			}
			tap = &frameTap{Conn: tc}
			return tap, nil
		},
	}
	ws, resp, err := d.Dial("wss://"+addr+"/", nil)
	require.NoError(t, err)
	resp.Body.Close()
	defer ws.Close()
	_ = ws.SetReadDeadline(time.Now().Add(hangTimeout))

	for _, n := range []int{4800, 256 << 10} {
		for _, typ := range []int{websocket.TextMessage, websocket.BinaryMessage} {
			msg := sizedMsg(n)
			before := len(tap.seen())
			require.NoError(t, writeFragmented(ws, typ, msg, 100))
			frames := tap.seen()[before:]
			require.Greater(t, len(frames), 2, "message was not fragmented: %+v", frames)
			assert.Equal(t, byte(typ), frames[0].op)
			assert.False(t, frames[0].fin)
			assert.True(t, frames[len(frames)-1].fin)
			gt, got, err := ws.ReadMessage()
			require.NoError(t, err)
			assert.Equal(t, typ, gt)
			assert.True(t, bytes.Equal(msg, got), "size %d: reassembled echo differs (got %d bytes)", n, len(got))
		}
	}
}

func TestTLSListenerHTTPS(t *testing.T) {
	p := newTestPKI(t)
	big := sizedMsg(300 << 10) // several TLS records
	h := HTTPHandlerFunc(func(w *ResponseWriter, r *Request) {
		w.Header().Set("Content-Type", "text/plain")
		if r.Path == "/big" {
			_ = w.Respond(http.StatusOK, big)
			return
		}
		_ = w.Respond(http.StatusOK, []byte("hello "+r.Path))
	})
	_, addr := startTLSServer(t, p, Listener{HTTPHandler: h, Handler: EchoHandler{}})
	tr := &http.Transport{
		// A custom TLSClientConfig turns Go's HTTP/2 off and with it
		// ALPN: offer http/1.1 to see the listener's ALPN answer.
		TLSClientConfig: &tls.Config{RootCAs: p.Pool(), NextProtos: []string{"http/1.1"}},
		MaxConnsPerHost: 1, DisableCompression: true,
	}
	t.Cleanup(tr.CloseIdleConnections)
	cl := &http.Client{Transport: tr, Timeout: hangTimeout}

	resp, body := doHTTP(t, cl, "GET", "https://"+addr+"/some/path", nil, nil)
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Equal(t, "hello /some/path", string(body))
	require.NotNil(t, resp.TLS)
	assert.Equal(t, "http/1.1", resp.TLS.NegotiatedProtocol)

	resp, body = doHTTP(t, cl, "GET", "https://"+addr+"/big", nil, nil)
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.True(t, bytes.Equal(big, body), "big body differs (got %d bytes)", len(body))

	// A plain-HTTP client on the TLS port gets no answer it can parse.
	plain := &http.Transport{DisableKeepAlives: true}
	t.Cleanup(plain.CloseIdleConnections)
	_, err := (&http.Client{Transport: plain, Timeout: 5 * time.Second}).Get("http://" + addr + "/")
	assert.Error(t, err)
}

// --- lws client over TLS --------------------------------------------------

func TestTLSDialGoServer(t *testing.T) {
	p := newTestPKI(t)
	s := startGoWSServer(t, goTLSConfig(t, p, p.ServerChain, p.ServerKey), goEcho)
	c := tlsClientContext(t)
	sink := newClientSink()
	conn, err := c.Dial(context.Background(), s.URL+"/", &DialOptions{
		Handler:        sink.handler(),
		TLS:            &ClientTLS{CAFile: p.CA},
		MaxMessageSize: tlsMaxMessage,
	})
	require.NoError(t, err)
	assert.Equal(t, "/", conn.Link().Path)
	lwsEchoSizes(t, conn, sink)
	ce := closeClient(t, conn, sink)
	assert.Equal(t, StatusNormalClosure, ce.Code)
}

func TestTLSDialLwsListener(t *testing.T) {
	p := newTestPKI(t)
	_, addr := startTLSServer(t, p, Listener{Handler: EchoHandler{}, MaxMessageSize: tlsMaxMessage})
	c := tlsClientContext(t)
	// Both by IP (the certificate's IP SAN) and by name (its DNS SAN).
	for _, host := range []string{"127.0.0.1", "localhost"} {
		t.Run(host, func(t *testing.T) {
			_, port, _ := net.SplitHostPort(addr)
			sink := newClientSink()
			conn, err := c.Dial(context.Background(), "wss://"+net.JoinHostPort(host, port)+"/", &DialOptions{
				Handler:        sink.handler(),
				TLS:            &ClientTLS{CAFile: p.CA},
				MaxMessageSize: tlsMaxMessage,
			})
			require.NoError(t, err)
			lwsEchoSizes(t, conn, sink)
			ce := closeClient(t, conn, sink)
			assert.Equal(t, StatusNormalClosure, ce.Code)
		})
	}
}

// TestTLSDialCertErrors: each bad server certificate fails the dial with
// DialTLS and the X509_V_ERR code OpenSSL gives, releases everything, and
// is accepted with InsecureSkipVerify.
func TestTLSDialCertErrors(t *testing.T) {
	p := newTestPKI(t)
	c := tlsClientContext(t)
	cases := []struct {
		name      string
		cert, key string
		host      string // dialled name; resolves to 127.0.0.1
		ca        string
		code      int
	}{
		// The server sends leaf + intermediate; the root that signed the
		// intermediate is not in the trusted (other) CA file, and OpenSSL
		// reports that for the top of the chain, at depth 1.
		{"wrong CA", p.ServerChain, p.ServerKey, "127.0.0.1", p.OtherCA, X509UnableToGetIssuerLocally},
		{"expired", p.ExpiredChain, p.ExpiredKey, "127.0.0.1", p.CA, X509CertHasExpired},
		// lws passes the URL host, without its port, for SNI and the
		// name check: a DNS name is matched against the DNS SANs...
		{"hostname mismatch", p.WrongNameChain, p.WrongNameKey, "localhost", p.CA, X509HostnameMismatch},
		// ...and an IP literal against the IP SANs.
		{"IP mismatch", p.WrongNameChain, p.WrongNameKey, "127.0.0.1", p.CA, X509IPAddressMismatch},
		{"self-signed", p.SelfSigned, p.SelfSignedKey, "127.0.0.1", p.CA, X509DepthZeroSelfSigned},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := startGoWSServer(t, goTLSConfig(t, p, tc.cert, tc.key), goEcho)
			_, port, _ := net.SplitHostPort(s.Addr)
			url := "wss://" + net.JoinHostPort(tc.host, port) + "/"

			before := cgo.LiveHandles()
			sink := newClientSink()
			conn, err := c.Dial(context.Background(), url, &DialOptions{
				Handler: sink.handler(), TLS: &ClientTLS{CAFile: tc.ca}, HandshakeTimeout: 10 * time.Second,
			})
			require.Error(t, err)
			assert.Nil(t, conn)
			t.Logf("dial error: %v", err)
			var de *DialError
			require.True(t, errors.As(err, &de), "not a *DialError: %T %v", err, err)
			assert.Equal(t, DialTLS, de.Kind, "kind")
			assert.Equal(t, url, de.URL)
			var te *TLSError
			require.True(t, errors.As(err, &te), "no *TLSError in %v", err)
			assert.Equal(t, tc.code, te.Code, "X509_V_ERR code (%s)", te.Reason)
			assert.NotEmpty(t, te.Reason)
			assert.Empty(t, sink.opens, "OnOpen of a failed dial")
			waitHandles(t, before, "after the failed dial")

			// The same dial with InsecureSkipVerify opens and works.
			conn, err = c.Dial(context.Background(), url, &DialOptions{
				Handler: sink.handler(), TLS: &ClientTLS{CAFile: tc.ca, InsecureSkipVerify: true}, HandshakeTimeout: 10 * time.Second,
			})
			require.NoError(t, err)
			require.NoError(t, conn.SendText("insecure "+tc.name))
			got := waitFor(t, sink.msgs, "echo")
			assert.Equal(t, "insecure "+tc.name, string(got.data))
			closeClient(t, conn, sink)
			waitHandles(t, before, "after the insecure link closed")
		})
	}
}

// --- mutual TLS -------------------------------------------------------------

// TestTLSDialClientCert: the lws client presents ClientTLS.CertFile to a Go
// server that requires a client certificate.
func TestTLSDialClientCert(t *testing.T) {
	p := newTestPKI(t)
	cfg := goTLSConfig(t, p, p.ServerChain, p.ServerKey)
	cfg.ClientAuth = tls.RequireAndVerifyClientCert
	cfg.ClientCAs = p.Pool()
	peers := make(chan string, 4)
	s := startGoWSServer(t, cfg, func(s *goWSServer, ws *websocket.Conn, r *http.Request) {
		peers <- r.TLS.PeerCertificates[0].Subject.CommonName
		goEcho(s, ws, r)
	})
	c := tlsClientContext(t)

	t.Run("with cert", func(t *testing.T) {
		sink := newClientSink()
		conn, err := c.Dial(context.Background(), s.URL+"/", &DialOptions{
			Handler: sink.handler(),
			TLS:     &ClientTLS{CAFile: p.CA, CertFile: p.ClientCert, KeyFile: p.ClientKey},
		})
		require.NoError(t, err)
		assert.Equal(t, "lwsgate test client", waitFor(t, peers, "server's view of the client"))
		require.NoError(t, conn.SendText("mutual"))
		assert.Equal(t, "mutual", string(waitFor(t, sink.msgs, "echo").data))
		closeClient(t, conn, sink)
	})

	t.Run("without cert", func(t *testing.T) {
		before := cgo.LiveHandles()
		conn, err := c.Dial(context.Background(), s.URL+"/", &DialOptions{TLS: &ClientTLS{CAFile: p.CA}, HandshakeTimeout: 10 * time.Second})
		require.Error(t, err)
		assert.Nil(t, conn)
		t.Logf("dial error: %v", err)
		var de *DialError
		require.True(t, errors.As(err, &de), "not a *DialError: %T %v", err, err)
		// With TLS 1.3 the client's side of the handshake is complete
		// before the server checks the client's certificate: the server's
		// alert only arrives once the client has written its upgrade
		// request, and the dial fails as a handshake failure ("read
		// failed"), not DialTLS.
		assert.Equal(t, DialHandshake, de.Kind, "kind %s", de.Kind)
		var te *TLSError
		assert.False(t, errors.As(err, &te), "the server's certificate was fine")
		waitHandles(t, before, "after the refused dial")
	})
	assert.Empty(t, peers)
}

// TestTLSDialClientCertTLS12: with TLS 1.2 the server refuses a missing
// or untrusted client certificate inside the handshake: DialTLS.
func TestTLSDialClientCertTLS12(t *testing.T) {
	p := newTestPKI(t)
	cfg := goTLSConfig(t, p, p.ServerChain, p.ServerKey)
	cfg.ClientAuth = tls.RequireAndVerifyClientCert
	cfg.ClientCAs = p.Pool()
	cfg.MaxVersion = tls.VersionTLS12
	s := startGoWSServer(t, cfg, goEcho)
	c := tlsClientContext(t)
	for _, tc := range []struct {
		name string
		tls  ClientTLS
	}{
		{"without cert", ClientTLS{CAFile: p.CA}},
		{"untrusted cert", ClientTLS{CAFile: p.CA, CertFile: p.SelfSigned, KeyFile: p.SelfSignedKey}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := cgo.LiveHandles()
			_, err := c.Dial(context.Background(), s.URL+"/", &DialOptions{TLS: &tc.tls, HandshakeTimeout: 10 * time.Second})
			require.Error(t, err)
			t.Logf("dial error: %v", err)
			var de *DialError
			require.True(t, errors.As(err, &de), "not a *DialError: %T %v", err, err)
			assert.Equal(t, DialTLS, de.Kind)
			var te *TLSError
			assert.False(t, errors.As(err, &te), "the server's certificate was fine")
			waitHandles(t, before, "after the refused dial")
		})
	}
	sink := newClientSink()
	conn, err := c.Dial(context.Background(), s.URL+"/", &DialOptions{
		Handler: sink.handler(), TLS: &ClientTLS{CAFile: p.CA, CertFile: p.ClientCert, KeyFile: p.ClientKey},
	})
	require.NoError(t, err, "with the client certificate")
	closeClient(t, conn, sink)
}

// --- listener TLS configuration ------------------------------------------

func TestTLSListenerBadConfig(t *testing.T) {
	p := newTestPKI(t)
	notPEM := filepath.Join(p.Dir, "notpem.pem")
	require.NoError(t, os.WriteFile(notPEM, []byte("this is not a certificate\n"), 0o600))
	missing := filepath.Join(p.Dir, "missing.pem")

	cases := []struct {
		name  string
		files TLSFiles
		want  []string // substrings of the error
	}{
		{"missing cert file", TLSFiles{CertFile: missing, KeyFile: p.ServerKey}, []string{"TLS.CertFile", missing}},
		{"missing key file", TLSFiles{CertFile: p.ServerChain, KeyFile: missing}, []string{"TLS.KeyFile", missing}},
		{"missing CA file", TLSFiles{CertFile: p.ServerChain, KeyFile: p.ServerKey, CAFile: missing}, []string{"TLS.CAFile", missing}},
		{"key does not match cert", TLSFiles{CertFile: p.ServerChain, KeyFile: p.OtherKey}, []string{p.OtherKey}},
		{"cert not PEM", TLSFiles{CertFile: notPEM, KeyFile: p.ServerKey}, []string{notPEM}},
		{"key not PEM", TLSFiles{CertFile: p.ServerChain, KeyFile: notPEM}, []string{notPEM}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := cgo.LiveHandles()
			files := tc.files
			c, err := New(&Config{Logger: testLogger(t), Listeners: []Listener{{Name: "secure-ln", Addr: "127.0.0.1:0", TLS: &files}}})
			if err == nil {
				c.Close()
			}
			require.Error(t, err)
			t.Logf("New: %v", err)
			for _, w := range tc.want {
				assert.Contains(t, err.Error(), w)
			}
			assert.Contains(t, err.Error(), "secure-ln", "the listener is named")
			waitHandles(t, before, "after the failed New")
		})
	}

	// The same files, right, still work afterwards.
	_, addr := startTLSServer(t, p, Listener{Handler: EchoHandler{}})
	echo(t, dialWSS(t, p, addr), "still fine")
}

// TestTLSListenerMixedLinks: one Context with a TLS and a plain listener;
// each serves its own scheme only, and a link lost on either is reported.
func TestTLSListenerMixedLinks(t *testing.T) {
	p := newTestPKI(t)
	rec := newRecorder()
	c, err := New(&Config{Logger: testLogger(t), Listeners: []Listener{
		{Name: "wss", Addr: "127.0.0.1:0", Handler: rec, TLS: &TLSFiles{CertFile: p.ServerChain, KeyFile: p.ServerKey}},
		{Name: "ws", Addr: "127.0.0.1:0", Handler: rec},
	}})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, c.Close()) })
	tlsAddr, plainAddr := c.Addrs()[0].String(), c.Addrs()[1].String()
	wss := dialWSS(t, p, tlsAddr)
	echo(t, wss, "over TLS")
	assert.Equal(t, "wss", waitFor(t, rec.opens, "TLS open").Link().Listener)
	ws := dial(t, plainAddr, nil)
	echo(t, ws, "in clear")
	assert.Equal(t, "ws", waitFor(t, rec.opens, "plain open").Link().Listener)

	d := websocket.Dialer{HandshakeTimeout: 5 * time.Second, TLSClientConfig: &tls.Config{RootCAs: p.Pool()}}
	_, _, err = d.Dial("wss://"+plainAddr+"/", nil)
	assert.Error(t, err, "TLS to the plain listener")
	_, _, err = d.Dial("ws://"+tlsAddr+"/", nil)
	assert.Error(t, err, "clear text to the TLS listener")
	assert.Empty(t, rec.opens, "a link opened with the wrong scheme")

	// Both peers vanish without a close frame: 1006 on each.
	wss.Close()
	ws.Close()
	for range 2 {
		ev := waitFor(t, rec.closes, "OnClose")
		assert.Equal(t, StatusAbnormalClosure, ev.ce.Code, "link on %s", ev.c.Link().Listener)
	}
}

// TestTLSListenerCloseHandshake: closing handshakes over TLS, either side
// first, end the link promptly when the peer then closes its connection
// as gorilla applications do.
//
// (libwebsockets 4.1 stages the end of a server-side TLS connection: it
// sends close_notify and waits up to Config.NetworkTimeout for the peer's
// close_notify or EOF. A peer that keeps its socket open after the
// closing handshake holds the link, and delays OnClose, that long.)
func TestTLSListenerCloseHandshake(t *testing.T) {
	p := newTestPKI(t)
	rec := newRecorder()
	_, addr := startTLSServer(t, p, Listener{Handler: rec})
	const prompt = 5 * time.Second // the linger would be NetworkTimeout, 15s

	t.Run("client first", func(t *testing.T) {
		ws := dialWSS(t, p, addr)
		waitFor(t, rec.opens, "open")
		start := time.Now()
		require.NoError(t, ws.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(4001, "client bye")))
		_, _, err := ws.ReadMessage()
		var ce *websocket.CloseError
		require.True(t, errors.As(err, &ce), "%v", err)
		assert.Equal(t, 4001, ce.Code, "close echoed")
		ws.Close()
		ev := waitFor(t, rec.closes, "OnClose")
		assert.Equal(t, StatusCode(4001), ev.ce.Code)
		assert.Equal(t, "client bye", ev.ce.Reason)
		assert.False(t, ev.ce.Local)
		assert.Less(t, time.Since(start), prompt)
	})
	t.Run("server first", func(t *testing.T) {
		ws := dialWSS(t, p, addr)
		conn := waitFor(t, rec.opens, "open")
		start := time.Now()
		require.NoError(t, conn.Close(4002, "server bye"))
		ce := readClose(t, ws) // gorilla answers the close frame
		assert.Equal(t, 4002, ce.Code)
		assert.Equal(t, "server bye", ce.Text)
		ws.Close()
		ev := waitFor(t, rec.closes, "OnClose")
		assert.Equal(t, StatusCode(4002), ev.ce.Code)
		assert.True(t, ev.ce.Local)
		assert.Less(t, time.Since(start), prompt)
	})
}

// TestTLSListenerCloseAfterPeerLeft: the server closes a link whose peer
// has just closed its connection, before libwebsockets read that: the
// link should end at once (OnClose), as it does without TLS.
//
// Over TLS it lingers until Config.NetworkTimeout instead (4s here, 15s by
// default; reproduced every time): the socket is gone from the kernel's
// table within the first second, but WSI_DESTROY, and so OnClose, only
// comes with the timeout. Context.Close racing a departing TLS peer hits
// the same path and then waits for ShutdownTimeout.
func TestTLSListenerCloseAfterPeerLeft(t *testing.T) {
	p := newTestPKI(t)
	for _, useTLS := range []bool{false, true} {
		name := "plain"
		if useTLS {
			name = "TLS"
		}
		t.Run(name, func(t *testing.T) {
			rec := newRecorder()
			l := Listener{Handler: rec}
			if useTLS {
				l.TLS = &TLSFiles{CertFile: p.ServerChain, KeyFile: p.ServerKey}
			}
			c, addr := startServer(t, l, func(c *Config) { c.NetworkTimeout = 4 * time.Second })
			var ws *websocket.Conn
			if useTLS {
				ws = dialWSS(t, p, addr)
			} else {
				ws = dial(t, addr, nil)
			}
			echo(t, ws, "hello")
			conn := waitFor(t, rec.opens, "OnOpen")

			start := time.Now()
			// On the service goroutine, so that libwebsockets cannot read
			// the peer's leaving before the close is asked for.
			require.NoError(t, c.Do(func() {
				ws.Close()
				time.Sleep(20 * time.Millisecond)
				_ = conn.Close(StatusGoingAway, "bye")
			}))
			ev := waitFor(t, rec.closes, "OnClose")
			took := time.Since(start)
			t.Logf("OnClose %+v after %v", ev.ce, took)
			if useTLS && strings.HasPrefix(Version(), "4.1.") {
				// libwebsockets 4.1 then waits for the TLS
				// shutdown of a peer that is gone until its
				// timeout_secs (NetworkTimeout): a known
				// limitation, recorded rather than hidden.
				assert.Less(t, took, 4*time.Second+2*time.Second)
				return
			}
			assert.Less(t, took, 2*time.Second)
		})
	}
}

// TestTLSListenerClientCert: a listener with TLSFiles.CAFile requires a
// client certificate signed by that CA (mutual TLS), from gorilla and from
// the lws client alike.
func TestTLSListenerClientCert(t *testing.T) {
	p := newTestPKI(t)
	_, addr := startServer(t, Listener{Handler: EchoHandler{}, TLS: &TLSFiles{CertFile: p.ServerChain, KeyFile: p.ServerKey, CAFile: p.CA}})

	// gorilla without a certificate: refused (under TLS 1.3 the alert may
	// only surface on the first read after the handshake).
	d := websocket.Dialer{HandshakeTimeout: 5 * time.Second, TLSClientConfig: &tls.Config{RootCAs: p.Pool()}}
	ws, resp, err := d.Dial("wss://"+addr+"/", nil)
	if err == nil {
		resp.Body.Close()
		_ = ws.SetReadDeadline(time.Now().Add(5 * time.Second))
		_ = ws.WriteMessage(websocket.TextMessage, []byte("x"))
		_, _, err = ws.ReadMessage()
		ws.Close()
	}
	require.Error(t, err, "a client without a certificate got through")

	// gorilla with one: echo.
	d.TLSClientConfig.Certificates = []tls.Certificate{keyPair(t, p.ClientCert, p.ClientKey)}
	ws, resp, err = d.Dial("wss://"+addr+"/", nil)
	require.NoError(t, err)
	resp.Body.Close()
	defer ws.Close()
	echo(t, ws, "with a certificate")

	// The lws client, with and without one.
	c := tlsClientContext(t)
	base := cgo.LiveHandles()
	_, err = c.Dial(context.Background(), "wss://"+addr+"/", &DialOptions{TLS: &ClientTLS{CAFile: p.CA}, HandshakeTimeout: 5 * time.Second})
	require.Error(t, err)
	waitHandles(t, base, "after the refused dial")
	s := newClientSink()
	conn, err := c.Dial(context.Background(), "wss://"+addr+"/", &DialOptions{Handler: s.handler(), TLS: &ClientTLS{CAFile: p.CA, CertFile: p.ClientCert, KeyFile: p.ClientKey}})
	require.NoError(t, err)
	require.NoError(t, conn.SendText("mutual"))
	require.Equal(t, "mutual", string(waitFor(t, s.msgs, "echo").data))
	closeClient(t, conn, s)
}
