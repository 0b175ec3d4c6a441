package gateway

import (
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lwsgate/lwsgate/lws"
	"github.com/lwsgate/lwsgate/lws/gateway/cluster"
)

// Options are the parts of a Gateway that are code, not configuration.
// The zero value is usable.
type Options struct {
	// Logger receives the gateway's logs. nil: slog.Default().
	Logger *slog.Logger
	// Level, when set, is the Logger's level, changed by Reload to
	// the config's log.level.
	Level *slog.LevelVar
	// Trace receives the reason log (one line per libwebsockets callback)
	// when the config's log.trace is on. nil: no reason log.
	Trace io.Writer
	// Router is an in-process routing step run before the config's rules.
	Router Router
	// Version is the program's version, as GET /v1/api/nodes shows it.
	// "": "dev".
	Version string
}

// Gateway is a running gateway.
//
// Concurrency: every method is safe from any goroutine, including a
// Router's Route (which runs on the service goroutine), except Shutdown
// and Close, which must not be called from Route.
type Gateway struct {
	log    *slog.Logger
	level  *slog.LevelVar
	router Router
	self   node

	cfg      atomic.Pointer[Config]
	rules    atomic.Pointer[ruleSet]
	backends atomic.Pointer[map[string]*backend]
	auth     atomic.Pointer[map[string]*authenticator] // by listener name
	hookHdrs atomic.Pointer[headerPolicy]
	// kept are the headers links keep from their upgrade requests for
	// backends and hooks (keptHeaders of the config New had: the
	// listeners ask libwebsockets for them, which a reload cannot change).
	kept []string

	// jwks are the identity providers' key sets the listeners use, kept
	// across reloads (jwksFor); authCtx ends their fetches at shutdown.
	jwksMu   sync.Mutex
	jwks     map[jwksKey]*jwksSet
	authCtx  context.Context
	authStop context.CancelFunc

	// workers serve the listeners, one lws Context each (workers.go);
	// with several, each listener has a Group of them (groups, by name)
	// and the admin listener a Context of its own. all are every
	// Context but hookCtx. ctx is worker 0's, which also makes the
	// backends' HTTP requests and fetches key sets.
	admin    http.Handler // the admin API (also serves other nodes' forwarded requests)
	workers  []*worker
	groups   map[string]*lws.Group
	all      []*lws.Context
	ctx      *lws.Context
	doneOnce sync.Once
	done     chan struct{}
	hookCtx  *lws.Context // webhook requests (outlives the workers during shutdown)
	addrs    map[string]net.Addr

	// eng is the cluster engine (memory: this process alone); multi is
	// set when it is not the memory engine. inc is the engine's
	// incarnation, the high bits of new link ids; fenced is set while the
	// node, cut off, closes its links and rejoins (unready). settling
	// counts the goroutines writing and settling links' durable records;
	// life ends at shutdown.
	eng      cluster.Engine
	multi    bool
	inc      atomic.Uint32
	fenced   atomic.Bool
	settling sync.WaitGroup
	life     context.Context
	lifeStop context.CancelFunc

	links   *linkTable
	closed  *closedLinks
	routes  *routeTable
	hub     *hub
	tokens  *tokens
	hooks   *hooks
	metrics *metrics
	console *console

	draining  atomic.Bool
	closeOnce sync.Once
	// started is closed once New has set the workers and the backends:
	// the listeners serve from inside lws.New, before that.
	started chan struct{}
}

// backend is a configured backend with its client settings.
type backend struct {
	cfg BackendConfig
	tls *lws.ClientTLS
	// http is the client for http(s) backends: lws client links.
	http *http.Client
	// hdrs is what the backend gets of a link's upgrade request (the
	// forward and relay actions); httpHdrs of a forwarded request.
	hdrs, httpHdrs *headerPolicy
}

// AdminListener is the name of the admin listener in Addrs.
const AdminListener = "admin"

// New starts a gateway: it opens every listener (and the admin one) and
// returns once they accept. cfg must come from ParseConfig, LoadConfig or
// DefaultConfig (defaulted and valid); New keeps a copy.
func New(cfg *Config, opts *Options) (*Gateway, error) {
	if opts == nil {
		opts = &Options{}
	}
	cfg = cfg.Clone()
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	self := newNode(opts)
	if cfg.Cluster.Node != "" {
		self.name = cfg.Cluster.Node // the node's name in its cluster
	}
	g := &Gateway{
		log:     opts.Logger,
		level:   opts.Level,
		router:  opts.Router,
		self:    self,
		links:   newLinkTable(self.name),
		closed:  newClosedLinks(),
		hub:     newHub(),
		console: &console{},
		started: make(chan struct{}),
	}
	if g.log == nil {
		g.log = slog.Default()
	}
	g.routes = newRouteTable(g.log)
	g.kept = keptHeaders(cfg)
	g.cfg.Store(cfg)
	g.rules.Store(compileRules(cfg.Rules))

	if err := cfg.requireSecret(); err != nil {
		return nil, err
	}
	secret := []byte(cfg.Tokens.Secret)
	if len(secret) == 0 {
		secret = make([]byte, 32)
		_, _ = rand.Read(secret)
		g.log.Warn("tokens.secret (LWSGATE_TOKEN_SECRET) is not set: tokens are signed with a random per-process key")
	}
	g.tokens = newTokens(secret, cfg.Tokens.TTL.D())
	g.metrics = newMetrics(g)
	g.jwks = map[jwksKey]*jwksSet{}
	g.authCtx, g.authStop = context.WithCancel(context.Background())
	g.life, g.lifeStop = context.WithCancel(context.Background())
	// Whatever New started stops if it fails; the engine's hooks, held
	// until started is closed, then find no context and return.
	fail := func(err error) (*Gateway, error) {
		g.authStop()
		g.lifeStop()
		select {
		case <-g.started:
		default:
			close(g.started)
		}
		if g.hookCtx != nil {
			g.hookCtx.Close()
		}
		if g.eng != nil {
			_ = g.eng.Close(context.Background())
		}
		return nil, err
	}
	auth, err := g.compileAuth(cfg)
	if err != nil {
		return fail(fmt.Errorf("gateway: %w", err))
	}
	g.auth.Store(&auth)

	g.hookCtx, err = lws.New(&lws.Config{Logger: g.log, NetworkTimeout: max(time.Second, cfg.Hooks.Timeout.D()),
		EventLoop: lws.EventLoop(cfg.EventLoop)})
	if err != nil {
		g.hookCtx = nil
		return fail(fmt.Errorf("gateway: hook client: %w", err))
	}
	g.hooks = newHooks(g, g.hookCtx)
	g.admin = g.adminHandler()
	if err := g.openEngine(cfg); err != nil {
		return fail(err)
	}

	lc := &lws.Config{
		Logger:          g.log,
		ShutdownTimeout: max(time.Second, cfg.Shutdown.Deadline.D()-cfg.Shutdown.Drain.D()),
		LinkTrace:       linkTrace(cfg),
		NetworkTimeout:  cfg.NetworkTimeout.D(),
		EventLoop:       lws.EventLoop(cfg.EventLoop),
		OnLimit:         func(l string, lim lws.Limit) { g.metrics.limitHits.WithLabelValues(l, string(lim)).Inc() },
		OnLinkTrace:     g.onLinkTrace,
	}
	if *cfg.Log.Trace {
		lc.Trace = opts.Trace
	}
	for i := range cfg.Listeners {
		l, err := g.listener(&cfg.Listeners[i])
		if err != nil {
			return fail(err)
		}
		lc.Listeners = append(lc.Listeners, l)
	}
	if cfg.Admin.Addr != "off" {
		lc.Listeners = append(lc.Listeners, g.adminListener(cfg.Admin.Addr))
	}
	if err := g.startWorkers(cfg.workerCount(), lc); err != nil {
		return fail(fmt.Errorf("gateway: %w", err))
	}
	g.setBackends(cfg)
	close(g.started)
	if cfg.Admin.Addr != "off" {
		go g.console.series.run(g, g.Done())
	}
	if g.level != nil {
		_ = g.level.UnmarshalText([]byte(cfg.Log.Level))
	}
	return g, nil
}

// waitStarted holds a link or request that arrives while New is still
// setting up (microseconds; the listeners accept from inside lws.New).
func (g *Gateway) waitStarted() { <-g.started }

// listener turns a ListenerConfig into an lws.Listener.
func (g *Gateway) listener(l *ListenerConfig) (lws.Listener, error) {
	accept, _ := parseAccept(l.Links)            // checked by Validate
	proxies, _ := parseProxies(l.TrustedProxies) // checked by Validate
	// Handler is each worker's wsHandler (lwsConfig).
	out := lws.Listener{
		Name:            l.Name,
		Addr:            l.Addr,
		Accept:          accept,
		HTTPHandler:     &publicAPI{g: g, name: l.Name},
		Subprotocols:    l.Subprotocols,
		Compression:     l.Compression,
		MaxMessageSize:  int64(l.Limits.MaxMessage),
		MaxSendQueue:    int64(l.Limits.MaxSendQueue),
		SlowConsumer:    lws.CloseSlowConsumer,
		MaxBodySize:     int64(l.Limits.MaxBody),
		MaxHeaderBytes:  int(l.Limits.MaxHeaderBytes),
		MaxLinks:        l.Limits.MaxLinks,
		MaxLinksPerIP:   l.Limits.MaxLinksPerIP,
		AcceptRate:      l.Limits.AcceptRate,
		ExtraHeaders:    append([]string{"Authorization", "Origin"}, g.kept...),
		TrustedProxies:  proxies,
		ForwardedHeader: l.ForwardedHeader,
		ProxyProtocol:   l.ProxyProtocol,
		PingInterval:    l.Keepalive.PingInterval.D(),
		PingTimeout:     l.Keepalive.PingTimeout.D(),
	}
	name := l.Name
	out.CheckUpgrade = func(r *lws.Request) error {
		// Before any 101: draining refuses new links, then the
		// listener's auth (its current config: Reload may change it).
		if why := g.unready(); why != "" {
			g.metrics.upgradeRefused.WithLabelValues(name, "503").Inc()
			return &lws.HTTPError{Status: 503, Message: why + ": reconnect to another instance"}
		}
		id, e := g.authenticate(name, r)
		if e != nil {
			g.metrics.upgradeRefused.WithLabelValues(name, strconv.Itoa(e.status)).Inc()
			g.log.Info("upgrade refused", "link", r.LinkID, "listener", name, "remote", addrString(r.Remote), "status", e.status, "why", e.msg)
			return e.httpError()
		}
		if id != nil {
			r.SetValue(id) // the link's identity, for OnOpen
		}
		return nil
	}
	if l.TLS != nil {
		out.TLS = &lws.TLSFiles{CertFile: l.TLS.Cert, KeyFile: l.TLS.Key, CAFile: l.TLS.ClientCA}
	}
	return out, nil
}

func (g *Gateway) setBackends(cfg *Config) {
	m := map[string]*backend{}
	for _, bc := range cfg.Backends {
		b := &backend{cfg: bc, hdrs: newHeaderPolicy(bc.ForwardHeaders, bc.Headers, false), httpHdrs: newHeaderPolicy(bc.ForwardHeaders, bc.Headers, true)}
		if bc.CA != "" || bc.Insecure {
			b.tls = &lws.ClientTLS{CAFile: bc.CA, InsecureSkipVerify: bc.Insecure}
		}
		if strings.HasPrefix(bc.URL, "http") {
			b.http = &http.Client{
				Transport:     &lws.Transport{Context: g.ctx, TLS: b.tls},
				CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
				Timeout:       bc.Timeout.D(),
			}
		}
		m[bc.Name] = b
	}
	g.backends.Store(&m)
	g.hookHdrs.Store(newHeaderPolicy(cfg.Hooks.ForwardHeaders, cfg.Hooks.Headers, false))
}

func (g *Gateway) backend(name string) *backend { return (*g.backends.Load())[name] }

// compileAuth compiles every listener's auth, by listener name; the key
// sets they use are the registry's (jwksFor).
func (g *Gateway) compileAuth(cfg *Config) (map[string]*authenticator, error) {
	out := map[string]*authenticator{}
	for i := range cfg.Listeners {
		l := &cfg.Listeners[i]
		a, err := newAuthenticator(&l.Auth, g.tokens.secret)
		if err != nil {
			return nil, fmt.Errorf("listeners[%d].auth.keys: %w", i, err)
		}
		out[l.Name] = a
	}
	// The key sets last: a config whose keys do not load starts no fetch.
	for i := range cfg.Listeners {
		if l := &cfg.Listeners[i]; l.Auth.JWKSURL != "" {
			out[l.Name].jwks = g.jwksFor(&l.Auth)
		}
	}
	return out, nil
}

// authenticate applies listener's auth to an upgrade request
// (authenticator.check): the one place a link's token is verified, by the
// upgrade check and again when the link opens.
func (g *Gateway) authenticate(listener string, r *lws.Request) (*Identity, *authError) {
	if a := (*g.auth.Load())[listener]; a != nil {
		return a.check(r)
	}
	return nil, nil
}

// Config returns the configuration in force (a copy).
func (g *Gateway) Config() *Config { return g.cfg.Load().Clone() }

// maxMessage is limits.max_message of the listener named.
func (g *Gateway) maxMessage(listener string) int64 {
	if lc := g.listenerCfg(listener); lc != nil {
		return int64(lc.Limits.MaxMessage)
	}
	return defaultMaxMessage // not a listener's link
}

// listenerOf is listenerCfg(l.Listener), kept on the link until the
// config is replaced (a reload). It runs on the service goroutine of the
// link's worker.
func (g *Gateway) listenerOf(l *LinkRecord) *ListenerConfig {
	if cfg := g.cfg.Load(); cfg != l.lcOf {
		l.lc, l.lcOf = cfg.listener(l.Listener), cfg
	}
	return l.lc
}

// listenerCfg is the listener named in the config in force; nil: none.
func (g *Gateway) listenerCfg(name string) *ListenerConfig { return g.cfg.Load().listener(name) }

func (c *Config) listener(name string) *ListenerConfig {
	for i := range c.Listeners {
		if c.Listeners[i].Name == name {
			return &c.Listeners[i]
		}
	}
	return nil
}

// Addrs returns the address of each listener by name; the admin listener
// is AdminListener.
func (g *Gateway) Addrs() map[string]net.Addr {
	out := make(map[string]net.Addr, len(g.addrs))
	for k, v := range g.addrs {
		out[k] = v
	}
	return out
}

// Done is closed when the service loops of all workers have stopped.
func (g *Gateway) Done() <-chan struct{} { return g.workersDone() }

// Context returns the lws context of worker 0 (the only one with
// workers: 1), which also makes the backends' HTTP requests.
func (g *Gateway) Context() *lws.Context { return g.ctx }

// Workers returns the lws contexts of the workers, worker i at index i:
// with several listeners, each listener's in turn.
func (g *Gateway) Workers() []*lws.Context {
	out := make([]*lws.Context, len(g.workers))
	for i, w := range g.workers {
		out[i] = w.ctx
	}
	return out
}

// linkTrace is the lws.Config.LinkTrace for cfg: log.link_trace, or none
// when the admin API, the only reader of the traces, is off (each traced
// link holds its ring).
func linkTrace(cfg *Config) int {
	if cfg.Admin.Addr == "off" {
		return 0
	}
	return max(0, cfg.Log.LinkTrace)
}

// Ready reports whether the gateway takes new links: false while
// draining, and in a cluster while this node holds no lease (cut off,
// rejoining).
func (g *Gateway) Ready() bool { return g.unready() == "" }

// unready says why the gateway is not ready, or "".
func (g *Gateway) unready() string {
	switch {
	case g.draining.Load():
		return "draining"
	case g.fenced.Load() || g.eng != nil && !g.eng.Ready():
		return "cut off from the cluster"
	}
	return ""
}

// Shutdown drains the gateway: readiness goes off, new links are refused
// (503), WebSocket links are closed with 1001 spread over shutdown.drain,
// then everything stops; by shutdown.deadline (or when ctx ends) links
// still open are cut. Pending disconnect hooks are delivered before it
// returns. Shutdown is idempotent.
func (g *Gateway) Shutdown(ctx context.Context) error {
	var err error
	g.closeOnce.Do(func() { err = g.shutdown(ctx) })
	return err
}

// Close is Shutdown with no extra deadline.
func (g *Gateway) Close() error { return g.Shutdown(context.Background()) }

func (g *Gateway) shutdown(ctx context.Context) error {
	cfg := g.cfg.Load()
	g.draining.Store(true)
	g.authStop() // key set fetches under way end
	start := time.Now()
	ctx, cancel := context.WithDeadline(ctx, start.Add(cfg.Shutdown.Deadline.D()))
	defer cancel()

	ws := g.links.list(func(l *LinkRecord) bool { return l.Type == TypeTCPListen })
	g.log.Info("draining", "links", len(ws), "window", cfg.Shutdown.Drain.D(), "deadline", cfg.Shutdown.Deadline.D())
	window := cfg.Shutdown.Drain.D()
	for i, l := range ws {
		// Link i closes at i/n of the window, so clients do not all
		// reconnect at the same moment.
		at := start.Add(window * time.Duration(i) / time.Duration(len(ws)))
		if d := time.Until(at); d > 0 {
			select {
			case <-time.After(d):
			case <-ctx.Done():
			}
		}
		if ctx.Err() != nil {
			break
		}
		_ = l.conn.Close(lws.StatusGoingAway, "server shutting down")
	}
	// Wait for the WebSocket links to finish closing, at most until the
	// deadline; idle HTTP connections are closed by the context.
	isWS := func(l *LinkRecord) bool { return l.conn != nil }
	for len(g.links.list(isWS)) > 0 && ctx.Err() == nil {
		select {
		case <-time.After(20 * time.Millisecond):
		case <-ctx.Done():
		}
	}
	err := g.stopWorkers(ctx)
	// Every link is destroyed now; in a cluster, their records are being
	// settled (each queues its hook if this node settled it).
	hctx, hcancel := context.WithTimeout(context.Background(), max(time.Until(start.Add(cfg.Shutdown.Deadline.D())), cfg.Hooks.Timeout.D()))
	defer hcancel()
	g.waitSettled(hctx)
	g.lifeStop()
	// Every disconnect hook is queued: give them until the deadline, and
	// at least one hook timeout.
	g.hooks.close(hctx)
	if herr := g.hookCtx.Shutdown(context.Background()); err == nil {
		err = herr
	}
	// Last, leave the cluster: a record left open (the cluster did not
	// answer) makes the engine let its lease expire, and a survivor reaps
	// it.
	if cerr := g.eng.Close(hctx); err == nil && cerr != nil {
		err = fmt.Errorf("gateway: leaving the cluster: %w", cerr)
	}
	g.log.Info("stopped", "took", time.Since(start).Round(time.Millisecond))
	return err
}
