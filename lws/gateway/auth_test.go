package gateway

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// idpGateway runs a gateway whose first listener takes an identity
// provider's tokens, signed by keys in PEM files: an RSA key (kid r1), a
// P-256 key (e1) and an Ed25519 key (d1, and also for tokens without
// kid); extra is more of the listener's auth.
func idpGateway(t *testing.T, extra string) *testGW {
	k := testIDPKeys(t)
	dir := t.TempDir()
	rsaPEM := pemFile(t, dir, "rsa.pem", &k.rsa.PublicKey)
	return startGW(t, fmt.Sprintf(`
tokens: {secret: gateway-secret}
listeners:
  - addr: 127.0.0.1:0
    subprotocols: [lws-gate]
    auth:
      require_token: true
      issuer: %s
      audience: %s
      keys:
        - {file: %s, alg: RS256, kid: r1}
        - {file: %s, alg: ES256, kid: e1}
        - {file: %[5]s, alg: EdDSA, kid: d1}
        - {file: %[5]s, alg: EdDSA}
%[6]s`, testIssuer, testAudience, rsaPEM, pemFile(t, dir, "ec.pem", &k.ec.PublicKey), pemFile(t, dir, "ed.pem", k.ed.Public()), extra), nil)
}

// TestTokenAlgorithms: tokens signed with RS256, ES256 and EdDSA keys
// from PEM files open links whose user is the token's subject.
func TestTokenAlgorithms(t *testing.T) {
	k := testIDPKeys(t)
	g := idpGateway(t, "")
	for _, tc := range []struct {
		name string
		tok  string
	}{
		{"RS256", sign(t, jwt.SigningMethodRS256, k.rsa, "r1", claimsFor("ada"))},
		{"ES256", sign(t, jwt.SigningMethodES256, k.ec, "e1", claimsFor("ada"))},
		{"EdDSA", sign(t, jwt.SigningMethodEdDSA, k.ed, "d1", claimsFor("ada"))},
		{"EdDSA without kid", sign(t, jwt.SigningMethodEdDSA, k.ed, "", claimsFor("ada"))},
		{"aud a list holding ours", sign(t, jwt.SigningMethodRS256, k.rsa, "r1", claimsFor("ada", "aud", []string{"other", testAudience}))},
		{"expired within the leeway", sign(t, jwt.SigningMethodES256, k.ec, "e1", claimsFor("ada", "exp", time.Now().Add(-2*time.Second).Unix()))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ws, resp, body := g.upgrade(t, "/", bearer(tc.tok))
			require.NotNil(t, ws, "%d %s", resp.StatusCode, body)
			send(t, ws, `{"action":"info"}`)
			var info struct{ User string }
			require.NoError(t, json.Unmarshal([]byte(read(t, ws)), &info))
			assert.Equal(t, "ada", info.User)
		})
	}
}

// TestTokenRefusals: every token that must not open a link gets 401
// before any 101, with a WWW-Authenticate that says why in a fixed
// phrase, naming neither the token nor what was expected; and no link.
func TestTokenRefusals(t *testing.T) {
	k := testIDPKeys(t)
	g := idpGateway(t, "      channels_claim: channels\n")
	rsaPEM, err := x509PEM(&k.rsa.PublicKey)
	require.NoError(t, err)
	gatewayTok, _, err := newTokens([]byte("gateway-secret"), time.Hour).issue("ada", "")
	require.NoError(t, err)
	for _, tc := range []struct {
		name, tok, why string
	}{
		{"expired", sign(t, jwt.SigningMethodRS256, k.rsa, "r1", claimsFor("ada", "exp", time.Now().Add(-time.Minute).Unix())), "token expired"},
		{"not yet valid", sign(t, jwt.SigningMethodRS256, k.rsa, "r1", claimsFor("ada", "nbf", time.Now().Add(time.Minute).Unix())), "token not valid yet"},
		{"wrong issuer", sign(t, jwt.SigningMethodES256, k.ec, "e1", claimsFor("ada", "iss", "https://evil.test")), "issuer not accepted"},
		{"no issuer", sign(t, jwt.SigningMethodES256, k.ec, "e1", claimsFor("ada", "iss", nil)), "issuer not accepted"},
		{"wrong audience", sign(t, jwt.SigningMethodEdDSA, k.ed, "d1", claimsFor("ada", "aud", "another-service")), "audience not accepted"},
		{"no audience", sign(t, jwt.SigningMethodEdDSA, k.ed, "d1", claimsFor("ada", "aud", nil)), "audience not accepted"},
		{"no exp", sign(t, jwt.SigningMethodRS256, k.rsa, "r1", claimsFor("ada", "exp", nil)), "token has no expiry (exp)"},
		{"no subject", sign(t, jwt.SigningMethodRS256, k.rsa, "r1", claimsFor("ada", "sub", nil)), "token has no subject"},
		{"alg none", sign(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, "r1", claimsFor("ada")), "algorithm not accepted"},
		{"HS256 keyed with the RSA key's PEM", sign(t, jwt.SigningMethodHS256, rsaPEM, "r1", claimsFor("ada")), "algorithm not accepted"},
		{"HS256 keyed with the RSA key's PEM, no kid", sign(t, jwt.SigningMethodHS256, rsaPEM, "", claimsFor("ada")), "algorithm not accepted"},
		{"the gateway's own token (createtoken)", gatewayTok, "algorithm not accepted"},
		{"RS256 naming the P-256 key", sign(t, jwt.SigningMethodRS256, k.rsa, "e1", claimsFor("ada")), "algorithm does not match the signing key"},
		{"ES256 naming the RSA key", sign(t, jwt.SigningMethodES256, k.ec, "r1", claimsFor("ada")), "algorithm does not match the signing key"},
		{"RS256 without kid (no such key)", sign(t, jwt.SigningMethodRS256, k.rsa, "", claimsFor("ada")), "unknown signing key"},
		{"unknown kid", sign(t, jwt.SigningMethodRS256, k.rsa, "r9", claimsFor("ada")), "unknown signing key"},
		{"signed by another key", sign(t, jwt.SigningMethodRS256, k.rsa2, "r1", claimsFor("ada")), "signature invalid"},
		{"malformed", "a.b.c", "malformed token"},
		{"channels claim of the wrong type", sign(t, jwt.SigningMethodEdDSA, k.ed, "d1", claimsFor("ada", "channels", 5)), "channels claim is not a list of strings"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ws, resp, body := g.upgrade(t, "/", bearer(tc.tok))
			require.Nil(t, ws, "a link opened")
			assert.Equal(t, http.StatusUnauthorized, resp.StatusCode)
			www := resp.Header.Get("WWW-Authenticate")
			assert.Equal(t, `Bearer realm="lwsgate", error="invalid_token", error_description="`+tc.why+`"`, www)
			assert.Equal(t, "invalid token: "+tc.why+"\n", body)
			for _, secret := range []string{tc.tok, testIssuer, testAudience, "gateway-secret"} {
				assert.NotContains(t, www+body, secret)
			}
		})
	}
	// kid must be a string.
	tok := jwt.NewWithClaims(jwt.SigningMethodEdDSA, claimsFor("ada"))
	tok.Header["kid"] = 7
	s, err := tok.SignedString(k.ed)
	require.NoError(t, err)
	_, resp, _ := g.upgrade(t, "/", bearer(s))
	assert.Contains(t, resp.Header.Get("WWW-Authenticate"), `error_description="malformed token"`)

	// No token at all: a challenge without an error (RFC 6750 3.1).
	_, resp, _ = g.upgrade(t, "/", nil)
	assert.Equal(t, http.StatusUnauthorized, resp.StatusCode)
	assert.Equal(t, `Bearer realm="lwsgate"`, resp.Header.Get("WWW-Authenticate"))

	g.waitEmpty(t)
	assert.NotContains(t, g.logs.String(), "type=tcplisten", "a refused upgrade became a link")
	assert.Contains(t, g.logs.String(), `msg="upgrade refused"`)
}

// x509PEM is pub as the PEM a verifier confused about algorithms would
// use as an HMAC key.
func x509PEM(pub any) ([]byte, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), nil
}

// TestTokenInSubprotocol: a browser's way to send a token, which cannot
// set Authorization on a WebSocket: Sec-WebSocket-Protocol: lws-gate,
// bearer.TOKEN. The 101 names lws-gate, never the token.
func TestTokenInSubprotocol(t *testing.T) {
	k := testIDPKeys(t)
	g := idpGateway(t, "")
	tok := sign(t, jwt.SigningMethodRS256, k.rsa, "r1", claimsFor("ada"))
	ws, resp, body := g.upgrade(t, "/", nil, "lws-gate", tokenProtocolPrefix+tok)
	require.NotNil(t, ws, "%d %s", resp.StatusCode, body)
	assert.Equal(t, "lws-gate", ws.Subprotocol())
	assert.Equal(t, []string{"lws-gate"}, resp.Header.Values("Sec-WebSocket-Protocol"))
	send(t, ws, `{"action":"info"}`)
	assert.Contains(t, read(t, ws), `"user":"ada"`)

	// A bad token there is refused like any other.
	bad := sign(t, jwt.SigningMethodRS256, k.rsa2, "r1", claimsFor("ada"))
	ws, resp, _ = g.upgrade(t, "/", nil, "lws-gate", tokenProtocolPrefix+bad)
	require.Nil(t, ws)
	assert.Equal(t, http.StatusUnauthorized, resp.StatusCode)
	assert.NotContains(t, strings.Join(resp.Header.Values("Sec-WebSocket-Protocol"), ","), bad)
}

// TestChannelsClaim: a token's channels claim bounds what its link may
// subscribe and publish to; a refusal names the channel and the link
// stays open. The admin API acts for the operator and is not bound.
func TestChannelsClaim(t *testing.T) {
	k := testIDPKeys(t)
	g := idpGateway(t, "      channels_claim: https://lwsgate.test/channels\n")
	claim := "https://lwsgate.test/channels"
	ws, resp, body := g.upgrade(t, "/", bearer(sign(t, jwt.SigningMethodES256, k.ec, "e1", claimsFor("ada", claim, []string{"room:*", "news"}))))
	require.NotNil(t, ws, "%d %s", resp.StatusCode, body)
	sub, _, _ := g.upgrade(t, "/", bearer(sign(t, jwt.SigningMethodES256, k.ec, "e1", claimsFor("bob", claim, []string{"*"}))))
	require.NotNil(t, sub)

	for _, ch := range []string{"room:1", "news"} {
		send(t, ws, `{"action":"subscribe","channel":"`+ch+`"}`)
		assert.JSONEq(t, `{"type":"subscribed","channel":"`+ch+`"}`, read(t, ws))
	}
	for _, ch := range []string{"secret", "newsroom", "room"} {
		send(t, ws, `{"action":"subscribe","channel":"`+ch+`"}`)
		assert.JSONEq(t, `{"type":"error","error":"subscribe \"`+ch+`\": not allowed by your token","rule":"subscribe","channel":"`+ch+`"}`, read(t, ws))
	}
	send(t, sub, `{"action":"subscribe","channel":"secret"}`)
	assert.JSONEq(t, `{"type":"subscribed","channel":"secret"}`, read(t, sub))
	send(t, ws, `{"action":"publish","channel":"secret","data":"x"}`)
	assert.JSONEq(t, `{"type":"error","error":"publish \"secret\": not allowed by your token","rule":"publish","channel":"secret"}`, read(t, ws))

	// The link is still open and its allowed channels work.
	id := linkID(t, ws)
	send(t, sub, `{"action":"subscribe","channel":"room:1"}`)
	read(t, sub)
	send(t, ws, `{"action":"publish","channel":"room:1","data":"hi"}`)
	assert.JSONEq(t, `{"action":"publish","channel":"room:1","data":"hi"}`, read(t, sub))
	assert.JSONEq(t, `{"action":"publish","channel":"room:1","data":"hi"}`, read(t, ws))
	var info LinkInfo
	require.Equal(t, 200, g.api(t, "GET", fmt.Sprintf("/v1/api/links/%d", id), "", &info))
	assert.Equal(t, []string{"news", "room:1"}, info.Channels)
	assert.Equal(t, 3.0, counterValue(g.metrics.channelRefused.WithLabelValues("subscribe")))
	assert.Equal(t, 1.0, counterValue(g.metrics.channelRefused.WithLabelValues("publish")))

	// The operator may put the link anywhere.
	require.Equal(t, 200, g.api(t, "POST", fmt.Sprintf("/v1/api/links/%d/subscribe", id), `{"channel":"secret"}`, nil))
	require.Equal(t, 200, g.api(t, "GET", fmt.Sprintf("/v1/api/links/%d", id), "", &info))
	assert.Contains(t, info.Channels, "secret")

	// A token without the claim allows no channel.
	none, _, _ := g.upgrade(t, "/", bearer(sign(t, jwt.SigningMethodEdDSA, k.ed, "d1", claimsFor("cy"))))
	require.NotNil(t, none)
	send(t, none, `{"action":"subscribe","channel":"news"}`)
	assert.Contains(t, read(t, none), `"error":"subscribe \"news\": not allowed by your token"`)
}

// jwksGateway runs a gateway whose listener takes the tokens of the key
// set at url, fetched at most every 10s, and again when a minute old.
func jwksGateway(t *testing.T, url string) *testGW {
	return startGW(t, fmt.Sprintf(`
listeners:
  - addr: 127.0.0.1:0
    auth: {require_token: true, jwks_url: %q, jwks_min_interval: 10s, jwks_refresh: 1m}
`, url), nil)
}

// TestJWKSRotation: keys from a JWKS URL, cached by kid. A new kid has the
// set fetched again (503 with Retry-After meanwhile, then the link
// opens); a kid still unknown after a fetch is refused, and unknown kids
// fetch the set at most once per jwks_min_interval; a set older than
// jwks_refresh is fetched again, and the keys it no longer holds stop
// verifying.
func TestJWKSRotation(t *testing.T) {
	k := testIDPKeys(t)
	srv := newJWKSServer(t, jwkOf("a", &k.rsa.PublicKey))
	g := jwksGateway(t, srv.URL)
	set, clk := g.keySet(t, srv.URL)
	require.EqualValues(t, 1, srv.hits.Load(), "fetched when the gateway started")
	status := func(tok string) (int, *http.Response) {
		t.Helper()
		ws, resp, _ := g.upgrade(t, "/", bearer(tok))
		if ws != nil {
			ws.Close()
			return 101, resp
		}
		return resp.StatusCode, resp
	}
	tokA := sign(t, jwt.SigningMethodRS256, k.rsa, "a", claimsFor("ada"))
	tokB := sign(t, jwt.SigningMethodES256, k.ec, "b", claimsFor("ada"))
	tokC := sign(t, jwt.SigningMethodEdDSA, k.ed, "c", claimsFor("ada"))
	st, _ := status(tokA)
	require.Equal(t, 101, st)

	// The provider adds key b (a while after the last fetch): the first
	// token naming it has the set fetched again, and is told to retry.
	srv.set(jwkOf("a", &k.rsa.PublicKey), jwkOf("b", &k.ec.PublicKey))
	clk.Add(11 * time.Second)
	st, resp := status(tokB)
	require.Equal(t, http.StatusServiceUnavailable, st)
	assert.Equal(t, "1", resp.Header.Get("Retry-After"))
	<-set.settled()
	assert.EqualValues(t, 2, srv.hits.Load())
	st, _ = status(tokB)
	assert.Equal(t, 101, st)

	// Kid c is in no set: refused, and the set is not fetched again
	// before jwks_min_interval, however many tokens name unknown kids.
	for i := range 5 {
		st, resp = status(sign(t, jwt.SigningMethodEdDSA, k.ed, "c"+strconv.Itoa(i), claimsFor("ada")))
		assert.Equal(t, http.StatusUnauthorized, st)
		assert.Contains(t, resp.Header.Get("WWW-Authenticate"), "unknown signing key")
	}
	assert.EqualValues(t, 2, srv.hits.Load(), "fetched again within jwks_min_interval")
	// After it, one fetch; the kid still unknown is then refused.
	clk.Add(11 * time.Second)
	st, _ = status(tokC)
	assert.Equal(t, http.StatusServiceUnavailable, st)
	<-set.settled()
	assert.EqualValues(t, 3, srv.hits.Load())
	st, _ = status(tokC)
	assert.Equal(t, http.StatusUnauthorized, st)

	// The provider withdraws a: once the set is older than jwks_refresh a
	// token using it has it fetched in the background, and a's tokens
	// stop verifying.
	srv.set(jwkOf("b", &k.ec.PublicKey))
	clk.Add(61 * time.Second)
	st, _ = status(tokB)
	assert.Equal(t, 101, st, "a known key while the set is refreshed")
	<-set.settled()
	assert.EqualValues(t, 4, srv.hits.Load())
	st, resp = status(tokA)
	assert.Equal(t, http.StatusUnauthorized, st)
	assert.Contains(t, resp.Header.Get("WWW-Authenticate"), "unknown signing key")
	assert.Equal(t, 4.0, counterValue(g.metrics.jwksFetches.WithLabelValues(srv.URL, "ok")))

	// A reload keeps the set (and its keys): no fetch.
	require.NoError(t, g.Reload(g.Config()))
	st, _ = status(tokB)
	assert.Equal(t, 101, st)
	assert.EqualValues(t, 4, srv.hits.Load())
}

// TestJWKSDown: a key set endpoint that fails never locks out the keys
// already known: they keep verifying, a new kid is refused, the failure
// is logged and counted; with no key ever fetched, upgrades get 503 with
// Retry-After.
func TestJWKSDown(t *testing.T) {
	k := testIDPKeys(t)
	srv := newJWKSServer(t, jwkOf("a", &k.rsa.PublicKey))
	g := jwksGateway(t, srv.URL)
	set, clk := g.keySet(t, srv.URL)
	tokA := sign(t, jwt.SigningMethodRS256, k.rsa, "a", claimsFor("ada"))
	tokB := sign(t, jwt.SigningMethodES256, k.ec, "b", claimsFor("ada"))
	opens := func(tok string) bool {
		ws, _, _ := g.upgrade(t, "/", bearer(tok))
		if ws != nil {
			ws.Close()
		}
		return ws != nil
	}
	require.True(t, opens(tokA))

	for i, fail := range []func(){
		func() { srv.setDown(true) },  // 500
		func() { srv.set() },          // a set without keys
		func() { srv.Server.Close() }, // nothing listens
	} {
		fail()
		clk.Add(11 * time.Second)
		_, resp, _ := g.upgrade(t, "/", bearer(tokB))
		require.Equal(t, http.StatusServiceUnavailable, resp.StatusCode, "failure %d", i)
		<-set.settled()
		assert.Equal(t, float64(i+1), counterValue(g.metrics.jwksFetches.WithLabelValues(srv.URL, "error")))
		assert.True(t, opens(tokA), "failure %d: a known key locked out", i)
		_, resp, _ = g.upgrade(t, "/", bearer(tokB))
		assert.Equal(t, http.StatusUnauthorized, resp.StatusCode, "failure %d", i)
	}
	assert.Contains(t, g.logs.String(), `msg="jwks fetch failed; the keys known are kept"`)
	assert.Contains(t, g.logs.String(), "keys_kept=1")

	// A gateway whose provider was down from the start has no key: it
	// says so with 503 and when to retry, not 401.
	g2 := jwksGateway(t, srv.URL)
	g2.keySet(t, srv.URL)
	_, resp, body := g2.upgrade(t, "/", bearer(tokA))
	assert.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)
	assert.Equal(t, "signing keys not available: retry later\n", body)
	retry, err := strconv.Atoi(resp.Header.Get("Retry-After"))
	require.NoError(t, err)
	assert.True(t, retry >= 1 && retry <= 10, "Retry-After %d", retry)
}

// TestAuthReload: a reload applies new keys (a rotated PEM file) to new
// upgrades.
func TestAuthReload(t *testing.T) {
	k := testIDPKeys(t)
	g := idpGateway(t, "")
	tok := sign(t, jwt.SigningMethodES256, k.ec, "e1", claimsFor("ada"))
	tok2 := sign(t, jwt.SigningMethodES256, k.ec2, "e1", claimsFor("ada"))
	ws, _, _ := g.upgrade(t, "/", bearer(tok))
	require.NotNil(t, ws)
	cfg := g.Config()
	cfg.Listeners[0].Auth.Keys[1].File = pemFile(t, t.TempDir(), "ec2.pem", &k.ec2.PublicKey)
	require.NoError(t, g.Reload(cfg))
	w, resp, _ := g.upgrade(t, "/", bearer(tok))
	assert.Nil(t, w)
	assert.Equal(t, http.StatusUnauthorized, resp.StatusCode)
	w, _, _ = g.upgrade(t, "/", bearer(tok2))
	assert.NotNil(t, w)
	// The link opened before keeps going.
	send(t, ws, "still here")
	assert.Equal(t, "still here", read(t, ws))
}

// TestParseJWKS: the key set parser takes the RSA, P-256 and Ed25519
// signing keys of a set, each pinned to its algorithm, and sets aside,
// with why, every key it cannot use rather than fail the set.
func TestParseJWKS(t *testing.T) {
	k := testIDPKeys(t)
	with := func(j map[string]any, kv ...any) map[string]any {
		out := map[string]any{}
		for n, v := range j {
			out[n] = v
		}
		for i := 0; i+1 < len(kv); i += 2 {
			out[kv[i].(string)] = kv[i+1]
		}
		return out
	}
	small, err := rsa.GenerateKey(rand.Reader, 1024)
	require.NoError(t, err)
	r, e, d := jwkOf("r", &k.rsa.PublicKey), jwkOf("e", &k.ec.PublicKey), jwkOf("d", k.ed.Public())
	doc := map[string]any{"keys": []any{
		r, e, d,
		with(r, "kid", "rsa-as-es", "alg", "ES256"),
		with(r, "kid", "rs512", "alg", "RS512"),
		with(e, "kid", "p384", "crv", "P-384"),
		with(e, "kid", "off-curve", "y", e["x"]),
		with(d, "kid", "private", "d", d["x"]),
		with(d, "kid", "padded", "x", d["x"].(string)+"="),
		with(d, "kid", "short", "x", "AAAA"),
		with(r, "kid", "enc", "use", "enc"),
		jwkOf("small", &small.PublicKey),
		map[string]any{"kty": "oct", "kid": "hmac", "k": "c2VjcmV0"},
		with(d, "kid", ""),
		with(e, "kid", "twice"), with(d, "kid", "twice"),
		with(r, "kid", "sig-and-enc", "use", "enc"), with(e, "kid", "sig-and-enc"),
	}}
	raw, err := json.Marshal(doc)
	require.NoError(t, err)
	ks, err := parseJWKS(raw)
	require.NoError(t, err)
	algs := map[string]string{}
	for kid, key := range ks.keys {
		algs[kid] = key.alg
	}
	assert.Equal(t, map[string]string{"r": "RS256", "e": "ES256", "d": "EdDSA", "sig-and-enc": "ES256"}, algs)
	assert.Equal(t, map[string]string{
		"rsa-as-es": `alg "ES256": this gateway verifies RSA keys with RS256 only`,
		"rs512":     `alg "RS512": this gateway verifies RSA keys with RS256 only`,
		"p384":      `crv "P-384": only P-256`,
		"off-curve": "x, y: P256 point not on curve",
		"private":   "a private key (d): never taken from a key set",
		"padded":    "x: not base64url without padding",
		"short":     "x: 3 bytes, want 32",
		"enc":       `use "enc", not sig`,
		"small":     "an RSA key of 1024 bits; at least 2048",
		"hmac":      `kty "oct": want RSA, EC or OKP`,
		"keys[13]":  "no kid",
		"twice":     "kid used by two signing keys",
	}, ks.unusable)

	for _, bad := range []string{`[]`, `{"keys": 1}`, `{}`, `{"keys":[1]}`, `not json`} {
		_, err := parseJWKS([]byte(bad))
		assert.Error(t, err, bad)
	}
}

// FuzzParseJWKS: the key set parser, which reads what a network peer
// sends, never panics, and every key it takes is one its algorithm
// verifies with.
func FuzzParseJWKS(f *testing.F) {
	k := testIDPKeys(f)
	good, _ := json.Marshal(map[string]any{"keys": []any{jwkOf("r", &k.rsa.PublicKey), jwkOf("e", &k.ec.PublicKey), jwkOf("d", k.ed.Public())}})
	f.Add(good)
	f.Add([]byte(`{"keys":[{"kty":"EC","kid":"x","crv":"P-256","x":"","y":""}]}`))
	f.Add([]byte(`{"keys":[{"kty":"RSA","kid":"x","n":"AQ","e":"AQAB"}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		ks, err := parseJWKS(data)
		if err != nil {
			return
		}
		for kid, key := range ks.keys {
			if err := keyFitsAlg(key.key, key.alg); err != nil || key.kid != kid {
				t.Fatalf("key %q taken: %v", kid, err)
			}
		}
	})
}
