package gateway

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/lwsgate/lwsgate/lws"
)

// Message is one received WebSocket message on its way through the
// routing step. It is valid only during the step: a Router must not keep
// it, nor its Data.
type Message struct {
	Link *LinkRecord
	Type lws.MessageType
	// Data is valid only until the routing step returns; copy it to keep
	// it. Gateway.Send and Publish copy.
	Data []byte

	parsed  bool
	json    any
	jsonErr error
	// at is when the message came (sinceBase): the one clock reading its
	// routing step takes, which its echo or reply reuses.
	at time.Duration
}

// JSON returns the message parsed as JSON (once, lazily).
func (m *Message) JSON() (any, error) {
	if !m.parsed {
		m.parsed = true
		t := bytes.TrimLeft(m.Data, " \t\r\n")
		if len(t) == 0 || t[0] != '{' && t[0] != '[' {
			// Most messages of an echo path are not JSON: say so
			// without a decoder.
			m.jsonErr = errNotJSON
			return nil, m.jsonErr
		}
		if json.Valid(t) {
			m.json = decodeValid(t)
			return m.json, nil
		}
		// Not valid: the decoder says why (and takes a value followed
		// by a closing bracket, as it always has).
		d := json.NewDecoder(bytes.NewReader(m.Data))
		d.UseNumber()
		if m.jsonErr = d.Decode(&m.json); m.jsonErr == nil && d.More() {
			m.jsonErr = fmt.Errorf("trailing data after the JSON value")
		}
	}
	return m.json, m.jsonErr
}

var errNotJSON = fmt.Errorf("not a JSON object or array")

// Field returns the value at a dotted path ("action", "data.room") of the
// message parsed as a JSON object; ok is false when the message is not
// JSON or has no such field.
func (m *Message) Field(path string) (v any, ok bool) {
	v, err := m.JSON()
	if err != nil {
		return nil, false
	}
	for {
		p, rest, more := strings.Cut(path, ".")
		obj, isObj := v.(map[string]any)
		if !isObj {
			return nil, false
		}
		if v, ok = obj[p]; !ok {
			return nil, false
		}
		if !more {
			return v, true
		}
		path = rest
	}
}

// fieldString renders a JSON value for matching: strings as they are,
// numbers, booleans and null as written.
func fieldString(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case json.Number:
		return x.String()
	case bool:
		return strconv.FormatBool(x)
	case nil:
		return "null"
	}
	b, _ := json.Marshal(v)
	return string(b)
}

// Router is an in-process routing step that a program embedding the
// gateway puts before the configured rules (Options.Router).
//
// Route is called on the service goroutine for every message and must not
// block; it returns true when it handled the message, and the rules are
// then skipped. It may call any Gateway method.
type Router interface {
	Route(g *Gateway, m *Message) bool
}

// RouterFunc adapts a function to Router.
type RouterFunc func(g *Gateway, m *Message) bool

// Route calls f.
func (f RouterFunc) Route(g *Gateway, m *Message) bool { return f(g, m) }

// ruleSet is the config's rules compiled for the routing step.
//
// Concurrency: read-only once compiled (Reload swaps in a new set through
// an atomic pointer), but for each rule's hits counter, which the first
// match on any worker looks up (hitsOnce).
type ruleSet struct {
	rules []*rule
	// usesJSON: a rule reads the message as JSON (match.field or
	// channel_field), so an unroutable message that is not JSON is told so.
	usesJSON bool
}

// rule is a RuleConfig compiled once into what runs per message: its
// match in the message's own terms, and its action's function.
type rule struct {
	RuleConfig
	typ        lws.MessageType // match.type; 0: any
	prefix     []byte          // match.prefix
	pathPrefix string          // match.path without its trailing '*'
	wildcard   bool
	reply      []byte // the reply action's message
	run        func(g *Gateway, r *rule, m *Message)

	// hits is this rule's lwsgate_rule_matches_total counters, one per
	// worker (hits[w.id]), looked up on its first match rather than on
	// every message (set once, under hitsOnce, by whichever worker matches
	// first; a reload compiles new rules, which find the same counters).
	hits     []padded
	hitsOnce sync.Once
}

// compileRules compiles checked rules (Validate).
func compileRules(cfgs []RuleConfig) *ruleSet {
	set := &ruleSet{rules: make([]*rule, len(cfgs))}
	for i, c := range cfgs {
		r := &rule{RuleConfig: c, pathPrefix: c.Match.Path, prefix: []byte(c.Match.Prefix), reply: []byte(c.Reply)}
		if strings.HasSuffix(c.Match.Path, "*") {
			r.pathPrefix, r.wildcard = strings.TrimSuffix(c.Match.Path, "*"), true
		}
		switch c.Match.Type {
		case "text":
			r.typ = lws.TextMessage
		case "binary":
			r.typ = lws.BinaryMessage
		}
		if spec := actionSpecOf(c.Action); spec != nil {
			r.run = spec.run
		} else {
			r.run = func(*Gateway, *rule, *Message) {} // not from a checked config
		}
		set.usesJSON = set.usesJSON || c.Match.Field != "" || c.ChannelField != "" || c.IDField != ""
		set.rules[i] = r
	}
	return set
}

func (r *rule) matches(m *Message) bool {
	mc := &r.Match
	if mc.Listener != "" && mc.Listener != m.Link.Listener {
		return false
	}
	if mc.Path != "" {
		if r.wildcard && !strings.HasPrefix(m.Link.Path, r.pathPrefix) || !r.wildcard && m.Link.Path != mc.Path {
			return false
		}
	}
	if r.typ != 0 && m.Type != r.typ {
		return false
	}
	if len(r.prefix) > 0 && !bytes.HasPrefix(m.Data, r.prefix) {
		return false
	}
	if mc.Field != "" {
		v, ok := m.Field(mc.Field)
		if !ok || mc.Value != nil && fieldString(v) != *mc.Value {
			return false
		}
	}
	return true
}

// publishID returns the id of m's publish (id_field): "" when the rule
// has no id_field or m lacks the field.
func (r *rule) publishID(m *Message) (string, error) {
	if r.IDField == "" {
		return "", nil
	}
	v, ok := m.Field(r.IDField)
	if !ok || v == nil {
		return "", nil
	}
	switch v.(type) {
	case string, json.Number:
	default:
		return "", fmt.Errorf("field %q: the publish's id is a string or a number", r.IDField)
	}
	id := fieldString(v)
	if len(id) > maxIdempotencyKey {
		return "", fmt.Errorf("field %q: the publish's id is %d bytes: want at most %d", r.IDField, len(id), maxIdempotencyKey)
	}
	return id, nil
}

// channel returns the rule's channel for m.
func (r *rule) channel(m *Message) (string, error) {
	if r.Channel != "" {
		return r.Channel, nil
	}
	v, ok := m.Field(r.ChannelField)
	if !ok {
		return "", fmt.Errorf("message has no field %q for the channel", r.ChannelField)
	}
	ch := fieldString(v)
	if !validChannel(ch) {
		return "", fmt.Errorf("field %q: a channel is 1 to %d bytes", r.ChannelField, maxChannel)
	}
	return ch, nil
}

// closeArgs returns the close action's code and reason; with code 0 and
// a prefix they are read from the message: "PREFIX CODE [REASON]".
func (r *rule) closeArgs(m *Message) (lws.StatusCode, string, error) {
	if r.Code != 0 {
		return lws.StatusCode(r.Code), r.Reason, nil
	}
	if r.Match.Prefix == "" {
		return lws.StatusNormalClosure, r.Reason, nil
	}
	rest := strings.TrimPrefix(string(m.Data), r.Match.Prefix)
	num, reason, _ := strings.Cut(strings.TrimLeft(rest, " "), " ")
	code, err := strconv.Atoi(num)
	if err != nil || !lws.StatusCode(code).Sendable() {
		return 0, "", fmt.Errorf("%s%q: want a close code from 1000-4999 that may be sent", r.Match.Prefix, num)
	}
	if !validCloseReason(reason) {
		return 0, "", fmt.Errorf("close reason of %d bytes (at most %d)", len(reason), lws.MaxCloseReason)
	}
	return lws.StatusCode(code), reason, nil
}
