package clustertest

// The history checker against three bin/lwsgate processes (the engine's
// own, in-process, is TestHistoryChecker in lws/gateway/cluster; both
// judge with testutil.CheckHistory). WebSocket subscribers are spread
// over the nodes on two history channels (envelope on: each delivery
// says its offset and epoch); a publisher sends a few hundred messages a
// second through the admin API, each acknowledged with its position,
// retrying one that was not on another node with the same
// Idempotency-Key. A subscriber whose link ends subscribes again on
// another node with the last position it saw (since). Then, in turn:
//
//  1. kill -9 of a node that leads no history stream: its subscribers
//     resume on the others; a survivor fires one disconnect hook (1006)
//     per lost link; the node is started again on its store;
//  2. kill -9 of the leader of the busiest history stream, the same;
//  3. a node cut off (its routes reset) for 3s;
//  4. a node paused (SIGSTOP) for 300ms, then 2s.
//
// Every acknowledged offset must reach every subscriber after it first
// joined, in order, once, and nothing else; every resume must answer
// recovered true (the history holds 100,000). Then recovered false is
// shown to mean trimmed: on a channel that keeps 5, a subscriber that
// missed 4 resumes recovered true, one that missed 9 recovered false,
// and the history endpoint shows the 4 oldest of those gone.

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/lwsgate/lwsgate/internal/testutil"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// position is a place in a channel's history (README: offset, epoch).
type position struct {
	Offset uint64 `json:"offset"`
	Epoch  string `json:"epoch"`
}

// hist is what the publisher and the subscribers share of the cluster:
// each node's addresses and whether it is up.
//
// Concurrency: safe from any goroutine.
type hist struct {
	mu    sync.Mutex
	pub   [3]string
	admin [3]string
	down  [3]bool
}

func (h *hist) set(i int, n *node, down bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.pub[i], h.admin[i], h.down[i] = n.pub, n.admin, down
}

func (h *hist) setDown(i int, down bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.down[i] = down
}

// pick is the first node up from n on (round robin), but not avoid
// (-1: any); -1 when none is.
func (h *hist) pick(n, avoid int) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	for k := range 3 {
		i := (n + k) % 3
		if !h.down[i] && i != avoid {
			return i
		}
	}
	return -1
}

func (h *hist) addrs(i int) (pub, admin string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.pub[i], h.admin[i]
}

// hsub is a WebSocket subscriber of a history channel that follows the
// cluster: when its link ends it subscribes again on another node that
// is up, since the last position it saw.
//
// Concurrency: its fields under mu; run is its goroutine.
type hsub struct {
	name, channel string
	h             *hist
	mu            sync.Mutex
	got           []testutil.Delivered
	last          position // the last position it saw (a delivery or a reply)
	start         uint64   // its position when it first joined
	joined        bool
	node          int    // where it is (or was last)
	link          uint64 // its link there
	resumes       int
	lost          []string // resumes answered recovered false
	problems      []string // error messages, bad JSON
	ws            *websocket.Conn
	stopped       bool
	changed       chan struct{} // a token when anything changed
	done          chan struct{}
}

func newSub(h *hist, name, channel string, node int) *hsub {
	return &hsub{name: name, channel: channel, h: h, node: node, changed: make(chan struct{}, 1), done: make(chan struct{})}
}

func (s *hsub) poke() {
	select {
	case s.changed <- struct{}{}:
	default:
	}
}

// run connects to its node, then to another each time its link ends,
// until stop.
func (s *hsub) run() {
	defer close(s.done)
	first := true
	for try := 0; ; try++ {
		s.mu.Lock()
		if s.stopped {
			s.mu.Unlock()
			return
		}
		from := s.node
		s.mu.Unlock()
		avoid := -1
		if !first {
			avoid = from // it just lost that one
		}
		i := s.h.pick(from+try, avoid)
		if i < 0 || !s.session(i, first) {
			time.Sleep(50 * time.Millisecond)
			continue
		}
		first = false
	}
}

// session is one link to node i: it asks its id, subscribes (since its
// last position unless first), and reads until the link ends. false:
// it could not subscribe.
func (s *hsub) session(i int, first bool) bool {
	pub, _ := s.h.addrs(i)
	d := websocket.Dialer{HandshakeTimeout: 2 * time.Second}
	ws, _, err := d.Dial("ws://"+pub+"/", nil)
	if err != nil {
		return false
	}
	defer ws.Close()
	s.mu.Lock()
	if s.stopped {
		s.mu.Unlock()
		return true
	}
	s.ws = ws
	since := s.last
	s.mu.Unlock()
	sub := map[string]any{"action": "subscribe", "channel": s.channel}
	if !first {
		sub["since"] = since
	}
	_ = ws.SetReadDeadline(time.Now().Add(10 * time.Second))
	var info struct{ Link uint64 }
	if ws.WriteMessage(websocket.TextMessage, []byte(`{"action":"info"}`)) != nil || ws.ReadJSON(&info) != nil {
		return false
	}
	b, _ := json.Marshal(sub)
	if ws.WriteMessage(websocket.TextMessage, b) != nil {
		return false
	}
	subscribed := false
	for {
		_, p, err := ws.ReadMessage()
		if err != nil {
			return subscribed
		}
		if !subscribed {
			_ = ws.SetReadDeadline(time.Time{})
		}
		var m struct {
			Type      string
			Channel   string
			Recovered bool
			Error     string
			Data      *string
			position
		}
		if err := json.Unmarshal(p, &m); err != nil {
			s.problem(fmt.Sprintf("on n%d: %q: %v", i+1, p, err))
			continue
		}
		s.mu.Lock()
		switch {
		case m.Type == "subscribed" && m.Channel == s.channel:
			subscribed = true
			s.node, s.link = i, info.Link
			if !s.joined {
				s.joined, s.start = true, m.Offset
			}
			if !first {
				s.resumes++
				if !m.Recovered {
					s.lost = append(s.lost, fmt.Sprintf("on n%d since %+v: now %+v", i+1, since, m.position))
				}
			}
			if first {
				s.last = m.position
			} // else what it missed follows, up to m's position: since stays its last until then
		case m.Type == "" && m.Channel == s.channel && m.Data != nil:
			s.got = append(s.got, testutil.Delivered{Offset: m.Offset, Data: *m.Data})
			s.last = m.position
		default:
			s.problems = append(s.problems, fmt.Sprintf("on n%d: %s", i+1, p))
		}
		s.mu.Unlock()
		s.poke()
	}
}

// once runs one session on node i (no resume when its link ends).
func (s *hsub) once(i int, first bool) {
	go func() {
		defer close(s.done)
		s.session(i, first)
	}()
}

func (s *hsub) problem(p string) {
	s.mu.Lock()
	s.problems = append(s.problems, p)
	s.mu.Unlock()
}

// where is the node and link it is on.
func (s *hsub) where() (int, uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.node, s.link
}

// waitFor waits until cond (called with s locked) holds.
func (s *hsub) waitFor(t *testing.T, within time.Duration, what string, cond func(*hsub) bool) {
	t.Helper()
	deadline := time.After(within)
	for {
		s.mu.Lock()
		ok := cond(s)
		s.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-s.changed:
		case <-deadline:
			s.mu.Lock()
			defer s.mu.Unlock()
			t.Fatalf("%s: no %s in %v (on n%d, last %+v, %d received)", s.name, what, within, s.node+1, s.last, len(s.got))
		}
	}
}

func (s *hsub) stop() {
	s.mu.Lock()
	s.stopped = true
	if s.ws != nil {
		s.ws.Close()
	}
	s.mu.Unlock()
	<-s.done
}

// publisher publishes "CH/i" on each of its channels every interval
// through the admin API of a node that is up, with Idempotency-Key
// CH-i, and retries one that was not acknowledged (the same key) on
// another node for up to 30s, stop or not.
//
// Concurrency: safe from any goroutine.
type publisher struct {
	t        *testing.T
	h        *hist
	mu       sync.Mutex
	acked    map[string][]uint64
	epochs   map[string]string
	failures int
	sent     atomic.Int64
	stopc    chan struct{}
	wg       sync.WaitGroup
}

func (p *publisher) run(channels []string, interval time.Duration) {
	for c, ch := range channels {
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			p.publish(c, ch, interval)
		}()
	}
}

func (p *publisher) publish(c int, ch string, interval time.Duration) {
	hc := http.Client{Timeout: 2 * time.Second}
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for i := 0; ; i++ {
		select {
		case <-p.stopc:
			return
		case <-tick.C:
		}
		p.sent.Add(1)
		body := fmt.Sprintf(`{"channel":%q,"data":"%s/%d"}`, ch, ch, i)
		began := time.Now()
		for try := 0; ; try++ {
			n := p.h.pick(c+i+try, -1)
			if n < 0 || time.Since(began) > 30*time.Second {
				p.t.Errorf("%s: message %d never acknowledged", ch, i)
				break
			}
			_, admin := p.h.addrs(n)
			req, _ := http.NewRequest("POST", "http://"+admin+"/v1/api/publish", strings.NewReader(body))
			req.Header.Set("Idempotency-Key", fmt.Sprintf("%s-%d", ch, i))
			var res struct{ position }
			resp, err := hc.Do(req)
			if err == nil {
				if resp.StatusCode == 200 {
					err = json.NewDecoder(resp.Body).Decode(&res)
				} else {
					err = fmt.Errorf("status %d", resp.StatusCode)
				}
				resp.Body.Close()
			}
			if err == nil {
				p.mu.Lock()
				p.acked[ch] = append(p.acked[ch], res.Offset)
				if e := p.epochs[ch]; e != "" && e != res.Epoch {
					p.t.Errorf("%s: epoch %q after %q", ch, res.Epoch, e)
				}
				p.epochs[ch] = res.Epoch
				p.mu.Unlock()
				if d := time.Since(began); d > time.Second {
					p.t.Logf("%s: message %d acknowledged after %v, %d tries", ch, i, d.Round(time.Millisecond), try+1)
				}
				break
			}
			p.mu.Lock()
			p.failures++
			if p.failures%20 == 1 {
				p.t.Logf("publishing on %s through n%d: %v", ch, n+1, err)
			}
			p.mu.Unlock()
			// Retried even once stopping: a publish stored but not
			// acknowledged would be delivered as never acknowledged.
			time.Sleep(50 * time.Millisecond)
		}
	}
}

func (p *publisher) stop() {
	close(p.stopc)
	p.wg.Wait()
}

func (p *publisher) ackedOf(ch string) []uint64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := slices.Clone(p.acked[ch])
	slices.Sort(out)
	return out
}

// historyCounters are the lwsgate_history_* counters summed.
var historyCounters = []string{"repaired", "repaired_gaps", "duplicates", "unrepairable", "resumes", "resumes_lost"}

func TestHistoryProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("three lwsgate processes for about a minute")
	}
	began := time.Now()
	hooks, hookURL := newHookSink(t)
	c := startCluster(t, hookURL, `
  channels:
    - {match: "h:*", history: {size: 100000}, envelope: true}
    - {match: "tiny", history: {size: 5}, envelope: true}
  history_shards: 2
  history_check: 500ms
  hook_ack_wait: 3s    # a hook's sender killed: another node sends it after this`)
	h := &hist{}
	for i, n := range c.nodes {
		h.set(i, n, false)
	}
	channels := []string{"h:a", "h:b"}
	var subs []*hsub
	// join starts two subscribers of each channel on node i and waits
	// until they are in.
	join := func(i int) {
		t.Helper()
		var fresh []*hsub
		for _, ch := range channels {
			for range 2 {
				s := newSub(h, fmt.Sprintf("s%d(n%d,%s)", len(subs), i+1, ch), ch, i)
				subs = append(subs, s)
				fresh = append(fresh, s)
				go s.run()
			}
		}
		for _, s := range fresh {
			s.waitFor(t, 10*time.Second, "subscribed reply", func(s *hsub) bool { return s.joined })
		}
	}
	t.Cleanup(func() {
		for _, s := range subs {
			s.stop()
		}
	})
	for i := range c.nodes {
		join(i)
	}
	pub := &publisher{t: t, h: h, acked: map[string][]uint64{}, epochs: map[string]string{}, stopc: make(chan struct{})}
	pub.run(channels, 5*time.Millisecond)
	stopped := false
	defer func() {
		if !stopped {
			pub.stop()
		}
	}()

	counters := map[string]float64{}
	addCounters := func(n *node) {
		for _, k := range historyCounters {
			counters[k] += n.metric(t, "lwsgate_history_"+k+"_total")
		}
	}
	// lost is each link held by a killed node, by the node's name.
	lost := map[string][]*client{}
	deliveredByDead := 0
	// kill kill -9s node i; its subscribers move to the others, then it
	// starts again on its store.
	// kill kill -9s node i (its subscribers move to the others) and
	// returns the links it held.
	kill := func(i int, why string) ([]*client, time.Time) {
		t.Helper()
		n := c.nodes[i]
		var links []*client
		for _, s := range subs {
			if at, link := s.where(); at == i {
				links = append(links, &client{id: link})
			}
		}
		c.recorded(t, (i+1)%3, links) // else a lost link may have no hook (README)
		h.setDown(i, true)
		addCounters(n)
		deliveredByDead += delivered(t, n)
		require.NoError(t, n.cmd.Process.Kill())
		<-n.done
		killed := time.Now()
		lost[n.name] = append(lost[n.name], links...)
		for _, s := range subs {
			s.waitFor(t, 20*time.Second, "a resume off "+n.name, func(s *hsub) bool { return s.node != i })
		}
		t.Logf("%s (%s) killed: its %d subscribers resumed elsewhere within %v", n.name, why, len(links),
			time.Since(killed).Round(time.Millisecond))
		return links, killed
	}
	// restart starts node i again on its store; new clients come to it.
	restart := func(i int, killed time.Time) {
		t.Helper()
		n := c.start(t, i)
		for _, n := range c.nodes {
			sees(t, n, 30*time.Second)
		}
		h.set(i, n, false)
		join(i)
		t.Logf("%s restarted %v after kill -9", n.name, time.Since(killed).Round(time.Millisecond))
	}
	// hooked waits for a hook for each link name held.
	hooked := func(name string, links []*client, killed time.Time) {
		t.Helper()
		require.Eventually(t, func() bool {
			for _, l := range links {
				if len(hooks.of(l.id)) == 0 {
					return false
				}
			}
			return true
		}, 40*time.Second, 50*time.Millisecond, "the disconnect hooks of %s's links", name)
		t.Logf("%s's %d hooks in %v after kill -9", name, len(links), time.Since(killed).Round(time.Millisecond))
	}
	// killAndRestart: a node killed, restarted; its links' hooks come
	// before the next fault, so that no node killed next is sending one
	// as it dies.
	killAndRestart := func(i int, why string) {
		t.Helper()
		links, killed := kill(i, why)
		time.Sleep(time.Second) // the publisher runs on two nodes
		restart(i, killed)
		hooked(c.nodes[i].name, links, killed)
	}
	index := func(name string) int {
		for i, n := range c.nodes {
			if n.name == name {
				return i
			}
		}
		t.Fatalf("no node %q", name)
		return -1
	}

	time.Sleep(2 * time.Second) // the publisher runs on three nodes

	// A node killed; the node that sends its links' hooks killed too,
	// holding them (the sink keeps them waiting): another node sends
	// them once the queue's hook_ack_wait has passed.
	leader := streamLeader(t, c)
	victim := (leader + 1) % 3
	first := hooks.stallNext()
	linksA, killedA := kill(victim, "leads no history stream")
	time.Sleep(time.Second)
	restart(victim, killedA)
	var sender string
	select {
	case sender = <-first:
	case <-time.After(40 * time.Second):
		t.Fatalf("no hook of %s's links sent within 40s", c.nodes[victim].name)
	}
	x := index(sender)
	linksX, killedX := kill(x, "sending "+c.nodes[victim].name+"'s hooks")
	refused := hooks.release(sender)
	require.NotEmpty(t, refused, "the first hook held was %s's", sender)
	hooked(c.nodes[victim].name, linksA, killedA)
	for _, id := range refused {
		evs := hooks.of(id)
		require.Len(t, evs, 1, "link %d", id)
		assert.NotEqual(t, sender, evs[0].from, "link %d: its hook, held by %s as it died, came from another node", id, sender)
	}
	t.Logf("%s held %d of %s's hooks as it died; another node sent them", sender, len(refused), c.nodes[victim].name)
	restart(x, killedX)
	hooked(sender, linksX, killedX)

	leader = streamLeader(t, c)
	killAndRestart(leader, "the leader of the busiest history stream")

	cut := (leader + 1) % 3
	h.setDown(cut, true)
	c.net.set(c.nodes[cut].name, reset)
	time.Sleep(3 * time.Second)
	c.net.set(c.nodes[cut].name, pass)
	for _, n := range c.nodes {
		sees(t, n, 20*time.Second)
	}
	h.setDown(cut, false)
	t.Logf("%s cut off for 3s, healed", c.nodes[cut].name)
	time.Sleep(time.Second)

	paused := (cut + 1) % 3
	for _, d := range []time.Duration{300 * time.Millisecond, 2 * time.Second} {
		n := c.nodes[paused]
		h.setDown(paused, true)
		require.NoError(t, n.cmd.Process.Signal(syscall.SIGSTOP))
		time.Sleep(d)
		require.NoError(t, n.cmd.Process.Signal(syscall.SIGCONT))
		for _, n := range c.nodes {
			sees(t, n, 20*time.Second)
		}
		h.setDown(paused, false)
		t.Logf("%s paused for %v", n.name, d)
		time.Sleep(time.Second)
	}
	pub.stop()
	stopped = true

	// Every subscriber gets every acknowledged offset after its start,
	// in order, once, and nothing else.
	deliveries := 0
	for _, s := range subs {
		acked := pub.ackedOf(s.channel)
		require.NotEmpty(t, acked, s.channel)
		s.waitFor(t, 30*time.Second, "the last acknowledged message", func(s *hsub) bool {
			return s.last.Offset >= acked[len(acked)-1]
		})
		s.mu.Lock()
		got, start, lostResumes, problems := slices.Clone(s.got), s.start, s.lost, s.problems
		s.mu.Unlock()
		deliveries += len(got)
		for _, bad := range testutil.CheckHistory(acked, start, got) {
			t.Errorf("%s: %s", s.name, bad)
		}
		for _, l := range lostResumes {
			t.Errorf("%s: recovered false with nothing trimmed: %s", s.name, l)
		}
		for _, p := range problems {
			t.Errorf("%s: unexpected message %s", s.name, p)
		}
	}
	resumes := 0
	for _, s := range subs {
		resumes += s.resumes
	}
	for _, n := range c.nodes {
		addCounters(n)
	}
	acked := len(pub.ackedOf("h:a")) + len(pub.ackedOf("h:b"))
	t.Logf("acknowledged %d of %d published (%d attempts failed and were retried); delivered %d to %d subscribers "+
		"(%d resumes by them); nodes: repaired %.0f messages in %.0f gaps, %.0f duplicates dropped, %.0f unrepairable, "+
		"%.0f resumes, %.0f not recovered",
		acked, pub.sent.Load(), pub.failures, deliveries, len(subs), resumes, counters["repaired"], counters["repaired_gaps"],
		counters["duplicates"], counters["unrepairable"], counters["resumes"], counters["resumes_lost"])
	assert.Zero(t, counters["unrepairable"], "with a history of 100,000 nothing was trimmed")
	assert.Zero(t, counters["resumes_lost"], "with a history of 100,000 nothing was trimmed")

	// One disconnect hook (1006) per link each killed node held, from a
	// survivor (each had one before the next fault); once every hook
	// delivered has arrived, none twice.
	require.Eventually(t, func() bool { return deliveredByDead+delivered(t, c.nodes...) == hooks.total() },
		10*time.Second, 50*time.Millisecond, "every hook delivered to have arrived")
	for name, links := range lost {
		for _, l := range links {
			evs := hooks.of(l.id)
			require.Len(t, evs, 1, "link %d of %s", l.id, name)
			assert.Equal(t, 1006, evs[0].Code)
			assert.Equal(t, "gateway node lost: "+name, evs[0].Reason)
		}
		t.Logf("%s: one hook for each of its %d links", name, len(links))
	}

	t.Run("trimmed on purpose", func(t *testing.T) { trimmed(t, c, h) })
	t.Logf("history process tier %v", time.Since(began).Round(time.Millisecond))
}

// trimmed: on "tiny" (history 5), a subscriber that missed 4 messages
// resumes recovered true with the 4; one that missed 9 resumes
// recovered false with the 5 kept, and the stream holds only those.
func trimmed(t *testing.T, c *cluster, h *hist) {
	publish := func(n *node, i int) position {
		var res struct{ position }
		code, _ := n.api(t, "POST", "/v1/api/publish", fmt.Sprintf(`{"channel":"tiny","data":"t%d"}`, i), &res)
		require.Equal(t, 200, code)
		return res.position
	}
	a, b := c.nodes[0], c.nodes[1]
	near, far := newSub(h, "near", "tiny", 0), newSub(h, "far", "tiny", 0)
	for _, s := range []*hsub{near, far} {
		s.once(0, true) // one link, no resume
	}
	var ps []position
	for _, s := range []*hsub{near, far} {
		s.waitFor(t, 10*time.Second, "subscribed reply", func(s *hsub) bool { return s.joined })
	}
	for i := range 3 {
		ps = append(ps, publish(b, i))
	}
	far.waitFor(t, 10*time.Second, "3 messages", func(s *hsub) bool { return len(s.got) == 3 })
	far.stop()
	for i := 3; i < 8; i++ {
		ps = append(ps, publish(b, i))
	}
	near.waitFor(t, 10*time.Second, "8 messages", func(s *hsub) bool { return len(s.got) == 8 })
	near.stop()
	for i := 8; i < 12; i++ {
		ps = append(ps, publish(b, i))
	}
	offsets := func(ps []position) []uint64 {
		var out []uint64
		for _, p := range ps {
			out = append(out, p.Offset)
		}
		return out
	}
	// resume subscribes s again on the third node since its last
	// position, and reads until the last message published.
	resume := func(s *hsub) (bool, []uint64) {
		r := newSub(h, s.name+" again", "tiny", 2)
		r.last = s.last
		r.once(2, false)
		r.waitFor(t, 10*time.Second, "the last message", func(r *hsub) bool { return r.last.Offset == ps[len(ps)-1].Offset })
		r.stop()
		var got []uint64
		for _, d := range r.got {
			got = append(got, d.Offset)
		}
		return len(r.lost) == 0, got
	}
	rec, got := resume(near)
	assert.True(t, rec, "4 missed of a history of 5: recovered")
	assert.Equal(t, offsets(ps[8:]), got, "near's missed messages")
	rec, got = resume(far)
	assert.False(t, rec, "9 missed of a history of 5: not recovered")
	// What is still kept follows (the stream keeps one more than size,
	// to tell a member that missed size from one that missed more).
	require.GreaterOrEqual(t, len(got), 5, "far gets what is kept")
	require.Less(t, len(got), 9, "far gets what is kept")
	assert.Equal(t, offsets(ps[len(ps)-len(got):]), got, "far gets the last messages, in order")
	// Really trimmed: the stream holds the channel's last 5 messages.
	var page struct {
		Messages []struct{ Offset uint64 }
	}
	code, _ := a.api(t, "GET", "/v1/api/channels/tiny/history", "", &page)
	require.Equal(t, 200, code)
	var kept []uint64
	for _, m := range page.Messages {
		kept = append(kept, m.Offset)
	}
	assert.Equal(t, offsets(ps[7:]), kept, "the history of tiny")
}

// streamLeader is the node leading the history stream that holds the
// most messages, asked through a live node's NATS client port.
func streamLeader(t *testing.T, c *cluster) int {
	t.Helper()
	var leader string
	require.Eventually(t, func() bool {
		for i := range c.clients {
			nc, err := nats.Connect("nats://"+c.clients[i], nats.Timeout(2*time.Second))
			if err != nil {
				continue
			}
			defer nc.Close()
			js, err := jetstream.New(nc)
			if err != nil {
				continue
			}
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			var most uint64
			leader = ""
			names := js.StreamNames(ctx)
			for name := range names.Name() {
				if !strings.HasPrefix(name, "LWS_proc_H_") {
					continue
				}
				st, err := js.Stream(ctx, name)
				if err != nil || st.CachedInfo().Cluster == nil {
					continue
				}
				if info := st.CachedInfo(); info.State.Msgs > most && info.Cluster.Leader != "" {
					most, leader = info.State.Msgs, info.Cluster.Leader
				}
			}
			return leader != ""
		}
		return false
	}, 20*time.Second, 100*time.Millisecond, "a leader of a history stream")
	for i, n := range c.nodes {
		if n.name == leader {
			t.Logf("%s leads the busiest history stream", leader)
			return i
		}
	}
	t.Fatalf("the stream leader %q is no node", leader)
	return -1
}
