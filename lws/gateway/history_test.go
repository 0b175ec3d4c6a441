package gateway

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lwsgate/lwsgate/lws"
)

// envelopeOf decodes a delivery of a channel with envelope.
func envelopeOf(t testing.TB, s string) envelopeMessage {
	t.Helper()
	var e envelopeMessage
	require.NoError(t, json.Unmarshal([]byte(s), &e), "an envelope: %s", s)
	require.NotNil(t, e.Data, "text data: %s", s)
	return e
}

// historyPublish publishes data on ch through g's admin API, with an
// idempotency key if key is set, and returns its position.
func historyPublish(t testing.TB, g *testGW, ch, data, key string) Position {
	t.Helper()
	req, err := http.NewRequest("POST", "http://"+g.admin+"/v1/api/publish",
		strings.NewReader(fmt.Sprintf(`{"channel":%q,"data":%q}`, ch, data)))
	require.NoError(t, err)
	if key != "" {
		req.Header.Set("Idempotency-Key", key)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, 200, resp.StatusCode)
	var res PublishResult
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&res))
	require.NotNil(t, res.Position, "a publish on a history channel answers its position")
	require.NotZero(t, res.Offset)
	require.NotEmpty(t, res.Epoch)
	return *res.Position
}

// subscribeAt opens a link to g and subscribes it to ch at since (zero:
// from now); it returns the link and the subscribe's reply.
func subscribeAt(t *testing.T, g *testGW, ch string, since Position) (*wsReader, subscribedReply) {
	t.Helper()
	tok, _, err := g.tokens.issue("ann", "")
	require.NoError(t, err)
	ws := g.dial(t, "/", http.Header{"Authorization": {"Bearer " + tok}})
	msg := fmt.Sprintf(`{"action":"subscribe","channel":%q}`, ch)
	if !since.IsZero() {
		msg = fmt.Sprintf(`{"action":"subscribe","channel":%q,"since":{"offset":%d,"epoch":%q}}`, ch, since.Offset, since.Epoch)
	}
	send(t, ws, msg)
	r := readerOf(ws)
	var rep subscribedReply
	require.NoError(t, json.Unmarshal([]byte(r.next(t)), &rep))
	require.Equal(t, "subscribed", rep.Type)
	require.Equal(t, ch, rep.Channel)
	return r, rep
}

// TestClusterHistory: channels with a history across three gateways: a
// publish is answered with its position once stored, a retry with the
// same Idempotency-Key is stored once, a link that left resumes on
// another node with exactly what it missed, in order, then the live
// messages, recovered true; a position older than the history keeps,
// or of another epoch, gets recovered false; a link's publish is told
// its position; the history endpoint pages.
func TestClusterHistory(t *testing.T) {
	if testing.Short() {
		t.Skip("starts three NATS servers")
	}
	start := time.Now()
	gws := startClusterGWsWith(t, 3, `  history_shards: 1
  channels:
    - {match: "room:*", history: {size: 5, ttl: 1m}, envelope: true}
    - {match: "bare:*", history: {size: 5}}
`, "")
	g1, g2, g3 := gws[0], gws[1], gws[2]
	const ch = "room:1"
	t.Logf("three nodes up in %v", time.Since(start).Round(time.Millisecond))
	start = time.Now()
	defer func() { t.Logf("history checks in %v", time.Since(start).Round(time.Millisecond)) }()

	a, rep := subscribeAt(t, g1, ch, Position{})
	assert.True(t, rep.Recovered, "a subscribe from now has nothing to recover")

	// Acknowledged with its position once stored; the member on another
	// node gets it in an envelope with that position. The retry (same
	// key) answers the same position and is not delivered again: the
	// next delivery is the next publish.
	p1 := historyPublish(t, g2, ch, "one", "key-1")
	e := envelopeOf(t, a.next(t))
	assert.Equal(t, envelopeMessage{Channel: ch, Position: p1, Data: e.Data}, e)
	assert.Equal(t, "one", *e.Data)
	again := historyPublish(t, g3, ch, "one", "key-1")
	assert.Equal(t, p1, again, "a retry with the same Idempotency-Key is stored once")
	p2 := historyPublish(t, g2, ch, "two", "")
	e = envelopeOf(t, a.next(t))
	assert.Equal(t, "two", *e.Data, "no duplicate of the retried publish")
	assert.Equal(t, p2, e.Position)
	assert.Greater(t, p2.Offset, p1.Offset)

	// The link leaves; three messages are published meanwhile; it comes
	// back to another node with its last position and gets exactly those,
	// in order, then the live ones.
	require.NoError(t, a.ws.Close())
	var missed []Position
	for i := range 3 {
		missed = append(missed, historyPublish(t, gws[i], ch, fmt.Sprintf("missed-%d", i), ""))
	}
	b, rep := subscribeAt(t, g3, ch, p2)
	assert.True(t, rep.Recovered)
	assert.Equal(t, missed[2], rep.Position, "the reply's position is the last missed one's")
	for i, p := range missed {
		e := envelopeOf(t, b.next(t))
		assert.Equal(t, fmt.Sprintf("missed-%d", i), *e.Data)
		assert.Equal(t, p, e.Position)
	}
	live := historyPublish(t, g1, ch, "live", "")
	e = envelopeOf(t, b.next(t))
	assert.Equal(t, "live", *e.Data)
	assert.Equal(t, live, e.Position)

	// A Router's PublishAsync is called back with the stored position
	// (and the same key stores once).
	async := make(chan Position, 2)
	for range 2 {
		g2.PublishAsync(ch, lws.TextMessage, []byte("async"), "key-async", func(p Position, err error) {
			assert.NoError(t, err)
			async <- p
		})
	}
	pa := <-async
	assert.Equal(t, pa, <-async)
	e = envelopeOf(t, b.next(t))
	assert.Equal(t, "async", *e.Data)
	assert.Equal(t, pa, e.Position)

	// A link's own publish (the publish rule) is stored and answered with
	// its position; it is delivered like any other.
	send(t, b.ws, `{"action":"publish","channel":"room:1","n":1}`)
	var got []string
	for range 2 {
		got = append(got, b.next(t))
	}
	var pub publishedReply
	var del envelopeMessage
	for _, m := range got {
		if strings.Contains(m, `"type":"published"`) {
			require.NoError(t, json.Unmarshal([]byte(m), &pub))
		} else {
			del = envelopeOf(t, m)
		}
	}
	assert.Equal(t, "published", pub.Type, "the publisher is told: %q", got)
	assert.Equal(t, del.Position, pub.Position)
	assert.Greater(t, pub.Offset, live.Offset)

	// Trimmed: size 5, and 6 were published since: recovered false; with
	// 5, true.
	old := historyPublish(t, g1, "room:2", "old", "")
	var last []Position
	for i := range 6 {
		last = append(last, historyPublish(t, g1, "room:2", fmt.Sprint(i), ""))
	}
	_, rep = subscribeAt(t, g2, "room:2", old)
	assert.False(t, rep.Recovered, "history no longer reaches back to since")
	assert.Equal(t, last[5], rep.Position)
	d, rep := subscribeAt(t, g2, "room:2", last[0])
	assert.True(t, rep.Recovered, "5 missed, 5 kept")
	for i := 1; i < 6; i++ {
		assert.Equal(t, last[i], envelopeOf(t, d.next(t)).Position)
	}
	// The admin API subscribes a link by id at since, through another
	// node (forwarded to the link's): the link is told as its own
	// subscribe would tell it and sent what it missed, then the live
	// ones; the answer says recovered and the position. Trimmed:
	// recovered false. Twice with since: 409; since on a channel
	// without a history: 400.
	byID := func(at Position) (uint64, *wsReader, membershipAt) {
		t.Helper()
		tok, _, err := g1.tokens.issue("ann", "")
		require.NoError(t, err)
		ws := g1.dial(t, "/", http.Header{"Authorization": {"Bearer " + tok}})
		id := linkID(t, ws)
		var ans membershipAt
		body := fmt.Sprintf(`{"channel":"room:2","since":{"offset":%d,"epoch":%q}}`, at.Offset, at.Epoch)
		require.Equal(t, 200, g3.api(t, "POST", fmt.Sprintf("/v1/api/links/%d/subscribe", id), body, &ans))
		return id, readerOf(ws), ans
	}
	id, r, ans := byID(last[2])
	assert.Equal(t, membershipAt{Link: id, Channel: "room:2", Recovered: true, Position: last[5]}, ans)
	var told subscribedReply
	require.NoError(t, json.Unmarshal([]byte(r.next(t)), &told))
	assert.Equal(t, subscribedReply{Type: "subscribed", Channel: "room:2", Recovered: true, Position: last[5]}, told)
	for i := 3; i < 6; i++ {
		assert.Equal(t, last[i], envelopeOf(t, r.next(t)).Position, "missed message %d", i)
	}
	after := historyPublish(t, g2, "room:2", "after", "")
	assert.Equal(t, after, envelopeOf(t, r.next(t)).Position, "then the live ones")
	twice := fmt.Sprintf(`{"channel":"room:2","since":{"offset":%d,"epoch":%q}}`, last[2].Offset, last[2].Epoch)
	assert.Equal(t, 409, g2.api(t, "POST", fmt.Sprintf("/v1/api/links/%d/subscribe", id), twice, nil), "a member already")
	assert.Equal(t, 400, g2.api(t, "POST", fmt.Sprintf("/v1/api/links/%d/subscribe", id), `{"channel":"plain","since":{"offset":1}}`, nil))
	_, r, ans = byID(old)
	assert.False(t, ans.Recovered, "history no longer reaches back to since")
	assert.Equal(t, after, ans.Position)
	require.NoError(t, json.Unmarshal([]byte(r.next(t)), &told))
	assert.False(t, told.Recovered, "the link is told too")

	// Another epoch: recovered false.
	_, rep = subscribeAt(t, g1, ch, Position{Offset: p1.Offset, Epoch: "another"})
	assert.False(t, rep.Recovered, "a position of another epoch")

	// Without envelope the data comes alone.
	c, _ := subscribeAt(t, g2, "bare:1", Position{})
	historyPublish(t, g1, "bare:1", "plain data", "")
	assert.Equal(t, "plain data", c.next(t))

	// The history endpoint: pages of the messages after since.
	var page HistoryPage
	require.Equal(t, 200, g3.api(t, "GET", fmt.Sprintf("/v1/api/channels/%s/history?since=%d&epoch=%s&limit=2", ch, missed[0].Offset, p1.Epoch), "", &page))
	require.Len(t, page.Messages, 2)
	assert.Equal(t, missed[1].Offset, page.Messages[0].Offset)
	assert.Equal(t, "missed-2", *page.Messages[1].Data)
	assert.True(t, page.More)
	assert.True(t, page.Recovered)
	require.Equal(t, 200, g1.api(t, "GET", fmt.Sprintf("/v1/api/channels/%s/history?since=%d&epoch=%s&limit=5", ch, page.Position.Offset, page.Position.Epoch), "", &page))
	require.Len(t, page.Messages, 3)
	assert.Equal(t, "live", *page.Messages[0].Data)
	assert.Equal(t, pa.Offset, page.Messages[1].Offset)
	assert.Equal(t, pub.Offset, page.Messages[2].Offset)
	assert.False(t, page.More)
	assert.Equal(t, 404, g1.api(t, "GET", "/v1/api/channels/plain/history", "", nil))
	assert.Equal(t, 400, g1.api(t, "GET", "/v1/api/channels/room:1/history?limit=0", "", nil))
}

// TestRulePublishID: a link's publish on a history channel with an id
// (the default publish rule's id_field: id) is stored once per user:
// the same id again, from the same user on the same link or another,
// answers the first position and is not delivered twice; another user's
// same id, or an anonymous link's, is a message of its own; the answer
// carries the id back; an id that is not a string or a number, or too
// long, is refused naming the field, and nothing is stored.
func TestRulePublishID(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a NATS server")
	}
	g := startGW(t, `
tokens: {secret: rule-id-secret}
listeners:
  - {name: users, addr: 127.0.0.1:0, subprotocols: [lws-gate], auth: {require_token: true}}
  - {name: open, addr: 127.0.0.1:0, subprotocols: [lws-gate]}
cluster: {engine: nats, name: ruleid, node: one, nats: {embedded: {store_dir: "`+t.TempDir()+`"}},
  channels: [{match: "room:*", history: {size: 100}, envelope: true}]}
`, nil)
	const ch = "room:1"
	sub, _ := subscribeAt(t, g, ch, Position{})
	// link opens a link of user ("": anonymous, on the listener that
	// asks for no token).
	link := func(user string) *wsReader {
		t.Helper()
		if user == "" {
			ws, _, err := websocket.DefaultDialer.Dial("ws://"+g.Addrs()["open"].String()+"/", nil)
			require.NoError(t, err)
			t.Cleanup(func() { ws.Close() })
			return readerOf(ws)
		}
		tok, _, err := g.tokens.issue(user, "")
		require.NoError(t, err)
		return readerOf(g.dial(t, "/", http.Header{"Authorization": {"Bearer " + tok}}))
	}
	// publish sends data with id (none if "") on l and returns its answer.
	publish := func(l *wsReader, data, id string) map[string]any {
		t.Helper()
		msg := fmt.Sprintf(`{"action":"publish","channel":%q,"data":%q,"id":%s}`, ch, data, id)
		if id == "" {
			msg = fmt.Sprintf(`{"action":"publish","channel":%q,"data":%q}`, ch, data)
		}
		send(t, l.ws, msg)
		var rep map[string]any
		require.NoError(t, json.Unmarshal([]byte(l.next(t)), &rep))
		return rep
	}
	delivered := func() string { return *envelopeOf(t, sub.next(t)).Data }
	dataOf := func(data string) string { return fmt.Sprintf(`"data":%q`, data) }

	ann := link("ann")
	first := publish(ann, "a1", `"m-1"`)
	require.Equal(t, "published", first["type"], "%v", first)
	assert.Equal(t, "m-1", first["id"], "the answer carries the id")
	assert.Contains(t, delivered(), dataOf("a1"))

	again := publish(ann, "a1", `"m-1"`)
	assert.Equal(t, first, again, "the same id on the same link: the first position")
	ann2 := link("ann")
	other := publish(ann2, "a1", `"m-1"`)
	assert.Equal(t, first, other, "the same id from the same user on another link: the first position")

	bob := publish(link("bob"), "b1", `"m-1"`)
	require.Equal(t, "published", bob["type"], "%v", bob)
	assert.Greater(t, bob["offset"], first["offset"], "another user's id is its own")
	assert.Contains(t, delivered(), dataOf("b1"), "ann's retries were not delivered again")

	anon1, anon2 := link(""), link("")
	p1 := publish(anon1, "x1", `7`)
	assert.Equal(t, "7", p1["id"], "a number is an id too")
	assert.Equal(t, p1, publish(anon1, "x1", `7`), "an anonymous link's own retry")
	p2 := publish(anon2, "x2", `7`)
	assert.Greater(t, p2["offset"], p1["offset"], "anonymous links do not share ids")
	assert.Contains(t, delivered(), dataOf("x1"))
	assert.Contains(t, delivered(), dataOf("x2"))

	none := publish(ann, "n1", "")
	assert.NotContains(t, none, "id", "no id, none in the answer")
	assert.NotEqual(t, first["offset"], none["offset"])
	assert.Contains(t, delivered(), dataOf("n1"))

	for id, want := range map[string]string{
		`{"x":1}`:                               `field "id": the publish's id is a string or a number`,
		strconv.Quote(strings.Repeat("k", 257)): `field "id": the publish's id is 257 bytes: want at most 256`,
	} {
		rep := publish(ann, "bad", id)
		assert.Equal(t, "error", rep["type"], "%v", rep)
		assert.Equal(t, want, rep["error"])
	}
	last := publish(ann, "end", "")
	assert.Contains(t, delivered(), dataOf("end"), "the refused publishes were not stored")
	assert.Greater(t, last["offset"], none["offset"])
}
