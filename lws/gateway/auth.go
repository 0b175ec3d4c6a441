package gateway

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/lwsgate/lwsgate/lws"
)

// tokens issues and checks HS256 JWTs. Every method is safe from any
// goroutine: Reload sets ttl while createtoken issues.
type tokens struct {
	secret []byte
	ttl    atomic.Int64 // time.Duration; Reload changes it
	macs   sync.Pool    // hash.Hash: HMAC-SHA256 keyed with secret
}

func newTokens(secret []byte, ttl time.Duration) *tokens {
	t := &tokens{secret: secret}
	t.ttl.Store(int64(ttl))
	return t
}

// jwtHeaderHS256 is the first segment of every token issued: base64url of
// {"alg":"HS256","typ":"JWT"}, as golang-jwt writes it.
var jwtHeaderHS256 = base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"HS256","typ":"JWT"}`))

// issue returns a token for user and its expiry.
//
// It writes the token itself rather than through golang-jwt, which
// marshals a claims map by reflection and sets up HMAC afresh each time:
// that was a quarter of lwsgate's CPU per createtoken request. The bytes
// are the same as golang-jwt's SignedString for the same claims
// (TestIssueMatchesGolangJWT, FuzzIssue); verify still uses golang-jwt.
func (t *tokens) issue(user, requestID string) (string, time.Time, error) {
	return t.issueAt(time.Now(), user, requestID)
}

func (t *tokens) issueAt(now time.Time, user, requestID string) (string, time.Time, error) {
	exp := now.Add(time.Duration(t.ttl.Load()))
	// The claims in encoding/json's order for a map: sorted keys.
	var cb [256]byte
	claims := append(cb[:0], `{"exp":`...)
	claims = strconv.AppendInt(claims, exp.Unix(), 10)
	claims = append(claims, `,"iat":`...)
	claims = strconv.AppendInt(claims, now.Unix(), 10)
	if requestID != "" {
		claims = append(claims, `,"rid":`...)
		claims = appendJSONString(claims, requestID)
	}
	claims = append(claims, `,"sub":`...)
	claims = appendJSONString(claims, user)
	claims = append(claims, '}')

	enc := base64.RawURLEncoding
	out := make([]byte, 0, len(jwtHeaderHS256)+2+enc.EncodedLen(len(claims))+enc.EncodedLen(sha256.Size))
	out = append(out, jwtHeaderHS256...)
	out = append(out, '.')
	out = enc.AppendEncode(out, claims)
	mac, _ := t.macs.Get().(hash.Hash)
	if mac == nil {
		mac = hmac.New(sha256.New, t.secret)
	}
	mac.Reset()
	mac.Write(out)
	var sum [sha256.Size]byte
	sig := mac.Sum(sum[:0])
	t.macs.Put(mac)
	out = append(out, '.')
	out = enc.AppendEncode(out, sig)
	return string(out), exp, nil
}

// appendJSONString appends s as encoding/json writes a string: printable
// ASCII as it is, and anything else (quotes, backslashes, control bytes,
// HTML's <, > and &, non-ASCII, invalid UTF-8) the way json.Marshal does.
func appendJSONString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			q, _ := json.Marshal(s) // a string always marshals
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

// verify returns the token's subject. It accepts only HS256 with our
// secret, and requires exp.
func (t *tokens) verify(tok string) (string, error) {
	parsed, err := jwt.Parse(tok, func(*jwt.Token) (any, error) { return t.secret, nil },
		jwt.WithValidMethods([]string{"HS256"}), jwt.WithExpirationRequired(), jwt.WithLeeway(5*time.Second))
	if err != nil {
		return "", err
	}
	sub, err := parsed.Claims.GetSubject()
	if err != nil || sub == "" {
		return "", errors.New("token has no subject")
	}
	return sub, nil
}

// tokenFrom returns the token of an upgrade request: "Authorization:
// Bearer T" or the query argument token=T.
func tokenFrom(r *lws.Request) string {
	if h := r.Header.Get("Authorization"); h != "" {
		if s, ok := strings.CutPrefix(h, "Bearer "); ok {
			return strings.TrimSpace(s)
		}
	}
	return r.Query().Get("token")
}

// upgradeError is why an upgrade is refused: an HTTP status and a message.
type upgradeError struct {
	status int
	msg    string
}

func (e *upgradeError) Error() string { return fmt.Sprintf("%d %s", e.status, e.msg) }

// checkUpgrade applies a listener's auth to an upgrade request and returns
// the user (the token's subject) or why it is refused (401 without a valid
// token, 403 for an Origin not allowed).
func checkUpgrade(a *AuthConfig, t *tokens, r *lws.Request) (string, *upgradeError) {
	if len(a.Origins) > 0 {
		origin := r.Header.Get("Origin")
		ok := false
		for _, o := range a.Origins {
			if o == "*" || strings.EqualFold(strings.TrimSuffix(o, "/"), origin) {
				ok = true
				break
			}
		}
		if !ok {
			return "", &upgradeError{403, fmt.Sprintf("origin %q not allowed", origin)}
		}
	}
	if !a.RequireToken {
		return "", nil
	}
	tok := tokenFrom(r)
	if tok == "" {
		return "", &upgradeError{401, "token required (Authorization: Bearer or ?token=)"}
	}
	user, err := t.verify(tok)
	if err != nil {
		return "", &upgradeError{401, "invalid token: " + err.Error()}
	}
	return user, nil
}
