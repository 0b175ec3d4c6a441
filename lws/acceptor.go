package lws

import (
	"errors"
	"net"
	"net/netip"
	"os"
	"slices"
	"sync"
	"syscall"
	"time"

	"github.com/lwsgate/lwsgate/cgo"
)

// acceptor accepts the connections of a listener whose sockets the
// binding accepts itself and hands to libwebsockets, for one Context or
// for the contexts of a Group:
//
//   - ProxyProtocol: libwebsockets (4.1 to its main branch) does not read
//     PROXY protocol headers, so a goroutine per connection reads the
//     header (readProxyHeader, byte-exact, within HeaderTimeout) first.
//   - A Group's listener: one listening socket serves every context of
//     the group. libwebsockets 4.1 cannot share a port between contexts
//     (LWS_SERVER_OPTION_ALLOW_LISTEN_SHARE exists from 4.3.1 on), and
//     SO_REUSEPORT's hashing leaves long-lived links unevenly spread; one
//     accept loop that hands each connection to the context with the
//     fewest connections on the listener (its load) works the same on
//     every version and keeps the contexts even.
//
// Each context's listener is a vhost that listens nowhere. The acceptor
// takes the socket out of Go's hands (a duplicate descriptor; the
// net.Conn is closed) and posts it to the chosen context's service
// goroutine, which applies the admission limits (adopt; libwebsockets
// calls no FILTER_NETWORK_CONNECTION for an adopted socket) and gives the
// socket to libwebsockets (cgo.Context.AdoptSocket), which then reads the
// request, or a TLS handshake, from it as from one it accepted.
//
// Concurrency: join and leave run on the members' service goroutines;
// the accept loop and the header readers on their own goroutines; mu
// guards members, closed, reading and handoff. A listener's load is
// atomic.
type acceptor struct {
	ln    *net.TCPListener
	proxy bool // read a PROXY protocol header first

	wg      sync.WaitGroup
	mu      sync.Mutex
	started bool
	closed  bool
	members []member
	next    int                   // where the search for the least loaded starts
	reading map[net.Conn]struct{} // connections whose header is being read
	handoff map[*handoff]struct{} // sockets on their way to libwebsockets
}

// member is one context's side of an acceptor.
type member struct {
	c  *Context
	l  *listener
	vh cgo.VhostID
}

// handoff is a socket posted to a member's service goroutine.
type handoff struct {
	fd   int
	m    member
	peer netip.AddrPort
	h    proxyHeader
}

// maxProxyPending bounds the connections whose PROXY header is being read
// at once; more are closed as they are accepted. A load balancer writes
// the header with its first packet: only a flood waits here.
const maxProxyPending = 1024

func newAcceptor(ln *net.TCPListener, proxy bool) *acceptor {
	return &acceptor{ln: ln, proxy: proxy, reading: map[net.Conn]struct{}{}, handoff: map[*handoff]struct{}{}}
}

// join adds a context's listener (service goroutine of c).
func (p *acceptor) join(c *Context, l *listener, vh cgo.VhostID) {
	p.mu.Lock()
	p.members = append(p.members, member{c, l, vh})
	p.mu.Unlock()
}

// start accepts connections until the last member leaves.
func (p *acceptor) start() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.started || p.closed {
		return
	}
	p.started = true
	p.wg.Add(1)
	go p.acceptLoop()
}

// leave takes c out (service goroutine of c; idempotent): the sockets on
// their way to it are closed. The last member to leave stops the
// acceptor: it stops accepting, closes the connections whose header is
// being read and the sockets not yet adopted, and waits for its
// goroutines.
func (p *acceptor) leave(c *Context) {
	p.mu.Lock()
	p.members = slices.DeleteFunc(p.members, func(m member) bool { return m.c == c })
	for h := range p.handoff {
		if h.m.c == c {
			delete(p.handoff, h)
			h.m.l.load.Add(-1)
			syscall.Close(h.fd)
		}
	}
	last := len(p.members) == 0 && !p.closed
	if last {
		p.closed = true
		p.ln.Close()
		for nc := range p.reading {
			nc.Close()
		}
	}
	p.mu.Unlock()
	if !last {
		return
	}
	p.wg.Wait()
	p.mu.Lock()
	for h := range p.handoff {
		h.m.l.load.Add(-1)
		syscall.Close(h.fd)
	}
	clear(p.handoff)
	p.mu.Unlock()
}

// close stops an acceptor no member joined, or every member left (its
// creator's error path).
func (p *acceptor) close() {
	p.mu.Lock()
	if !p.closed {
		p.closed = true
		p.ln.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
}

// pick returns the member with the least load (mu held), and counts the
// connection in it; ok is false when none is left.
func (p *acceptor) pick() (m member, ok bool) {
	n := len(p.members)
	if n == 0 {
		return member{}, false
	}
	best := -1
	var least int64
	for i := range n {
		j := (p.next + i) % n
		if l := p.members[j].l.load.Load(); best < 0 || l < least {
			best, least = j, l
		}
	}
	p.next = (best + 1) % n
	m = p.members[best]
	m.l.load.Add(1)
	return m, true
}

func (p *acceptor) acceptLoop() {
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
		if !p.proxy {
			p.handOver(nc.(*net.TCPConn), proxyHeader{}, nil)
			continue
		}
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
// over, or closes it.
func (p *acceptor) readHeader(nc *net.TCPConn) {
	defer p.wg.Done()
	p.mu.Lock()
	var first member
	if len(p.members) > 0 {
		first = p.members[0]
	}
	p.mu.Unlock()
	if first.c == nil {
		p.mu.Lock()
		delete(p.reading, nc)
		p.mu.Unlock()
		nc.Close()
		return
	}
	peer := addrPortOf(nc.RemoteAddr())
	_ = nc.SetReadDeadline(time.Now().Add(first.l.cfg.HeaderTimeout))
	h, err := readProxyHeader(nc)
	if err != nil {
		p.mu.Lock()
		delete(p.reading, nc)
		p.mu.Unlock()
		limit := LimitBadProxyHeader
		if errors.Is(err, os.ErrDeadlineExceeded) {
			limit = LimitHeaderTimeout
		}
		closeQuietly(nc)
		c, l := first.c, first.l
		c.post(func() {
			c.limitHitOn(l, 0, limit)
			c.warnEvery(l, string(limit), "lws: connection closed: no valid PROXY protocol header", time.Now(), "limit", string(limit), "remote", peer.Addr(), "why", err.Error())
		})
		return
	}
	_ = nc.SetReadDeadline(time.Time{})
	p.handOver(nc, h, nc)
}

// handOver detaches nc's socket and posts it to the least loaded member;
// reading is nc's entry in p.reading (nil: none).
func (p *acceptor) handOver(nc *net.TCPConn, h proxyHeader, reading net.Conn) {
	peer := addrPortOf(nc.RemoteAddr())
	fd, err := detach(nc)
	p.mu.Lock()
	if reading != nil {
		delete(p.reading, reading)
	}
	var m member
	ok := err == nil && !p.closed
	if ok {
		m, ok = p.pick()
	}
	var ho *handoff
	if ok {
		ho = &handoff{fd: fd, m: m, peer: peer, h: h}
		p.handoff[ho] = struct{}{}
	}
	p.mu.Unlock()
	switch {
	case err != nil:
		nc.Close()
	case !ok:
		syscall.Close(fd)
	default:
		if !m.c.post(func() { p.adopt(ho) }) {
			p.mu.Lock()
			if _, ok := p.handoff[ho]; ok {
				delete(p.handoff, ho)
				m.l.load.Add(-1)
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

// adopt admits a connection the acceptor took and hands its socket to
// libwebsockets (service goroutine of ho.m.c). With a PROXY protocol
// header, the header's source is the connection's address when the
// header is believed: from every peer, or with TrustedProxies from those
// only.
func (p *acceptor) adopt(ho *handoff) {
	p.mu.Lock()
	_, ok := p.handoff[ho]
	delete(p.handoff, ho)
	p.mu.Unlock()
	if !ok {
		return // closed by leave
	}
	c, lis, fd, peer, h := ho.m.c, ho.m.l, ho.fd, ho.peer, ho.h
	if c.stopping {
		lis.load.Add(-1)
		syscall.Close(fd)
		return
	}
	addr := peer
	switch {
	case !p.proxy || h.local:
	case len(lis.cfg.TrustedProxies) > 0 && !lis.trusted(peer.Addr()):
		c.warnEvery(lis, "untrusted_proxy_header", "lws: PROXY protocol header from a peer not in TrustedProxies ignored", time.Now(),
			"remote", peer.Addr(), "named", h.src.Addr())
	default:
		addr = h.src
	}
	now := time.Now()
	trusted := lis.trusted(addr.Addr())
	k := c.admission(lis, addr.Addr(), !trusted, true, now)
	pa := pendingAccept{lis: lis, key: ipKey(addr.Addr()), valid: !trusted, trusted: trusted, reserved: true, loaded: true, tcp: peer}
	if p.proxy {
		pa.addr = addr
	}
	if k != admitted {
		if lis.adm.full() {
			c.warnRefused(lis, k.name(), now, "remote", addr.Addr(), "via", peer.Addr(), "answer", "closed at accept")
			lis.load.Add(-1)
			syscall.Close(fd)
			return
		}
		c.warnRefused(lis, k.name(), now, "remote", addr.Addr(), "via", peer.Addr(), "answer", "503")
		pa = pendingAccept{lis: lis, refuse: k, loaded: true, tcp: peer}
		if p.proxy {
			pa.addr = addr
		}
	}
	// This may run at the end of another connection's callback (see
	// drainInCallbacks), between its FILTER_NETWORK_CONNECTION and its
	// WSI_CREATE: keep what that one carries.
	prev := c.accepting
	c.accepting = pa
	if c.lc.AdoptSocket(ho.m.vh, fd) == 0 {
		// libwebsockets closed the socket.
		c.log.Warn("lws: libwebsockets did not take a connection", "listener", lis.cfg.Name, "remote", addr.Addr())
	}
	if c.accepting == pa {
		// No WSI_CREATE took it over.
		if pa.reserved {
			lis.adm.unreserve(pa)
		}
		lis.load.Add(-1)
	}
	c.accepting = prev
}
