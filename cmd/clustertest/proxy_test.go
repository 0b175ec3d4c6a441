package clustertest

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"net"
	"sync"
	"testing"
)

// mode is what the proxies do with a node's route traffic.
type mode int

const (
	pass      mode = iota
	blackHole      // bytes are read and dropped; sockets stay open (pings time out)
	reset          // connections are reset (RST) at once, new ones as they come
)

// proxies is the network between the nodes: a TCP proxy in front of
// each node's cluster (route) port, advertised as the node's cluster
// address and listed as its seed route, so that every route crosses
// one. Setting a node's mode affects every connection with the node at
// either end: its own proxy's, and those it solicited through the
// others' (named by the server ID on the CONNECT line a route opens
// with; each proxy learns its node's server ID from the INFO line the
// node sends first). Back to pass, the connections that lost bytes are
// reset: the route protocol cannot resume mid-stream.
//
// Concurrency: safe from any goroutine.
type proxies struct {
	t     testing.TB
	mu    sync.Mutex
	modes map[string]mode   // node name -> mode; absent: pass
	ids   map[string]string // server ID -> node name
	conns map[*pconn]struct{}
	lns   []net.Listener
	wg    sync.WaitGroup
}

// pconn is one connection through a proxy. Concurrency: sid and lossy
// are guarded by proxies.mu; the rest is set before it is shared.
type pconn struct {
	node     string // the proxy's
	sid      string // the solicitor's server ID
	lossy    bool   // bytes were dropped
	down, up *net.TCPConn
	once     sync.Once
}

func newProxies(t testing.TB) *proxies {
	p := &proxies{t: t, modes: map[string]mode{}, ids: map[string]string{}, conns: map[*pconn]struct{}{}}
	t.Cleanup(p.close)
	return p
}

// listen opens the proxy of node, which forwards to target (the node's
// cluster port); it returns the proxy's address.
func (p *proxies) listen(node, target string) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		p.t.Fatal(err)
	}
	p.mu.Lock()
	p.lns = append(p.lns, ln)
	p.mu.Unlock()
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			p.wg.Add(1)
			go func() {
				defer p.wg.Done()
				p.serve(node, target, c.(*net.TCPConn))
			}()
		}
	}()
	return ln.Addr().String()
}

func (p *proxies) serve(node, target string, down *net.TCPConn) {
	if p.modeOf(node, "") == reset {
		rst(down)
		return
	}
	c, err := net.Dial("tcp", target)
	if err != nil {
		down.Close() // the node is down; its peers retry
		return
	}
	pc := &pconn{node: node, down: down, up: c.(*net.TCPConn)}
	p.mu.Lock()
	p.conns[pc] = struct{}{}
	p.mu.Unlock()

	done := make(chan struct{})
	go func() {
		defer close(done)
		p.pump(pc, pc.down, pc.up, func(line []byte) { // the node's INFO
			var info struct {
				ID string `json:"server_id"`
			}
			if jsonOf(line, &info) && info.ID != "" {
				p.mu.Lock()
				p.ids[info.ID] = node
				p.mu.Unlock()
			}
		})
	}()
	p.pump(pc, pc.up, pc.down, func(line []byte) { // the solicitor's CONNECT
		var cn struct {
			Name string `json:"name"`
		}
		if jsonOf(line, &cn) {
			p.mu.Lock()
			pc.sid = cn.Name
			p.mu.Unlock()
		}
	})
	<-done
}

// jsonOf decodes the JSON of a protocol line (VERB {...}).
func jsonOf(line []byte, v any) bool {
	i := bytes.IndexByte(line, '{')
	return i >= 0 && json.Unmarshal(bytes.TrimSpace(line[i:]), v) == nil
}

// pump copies src to dst, giving first its first line, and dropping
// (black hole) or resetting as the modes say.
func (p *proxies) pump(pc *pconn, dst, src *net.TCPConn, first func([]byte)) {
	defer p.drop(pc, false)
	br := bufio.NewReaderSize(src, 64<<10)
	line, err := br.ReadSlice('\n')
	if err != nil {
		return
	}
	first(line)
	r := io.MultiReader(bytes.NewReader(append([]byte(nil), line...)), br)
	buf := make([]byte, 32<<10)
	for {
		n, err := r.Read(buf)
		switch p.connMode(pc) {
		case reset:
			p.drop(pc, true)
			return
		case blackHole:
			p.mu.Lock()
			pc.lossy = pc.lossy || n > 0
			p.mu.Unlock()
		default:
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

func (p *proxies) modeOf(node, sid string) mode {
	p.mu.Lock()
	defer p.mu.Unlock()
	return max(p.modes[node], p.modes[p.ids[sid]])
}

func (p *proxies) connMode(pc *pconn) mode {
	p.mu.Lock()
	sid := pc.sid
	p.mu.Unlock()
	return p.modeOf(pc.node, sid)
}

// drop closes both ends of pc, with a reset if rstIt.
func (p *proxies) drop(pc *pconn, rstIt bool) {
	pc.once.Do(func() {
		if rstIt {
			rst(pc.down)
			rst(pc.up)
		} else {
			pc.down.Close()
			pc.up.Close()
		}
	})
	p.mu.Lock()
	delete(p.conns, pc)
	p.mu.Unlock()
}

// rst closes c with a TCP reset (linger 0).
func rst(c *net.TCPConn) {
	_ = c.SetLinger(0)
	c.Close()
}

// set puts node's routes in mode m. The node's server ID must be known
// (a route to it has opened), or the cut would miss the routes it
// solicits. Setting reset resets its connections at once; setting pass
// resets those that lost bytes.
func (p *proxies) set(node string, m mode) {
	p.mu.Lock()
	known := false
	for _, n := range p.ids {
		known = known || n == node
	}
	if !known {
		p.mu.Unlock()
		p.t.Fatalf("proxies: no route to %s has opened yet", node)
	}
	if m == pass {
		delete(p.modes, node)
	} else {
		p.modes[node] = m
	}
	var hit []*pconn
	for pc := range p.conns {
		if pc.node != node && p.ids[pc.sid] != node {
			continue
		}
		if m == reset || (m == pass && pc.lossy) {
			hit = append(hit, pc)
		}
	}
	p.mu.Unlock()
	for _, pc := range hit {
		p.drop(pc, true)
	}
}

func (p *proxies) close() {
	p.mu.Lock()
	lns := p.lns
	var conns []*pconn
	for pc := range p.conns {
		conns = append(conns, pc)
	}
	p.mu.Unlock()
	for _, ln := range lns {
		ln.Close()
	}
	for _, pc := range conns {
		p.drop(pc, false)
	}
	p.wg.Wait()
}
