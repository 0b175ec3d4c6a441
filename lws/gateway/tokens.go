package gateway

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"hash"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
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
	exp := t.expiry(now)
	return string(t.appendToken(nil, now, exp, user, requestID)), exp, nil
}

// expiry is when a token issued at now expires.
func (t *tokens) expiry(now time.Time) time.Time {
	return now.Add(time.Duration(t.ttl.Load()))
}

// appendToken appends the token for user issued at iat and expiring at
// exp to b: base64url and dots, nothing a JSON string must escape.
// createtoken writes it straight into its answer.
func (t *tokens) appendToken(b []byte, iat, exp time.Time, user, requestID string) []byte {
	// The claims in encoding/json's order for a map: sorted keys.
	var cb [256]byte
	claims := append(cb[:0], `{"exp":`...)
	claims = strconv.AppendInt(claims, exp.Unix(), 10)
	claims = append(claims, `,"iat":`...)
	claims = strconv.AppendInt(claims, iat.Unix(), 10)
	if requestID != "" {
		claims = append(claims, `,"rid":`...)
		claims = appendJSONString(claims, requestID)
	}
	claims = append(claims, `,"sub":`...)
	claims = appendJSONString(claims, user)
	claims = append(claims, '}')

	enc := base64.RawURLEncoding
	sigLen := 1 + enc.EncodedLen(sha256.Size) // '.' and the signature
	start := len(b)
	b = slices.Grow(b, len(jwtHeaderHS256)+1+enc.EncodedLen(len(claims))+sigLen+sha256.Size)
	b = append(b, jwtHeaderHS256...)
	b = append(b, '.')
	b = enc.AppendEncode(b, claims)
	mac, _ := t.macs.Get().(hash.Hash)
	if mac == nil {
		mac = hmac.New(sha256.New, t.secret)
	}
	mac.Reset()
	mac.Write(b[start:])
	// The raw signature goes to the spare capacity past where its
	// encoding will be: a buffer of its own would escape to the heap
	// through the hash.Hash interface.
	n := len(b)
	sig := mac.Sum(b[n+sigLen : n+sigLen])
	t.macs.Put(mac)
	b = b[:n+sigLen]
	b[n] = '.'
	enc.Encode(b[n+1:], sig)
	return b
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
