package lws

import (
	"encoding/binary"
	"fmt"
	"net/http"
	"net/netip"
	"strconv"
	"sync"
	"time"
)

// Admission: whether a listener takes a new connection (MaxLinks,
// MaxLinksPerIP, AcceptRate), the accounting of the connections it took,
// and the 503 that answers one it refused.

// admission is a listener's accept-time accounting. The listeners of one
// name in the contexts of a Group share one (NewGroup), so that the limits
// hold for the process as a whole.
//
// Concurrency: mu guards every field; it is taken on the service
// goroutines of the contexts that share it, never across a libwebsockets
// call.
type admission struct {
	mu       sync.Mutex
	live     int                // connections accepted and not yet destroyed
	perIP    map[netip.Addr]int // by ipKey
	tokens   float64            // accept-rate bucket
	last     time.Time          // when tokens was last refilled
	refusing int                // refused connections held to answer 503
	warned   map[string]*refusalLog
}

// admissionLimit is the admission limit that refused a connection; 0:
// none, the connection is admitted.
type admissionLimit uint8

const (
	admitted admissionLimit = iota
	overMaxLinks
	overPerIP
	overAcceptRate
)

// name is the limit's Limit* name.
func (k admissionLimit) name() Limit {
	return [...]Limit{"", LimitMaxLinks, LimitMaxLinksPerIP, LimitAcceptRate}[k]
}

// An admission limit refuses a connection with an answer the client can
// read: libwebsockets reads its request as usual, which gets 503 with
// Retry-After and a body naming the limit, and the connection closes (a
// WebSocket upgrade is refused before any 101). A refused connection is
// not a link (no OnLinkOpen) and does not count against the limits. At
// most maxRefusing refused connections are held at once per listener,
// each for at most refuseWait to send its request: beyond that, under a
// flood, a connection refused is closed at accept without a byte read or
// written.
const (
	maxRefusing = 64
	refuseWait  = 2 * time.Second
)

// retryAfter is the Retry-After (seconds) of a refusal: a second refills
// the accept-rate bucket; links take longer to go.
func (k admissionLimit) retryAfter() int {
	if k == overAcceptRate {
		return 1
	}
	return 10
}

// why says in the 503 which limit refused the connection from addr.
func (k admissionLimit) why(cfg *Listener, addr netip.Addr) string {
	switch k {
	case overMaxLinks:
		return fmt.Sprintf("%s: the listener holds its limit of %d links", LimitMaxLinks, cfg.MaxLinks)
	case overPerIP:
		return fmt.Sprintf("%s: %s holds the limit of %d links per address", LimitMaxLinksPerIP, keyString(addr), cfg.MaxLinksPerIP)
	case overAcceptRate:
		return fmt.Sprintf("%s: more than %d new connections a second", LimitAcceptRate, cfg.AcceptRate)
	}
	return ""
}

// refusalLog rate-limits the warning a limit logs when it refuses
// connections on a listener: the first refusal is logged at once, later
// ones at most once per refusalLogEvery, with the count of those refused
// in between, so that a flood cannot flood the log.
//
// Concurrency: guarded by its admission's mu.
type refusalLog struct {
	last  time.Time // when a warning was last logged
	quiet int       // refusals since, not logged
}

const refusalLogEvery = 10 * time.Second

// warnRefused logs a refusal by limit on lis, rate-limited (refusalLog).
// args name what was refused (the address, the answer).
func (c *Context) warnRefused(lis *listener, limit Limit, now time.Time, args ...any) {
	c.warnEvery(lis, string(limit), "lws: connection refused", now, append([]any{"limit", string(limit)}, args...)...)
}

// warnEvery logs msg with args for lis, rate-limited per key (refusalLog).
func (c *Context) warnEvery(lis *listener, key, msg string, now time.Time, args ...any) {
	a := lis.adm
	a.mu.Lock()
	if a.warned == nil {
		a.warned = map[string]*refusalLog{}
	}
	w := a.warned[key]
	if w == nil {
		w = &refusalLog{}
		a.warned[key] = w
	}
	if !w.last.IsZero() && now.Sub(w.last) < refusalLogEvery {
		w.quiet++
		a.mu.Unlock()
		return
	}
	quiet := w.quiet
	w.last, w.quiet = now, 0
	a.mu.Unlock()
	args = append([]any{"listener", lis.cfg.Name}, args...)
	if quiet > 0 {
		args = append(args, "since_last_warning", quiet)
	}
	c.log.Warn(msg, args...)
}

// pendingAccept carries a connection admitted (or refused, to be
// answered 503) at FILTER_NETWORK_CONNECTION to its WSI_CREATE, which
// libwebsockets calls next for it.
//
// Concurrency: service goroutine only.
type pendingAccept struct {
	lis     *listener
	key     netip.Addr
	valid   bool // key is counted against MaxLinksPerIP
	refuse  admissionLimit
	trusted bool // the peer is a trusted proxy (Listener.TrustedProxies)
	// addr is the address a PROXY protocol header gave the connection
	// (ProxyProtocol); invalid: its TCP peer's.
	addr netip.AddrPort
	// tcp is the connection's TCP peer as accept returned it; invalid:
	// unknown, the kernel is asked when it is needed.
	tcp netip.AddrPort
	// reserved: admission already counted the connection (an adopted
	// socket, see acceptor.adopt); countLink only takes it over.
	reserved bool
	// loaded: the connection counts in its listener's load (acceptor).
	loaded bool
}

// peerOf is the peer the C layer passes for FILTER_NETWORK_CONNECTION: an
// IP address of 4 or 16 bytes (an IPv4-mapped one as IPv4), then the
// port in network order.
func peerOf(b []byte) (netip.AddrPort, bool) {
	var a netip.Addr
	switch len(b) {
	case 4 + 2:
		a = netip.AddrFrom4([4]byte(b))
	case 16 + 2:
		a = netip.AddrFrom16([16]byte(b)).Unmap()
	default:
		return netip.AddrPort{}, false
	}
	return netip.AddrPortFrom(a, binary.BigEndian.Uint16(b[len(b)-2:])), true
}

// ipKey is what MaxLinksPerIP counts by: an IPv4 address, or the /64 of an
// IPv6 one (an IPv4-mapped address counts as IPv4).
func ipKey(a netip.Addr) netip.Addr {
	a = a.Unmap()
	if a.Is4() {
		return a
	}
	p, _ := a.Prefix(64)
	return p.Addr()
}

// keyString names an ipKey: the address, or the IPv6 /64.
func keyString(key netip.Addr) string {
	if key.Is6() {
		return key.String() + "/64"
	}
	return key.String()
}

// admission decides whether lis takes a new connection from addr
// (perIP: check MaxLinksPerIP for it) now, and takes an accept-rate token
// when it does; with reserve, it also counts the connection it admits
// (live, and per address with perIP) in the same step, so that contexts
// sharing the admission cannot both take the last place. It reports the
// limit that refuses it, and what it refuses to OnLimit.
func (c *Context) admission(lis *listener, addr netip.Addr, perIP, reserve bool, now time.Time) admissionLimit {
	cfg, a := &lis.cfg, lis.adm
	a.mu.Lock()
	k := admitted
	switch {
	case cfg.MaxLinks > 0 && a.live >= cfg.MaxLinks:
		k = overMaxLinks
	case perIP && cfg.MaxLinksPerIP > 0 && a.perIP[ipKey(addr)] >= cfg.MaxLinksPerIP:
		k = overPerIP
	}
	if rate := float64(cfg.AcceptRate); k == admitted && rate > 0 {
		if a.last.IsZero() {
			a.tokens = rate
		} else if dt := now.Sub(a.last).Seconds(); dt > 0 {
			a.tokens = min(rate, a.tokens+dt*rate)
		}
		a.last = now
		if a.tokens < 1 {
			k = overAcceptRate
		} else {
			a.tokens--
		}
	}
	if k == admitted && reserve {
		a.live++
		if perIP {
			a.countIP(ipKey(addr))
		}
	}
	a.mu.Unlock()
	if k != admitted {
		c.limitHitOn(lis, 0, k.name())
	}
	return k
}

// unreserve gives back what admission reserved for a connection that
// never became a wsi (libwebsockets closed it before WSI_CREATE).
func (a *admission) unreserve(p pendingAccept) {
	a.mu.Lock()
	a.live--
	if p.valid {
		a.uncountIP(p.key)
	}
	a.mu.Unlock()
}

// full reports whether maxRefusing refused connections are held already.
func (a *admission) full() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.refusing >= maxRefusing
}

// admit decides at FILTER_NETWORK_CONNECTION whether lis takes a new
// connection from the peer whose address the C layer passed as ip. It
// returns the callback's result: -1 makes libwebsockets close the socket.
// A connection an admission limit refuses is taken, to be answered 503,
// unless maxRefusing are already held.
//
// A trusted proxy's connections are not counted against MaxLinksPerIP:
// their upgrade requests are, by the client they name (admitForwarded).
func (c *Context) admit(lis *listener, data []byte, now time.Time) int {
	peer, ok := peerOf(data)
	addr := peer.Addr()
	trusted := ok && lis.trusted(addr)
	perIP := ok && !trusted
	k := c.admission(lis, addr, perIP, false, now)
	if k == admitted {
		c.accepting = pendingAccept{lis: lis, key: ipKey(addr), valid: perIP, trusted: trusted, tcp: peer}
		return 0
	}
	if lis.adm.full() {
		c.warnRefused(lis, k.name(), now, "remote", addr, "answer", "closed at accept")
		return -1
	}
	c.warnRefused(lis, k.name(), now, "remote", addr, "answer", "503")
	c.accepting = pendingAccept{lis: lis, refuse: k, tcp: peer}
	return 0
}

// countLink starts accounting for an accepted connection at its
// WSI_CREATE, and bounds the wait for its first request's headers.
func (r *rec) countLink() {
	c := r.ctx
	p := c.accepting
	c.accepting = pendingAccept{}
	if p.lis == nil || p.lis != r.lis || r.counted || r.held {
		return
	}
	r.loaded = p.loaded
	switch {
	case p.addr.IsValid():
		r.peer = &peerInfo{addr: p.addr, trusted: p.trusted}
	case p.trusted:
		r.peer = &peerInfo{addr: p.tcp, trusted: true}
	default:
		r.link.Remote = tcpAddr(p.tcp)
	}
	a := p.lis.adm
	if p.refuse != admitted {
		r.refuse, r.held = p.refuse, true
		a.mu.Lock()
		a.refusing++
		a.mu.Unlock()
		r.setTimer(timerHeader, min(refuseWait, r.lis.cfg.HeaderTimeout))
		return
	}
	r.counted = true
	if p.valid {
		r.ipKey = p.key
	}
	if !p.reserved {
		a.mu.Lock()
		a.live++
		if p.valid {
			a.countIP(p.key)
		}
		a.mu.Unlock()
	}
	r.setTimer(timerHeader, r.lis.cfg.HeaderTimeout)
}

// admitForwarded counts a WebSocket upgrade that came through a trusted
// proxy against MaxLinksPerIP by the client its request names (req.Remote),
// at HTTP_CONFIRM_UPGRADE. It reports the limit that refuses it: a proxy's
// connection was not counted by address at accept. A request that names
// no client (the proxy's own) is not counted.
func (r *rec) admitForwarded(req *Request) admissionLimit {
	if r.peer == nil || !r.peer.trusted || r.ipKey.IsValid() {
		return admitted
	}
	client := addrPortOf(req.Remote).Addr()
	if !client.IsValid() || client == r.connAddr().Addr() {
		return admitted
	}
	key := ipKey(client)
	a := r.lis.adm
	a.mu.Lock()
	if max := r.lis.cfg.MaxLinksPerIP; max > 0 && a.perIP[key] >= max {
		a.mu.Unlock()
		r.limitHit(LimitMaxLinksPerIP)
		r.ctx.warnRefused(r.lis, LimitMaxLinksPerIP, time.Now(), "remote", client, "via", r.connAddr().Addr(), "answer", "503")
		return overPerIP
	}
	a.countIP(key)
	a.mu.Unlock()
	r.ipKey = key
	return admitted
}

// countIP counts a link against MaxLinksPerIP by key (a.mu held).
func (a *admission) countIP(key netip.Addr) {
	if a.perIP == nil {
		a.perIP = map[netip.Addr]int{}
	}
	a.perIP[key]++
}

// uncountIP undoes countIP (a.mu held).
func (a *admission) uncountIP(key netip.Addr) {
	if a.perIP[key]--; a.perIP[key] <= 0 {
		delete(a.perIP, key)
	}
}

// uncountLink ends the accounting of countLink (WSI_DESTROY).
func (r *rec) uncountLink() {
	if r.loaded {
		r.loaded = false
		r.lis.load.Add(-1)
	}
	if !r.counted && !r.held {
		return
	}
	a := r.lis.adm
	a.mu.Lock()
	defer a.mu.Unlock()
	if r.held {
		r.held = false
		a.refusing--
	}
	if !r.counted {
		return
	}
	r.counted = false
	a.live--
	if r.ipKey.IsValid() {
		a.uncountIP(r.ipKey)
		r.ipKey = netip.Addr{}
	}
}

// answerRefused answers the request of a connection an admission limit
// refused with 503, Retry-After and the limit's name, from its
// HTTP_CONFIRM_UPGRADE (upgrade) or HTTP callback, and returns what that
// callback returns: libwebsockets closes the connection once the answer
// is out.
func (r *rec) answerRefused(upgrade bool) int {
	return r.refuseAdmission(r.refuse, r.connAddr().Addr(), upgrade)
}

// refuseAdmission is answerRefused for limit k and the client addr.
func (r *rec) refuseAdmission(k admissionLimit, addr netip.Addr, upgrade bool) int {
	r.setTimer(timerNone, 0)
	msg := "503 Service Unavailable: " + k.why(&r.lis.cfg, ipKey(addr))
	hdrs := []byte("retry-after\x00" + strconv.Itoa(k.retryAfter()) + "\x00")
	if upgrade {
		return r.refuseUpgrade(http.StatusServiceUnavailable, msg, hdrs)
	}
	r.wsi.RefuseHTTP(http.StatusServiceUnavailable, hdrs, []byte(msg+"\n"))
	return -1
}
