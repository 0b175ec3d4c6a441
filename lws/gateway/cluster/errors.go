package cluster

import (
	"errors"
	"fmt"
)

// Errors of Call (wrapped in *CallError, match them with errors.Is) and
// of the engine's other methods. The comment says the HTTP status the
// gateway answers for each.
var (
	// ErrNotIssued: no node was ever given this incarnation (404).
	ErrNotIssued = errors.New("cluster: incarnation never issued")
	// ErrGone: the incarnation's node is known dead: its lease expired,
	// it left, or it was reaped (410).
	ErrGone = errors.New("cluster: node gone")
	// ErrUnreachable: the node's lease is live but it did not answer: no
	// route to it (a partition, or a kill not yet noticed by its lease),
	// or no answer within the deadline (503).
	ErrUnreachable = errors.New("cluster: node unreachable")
	// ErrFenced: this node could not renew its lease for the grace
	// period; until Rejoin it neither publishes nor calls (503).
	ErrFenced = errors.New("cluster: this node is fenced")
	// ErrClosed: the engine is closed.
	ErrClosed = errors.New("cluster: engine closed")
	// ErrNoHandler: the owner has no handler for the op (501).
	ErrNoHandler = errors.New("cluster: no handler for op")
	// ErrIncarnationsExhausted: the counter reached MaxIncarnation; the
	// cluster's registry bucket must be reset (every node stopped).
	ErrIncarnationsExhausted = errors.New("cluster: incarnations exhausted")
	// ErrNoHistory: the channel matches no entry of Config.Channels
	// (Resume, History).
	ErrNoHistory = errors.New("cluster: channel has no history")
	// ErrNoInterest: Resume on a channel without Interest(channel, true).
	ErrNoInterest = errors.New("cluster: no interest in channel on this node")
	// ErrNotAcknowledged: a history publish got no acknowledgement in time
	// (the stream has no leader, during an election, or is unreachable);
	// it may or may not have been stored: retry with the same Message.ID
	// (503).
	ErrNotAcknowledged = errors.New("cluster: publish not acknowledged")
	// ErrUnavailable: a history read got no answer by its deadline (the
	// stream had no leader, during an election, or was unreachable) (503).
	ErrUnavailable = errors.New("cluster: history unavailable")
)

// CallError is Call's error: which call failed and why. Err is one of
// ErrNotIssued, ErrGone, ErrUnreachable, ErrFenced, ErrClosed,
// ErrNoHandler, a *RemoteError, or context.Canceled when the caller gave
// up; Cause, when set, is the transport's own error (a timeout, no
// responders) for the log.
//
// Concurrency: a value, never modified after it is returned.
type CallError struct {
	Inc   Incarnation
	Op    string
	Err   error
	Cause error
}

func (e *CallError) Error() string {
	s := fmt.Sprintf("cluster: call %s to incarnation %d: %v", e.Op, e.Inc, e.Err)
	if e.Cause != nil {
		s += " (" + e.Cause.Error() + ")"
	}
	return s
}

func (e *CallError) Unwrap() error { return e.Err }

// RemoteError is a handler's error, carried back from the node that ran
// it.
//
// Concurrency: a value.
type RemoteError struct{ Msg string }

func (e *RemoteError) Error() string { return "remote: " + e.Msg }

// ErrNameInUse is Open's (and Rejoin's) error when another live node
// holds the node name (it answered a ping).
//
// Concurrency: a value.
type ErrNameInUse struct {
	Name string
	Inc  Incarnation // the holder's
}

func (e *ErrNameInUse) Error() string {
	return fmt.Sprintf("cluster: node name %q is in use by live incarnation %d", e.Name, e.Inc)
}
