package cluster

import (
	"context"
	"log/slog"
	"time"
)

// Engine is what the gateway sees of the cluster: the node registry and
// lease, channel fan-out to other nodes, calls to one node or all, and
// durable link records for the disconnect hooks of a lost node.
//
// Concurrency: every method is safe from any goroutine. Interest and
// Publish never wait on the network (they queue on the NATS connection);
// Call, Survey, LinkOpened, LinkClosed, Rejoin and Close do, bounded by
// their context. The hooks (Hooks) are called from the engine's own
// goroutines, described on each.
type Engine interface {
	// Incarnation is this node's current incarnation: 0 for the memory
	// engine; it changes only when Rejoin succeeds.
	Incarnation() Incarnation
	// Node is this node's name.
	Node() string
	// Ready reports that the node holds a live lease (always true for the
	// memory engine): false while fenced and after Close.
	Ready() bool

	// Interest says whether this node has local members of channel: call
	// it with true on the first member and false when the last leaves.
	// It is a state, not a count: repeating a value does nothing. On
	// true the node subscribes to the channel's subject; on false it
	// unsubscribes after Config.Linger, unless true comes back first.
	Interest(channel string, on bool) error
	// Publish, on a plain channel, sends m to every other node with
	// interest in channel, where the Deliver hook receives it; never to
	// this node (the caller delivers to its own members). Messages of one
	// publisher on one channel arrive in publish order, at most once; the
	// Position is zero; Publish does not wait on the network.
	//
	// On a history channel (Config.Channels), Publish stores m in the
	// channel's stream and returns its Position once the stream has
	// acknowledged it (see doc.go, "Durability"); it waits until ctx's
	// deadline (Config.CallTimeout if ctx has none), sending m again while
	// it is not acknowledged (the stream has no leader during an election:
	// a few seconds), never storing it twice (a message without an ID is
	// given one of the node's). Every node with interest, this one
	// included, then delivers it through the Deliver hook, in the stream's
	// order: the caller does not deliver it itself. A publish with a
	// Message.ID already stored within the duplicate window is not stored
	// again: it returns the first one's Position. An error wrapping
	// ErrNotAcknowledged leaves it unknown whether m was stored: retry
	// with the same ID.
	Publish(ctx context.Context, channel string, m Message) (Position, error)
	// PublishAsync is Publish without waiting: done receives the result,
	// exactly once, either before PublishAsync returns (a plain channel,
	// an error found at once) or later on an engine goroutine; it must
	// not block. A history publish not acknowledged within
	// Config.CallTimeout fails with ErrNotAcknowledged.
	PublishAsync(channel string, m Message, done func(Position, error))
	// Channel returns the entry of Config.Channels that applies to
	// channel, if any: the channel then has a history.
	Channel(channel string) (ChannelConfig, bool)
	// Resume joins a new member of a history channel at a position, on
	// this node: since is the last position the member saw (zero: none,
	// join from now). Call Interest(channel, true) first, as for any
	// member. Resume calls join exactly once, on the Deliver hook's
	// goroutine, between two Deliver calls, with what the member missed:
	// every message after since up to Catchup.Position, in order; every
	// message the Deliver hook receives after join follows
	// Catchup.Position, without gap or duplicate. So the gateway adds the
	// member to the channel inside join (and queues Missed to it), in the
	// same order as it handles the Deliver calls. Catchup.Recovered is
	// false when since's epoch is not the stream's (Missed is then empty),
	// when the history no longer reaches back to since (Missed then holds
	// what it still has), when the member missed more than
	// Config.ResumeLimit messages (Missed is then empty, or holds only
	// what the node delivered while it read), and when since is past
	// every message of the channel. Resume returns after join, or with
	// ctx's error (join is then never called), or ErrNoHistory,
	// ErrNoInterest.
	Resume(ctx context.Context, channel string, since Position, join func(Catchup)) error
	// History reads a history channel's stored messages after since (zero:
	// from the oldest kept), at most limit (0 or above 10000: 10000),
	// for backends. It needs no interest. A read that fails is tried
	// again until ctx's deadline (Config.CallTimeout if ctx has none),
	// then fails with ErrUnavailable.
	History(ctx context.Context, channel string, since Position, limit int) (HistoryPage, error)

	// Handle serves op on this node: Call and Survey from any node run h.
	// op is one or more of [A-Za-z0-9_-] (another panics, as a bad
	// pattern does in net/http); "_ping" is the engine's. A nil h
	// removes it.
	Handle(op string, h Handler)
	// Call runs op on incarnation inc's node, this one included. Its
	// errors are *CallError wrapping ErrNotIssued (404), ErrGone (410),
	// ErrUnreachable (503), ErrNoHandler or a *RemoteError. It waits at
	// most Config.CallTimeout, or ctx's deadline if sooner.
	Call(ctx context.Context, inc Incarnation, op string, body []byte) ([]byte, error)
	// Survey runs op on every live node in parallel (this one included)
	// and returns their replies and, by name, every node that did not
	// answer within Config.SurveyTimeout (or ctx's deadline, if sooner).
	// The set of nodes is the registry's at the start of the survey.
	Survey(ctx context.Context, op string, body []byte) (SurveyResult, error)
	// Nodes is the registry as this node sees it: the live nodes.
	Nodes() []Node

	// LinkOpened records a link (id from LinkID, data opaque) durably,
	// so that if this node dies, the survivor that reaps it receives the
	// record in its Reap event. The memory engine records nothing.
	LinkOpened(ctx context.Context, id uint64, data []byte) error
	// LinkClosed settles a link's record and queues its disconnect hook
	// d (durably, with the nats engine; d.Link is set to id). committed
	// is true when this node settled the record: d is in the queue;
	// false when a reaper had settled it first: the reaper's hook (code
	// 1006, Lost) is in the queue instead (or d, if it came first). Either
	// way exactly one hook per link is queued, and RunHooks delivers it:
	// the gateway never sends a disconnect hook itself. A link whose
	// LinkOpened never succeeded has no record: if it is of this
	// incarnation, LinkClosed commits and queues d; if of an older one
	// (fenced since), it answers false and queues nothing (no record
	// also means settled over an hour ago), and the gateway, which knows
	// its LinkOpened failed, queues d with EnqueueHook. The cluster not
	// answering (a stream electing its leader) is tried again until ctx
	// is done; an error means neither could be done by then: retry later,
	// after Rejoin if fenced. Both LinkOpened and LinkClosed may be
	// retried after an error: a retry answers as the first attempt would
	// have, had its answer not been lost. The memory engine always
	// commits, into a queue in this process.
	LinkClosed(ctx context.Context, id uint64, d Disconnect) (committed bool, err error)
	// EnqueueHook queues a disconnect hook with no link record (d.Link
	// identifies it: one hook per link id is queued within the queue's
	// duplicate window, see doc.go). LinkClosed and the reaper use it.
	EnqueueHook(ctx context.Context, d Disconnect) error
	// RunHooks delivers queued disconnect hooks to send, from whichever
	// node runs it (every node should): a hook send fails is offered
	// again after a backoff, one that a node takes and does not settle
	// (it died) is offered again after Config.HookAckWait. It returns
	// when ctx is done (nil) or the engine closes (ErrClosed).
	RunHooks(ctx context.Context, o HookRunOptions, send HookSender) error

	// Rejoin, after Event Fenced and once the gateway has closed every
	// link of the old incarnation, registers this node again under a new
	// incarnation and returns it. It waits for the cluster until ctx is
	// done. Not fenced: it returns the current incarnation.
	Rejoin(ctx context.Context) (Incarnation, error)

	// Stats is a snapshot of the engine's counters.
	Stats() Stats
	// Close leaves the cluster: the node marks its lease "left", so that
	// no survivor reaps it (the gateway settles its links before Close),
	// unsubscribes and, when embedded, shuts its server down. If link
	// records are still open (a LinkClosed that failed), it lets its
	// lease expire instead, and a survivor reaps them.
	Close(ctx context.Context) error
}

// Handler serves one op for Call and Survey. It may run concurrently
// with itself and other handlers; ctx ends at Config.CallTimeout. body
// is the handler's to keep.
type Handler func(ctx context.Context, body []byte) ([]byte, error)

// Message is what a publish carries between nodes.
//
// Concurrency: a value; Publish copies Data before it returns.
type Message struct {
	Data []byte
	// Kind is opaque to the engine and carried as is (the gateway puts
	// its WebSocket message type there).
	Kind uint8
	// ID is an idempotency key, for history channels: a publish whose ID
	// the channel's stream stored within its duplicate window (2 minutes,
	// or the history's TTL if shorter) is not stored again, and returns
	// the first one's Position. "": none. Plain channels ignore it.
	ID string
}

// Delivery is a message from another node.
//
// Concurrency: a value; its Data is the Deliver hook's to keep.
type Delivery struct {
	Channel string
	Message
	// From is the publishing node's incarnation.
	From Incarnation
	// Position is zero for plain channels.
	Position Position
}

// Position is a message's place in a channel's history: Offset is the
// message's sequence in its stream, which grows with each message of the
// channel (not by one: a stream holds several channels), and Epoch is
// the stream's, drawn at random when the stream is created, so that it
// changes when the history was lost and a position from before means
// nothing after. Offset 0 is before the channel's first message. Plain
// channels have the zero Position.
//
// Concurrency: a value.
type Position struct {
	Offset uint64 `json:"offset"`
	Epoch  string `json:"epoch"`
}

// IsZero reports a plain channel's position.
func (p Position) IsZero() bool { return p.Offset == 0 && p.Epoch == "" }

// Node is one live node of the registry.
//
// Concurrency: a value.
type Node struct {
	Inc  Incarnation
	Name string
	Self bool
}

// Reply is one node's answer to a Survey.
//
// Concurrency: a value; Body is the caller's.
type Reply struct {
	Node
	Body []byte
}

// Missed is a node that did not answer a Survey; Err says why (it
// wraps ErrUnreachable, ErrGone, ErrNoHandler, or a *RemoteError).
//
// Concurrency: a value.
type Missed struct {
	Node
	Err error
}

// SurveyResult is every live node's reply, or its name in Missing.
//
// Concurrency: a value, the caller's.
type SurveyResult struct {
	Replies []Reply
	Missing []Missed
}

// Partial reports that some node did not answer.
func (r SurveyResult) Partial() bool { return len(r.Missing) > 0 }

// EventKind says what happened to a node.
//
// Concurrency: a value.
type EventKind int

const (
	// NodeUp: a node's lease appeared (every live node once when the
	// engine starts, this one included).
	NodeUp EventKind = iota + 1
	// NodeDown: a node's lease ended; Reason is "left" (it closed),
	// "expired" (no renewal for Lease) or "reaped".
	NodeDown
	// Fenced: this node could not renew its lease for ReapAfter, or found
	// it reaped or its name taken. Close every link (1012), go unready,
	// then Rejoin.
	Fenced
	// Reap: this node won the claim on a dead node (its lease expired
	// ReapAfter ago), queued a disconnect hook (code 1006, Lost) for each
	// link record the node left open, and settled them; exactly one
	// survivor gets it per dead incarnation. Links are those records, for
	// the log and metrics: their hooks are in the queue (RunHooks).
	Reap
)

func (k EventKind) String() string {
	switch k {
	case NodeUp:
		return "up"
	case NodeDown:
		return "down"
	case Fenced:
		return "fenced"
	case Reap:
		return "reap"
	}
	return "unknown"
}

// Event is a change in the registry, from this node's point of view.
//
// Concurrency: a value; Links is the Event hook's to keep.
type Event struct {
	Kind   EventKind
	Node   Node
	Reason string
	Links  []LinkRecord // Reap only
}

// LinkRecord is a link a reaped node held: its id and the data given to
// LinkOpened.
//
// Concurrency: a value.
type LinkRecord struct {
	ID   uint64
	Data []byte
}

// Hooks are the gateway's callbacks. Each may be nil.
//
// Concurrency: a value, read once by Open; each hook says on which
// goroutine it is called.
type Hooks struct {
	// Deliver receives the messages of plain channels from other nodes,
	// and the messages of history channels from every node, this one
	// included, on one engine goroutine (which also calls Resume's
	// joins), in arrival order: in publish order per publisher and
	// plain channel; in the stream's order, without gap or duplicate,
	// per history channel. While it blocks, further messages wait in a
	// queue of Config.DeliverQueue, then are dropped (a history channel
	// then reads them from its stream).
	Deliver func(Delivery)
	// Event receives registry changes, on one engine goroutine, in order.
	Event func(Event)
	// CallDone observes every request to another node (a Call, each node
	// a Survey asks), for a latency histogram: op, its duration, and its
	// error (nil on success). Called on the caller's goroutine (a
	// Survey's, one per node); keep it quick.
	CallDone func(op string, d time.Duration, err error)
	// Logger receives the engine's (and the embedded server's warnings
	// and errors). nil: slog.Default().
	Logger *slog.Logger
}

// Stats are the engine's counters since Open (gauges say so).
//
// Concurrency: a value: a snapshot.
type Stats struct {
	Incarnation Incarnation
	Nodes       int  // gauge: live nodes seen, this one included
	Fenced      bool // gauge
	Channels    int  // gauge: channels subscribed (lingering included)

	Publishes  uint64 // messages sent to other nodes
	Deliveries uint64 // messages received from other nodes and delivered
	Gaps       uint64 // messages of another node found missing (by sequence)
	Dropped    uint64 // messages dropped because the Deliver queue was full

	Calls         uint64 // Calls to other nodes, and Survey requests
	CallErrors    uint64 // of which failed
	CallTime      time.Duration
	Surveys       uint64
	PartialSurvey uint64 // surveys with a node missing

	LeaseRenewals uint64
	LeaseRenewed  time.Time // when this node last renewed its lease; zero without a registry
	LeaseFailures uint64    // renewals that failed (the cluster did not answer)
	LeaseLapses   uint64    // leases found expired and taken back within the grace period
	ReapAttempts  uint64    // claims tried on dead nodes, won or lost
	Reaped        uint64    // dead nodes this node reaped
	ReapedLinks   uint64    // link records settled by reaping

	HistoryPublishes uint64 // publishes acknowledged by a history stream
	Repaired         uint64 // history messages missed on the live path, delivered from the stream
	RepairedGaps     uint64 // gaps found and repaired (each of Repaired messages)
	Unrepairable     uint64 // gaps the stream could no longer fill: trimmed before the node read them
	Duplicates       uint64 // history messages received again, dropped
	Resumes          uint64 // Resume joins done
	ResumesLost      uint64 // of which not recovered (epoch changed, or history trimmed past since)

	HooksQueued    uint64 // disconnect hooks this node queued (duplicates included)
	HooksDelivered uint64 // hooks this node's RunHooks delivered (send returned nil)
	HooksNotResent uint64 // hooks offered again, already marked sent: acknowledged, not sent twice
	HookFailures   uint64 // sends that failed (the hook is offered again)
	HooksDropped   uint64 // hooks given up after HookRunOptions.MaxAttempts
}

// Open starts the engine cfg names and, for nats, joins the cluster:
// it waits (until ctx is done) for the server and JetStream, takes an
// incarnation, claims the node name and holds a lease. Configuration
// errors are *FieldError (joined); see Config.Validate.
func Open(ctx context.Context, cfg Config, h Hooks) (Engine, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if h.Logger == nil {
		h.Logger = slog.Default()
	}
	if cfg.Engine == EngineMemory {
		return newMemory(cfg, h), nil
	}
	return openNATS(ctx, cfg, h)
}
