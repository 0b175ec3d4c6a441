package lws

import (
	"fmt"

	"github.com/lwsgate/lwsgate/cgo"
)

// EventLoop names the event loop a Context's service goroutine runs
// libwebsockets on (Config.EventLoop).
type EventLoop string

// The event loops.
const (
	// EventLoopLibev is libev with its epoll backend, through
	// libwebsockets' libev support: a wake-up costs the same however
	// many links are open. A WRITEABLE that waits for its socket costs
	// two epoll_ctl (libwebsockets asks for POLLOUT before it and drops
	// it after), which poll(2) does not pay; one the binding delivers
	// right after the pass that asked for it (an echo's) costs none, as
	// libev sees the interest come and go before it waits again (strace,
	// 1,000 links echoing: 2 per send before, none after). Debian ships
	// that support as a plugin, package libwebsockets-evlib-ev
	// (libwebsockets-dev depends on it).
	EventLoopLibev EventLoop = "libev"
	// EventLoopPoll is libwebsockets' own loop: poll(2) over every open
	// descriptor at each wake-up, so that an event costs more the more
	// links are open (about 0.23 us per open link and ping-pong message
	// here: 231 us with 1,000 open links).
	EventLoopPoll EventLoop = "poll"
)

// CheckEventLoop checks an EventLoop as Config takes it: "" (the
// default), "libev" or "poll". For libev it also checks that the
// libwebsockets this binary uses has libev support, installed.
func CheckEventLoop(l EventLoop) error {
	switch l {
	case "", EventLoopPoll:
		return nil
	case EventLoopLibev:
		return cgo.CheckLibev()
	}
	return fmt.Errorf("unknown event loop (want %q or %q)", EventLoopLibev, EventLoopPoll)
}

// cgoLoop is l for package cgo; l is defaulted and checked.
func (l EventLoop) cgoLoop() cgo.EventLoop {
	if l == EventLoopLibev {
		return cgo.LoopLibev
	}
	return cgo.LoopPoll
}
