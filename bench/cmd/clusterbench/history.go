package main

// The history phases of make bench-cluster (-history, on by default),
// on three nats nodes of their own whose channels h:* have a history
// (JetStream, R3, the default shards), after the fan-out setups, whose
// figures they leave alone:
//
//	publish  on each node, -hist-links links each keep -hist-window
//	         publishes in flight by the default publish rule, each link
//	         on a channel of its own; the gateway publishes with
//	         PublishAsync and answers each "published" once JetStream
//	         acknowledged it: acknowledged publishes a second per node,
//	         and the servers' CPU per acknowledged publish, over -d
//	resume   -hist-resumes times: -hist-missed messages published on a
//	         fresh channel through the first node, then a link on the
//	         second subscribes since the position before them: the time
//	         from its subscribe to the last missed message (p50, p99,
//	         max); the dial is not counted
//
// Like the rest, every figure is taken with the load generator on the
// same cores as the servers.

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
)

var (
	histOn      = flag.Bool("history", true, "measure history channels too (three more nats nodes)")
	histLinks   = flag.Int("hist-links", 4, "publishing links per node in the history publish phase")
	histWindow  = flag.Int("hist-window", 256, "publishes each link keeps in flight in the history publish phase")
	histResumes = flag.Int("hist-resumes", 200, "resumes measured")
	histMissed  = flag.Int("hist-missed", 100, "messages each resume missed")
	histShards  = flag.Int("hist-shards", 0, "the history nodes' cluster.history_shards; 0: lwsgate's default")
)

// histYAML gives the history nodes their channels.
const histYAML = `  channels: [{match: "h:*", history: {size: 100000}, envelope: true}]`

// position is a place in a channel's history.
type position struct {
	Offset uint64 `json:"offset"`
	Epoch  string `json:"epoch"`
}

// reply is what a link is told: published, subscribed or error; or, for
// a delivery (envelope), its channel and position.
type reply struct {
	Type      string
	Channel   string
	Recovered bool
	Error     string
	position
}

// runHistory measures both phases and prints them to w.
func runHistory(cfg config, w io.Writer) error {
	extra := histYAML
	if *histShards > 0 {
		extra += fmt.Sprintf("\n  history_shards: %d", *histShards)
	}
	nodes, err := startNodesWith(cfg, engineNATS, cfg.rounds, extra)
	if err != nil {
		return err
	}
	defer stopNodes(nodes)
	pad := string(bytes.Repeat([]byte("x"), cfg.size))
	if err := firstPublish(nodes[0], pad); err != nil {
		return err
	}
	fmt.Fprintf(w, "\nhistory: three nats nodes, channels h:* with a history (R3), load average before: %s\n", loadavg())
	if err := publishPhase(cfg, w, nodes, pad); err != nil {
		return fmt.Errorf("publish phase: %w", err)
	}
	if err := resumePhase(w, nodes, pad); err != nil {
		return fmt.Errorf("resume phase: %w", err)
	}
	return nil
}

// firstPublish publishes until one is acknowledged: the streams are
// ready (up to 30s after the nodes listen).
func firstPublish(n *node, pad string) error {
	ws, err := dial(n)
	if err != nil {
		return err
	}
	defer ws.Close()
	deadline := time.Now().Add(30 * time.Second)
	for {
		r, err := publishOne(ws, "h:ready", pad)
		if err == nil && r.Type == "published" {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("no history publish acknowledged in 30s: %+v, %v", r, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func publishMsg(ch, pad string) []byte {
	return []byte(fmt.Sprintf(`{"action":"publish","channel":%q,"data":%q}`, ch, pad))
}

// publishOne publishes on ch and reads the answer.
func publishOne(ws *websocket.Conn, ch, pad string) (reply, error) {
	var r reply
	if err := ws.WriteMessage(websocket.TextMessage, publishMsg(ch, pad)); err != nil {
		return r, err
	}
	_ = ws.SetReadDeadline(time.Now().Add(10 * time.Second))
	defer ws.SetReadDeadline(time.Time{})
	_, p, err := ws.ReadMessage()
	if err != nil {
		return r, err
	}
	return r, json.Unmarshal(p, &r)
}

// histPublisher is one link keeping window publishes in flight.
//
// Concurrency: its writer and reader goroutines; the counters atomic.
type histPublisher struct {
	ws       *websocket.Conn
	node     int
	inflight chan struct{}
	acked    atomic.Int64
	errs     atomic.Int64
	stop     atomic.Bool
	wg       sync.WaitGroup
}

func (p *histPublisher) run(ch, pad string) {
	msg := publishMsg(ch, pad)
	p.wg.Add(2)
	go func() { // writer
		defer p.wg.Done()
		for !p.stop.Load() {
			p.inflight <- struct{}{}
			if p.ws.WriteMessage(websocket.TextMessage, msg) != nil {
				return
			}
		}
	}()
	go func() { // reader
		defer p.wg.Done()
		for {
			_, b, err := p.ws.ReadMessage()
			if err != nil {
				return
			}
			if bytes.Contains(b, []byte(`"type":"published"`)) {
				p.acked.Add(1)
			} else {
				p.errs.Add(1)
			}
			select {
			case <-p.inflight:
			default:
			}
		}
	}()
}

func (p *histPublisher) close() {
	p.stop.Store(true)
	p.ws.Close()
	done := make(chan struct{})
	go func() { p.wg.Wait(); close(done) }()
	for {
		select {
		case <-done:
			return
		case <-p.inflight: // room for a writer waiting for it
		}
	}
}

func publishPhase(cfg config, w io.Writer, nodes []*node, pad string) error {
	var pubs []*histPublisher
	defer func() {
		for _, p := range pubs {
			p.close()
		}
	}()
	for i, n := range nodes {
		for k := range *histLinks {
			ws, err := dial(n)
			if err != nil {
				return err
			}
			p := &histPublisher{ws: ws, node: i, inflight: make(chan struct{}, *histWindow)}
			pubs = append(pubs, p)
			p.run(fmt.Sprintf("h:pub-%d-%d", i, k), pad)
		}
	}
	count := func() ([]int64, int64) {
		per := make([]int64, len(nodes))
		var errs int64
		for _, p := range pubs {
			per[p.node] += p.acked.Load()
			errs += p.errs.Load()
		}
		return per, errs
	}
	time.Sleep(cfg.warmup)
	a0, e0 := count()
	c0, err := cpuTime(nodes)
	if err != nil {
		return err
	}
	began := time.Now()
	time.Sleep(cfg.dur)
	a1, e1 := count()
	c1, err := cpuTime(nodes)
	if err != nil {
		return err
	}
	el := time.Since(began)
	each, cpu := since(c0, c1)
	var total int64
	fmt.Fprintf(w, "  publish by rule, %d links x %d in flight per node, %v: acknowledged publishes/s per node:",
		*histLinks, *histWindow, cfg.dur)
	for i := range nodes {
		d := a1[i] - a0[i]
		total += d
		fmt.Fprintf(w, " %.0f", float64(d)/el.Seconds())
	}
	fmt.Fprintf(w, " (all: %.0f; %d not acknowledged)\n", float64(total)/el.Seconds(), e1-e0)
	if total == 0 {
		return errors.New("no publish acknowledged")
	}
	fmt.Fprintf(w, "  server CPU per acknowledged publish: %.1f µs (per node: %v, %v, %v of CPU over %v)\n",
		float64(cpu.Microseconds())/float64(total), each[0], each[1], each[2], el.Round(time.Millisecond))
	return nil
}

func resumePhase(w io.Writer, nodes []*node, pad string) error {
	pub, err := dial(nodes[0])
	if err != nil {
		return err
	}
	defer pub.Close()
	missed := *histMissed
	var took []time.Duration
	for i := range *histResumes {
		ch := fmt.Sprintf("h:resume-%d", i)
		seed, err := publishOne(pub, ch, pad)
		if err != nil || seed.Type != "published" {
			return fmt.Errorf("%s: seed %+v, %v", ch, seed, err)
		}
		msg := publishMsg(ch, pad)
		for range missed {
			if err := pub.WriteMessage(websocket.TextMessage, msg); err != nil {
				return err
			}
		}
		_ = pub.SetReadDeadline(time.Now().Add(30 * time.Second))
		for range missed {
			var r reply
			_, p, err := pub.ReadMessage()
			if err == nil {
				err = json.Unmarshal(p, &r)
			}
			if err != nil || r.Type != "published" {
				return fmt.Errorf("%s: %+v, %v", ch, r, err)
			}
		}
		d, err := resumeOnce(nodes[1], ch, seed.position, missed)
		if err != nil {
			return fmt.Errorf("%s: %w", ch, err)
		}
		took = append(took, d)
	}
	slices.Sort(took)
	q := func(f float64) time.Duration { return took[int(f*float64(len(took)-1))].Round(10 * time.Microsecond) }
	fmt.Fprintf(w, "  resume of %d missed messages on another node, %d times: p50 %v, p99 %v, max %v\n",
		missed, len(took), q(0.5), q(0.99), took[len(took)-1].Round(10*time.Microsecond))
	return nil
}

// resumeOnce subscribes a new link on n to ch since, and times the
// subscribe until the last of the missed messages.
func resumeOnce(n *node, ch string, since position, missed int) (time.Duration, error) {
	ws, err := dial(n)
	if err != nil {
		return 0, err
	}
	defer ws.Close()
	b, _ := json.Marshal(map[string]any{"action": "subscribe", "channel": ch, "since": since})
	_ = ws.SetReadDeadline(time.Now().Add(30 * time.Second))
	began := time.Now()
	if err := ws.WriteMessage(websocket.TextMessage, b); err != nil {
		return 0, err
	}
	got := 0
	for got < missed {
		var r reply
		_, p, err := ws.ReadMessage()
		if err == nil {
			err = json.Unmarshal(p, &r)
		}
		switch {
		case err != nil:
			return 0, err
		case r.Type == "subscribed" && !r.Recovered:
			return 0, fmt.Errorf("resume since %+v: recovered false", since)
		case r.Type == "" && r.Channel == ch:
			got++
		case r.Type != "subscribed":
			return 0, fmt.Errorf("resume: %s", p)
		}
	}
	return time.Since(began), nil
}
