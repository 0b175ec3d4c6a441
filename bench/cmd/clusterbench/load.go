package main

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
)

// ring is how many publishes of the max phase the completion counters
// track at once (far more than -window).
const ring = 1 << 16

// load is the subscribers and the publisher of one setup.
//
// Concurrency: the subscribers' goroutines record under mu (samples) or
// atomically (the rest); the publisher is the caller's goroutine.
type load struct {
	subs   []*websocket.Conn
	remote []bool // subscriber i is on another node than the publisher
	// pubs: the publisher's link, on the first node; for memory3 one on
	// each node, each publish sent on all of them.
	pubs      []*websocket.Conn
	pad       string
	recording atomic.Bool
	sampling  atomic.Bool  // recording latencies too (the paced phase)
	delivered atomic.Int64 // while recording
	got       []atomic.Int32
	slot      [ring]atomic.Int32 // max phase: subscribers that have publish seq%ring
	done      chan struct{}      // max phase: a publish every subscriber has
	mu        sync.Mutex
	local     []time.Duration // latencies on the publisher's node, while recording
	other     []time.Duration // on the other nodes
	wg        sync.WaitGroup
	firstErr  atomic.Pointer[error]
}

func dial(n *node) (*websocket.Conn, error) {
	ws, _, err := websocket.DefaultDialer.Dial("ws://"+n.pub+"/", nil)
	return ws, err
}

// openLoad opens cfg.subs subscribers round-robin over nodes and the
// publisher on nodes[0] (for memory3, on each node), and waits until
// every subscriber receives.
func openLoad(cfg config, engine string, nodes []*node) (*load, error) {
	l := &load{pad: string(bytes.Repeat([]byte("x"), cfg.size)), got: make([]atomic.Int32, cfg.subs),
		done: make(chan struct{}, ring)}
	for i := range cfg.subs {
		n := nodes[i%len(nodes)]
		ws, err := dial(n)
		if err != nil {
			l.close()
			return nil, fmt.Errorf("subscriber %d on %s: %w", i, n.name, err)
		}
		l.subs = append(l.subs, ws)
		// memory3: each node has a publisher of its own, so every
		// delivery is on the publisher's node.
		l.remote = append(l.remote, n != nodes[0] && !publisherOnEach(engine))
		if err := ws.WriteMessage(websocket.TextMessage, []byte(`{"action":"subscribe","channel":"bench"}`)); err != nil {
			l.close()
			return nil, err
		}
	}
	for i, ws := range l.subs {
		_ = ws.SetReadDeadline(time.Now().Add(30 * time.Second))
		_, p, err := ws.ReadMessage()
		if err != nil || !bytes.Contains(p, []byte("subscribed")) {
			l.close()
			return nil, fmt.Errorf("subscriber %d: subscribe answered %q, %v", i, p, err)
		}
		_ = ws.SetReadDeadline(time.Time{})
	}
	pubOn := nodes[:1]
	if publisherOnEach(engine) {
		pubOn = nodes
	}
	for _, n := range pubOn {
		pub, err := dial(n)
		if err != nil {
			l.close()
			return nil, fmt.Errorf("publisher on %s: %w", n.name, err)
		}
		l.pubs = append(l.pubs, pub)
	}
	for i, ws := range l.subs {
		l.wg.Add(1)
		go l.read(i, ws, len(l.subs))
	}
	// Interest crosses the routes asynchronously: probe until every
	// subscriber has had a message.
	deadline := time.Now().Add(30 * time.Second)
	for seq := uint64(0); ; seq++ {
		if err := l.publish(ring - 1 - seq%1024); err != nil {
			l.close()
			return nil, err
		}
		time.Sleep(20 * time.Millisecond)
		all := true
		for i := range l.got {
			all = all && l.got[i].Load() > 0
		}
		if all {
			return l, nil
		}
		if time.Now().After(deadline) {
			l.close()
			return nil, errors.New("not every subscriber received a probe in 30s")
		}
	}
}

// publish sends publish seq, stamped with the time, on every publisher
// link.
func (l *load) publish(seq uint64) error {
	msg := []byte(`{"action":"publish","channel":"bench","pad":"` + l.pad + `","seq":` + strconv.FormatUint(seq, 10) +
		`,"t":` + strconv.FormatInt(time.Now().UnixNano(), 10) + `}`)
	for _, pub := range l.pubs {
		if err := pub.WriteMessage(websocket.TextMessage, msg); err != nil {
			return err
		}
	}
	return nil
}

// read is subscriber i's loop: it counts deliveries and takes each
// message's latency while recording, and counts its publish complete
// when n subscribers have it.
func (l *load) read(i int, ws *websocket.Conn, n int) {
	defer l.wg.Done()
	for {
		_, p, err := ws.ReadMessage()
		now := time.Now().UnixNano()
		if err != nil {
			return
		}
		l.got[i].Add(1)
		seq, ok1 := field(p, `"seq":`)
		t, ok2 := field(p, `"t":`)
		if !ok1 || !ok2 {
			err := fmt.Errorf("subscriber %d: unexpected message %q", i, p)
			l.firstErr.CompareAndSwap(nil, &err)
			continue
		}
		if l.recording.Load() {
			l.delivered.Add(1)
			if l.sampling.Load() {
				l.mu.Lock()
				if l.remote[i] {
					l.other = append(l.other, time.Duration(now-t))
				} else {
					l.local = append(l.local, time.Duration(now-t))
				}
				l.mu.Unlock()
			}
		}
		if l.slot[seq%ring].Add(1) == int32(n) {
			l.slot[seq%ring].Store(0)
			l.done <- struct{}{}
		}
	}
}

// field is the number after key in p.
func field(p []byte, key string) (int64, bool) {
	i := bytes.Index(p, []byte(key))
	if i < 0 {
		return 0, false
	}
	p = p[i+len(key):]
	j := 0
	for j < len(p) && p[j] >= '0' && p[j] <= '9' {
		j++
	}
	v, err := strconv.ParseInt(string(p[:j]), 10, 64)
	return v, err == nil
}

// drain empties the completions and the latencies of earlier phases.
func (l *load) reset() {
	for {
		select {
		case <-l.done:
			continue
		default:
		}
		break
	}
	l.mu.Lock()
	l.local, l.other = l.local[:0], l.other[:0]
	l.mu.Unlock()
	l.delivered.Store(0)
}

func (l *load) close() {
	for _, pub := range l.pubs {
		pub.Close()
	}
	for _, ws := range l.subs {
		ws.Close()
	}
	l.wg.Wait()
}

// quantiles returns p50 and p99 of d (sorted in place).
func quantiles(d []time.Duration) (time.Duration, time.Duration) {
	if len(d) == 0 {
		return 0, 0
	}
	slices.Sort(d)
	return d[len(d)*50/100], d[len(d)*99/100]
}
