package lws

import (
	"bytes"
	"crypto/tls"
	"fmt"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/lwsgate/lwsgate/internal/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Certificates (internal/testutil's PKI), TLS servers and client links.

// newTestPKI makes a test PKI (testutil.PKI: a root and an intermediate
// CA, server, client, expired, wrong-name and self-signed certificates) in
// a directory of the test's.
func newTestPKI(t testing.TB) *testutil.PKI {
	t.Helper()
	p, err := testutil.NewPKI(t.TempDir())
	require.NoError(t, err)
	return p
}

// keyPair loads a certificate (chain) file and its key for a Go server or
// client.
func keyPair(t testing.TB, certFile, keyFile string) tls.Certificate {
	t.Helper()
	c, err := tls.LoadX509KeyPair(certFile, keyFile)
	require.NoError(t, err)
	return c
}

// startTLSServer runs a Context with one TLS listener serving the PKI's
// server chain.
func startTLSServer(t testing.TB, p *testutil.PKI, l Listener) (*Context, string) {
	t.Helper()
	l.TLS = &TLSFiles{CertFile: p.ServerChain, KeyFile: p.ServerKey}
	return startServer(t, l)
}

// tlsClientContext runs a Context without listeners, for Dial.
func tlsClientContext(t testing.TB) *Context {
	t.Helper()
	c, err := New(&Config{Logger: testLogger(t)})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, c.Close()) })
	return c
}

// dialWSS opens a gorilla client link to wss://addr/ trusting p's CA.
func dialWSS(t testing.TB, p *testutil.PKI, addr string) *websocket.Conn {
	t.Helper()
	d := websocket.Dialer{
		HandshakeTimeout: 5 * time.Second,
		TLSClientConfig:  &tls.Config{RootCAs: p.Pool()},
	}
	ws, resp, err := d.Dial("wss://"+addr+"/", nil)
	require.NoError(t, err)
	if resp != nil && resp.Body != nil {
		resp.Body.Close()
	}
	t.Cleanup(func() { ws.Close() })
	_ = ws.SetReadDeadline(time.Now().Add(hangTimeout))
	return ws
}

// wsMsg is one message a client Handler received.
type wsMsg struct {
	typ  MessageType
	data []byte
}

// clientSink is a Dial Handler that reports everything on channels.
type clientSink struct {
	opens  chan *Conn
	msgs   chan wsMsg
	pongs  chan []byte
	closes chan CloseError
}

func newClientSink() *clientSink {
	return &clientSink{
		opens:  make(chan *Conn, 16),
		msgs:   make(chan wsMsg, 256),
		pongs:  make(chan []byte, 1024),
		closes: make(chan CloseError, 16),
	}
}

func (s *clientSink) handler() Handler {
	return HandlerFuncs{
		Open: func(c *Conn) { s.opens <- c },
		Message: func(c *Conn, typ MessageType, data []byte) {
			s.msgs <- wsMsg{typ, append([]byte(nil), data...)}
		},
		Pong:  func(c *Conn, data []byte) { s.pongs <- append([]byte(nil), data...) },
		Close: func(c *Conn, ce CloseError) { s.closes <- ce },
	}
}

// lwsEchoSizes sends every size and type on an lws link whose peer echoes,
// and checks what comes back.
func lwsEchoSizes(t *testing.T, c *Conn, s *clientSink) {
	t.Helper()
	for _, n := range tlsEchoSizes {
		for _, typ := range []MessageType{BinaryMessage, TextMessage} {
			msg := sizedMsg(n)
			require.NoError(t, c.Send(typ, msg), "size %d", n)
			got := waitFor(t, s.msgs, fmt.Sprintf("echo of %d bytes", n))
			assert.Equal(t, typ, got.typ, "size %d", n)
			assert.True(t, bytes.Equal(msg, got.data), "size %d: echo differs (got %d bytes)", n, len(got.data))
		}
	}
}

// closeClient closes an lws link and waits for its OnClose.
func closeClient(t *testing.T, c *Conn, s *clientSink) CloseError {
	t.Helper()
	require.NoError(t, c.Close(StatusNormalClosure, "bye"))
	return waitFor(t, s.closes, "client OnClose")
}

// goTLSConfig is a Go server config serving certFile and keyFile.
func goTLSConfig(t testing.TB, p *testutil.PKI, certFile, keyFile string) *tls.Config {
	return &tls.Config{Certificates: []tls.Certificate{keyPair(t, certFile, keyFile)}}
}
