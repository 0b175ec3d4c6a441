package gateway

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lwsgate/lwsgate/lws"
)

// TestRuleMatches: which messages a compiled rule takes, one case a row.
func TestRuleMatches(t *testing.T) {
	s := func(v string) *string { return &v }
	link := &LinkRecord{ID: 7, Listener: "main", Path: "/chat/room1"}
	text, binary := lws.TextMessage, lws.BinaryMessage
	for _, tc := range []struct {
		name  string
		match MatchConfig
		typ   lws.MessageType
		data  string
		want  bool
	}{
		{"empty matches all", MatchConfig{}, text, "anything", true},
		{"empty matches binary", MatchConfig{}, binary, "\x00\x01", true},
		{"listener", MatchConfig{Listener: "main"}, text, "x", true},
		{"other listener", MatchConfig{Listener: "admin"}, text, "x", false},
		{"exact path", MatchConfig{Path: "/chat/room1"}, text, "x", true},
		{"exact path is not a prefix", MatchConfig{Path: "/chat"}, text, "x", false},
		{"path prefix", MatchConfig{Path: "/chat*"}, text, "x", true},
		{"path prefix, other", MatchConfig{Path: "/admin*"}, text, "x", false},
		{"text", MatchConfig{Type: "text"}, text, "x", true},
		{"text, got binary", MatchConfig{Type: "text"}, binary, "x", false},
		{"binary", MatchConfig{Type: "binary"}, binary, "x", true},
		{"binary, got text", MatchConfig{Type: "binary"}, text, "x", false},
		{"prefix", MatchConfig{Prefix: "/close "}, text, "/close 4000", true},
		{"prefix, shorter message", MatchConfig{Prefix: "/close "}, text, "/clos", false},
		{"prefix on binary", MatchConfig{Prefix: "\x00"}, binary, "\x00\x01", true},
		{"field exists", MatchConfig{Field: "action"}, text, `{"action":null}`, true},
		{"field missing", MatchConfig{Field: "action"}, text, `{"op":"x"}`, false},
		{"field value", MatchConfig{Field: "action", Value: s("ping")}, text, `{"action":"ping"}`, true},
		{"field other value", MatchConfig{Field: "action", Value: s("ping")}, text, `{"action":"pong"}`, false},
		{"nested field, number", MatchConfig{Field: "data.kind", Value: s("42")}, text, `{"data":{"kind":42}}`, true},
		{"field through a non-object", MatchConfig{Field: "data.kind"}, text, `{"data":[1]}`, false},
		{"bool and null as written", MatchConfig{Field: "a", Value: s("true")}, text, `{"a":true}`, true},
		{"null value", MatchConfig{Field: "a", Value: s("null")}, text, `{"a":null}`, true},
		{"field of not JSON", MatchConfig{Field: "action"}, text, "action", false},
		{"field of trailing data", MatchConfig{Field: "a"}, text, `{"a":1} x`, false},
		{"every field must match", MatchConfig{Listener: "main", Type: "text", Prefix: "{", Field: "a", Value: s("1")}, text, `{"a":1}`, true},
		{"one field fails", MatchConfig{Listener: "main", Type: "binary", Prefix: "{", Field: "a", Value: s("1")}, text, `{"a":1}`, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := compileRules([]RuleConfig{{Name: tc.name, Match: tc.match, Action: ActionEcho}}).rules[0]
			m := &Message{Link: link, Type: tc.typ, Data: []byte(tc.data)}
			assert.Equal(t, tc.want, r.matches(m))
		})
	}
}

// TestRuleCloseArgs: the close action's code and reason, from the rule or
// from the message "PREFIX CODE [REASON]".
func TestRuleCloseArgs(t *testing.T) {
	long := string(make([]byte, lws.MaxCloseReason+1))
	for _, tc := range []struct {
		name   string
		rule   RuleConfig
		data   string
		code   lws.StatusCode
		reason string
		err    string // "": none
	}{
		{"the rule's code and reason", RuleConfig{Code: 4002, Reason: "see you", Match: MatchConfig{Prefix: "bye"}}, "bye 4100 x", 4002, "see you", ""},
		{"no code, no prefix: 1000", RuleConfig{Reason: "done"}, "anything", lws.StatusNormalClosure, "done", ""},
		{"from the message", RuleConfig{Match: MatchConfig{Prefix: "/close "}}, "/close 4100 done", 4100, "done", ""},
		{"reason with spaces", RuleConfig{Match: MatchConfig{Prefix: "/close "}}, "/close 4100 all done now", 4100, "all done now", ""},
		{"no reason", RuleConfig{Match: MatchConfig{Prefix: "/close "}}, "/close 1000", 1000, "", ""},
		{"spaces before the code", RuleConfig{Match: MatchConfig{Prefix: "/close"}}, "/close   3000 r", 3000, "r", ""},
		{"no code", RuleConfig{Match: MatchConfig{Prefix: "/close "}}, "/close ", 0, "", `/close "": want a close code`},
		{"not a number", RuleConfig{Match: MatchConfig{Prefix: "/close "}}, "/close soon", 0, "", `"soon"`},
		{"not sendable", RuleConfig{Match: MatchConfig{Prefix: "/close "}}, "/close 1005", 0, "", `"1005"`},
		{"out of range", RuleConfig{Match: MatchConfig{Prefix: "/close "}}, "/close 99", 0, "", `"99"`},
		{"reason too long", RuleConfig{Match: MatchConfig{Prefix: "/close "}}, "/close 4000 " + long, 0, "", "close reason of 124 bytes (at most 123)"},
		{"reason at the limit", RuleConfig{Match: MatchConfig{Prefix: "/close "}}, "/close 4000 " + long[1:], 4000, long[1:], ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.rule.Action = ActionClose
			r := compileRules([]RuleConfig{tc.rule}).rules[0]
			code, reason, err := r.closeArgs(&Message{Link: &LinkRecord{}, Type: lws.TextMessage, Data: []byte(tc.data)})
			if tc.err != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tc.err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.code, code)
			assert.Equal(t, tc.reason, reason)
		})
	}
}

// TestRuleChannel: a channel from the rule or from a field of the
// message, 1 to 256 bytes.
func TestRuleChannel(t *testing.T) {
	long := `{"room":"` + stringOf('r', maxChannel+1) + `"}`
	for _, tc := range []struct {
		name string
		rule RuleConfig
		data string
		want string
		err  string
	}{
		{"the rule's", RuleConfig{Channel: "lobby"}, `{"room":"x"}`, "lobby", ""},
		{"from the field", RuleConfig{ChannelField: "room"}, `{"room":"r1"}`, "r1", ""},
		{"nested field", RuleConfig{ChannelField: "data.room"}, `{"data":{"room":"r2"}}`, "r2", ""},
		{"a number, as written", RuleConfig{ChannelField: "room"}, `{"room":12}`, "12", ""},
		{"no such field", RuleConfig{ChannelField: "room"}, `{"rum":"x"}`, "", `message has no field "room"`},
		{"empty", RuleConfig{ChannelField: "room"}, `{"room":""}`, "", "a channel is 1 to 256 bytes"},
		{"too long", RuleConfig{ChannelField: "room"}, long, "", "a channel is 1 to 256 bytes"},
		{"not JSON", RuleConfig{ChannelField: "room"}, "room", "", `message has no field "room"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.rule.Action = ActionPublish
			r := compileRules([]RuleConfig{tc.rule}).rules[0]
			ch, err := r.channel(&Message{Link: &LinkRecord{}, Type: lws.TextMessage, Data: []byte(tc.data)})
			if tc.err != "" {
				assert.ErrorContains(t, err, tc.err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, ch)
		})
	}
}

// TestActionsCompiled: every action of the table has a run function and
// the rule compiled with it runs that one; Actions lists them in order.
func TestActionsCompiled(t *testing.T) {
	names := Actions()
	require.Len(t, names, len(actionTable))
	assert.Equal(t, []Action{ActionEcho, ActionInfo, ActionReply, ActionPublish, ActionSubscribe, ActionUnsubscribe, ActionForward, ActionRelay, ActionDrop, ActionClose}, names)
	for _, a := range actionTable {
		require.NotNil(t, a.run, a.name)
		r := compileRules([]RuleConfig{{Action: a.name}}).rules[0]
		assert.Equal(t, reflectPointer(a.run), reflectPointer(r.run), a.name)
	}
	set := compileRules([]RuleConfig{{Action: ActionEcho}, {Action: ActionPublish, ChannelField: "c"}})
	assert.True(t, set.usesJSON)
	assert.False(t, compileRules([]RuleConfig{{Action: ActionEcho, Match: MatchConfig{Prefix: "x"}}}).usesJSON)
}
