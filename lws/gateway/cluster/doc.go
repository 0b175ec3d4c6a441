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
// A plain channel (one without history) is the core subject
// lws.<cluster>.ch.<EncodeToken(name)>; a node subscribes while it has
// local members (Interest), so NATS forwards a publish only to nodes that
// want it. Delivery is at most once; each
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
// # Channel history
//
// A channel that matches an entry of Config.Channels has a history: it
// is stored in a JetStream stream, LWS_<cluster>_H_<match>_<k> (R3 when
// the cluster's buckets are), one of Config.HistoryShards streams per
// entry, chosen by a hash of the channel's name, so that no one stream
// or stream leader carries every channel. The stream keeps Size+1
// messages per channel and drops those older than TTL. Publish stores
// each message (subject lws.<cluster>.hist.<match>.<k>.<token>) and
// returns its Position once the stream acknowledged it: Offset is its
// stream sequence, Epoch the stream's, a random string written into its
// metadata when it is created, so that a stream lost and made again has
// another. A Message.ID is the publish's Nats-Msg-Id (scoped to the
// channel): a retry within the stream's duplicate window (2 minutes, or
// the TTL if shorter) is stored once and answers the first Position.
//
// The stream's RePublish puts each stored message on lws.<cluster>.live.
// <token>, with its sequence and the sequence of the channel's previous
// message (Nats-Last-Sequence). A node with interest subscribes there
// and delivers in the stream's order, this node's own publishes too:
// what it misses (core NATS is at most once; a stream leader that dies
// after storing, before republishing) shows as a previous sequence past
// the last it delivered, and it reads the gap from the stream (a batch
// Direct Get from any replica, or from the leader when a replica lags)
// before it delivers what follows; a channel quiet for
// Config.HistoryCheck is compared with the stream's last message, so
// that a lost last message is delivered too; a message at or below the
// last delivered is a duplicate, dropped. A missed message the stream
// does not show though nothing was trimmed (a stream leader just
// elected may not have applied what its predecessor committed) is read
// again, for up to 10s. A gap the stream can no longer fill (trimmed
// first), or that never showed, is counted (Stats.Unrepairable) and
// passed. Nodes repair gaps themselves: no member is disconnected for
// one.
//
// # Resume
//
// Resume joins a member at its last Position, on any node: the node
// reads the missed messages from the stream while it goes on delivering,
// records what it delivers meanwhile, and gives the member the read
// messages and the recorded ones past them between two deliveries, so
// nothing is missed or given twice across the switch. The catch-up is
// Recovered when since's epoch is the stream's and nothing after since
// was trimmed: the stream drops the oldest first, by age (the stream's)
// and by count (the channel's), so nothing after since went if the
// message at since is still there, or else if the stream's first
// sequence is not past since and the channel holds fewer messages after
// since than the stream keeps. A member that missed at most Size
// messages within TTL recovers; one that missed more, or more than
// Config.ResumeLimit, or came back with another epoch, or with a
// position past every message, is told Recovered false (and the
// application resyncs from its own data).
//
// # Durability
//
// "Acknowledged" means the stream stored the message: on the leader
// (R1), or on a majority of its replicas (R3; the ack waits for the RAFT
// commit). JetStream acknowledges before it flushes to disk
// (nats-server#7564): with the default sync ("": every 2 minutes) or a
// sync interval, an acknowledged message is in the operating system's
// file cache of that majority, so it survives the crash or kill of any
// process, and of any minority of machines; a power loss of a majority
// of machines within the interval loses what was acknowledged since
// their last flush. With sync "always" (EmbeddedConfig.Sync) each write
// is flushed to disk before it is acknowledged (for R3, the RAFT log of
// a majority), so an acknowledged message survives a power loss of every
// machine, at a cost in publish rate. Jepsen found JetStream 2.12 losing
// acknowledged writes even so, when membership changes meet partitions
// (nats-server#7545): keep the set of embedded JetStream nodes fixed. An
// external NATS has its own setting (its jetstream.sync_interval).
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
// least once. A hook the backend took is marked sent before it is
// acknowledged (each tried through an election), and a hook offered
// again is looked up first, and once more a moment later if not marked:
// one whose acknowledgement was lost (an election of the queue's
// consumer) is not sent twice. The backend sees a hook twice only if its sender died
// between sending it and marking it; Disconnect.Seq tells it so.
//
// # Wiring into the gateway
//
// Config is the gateway's cluster section as it stands (yaml tags):
// channels: [{match, history: {size, ttl}, envelope}] is Config.Channels,
// nats.embedded.sync is EmbeddedConfig.Sync; Validate's FieldErrors name
// the field at fault. Then:
//
//   - Publish (admin API, rule replies): Channel(ch) tells a history
//     channel. On one, Publish(ctx, ch, Message{Data, Kind, ID}) with ID
//     the request's idempotency key; reply with the Position as
//     {offset, epoch} (its json tags); ErrNotAcknowledged is a 503 the
//     client retries with the same key; the Deliver hook delivers to
//     this node's members too. On a plain channel, deliver to this
//     node's members as before, then Publish.
//   - Subscribe, with since or without: Interest(ch, true), then
//     Resume(ctx, ch, since, join) (since zero: from now); in join, add
//     the member and queue Catchup.Missed to it, and reply with
//     recovered: Catchup.Recovered and Catchup.Position. A Resume error
//     refuses the subscription (ErrNoHistory: a plain channel, subscribe
//     as before).
//   - Envelope: when Channel(ch).Envelope, wrap each delivery, Missed
//     ones too, with its Channel, Position.Offset and Position.Epoch.
//   - GET /v1/api/channels/{ch}/history?since=&limit=: History(ctx, ch,
//     since, limit): messages, position, recovered, more; ErrNoHistory
//     is a 404.
//   - Disconnect hooks: LinkOpened when a link opens, LinkClosed(ctx,
//     id, Disconnect{Code, Reason, Data}) when it closes (retry on
//     error), EnqueueHook for a link whose LinkOpened failed, and
//     RunHooks on every node with a sender that posts to the backend;
//     the gateway's own hook sending goes.
//   - Stats: the history and hook counters, for metrics.
//
// # Concurrency
//
// Every Engine method is safe from any goroutine. Hooks.Deliver (and a
// Resume's join) is called on one goroutine (arrival order; the
// stream's order for history channels), Hooks.Event on another (event
// order); handlers run concurrently, at most 256 at once; a RunHooks
// sender runs on its workers. Each type states its own contract.
package cluster
