package main

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/lwsgate/lwsgate/internal/testutil"
)

// node is one running lwsgate. Concurrency: set by startNodes, then read
// only.
type node struct {
	name string
	cmd  *exec.Cmd
	pub  string // host:port of its WebSocket listener
	done chan struct{}
}

var listening = regexp.MustCompile(`lwsgate listening addr=(\S+)`)

// common is every node's configuration: no trace lines, no limits on the
// links of one address (all the load comes from 127.0.0.1).
const common = `
log: {trace: false}
listeners:
  - addr: "127.0.0.1:0"
    limits: {max_links: -1, max_links_per_ip: -1, accept_rate: -1}
admin: {addr: "127.0.0.1:0"}
tokens: {secret: clusterbench-secret}
shutdown: {drain: 100ms, deadline: 2s}
`

// startNodes starts the nodes of engine: one with the memory engine,
// three with nats (embedded servers routed to each other), or for
// memory3 three with the memory engine that know nothing of each other.
func startNodes(cfg config, engine string, round int) ([]*node, error) {
	return startNodesWith(cfg, engine, round, "")
}

// startNodesWith is startNodes with extra (YAML lines, indented by two
// spaces) in each nats node's cluster section.
func startNodesWith(cfg config, engine string, round int, extra string) ([]*node, error) {
	base := common + fmt.Sprintf("workers: %d\n", cfg.workers)
	var cfgs []string
	switch engine {
	case engineMemory:
		cfgs = []string{base}
	case engineMemory3:
		cfgs = []string{base, base, base}
	default:
		// Below the ephemeral range: a port the kernel chose and this
		// process released may go to any outgoing connection before
		// the node binds it (testutil.Ports).
		ports, err := testutil.Ports(3)
		if err != nil {
			return nil, err
		}
		var routes []string
		for _, p := range ports {
			routes = append(routes, "nats://"+p)
		}
		for i := range 3 {
			cfgs = append(cfgs, base+fmt.Sprintf(`
cluster:
  engine: nats
  name: bench
  node: b%d
%s
  nats:
    embedded:
      cluster_listen: "%s"
      routes: [%s]
      store_dir: "%s"
`, i+1, extra, ports[i], strings.Join(routes, ", "), filepath.Join(cfg.dir, fmt.Sprintf("r%d-b%d", round, i+1))))
		}
	}
	nodes := make([]*node, len(cfgs))
	errs := make(chan error, len(cfgs))
	for i, c := range cfgs {
		go func() {
			n, err := startNode(cfg, fmt.Sprintf("%s-r%d-%d", engine, round, i+1), c)
			nodes[i] = n
			errs <- err
		}()
	}
	var first error
	for range cfgs {
		if err := <-errs; err != nil && first == nil {
			first = err
		}
	}
	if first != nil {
		stopNodes(nodes)
		return nil, first
	}
	return nodes, nil
}

func startNode(cfg config, name, conf string) (*node, error) {
	file := filepath.Join(cfg.dir, name+".yaml")
	if err := os.WriteFile(file, []byte(conf), 0o600); err != nil {
		return nil, err
	}
	n := &node{name: name, cmd: exec.Command(cfg.bin, "-config", file), done: make(chan struct{})}
	stderr, err := n.cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	if err := n.cmd.Start(); err != nil {
		return nil, fmt.Errorf("%s: %w", cfg.bin, err)
	}
	addr := make(chan string, 1)
	var (
		mu   sync.Mutex
		tail []string // the log's first lines, for an error at start
	)
	logTail := func() string {
		mu.Lock()
		defer mu.Unlock()
		return strings.Join(tail, "\n")
	}
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			if m := listening.FindStringSubmatch(sc.Text()); m != nil {
				select {
				case addr <- m[1]:
				default: // one is enough; the log must keep flowing
				}
				continue
			}
			mu.Lock()
			if len(tail) < 20 {
				tail = append(tail, sc.Text())
			}
			mu.Unlock()
		}
	}()
	go func() { _ = n.cmd.Wait(); close(n.done) }()
	select {
	case n.pub = <-addr:
		return n, nil
	case <-n.done:
		return nil, fmt.Errorf("%s exited at start: %s", name, logTail())
	case <-time.After(60 * time.Second):
		n.stop()
		return nil, fmt.Errorf("%s not listening after 60s: %s", name, logTail())
	}
}

func (n *node) stop() {
	_ = n.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-n.done:
	case <-time.After(10 * time.Second):
		_ = n.cmd.Process.Kill()
		<-n.done
	}
}

func stopNodes(nodes []*node) {
	for _, n := range nodes {
		if n != nil {
			n.stop()
		}
	}
}

// cpuTime is the CPU time (user and system) each node's process has
// used, from /proc/PID/stat.
func cpuTime(nodes []*node) ([]time.Duration, error) {
	out := make([]time.Duration, len(nodes))
	for i, n := range nodes {
		var ticks int64
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", n.cmd.Process.Pid))
		if err != nil {
			return nil, err
		}
		// Fields after the command name (which may hold spaces): state is
		// field 3, utime 14, stime 15.
		f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+2:]))
		for _, s := range f[11:13] {
			v, err := strconv.ParseInt(s, 10, 64)
			if err != nil {
				return nil, fmt.Errorf("/proc/%d/stat: %v", n.cmd.Process.Pid, err)
			}
			ticks += v
		}
		out[i] = time.Duration(ticks) * time.Second / clockTicks
	}
	return out, nil
}

// since is what each node used from c0 to c1, and their sum.
func since(c0, c1 []time.Duration) ([]time.Duration, time.Duration) {
	each := make([]time.Duration, len(c1))
	var sum time.Duration
	for i := range c1 {
		each[i] = c1[i] - c0[i]
		sum += each[i]
	}
	return each, sum
}

// clockTicks is USER_HZ, 100 on every Linux this runs on.
const clockTicks = 100
