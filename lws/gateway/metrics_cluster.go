package gateway

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/lwsgate/lwsgate/lws/gateway/cluster"
)

// clusterMetrics are the metrics of a cluster node (registered only
// when the engine is not the memory engine): the engine's counters at
// scrape time, and what the gateway observes of its calls.
//
// Concurrency: safe from any goroutine (Prometheus collectors).
type clusterMetrics struct {
	callSeconds   *prometheus.HistogramVec
	publishErrors prometheus.Counter
	remoteWaits   prometheus.Counter
}

func newClusterMetrics() clusterMetrics {
	return clusterMetrics{
		callSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "lwsgate_cluster_call_seconds",
			Help: "Latency of requests to other nodes (operations on their links, each node a listing asks), by op and result (ok, error).", Buckets: prometheus.ExponentialBuckets(0.0001, 4, 9)}, []string{"op", "result"}),
		publishErrors: prometheus.NewCounter(prometheus.CounterOpts{Name: "lwsgate_cluster_publish_errors_total", Help: "Publishes that could not be sent to the other nodes (this node cut off, or its connection down)."}),
		remoteWaits:   prometheus.NewCounter(prometheus.CounterOpts{Name: "lwsgate_cluster_delivery_waits_total", Help: "Times the delivery of other nodes' publishes waited for a worker whose backlog was full (meanwhile they queue; past cluster.deliver_queue they are dropped)."}),
	}
}

// clusterCall observes one request to another node (Hooks.CallDone).
func (m *metrics) clusterCall(op string, d time.Duration, err error) {
	result := "ok"
	if err != nil {
		result = "error"
	}
	m.callSeconds.WithLabelValues(op, result).Observe(d.Seconds())
}

// registerCluster adds the cluster's metrics to the registry.
func (m *metrics) registerCluster(g *Gateway) {
	m.reg.MustRegister(m.callSeconds, m.publishErrors, m.remoteWaits, &clusterCollector{g})
}

// clusterCollector reports the engine's counters (cluster.Stats).
type clusterCollector struct{ g *Gateway }

type clusterStat struct {
	desc  *prometheus.Desc
	typ   prometheus.ValueType
	value func(s *cluster.Stats) float64
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

func clusterDesc(name, help string) *prometheus.Desc { return prometheus.NewDesc(name, help, nil, nil) }

var clusterStats = []clusterStat{
	{clusterDesc("lwsgate_cluster_nodes", "Live nodes of the cluster, this one included."), prometheus.GaugeValue, func(s *cluster.Stats) float64 { return float64(s.Nodes) }},
	{clusterDesc("lwsgate_cluster_incarnation", "This node's incarnation (the high bits of its link ids)."), prometheus.GaugeValue, func(s *cluster.Stats) float64 { return float64(s.Incarnation) }},
	{clusterDesc("lwsgate_cluster_fenced", "1 while this node is cut off from the cluster (its links closed, unready)."), prometheus.GaugeValue, func(s *cluster.Stats) float64 { return b2f(s.Fenced) }},
	{clusterDesc("lwsgate_cluster_channels", "Channels this node is subscribed to in the cluster (lingering ones included)."), prometheus.GaugeValue, func(s *cluster.Stats) float64 { return float64(s.Channels) }},
	{clusterDesc("lwsgate_cluster_publishes_total", "Publishes sent to other nodes."), prometheus.CounterValue, func(s *cluster.Stats) float64 { return float64(s.Publishes) }},
	{clusterDesc("lwsgate_cluster_deliveries_total", "Publishes of other nodes delivered to this node's members."), prometheus.CounterValue, func(s *cluster.Stats) float64 { return float64(s.Deliveries) }},
	{clusterDesc("lwsgate_cluster_gaps_total", "Publishes of other nodes found missing (at most once delivery: lost)."), prometheus.CounterValue, func(s *cluster.Stats) float64 { return float64(s.Gaps) }},
	{clusterDesc("lwsgate_cluster_dropped_total", "Publishes of other nodes dropped because this node's delivery queue was full (cluster.deliver_queue)."), prometheus.CounterValue, func(s *cluster.Stats) float64 { return float64(s.Dropped) }},
	{clusterDesc("lwsgate_cluster_calls_total", "Requests to other nodes."), prometheus.CounterValue, func(s *cluster.Stats) float64 { return float64(s.Calls) }},
	{clusterDesc("lwsgate_cluster_call_errors_total", "Requests to other nodes that failed."), prometheus.CounterValue, func(s *cluster.Stats) float64 { return float64(s.CallErrors) }},
	{clusterDesc("lwsgate_cluster_surveys_total", "Listings asked of every node."), prometheus.CounterValue, func(s *cluster.Stats) float64 { return float64(s.Surveys) }},
	{clusterDesc("lwsgate_cluster_partial_answers_total", "Listings answered without some node (Lwsgate-Partial)."), prometheus.CounterValue, func(s *cluster.Stats) float64 { return float64(s.PartialSurvey) }},
	{clusterDesc("lwsgate_cluster_lease_renewals_total", "Renewals of this node's lease."), prometheus.CounterValue, func(s *cluster.Stats) float64 { return float64(s.LeaseRenewals) }},
	{clusterDesc("lwsgate_cluster_lease_failures_total", "Lease renewals that failed (the cluster did not answer)."), prometheus.CounterValue, func(s *cluster.Stats) float64 { return float64(s.LeaseFailures) }},
	{clusterDesc("lwsgate_cluster_lease_lapses_total", "Times this node's lease expired and was taken back within the grace period."), prometheus.CounterValue, func(s *cluster.Stats) float64 { return float64(s.LeaseLapses) }},
	{clusterDesc("lwsgate_cluster_reaped_nodes_total", "Dead nodes this node reaped."), prometheus.CounterValue, func(s *cluster.Stats) float64 { return float64(s.Reaped) }},
	{clusterDesc("lwsgate_history_publishes_total", "Publishes on history channels acknowledged by their stream (stored)."), prometheus.CounterValue, func(s *cluster.Stats) float64 { return float64(s.HistoryPublishes) }},
	{clusterDesc("lwsgate_history_repaired_total", "History messages missed on the way to this node and delivered from the stream."), prometheus.CounterValue, func(s *cluster.Stats) float64 { return float64(s.Repaired) }},
	{clusterDesc("lwsgate_history_repaired_gaps_total", "Gaps in history channels found and repaired by this node."), prometheus.CounterValue, func(s *cluster.Stats) float64 { return float64(s.RepairedGaps) }},
	{clusterDesc("lwsgate_history_unrepairable_total", "Gaps in history channels the stream could no longer fill (trimmed first)."), prometheus.CounterValue, func(s *cluster.Stats) float64 { return float64(s.Unrepairable) }},
	{clusterDesc("lwsgate_history_duplicates_total", "History messages received again and dropped."), prometheus.CounterValue, func(s *cluster.Stats) float64 { return float64(s.Duplicates) }},
	{clusterDesc("lwsgate_history_resumes_total", "Subscribes at a position (resumes) done on this node."), prometheus.CounterValue, func(s *cluster.Stats) float64 { return float64(s.Resumes) }},
	{clusterDesc("lwsgate_history_resumes_lost_total", "Resumes answered recovered false (history trimmed past the position, or another epoch)."), prometheus.CounterValue, func(s *cluster.Stats) float64 { return float64(s.ResumesLost) }},
	{clusterDesc("lwsgate_cluster_hooks_queued_total", "Disconnect hooks this node put in the cluster's durable queue (its links', and a reaped node's)."), prometheus.CounterValue, func(s *cluster.Stats) float64 { return float64(s.HooksQueued) }},
	{clusterDesc("lwsgate_cluster_hooks_delivered_total", "Disconnect hooks from the cluster's queue this node delivered."), prometheus.CounterValue, func(s *cluster.Stats) float64 { return float64(s.HooksDelivered) }},
	{clusterDesc("lwsgate_cluster_hooks_not_resent_total", "Disconnect hooks offered to this node again, found marked sent (the acknowledgement was lost): acknowledged without a second send."), prometheus.CounterValue, func(s *cluster.Stats) float64 { return float64(s.HooksNotResent) }},
	{clusterDesc("lwsgate_cluster_hook_failures_total", "Deliveries of queued disconnect hooks that failed (offered again later)."), prometheus.CounterValue, func(s *cluster.Stats) float64 { return float64(s.HookFailures) }},
	{clusterDesc("lwsgate_cluster_hooks_dropped_total", "Queued disconnect hooks given up after hooks.retries."), prometheus.CounterValue, func(s *cluster.Stats) float64 { return float64(s.HooksDropped) }},
	{clusterDesc("lwsgate_cluster_reaped_links_total", "Links of dead nodes whose disconnect hooks this node fired."), prometheus.CounterValue, func(s *cluster.Stats) float64 { return float64(s.ReapedLinks) }},
}

func (c *clusterCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, s := range clusterStats {
		ch <- s.desc
	}
}

func (c *clusterCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.g.eng.Stats()
	for _, s := range clusterStats {
		ch <- prometheus.MustNewConstMetric(s.desc, s.typ, s.value(&st))
	}
}
