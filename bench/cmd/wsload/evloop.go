package main

import (
	"errors"
	"fmt"
	"net"
	"syscall"
	"time"
	"unsafe"
)

// The echo and HTTP modes drive all their connections from one goroutine
// with its own epoll set (level-triggered, non-blocking descriptors): one
// epoll_wait serves many ready connections, and each ready connection costs
// a read and a write. With a goroutine per connection Go's netpoller adds a
// failed read, a park and an unpark per message, which made the load tool
// the bottleneck of the 1,000-link scenario. Connections are dialled and
// handshaken with the net package, then detached.

// poller is an epoll set.
type poller struct {
	epfd int
	evs  []syscall.EpollEvent
}

func newPoller(n int) (*poller, error) {
	fd, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("epoll_create1: %w", err)
	}
	return &poller{epfd: fd, evs: make([]syscall.EpollEvent, max(n, 16))}, nil
}

func (p *poller) close() { syscall.Close(p.epfd) }

func (p *poller) ctl(op, fd int, out bool) error {
	ev := syscall.EpollEvent{Events: syscall.EPOLLIN, Fd: int32(fd)}
	if out {
		ev.Events |= syscall.EPOLLOUT
	}
	return syscall.EpollCtl(p.epfd, op, fd, &ev)
}

func (p *poller) add(fd int) error             { return p.ctl(syscall.EPOLL_CTL_ADD, fd, false) }
func (p *poller) setOut(fd int, on bool) error { return p.ctl(syscall.EPOLL_CTL_MOD, fd, on) }

// wait returns the ready descriptors, waiting at most ms milliseconds.
func (p *poller) wait(ms int) ([]syscall.EpollEvent, error) {
	for {
		n, err := syscall.EpollWait(p.epfd, p.evs, ms)
		if errors.Is(err, syscall.EINTR) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("epoll_wait: %w", err)
		}
		return p.evs[:n], nil
	}
}

// newTicker returns a non-blocking timerfd (CLOCK_MONOTONIC) that
// expires every period, first one period from now; its expirations are
// read with readTicks.
func newTicker(period time.Duration) (int, error) {
	const tfdFlags = syscall.O_NONBLOCK | syscall.O_CLOEXEC // TFD_NONBLOCK, TFD_CLOEXEC
	fd, _, errno := syscall.Syscall(syscall.SYS_TIMERFD_CREATE, 1 /* CLOCK_MONOTONIC */, tfdFlags, 0)
	if errno != 0 {
		return -1, fmt.Errorf("timerfd_create: %w", errno)
	}
	ts := syscall.NsecToTimespec(period.Nanoseconds())
	spec := [2]syscall.Timespec{ts, ts} // it_interval, it_value
	if _, _, errno := syscall.Syscall6(syscall.SYS_TIMERFD_SETTIME, fd, 0, uintptr(unsafe.Pointer(&spec)), 0, 0, 0); errno != 0 {
		syscall.Close(int(fd))
		return -1, fmt.Errorf("timerfd_settime: %w", errno)
	}
	return int(fd), nil
}

// readTicks consumes a ticker's expirations.
func readTicks(fd int) {
	var b [8]byte
	_, _ = syscall.Read(fd, b[:])
}

// detach takes the descriptor out of a connected net.Conn: it returns a
// non-blocking duplicate the caller owns, and closes nc.
func detach(nc net.Conn) (int, error) {
	sc, ok := nc.(syscall.Conn)
	if !ok {
		return -1, errors.New("not a socket")
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return -1, err
	}
	fd := -1
	var derr error
	if err := raw.Control(func(s uintptr) { fd, derr = syscall.Dup(int(s)) }); err != nil {
		return -1, err
	}
	if derr != nil {
		return -1, derr
	}
	nc.Close()
	syscall.CloseOnExec(fd)
	if err := syscall.SetNonblock(fd, true); err != nil {
		syscall.Close(fd)
		return -1, err
	}
	return fd, nil
}

// econn is the byte plumbing of one detached connection: what was read
// and not parsed, and what is still to be written.
type econn struct {
	fd int
	rxbuf
	out    []byte
	outOff int
	outOn  bool // EPOLLOUT registered
	eof    bool // the peer closed its side
}

// fill reads what the socket has, at most one buffer's worth (level
// triggering brings the rest next time). It reports whether anything came.
func (c *econn) fill(space []byte) (bool, error) {
	n, err := syscall.Read(c.fd, space)
	switch {
	case n > 0:
		c.w += n
		return true, nil
	case n == 0 && err == nil:
		c.eof = true
		return false, nil
	case errors.Is(err, syscall.EAGAIN), errors.Is(err, syscall.EINTR):
		return false, nil
	}
	return false, err
}

// flush writes what is pending; what the socket does not take waits for
// EPOLLOUT.
func (c *econn) flush(p *poller) error {
	for c.outOff < len(c.out) {
		n, err := syscall.Write(c.fd, c.out[c.outOff:])
		if n > 0 {
			c.outOff += n
			continue
		}
		if errors.Is(err, syscall.EAGAIN) {
			if !c.outOn {
				c.outOn = true
				return p.setOut(c.fd, true)
			}
			return nil
		}
		if errors.Is(err, syscall.EINTR) {
			continue
		}
		if err == nil {
			err = errors.New("write returned 0")
		}
		return fmt.Errorf("write: %w", err)
	}
	c.out, c.outOff = c.out[:0], 0
	if c.outOn {
		c.outOn = false
		return p.setOut(c.fd, false)
	}
	return nil
}
