package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lwsgate/lwsgate/internal/testutil"
	"github.com/lwsgate/lwsgate/lws/gateway"
)

// adminRig is a running lwsgate (in-process, as main runs it) with an
// admin token, and the environment its admin commands see.
type adminRig struct {
	pub, admin string
	env        map[string]string
}

const rigToken = "s3cret"

func startAdminRig(t *testing.T, args ...string) *adminRig {
	t.Helper()
	t.Setenv("LWSGATE_ADMIN_TOKEN", rigToken) // the gateway's admin.token
	addrs, _ := startGatewayAddrs(t, append([]string{"-trace=false"}, args...)...)
	r := &adminRig{pub: addrs[0].String(), admin: addrs[len(addrs)-1].String()}
	r.env = map[string]string{"LWSGATE_ADMIN_URL": "http://" + r.admin, "LWSGATE_ADMIN_TOKEN": rigToken}
	return r
}

// cmd runs an admin command and returns its exit code, stdout and stderr.
func (r *adminRig) cmd(t *testing.T, stdin string, args ...string) (int, string, string) {
	t.Helper()
	c := findAdminCommand(args[0])
	require.NotNil(t, c, args[0])
	var out, errb bytes.Buffer
	code := runAdmin(context.Background(), c, args[1:], strings.NewReader(stdin), &out, &errb, func(k string) string { return r.env[k] })
	return code, out.String(), errb.String()
}

// ok runs a command that must succeed and returns its stdout.
func (r *adminRig) ok(t *testing.T, args ...string) string {
	t.Helper()
	code, out, errs := r.cmd(t, "", args...)
	require.Equal(t, exitOK, code, "lwsgate %s: %s", strings.Join(args, " "), errs)
	assert.Empty(t, errs)
	return out
}

// fails runs a command that must fail with code and returns its stderr,
// one line starting "lwsgate: ".
func (r *adminRig) fails(t *testing.T, code int, args ...string) string {
	t.Helper()
	got, out, errs := r.cmd(t, "", args...)
	require.Equal(t, code, got, "lwsgate %s: stdout %q stderr %q", strings.Join(args, " "), out, errs)
	assert.Regexp(t, `^lwsgate: [^\n]+\n$`, errs)
	return errs
}

// client opens a WebSocket link to the gateway and learns its id (the
// info rule).
func (r *adminRig) client(t *testing.T) (*websocket.Conn, uint64) {
	t.Helper()
	ws, resp, err := (&websocket.Dialer{HandshakeTimeout: 5 * time.Second}).Dial("ws://"+r.pub+"/", nil)
	require.NoError(t, err)
	resp.Body.Close()
	t.Cleanup(func() { ws.Close() })
	_ = ws.SetReadDeadline(time.Now().Add(10 * time.Second))
	require.NoError(t, ws.WriteMessage(websocket.TextMessage, []byte(`{"action":"info"}`)))
	var m struct{ Link uint64 }
	_, p, err := ws.ReadMessage()
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(p, &m))
	require.NotZero(t, m.Link, "%s", p)
	return ws, m.Link
}

func readMsg(t *testing.T, ws *websocket.Conn) (int, string) {
	t.Helper()
	typ, p, err := ws.ReadMessage()
	require.NoError(t, err)
	return typ, string(p)
}

// TestAdminCommands runs every admin command against a running gateway:
// tables, --json, and the exits for a link never issued (3), a link gone
// (4, with its close code), a refusal (5) and bad usage (2).
func TestAdminCommands(t *testing.T) {
	r := startAdminRig(t)
	host, _ := os.Hostname()
	ws, id := r.client(t)
	sid := fmt.Sprint(id)

	// nodes
	var nodes []gateway.NodeInfo
	require.NoError(t, json.Unmarshal([]byte(r.ok(t, "nodes", "--json")), &nodes))
	require.Len(t, nodes, 1)
	assert.Equal(t, host, nodes[0].Name)
	assert.Len(t, nodes[0].WorkerList, nodes[0].Workers) // workers: 0, one per CPU
	out := r.ok(t, "nodes")
	assert.Regexp(t, `^NODE +READY +WORKERS +LINKS +UP +VERSION +LIBWEBSOCKETS\n`, out)
	assert.Regexp(t, fmt.Sprintf(`\n%s \* +yes +%d +1 +\d+s +dev +\d+\.\d+`, host, nodes[0].Workers), out)

	// links, with filters before and after nothing
	out = r.ok(t, "links")
	assert.Regexp(t, `^ID +TYPE +LISTENER +REMOTE +USER +AGE +IDLE +IN +OUT +QUEUED +CHANNELS\n`, out)
	assert.Regexp(t, `\n`+sid+` +tcplisten +main +127\.0\.0\.1:\d+ +- +\d+s +\d+s +1/17 B +1/\d+ B +0 B +-\n`, out)
	var links []gateway.LinkInfo
	require.NoError(t, json.Unmarshal([]byte(r.ok(t, "links", "--json", "--type", "tcplisten", "--node", host)), &links))
	require.Len(t, links, 1)
	assert.Equal(t, id, links[0].ID)
	assert.Equal(t, "no links\n", r.ok(t, "links", "--channel", "room"))
	assert.Contains(t, r.fails(t, exitUsage, "links", "--type", "tcplistne"), `type "tcplistne": want one of`)
	assert.Contains(t, r.fails(t, exitUsage, "links", "--node", "elsewhere"), `node "elsewhere": not a node of this cluster`)

	// link
	out = r.ok(t, "link", sid)
	assert.Regexp(t, `(?m)^id +`+sid+`$`, out)
	assert.Regexp(t, `(?m)^type +tcplisten$`, out)
	assert.Regexp(t, `(?m)^in +1 message, 17 B$`, out)
	var link gateway.LinkInfo
	require.NoError(t, json.Unmarshal([]byte(r.ok(t, "link", sid, "--json")), &link))
	assert.Equal(t, id, link.ID)

	// subscribe, channels, publish (text, and binary from stdin), unsubscribe
	assert.Equal(t, "link "+sid+" subscribed to room\n", r.ok(t, "subscribe", sid, "room"))
	assert.Regexp(t, `^CHANNEL +MEMBERS +USERS\nroom +1 +\d+\n$`, r.ok(t, "channels"))
	assert.Contains(t, r.ok(t, "links", "--channel", "room"), "\n"+sid+" ")
	assert.Equal(t, "published 5 B to room: delivered to 1, failed 0\n", r.ok(t, "publish", "room", "hello"))
	typ, msg := readMsg(t, ws)
	assert.Equal(t, websocket.TextMessage, typ)
	assert.Equal(t, "hello", msg)
	code, out, errs := r.cmd(t, "\x00\x01\x02", "publish", "--binary", "room", "-")
	require.Equal(t, exitOK, code, errs)
	assert.Equal(t, "published 3 B to room: delivered to 1, failed 0\n", out)
	typ, msg = readMsg(t, ws)
	assert.Equal(t, websocket.BinaryMessage, typ)
	assert.Equal(t, "\x00\x01\x02", msg)
	assert.JSONEq(t, `{"link":`+sid+`,"channel":"room"}`, r.ok(t, "unsubscribe", sid, "room", "--json"))
	assert.Equal(t, "no channels\n", r.ok(t, "channels"))
	assert.Equal(t, "[]\n", r.ok(t, "channels", "--json"))

	// send: text, binary, from stdin, and a message that looks like a flag
	assert.Equal(t, "queued 6 B for link "+sid+"\n", r.ok(t, "send", sid, "pushed"))
	typ, msg = readMsg(t, ws)
	assert.Equal(t, websocket.TextMessage, typ)
	assert.Equal(t, "pushed", msg)
	r.ok(t, "send", "--binary", sid, "\xff")
	typ, msg = readMsg(t, ws)
	assert.Equal(t, websocket.BinaryMessage, typ)
	assert.Equal(t, "\xff", msg)
	code, _, errs = r.cmd(t, "from stdin", "send", sid, "-")
	require.Equal(t, exitOK, code, errs)
	_, msg = readMsg(t, ws)
	assert.Equal(t, "from stdin", msg)
	r.ok(t, "send", sid, "--", "--not-a-flag")
	_, msg = readMsg(t, ws)
	assert.Equal(t, "--not-a-flag", msg)

	// trace: the link's callbacks, oldest first
	out = r.ok(t, "trace", sid)
	assert.Regexp(t, `^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{6} +LWS_CALLBACK_\w+ \(\d+\)\n`, out, "the first has no delta")
	assert.Regexp(t, `(?m)^\S+ \S+ +\+\S+ +LWS_CALLBACK_ESTABLISHED \(0\)$`, out)
	assert.Regexp(t, `(?m)^\S+ \S+ +\+\S+ +LWS_CALLBACK_RECEIVE \(6\)$`, out)
	var tr struct {
		Link    uint64
		Reasons []traceEntry
	}
	require.NoError(t, json.Unmarshal([]byte(r.ok(t, "trace", sid, "--json")), &tr))
	assert.Equal(t, id, tr.Link)
	assert.GreaterOrEqual(t, len(tr.Reasons), strings.Count(out, "\n"))

	// An HTTP link cannot be sent to: refused (409).
	hc, err := net.Dial("tcp", r.pub)
	require.NoError(t, err)
	defer hc.Close()
	_, err = hc.Write([]byte("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"))
	require.NoError(t, err)
	_, err = hc.Read(make([]byte, 1024))
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal([]byte(r.ok(t, "links", "--json", "--type", "httplisten")), &links))
	require.Len(t, links, 1)
	assert.Contains(t, r.fails(t, exitRefused, "send", fmt.Sprint(links[0].ID), "x"), "refused (409): not a WebSocket link")

	// close, then everything on the link says it is gone and how.
	assert.Equal(t, "closing link "+sid+` with 4001 "kicked"`+"\n", r.ok(t, "close", sid, "4001", "kicked"))
	_, _, err = ws.ReadMessage()
	require.True(t, websocket.IsCloseError(err, 4001), "%v", err)
	require.Eventually(t, func() bool { c, _, _ := r.cmd(t, "", "link", sid); return c == exitGone }, 10*time.Second, 10*time.Millisecond)
	for _, args := range [][]string{{"link", sid}, {"send", sid, "late"}, {"trace", sid}, {"close", sid, "1000"}, {"subscribe", sid, "room"}} {
		errs := r.fails(t, exitGone, args...)
		assert.Regexp(t, `^lwsgate: link `+sid+`: gone \(410\): link is gone; closed 4001 "kicked" by the gateway at \d{4}-`, errs)
	}
	code, out, _ = r.cmd(t, "", "link", sid, "--json")
	assert.Equal(t, exitGone, code)
	assert.Contains(t, out, `"closed":{"code":4001,"reason":"kicked","by":"gateway"`, "--json prints the error answer as it came")

	// A link never issued: not found.
	assert.Equal(t, "lwsgate: link 99999999: not found (404): no such link\n", r.fails(t, exitNotFound, "link", "99999999"))
	r.fails(t, exitNotFound, "trace", "99999999", "--follow")

	// Usage, refused before asking.
	for _, args := range [][]string{
		{"links", "extra"}, {"link"}, {"link", "abc"}, {"link", "0"}, {"close", "7", "1005"}, {"close", "7", "x"},
		{"close", "7", "1000", strings.Repeat("r", 124)}, {"send", "7"}, {"links", "--bogus"}, {"trace", "7", "--interval", "0s"},
	} {
		r.fails(t, exitUsage, args...)
	}
	code, _, errs = r.cmd(t, "", "trace", "-h")
	assert.Equal(t, exitOK, code)
	assert.Contains(t, errs, "usage: lwsgate trace [flags] ID")
	assert.Contains(t, errs, "-follow")
}

// TestAdminCommandsToken: the token comes from --token or
// LWSGATE_ADMIN_TOKEN, --token first; a wrong or missing one is refused
// (5) with a hint.
func TestAdminCommandsToken(t *testing.T) {
	r := startAdminRig(t)
	assert.Contains(t, r.fails(t, exitRefused, "links", "--token", "wrong"), "links: refused by the admin API (401): admin token required")
	delete(r.env, "LWSGATE_ADMIN_TOKEN")
	assert.Contains(t, r.fails(t, exitRefused, "nodes"), "(set --token or LWSGATE_ADMIN_TOKEN)")
	r.ok(t, "nodes", "--token", rigToken)
}

// TestAdminCommandsUnreachable: nothing listening at the admin address is
// exit 6 naming the address, whether from --admin or LWSGATE_ADMIN_URL;
// an address that is not one is usage (2).
func TestAdminCommandsUnreachable(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	dead := ln.Addr().String()
	ln.Close()
	r := &adminRig{env: map[string]string{}}
	errs := r.fails(t, exitUnreachable, "links", "--admin", dead)
	assert.Contains(t, errs, "admin API at http://"+dead+" unreachable: dial tcp "+dead+": connect: connection refused")
	r.env["LWSGATE_ADMIN_URL"] = "http://" + dead
	assert.Contains(t, r.fails(t, exitUnreachable, "nodes"), "http://"+dead)
	assert.Contains(t, r.fails(t, exitUsage, "nodes", "--admin", "ftp://x"), `--admin "ftp://x": want http://HOST:PORT or HOST:PORT`)

	// A listener that never answers: the timeout.
	ln, err = net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	assert.Contains(t, r.fails(t, exitUnreachable, "nodes", "--admin", ln.Addr().String(), "--timeout", "200ms"), "no answer within 200ms")
}

// TestAdminTraceFollow: trace --follow prints callbacks as they come and,
// when the link closes, its close code, then exits 0; with --json, one
// JSON object a line and the 410's answer last.
func TestAdminTraceFollow(t *testing.T) {
	r := startAdminRig(t)
	for _, asJSON := range []bool{false, true} {
		ws, id := r.client(t)
		out := &testutil.Buffer{}
		done := make(chan int, 1)
		args := []string{fmt.Sprint(id), "--follow", "--interval", "20ms"}
		if asJSON {
			args = append(args, "--json")
		}
		go func() {
			done <- runAdmin(context.Background(), findAdminCommand("trace"), args, nil, out, io.Discard, func(k string) string { return r.env[k] })
		}()
		require.Eventually(t, func() bool { return strings.Contains(out.String(), "LWS_CALLBACK_RECEIVE") }, 10*time.Second, 5*time.Millisecond)
		n := strings.Count(out.String(), "LWS_CALLBACK_RECEIVE")
		require.NoError(t, ws.WriteMessage(websocket.TextMessage, []byte("echo me")))
		readMsg(t, ws)
		require.Eventually(t, func() bool { return strings.Count(out.String(), "LWS_CALLBACK_RECEIVE") == n+1 }, 10*time.Second, 5*time.Millisecond,
			"the new RECEIVE, once: %s", out)
		require.NoError(t, ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(4100, "bye"), time.Now().Add(time.Second)))
		_, _, _ = ws.ReadMessage()
		select {
		case code := <-done:
			require.Equal(t, exitOK, code, out.String())
		case <-time.After(10 * time.Second):
			t.Fatalf("trace --follow did not end: %s", out)
		}
		lines := strings.Split(strings.TrimSpace(out.String()), "\n")
		last := lines[len(lines)-1]
		if !asJSON {
			assert.Regexp(t, fmt.Sprintf(`^link %d closed: 4100 "bye" by the peer at \d{4}-`, id), last)
			continue
		}
		for _, l := range lines[:len(lines)-1] {
			var e traceEntry
			require.NoError(t, json.Unmarshal([]byte(l), &e), l)
			assert.NotEmpty(t, e.Name)
		}
		var gone struct {
			Code   int
			Closed gateway.ClosedLink
		}
		require.NoError(t, json.Unmarshal([]byte(last), &gone), last)
		assert.Equal(t, 410, gone.Code)
		assert.Equal(t, 4100, gone.Closed.Code)
	}
}

// TestAdminRoutesCommand: a relayed link's routes (with -upstream), and
// its backend link in the table.
func TestAdminRoutesCommand(t *testing.T) {
	up, _ := upstreamEcho(t)
	r := startAdminRig(t, "-upstream", "ws"+strings.TrimPrefix(up.URL, "http"))
	assert.Equal(t, "no routes\n", r.ok(t, "routes"))
	ws, resp, err := websocket.DefaultDialer.Dial("ws://"+r.pub+"/", nil)
	require.NoError(t, err)
	resp.Body.Close()
	defer ws.Close()
	require.NoError(t, ws.WriteMessage(websocket.TextMessage, []byte("x")))
	_, msg := readMsg(t, ws)
	require.Equal(t, "up:x", msg)
	var links []gateway.LinkInfo
	require.NoError(t, json.Unmarshal([]byte(r.ok(t, "links", "--json")), &links))
	require.Len(t, links, 2)
	out := r.ok(t, "routes")
	assert.Regexp(t, fmt.Sprintf(`^LINK +PEER +DEPTH\n%d +%d +0\n%d +%d +0\n$`, links[0].ID, links[1].ID, links[1].ID, links[0].ID), out)
	assert.Regexp(t, `\n\d+ +tcpconnect +- +127\.0\.0\.1:\d+ `, r.ok(t, "links", "--type", "tcpconnect"))
}

// TestHelp: lwsgate help lists every command and the exit codes, and
// the commands are reached from main's run.
func TestHelp(t *testing.T) {
	var out bytes.Buffer
	require.Equal(t, 0, run(context.Background(), []string{"help"}, &out, io.Discard, nil))
	for _, c := range adminCommands {
		assert.Contains(t, out.String(), "lwsgate "+c.name)
	}
	for _, code := range []string{"0  done", "2  usage", "3  not found", "4  gone", "5  refused", "6  unreachable"} {
		assert.Contains(t, out.String(), code)
	}
	assert.Contains(t, out.String(), "-listen")
	var errb bytes.Buffer
	t.Setenv("LWSGATE_ADMIN_URL", "ftp://x")
	assert.Equal(t, exitUsage, run(context.Background(), []string{"links"}, io.Discard, &errb, nil))
	assert.Contains(t, errb.String(), "LWSGATE_ADMIN_URL")
}

func TestHumanUnits(t *testing.T) {
	for n, want := range map[int64]string{0: "0 B", 1023: "1023 B", 1024: "1.0 KiB", 1536: "1.5 KiB", 10 << 10: "10 KiB", 5 << 20: "5.0 MiB", 3 << 30: "3.0 GiB"} {
		assert.Equal(t, want, humanBytes(n), n)
	}
	for d, want := range map[time.Duration]string{0: "0s", 42 * time.Second: "42s", 187 * time.Second: "3m07s",
		2*time.Hour + 5*time.Minute: "2h05m", 99 * time.Hour: "4d03h", -time.Second: "0s"} {
		assert.Equal(t, want, humanAge(d), d)
	}
}

// startHistoryRig is an admin rig on one embedded NATS node whose
// channels h:* have a history of 10 messages.
func startHistoryRig(t *testing.T) *adminRig {
	t.Helper()
	dir := t.TempDir()
	conf := filepath.Join(dir, "lwsgate.yaml")
	require.NoError(t, os.WriteFile(conf, []byte(`tokens: {secret: s}
cluster:
  engine: nats
  nats: {embedded: {store_dir: "`+filepath.Join(dir, "js")+`"}}
  channels: [{match: "h:*", history: {size: 10}}]
`), 0o600))
	return startAdminRig(t, "-config", conf)
}

// TestAdminPublishHistory: lwsgate publish on a channel with a history
// says where it was stored (one embedded NATS node).
func TestAdminPublishHistory(t *testing.T) {
	r := startHistoryRig(t)
	assert.Regexp(t, `^published 5 B to h:1: stored at offset 1 \(epoch [0-9a-f]+\)\n$`, r.ok(t, "publish", "h:1", "hello"))
	assert.Equal(t, "published 5 B to room: delivered to 0, failed 0\n", r.ok(t, "publish", "room", "hello"))
}

// TestAdminSubscribeSince: lwsgate subscribe --since OFFSET:EPOCH joins
// a link to a history channel at a position: the link is sent the
// subscribed reply and what it missed, and the command prints whether
// that is all of it (recovered), the offset and the epoch, as a table
// line or the API's JSON. since on a plain channel is the gateway's 400
// (usage, 2); on a member already, its 409 (refused, 5); a malformed
// --since is usage before asking.
func TestAdminSubscribeSince(t *testing.T) {
	r := startHistoryRig(t)
	ws, id := r.client(t)
	sid := fmt.Sprint(id)
	stored := regexp.MustCompile(`^published \d+ B to h:1: stored at offset (\d+) \(epoch ([0-9a-f]+)\)\n$`)
	var first, epoch string
	for _, m := range []string{"one", "two", "three"} {
		out := r.ok(t, "publish", "h:1", m)
		sub := stored.FindStringSubmatch(out)
		require.NotNil(t, sub, out)
		if first == "" {
			first, epoch = sub[1], sub[2]
		}
		require.Equal(t, epoch, sub[2])
	}

	// At the first message: it is sent the two after it.
	assert.Equal(t, fmt.Sprintf("link %s subscribed to h:1 at offset 3 (epoch %s): recovered, sent what it missed\n", sid, epoch),
		r.ok(t, "subscribe", sid, "h:1", "--since", first+":"+epoch))
	_, msg := readMsg(t, ws)
	assert.JSONEq(t, `{"type":"subscribed","channel":"h:1","recovered":true,"offset":3,"epoch":"`+epoch+`"}`, msg)
	for _, want := range []string{"two", "three"} {
		_, msg = readMsg(t, ws)
		assert.Equal(t, want, msg)
	}

	// A member already: refused; at another epoch: not recovered, in JSON.
	assert.Contains(t, r.fails(t, exitRefused, "subscribe", sid, "h:1", "--since", first+":"+epoch),
		"refused (409): link "+sid+` is a member of "h:1" already`)
	r.ok(t, "unsubscribe", sid, "h:1")
	var ans struct {
		Link      uint64
		Channel   string
		Recovered *bool
		gateway.Position
	}
	require.NoError(t, json.Unmarshal([]byte(r.ok(t, "subscribe", sid, "h:1", "--since", "3:0bad", "--json")), &ans))
	require.NotNil(t, ans.Recovered)
	assert.False(t, *ans.Recovered)
	assert.Equal(t, id, ans.Link)
	assert.Equal(t, gateway.Position{Offset: 3, Epoch: epoch}, ans.Position)
	r.ok(t, "unsubscribe", sid, "h:1")
	assert.Regexp(t, fmt.Sprintf(`^link %s subscribed to h:1 at offset 3 \(epoch %s\): not recovered, the history was trimmed or its epoch changed\n$`, sid, epoch),
		r.ok(t, "subscribe", sid, "h:1", "--since", "3:0bad"))

	// Without since: from now; on a plain channel, as before.
	r.ok(t, "unsubscribe", sid, "h:1")
	assert.Equal(t, fmt.Sprintf("link %s subscribed to h:1 at offset 3 (epoch %s)\n", sid, epoch), r.ok(t, "subscribe", sid, "h:1"))
	assert.Equal(t, "link "+sid+" subscribed to room\n", r.ok(t, "subscribe", sid, "room"))

	// since where there is no history, or not a position.
	assert.Contains(t, r.fails(t, exitUsage, "subscribe", sid, "room2", "--since", first+":"+epoch),
		`link `+sid+`: Bad Request (400): since: channel "room2" has no history`)
	for _, bad := range []string{"3", "x:" + epoch, "3:", "-1:" + epoch} {
		assert.Contains(t, r.fails(t, exitUsage, "subscribe", sid, "h:1", "--since", bad), fmt.Sprintf("--since %q: want OFFSET:EPOCH", bad))
	}
}
