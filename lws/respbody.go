package lws

import (
	"io"
	"net/http"
	"sync"
)

// respBody is a response body streamed from the service goroutine to the
// caller.
//
// Concurrency: Read and Close are for the caller's goroutine (as for any
// http.Response.Body); push, fail and pauseIfFull for the service goroutine.
type respBody struct {
	c    *Context
	r    *rec
	resp *http.Response
	wake chan struct{} // cap 1: something changed

	mu       sync.Mutex
	chunks   [][]byte
	buffered int
	err      error // io.EOF at the end, or why the body failed
	closed   bool
	paused   bool
	stop     func() bool // stops the request context's watcher
}

func (b *respBody) setStop(stop func() bool) {
	b.mu.Lock()
	done := b.err != nil && b.buffered == 0
	b.stop = stop
	b.mu.Unlock()
	if done {
		stop()
	}
}

func (b *respBody) signal() {
	select {
	case b.wake <- struct{}{}:
	default:
	}
}

// push appends a copy of p; false when the reader is gone.
func (b *respBody) push(p []byte) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed || b.err != nil {
		return !b.closed
	}
	b.chunks = append(b.chunks, append([]byte(nil), p...))
	b.buffered += len(p)
	b.signal()
	return true
}

// fail ends the body with err (io.EOF for a clean end). It reports whether
// this call ended it.
func (b *respBody) fail(err error) bool {
	b.mu.Lock()
	if b.err != nil {
		b.mu.Unlock()
		return false
	}
	b.err = err
	stop := b.stop
	b.signal()
	b.mu.Unlock()
	if stop != nil && err != io.EOF {
		stop()
	}
	return true
}

func (b *respBody) aborted() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.err != nil && b.err != io.EOF
}

// pauseIfFull reports whether reading must pause until the reader catches up.
func (b *respBody) pauseIfFull() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.buffered >= rxWindow && !b.closed {
		b.paused = true
		return true
	}
	return false
}

// Read implements io.Reader.
func (b *respBody) Read(p []byte) (int, error) {
	for {
		b.mu.Lock()
		if b.closed {
			b.mu.Unlock()
			return 0, errBodyClosed
		}
		if len(b.chunks) > 0 {
			n := 0
			for n < len(p) && len(b.chunks) > 0 {
				m := copy(p[n:], b.chunks[0])
				n += m
				if m == len(b.chunks[0]) {
					b.chunks[0] = nil
					b.chunks = b.chunks[1:]
				} else {
					b.chunks[0] = b.chunks[0][m:]
				}
			}
			b.buffered -= n
			resume := b.paused && b.buffered < rxWindow/2
			if resume {
				b.paused = false
			}
			end := len(b.chunks) == 0 && b.err == io.EOF
			stop := b.stop
			b.mu.Unlock()
			if resume {
				b.c.post(func() {
					if b.live() {
						b.r.wsi.RxFlow(true)
					}
				})
			}
			if end {
				if stop != nil {
					stop()
				}
				return n, io.EOF
			}
			return n, nil
		}
		if b.err != nil {
			err := b.err
			stop := b.stop
			b.mu.Unlock()
			if stop != nil {
				stop()
			}
			return 0, err
		}
		b.mu.Unlock()
		select {
		case <-b.wake:
		case <-b.c.done:
			b.fail(io.ErrUnexpectedEOF)
		}
	}
}

// Close implements io.Closer. Closing before the end drops the connection.
func (b *respBody) Close() error {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return nil
	}
	b.closed = true
	unfinished := b.err == nil
	b.chunks, b.buffered = nil, 0
	stop := b.stop
	b.mu.Unlock()
	if stop != nil {
		stop()
	}
	if unfinished {
		b.c.post(func() {
			if b.live() && b.fail(errBodyClosed) {
				b.r.kill()
			}
		})
	}
	return nil
}

// live reports whether b is still the body of its link's request (service
// goroutine).
func (b *respBody) live() bool {
	hc, _ := b.r.role.(*clientReq)
	return b.r.wsi != 0 && hc != nil && hc.rb == b
}
