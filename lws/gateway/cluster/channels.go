package cluster

import (
	"encoding/binary"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
)

// A channel is the core subject lws.<cluster>.ch.<EncodeToken(channel)>.
// A node subscribes to it while it has local members, so NATS routes a
// publish only to the nodes that want it. Every subscription feeds one
// queue (Config.DeliverQueue) drained by one goroutine, so deliveries
// keep the order the connection received them in, across channels.
//
// The payload is an envelope: a version byte, then as uvarints the
// publisher's incarnation, the generation and the sequence number of its
// counter for the channel, then the Kind byte and the data. A receiver
// that sees a publisher's sequence jump counts the messages it missed
// (Stats.Gaps): core NATS is at most once, and the count is how a loss
// shows. A publisher forgets the counters of channels it has not
// published on for a minute or two; the next publish starts a new
// generation at 1.
const envelopeV1 = 1

func appendEnvelope(b []byte, inc Incarnation, gen, seq uint64, m Message) []byte {
	b = append(b, envelopeV1)
	b = binary.AppendUvarint(b, uint64(inc))
	b = binary.AppendUvarint(b, gen)
	b = binary.AppendUvarint(b, seq)
	b = append(b, m.Kind)
	return append(b, m.Data...)
}

func parseEnvelope(b []byte) (inc Incarnation, gen, seq uint64, m Message, ok bool) {
	if len(b) < 1 || b[0] != envelopeV1 {
		return
	}
	b = b[1:]
	var v [3]uint64
	for i := range v {
		n, k := binary.Uvarint(b)
		if k <= 0 {
			return
		}
		v[i], b = n, b[k:]
	}
	if len(b) < 1 || v[0] > MaxIncarnation {
		return
	}
	return Incarnation(v[0]), v[1], v[2], Message{Kind: b[0], Data: b[1:]}, true
}

// channels are this node's channel subscriptions.
//
// Concurrency: safe from any goroutine; chanSub.seen belongs to the
// delivery goroutine.
type channels struct {
	mu      sync.RWMutex
	byName  map[string]*chanSub
	bySubj  map[string]*chanSub
	in      chan *nats.Msg
	dropped uint64 // by subscriptions since removed
	// ops and endHistory, for history channels: set by the nats engine.
	ops        *opQueue
	endHistory func(*chanSub)
}

// chanSub is one channel's subscription. Concurrency: guarded by
// channels.mu, except seen, which only the delivery goroutine touches.
type chanSub struct {
	name      string
	subj      string
	sub       *nats.Subscription
	lingering bool
	gen       uint64 // bumped by every Interest change, to void old linger timers
	timer     *time.Timer
	seen      map[Incarnation]*pubSeq // per publisher: its last generation and sequence
	h         *histChan               // history channels: their state (histchan.go)
}

// pubSeq is a publisher's counter as a receiver last saw it.
// Concurrency: the delivery goroutine's.
type pubSeq struct{ gen, seq uint64 }

func (c *channels) init(queue int) {
	c.byName = map[string]*chanSub{}
	c.bySubj = map[string]*chanSub{}
	c.in = make(chan *nats.Msg, queue)
}

func (c *channels) stats() (n int, dropped uint64) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	dropped = c.dropped
	for _, cs := range c.byName {
		if d, err := cs.sub.Dropped(); err == nil {
			dropped += uint64(d)
		}
	}
	return len(c.byName), dropped
}

// removeLocked unsubscribes cs. c.mu is held.
func (c *channels) removeLocked(cs *chanSub) {
	if d, err := cs.sub.Dropped(); err == nil {
		c.dropped += uint64(d)
	}
	_ = cs.sub.Unsubscribe()
	delete(c.byName, cs.name)
	delete(c.bySubj, cs.subj)
	if cs.h != nil && c.ops != nil {
		c.ops.post(func() { c.endHistory(cs) })
	}
}

func (c *channels) closeAll() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, cs := range c.byName {
		if cs.timer != nil {
			cs.timer.Stop()
		}
		c.removeLocked(cs)
	}
}

func (e *natsEngine) Interest(channel string, on bool) error {
	if e.life.Err() != nil {
		return ErrClosed
	}
	c := &e.ch
	c.mu.Lock()
	defer c.mu.Unlock()
	cs := c.byName[channel]
	if on {
		if cs != nil {
			if cs.lingering {
				cs.timer.Stop()
				cs.lingering = false
				cs.gen++
			}
			return nil
		}
		hs, hist := e.hist.lookup(channel)
		subj := e.pre + "ch." + EncodeToken(channel)
		if hist {
			subj = e.pre + "live." + EncodeToken(channel)
		}
		sub, err := e.nc.ChanSubscribe(subj, c.in)
		if err != nil {
			return err
		}
		cs = &chanSub{name: channel, subj: subj, sub: sub}
		if hist {
			cs.h = &histChan{hs: hs, subj: hs.subject(channel)}
			e.ops.post(func() { e.startHistory(cs) })
		}
		c.byName[channel], c.bySubj[subj] = cs, cs
		return nil
	}
	if cs == nil || cs.lingering {
		return nil
	}
	if e.cfg.Linger < 0 {
		c.removeLocked(cs)
		return nil
	}
	cs.lingering = true
	cs.gen++
	gen := cs.gen
	cs.timer = time.AfterFunc(e.cfg.Linger, func() {
		c.mu.Lock()
		defer c.mu.Unlock()
		if cs.gen == gen && c.byName[cs.name] == cs {
			c.removeLocked(cs)
		}
	})
	return nil
}

// publisher numbers this node's publishes per channel.
//
// Concurrency: safe from any goroutine; mu also orders each channel's
// numbering with its write to the connection.
type publisher struct {
	mu        sync.Mutex
	cur, prev map[string]*pubChan
	rotated   time.Time
	gens      uint64
	buf       []byte
}

// pubChan is this node's counter for one channel.
// Concurrency: guarded by publisher.mu.
type pubChan struct {
	subj     string
	gen, seq uint64
}

// counterLocked finds or starts channel's counter; counters unused for
// one to two minutes are forgotten.
func (p *publisher) counterLocked(pre, channel string) *pubChan {
	if now := time.Now(); now.Sub(p.rotated) > time.Minute || p.cur == nil {
		p.prev, p.cur, p.rotated = p.cur, map[string]*pubChan{}, now
	}
	if pc := p.cur[channel]; pc != nil {
		return pc
	}
	pc := p.prev[channel]
	if pc == nil {
		p.gens++
		pc = &pubChan{subj: pre + "ch." + EncodeToken(channel), gen: p.gens}
	}
	p.cur[channel] = pc
	return pc
}

// publishPlain publishes on a plain channel: see Engine.Publish.
func (e *natsEngine) publishPlain(channel string, m Message) (Position, error) {
	if e.down.Load() {
		return Position{}, e.downErr()
	}
	inc := e.Incarnation()
	p := &e.pub
	p.mu.Lock()
	pc := p.counterLocked(e.pre, channel)
	pc.seq++
	p.buf = appendEnvelope(p.buf[:0], inc, pc.gen, pc.seq, m)
	err := e.nc.Publish(pc.subj, p.buf) // copies p.buf into the connection's buffer
	p.mu.Unlock()
	if err != nil {
		return Position{}, err
	}
	e.count.publishes.Add(1)
	return Position{}, nil
}

// deliverLoop hands messages from other nodes to Hooks.Deliver, and
// runs the history channels' operations (histchan.go).
func (e *natsEngine) deliverLoop() {
	tick := time.NewTicker(max(e.cfg.HistoryCheck/2, 10*time.Millisecond))
	defer tick.Stop()
	var ticks uint64
	for {
		select {
		case <-e.life.Done():
			return
		case m := <-e.ch.in:
			e.deliver(m)
		case <-e.ops.wake:
			for _, f := range e.ops.take() {
				f()
			}
		case <-tick.C:
			ticks++
			e.checkQuiet(ticks%2 == 0)
		}
	}
}

func (e *natsEngine) deliver(m *nats.Msg) {
	c := &e.ch
	c.mu.RLock()
	cs := c.bySubj[m.Subject]
	lingering := cs != nil && cs.lingering
	c.mu.RUnlock()
	if cs == nil {
		return // unsubscribed since
	}
	if cs.h != nil {
		e.onLive(cs, m)
		return
	}
	from, gen, seq, msg, ok := parseEnvelope(m.Data)
	if !ok {
		e.log.Warn("cluster: dropped a message in an unknown format", "subject", m.Subject)
		return
	}
	if cs.seen == nil {
		cs.seen = map[Incarnation]*pubSeq{}
	}
	switch ps := cs.seen[from]; {
	case ps == nil: // the first from this publisher since subscribing
		cs.seen[from] = &pubSeq{gen, seq}
	case ps.gen != gen: // a new counter: messages before this one are missing
		e.count.gaps.Add(seq - 1)
		*ps = pubSeq{gen, seq}
	default:
		if seq > ps.seq+1 {
			e.count.gaps.Add(seq - ps.seq - 1)
		}
		ps.seq = seq
	}
	if lingering {
		return // no local member wants it
	}
	e.count.deliveries.Add(1)
	if e.hooks.Deliver != nil {
		e.hooks.Deliver(Delivery{Channel: cs.name, Message: msg, From: from})
	}
}
