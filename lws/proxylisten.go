package lws

import (
	"errors"
	"net"
	"net/netip"
	"os"
	"sync"
	"syscall"
	"time"

	"github.com/lwsgate/lwsgate/cgo"
)

// proxyListener accepts the connections of a Listener with ProxyProtocol.
// libwebsockets (4.1 to its main branch) does not read PROXY protocol
// headers, so the listener's vhost listens nowhere and the binding
// accepts: a goroutine per connection reads the header (readProxyHeader,
// byte-exact, within HeaderTimeout), takes the socket out of Go's hands
// (a duplicate descriptor; the net.Conn is closed) and hands it to the
// service goroutine, which applies the admission limits to the address
// the header named and gives the socket to libwebsockets
// (cgo.Context.AdoptSocket), which then reads the request, or a TLS
// handshake, from the socket as from one it accepted.
//
// Concurrency: start and stop run on the service goroutine; the accept
// loop and the header readers on their own goroutines; the maps are
// guarded by mu.
type proxyListener struct {
	c  *Context
	l  *listener
	ln *net.TCPListener
	vh cgo.VhostID

	wg      sync.WaitGroup
	mu      sync.Mutex
	closed  bool
	reading map[net.Conn]struct{} // connections whose header is being read
	handoff map[int]struct{}      // descriptors on their way to libwebsockets
}

// maxProxyPending bounds the connections whose PROXY header is being read
// at once; more are closed as they are accepted. A load balancer writes
// the header with its first packet: only a flood waits here.
const maxProxyPending = 1024

// start accepts connections until stop.
func (p *proxyListener) start() {
	p.reading = map[net.Conn]struct{}{}
	p.handoff = map[int]struct{}{}
	p.wg.Add(1)
	go p.acceptLoop()
}

// stop stops accepting and closes what the binding still holds: the
// connections whose header is being read, and the descriptors not yet
// adopted. It waits for the goroutines.
func (p *proxyListener) stop() {
	p.mu.Lock()
	if !p.closed {
		p.closed = true
		p.ln.Close()
		for nc := range p.reading {
			nc.Close()
		}
	}
	p.mu.Unlock()
	p.wg.Wait()
	p.mu.Lock()
	for fd := range p.handoff {
		syscall.Close(fd)
	}
	clear(p.handoff)
	p.mu.Unlock()
}

func (p *proxyListener) acceptLoop() {
	defer p.wg.Done()
	var backoff time.Duration
	for {
		nc, err := p.ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			// Out of descriptors, or an aborted connection: as
			// net/http does, wait a little and try again.
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			time.Sleep(backoff)
			continue
		}
		backoff = 0
		p.mu.Lock()
		ok := !p.closed && len(p.reading) < maxProxyPending
		if ok {
			p.reading[nc] = struct{}{}
			p.wg.Add(1)
		}
		p.mu.Unlock()
		if !ok {
			nc.Close()
			continue
		}
		go p.readHeader(nc.(*net.TCPConn))
	}
}

// readHeader reads a connection's PROXY header and hands the connection
// to the service goroutine, or closes it.
func (p *proxyListener) readHeader(nc *net.TCPConn) {
	defer p.wg.Done()
	peer := addrPortOf(nc.RemoteAddr())
	_ = nc.SetReadDeadline(time.Now().Add(p.l.cfg.HeaderTimeout))
	h, err := readProxyHeader(nc)
	fd := -1
	if err == nil {
		fd, err = detach(nc)
	}
	p.mu.Lock()
	delete(p.reading, nc)
	closed := p.closed
	if err == nil && !closed {
		p.handoff[fd] = struct{}{}
	}
	p.mu.Unlock()
	switch {
	case err != nil:
		limit := LimitBadProxyHeader
		if errors.Is(err, os.ErrDeadlineExceeded) {
			limit = LimitHeaderTimeout
		}
		closeQuietly(nc)
		p.c.post(func() {
			p.c.limitHitOn(p.l, 0, limit)
			p.c.warnEvery(p.l, string(limit), "lws: connection closed: no valid PROXY protocol header", time.Now(), "limit", string(limit), "remote", peer.Addr(), "why", err.Error())
		})
	case closed:
		syscall.Close(fd)
	default:
		if !p.c.post(func() { p.adopt(fd, peer, h) }) {
			p.mu.Lock()
			if _, ok := p.handoff[fd]; ok {
				delete(p.handoff, fd)
				syscall.Close(fd)
			}
			p.mu.Unlock()
		}
	}
}

// detach takes nc's socket out of Go's hands: a duplicate descriptor
// (close-on-exec; still non-blocking, which libwebsockets wants too), and
// nc closed, which unregisters it from Go's poller without touching the
// connection the duplicate holds.
func detach(nc *net.TCPConn) (int, error) {
	rc, err := nc.SyscallConn()
	if err != nil {
		return -1, err
	}
	fd := -1
	var derr error
	if err := rc.Control(func(s uintptr) {
		r, _, e := syscall.Syscall(syscall.SYS_FCNTL, s, syscall.F_DUPFD_CLOEXEC, 0)
		if e != 0 {
			derr = e
			return
		}
		fd = int(r)
	}); err != nil {
		return -1, err
	}
	if derr != nil {
		return -1, derr
	}
	nc.Close()
	return fd, nil
}

// closeQuietly closes a connection whose header was refused with a FIN
// rather than a reset: what the peer sent after the header and is already
// here is read and dropped first (a close with unread data resets).
func closeQuietly(nc *net.TCPConn) {
	_ = nc.SetReadDeadline(time.Now().Add(5 * time.Millisecond))
	var buf [4 << 10]byte
	for {
		if n, err := nc.Read(buf[:]); n == 0 || err != nil {
			break
		}
	}
	nc.Close()
}

// adopt admits a connection whose PROXY header was read and hands its
// socket to libwebsockets (service goroutine). The header's source is the
// connection's address when the header is believed: from every peer, or
// with TrustedProxies from those only.
func (p *proxyListener) adopt(fd int, peer netip.AddrPort, h proxyHeader) {
	p.mu.Lock()
	_, ok := p.handoff[fd]
	delete(p.handoff, fd)
	p.mu.Unlock()
	if !ok {
		return // closed by stop
	}
	c, lis := p.c, p.l
	if c.stopping {
		syscall.Close(fd)
		return
	}
	addr := peer
	switch {
	case h.local:
	case len(lis.cfg.TrustedProxies) > 0 && !lis.trusted(peer.Addr()):
		c.warnEvery(lis, "untrusted_proxy_header", "lws: PROXY protocol header from a peer not in TrustedProxies ignored", time.Now(),
			"remote", peer.Addr(), "named", h.src.Addr())
	default:
		addr = h.src
	}
	now := time.Now()
	trusted := lis.trusted(addr.Addr())
	k := c.admission(lis, addr.Addr(), !trusted, now)
	pa := pendingAccept{lis: lis, key: ipKey(addr.Addr()), valid: !trusted, trusted: trusted, addr: addr}
	if k != admitted {
		if lis.adm.refusing >= maxRefusing {
			c.warnRefused(lis, k.name(), now, "remote", addr.Addr(), "via", peer.Addr(), "answer", "closed at accept")
			syscall.Close(fd)
			return
		}
		c.warnRefused(lis, k.name(), now, "remote", addr.Addr(), "via", peer.Addr(), "answer", "503")
		pa = pendingAccept{lis: lis, refuse: k, addr: addr}
	}
	// This may run at the end of another connection's callback (see
	// drainInCallbacks), between its FILTER_NETWORK_CONNECTION and its
	// WSI_CREATE: keep what that one carries.
	prev := c.accepting
	c.accepting = pa
	if c.lc.AdoptSocket(p.vh, fd) == 0 {
		// libwebsockets closed the socket.
		c.log.Warn("lws: libwebsockets did not take a connection", "listener", lis.cfg.Name, "remote", addr.Addr())
	}
	c.accepting = prev
}
