package main

import (
	"crypto/tls"
	"crypto/x509"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/require"

	"github.com/lwsgate/lwsgate/internal/testutil"
)

// selfSigned writes a self-signed certificate for 127.0.0.1 and its key
// into a temporary directory (no keys in git) and returns the paths, a pool
// that trusts it and the pair for Go servers.
func selfSigned(t *testing.T) (certFile, keyFile string, pool *x509.CertPool, pair tls.Certificate) {
	t.Helper()
	c, err := testutil.SelfSigned(t.TempDir())
	require.NoError(t, err)
	return c.CertFile, c.KeyFile, c.Pool, c.Pair
}

// wss on the listener, and a wss upstream verified with -upstream-ca.
func TestTLSListenerAndUpstream(t *testing.T) {
	certFile, keyFile, pool, pair := selfSigned(t)

	up := websocket.Upgrader{}
	backend := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
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
			_ = ws.WriteMessage(mt, append([]byte("tls-up:"), p...))
		}
	}))
	backend.TLS = &tls.Config{Certificates: []tls.Certificate{pair}}
	backend.StartTLS()
	defer backend.Close()

	addr, _ := startGateway(t, "-tls-cert", certFile, "-tls-key", keyFile,
		"-upstream", "wss"+strings.TrimPrefix(backend.URL, "https"), "-upstream-ca", certFile)

	d := websocket.Dialer{HandshakeTimeout: 5 * time.Second, TLSClientConfig: &tls.Config{RootCAs: pool}}
	ws, resp, err := d.Dial("wss://"+addr+"/", nil)
	require.NoError(t, err)
	resp.Body.Close()
	defer ws.Close()
	_ = ws.SetReadDeadline(time.Now().Add(10 * time.Second))
	require.NoError(t, ws.WriteMessage(websocket.TextMessage, []byte("hello")))
	_, p, err := ws.ReadMessage()
	require.NoError(t, err)
	require.Equal(t, "tls-up:hello", string(p))

	// A clean close: the gateway closes the upstream link with the same code.
	require.NoError(t, ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(1000, ""), time.Now().Add(time.Second)))
	_, _, err = ws.ReadMessage()
	require.True(t, websocket.IsCloseError(err, 1000), "%v", err)

	// https on the same port
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}, Timeout: 10 * time.Second}
	r, err := hc.Get("https://" + addr + "/healthz")
	require.NoError(t, err)
	r.Body.Close()
	require.Equal(t, http.StatusOK, r.StatusCode)
}

func TestTLSBadFiles(t *testing.T) {
	certFile, _, _, _ := selfSigned(t)
	var stderr strings.Builder
	code := run(t.Context(), []string{"-listen", "127.0.0.1:0", "-tls-cert", certFile, "-tls-key", "/nonexistent/key.pem"}, os.Stderr, &stderr, nil)
	require.Equal(t, 2, code, "a bad config is a usage error")
	require.Contains(t, stderr.String(), "listeners[0].tls.key")
	require.Contains(t, stderr.String(), "/nonexistent/key.pem")
}
