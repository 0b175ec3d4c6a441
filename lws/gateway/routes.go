package gateway

import (
	"log/slog"
	"sort"
	"sync"
)

// Route is one entry of the route table: Node reaches Peer in Depth hops
// (0: directly, a bound friend).
type Route struct {
	Node  uint64 `json:"node"`
	Peer  uint64 `json:"peer"`
	Depth int    `json:"depth"`
}

// routeTable binds links to each other, as the seed's Route_Add,
// Route_BindFriend and Route_Del did. BindFriend(a, b) routes a and b to
// each other at depth 0 and extends every route that reached one of them
// by one hop to the other, so a chain client -> gateway link -> backend
// link is known at every depth. Del(n) removes every route from and to n,
// whichever side goes first; after a link is destroyed nothing refers to
// it.
//
// Concurrency: safe from any goroutine.
type routeTable struct {
	mu     sync.Mutex
	routes map[uint64]map[uint64]int // node -> peer -> depth
	log    *slog.Logger
}

func newRouteTable(log *slog.Logger) *routeTable {
	return &routeTable{routes: map[uint64]map[uint64]int{}, log: log}
}

func (t *routeTable) add(node, peer uint64, depth int) {
	if node == peer {
		return
	}
	m := t.routes[node]
	if m == nil {
		m = map[uint64]int{}
		t.routes[node] = m
	}
	if d, ok := m[peer]; ok && d <= depth {
		return
	}
	m[peer] = depth
	t.log.Debug("route add", "node", node, "peer", peer, "depth", depth)
}

// bindFriend routes a to b and b to a, and extends the routes that reached
// either.
func (t *routeTable) bindFriend(a, b uint64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.log.Debug("route bind friend", "node", a, "friend", b)
	// Routes are kept both ways, so what reaches a is what a reaches:
	// each of those now reaches b in one more hop, and b reaches it.
	var ext []Route
	for x, d := range t.routes[a] {
		ext = append(ext, Route{x, b, d + 1}, Route{b, x, d + 1})
	}
	for x, d := range t.routes[b] {
		ext = append(ext, Route{x, a, d + 1}, Route{a, x, d + 1})
	}
	t.add(a, b, 0)
	t.add(b, a, 0)
	for _, r := range ext {
		t.add(r.Node, r.Peer, r.Depth)
	}
}

// del removes every route from and to node.
func (t *routeTable) del(node uint64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for peer, d := range t.routes[node] {
		t.log.Debug("route del", "node", node, "peer", peer, "depth", d)
	}
	delete(t.routes, node)
	for n, m := range t.routes {
		if d, ok := m[node]; ok {
			delete(m, node)
			t.log.Debug("route del", "node", n, "peer", node, "depth", d)
			if len(m) == 0 {
				delete(t.routes, n)
			}
		}
	}
}

// peers returns node's routes by depth, then peer.
func (t *routeTable) peers(node uint64) []Route {
	t.mu.Lock()
	var out []Route
	for p, d := range t.routes[node] {
		out = append(out, Route{node, p, d})
	}
	t.mu.Unlock()
	sortRoutes(out)
	return out
}

// all returns every route.
func (t *routeTable) all() []Route {
	t.mu.Lock()
	var out []Route
	for n, m := range t.routes {
		for p, d := range m {
			out = append(out, Route{n, p, d})
		}
	}
	t.mu.Unlock()
	sortRoutes(out)
	return out
}

func sortRoutes(r []Route) {
	sort.Slice(r, func(i, j int) bool {
		if r[i].Node != r[j].Node {
			return r[i].Node < r[j].Node
		}
		if r[i].Depth != r[j].Depth {
			return r[i].Depth < r[j].Depth
		}
		return r[i].Peer < r[j].Peer
	})
}

// len returns the number of routes.
func (t *routeTable) len() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := 0
	for _, m := range t.routes {
		n += len(m)
	}
	return n
}
