// Package cluster lets many lwsgate nodes act as one gateway. It is the
// gateway's engine: a node registry with leases, channel fan-out between
// nodes, calls to one node or to all, and durable link records so that
// the links of a node that dies are settled by exactly one survivor. It
// knows nothing of libwebsockets; the gateway calls it and gives it
// hooks.
//
// # Engines
//
// memory is one process, today's behaviour: incarnation 0, Publish and
// Interest do nothing (the gateway delivers to its own members), Call and
// Survey reach only this process. nats runs on NATS: a nats-server
// embedded in the process (by default; 3 to 5 gateways route to each
// other) or an external NATS system (nats.url). Open picks one from
// Config.Engine.
//
// # Incarnations and link ids
//
// Each start of a nats node takes the next incarnation from a counter in
// the registry (compare-and-swap), so no two runs of any nodes share one.
// A link id is incarnation<<37 | local link number (LinkID), below 2^53:
// exact in JavaScript, and its owner is id>>37, found without a lookup.
// Incarnation 0 is the memory engine's, so single-node ids are unchanged.
//
// # The registry and the lease
//
// The registry is a JetStream KV bucket, lws_<cluster> (R3 when the
// server is clustered): the counter, one lease key node.<inc> and one
// name key name.<node> per live node. A node renews both every Lease/5 by
// compare-and-swap with a per-message TTL of Lease; a key not renewed
// expires, and the server leaves a marker that every node's watcher sees:
// Event NodeDown ("expired"). A node that closes marks its lease "left".
// Besides the watcher, each node reads directly the key of any node
// whose renewals it has not seen for a Lease, so that the death of the
// server hosting its watcher's consumer does not hide deaths.
//
// Fencing and reaping are both measured from the last renewal and kept
// apart by Lease: a node that cannot renew for ReapAfter fences itself
// (Event Fenced: close every link with 1012, go unready, then Rejoin
// under a new incarnation); survivors wait ReapAfter after seeing a
// lease expire, which is at least Lease after its last renewal, and then
// claim the dead incarnation by writing "reaped" over the expiry marker
// by compare-and-swap. Of every survivor trying, and of the node itself
// taking its lapsed lease back (allowed within ReapAfter: a short
// partition fences nothing), exactly one write succeeds; the winning
// survivor alone gets Event Reap.
//
// # Link records
//
// LinkOpened writes a record (the gateway's data for the disconnect
// hook) under <inc>.<local> in bucket lws_<cluster>_links; LinkClosed
// settles it. The reaper settles every record its dead incarnation left
// and lists them in Event Reap. Settling is a compare-and-swap of the
// record into a tombstone naming the settler, so each record is settled
// once: by its owner (LinkClosed says committed: its hook is the one
// queued), or by the reaper (LinkClosed says not: the reaper queued a
// hook). A partitioned node's LinkClosed fails until it can reach the
// cluster; after Rejoin it learns whether the reaper took the record.
// Either way the hook goes through the durable queue (see "Disconnect
// hooks"); the gateway never sends one itself.
//
// # Channels
//
// A channel is the core subject lws.<cluster>.ch.<EncodeToken(name)>; a
// node subscribes while it has local members (Interest), so NATS forwards
// a publish only to nodes that want it. Delivery is at most once; each
// message carries its publisher's incarnation and a sequence number per
// channel, so a receiver counts what it missed (Stats.Gaps). Messages of
// one publisher on one channel arrive in publish order.
//
// # Calls and surveys
//
// Call(inc, op) is a request to lws.<cluster>.inc.<inc>.<op>, served only
// by that incarnation. No responders, or no answer by the deadline, is
// told apart by the registry: a live lease means ErrUnreachable (503: cut
// off, or dead but not yet known so, for up to a Lease), an ended one
// ErrGone (410), an incarnation above the counter ErrNotIssued (404).
// Survey asks every live node of the registry in parallel and names each
// one that did not answer in time.
//
// # Room for channel history (issue 18)
//
// Publish returns a Position and Delivery carries one; both are zero for
// plain channels. History channels will publish into a JetStream stream
// whose RePublish puts each stored message on a live subject with its
// sequence and the previous sequence of the channel, so that a node
// detects a gap and refills it; Publish will then return the stored
// (offset, epoch) and the origin node will deliver from the stream like
// the others.
//
// # Disconnect hooks
//
// Disconnect hooks go through a durable queue (hookqueue.go): a
// work-queue stream, one message per link (de-duplicated by link id
// within a window of at least 2 minutes and 3*(Lease+ReapAfter)), and
// one durable pull consumer from which every node's RunHooks takes them:
// a hook a node takes and does not settle (it died sending it) is handed
// to another after HookAckWait. LinkClosed queues the link's hook, then
// settles its record; the reaper of a dead node, once it holds the
// claim, queues a hook (code 1006, "gateway node lost") for each record
// still open, then settles it, then marks its claim done. Whoever dies
// between leaves the record open: a dead owner's reaper, or a dead
// reaper's own reaper (it finishes every claim the dead reaper had not
// marked done), queues the hook again under the same id, and the queue
// keeps one. So exactly one hook per link is queued, and delivered at
// least once.
//
// # Concurrency
//
// Every Engine method is safe from any goroutine. Hooks.Deliver is
// called on one goroutine (arrival order), Hooks.Event on another (event
// order); handlers run concurrently, at most 256 at once; a RunHooks
// sender runs on its workers. Each type states its own contract.
package cluster
