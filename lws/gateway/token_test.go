package gateway

import (
	"bytes"
	"encoding/json"
	"math"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// golangJWT is the token golang-jwt signs for the claims issueAt writes.
func golangJWT(t testing.TB, secret []byte, now time.Time, ttl time.Duration, user, rid string) string {
	claims := jwt.MapClaims{"sub": user, "iat": now.Unix(), "exp": now.Add(ttl).Unix()}
	if rid != "" {
		claims["rid"] = rid
	}
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString(secret)
	require.NoError(t, err)
	return s
}

// createTokenResponse is createtoken's answer as encoding/json would
// write it: what appendCreateToken is compared with.
type createTokenResponse struct {
	Code      int    `json:"code"`
	RequestID string `json:"RequestId,omitempty"`
	UserName  string `json:"UserName"`
	Token     string `json:"token"`
	ExpiresAt int64  `json:"expires_at"`
}

func checkIssue(t testing.TB, user, rid string) {
	tk := newTokens([]byte("test-secret"), time.Hour)
	now := time.Unix(1764000000, 0)
	got, exp, err := tk.issueAt(now, user, rid)
	require.NoError(t, err)
	require.Equal(t, now.Add(time.Hour), exp)
	require.Equal(t, golangJWT(t, tk.secret, now, time.Hour, user, rid), got, "user %q rid %q", user, rid)

	// createtoken's answer signs the same token into its own buffer,
	// after a prefix of the buffer's own (the token's start is not 0).
	resp := createTokenResponse{RequestID: rid, UserName: user, Token: got, ExpiresAt: exp.Unix()}
	want, err := json.Marshal(resp)
	require.NoError(t, err)
	req := createTokenRequest{UserName: user, RequestID: rid}
	require.Equal(t, string(want), string(appendCreateToken(nil, tk, now, req)))
	require.Equal(t, "prefix"+string(want), string(appendCreateToken([]byte("prefix"), tk, now, req)))
}

// TestIssueMatchesGolangJWT: the hand-written token is byte for byte the
// one golang-jwt signs, for subjects that need escaping too; and a fresh
// token verifies, twice in a row (the pooled HMAC is reset between uses).
func TestIssueMatchesGolangJWT(t *testing.T) {
	for _, c := range [][2]string{
		{"keda", "1614738418531"},
		{"keda", ""},
		{"", ""},
		{`qu"ote\back`, "a<b>&c"},
		{"tab\there\nnl\x00nul\x7fdel", "\u2028\u2029"},
		{"zoë 日本", "\xff\xfe invalid utf-8"},
	} {
		checkIssue(t, c[0], c[1])
	}
	tk := newTokens([]byte("test-secret"), time.Minute)
	a := gatewayTokenAuth(t, tk.secret)
	for range 2 {
		tok, _, err := tk.issue("keda", "1")
		require.NoError(t, err)
		id, refused := a.verify(tok)
		require.Nil(t, refused)
		require.Equal(t, "keda", id.Subject)
	}
}

// FuzzIssue: for any subject and request id, issueAt and appendCreateToken write
// what golang-jwt and encoding/json write.
func FuzzIssue(f *testing.F) {
	f.Add("keda", "1614738418531")
	f.Add(`"<&>\`, "\x00\xff")
	f.Fuzz(func(t *testing.T, user, rid string) {
		checkIssue(t, user, rid)
	})
}

// BenchmarkIssue is one createtoken's token.
func BenchmarkIssue(b *testing.B) {
	tk := newTokens([]byte("bench-secret-bench-secret-bench"), time.Hour)
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := tk.issue("keda", "1614738418531"); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkIssueGolangJWT is the same token through golang-jwt, as issue
// made it before: the baseline BenchmarkIssue is measured against.
func BenchmarkIssueGolangJWT(b *testing.B) {
	secret := []byte("bench-secret-bench-secret-bench")
	b.ReportAllocs()
	for b.Loop() {
		golangJWT(b, secret, time.Now(), time.Hour, "keda", "1614738418531")
	}
}

// TestReloadTokenTTLWhileIssuing: Reload changes the tokens' TTL while
// createtoken requests are being answered on the service goroutine (go
// test -race caught the plain field), and the new TTL is used after.
func TestReloadTokenTTLWhileIssuing(t *testing.T) {
	g := startGW(t, "tokens: {secret: test-secret, ttl: 1m}\n", nil)
	post := func() int64 {
		resp, err := http.Post("http://"+g.pub+"/v1/api/createtoken", "application/json", strings.NewReader(`{"UserName":"keda"}`))
		require.NoError(t, err)
		defer resp.Body.Close()
		var r struct {
			ExpiresAt int64 `json:"expires_at"`
		}
		require.NoError(t, json.NewDecoder(resp.Body).Decode(&r))
		return r.ExpiresAt - time.Now().Unix()
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range 50 {
			post()
		}
	}()
	for i := range 20 {
		cfg := g.cfg.Load().Clone()
		cfg.Tokens.TTL = Duration([]time.Duration{time.Minute, 2 * time.Hour}[i%2])
		require.NoError(t, g.Reload(cfg))
	}
	<-done
	// The last reload set 2h.
	assert.InDelta(t, 2*3600, post(), 5)
}

// gatewayTokenAuth is the authenticator of a listener that requires the
// gateway's own tokens, signed with secret.
func gatewayTokenAuth(t testing.TB, secret []byte) *authenticator {
	a, err := newAuthenticator(&AuthConfig{RequireToken: true, Leeway: Duration(defaultLeeway)}, secret)
	require.NoError(t, err)
	return a
}

// FuzzDecodeCreateToken: whatever body the hand-written reader of
// createtoken's common form accepts, a json.Decoder with
// DisallowUnknownFields (what createtoken used alone before) accepts too,
// with the same fields.
func FuzzDecodeCreateToken(f *testing.F) {
	for _, s := range []string{
		`{"UserName":"keda","RequestId":"1614738418531"}`,
		` { "RequestId" : "7" , "UserName" : "u" } ` + "\n",
		`{"UserName":"keda"}`, `{}`, `{"UserName":"a","UserName":"b"}`, `{"username":"x"}`,
		`{"UserName":"k\u00e9da"}`, `{"UserName":"a\"b"}`, `{"UserName":"a"} x`, `{"UserName":1}`,
		`{"UserName":"a",}`, `{"Other":"a"}`, `[]`, ``, `{"UserName":"é"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		quick, ok := quickCreateToken(b)
		var want createTokenRequest
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.DisallowUnknownFields()
		err := dec.Decode(&want)
		if ok && (err != nil || quick != want) {
			t.Fatalf("%q: quick read %+v, json.Decoder %+v, %v", b, quick, want, err)
		}
		got, gerr := decodeCreateToken(b)
		if got != want || (gerr == nil) != (err == nil) {
			t.Fatalf("%q: decodeCreateToken %+v, %v; json.Decoder %+v, %v", b, got, gerr, want, err)
		}
	})
}

// TestQuickCreateToken: the common bodies are read by hand, the rest left
// to json.Decoder.
func TestQuickCreateToken(t *testing.T) {
	for body, want := range map[string]bool{
		`{"UserName":"keda","RequestId":"1614738418531"}`: true,
		` {"RequestId":"7", "UserName":"u"}` + "\n":       true,
		`{}`:                              true,
		`{"username":"x"}`:                false,
		`{"UserName":"a","UserName":"b"}`: false,
		`{"UserName":"a\u00e9"}`:          false,
		`{"UserName":"a"} trailing`:       false,
	} {
		_, ok := quickCreateToken([]byte(body))
		assert.Equal(t, want, ok, body)
	}
}

// BenchmarkDecodeCreateToken: createtoken's body, read by hand and by
// json.Decoder.
func BenchmarkDecodeCreateToken(b *testing.B) {
	body := []byte(`{"UserName":"keda","RequestId":"1614738418531"}`)
	b.Run("quick", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := decodeCreateToken(body); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("json", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var req createTokenRequest
			dec := json.NewDecoder(bytes.NewReader(body))
			dec.DisallowUnknownFields()
			if err := dec.Decode(&req); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// TestCreateTokenAllocs: a keep-alive createtoken request costs the
// gateway and package lws at most three allocations (the ResponseWriter
// with its Request, the request's bytes with its body, the answer, in
// which the token is signed): issue 15's bound for an HTTP request. The
// client allocates nothing; AllocsPerRun counts the whole process, so the
// least of three windows is the bound.
func TestCreateTokenAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector's sync.Pool drops what the HMACs are pooled in")
	}
	g := startGW(t, "log: {level: warn}\ntokens: {secret: alloc-secret-alloc-secret-alloc}\n", &Options{Logger: newDiscard()})
	roundTrip := createTokenClient(t, g.pub)
	roundTrip() // the link's first request opens it
	allocs := math.Inf(1)
	for range 3 {
		allocs = min(allocs, testing.AllocsPerRun(200, roundTrip))
	}
	assert.LessOrEqual(t, allocs, 3.0, "allocations per createtoken request")
}
