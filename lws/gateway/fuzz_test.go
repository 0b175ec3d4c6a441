package gateway

import (
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/lwsgate/lwsgate/lws"
)

// FuzzRuleMatch runs the routing step's matching on arbitrary rules and
// messages: it must not panic, must give the same answer twice (the JSON
// is parsed once and cached), and a channel it returns is 1-256 bytes.
func FuzzRuleMatch(f *testing.F) {
	f.Add("action", "subscribe", "", "channel", []byte(`{"action":"subscribe","channel":"demo"}`))
	f.Add("data.kind", "42", "", "", []byte(`{"data":{"kind":42}}`))
	f.Add("", "", "/close ", "", []byte("/close 4000 bye"))
	f.Add("a.b.c", "", "{", "a", []byte(`{"a":[1,2,{"b":null}]}`))
	f.Fuzz(func(t *testing.T, field, value, prefix, chField string, data []byte) {
		rc := RuleConfig{Name: "fuzz", Action: "close", Match: MatchConfig{Prefix: prefix}, ChannelField: "x"}
		if validFieldPath(field) {
			rc.Match.Field = field
			rc.Match.Value = &value
		}
		if validFieldPath(chField) {
			rc.ChannelField = chField
		}
		r := compileRules([]RuleConfig{rc}).rules[0]
		for _, typ := range []lws.MessageType{lws.TextMessage, lws.BinaryMessage} {
			m := &Message{Link: &LinkRecord{ID: 1, Listener: "main", Path: "/"}, Type: typ, Data: data}
			first := r.matches(m)
			if r.matches(m) != first {
				t.Fatal("matches is not deterministic")
			}
			if ch, err := r.channel(m); err == nil && (len(ch) == 0 || len(ch) > 256) {
				t.Fatalf("channel of %d bytes", len(ch))
			}
			if code, reason, err := r.closeArgs(m); err == nil && (!code.Sendable() || len(reason) > 123) {
				t.Fatalf("close args %d %q", code, reason)
			}
		}
	})
}

// FuzzVerifyToken feeds arbitrary strings to the token check of a
// listener taking the gateway's own tokens (HS256) and of one taking an
// identity provider's (RS256, ES256, EdDSA keys from PEM files): it must
// not panic, whatever verifies carries the subject signed (a string
// differing only in base64 slack may decode to the same token), and
// whatever does not is a 401.
func FuzzVerifyToken(f *testing.F) {
	tk := newTokens([]byte("fuzz-secret"), time.Hour)
	good, _, err := tk.issue("keda", "1")
	if err != nil {
		f.Fatal(err)
	}
	k := testIDPKeys(f)
	dir := f.TempDir()
	idpAuth, err := newAuthenticator(&AuthConfig{RequireToken: true, Leeway: Duration(defaultLeeway), Issuer: testIssuer, Audience: testAudience, ChannelsClaim: "channels",
		Keys: []KeyConfig{
			{File: pemFile(f, dir, "rsa.pem", &k.rsa.PublicKey), Alg: algRS256, Kid: "r1"},
			{File: pemFile(f, dir, "ec.pem", &k.ec.PublicKey), Alg: algES256, Kid: "e1"},
			{File: pemFile(f, dir, "ed.pem", k.ed.Public()), Alg: algEdDSA},
		}}, nil)
	if err != nil {
		f.Fatal(err)
	}
	rsaPEM, _ := x509PEM(&k.rsa.PublicKey)
	f.Add(good)
	f.Add(sign(f, jwt.SigningMethodRS256, k.rsa, "r1", claimsFor("ada", "channels", []string{"room:*"})))
	f.Add(sign(f, jwt.SigningMethodES256, k.ec, "e1", claimsFor("ada")))
	f.Add(sign(f, jwt.SigningMethodEdDSA, k.ed, "", claimsFor("ada")))
	f.Add(sign(f, jwt.SigningMethodHS256, rsaPEM, "r1", claimsFor("ada")))
	f.Add("eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.")
	f.Add("a.b.c")
	a := gatewayTokenAuth(f, tk.secret)
	f.Fuzz(func(t *testing.T, s string) {
		id, refused := a.verify(s)
		if refused == nil && id.Subject != "keda" {
			t.Fatalf("%q verified as %q", s, id.Subject)
		}
		id, refused = idpAuth.verify(s)
		if refused == nil && id.Subject != "ada" {
			t.Fatalf("%q verified as %q by the provider's keys", s, id.Subject)
		}
		if refused != nil && refused.status != 401 {
			t.Fatalf("refusal %d %q for %q", refused.status, refused.msg, s)
		}
	})
}
