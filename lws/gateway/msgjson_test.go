package gateway

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// decodeWithDecoder is how Message.JSON decoded every message before
// decodeValid: the reference.
func decodeWithDecoder(t testing.TB, data []byte) any {
	d := json.NewDecoder(bytes.NewReader(data))
	d.UseNumber()
	var v any
	require.NoError(t, d.Decode(&v))
	return v
}

var msgJSONSeeds = []string{
	`{"action":"publish","channel":"room:1","data":"hi"}`,
	` {"a" : [1, -2.5e+3, 0.0, true, false, null, "x", {}, []] , "b":{"c":{"d":"e"}}} `,
	`{"a":1,"a":2}`,
	`{"k\u00e9y":"v\"al\\ue\n","\u0000":"\ud83d\ude00 \ud800 é"}`,
	"{\"raw\":\"caf\xc3\xa9 \xff\xfe bad\"}",
	`{"":"empty key","x":"<&>"}`,
	`[{"a":[[],[{}]]},"\/",1E9,-0]`,
	"{\n\t\"a\"\r:\n1\t}",
}

// TestDecodeValid: decodeValid gives what the decoder gives, escapes,
// invalid UTF-8, duplicate keys and numbers included.
func TestDecodeValid(t *testing.T) {
	for _, s := range msgJSONSeeds {
		require.True(t, json.Valid([]byte(s)), s)
		assert.Equal(t, decodeWithDecoder(t, []byte(s)), decodeValid([]byte(s)), s)
	}
	// The first of duplicate keys loses, as with the decoder.
	assert.Equal(t, json.Number("2"), decodeValid([]byte(`{"a":1,"a":2}`)).(map[string]any)["a"])
}

// FuzzDecodeValid: on any valid JSON, decodeValid and the decoder agree.
func FuzzDecodeValid(f *testing.F) {
	for _, s := range msgJSONSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if !json.Valid(data) {
			return
		}
		if want, got := decodeWithDecoder(t, data), decodeValid(data); !assert.ObjectsAreEqual(want, got) {
			t.Fatalf("%q: decoder %#v, decodeValid %#v", data, want, got)
		}
	})
}

// TestPublishedReplyJSON: the reply to a stored publish is written as
// json.Marshal writes it.
func TestPublishedReplyJSON(t *testing.T) {
	for _, r := range []publishedReply{
		{Type: "published", Channel: "room:1", Position: Position{Offset: 42, Epoch: "9f3c"}},
		{Type: "published", Channel: "r\"\\<é>\x01\xff", Position: Position{Offset: 1<<64 - 1, Epoch: ""}, ID: "id\n\u2028"},
		{Type: "published", Channel: "", Position: Position{}, ID: "x"},
	} {
		want, err := json.Marshal(r)
		require.NoError(t, err)
		assert.Equal(t, string(want), string(r.appendJSON(nil)))
	}
}
