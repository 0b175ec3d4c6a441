package gateway

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestTickets: a ticket is good once and for ticketTTL; at most
// maxTickets wait at once, and expired ones make room.
func TestTickets(t *testing.T) {
	var tk tickets
	now := time.Now()
	a, err := tk.issue(now)
	require.NoError(t, err)
	assert.Len(t, a, 22)
	assert.False(t, tk.redeem(a, now.Add(ticketTTL+time.Millisecond)), "expired")
	b, err := tk.issue(now)
	require.NoError(t, err)
	assert.True(t, tk.redeem(b, now.Add(ticketTTL)))
	assert.False(t, tk.redeem(b, now), "used")
	assert.False(t, tk.redeem("", now))
	for range maxTickets {
		_, err = tk.issue(now)
		require.NoError(t, err)
	}
	_, err = tk.issue(now)
	require.Error(t, err, "more than maxTickets waiting")
	_, err = tk.issue(now.Add(ticketTTL + time.Second))
	require.NoError(t, err, "the expired ones make room")
}
