package gateway

import (
	"context"
	"sync/atomic"

	"github.com/lwsgate/lwsgate/lws"
	"github.com/lwsgate/lwsgate/lws/gateway/cluster"
)

// Publishing to a channel: this node's members, on their workers, and in
// a cluster the other nodes.

// PublishResult says how a publish went.
//
// On a channel with a history, a publish is stored, then delivered on
// every node from the stream: Delivered and Failed are 0, and Position
// is the message's once stored (nil on a plain channel).
//
// Concurrency: a value.
type PublishResult struct {
	Delivered int `json:"delivered"` // queued to this many links
	Failed    int `json:"failed"`    // links closing or not keeping up (those are closed with 1008)
	*Position     // offset and epoch, on a channel with a history
}

// Publish sends a message to every link subscribed to channel. It never
// blocks on a link: each Send only queues, and a link whose queue is full
// is cut off (1008) while the others get the message.
//
// In a cluster, the message also goes to every other node with members
// of channel, at most once, in publish order; the result counts this
// node's links. On a channel with a history it is stored first and
// delivered from the stream on every node, this one included (the
// result is then zero); PublishAsync says when it is stored.
func (g *Gateway) Publish(channel string, typ lws.MessageType, data []byte) PublishResult {
	if g.hasHistory(channel) {
		g.publishStored(channel, typ, data)
		return PublishResult{}
	}
	res := g.sendAll(g.hub.members(channel), typ, data)
	g.publishRemote(channel, typ, data)
	g.metrics.published.Inc()
	g.metrics.fanout.Add(float64(res.Delivered))
	return res
}

// publishRemote hands a publish to the other nodes with members of
// channel (cluster mode; at most once).
func (g *Gateway) publishRemote(channel string, typ lws.MessageType, data []byte) {
	if !g.multi {
		return
	}
	if _, err := g.eng.Publish(context.Background(), channel, cluster.Message{Data: data, Kind: uint8(typ)}); err != nil {
		g.metrics.publishErrors.Inc()
		g.log.Debug("cluster: publish to the other nodes failed", "channel", channel, "err", err)
	}
}

// publishOnService is Publish with this node's members served on the
// service goroutines (deliverLocal). Not for use on a service goroutine
// itself (it would wait for itself).
func (g *Gateway) publishOnService(channel string, typ lws.MessageType, data []byte) PublishResult {
	res := g.deliverLocal(channel, typ, data)
	g.publishRemote(channel, typ, data)
	g.metrics.published.Inc()
	g.metrics.fanout.Add(float64(res.Delivered))
	return res
}

// deliverLocal sends a message to this node's members of channel on the
// service goroutines: each worker sends to its own members in one batch,
// where each Send queues without a wake-up of its own: about a quarter
// faster for a large channel (BenchmarkFanout1000). It waits for every
// worker's batch; not for use on a service goroutine.
func (g *Gateway) deliverLocal(channel string, typ lws.MessageType, data []byte) PublishResult {
	byWorker := g.membersByWorker(channel)
	var delivered, failed atomic.Int64
	g.eachWorker(func(w *worker) {
		ls := byWorker[w.id]
		if len(ls) == 0 {
			return
		}
		var res PublishResult
		batch := func() { res = g.sendAll(ls, typ, data) }
		if err := w.ctx.Do(batch); err != nil {
			batch() // the loop has stopped: each Send says so
		}
		delivered.Add(int64(res.Delivered))
		failed.Add(int64(res.Failed))
	})
	return PublishResult{Delivered: int(delivered.Load()), Failed: int(failed.Load())}
}

// publishFrom publishes from a link's routing step on worker from, which
// must not wait for the others: its own members get the message now, and
// each other worker's members in one batch posted to that worker (one
// queued function and one wake-up, not a cross-thread Send per link).
func (g *Gateway) publishFrom(from *worker, channel string, typ lws.MessageType, data []byte) {
	if g.hasHistory(channel) {
		g.publishStored(channel, typ, data)
		return
	}
	g.metrics.published.Inc()
	var cp []byte // data is the receive buffer's: copied once for the others
	for id, ls := range g.membersByWorker(channel) {
		if len(ls) == 0 {
			continue
		}
		if id == from.id {
			g.metrics.fanout.Add(float64(g.sendAll(ls, typ, data).Delivered))
			continue
		}
		if cp == nil {
			cp = append([]byte(nil), data...)
		}
		batch := func() { g.metrics.fanout.Add(float64(g.sendAll(ls, typ, cp).Delivered)) }
		if g.workers[id].ctx.Post(batch) != nil {
			batch() // the worker has stopped: each Send says so
		}
	}
	g.publishRemote(channel, typ, data)
}

// membersByWorker returns the members of channel, by worker.
func (g *Gateway) membersByWorker(channel string) [][]*LinkRecord {
	return g.hub.membersBy(channel, len(g.workers))
}

// sendAll sends a message to each of ls (one clock reading for all).
func (g *Gateway) sendAll(ls []*LinkRecord, typ lws.MessageType, data []byte) PublishResult {
	var res PublishResult
	now := sinceBase()
	for _, l := range ls {
		if err := g.sendAt(l, typ, data, now); err != nil {
			res.Failed++
		} else {
			res.Delivered++
		}
	}
	return res
}
