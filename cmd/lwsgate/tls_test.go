package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/require"
)

// selfSigned writes a self-signed certificate for 127.0.0.1 and its key
// into a temporary directory (no keys in git) and returns the paths and a
// pool that trusts it.
func selfSigned(t *testing.T) (certFile, keyFile string, pool *x509.CertPool, pair tls.Certificate) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "lwsgate test"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IPAddresses:           []net.IP{net.ParseIP("127.0.0.1")},
		DNSNames:              []string{"localhost"},
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	kder, err := x509.MarshalECPrivateKey(key)
	require.NoError(t, err)
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	cpem := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	kpem := pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder})
	require.NoError(t, os.WriteFile(certFile, cpem, 0o600))
	require.NoError(t, os.WriteFile(keyFile, kpem, 0o600))
	pool = x509.NewCertPool()
	require.True(t, pool.AppendCertsFromPEM(cpem))
	pair, err = tls.X509KeyPair(cpem, kpem)
	require.NoError(t, err)
	return certFile, keyFile, pool, pair
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
	require.Equal(t, 1, code)
	require.Contains(t, stderr.String(), "TLS.KeyFile")
	require.Contains(t, stderr.String(), "/nonexistent/key.pem")
}
