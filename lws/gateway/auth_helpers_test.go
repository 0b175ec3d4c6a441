package gateway

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/gorilla/websocket"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/require"
)

// The auth tests' helpers: keys generated at test time, tokens signed
// with them, PEM files, a JWKS server the tests change, and a clock the
// key sets' rate limits read.

// idpKeys are private keys of an identity provider, made once per test
// binary (RSA keys take a while).
type idpKeys struct {
	rsa, rsa2 *rsa.PrivateKey
	ec, ec2   *ecdsa.PrivateKey
	ed        ed25519.PrivateKey
}

var (
	idpOnce sync.Once
	idp     idpKeys
)

func testIDPKeys(t testing.TB) *idpKeys {
	idpOnce.Do(func() {
		var err error
		idp.rsa, err = rsa.GenerateKey(rand.Reader, 2048)
		if err == nil {
			idp.rsa2, err = rsa.GenerateKey(rand.Reader, 2048)
		}
		if err == nil {
			idp.ec, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		}
		if err == nil {
			idp.ec2, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		}
		if err == nil {
			_, idp.ed, err = ed25519.GenerateKey(rand.Reader)
		}
		if err != nil {
			panic(err)
		}
	})
	return &idp
}

// pemFile writes pub as a PEM PUBLIC KEY file in dir and returns its path.
func pemFile(t testing.TB, dir, name string, pub any) string {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(pub)
	require.NoError(t, err)
	p := filepath.Join(dir, name)
	require.NoError(t, os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), 0o600))
	return p
}

// claimsFor are valid claims for sub from the test issuer to the test
// audience, expiring in an hour, with extra name, value pairs.
func claimsFor(sub string, extra ...any) jwt.MapClaims {
	c := jwt.MapClaims{"sub": sub, "iss": testIssuer, "aud": testAudience, "exp": time.Now().Add(time.Hour).Unix()}
	for i := 0; i+1 < len(extra); i += 2 {
		if extra[i+1] == nil {
			delete(c, extra[i].(string))
		} else {
			c[extra[i].(string)] = extra[i+1]
		}
	}
	return c
}

const (
	testIssuer   = "https://idp.test"
	testAudience = "chat-service"
)

// sign signs claims with method and key; kid "" leaves kid out.
func sign(t testing.TB, m jwt.SigningMethod, key any, kid string, c jwt.MapClaims) string {
	t.Helper()
	tok := jwt.NewWithClaims(m, c)
	if kid != "" {
		tok.Header["kid"] = kid
	}
	s, err := tok.SignedString(key)
	require.NoError(t, err)
	return s
}

// jwkOf is pub as a public JWK with kid.
func jwkOf(kid string, pub any) map[string]any {
	b64 := base64.RawURLEncoding.EncodeToString
	switch k := pub.(type) {
	case *rsa.PublicKey:
		return map[string]any{"kty": "RSA", "kid": kid, "use": "sig", "alg": "RS256", "n": b64(k.N.Bytes()), "e": b64(big.NewInt(int64(k.E)).Bytes())}
	case *ecdsa.PublicKey:
		raw, err := k.Bytes()
		if err != nil {
			panic(err)
		}
		return map[string]any{"kty": "EC", "kid": kid, "crv": "P-256", "x": b64(raw[1:33]), "y": b64(raw[33:])}
	case ed25519.PublicKey:
		return map[string]any{"kty": "OKP", "kid": kid, "crv": "Ed25519", "alg": "EdDSA", "x": b64(k)}
	}
	panic(fmt.Sprintf("jwkOf: a %T", pub))
}

// jwksServer serves a JSON Web Key Set the test changes, or fails.
type jwksServer struct {
	*httptest.Server
	mu   sync.Mutex
	keys []map[string]any
	down bool
	hits atomic.Int64
}

func newJWKSServer(t testing.TB, keys ...map[string]any) *jwksServer {
	s := &jwksServer{keys: keys}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.hits.Add(1)
		s.mu.Lock()
		down, doc := s.down, map[string]any{"keys": s.keys}
		s.mu.Unlock()
		if down {
			http.Error(w, "identity provider down", http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/jwk-set+json")
		_ = json.NewEncoder(w).Encode(doc)
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *jwksServer) set(keys ...map[string]any) {
	s.mu.Lock()
	s.keys = keys
	s.mu.Unlock()
}

func (s *jwksServer) setDown(down bool) {
	s.mu.Lock()
	s.down = down
	s.mu.Unlock()
}

// testClock is a clock the test moves (the key sets' rate limits).
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *testClock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// keySet returns the gateway's key set for url, its first fetch done, on
// a clock the test moves.
func (g *testGW) keySet(t testing.TB, url string) (*jwksSet, *testClock) {
	t.Helper()
	g.jwksMu.Lock()
	var s *jwksSet
	for k, v := range g.jwks {
		if k.url == url {
			s = v
		}
	}
	g.jwksMu.Unlock()
	require.NotNil(t, s, "no key set for %s", url)
	<-s.settled()
	clk := &testClock{t: time.Now()}
	s.mu.Lock()
	s.now = clk.Now
	s.mu.Unlock()
	return s, clk
}

// upgrade dials the gateway's first listener with hdr and subprotocols;
// on a refusal it returns the response (its body read into body).
func (g *testGW) upgrade(t testing.TB, path string, hdr http.Header, protocols ...string) (ws *websocket.Conn, resp *http.Response, body string) {
	t.Helper()
	d := websocket.Dialer{HandshakeTimeout: 5 * time.Second, Subprotocols: protocols}
	ws, resp, err := d.Dial("ws://"+g.pub+path, hdr)
	if err == nil {
		t.Cleanup(func() { ws.Close() })
		_ = ws.SetReadDeadline(time.Now().Add(20 * time.Second))
		return ws, resp, ""
	}
	require.NotNil(t, resp, "dial %s: %v", path, err)
	b := make([]byte, 4096)
	n, _ := resp.Body.Read(b)
	resp.Body.Close()
	return nil, resp, string(b[:n])
}

// bearer is an Authorization header for tok.
func bearer(tok string) http.Header { return http.Header{"Authorization": {"Bearer " + tok}} }

// counterValue is a counter's value.
func counterValue(c prometheus.Counter) float64 {
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		panic(err)
	}
	return m.GetCounter().GetValue()
}
