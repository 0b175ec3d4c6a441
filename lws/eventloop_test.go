package lws

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestEventLoopConfig(t *testing.T) {
	require.NoError(t, CheckEventLoop(""))
	require.NoError(t, CheckEventLoop(EventLoopPoll))
	require.NoError(t, CheckEventLoop(EventLoopLibev), "libev support is installed here (scripts/deps.sh)")
	_, err := New(&Config{EventLoop: "epoll", Logger: testLogger(t)})
	require.ErrorContains(t, err, `Config.EventLoop "epoll": unknown event loop`)
}

// TestEventLoopTimers: a timer due before the one libwebsockets' loop
// waits for fires when it is due, on both loops. A silent connection
// on a listener with a long HeaderTimeout arms a timer (30s) first; one on
// a listener with a 1s HeaderTimeout must then be closed after about 1s,
// not when the first timer is due (lws' libev plugin alone re-arms its
// timer only once it has fired: see evloop.c).
func TestEventLoopTimers(t *testing.T) {
	for _, loop := range []EventLoop{EventLoopLibev, EventLoopPoll} {
		t.Run(string(loop), func(t *testing.T) {
			t.Parallel()
			c, err := New(&Config{
				EventLoop: loop,
				Logger:    testLogger(t),
				Listeners: []Listener{
					{Name: "slow", Addr: "127.0.0.1:0", Accept: AcceptHTTP, HeaderTimeout: 30 * time.Second},
					{Name: "fast", Addr: "127.0.0.1:0", Accept: AcceptHTTP, HeaderTimeout: time.Second},
				},
				ShutdownTimeout: time.Second,
			})
			require.NoError(t, err)
			t.Cleanup(func() { require.NoError(t, c.Close()) })
			rawDial(t, c.Addrs()[0].String()) // silent
			// accepted: its header timer (30s) is the one lws waits for
			require.Eventually(t, func() bool { return reasonCount(c, "LWS_CALLBACK_SERVER_NEW_CLIENT_INSTANTIATED") > 0 },
				5*time.Second, time.Millisecond)
			fast := rawDial(t, c.Addrs()[1].String())
			start := time.Now()
			require.NoError(t, fast.SetDeadline(start.Add(10*time.Second)))
			_, err = io.ReadAll(fast)
			took := time.Since(start)
			require.NoError(t, err, "the fast listener's connection was not closed")
			require.Less(t, took, 5*time.Second, "closed after %v for a 1s HeaderTimeout", took)
		})
	}
}

// TestEventLoopLibevEpoll: on the libev loop, libwebsockets' descriptors
// are watched by an epoll instance of their own, one entry per link
// (what makes an event cost the same however many links are open);
// libwebsockets' poll loop makes none.
func TestEventLoopLibevEpoll(t *testing.T) {
	for _, loop := range []EventLoop{EventLoopLibev, EventLoopPoll} {
		t.Run(string(loop), func(t *testing.T) {
			before := epollFDs(t)
			rec := newRecorder()
			_, addr := startServer(t, Listener{Handler: rec}, func(c *Config) { c.EventLoop = loop })
			const links = 20
			for range links {
				dial(t, addr, nil)
				waitFor(t, rec.opens, "link open")
			}
			var mine []int
			for fd, n := range epollFDs(t) {
				if _, ok := before[fd]; !ok && n > links {
					mine = append(mine, fd)
				}
			}
			if loop == EventLoopPoll {
				require.Empty(t, mine, "no epoll instance watches the links")
				return
			}
			require.Len(t, mine, 1, "one new epoll instance watches more than %d descriptors", links)
		})
	}
}

func reasonCount(c *Context, name string) uint64 {
	for _, rc := range c.ReasonCounts() {
		if rc.Name == name {
			return rc.Count
		}
	}
	return 0
}

// epollFDs returns this process' epoll descriptors, each with the number
// of descriptors it watches (/proc/self/fdinfo "tfd:" lines).
func epollFDs(t *testing.T) map[int]int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	require.NoError(t, err)
	out := map[int]int{}
	for _, e := range ents {
		target, err := os.Readlink(filepath.Join("/proc/self/fd", e.Name()))
		if err != nil || target != "anon_inode:[eventpoll]" {
			continue
		}
		info, err := os.ReadFile(filepath.Join("/proc/self/fdinfo", e.Name()))
		if err != nil {
			continue
		}
		var fd int
		_, _ = fmt.Sscan(e.Name(), &fd)
		out[fd] = strings.Count(string(info), "tfd:")
	}
	return out
}
