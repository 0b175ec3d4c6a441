package lws

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/lwsgate/lwsgate/cgo"
)

// contextIDs and linkIDs number the contexts and links of the process:
// a link's ID is unique across all its contexts (a Group's workers).
var contextIDs, linkIDs atomic.Uint64

// Context is a libwebsockets context with its listeners and links, served by
// one goroutine locked to its OS thread (the service goroutine). That
// goroutine makes every libwebsockets call; other goroutines hand it work
// through a queue and wake it with lws_cancel_service, the one
// libwebsockets call that is safe from any thread.
//
// Concurrency: every method of Context is safe from any goroutine. Handlers
// run on the service goroutine.
type Context struct {
	cfg     *Config
	log     *slog.Logger
	id      uint64
	grouped bool // one of a Group's: the Group starts the acceptors

	// Set before the service goroutine starts, read-only after. A
	// listener's limits may change (SetListenerLimits), on the service
	// goroutine.
	listeners []*listener
	addrs     []net.Addr

	// The hand-off queue (queue.go). qmu guards pending and cmds, which
	// any goroutine appends to; the rest is the service goroutine's.
	qmu      sync.Mutex
	pending  []*rec   // links that want a WRITEABLE callback
	cmds     []func() // work to run on the service goroutine
	npend    atomic.Int32
	armed    atomic.Bool  // a wake-up is in flight
	inCb     atomic.Bool  // the service goroutine is inside a callback
	tid      atomic.Int32 // the service goroutine's thread (gettid), once it runs: Conn.lent
	draining bool
	spare    []*rec
	spareCmd []func()
	answers  []*rec // HTTP answers ready on paused connections (answer)
	spareAns []*rec
	outNow   []*rec // WebSocket links that asked for WRITEABLE (writeNow)
	spareOut []*rec
	inWrite  bool   // writeNow is delivering: further requests wait for the poll
	bodyWait []*rec // requests whose body timer waits for the pass's end (armBodyTimers)
	// spareTimers: stopped connection timers, kept for the next connection (accept.go).
	spareTimers []*recTimer
	passes      uint64 // lws_service passes so far, counted as each starts (tests, traceClock)
	midWrites   uint64 // WRITEABLE callbacks midPass delivered so far (tests)
	// WRITEABLE callbacks writeAlone had the C layer write, those
	// libwebsockets did not deliver, and the answers answerAlone had the
	// C layer write (tests).
	aloneWrites, aloneWaits, aloneAnswers uint64
	// lastYield is when the service goroutine last yielded its P, and
	// cbs counts callbacks (maybeYield).
	lastYield time.Time
	cbs       uint32
	// The link traces' clock (traceClock): trClock, read in pass
	// trClockPass, serves trClockN more entries.
	trClock     time.Time
	trClockPass uint64
	trClockN    int

	// The service loop and its end (this file).
	stopReq   atomic.Bool
	closeOnce sync.Once
	done      chan struct{}
	err       error                       // why the loop ended; read after done
	lcPtr     atomic.Pointer[cgo.Context] // set while Wake may be called
	lc        *cgo.Context                // service goroutine only, as is all below
	stopTimer *time.Timer
	stopping  bool // Close asked: refuse new links, close the open ones
	deadline  time.Time

	// The records of the wsis and the callbacks in progress (dispatch.go).
	recs    map[uint64]*rec
	dialMem map[uint64]*cgo.Client // client links' C memory (connect), by id; freed on release
	depth   int
	stack   [8]uintptr   // wsi of each callback in progress, by depth
	reasons reasonCounts // callbacks per reason; read from any goroutine
	trace   []byte       // reason-log lines, written out once per pass

	// Accepting (admission.go) and dialling (dial.go).
	accepting     pendingAccept             // admitted, WSI_CREATE to come
	connecting    *rec                      // the client link inside its connect call
	clientVhosts  map[ClientTLS]cgo.VhostID // client vhosts by TLS settings
	deflateVhosts map[ClientTLS]cgo.VhostID // the same, offering permessage-deflate

	// Scratch.
	hbuf []byte    // for HTTP request and response headers
	tx   txScratch // for writing links (conn_tx.go)
}

// httpProtocol names a listener's first protocol, which serves HTTP and
// WebSocket links without a subprotocol.
const httpProtocol = "http"

// listener is a Listener after New resolved it.
type listener struct {
	cfg    Listener
	opts   *linkOpts // service goroutine only (SetListenerLimits)
	index  int
	extra  string // "x-a:\x00x-b:\x00" for cgo.WSI.HTTPRequest
	protos []string
	adm    *admission // shared by the contexts of a Group
	// acc accepts for the listener when the binding does (ProxyProtocol,
	// or a Group's listener; nil: libwebsockets does); load counts the
	// connections it handed this context and that are not yet gone.
	acc  *acceptor
	load atomic.Int64
	ka   keepalive // its links' pings (keepalive.go)
}

// New creates a Context, starts its service goroutine and opens its
// listeners. It returns an error naming the listener and cause when a
// listener cannot be opened (address in use, unreadable certificate...).
func New(cfg *Config) (*Context, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	return newContext(cfg, nil)
}

// newContext is New for a defaulted, valid cfg; shared are a Group's
// listeners, by index (nil: the context's own).
func newContext(cfg *Config, shared []*sharedListener) (*Context, error) {
	c := &Context{
		cfg:  cfg,
		log:  cfg.Logger,
		id:   contextIDs.Add(1),
		done: make(chan struct{}),
		recs: map[uint64]*rec{},

		dialMem: map[uint64]*cgo.Client{},

		grouped: shared != nil,
	}
	routeLibraryLog(cfg.Logger)
	for i, lc := range cfg.Listeners {
		l := &listener{cfg: lc, index: i, protos: append([]string{httpProtocol}, lc.Subprotocols...), adm: &admission{}, ka: keepaliveOf(&lc)}
		if shared != nil {
			l.adm, l.acc = shared[i].adm, shared[i].acc
		}
		l.opts = &linkOpts{handler: lc.Handler, maxMessage: lc.MaxMessageSize, maxQueue: lc.MaxSendQueue, slowConsumer: lc.SlowConsumer}
		extra := lc.ExtraHeaders
		if lc.ForwardedHeader == headerForwarded && len(lc.TrustedProxies) > 0 &&
			!slices.ContainsFunc(extra, func(h string) bool { return strings.EqualFold(h, headerForwarded) }) {
			// Not a header libwebsockets knows: looked up by name.
			extra = append(slices.Clip(extra), headerForwarded)
		}
		for _, h := range extra {
			l.extra += strings.ToLower(h) + ":\x00"
		}
		c.listeners = append(c.listeners, l)
	}
	started := make(chan error, 1)
	go c.run(started)
	if err := <-started; err != nil {
		<-c.done
		return nil, err
	}
	return c, nil
}

// Addrs returns the address each listener listens on, in Config order, with
// kernel-chosen ports filled in.
func (c *Context) Addrs() []net.Addr { return append([]net.Addr(nil), c.addrs...) }

// Done is closed when the service goroutine has ended and every resource of
// the Context is released.
func (c *Context) Done() <-chan struct{} { return c.done }

// Close shuts the Context down gracefully: it stops accepting links, closes
// WebSocket links with 1001 (going away), lets in-flight HTTP responses
// finish, and after at most Config.ShutdownTimeout destroys the
// libwebsockets context. It waits until everything is released. Close is
// idempotent and safe from any goroutine, but must not be called from a
// handler (it would wait for itself).
func (c *Context) Close() error {
	return c.Shutdown(context.Background())
}

// Shutdown is Close with a caller's context: when ctx ends first, the
// libwebsockets context is destroyed at once, then Shutdown still waits
// for the release and returns ctx.Err().
func (c *Context) Shutdown(ctx context.Context) error {
	c.closeOnce.Do(func() {
		c.post(func() { c.beginStop(time.Now().Add(c.cfg.ShutdownTimeout)) })
	})
	select {
	case <-c.done:
		return c.err
	case <-ctx.Done():
		c.stopReq.Store(true)
		c.wake()
		<-c.done
		return ctx.Err()
	}
}

// Post queues f to run on the service goroutine and returns at once: from
// a handler, work for another Context (a Group's other worker) that must
// not wait for it, as Do would. It returns ErrClosed when the Context has
// stopped; f is dropped if the Context stops before it runs. f must not
// block.
func (c *Context) Post(f func()) error {
	if !c.post(f) {
		return ErrClosed
	}
	return nil
}

// Do runs f on the service goroutine and waits for it. It returns ErrClosed
// when the Context has stopped. f must not block and must not call Do.
func (c *Context) Do(f func()) error {
	ch := make(chan struct{})
	if !c.post(func() { f(); close(ch) }) {
		return ErrClosed
	}
	select {
	case <-ch:
		return nil
	case <-c.done:
		return ErrClosed
	}
}

// serviceBufferSize is libwebsockets' pt_serv_buf_size: the most it reads
// from a socket at once, and (the protocols' rx_buffer_size being 0) the
// most one RECEIVE callback carries. lws' 4 KiB default takes 16 reads and
// 16 callbacks for a 64 KiB message. The buffer itself is one per service
// thread, but lws also allocates a receive buffer of this size for every
// WebSocket link. From malloc, each idle link holds about min(size, one
// page) of RSS for it: 4 KiB at lws' default and at 64 KiB alike (native
// lws, 10,000 idle links: 5.4 KB per link either way). The binding gives
// lws an allocator (cgo/rxpool.c) that puts these buffers in page-aligned
// slots, so an idle link's buffer holds no memory at all: package lws
// alone measured 6.4 KB per idle link before, 2.3 KB after (bench idle,
// 10,000 links), of which about 0.8 KB is Go heap (Conn, rec, the upgrade
// request's bytes, the address, the handle).
//
// A smaller rx_buffer_size made idle links cheaper with malloc (native
// lws: 3.4 KB per link at 2 KiB, 1.8 KB at 512 bytes) but also caps each read of a
// link's socket (lws reads min(rx buffer, pt_serv_buf_size)): 64 KiB
// echoes took twice the CPU at 2 KiB. And when a link is failed in the
// middle of a message (MaxMessageSize), lws 4.1 drops the rest of the read
// and parses the peer's next bytes as if they started a frame, fails the
// link again and resets it: the peer often never sees the 1009 close
// (TestMaxMessageSize/fragmented_over then fails in 1 run of 6 at 2 KiB).
const serviceBufferSize = 64 << 10

// yieldEvery is how often the service goroutine yields its P
// (maybeYield), and yieldCheck how many callbacks go by between two looks
// at the clock for it inside a long service pass.
const (
	yieldEvery = 5 * time.Millisecond
	yieldCheck = 128
)

// run is the service goroutine.
func (c *Context) run(started chan<- error) {
	runtime.LockOSThread()
	c.tid.Store(int32(syscall.Gettid()))
	// The thread is not unlocked: it exits with the goroutine, taking any
	// thread state libwebsockets or OpenSSL left on it.
	defer close(c.done)
	err := c.start()
	started <- err
	if err == nil {
		c.loop()
		c.destroy()
	}
}

// start creates the libwebsockets context and opens the listeners; on
// failure nothing is left of them.
func (c *Context) start() error {
	// libwebsockets' VALIDATE_UTF8 option stays off: the binding checks
	// text messages and close reasons itself (Conn.onReceive, onPeerClose).
	// With the option on, libwebsockets 4.1 and 4.3 drop a link whose
	// close reason is not UTF-8 without the 1007 close frame, and echo a
	// reason cut off in the middle of a character.
	opts := uint64(0)
	// OpenSSL is set up for the context whether or not a listener uses
	// TLS: client links may (lws keeps its ex_data index there), and
	// clients send the Origin they are given, without lws' "http://".
	ctxOpts := opts | cgo.OptionDoSSLGlobalInit | cgo.OptionJustUseRawOrigin
	lc, err := cgo.NewContext(cgo.ContextInfo{
		Options:           ctxOpts,
		TimeoutSecs:       int((c.cfg.NetworkTimeout + time.Second - 1) / time.Second),
		MaxHTTPHeaderData: c.cfg.headerBytes(),
		ServiceBufferSize: serviceBufferSize,
		EventLoop:         c.cfg.EventLoop.cgoLoop(),
	}, dispatcher{c})
	if err != nil {
		return err
	}
	c.lc = lc
	// Every reason crosses into Go only for the reason log.
	lc.SetReportAll(c.cfg.Trace != nil)
	for _, l := range c.listeners {
		port, err := c.openListener(l, opts)
		if err != nil {
			c.flushTrace()
			c.destroy()
			return err
		}
		if l.acc != nil {
			c.addrs = append(c.addrs, l.acc.ln.Addr())
			continue
		}
		host, _, _ := splitAddr(l.cfg.Addr)
		ip := net.ParseIP(host)
		if ip == nil {
			ip = net.IPv6unspecified
		}
		c.addrs = append(c.addrs, &net.TCPAddr{IP: ip, Port: port})
	}
	if !c.grouped {
		for _, l := range c.listeners {
			if l.acc != nil {
				l.acc.start()
			}
		}
	}
	c.lcPtr.Store(lc)
	c.flushTrace()
	return nil
}

// loop services the context until it stops: the queued work, the answers
// of connections that do not read, then lws_service.
func (c *Context) loop() {
	c.lastYield = time.Now()
	for !c.stopReq.Load() {
		if c.npend.Load() > 0 {
			c.drain(true)
		}
		if len(c.outNow) > 0 {
			c.writeNow()
		}
		if len(c.answers) > 0 {
			c.answer()
		}
		now := time.Now()
		c.maybeYield(now)
		if len(c.bodyWait) > 0 {
			c.armBodyTimers()
		}
		if !drainInCallbacks && c.npend.Load() > 0 && !c.armed.Load() {
			// 4.3: work queued by callbacks of this goroutine
			// (writeNow, answer, posted functions), which did
			// not wake it (kick). Work queued from elsewhere
			// armed a wake-up, so lws_service returns at once:
			// going round for it instead would let goroutines
			// that keep the queue filled starve every link's
			// input and the timers.
			continue
		}
		c.passes++
		err := c.lc.Service()
		c.flushTrace()
		if err != nil {
			c.err = err
			c.log.Error("lws: service loop failed", "err", err)
			return
		}
		if c.stopping && (c.busyRecs() == 0 || time.Now().After(c.deadline)) {
			return
		}
	}
}

// maybeYield lets the scheduler run once yieldEvery has gone by since the
// service goroutine last passed through it. Go's sysmon takes the P away
// from a goroutine that has not been rescheduled for 10 ms, at every one
// of its ticks (20 us) for as long as that goroutine keeps running, and
// each time it does so it starts its short ticks over; one that lives in
// cgo calls, as this one does, is never rescheduled unless it yields. The
// loop calls it once per pass and dispatch every yieldCheck callbacks, as
// one pass over many busy links can itself outlast the 10 ms.
func (c *Context) maybeYield(now time.Time) {
	if now.Sub(c.lastYield) >= yieldEvery {
		runtime.Gosched()
		c.lastYield = now
	}
}

func (c *Context) openListener(l *listener, opts uint64) (int, error) {
	host, port, _ := splitAddr(l.cfg.Addr)
	// A clear error for the commonest failure, before libwebsockets logs
	// its own: the port is taken. (A Group's listener is open already.)
	if port != 0 && l.acc == nil {
		ln, err := net.Listen("tcp", net.JoinHostPort(host, strconv.Itoa(port)))
		if err != nil {
			return 0, fmt.Errorf("lws: listener %q: %w", l.cfg.Name, err)
		}
		_ = ln.Close()
	}
	if l.cfg.TLS != nil {
		// Per vhost: makes lws load this listener's certificate.
		opts |= cgo.OptionDoSSLGlobalInit
		if l.cfg.TLS.CAFile != "" {
			opts |= cgo.OptionRequireClientCert
		}
	}
	vi := cgo.VhostInfo{
		Index:            l.index,
		Name:             l.cfg.Name,
		Iface:            host,
		Port:             port,
		Options:          opts,
		KeepaliveTimeout: int(l.cfg.HTTPKeepAlive / time.Second),
		// libwebsockets' own bound on a request's headers is a second
		// longer than the binding's timer (countLink), which reports
		// the first request's; it alone bounds later requests of a
		// keep-alive connection, from their first byte.
		HeaderTimeoutSecs: int((l.cfg.HeaderTimeout+time.Second-1)/time.Second) + 1,
		Protocols:         l.protos,
		TxPacketSize:      txPacketSize,
		Compression:       l.cfg.Compression,
	}
	if t := l.cfg.TLS; t != nil {
		vi.CertPath, vi.KeyPath, vi.CAPath = t.CertFile, t.KeyFile, t.CAFile
		// One request per connection stream: no h2 multiplexing.
		vi.ALPN = "http/1.1"
	}
	if l.acc != nil || l.cfg.ProxyProtocol {
		return 0, c.openAdoptingListener(l, vi)
	}
	p, err := c.lc.NewVhost(vi)
	if err != nil {
		return 0, fmt.Errorf("lws: listener %q (%s): %w", l.cfg.Name, l.cfg.Addr, err)
	}
	if p <= 0 {
		return 0, fmt.Errorf("lws: listener %q (%s): libwebsockets did not open the port", l.cfg.Name, l.cfg.Addr)
	}
	return p, nil
}

// openAdoptingListener opens a listener the binding accepts for (see
// acceptor): a vhost that listens nowhere, and the binding's own
// listening socket, or a Group's.
func (c *Context) openAdoptingListener(l *listener, vi cgo.VhostInfo) error {
	own := l.acc == nil
	if own {
		ln, err := listenTCP(l.cfg.Name, vi.Iface, vi.Port)
		if err != nil {
			return err
		}
		l.acc = newAcceptor(ln, true)
	}
	vh, err := c.lc.NewAdoptingVhost(vi)
	if err != nil {
		if own {
			l.acc.close()
			l.acc = nil
		}
		return fmt.Errorf("lws: listener %q (%s): %w", l.cfg.Name, l.cfg.Addr, err)
	}
	l.acc.join(c, l, vh)
	return nil
}

// listenTCP opens the binding's own listening socket for the listener
// named name; the error names it.
func listenTCP(name, host string, port int) (*net.TCPListener, error) {
	ln, err := net.Listen("tcp", net.JoinHostPort(host, strconv.Itoa(port)))
	if err != nil {
		return nil, fmt.Errorf("lws: listener %q: %w", name, err)
	}
	return ln.(*net.TCPListener), nil
}

// busyRecs counts the records Close waits for: links and requests (see
// role.busy).
func (c *Context) busyRecs() int {
	n := 0
	for _, r := range c.recs {
		if r.role.busy() {
			n++
		}
	}
	return n
}

// beginStop runs on the service goroutine when Close is called.
func (c *Context) beginStop(deadline time.Time) {
	c.stopping = true
	c.deadline = deadline
	c.stopAccepting()
	for _, r := range c.recs {
		r.role.stop()
	}
	// Make this pass of the loop end, so that it sees at once when there
	// is nothing to wait for, and wake again at the deadline so that it
	// can give up waiting.
	c.lc.Wake()
	c.stopTimer = time.AfterFunc(time.Until(deadline)+10*time.Millisecond, func() {
		c.armed.Store(false)
		c.wake()
	})
}

// destroy tears the libwebsockets context down on the service goroutine.
func (c *Context) destroy() {
	c.stopAccepting()
	c.lcPtr.Store(nil)
	if c.stopTimer != nil {
		c.stopTimer.Stop()
	}
	c.stopping = true
	c.lc.Destroy()
	c.flushTrace()
	// lws delivers WSI_DESTROY for every wsi during lws_context_destroy;
	// anything left here would be a binding bug, so say so loudly.
	for id, r := range c.recs {
		c.log.Error("lws: link outlived its context; released", "link", id)
		c.release(r)
	}
	// Work queued after the loop stopped can no longer run; drop it so
	// nothing waits for it (Do watches done).
	c.qmu.Lock()
	for _, r := range c.pending {
		r.queued.Store(false)
	}
	c.pending, c.cmds = nil, nil
	c.qmu.Unlock()
	c.answers, c.outNow = nil, nil
	c.bodyWait = nil
}

// stopAccepting takes the context out of its listeners' acceptors
// (service goroutine; idempotent).
func (c *Context) stopAccepting() {
	for _, l := range c.listeners {
		if l.acc != nil {
			l.acc.leave(c)
		}
	}
}

// closeTimeoutSecs bounds a closing handshake: the queued data and the
// close frame must be out within the network timeout.
func (c *Context) closeTimeoutSecs() int {
	return int((c.cfg.NetworkTimeout + time.Second - 1) / time.Second)
}

func (c *Context) flushTrace() {
	if len(c.trace) == 0 {
		return
	}
	if _, err := c.cfg.Trace.Write(c.trace); err != nil {
		c.log.Warn("lws: reason log write failed", "err", err)
	}
	c.trace = c.trace[:0]
}
