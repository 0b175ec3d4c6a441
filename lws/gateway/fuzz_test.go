package gateway

import (
	"testing"
	"time"

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

// FuzzVerifyToken feeds arbitrary strings to the token check: it must not
// panic, and whatever verifies carries the subject this gateway signed
// (a string differing only in base64 slack may decode to the same token).
func FuzzVerifyToken(f *testing.F) {
	tk := newTokens([]byte("fuzz-secret"), time.Hour)
	good, _, err := tk.issue("keda", "1")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add("eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.")
	f.Add("a.b.c")
	f.Fuzz(func(t *testing.T, s string) {
		user, err := tk.verify(s)
		if err == nil && user != "keda" {
			t.Fatalf("%q verified as %q", s, user)
		}
	})
}
