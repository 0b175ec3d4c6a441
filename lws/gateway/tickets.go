package gateway

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"net/http"
	"strings"
	"sync"
	"time"
)

// Console tickets: a browser cannot set Authorization on a WebSocket,
// and a token in a URL ends up in logs, so the console trades the admin
// token for a ticket (POST /v1/api/events/ticket) and offers it as a
// subprotocol of the event stream's upgrade (ticketProtocol+TICKET),
// which checkEvents redeems. A ticket is 16 random bytes, good once, for
// ticketTTL.

// ticketTTL is how long a console ticket may wait to be redeemed, and
// maxTickets how many may wait at once.
const (
	ticketTTL  = 30 * time.Second
	maxTickets = 64
)

// tickets are the console tickets issued and not yet redeemed.
//
// Concurrency: safe from any goroutine.
type tickets struct {
	mu      sync.Mutex
	pending map[string]time.Time // ticket -> expiry
}

// ticketError: maxTickets are waiting.
type ticketError struct{}

func (ticketError) Error() string {
	return "too many console tickets waiting to be used (at most 64 in 30 s)"
}

// issue makes a ticket good until now+ticketTTL.
func (t *tickets) issue(now time.Time) (string, error) {
	var b [16]byte
	_, _ = rand.Read(b[:])
	tk := base64.RawURLEncoding.EncodeToString(b[:])
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.pending == nil {
		t.pending = map[string]time.Time{}
	}
	for k, exp := range t.pending {
		if now.After(exp) {
			delete(t.pending, k)
		}
	}
	if len(t.pending) >= maxTickets {
		return "", ticketError{}
	}
	t.pending[tk] = now.Add(ticketTTL)
	return tk, nil
}

// redeem reports whether tk is a ticket good now, and uses it up.
func (t *tickets) redeem(tk string, now time.Time) bool {
	if tk == "" {
		return false
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	exp, ok := t.pending[tk]
	delete(t.pending, tk)
	return ok && !now.After(exp)
}

// ticketProtocol is the prefix of the subprotocol that carries a ticket.
const ticketProtocol = "lwsgate.ticket."

// offeredTicket returns the ticket among the subprotocols a WebSocket
// upgrade offers, if any.
func offeredTicket(h http.Header) string {
	for _, line := range h.Values("Sec-Websocket-Protocol") {
		for _, p := range strings.Split(line, ",") {
			if tk, ok := strings.CutPrefix(strings.TrimSpace(p), ticketProtocol); ok {
				return tk
			}
		}
	}
	return ""
}

// bearerOK reports whether h carries the admin token tok.
func bearerOK(h http.Header, tok string) bool {
	got, _ := strings.CutPrefix(h.Get("Authorization"), "Bearer ")
	return subtle.ConstantTimeCompare([]byte(got), []byte(tok)) == 1
}

// apiTicket issues a console ticket (POST /v1/api/events/ticket).
func (g *Gateway) apiTicket(w http.ResponseWriter, r *http.Request) {
	now := time.Now()
	tk, err := g.console.tickets.issue(now)
	if err != nil {
		writeJSON(w, 429, apiError{429, err.Error()})
		return
	}
	writeJSON(w, 200, map[string]any{
		"ticket":      tk,
		"subprotocol": ticketProtocol + tk,
		"expires":     now.Add(ticketTTL).UTC().Format(time.RFC3339),
	})
}
