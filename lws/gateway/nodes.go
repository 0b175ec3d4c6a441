package gateway

import (
	"os"
	"time"

	"github.com/lwsgate/lwsgate/lws"
)

// NodeInfo is a node of the cluster as GET /v1/api/nodes shows it.
// Without cluster mode the cluster is one node, the gateway itself.
//
// Concurrency: a value.
type NodeInfo struct {
	Name          string    `json:"name"`
	Self          bool      `json:"self"`  // the node that answered
	Ready         bool      `json:"ready"` // false while draining or cut off from the cluster
	Started       time.Time `json:"started"`
	Version       string    `json:"version"`       // Options.Version
	Libwebsockets string    `json:"libwebsockets"` // lws.Version()
	// Fenced: cut off from the cluster longer than its grace period, it
	// has closed its links and is not ready. Never without cluster mode.
	Fenced bool `json:"fenced"`
	// LeaseAge is the time since it last renewed its lease in the
	// cluster's registry, in seconds; nil (null) without cluster mode.
	LeaseAge   *float64     `json:"lease_age"`
	Workers    int          `json:"workers"`     // service loops serving links
	WorkerList []WorkerInfo `json:"worker_list"` // each of them
	Links      int          `json:"links"`       // live links it holds
}

// WorkerInfo is one worker (service loop) of a node.
//
// Concurrency: a value.
type WorkerInfo struct {
	ID    int `json:"id"`    // LinkInfo.Worker of its links
	Links int `json:"links"` // live links it serves
}

// node is what a gateway knows of itself as a node, set by New.
type node struct {
	name    string
	version string
	started time.Time
}

func newNode(opts *Options) node {
	n := node{name: "lwsgate", version: opts.Version, started: time.Now()}
	if h, err := os.Hostname(); err == nil && h != "" {
		n.name = h
	}
	if n.version == "" {
		n.version = "dev"
	}
	return n
}

// Nodes returns this node (the admin API's GET /v1/api/nodes asks every
// node of a cluster for its own).
func (g *Gateway) Nodes() []NodeInfo {
	n := NodeInfo{
		Name:          g.self.name,
		Self:          true,
		Ready:         g.Ready(),
		Started:       g.self.started,
		Version:       g.self.version,
		Libwebsockets: lws.Version(),
		Fenced:        g.fenced.Load(),
		Workers:       len(g.workers),
		Links:         g.links.len(),
	}
	for _, w := range g.workers {
		n.WorkerList = append(n.WorkerList, WorkerInfo{ID: w.id, Links: int(w.links.Load())})
	}
	if g.multi {
		if at := g.eng.Stats().LeaseRenewed; !at.IsZero() {
			age := time.Since(at).Seconds()
			n.LeaseAge = &age
		}
	}
	return []NodeInfo{n}
}
