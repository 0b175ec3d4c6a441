package gateway

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/lwsgate/lwsgate/lws"
)

// hookEvent is the JSON body POSTed to a webhook.
type hookEvent struct {
	Event string   `json:"event"` // connect, message or disconnect
	Time  int64    `json:"time"`  // unix milliseconds
	Link  LinkInfo `json:"link"`
	// message
	Type       string `json:"type,omitempty"` // text or binary
	Data       string `json:"data,omitempty"` // text messages
	DataBase64 string `json:"data_base64,omitempty"`
	// disconnect
	Code   int    `json:"code,omitempty"`
	Reason string `json:"reason,omitempty"`

	hdr http.Header // the link's (LinkRecord.hdr), for hooks.forward_headers
}

// hooks calls the webhooks on a client context of its own, so that
// disconnect hooks of the last links still go out while the listeners'
// context shuts down.
//
// Concurrency: safe from any goroutine. Disconnect hooks are queued
// without bound (each must be delivered once), worked by a few goroutines
// with retries; message hooks are fire and forget, at most 64 in flight
// (more are dropped and counted).
type hooks struct {
	g      *Gateway
	client *http.Client

	mu      sync.Mutex
	cond    *sync.Cond
	queue   []hookEvent // disconnect events not yet delivered
	busy    int
	closing bool
	workers sync.WaitGroup

	msgSlots chan struct{}
}

const hookWorkers = 4

func newHooks(g *Gateway, ctx *lws.Context) *hooks {
	h := &hooks{
		g:        g,
		client:   &http.Client{Transport: &lws.Transport{Context: ctx}},
		msgSlots: make(chan struct{}, 64),
	}
	h.cond = sync.NewCond(&h.mu)
	for i := 0; i < hookWorkers; i++ {
		h.workers.Add(1)
		go h.work()
	}
	return h
}

func (h *hooks) connectURL() string { return h.g.cfg.Load().Hooks.Connect }

// post sends one event; it returns nil for a 2xx answer.
func (h *hooks) post(ctx context.Context, url string, ev *hookEvent) error {
	body, _ := json.Marshal(ev)
	cfg := h.g.cfg.Load()
	ctx, cancel := context.WithTimeout(ctx, cfg.Hooks.Timeout.D())
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	if p := h.g.hookHdrs.Load(); p != nil {
		p.apply(req.Header, ev.hdr)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Lwsgate-Event", ev.Event)
	req.Header.Set("X-Lwsgate-Link", strconv.FormatUint(ev.Link.ID, 10))
	if ev.Link.Remote != "" {
		req.Header.Set("X-Forwarded-For", clientIP(ev.Link.Remote))
	}
	start := time.Now()
	resp, err := h.client.Do(req)
	h.g.metrics.backendSeconds.WithLabelValues("hook:"+ev.Event, "http").Observe(time.Since(start).Seconds())
	result := "ok"
	defer func() { h.g.metrics.hookCalls.WithLabelValues(ev.Event, result).Inc() }()
	if err != nil {
		result = "error"
		return err
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		result = "rejected"
		return fmt.Errorf("hook answered %d", resp.StatusCode)
	}
	return nil
}

// connect runs the connect hook for a new link (whose messages are held
// meanwhile): a 2xx lets them through, anything else closes the link
// with 4403.
func (h *hooks) connect(l *LinkRecord) {
	url := h.connectURL()
	ev := &hookEvent{Event: "connect", Time: time.Now().UnixMilli(), Link: l.Info(), hdr: l.hdr}
	go func() {
		if err := h.post(context.Background(), url, ev); err != nil {
			h.g.log.Info("connect hook refused the link", "link", l.ID, "err", err)
			_ = l.conn.Close(4403, "rejected by connect hook")
			return
		}
		_ = l.w.ctx.Do(func() { h.g.deliverHeld(l) })
	}()
}

// message reports a routed message (service goroutine; never blocks).
func (h *hooks) message(m *Message) {
	url := h.g.cfg.Load().Hooks.Message
	if url == "" {
		return
	}
	ev := &hookEvent{Event: "message", Time: time.Now().UnixMilli(), Link: m.Link.Info(), Type: "text", hdr: m.Link.hdr}
	if m.Type == lws.BinaryMessage {
		ev.Type, ev.DataBase64 = "binary", base64.StdEncoding.EncodeToString(m.Data)
	} else {
		ev.Data = string(m.Data)
	}
	select {
	case h.msgSlots <- struct{}{}:
	default:
		h.g.metrics.hookCalls.WithLabelValues("message", "dropped").Inc()
		return
	}
	go func() {
		defer func() { <-h.msgSlots }()
		if err := h.post(context.Background(), url, ev); err != nil {
			h.g.log.Debug("message hook failed", "link", m.Link.ID, "err", err)
		}
	}()
}

// disconnect returns the disconnect event of a link that has closed, for
// the disconnect hook or, in a cluster, the link's record (settled with it
// even when no hook is configured).
func (h *hooks) disconnect(l *LinkRecord, ce lws.CloseError) hookEvent {
	return hookEvent{Event: "disconnect", Time: time.Now().UnixMilli(), Link: l.Info(), Code: int(ce.Code), Reason: ce.Reason, hdr: l.hdr}
}

// onDisconnect reports whether a disconnect hook is configured.
func (h *hooks) onDisconnect() bool { return h.g.cfg.Load().Hooks.Disconnect != "" }

// enqueue queues a disconnect event for delivery (any goroutine).
func (h *hooks) enqueue(ev hookEvent) {
	h.mu.Lock()
	h.queue = append(h.queue, ev)
	h.mu.Unlock()
	h.cond.Signal()
}

func (h *hooks) work() {
	defer h.workers.Done()
	for {
		h.mu.Lock()
		for len(h.queue) == 0 && !h.closing {
			h.cond.Wait()
		}
		if len(h.queue) == 0 {
			h.mu.Unlock()
			return
		}
		ev := h.queue[0]
		h.queue = h.queue[1:]
		h.busy++
		h.mu.Unlock()
		h.deliver(&ev)
		h.mu.Lock()
		h.busy--
		h.mu.Unlock()
		h.cond.Broadcast()
	}
}

// deliver posts a disconnect event with retries (1s, 2s, 4s... apart).
func (h *hooks) deliver(ev *hookEvent) {
	cfg := h.g.cfg.Load()
	var err error
	for attempt := 0; attempt <= cfg.Hooks.Retries; attempt++ {
		if attempt > 0 {
			time.Sleep(time.Duration(1<<(attempt-1)) * time.Second)
		}
		if cfg.Hooks.Disconnect == "" {
			return
		}
		if err = h.post(context.Background(), cfg.Hooks.Disconnect, ev); err == nil {
			return
		}
	}
	h.g.log.Error("disconnect hook lost", "link", ev.Link.ID, "attempts", cfg.Hooks.Retries+1, "err", err)
}

// pending returns the disconnect events queued or being delivered.
func (h *hooks) pending() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.queue) + h.busy
}

// close lets the workers finish the queue, waiting at most until ctx ends.
func (h *hooks) close(ctx context.Context) {
	h.mu.Lock()
	h.closing = true
	h.mu.Unlock()
	h.cond.Broadcast()
	done := make(chan struct{})
	go func() { h.workers.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		if h.pending() == 0 {
			return
		}
		h.g.log.Error("shutdown deadline: disconnect hooks not delivered", "pending", h.pending())
	}
}
