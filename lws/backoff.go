package lws

import (
	"context"
	"errors"
	"math"
	"math/rand/v2"
	"time"
)

// Backoff is a reconnect policy: exponential delays with jitter. The zero
// value is usable: 100 ms doubling up to 30 s, ±20 % jitter, no attempt
// limit. It is a value; Delay is safe from any goroutine.
type Backoff struct {
	// Initial is the delay after the first failure. 0: 100 ms.
	Initial time.Duration
	// Max caps the delay. 0: 30 s.
	Max time.Duration
	// Factor multiplies the delay after each failure. 0: 2.
	Factor float64
	// Jitter spreads each delay by ±Jitter of itself so that many clients
	// do not reconnect in step. 0: 0.2; negative: none.
	Jitter float64
	// Attempts caps the dials (the first included). 0: no cap.
	Attempts int
}

// Delay returns the wait before attempt n+1 after n failed attempts (n ≥ 1).
func (b Backoff) Delay(n int) time.Duration {
	initial, maxd, factor, jitter := b.Initial, b.Max, b.Factor, b.Jitter
	if initial <= 0 {
		initial = 100 * time.Millisecond
	}
	if maxd <= 0 {
		maxd = 30 * time.Second
	}
	if factor <= 0 {
		factor = 2
	}
	if jitter == 0 {
		jitter = 0.2
	}
	d := float64(initial) * math.Pow(factor, float64(max(n-1, 0)))
	if d > float64(maxd) {
		d = float64(maxd)
	}
	if jitter > 0 {
		d *= 1 + jitter*(2*rand.Float64()-1)
	}
	return time.Duration(d)
}

// DialRetry dials like Dial until a link opens, waiting b.Delay between
// failed attempts. It gives up when ctx ends (returning the last dial error
// joined with ctx's), when the Context closes, after b.Attempts, or at once
// on an error that a retry cannot fix (a bad URL or option). onFail, if not
// nil, is called after each failed attempt with the attempt number, its
// error and the wait before the next one (0 when giving up).
func (c *Context) DialRetry(ctx context.Context, rawURL string, opts *DialOptions, b Backoff,
	onFail func(attempt int, err error, wait time.Duration)) (*Conn, error) {
	for n := 1; ; n++ {
		conn, err := c.Dial(ctx, rawURL, opts)
		if err == nil {
			return conn, nil
		}
		var de *DialError
		final := !errors.As(err, &de) || de.Kind == DialClosed || de.Kind == DialCanceled ||
			(b.Attempts > 0 && n >= b.Attempts) || ctx.Err() != nil
		wait := time.Duration(0)
		if !final {
			wait = b.Delay(n)
		}
		if onFail != nil {
			onFail(n, err, wait)
		}
		if final {
			return nil, err
		}
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return nil, errors.Join(err, ctx.Err())
		case <-c.done:
			t.Stop()
			return nil, &DialError{URL: rawURL, Kind: DialClosed, Err: ErrClosed}
		}
	}
}
