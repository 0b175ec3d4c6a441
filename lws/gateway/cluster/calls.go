package cluster

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
)

// Calls travel as core NATS requests to lws.<cluster>.inc.<n>.<op>, which
// only incarnation n's node subscribes to: the subject comes from the
// link id, so no lookup stands between an admin request and its owner,
// and "no responders" comes back at once when nobody serves n. A
// handler's error comes back in headers.
const (
	hdrError      = "Lws-Error"
	hdrErrorKind  = "Lws-Error-Kind"
	kindNoHandler = "no-handler"
)

func (e *natsEngine) Handle(op string, h Handler) { e.handlers.set(op, h) }

// serveRequest runs on the request subscription's goroutine and hands
// each request to a goroutine of its own, at most maxInflightCalls at
// once.
func (e *natsEngine) serveRequest(m *nats.Msg) {
	op := m.Subject[strings.LastIndexByte(m.Subject, '.')+1:]
	select {
	case e.calls <- struct{}{}:
	case <-e.life.Done():
		return
	}
	e.wg.Add(1)
	go func() {
		defer e.wg.Done()
		defer func() { <-e.calls }()
		ctx, cancel := context.WithTimeout(e.life, e.cfg.CallTimeout)
		defer cancel()
		out, err := e.handlers.serve(ctx, op, m.Data)
		reply := nats.NewMsg(m.Reply)
		reply.Data = out
		if err != nil {
			reply.Header.Set(hdrError, err.Error())
			if errors.Is(err, ErrNoHandler) {
				reply.Header.Set(hdrErrorKind, kindNoHandler)
			}
		}
		_ = m.RespondMsg(reply)
	}()
}

func (e *natsEngine) Call(ctx context.Context, inc Incarnation, op string, body []byte) ([]byte, error) {
	e.mu.Lock()
	self, fenced, closed := e.inc, e.fenced, e.closed
	e.mu.Unlock()
	switch {
	case closed:
		return nil, &CallError{Inc: inc, Op: op, Err: ErrClosed}
	case fenced:
		return nil, &CallError{Inc: inc, Op: op, Err: ErrFenced}
	case !opRE.MatchString(op):
		return nil, &CallError{Inc: inc, Op: op, Err: ErrNoHandler}
	case inc == self:
		out, err := e.handlers.serve(ctx, op, body)
		if err != nil {
			return nil, &CallError{Inc: inc, Op: op, Err: remoteErr(err)}
		}
		return out, nil
	}
	ctx, cancel := context.WithTimeout(ctx, e.cfg.CallTimeout)
	defer cancel()
	start := time.Now()
	out, err := e.request(ctx, inc, op, body)
	e.count.observe(&e.hooks, op, start, err)
	return out, err
}

// request calls op on inc's node, over NATS.
func (e *natsEngine) request(ctx context.Context, inc Incarnation, op string, body []byte) ([]byte, error) {
	if inc == 0 {
		return nil, &CallError{Inc: inc, Op: op, Err: ErrNotIssued}
	}
	m := nats.NewMsg(e.pre + "inc." + inc.String() + "." + op)
	m.Data = body
	resp, err := e.nc.RequestMsgWithContext(ctx, m)
	if err == nil {
		if msg := resp.Header.Get(hdrError); msg != "" {
			if resp.Header.Get(hdrErrorKind) == kindNoHandler {
				return nil, &CallError{Inc: inc, Op: op, Err: ErrNoHandler}
			}
			return nil, &CallError{Inc: inc, Op: op, Err: &RemoteError{Msg: msg}}
		}
		return resp.Data, nil
	}
	ce := &CallError{Inc: inc, Op: op, Cause: err}
	switch {
	case errors.Is(err, nats.ErrNoResponders):
		ce.Err = e.absent(inc)
	case errors.Is(err, context.Canceled):
		ce.Err = err // the caller gave up
	default: // the deadline, or the connection: someone may be there
		if ce.Err = e.absent(inc); ce.Err == ErrNotIssued {
			ce.Err = ErrUnreachable
		}
	}
	return nil, ce
}

// absent says why nobody answered for inc: its lease is live
// (unreachable: a partition, or a death not yet noticed), it was issued
// (gone), or it never was.
func (e *natsEngine) absent(inc Incarnation) error {
	e.mu.Lock()
	live := e.view[inc] != nil
	maxInc := e.maxInc
	e.mu.Unlock()
	switch {
	case live:
		return ErrUnreachable
	case inc <= maxInc:
		return ErrGone
	}
	// Maybe issued since this node last looked: read the counter.
	ctx, cancel := context.WithTimeout(e.life, e.cfg.CallTimeout)
	defer cancel()
	ent, found, err := e.reg.last(ctx, keyCounter)
	if err != nil {
		return ErrUnreachable // cannot tell
	}
	if found && ent.live {
		if n, err := strconv.ParseUint(string(ent.val), 10, 16); err == nil && uint64(inc) <= n {
			return ErrGone
		}
	}
	return ErrNotIssued
}

func (e *natsEngine) Survey(ctx context.Context, op string, body []byte) (SurveyResult, error) {
	e.mu.Lock()
	fenced, closed := e.fenced, e.closed
	nodes := e.nodesLocked()
	e.mu.Unlock()
	switch {
	case closed:
		return SurveyResult{}, ErrClosed
	case fenced:
		return SurveyResult{}, ErrFenced
	}
	ctx, cancel := context.WithTimeout(ctx, e.cfg.SurveyTimeout)
	defer cancel()
	type answer struct {
		body []byte
		err  error
	}
	answers := make([]answer, len(nodes))
	var wg sync.WaitGroup
	for i, n := range nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if n.Self {
				out, err := e.handlers.serve(ctx, op, body)
				if err != nil {
					err = &CallError{Inc: n.Inc, Op: op, Err: remoteErr(err)}
				}
				answers[i] = answer{out, err}
				return
			}
			start := time.Now()
			out, err := e.request(ctx, n.Inc, op, body)
			e.count.observe(&e.hooks, op, start, err)
			answers[i] = answer{out, err}
		}()
	}
	wg.Wait()
	var res SurveyResult
	for i, n := range nodes {
		if a := answers[i]; a.err != nil {
			res.Missing = append(res.Missing, Missed{Node: n, Err: a.err})
		} else {
			res.Replies = append(res.Replies, Reply{Node: n, Body: a.body})
		}
	}
	e.count.surveys.Add(1)
	if res.Partial() {
		e.count.partial.Add(1)
	}
	return res, nil
}
