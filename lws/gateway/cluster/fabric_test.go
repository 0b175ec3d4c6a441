package cluster

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
)

// fabric is the test network between embedded nodes: a TCP gate in
// front of each node's cluster port, advertised as the node's address
// and used as its seed route, so that every route connection crosses
// one gate. A gate tags each connection with both of its ends: its own
// node, and the soliciting server, named by the server ID in the
// CONNECT line a route opens with. cut(node) black-holes every
// connection that has the node at either end (bytes are read and
// dropped; the sockets stay open, so the route's pings time out as in a
// real partition); heal(node) passes traffic again and resets the
// connections that lost bytes. pause(node) holds every connection of
// the node instead, as a stopped process would (bytes wait in the
// sockets; the peers' pings time out if it lasts), and resume(node)
// lets them flow again.
//
// Concurrency: safe from any goroutine.
type fabric struct {
	t     testing.TB
	mu    sync.Mutex
	cuts  map[string]bool   // node names cut off
	holds map[string]bool   // node names paused
	flow  chan struct{}     // closed (and replaced) when a pause ends
	ids   map[string]string // server ID -> node name
	links map[*gateLink]struct{}
	gates []*gate
	wg    sync.WaitGroup
}

// gate is one node's gate. Concurrency: safe from any goroutine.
type gate struct {
	f      *fabric
	node   string
	ln     net.Listener
	target atomic.Pointer[string] // the node's cluster port, once its server listens
}

// gateLink is one connection through a gate. Concurrency: sid is
// guarded by fabric.mu; the rest is set before it is shared.
type gateLink struct {
	node       string   // the gate's
	sid        string   // the solicitor's server ID, from its CONNECT line
	down, up   net.Conn // the solicitor's side, the node's side
	closedOnce sync.Once
}

func newFabric(t testing.TB) *fabric {
	f := &fabric{t: t, cuts: map[string]bool{}, holds: map[string]bool{}, flow: make(chan struct{}),
		ids: map[string]string{}, links: map[*gateLink]struct{}{}}
	t.Cleanup(f.close)
	return f
}

// gate opens the gate of node; its address is the node's advertise
// address and seed route.
func (f *fabric) gate(node string) *gate {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		f.t.Fatal(err)
	}
	g := &gate{f: f, node: node, ln: ln}
	f.mu.Lock()
	f.gates = append(f.gates, g)
	f.mu.Unlock()
	f.wg.Add(1)
	go func() {
		defer f.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			f.wg.Add(1)
			go func() {
				defer f.wg.Done()
				g.serve(c)
			}()
		}
	}()
	return g
}

func (g *gate) addr() string { return g.ln.Addr().String() }

// attach points the gate at node's server (called by Config.testServer).
func (g *gate) attach(s *embeddedServer) {
	addr := s.ns.ClusterAddr().String()
	g.target.Store(&addr)
	g.f.mu.Lock()
	g.f.ids[s.ns.ID()] = g.node
	g.f.mu.Unlock()
}

func (g *gate) serve(down net.Conn) {
	target := g.target.Load()
	if target == nil {
		down.Close() // the server is not up yet; the route retries
		return
	}
	up, err := net.Dial("tcp", *target)
	if err != nil {
		down.Close()
		return
	}
	l := &gateLink{node: g.node, down: down, up: up}
	f := g.f
	f.mu.Lock()
	f.links[l] = struct{}{}
	f.mu.Unlock()
	defer f.drop(l)

	// Traffic from the node flows at once (a solicitor may wait for the
	// node's INFO); the solicitor's first line names it: CONNECT
	// {"name":"<server id>"} or INFO {"server_id":"<server id>"}.
	done := make(chan struct{})
	go func() {
		f.pump(l, down, up, nil)
		close(done)
	}()
	br := bufio.NewReaderSize(down, 64<<10)
	first, err := br.ReadSlice('\n')
	if err == nil {
		if i := bytes.IndexByte(first, '{'); i >= 0 {
			var c struct {
				Name     string `json:"name"`
				ServerID string `json:"server_id"`
			}
			if json.Unmarshal(bytes.TrimSpace(first[i:]), &c) == nil {
				f.mu.Lock()
				l.sid = c.Name + c.ServerID
				f.mu.Unlock()
			}
		}
		f.pump(l, up, down, io.MultiReader(bytes.NewReader(append([]byte(nil), first...)), br))
	}
	f.drop(l)
	<-done
}

// pump copies from src (or r, when set) to dst, dropping what passes
// while the link is cut.
func (f *fabric) pump(l *gateLink, dst, src net.Conn, r io.Reader) {
	if r == nil {
		r = src
	}
	buf := make([]byte, 32<<10)
	for {
		n, err := r.Read(buf)
		f.waitHeld(l)
		if n > 0 && !f.isCut(l) {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				break
			}
		}
		if err != nil {
			break
		}
	}
	f.drop(l)
}

func (f *fabric) isCut(l *gateLink) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.cuts[l.node] || f.cuts[f.ids[l.sid]]
}

// waitHeld waits while either end of l is paused.
func (f *fabric) waitHeld(l *gateLink) {
	for {
		f.mu.Lock()
		held, flow := f.holds[l.node] || f.holds[f.ids[l.sid]], f.flow
		f.mu.Unlock()
		if !held {
			return
		}
		<-flow
	}
}

func (f *fabric) drop(l *gateLink) {
	l.closedOnce.Do(func() {
		l.down.Close()
		l.up.Close()
	})
	f.mu.Lock()
	delete(f.links, l)
	f.mu.Unlock()
}

// cut black-holes every route of node.
func (f *fabric) cut(node string) {
	f.mu.Lock()
	f.cuts[node] = true
	f.mu.Unlock()
}

// heal passes node's traffic again and resets the connections that lost
// bytes while it was cut.
func (f *fabric) heal(node string) {
	f.mu.Lock()
	delete(f.cuts, node)
	var stale []*gateLink
	for l := range f.links {
		if l.node == node || f.ids[l.sid] == node {
			stale = append(stale, l)
		}
	}
	f.mu.Unlock()
	for _, l := range stale {
		f.drop(l)
	}
}

// pause holds every route of node.
func (f *fabric) pause(node string) {
	f.mu.Lock()
	f.holds[node] = true
	f.mu.Unlock()
}

// resume lets node's routes flow again.
func (f *fabric) resume(node string) {
	f.mu.Lock()
	delete(f.holds, node)
	close(f.flow)
	f.flow = make(chan struct{})
	f.mu.Unlock()
}

func (f *fabric) close() {
	f.mu.Lock()
	clear(f.holds)
	close(f.flow)
	f.flow = make(chan struct{})
	gates := f.gates
	var links []*gateLink
	for l := range f.links {
		links = append(links, l)
	}
	f.mu.Unlock()
	for _, g := range gates {
		g.ln.Close()
	}
	for _, l := range links {
		f.drop(l)
	}
	f.wg.Wait()
}
