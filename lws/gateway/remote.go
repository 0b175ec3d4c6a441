package gateway

import (
	"sync"

	"github.com/lwsgate/lwsgate/lws"
	"github.com/lwsgate/lwsgate/lws/gateway/cluster"
)

// Deliveries from other nodes (cluster mode), on this node's workers.
//
// The engine hands each message of another node to deliverRemote on its
// one delivery goroutine, in arrival order. deliverRemote finds the
// channel's members by worker, then appends the message to each such
// worker's backlog and goes on to the next message without waiting: a
// worker has at most one drain posted at a time, and that drain sends
// everything queued by the time it runs. A worker busy writing thus
// takes a run of messages in one post, and each of its links gets them
// in one WRITEABLE and one send(2) (lws.Conn batches a run of queued
// messages); waiting for each message's batch, as deliverRemote once
// did, wrote each link once per message: a cross-node delivery took
// 3 to 4 times the CPU of a local one under load.
//
// Order: one goroutine enqueues, each backlog is a FIFO, and a worker's
// drains run one after another on its service goroutine, so each link
// gets a publisher's messages in the order the engine delivered them.
// A history channel's join (subscribeAt) is posted with Do from the
// delivery goroutine: every message queued before it has its drain
// posted ahead of it (a backlog that is not empty has a drain posted
// that has not taken it yet), and nothing is queued until it has run.
//
// Bound: a backlog holds at most remoteBacklog bytes (the messages'
// data and member lists, queued or being sent; one message alone may be
// larger). At the bound, deliverRemote waits for the worker, as it once
// waited for every message: the engine's delivery queue then fills
// (cluster.deliver_queue), and past it the engine drops messages and
// counts them (lwsgate_cluster_dropped_total), so a stalled worker
// costs a bounded amount of memory. Links that do not keep up are cut
// off (1008) by their own send queue (max_send_queue), as on one node.

// remoteBacklog is the most a worker's backlog holds, in bytes (see
// remoteCost): room for about a hundred messages to a thousand members
// each, or thousands to a few.
const remoteBacklog = 1 << 20

// remoteCost is what a queued message holds: its data, its member list
// and the entry itself.
func remoteCost(m *remoteMsg) int { return len(m.data) + 8*len(m.ls) + 64 }

// remoteMsg is a message of another node for some of a worker's links.
//
// Concurrency: a value; data is shared by the workers, read only.
type remoteMsg struct {
	ls   []*LinkRecord
	typ  lws.MessageType
	data []byte
	cost int
}

// backlog is a worker's queue of messages from other nodes.
//
// Concurrency: mu guards the fields; the delivery goroutine queues
// (deliverRemote), the worker's service goroutine drains; room wakes
// the one waiter.
type backlog struct {
	mu      sync.Mutex
	q       []remoteMsg
	spare   []remoteMsg // the last drained q, for reuse
	posted  bool        // a drain is posted that has not taken q yet
	held    int         // bytes queued or being sent (remoteCost)
	waiting bool        // the delivery goroutine waits for room
	room    chan struct{}
	drains  int // drains run (how many posts the messages took)
}

func newBacklog() backlog { return backlog{room: make(chan struct{}, 1)} }

// deliverRemote delivers a message of another node to this node's
// members (the engine's delivery goroutine; a history channel's come
// this way from every node, this one included, in the stream's order:
// history.go). It queues the message on each worker with members and
// returns, unless a worker's backlog is full (see above).
func (g *Gateway) deliverRemote(d cluster.Delivery) {
	g.waitStarted()
	if g.ctx == nil {
		return // New failed
	}
	typ := lws.MessageType(d.Kind)
	if typ != lws.TextMessage && typ != lws.BinaryMessage {
		g.log.Warn("cluster: dropped a message of unknown type", "channel", d.Channel, "kind", d.Kind)
		return
	}
	if !d.Position.IsZero() && g.envelope(d.Channel) {
		typ, d.Data = g.payload(d, true) // with its channel, offset and epoch
	}
	for id, ls := range g.membersByWorker(d.Channel) {
		if len(ls) > 0 {
			m := remoteMsg{ls: ls, typ: typ, data: d.Data}
			m.cost = remoteCost(&m)
			g.queueRemote(g.workers[id], m)
		}
	}
}

// queueRemote appends m to w's backlog, first waiting for room, and
// posts a drain if none is pending.
func (g *Gateway) queueRemote(w *worker, m remoteMsg) {
	b := &w.remote
	select {
	case <-w.ctx.Done():
		g.sendAll(m.ls, m.typ, m.data) // the worker has stopped: each Send says so
		return
	default:
	}
	for {
		b.mu.Lock()
		if b.held == 0 || b.held+m.cost <= remoteBacklog {
			break
		}
		b.waiting = true
		b.mu.Unlock()
		g.metrics.remoteWaits.Inc()
		select {
		case <-b.room:
		case <-w.ctx.Done():
			// The worker has stopped and will drain nothing: each Send
			// says so.
			g.sendAll(m.ls, m.typ, m.data)
			return
		}
	}
	b.q = append(b.q, m)
	b.held += m.cost
	post := !b.posted
	b.posted = true
	b.mu.Unlock()
	if post && w.ctx.Post(func() { g.drainRemote(w) }) != nil {
		g.drainRemote(w) // the worker has stopped: each Send says so
	}
}

// drainRemote sends w's backlog, on w's service goroutine (or, once w
// has stopped, on the caller's).
func (g *Gateway) drainRemote(w *worker) {
	b := &w.remote
	b.mu.Lock()
	q := b.q
	// spare is taken, not shared: a drain of a stopped worker may run
	// beside another.
	b.q, b.spare, b.posted = b.spare[:0], nil, false
	b.drains++
	b.mu.Unlock()
	sent, cost := 0, 0
	for i := range q {
		sent += g.sendAll(q[i].ls, q[i].typ, q[i].data).Delivered
		cost += q[i].cost
		q[i] = remoteMsg{}
	}
	g.metrics.fanout.Add(float64(sent))
	b.mu.Lock()
	b.spare = q[:0]
	b.held -= cost
	wake := b.waiting
	b.waiting = false
	b.mu.Unlock()
	if wake {
		select {
		case b.room <- struct{}{}:
		default:
		}
	}
}
