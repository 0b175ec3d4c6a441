package gateway

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/lwsgate/lwsgate/lws"
)

// tokens issues and checks HS256 JWTs.
type tokens struct {
	secret []byte
	ttl    time.Duration
}

// issue returns a token for user and its expiry.
func (t *tokens) issue(user, requestID string) (string, time.Time, error) {
	now := time.Now()
	exp := now.Add(t.ttl)
	claims := jwt.MapClaims{"sub": user, "iat": now.Unix(), "exp": exp.Unix()}
	if requestID != "" {
		claims["rid"] = requestID
	}
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString(t.secret)
	return s, exp, err
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
