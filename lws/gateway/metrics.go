package gateway

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/lwsgate/lwsgate/lws"
)

// metrics are the gateway's Prometheus metrics, on a registry of its own
// (served at /metrics on the admin listener).
type metrics struct {
	reg *prometheus.Registry

	linksOpened    *prometheus.CounterVec
	linksClosed    *prometheus.CounterVec
	opened         counterCache[openedKey] // their counters, looked up once
	closed         counterCache[closedKey]
	unroutable     prometheus.Counter
	published      prometheus.Counter
	fanout         prometheus.Counter
	slowConsumer   prometheus.Counter
	hookCalls      *prometheus.CounterVec
	limitHits      *prometheus.CounterVec
	upgradeRefused *prometheus.CounterVec
	jwksFetches    *prometheus.CounterVec
	channelRefused *prometheus.CounterVec
	backendSeconds *prometheus.HistogramVec
	backendErrors  *prometheus.CounterVec

	// Messages, bytes and routing times are counted per worker
	// (counters.go); rules is lwsgate_rule_matches_total.
	rules ruleCounts

	clusterMetrics
}

func newMetrics(g *Gateway) *metrics {
	m := &metrics{reg: prometheus.NewRegistry(), clusterMetrics: newClusterMetrics()}
	f := func(c prometheus.Collector) { m.reg.MustRegister(c) }
	m.linksOpened = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "lwsgate_links_opened_total", Help: "Links opened, by listener and link type."}, []string{"listener", "type"})
	m.linksClosed = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "lwsgate_links_closed_total", Help: "Links closed, by link type and close code (1006: lost without a close frame)."}, []string{"type", "code"})
	m.opened = counterCache[openedKey]{vec: m.linksOpened, labels: func(k openedKey) []string { return []string{k.listener, k.typ} }}
	m.closed = counterCache[closedKey]{vec: m.linksClosed, labels: func(k closedKey) []string { return []string{k.typ, strconv.Itoa(int(k.code))} }}
	m.unroutable = prometheus.NewCounter(prometheus.CounterOpts{Name: "lwsgate_unroutable_messages_total", Help: "Messages no rule matched (answered with an error)."})
	m.published = prometheus.NewCounter(prometheus.CounterOpts{Name: "lwsgate_publishes_total", Help: "Publishes to channels."})
	m.fanout = prometheus.NewCounter(prometheus.CounterOpts{Name: "lwsgate_publish_deliveries_total", Help: "Messages queued to links by publishes."})
	m.slowConsumer = prometheus.NewCounter(prometheus.CounterOpts{Name: "lwsgate_slow_consumer_closes_total", Help: "Sends refused because a link's send queue was full (the link is closed with 1008)."})
	m.hookCalls = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "lwsgate_hook_calls_total", Help: "Webhook calls by event and result (ok, rejected, error, dropped)."}, []string{"event", "result"})
	m.limitHits = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "lwsgate_limit_hits_total", Help: "Times a limit refused or closed something, by listener and limit."}, []string{"listener", "limit"})
	m.upgradeRefused = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "lwsgate_upgrades_refused_total", Help: "WebSocket upgrades refused before the 101, by listener and HTTP status (401 token, 403 origin, 503 draining or signing keys being fetched)."}, []string{"listener", "status"})
	m.jwksFetches = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "lwsgate_jwks_fetches_total", Help: "Fetches of identity providers' key sets (auth.jwks_url), by URL and result (ok, error: the keys known are kept)."}, []string{"url", "result"})
	m.channelRefused = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "lwsgate_channel_refusals_total", Help: "Subscribes and publishes a link's token did not allow (auth.channels_claim), by action."}, []string{"action"})
	m.backendSeconds = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "lwsgate_backend_seconds", Help: "Latency of backend and webhook calls.", Buckets: prometheus.ExponentialBuckets(0.0005, 4, 9)}, []string{"backend", "kind"})
	m.backendErrors = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "lwsgate_backend_errors_total", Help: "Failed backend calls."}, []string{"backend", "kind"})
	for _, c := range []prometheus.Collector{m.linksOpened, m.linksClosed, m.unroutable,
		m.published, m.fanout, m.slowConsumer, m.hookCalls, m.limitHits, m.upgradeRefused, m.jwksFetches, m.channelRefused, m.backendSeconds, m.backendErrors} {
		f(c)
	}
	f(&counterCollector{g: g, rules: &m.rules})
	f(collectors.NewGoCollector())
	f(collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	f(&stateCollector{g})
	return m
}

func (m *metrics) linkOpened(l *LinkRecord) {
	m.opened.get(openedKey{l.Listener, l.Type}).Inc()
}

func (m *metrics) linkClosed(l *LinkRecord, ce lws.CloseError) {
	m.closed.get(closedKey{l.Type, ce.Code}).Inc()
}

// The keys of lwsgate_links_opened_total and _closed_total's counters.
type (
	openedKey struct{ listener, typ string }
	closedKey struct {
		typ  string
		code lws.StatusCode
	}
)

// stateCollector reports the tables and libwebsockets' callback counts at
// scrape time.
type stateCollector struct{ g *Gateway }

var (
	descLinks     = prometheus.NewDesc("lwsgate_links", "Live links by link type.", []string{"type"}, nil)
	descRoutes    = prometheus.NewDesc("lwsgate_routes", "Entries in the route table.", nil, nil)
	descChannels  = prometheus.NewDesc("lwsgate_channels", "Channels with at least one member.", nil, nil)
	descQueued    = prometheus.NewDesc("lwsgate_send_queue_bytes", "Bytes queued to WebSocket links and not yet written, summed.", nil, nil)
	descMaxQueued = prometheus.NewDesc("lwsgate_send_queue_max_bytes", "The longest send queue of one link.", nil, nil)
	descHooks     = prometheus.NewDesc("lwsgate_hook_queue", "Disconnect hooks queued or in flight.", nil, nil)
	descCallbacks = prometheus.NewDesc("lwsgate_lws_callbacks_total", "libwebsockets callbacks by reason.", []string{"reason", "name"}, nil)
	descReady     = prometheus.NewDesc("lwsgate_ready", "1 while the gateway takes new links, 0 while draining or cut off from the cluster.", nil, nil)
	// Per worker (workers: N), to see how evenly links are spread.
	descWorkerLinks = prometheus.NewDesc("lwsgate_worker_links", "Links open on each worker (service thread).", []string{"worker"}, nil)
	descWorkerMsgs  = prometheus.NewDesc("lwsgate_worker_messages_total", "WebSocket messages received by each worker's links.", []string{"worker"}, nil)
)

func (s *stateCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descLinks, descRoutes, descChannels, descQueued, descMaxQueued, descHooks, descCallbacks, descReady, descWorkerLinks} {
		ch <- d
	}
}

func (s *stateCollector) Collect(ch chan<- prometheus.Metric) {
	g := s.g
	byType := map[string]int{TypeTCPListen: 0, TypeHTTPListen: 0, TypeTCPConnect: 0, TypeHTTPConnect: 0}
	var queued, maxq int64
	for _, l := range g.links.list(nil) {
		byType[l.Type]++
		if l.conn != nil {
			q := l.conn.Queued()
			queued += q
			maxq = max(maxq, q)
		}
	}
	for t, n := range byType {
		ch <- prometheus.MustNewConstMetric(descLinks, prometheus.GaugeValue, float64(n), t)
	}
	ch <- prometheus.MustNewConstMetric(descRoutes, prometheus.GaugeValue, float64(g.routes.len()))
	ch <- prometheus.MustNewConstMetric(descChannels, prometheus.GaugeValue, float64(g.hub.len()))
	ch <- prometheus.MustNewConstMetric(descQueued, prometheus.GaugeValue, float64(queued))
	ch <- prometheus.MustNewConstMetric(descMaxQueued, prometheus.GaugeValue, float64(maxq))
	ch <- prometheus.MustNewConstMetric(descHooks, prometheus.GaugeValue, float64(g.hooks.pending()))
	ready := 1.0
	if !g.Ready() {
		ready = 0
	}
	ch <- prometheus.MustNewConstMetric(descReady, prometheus.GaugeValue, ready)
	reasons := map[int]lws.ReasonCount{}
	var order []int
	for _, w := range g.workers {
		ch <- prometheus.MustNewConstMetric(descWorkerLinks, prometheus.GaugeValue, float64(w.links.Load()), strconv.Itoa(w.id))
	}
	for _, c := range g.all {
		for _, rc := range c.ReasonCounts() {
			sum, ok := reasons[rc.Reason]
			if !ok {
				order = append(order, rc.Reason)
				sum = rc
				sum.Count = 0
			}
			sum.Count += rc.Count
			reasons[rc.Reason] = sum
		}
	}
	for _, r := range order {
		rc := reasons[r]
		ch <- prometheus.MustNewConstMetric(descCallbacks, prometheus.CounterValue, float64(rc.Count), strconv.Itoa(rc.Reason), rc.Name)
	}
}
