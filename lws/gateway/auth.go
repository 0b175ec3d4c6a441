package gateway

import (
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/golang-jwt/jwt/v5"

	"github.com/lwsgate/lwsgate/lws"
)

// Identity is what a verified token says of a link's user: its subject
// (the link's user), the channels it may use and all its claims.
//
// An Identity is a value once made: it is never changed, and safe to read
// from any goroutine.
type Identity struct {
	Subject string
	// Channels are the patterns of the listener's auth.channels_claim:
	// channel names, or prefixes ending in '*'. Restricted says whether
	// they apply: false when the listener reads no channels claim, and
	// then any channel is allowed.
	Channels   []string
	Restricted bool
	// Claims are the token's claims as JSON decodes them.
	Claims map[string]any
}

// AllowsChannel reports whether the identity may subscribe and publish to
// ch. A nil Identity (a listener without require_token) may use any.
func (id *Identity) AllowsChannel(ch string) bool {
	if id == nil || !id.Restricted {
		return true
	}
	for _, p := range id.Channels {
		if prefix, ok := strings.CutSuffix(p, "*"); ok {
			if strings.HasPrefix(ch, prefix) {
				return true
			}
		} else if p == ch {
			return true
		}
	}
	return false
}

// tokenProtocolPrefix marks the Sec-WebSocket-Protocol entry that carries a
// token: a browser, which cannot set Authorization on a WebSocket, offers
// ["lws-gate", "bearer.TOKEN"], and the 101 names lws-gate.
const tokenProtocolPrefix = "bearer."

// tokenFrom returns the token of an upgrade request, from the first of:
// "Authorization: Bearer T", a Sec-WebSocket-Protocol entry "bearer.T",
// the query argument token=T.
func tokenFrom(r *lws.Request) string {
	if h := r.Header().Get("Authorization"); len(h) > 7 && strings.EqualFold(h[:7], "Bearer ") {
		return strings.TrimSpace(h[7:])
	}
	for _, v := range r.Header().Values("Sec-Websocket-Protocol") {
		for p := range strings.SplitSeq(v, ",") {
			if tok, ok := strings.CutPrefix(strings.TrimSpace(p), tokenProtocolPrefix); ok {
				return tok
			}
		}
	}
	return r.Query().Get("token")
}

// authError is why an upgrade is refused: an HTTP status, a message that
// is the body and the log's "why", and headers (WWW-Authenticate,
// Retry-After). It never holds the token nor a key.
type authError struct {
	status int
	msg    string
	header http.Header
}

func (e *authError) Error() string { return fmt.Sprintf("%d %s", e.status, e.msg) }

// httpError is e as the binding sends it.
func (e *authError) httpError() *lws.HTTPError {
	return &lws.HTTPError{Status: e.status, Message: e.msg, Header: e.header}
}

// tokenRefused is a 401 for a token that does not verify, with RFC 6750's
// challenge. desc is one of the fixed phrases of verify: what a client may
// learn of why, and nothing of the keys or the expected values.
func tokenRefused(desc string) *authError {
	return &authError{http.StatusUnauthorized, "invalid token: " + desc, http.Header{
		"Www-Authenticate": {`Bearer realm="lwsgate", error="invalid_token", error_description="` + desc + `"`},
	}}
}

// authenticator is one listener's auth, compiled from its AuthConfig at
// New and Reload: the Origin allow-list and what verifies its tokens.
//
// Concurrency: read-only once made (Reload swaps in new ones), but for
// its JWKS set, which guards itself; safe from any goroutine.
type authenticator struct {
	origins []string
	require bool
	// secret verifies the gateway's own tokens (HS256); nil on a listener
	// with keys or a JWKS, which takes none of them.
	secret []byte
	kids   map[string]*verifyKey // auth.keys with a kid
	noKid  map[string]*verifyKey // auth.keys without, by alg
	jwks   *jwksSet              // nil without jwks_url
	algs   []string              // the algorithms the listener accepts
	parser *jwt.Parser
	claim  string // auth.channels_claim
	iss    string
	aud    string
}

// verifyKey is a public key (or the HS256 secret) and the one algorithm
// it verifies.
type verifyKey struct {
	kid, alg string
	key      any // *rsa.PublicKey, *ecdsa.PublicKey, ed25519.PublicKey, []byte
}

// newAuthenticator compiles a checked AuthConfig; secret is tokens.secret.
// The caller sets jwks for a jwks_url.
func newAuthenticator(a *AuthConfig, secret []byte) (*authenticator, error) {
	au := &authenticator{
		origins: a.Origins, require: a.RequireToken,
		kids: map[string]*verifyKey{}, noKid: map[string]*verifyKey{},
		claim: a.ChannelsClaim, iss: a.Issuer, aud: a.Audience,
	}
	for _, kc := range a.Keys {
		k, err := loadKey(kc)
		if err != nil {
			return nil, err
		}
		if k.kid == "" {
			au.noKid[k.alg] = k
		} else {
			au.kids[k.kid] = k
		}
		if !slices.Contains(au.algs, k.alg) {
			au.algs = append(au.algs, k.alg)
		}
	}
	switch {
	case a.JWKSURL != "":
		au.algs = []string{algRS256, algES256, algEdDSA}
	case len(a.Keys) == 0:
		au.secret, au.algs = secret, []string{algHS256}
	}
	opts := []jwt.ParserOption{jwt.WithValidMethods(au.algs), jwt.WithExpirationRequired(), jwt.WithLeeway(a.Leeway.D())}
	if a.Issuer != "" {
		opts = append(opts, jwt.WithIssuer(a.Issuer))
	}
	if a.Audience != "" {
		opts = append(opts, jwt.WithAudience(a.Audience))
	}
	au.parser = jwt.NewParser(opts...)
	return au, nil
}

// check applies the listener's auth to an upgrade request: the Origin
// allow-list (403), then, when the listener requires a token, the token
// (401, or 503 while the keys to check it are being fetched). It returns
// the identity the token proves, nil without require_token. It is the one
// place an upgrade's token is verified; it runs on the service goroutine
// and never blocks.
func (a *authenticator) check(r *lws.Request) (*Identity, *authError) {
	if len(a.origins) > 0 {
		origin := r.Header().Get("Origin")
		ok := false
		for _, o := range a.origins {
			if o == "*" || strings.EqualFold(strings.TrimSuffix(o, "/"), origin) {
				ok = true
				break
			}
		}
		if !ok {
			return nil, &authError{status: http.StatusForbidden, msg: fmt.Sprintf("origin %q not allowed", origin)}
		}
	}
	if !a.require {
		return nil, nil
	}
	tok := tokenFrom(r)
	if tok == "" {
		return nil, &authError{http.StatusUnauthorized, "token required (Authorization: Bearer, Sec-WebSocket-Protocol bearer.TOKEN, or ?token=)",
			http.Header{"Www-Authenticate": {`Bearer realm="lwsgate"`}}}
	}
	return a.verify(tok)
}

// Why a key for a token could not be had (keyFor).
var (
	errUnknownKey   = errors.New("unknown signing key")
	errUnusableKey  = errors.New("signing key of an unsupported type")
	errAlgMismatch  = errors.New("algorithm does not match the signing key")
	errBadKid       = errors.New("kid is not a string")
	errKeysPending  = errors.New("signing keys being fetched")
	errKeysNotKnown = errors.New("signing keys not available")
)

// The algorithms the gateway verifies.
const (
	algHS256 = "HS256"
	algRS256 = "RS256"
	algES256 = "ES256"
	algEdDSA = "EdDSA"
)

// verify checks a token's signature with the key its header names (the
// key's own algorithm, never the token's choice of one), then exp
// (required), nbf, iss and aud, and returns its identity.
func (a *authenticator) verify(tok string) (*Identity, *authError) {
	claims := jwt.MapClaims{}
	t, err := a.parser.ParseWithClaims(tok, claims, a.keyFor)
	if err != nil {
		return nil, a.refusal(t, claims, err)
	}
	sub, err := claims.GetSubject()
	if err != nil || sub == "" {
		return nil, tokenRefused("token has no subject")
	}
	id := &Identity{Subject: sub, Claims: claims}
	if a.claim != "" {
		id.Restricted = true
		switch v := claims[a.claim].(type) {
		case nil:
		case string:
			id.Channels = []string{v}
		case []any:
			for _, e := range v {
				s, ok := e.(string)
				if !ok {
					return nil, tokenRefused("channels claim is not a list of strings")
				}
				id.Channels = append(id.Channels, s)
			}
		default:
			return nil, tokenRefused("channels claim is not a list of strings")
		}
	}
	return id, nil
}

// keyFor is verify's jwt.Keyfunc: the key the token's kid names (a
// configured key, else the JWKS's, fetched again for a kid it lacks), or
// for a token without kid the HS256 secret or the configured key without
// kid of the token's algorithm. The key's algorithm must be the token's.
func (a *authenticator) keyFor(t *jwt.Token) (any, error) {
	alg := t.Method.Alg()
	var kid string
	if v, ok := t.Header["kid"]; ok {
		s, isStr := v.(string)
		if !isStr || s == "" {
			return nil, errBadKid
		}
		kid = s
	}
	var k *verifyKey
	switch {
	case kid != "":
		k = a.kids[kid]
		if k == nil && a.jwks != nil {
			var err error
			if k, err = a.jwks.key(kid); err != nil {
				return nil, err
			}
		}
	case a.secret != nil:
		k = &verifyKey{alg: algHS256, key: a.secret}
	default:
		k = a.noKid[alg]
	}
	switch {
	case k == nil:
		return nil, errUnknownKey
	case k.alg != alg:
		return nil, errAlgMismatch
	}
	return k.key, nil
}

// refusal says why a token did not verify, in fixed phrases.
func (a *authenticator) refusal(t *jwt.Token, claims jwt.MapClaims, err error) *authError {
	var why string
	switch {
	case errors.Is(err, errKeysPending), errors.Is(err, errKeysNotKnown):
		e := &authError{http.StatusServiceUnavailable, "signing keys are being fetched: retry", http.Header{}}
		retry := 1
		if errors.Is(err, errKeysNotKnown) {
			e.msg = "signing keys not available: retry later"
			retry = max(1, int(a.jwks.untilFetch().Seconds()+0.999))
		}
		e.header.Set("Retry-After", strconv.Itoa(retry))
		return e
	case errors.Is(err, jwt.ErrTokenMalformed), errors.Is(err, errBadKid):
		why = "malformed token"
	case t == nil || t.Method == nil || !slices.Contains(a.algs, t.Method.Alg()):
		why = "algorithm not accepted"
	case errors.Is(err, errUnknownKey):
		why = "unknown signing key"
	case errors.Is(err, errUnusableKey):
		why = "signing key of an unsupported type"
	case errors.Is(err, errAlgMismatch):
		why = "algorithm does not match the signing key"
	case errors.Is(err, jwt.ErrTokenSignatureInvalid):
		why = "signature invalid"
	case errors.Is(err, jwt.ErrTokenExpired):
		why = "token expired"
	case errors.Is(err, jwt.ErrTokenNotValidYet):
		why = "token not valid yet"
	case errors.Is(err, jwt.ErrTokenInvalidIssuer):
		why = "issuer not accepted"
	case errors.Is(err, jwt.ErrTokenInvalidAudience):
		why = "audience not accepted"
	case errors.Is(err, jwt.ErrTokenRequiredClaimMissing):
		switch {
		case claims["exp"] == nil:
			why = "token has no expiry (exp)"
		case a.iss != "" && claims["iss"] == nil:
			why = "issuer not accepted"
		default:
			why = "audience not accepted"
		}
	default:
		why = "token not accepted"
	}
	return tokenRefused(why)
}
