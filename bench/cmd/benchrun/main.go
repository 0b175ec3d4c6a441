// Command benchrun is the benchmark harness behind make bench (issue 6):
// it runs every scenario against every server, one fresh server process
// per measurement pinned to one core and the load tool (wsload) pinned to
// the other, interleaving the servers round by round (A B C, B C A, ...),
// and prints the medians with each server's ratio to native libwebsockets
// at its defaults. With -out it writes the report (BENCHMARKS.md).
//
// It does not build anything: scripts/bench.sh builds the servers and the
// load tool into -bin and then runs this.
package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

type opts struct {
	bin, out, rawOut      string
	notes                 string // -notes: markdown appended to the report
	rounds, depth         int
	dur, warmup, connDur  time.Duration
	idleLinks, basePort   int
	serverCPU, loadCPU    string
	only, onlyScen, quick string
	base                  string // -base: a directory of base-revision binaries, or ""
	grow                  []int  // -grow: idle links of the "as links grow" scenarios
	paced                 int    // -paced: offered rate of scale-paced
	balance               []int  // -balance: link counts of the balance scenarios
}

// sample is one measurement: wsload's JSON result.
type sample struct {
	Round        int     `json:"round"`
	Server       string  `json:"server"`
	Scenario     string  `json:"scenario"`
	Rate         float64 `json:"rate"`
	P50us        float64 `json:"p50_us"`
	P99us        float64 `json:"p99_us"`
	P999us       float64 `json:"p999_us"`
	Errors       uint64  `json:"errors"`
	CPUusPerOp   float64 `json:"cpu_us_per_op"`
	ServerCPU    float64 `json:"server_cpu"`
	LoadCPU      float64 `json:"load_cpu"`
	BytesPerLink float64 `json:"bytes_per_link"`
	Links        int     `json:"links"`
	FirstError   string  `json:"first_error"`
	Failed       string  `json:"failed,omitempty"`  // the harness could not measure
	Offered      int     `json:"offered,omitempty"` // -rate: the paced rate
	Behind       uint64  `json:"behind,omitempty"`  // -rate: messages due that no link could take
	// Balance scenarios: each worker's links (while all were open) and
	// messages (over the window in which all were open), from /metrics.
	Workers []workerShare `json:"workers,omitempty"`
}

func main() {
	var o opts
	flag.StringVar(&o.bin, "bin", "bin/bench", "directory holding wsload and the server binaries")
	flag.StringVar(&o.out, "out", "", "write the report (markdown) here, e.g. BENCHMARKS.md")
	flag.StringVar(&o.rawOut, "raw", "", "also write every sample as JSON lines here")
	flag.StringVar(&o.notes, "notes", "", "append this markdown file to the report (make bench: bench/NOTES.md, where the time goes for the targets missed, written by hand)")
	flag.IntVar(&o.rounds, "rounds", 5, "rounds: every server measured once per scenario per round")
	flag.DurationVar(&o.dur, "d", 5*time.Second, "measured duration of each run")
	flag.DurationVar(&o.warmup, "warmup", time.Second, "warm-up of each run (idle: settle time)")
	flag.DurationVar(&o.connDur, "connect-d", 2*time.Second, "measured duration of the connect scenario (at most -d): each second of it leaves ~10k connections in the kernel's conntrack table for 120 s")
	flag.IntVar(&o.depth, "depth", 10, "messages in flight per link in the pipelined scenario")
	flag.IntVar(&o.idleLinks, "idle-links", 10000, "links of the idle scenario")
	grow := flag.String("grow", "1000,10000", "idle links held open in the \"as links grow\" scenarios (pingpong-32+idleN, pipelined-32+idleN), comma-separated; \"\" for none")
	flag.IntVar(&o.paced, "paced", 30000, "offered rate of the scale-paced scenario, messages a second (at most what one worker takes with CPU to spare)")
	balance := flag.String("balance", "16,1000,10000", "links of the balance-N scenarios (lwsgate-w2's split over its workers), comma-separated; \"\" for none")
	flag.IntVar(&o.basePort, "port", 19100, "first TCP port; each run takes the next")
	flag.StringVar(&o.serverCPU, "server-cpu", "0", "taskset CPU list for the server")
	flag.StringVar(&o.loadCPU, "load-cpu", "1", "taskset CPU list for the load tool")
	flag.StringVar(&o.base, "base", "", "also measure lwsgate and lws-pkg built from an earlier revision, in this directory (scripts/bench.sh does it for BENCH_BASE=rev)")
	flag.StringVar(&o.only, "servers", "", "comma-separated servers (default all): lws,lws-tuned,lwsgate,lws-pkg,gorilla,gws,epoll (and lwsgate-base,lws-pkg-base with -base)")
	flag.StringVar(&o.onlyScen, "scenarios", "", "comma-separated scenarios (default all): pingpong-32,pipelined-32,pingpong-1k,big-64k,idle,connect,http and, for each N of -grow, pingpong-32+idleN,pipelined-32+idleN; the scaling section: scale-paced,scale-max and, for each N of -balance, balance-N")
	from := flag.String("from", "", "render the report from the samples of an earlier -raw file instead of measuring")
	quick := flag.Bool("quick", false, "smoke run: 1 round, 0.3 s runs, 300 idle links, -grow 300, -balance 16,300 (overrides -rounds, -d, -warmup, -idle-links, -grow, -balance)")
	flag.Parse()
	var err error
	if o.grow, err = parseCounts("-grow", *grow); err == nil {
		o.balance, err = parseCounts("-balance", *balance)
	}
	if err == nil && o.paced < 1 {
		err = errors.New("-paced: want at least 1 message a second")
	}
	if err == nil && o.notes != "" {
		// Before measuring: the report is written only at the end.
		_, err = os.Stat(o.notes)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "benchrun:", err)
		os.Exit(2)
	}
	if *quick {
		o.rounds, o.dur, o.warmup, o.idleLinks = 1, 300*time.Millisecond, 200*time.Millisecond, 300
		o.connDur = o.dur
		o.quick = "quick"
		o.grow = []int{300}
		o.balance = []int{16, 300}
	}
	if *from != "" {
		if err := render(&o, *from); err != nil {
			fmt.Fprintln(os.Stderr, "benchrun:", err)
			os.Exit(1)
		}
		return
	}
	if err := run(&o); err != nil {
		fmt.Fprintln(os.Stderr, "benchrun:", err)
		os.Exit(1)
	}
}

func pick[T any](all []T, name func(T) string, list string) ([]T, error) {
	if list == "" {
		return all, nil
	}
	var out []T
	for _, n := range strings.Split(list, ",") {
		i := slices.IndexFunc(all, func(t T) bool { return name(t) == strings.TrimSpace(n) })
		if i < 0 {
			return nil, fmt.Errorf("unknown name %q", n)
		}
		out = append(out, all[i])
	}
	return out, nil
}

func run(o *opts) error {
	srvs, err := pick(servers(o.bin, o.base), func(s server) string { return s.name }, o.only)
	if err != nil {
		return fmt.Errorf("-servers: %w", err)
	}
	scens, err := pick(append(scenarios(o.grow), scalingScenarios(o.paced, o.balance)...), func(s scenario) string { return s.name }, o.onlyScen)
	if err != nil {
		return fmt.Errorf("-scenarios: %w", err)
	}
	if err := preflight(o, srvs, scens); err != nil {
		return err
	}
	var raw io.Writer = io.Discard
	if o.rawOut != "" {
		f, err := os.Create(o.rawOut)
		if err != nil {
			return err
		}
		defer f.Close()
		raw = f
	}
	started := time.Now()
	var samples []sample
	port := o.basePort
	for _, sc := range scens {
		var these []server
		for _, s := range srvs {
			if sc.runs(s) {
				these = append(these, s)
			}
		}
		for r := range o.rounds {
			// Interleave: each round starts with the next server.
			for i := range these {
				s := these[(i+r)%len(these)]
				port++
				if port+max(s.ports, 1)-1 > o.basePort+2000 {
					port = o.basePort + 1
				}
				if need := newConns(o, sc); need > 0 {
					waitConntrack(need)
				}
				smp := measure(o, s, sc, port)
				port += max(s.ports, 1) - 1
				smp.Round = r + 1
				samples = append(samples, smp)
				line, _ := json.Marshal(smp)
				fmt.Fprintln(raw, string(line))
				fmt.Fprintf(os.Stderr, "%-13s round %d %-10s %s\n", sc.name, r+1, s.name, brief(sc, smp))
			}
		}
	}
	took := time.Since(started)
	line, _ := json.Marshal(runInfo{Run: true, Started: started, Took: took.Round(time.Second).String(),
		Rounds: o.rounds, Dur: o.dur.String(), Warmup: o.warmup.String(), ConnDur: o.connDur.String(),
		Depth: o.depth, IdleLinks: o.idleLinks, Grow: o.grow, Paced: o.paced, Balance: o.balance,
		ServerCPU: o.serverCPU, LoadCPU: o.loadCPU, Quick: o.quick})
	fmt.Fprintln(raw, string(line))
	return write(o, report(o, srvs, scens, samples, started, took))
}

func write(o *opts, rep string) error {
	if o.notes != "" {
		b, err := os.ReadFile(o.notes)
		if err != nil {
			return fmt.Errorf("-notes: %w", err)
		}
		rep += "\n" + string(b)
	}
	fmt.Print(rep)
	if o.out != "" {
		return os.WriteFile(o.out, []byte(rep), 0o644)
	}
	return nil
}

// runInfo is the last line of a -raw file: how the samples were taken.
type runInfo struct {
	Run                       bool      `json:"run"`
	Started                   time.Time `json:"started"`
	Took                      string    `json:"took"`
	Rounds                    int       `json:"rounds"`
	Dur, Warmup, ConnDur      string
	Depth, IdleLinks          int
	Grow                      []int `json:",omitempty"`
	Paced                     int   `json:",omitempty"`
	Balance                   []int `json:",omitempty"`
	ServerCPU, LoadCPU, Quick string
}

// render writes the report of a -raw file again (with today's report
// code), for every server and scenario it holds.
func render(o *opts, path string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	var samples []sample
	var info runInfo
	for _, l := range bytes.Split(b, []byte("\n")) {
		if len(bytes.TrimSpace(l)) == 0 {
			continue
		}
		if bytes.Contains(l, []byte(`"run":true`)) {
			if err := json.Unmarshal(l, &info); err != nil {
				return fmt.Errorf("%s: %w", path, err)
			}
			continue
		}
		var s sample
		if err := json.Unmarshal(l, &s); err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		samples = append(samples, s)
	}
	if !info.Run {
		return fmt.Errorf("%s: no run line (an interrupted run?)", path)
	}
	o.rounds, o.depth, o.idleLinks, o.paced = info.Rounds, info.Depth, info.IdleLinks, info.Paced
	o.serverCPU, o.loadCPU, o.quick = info.ServerCPU, info.LoadCPU, info.Quick
	o.dur, _ = time.ParseDuration(info.Dur)
	o.warmup, _ = time.ParseDuration(info.Warmup)
	o.connDur, _ = time.ParseDuration(info.ConnDur)
	has := func(name string, scen bool) bool {
		return slices.ContainsFunc(samples, func(s sample) bool { return scen && s.Scenario == name || !scen && s.Server == name })
	}
	var srvs []server
	for _, s := range servers(o.bin, "base") { // those with samples
		if has(s.name, false) {
			srvs = append(srvs, s)
		}
	}
	var scens []scenario
	for _, s := range append(scenarios(info.Grow), scalingScenarios(info.Paced, info.Balance)...) {
		if has(s.name, true) {
			scens = append(scens, s)
		}
	}
	took, _ := time.ParseDuration(info.Took)
	return write(o, report(o, srvs, scens, samples, info.Started, took))
}

func brief(sc scenario, s sample) string {
	switch {
	case s.Failed != "":
		return "FAILED: " + s.Failed
	case sc.unit == "":
		return fmt.Sprintf("%.0f B/link %.0fus/link (%d links) errors=%d", s.BytesPerLink, s.CPUusPerOp, s.Links, s.Errors)
	}
	return fmt.Sprintf("%.0f %s p50=%.0fus p99=%.0fus cpu/op=%.2fus cpu=%.0f%% load=%.0f%% errors=%d",
		s.Rate, sc.unit, s.P50us, s.P99us, s.CPUusPerOp, s.ServerCPU*100, s.LoadCPU*100, s.Errors)
}

// newConns estimates how many TCP connections a run opens, for the
// scenarios that open many.
func newConns(o *opts, sc scenario) int {
	switch sc.name {
	case "idle":
		return o.idleLinks
	case "connect":
		// ~15k handshakes/s at most on one core, warm-up included.
		return int((min(o.connDur, o.dur) + o.warmup).Seconds() * 15000)
	case "pingpong-1k":
		return 1000
	}
	if n, ok := strings.CutPrefix(sc.name, "balance-"); ok {
		c, _ := strconv.Atoi(n)
		return c
	}
	if sc.idle > 0 {
		return sc.idle + 100
	}
	return 0
}

// waitConntrack waits until the kernel's connection-tracking table has
// room for need more connections. Every closed loopback connection stays
// in it for nf_conntrack_tcp_timeout_time_wait (120 s by default); when it
// is full the kernel drops new SYNs (dmesg: "nf_conntrack: table full"),
// which the connect scenario (~10k connections per second) does in a few
// runs. That would fail our runs and, on a shared machine, everyone
// else's connections too. No conntrack (module not loaded): no wait.
func waitConntrack(need int) {
	read := func(name string) (int, bool) {
		b, err := os.ReadFile("/proc/sys/net/netfilter/" + name)
		if err != nil {
			return 0, false
		}
		n, err := strconv.Atoi(strings.TrimSpace(string(b)))
		return n, err == nil
	}
	limit, ok := read("nf_conntrack_max")
	if !ok {
		return
	}
	start := time.Now()
	said := false
	for time.Since(start) < 5*time.Minute {
		count, ok := read("nf_conntrack_count")
		if !ok || count+need <= limit*7/10 {
			if said {
				fmt.Fprintf(os.Stderr, "benchrun: conntrack table has room again after %s\n", time.Since(start).Round(time.Second))
			}
			return
		}
		if !said {
			fmt.Fprintf(os.Stderr, "benchrun: conntrack table at %d of %d entries; waiting for room for %d more (closed connections stay 120 s)\n", count, limit, need)
			said = true
		}
		time.Sleep(2 * time.Second)
	}
	fmt.Fprintln(os.Stderr, "benchrun: conntrack table still full after 5 minutes; going on")
}

// preflight checks the binaries, taskset and the open-file limit.
func preflight(o *opts, srvs []server, scens []scenario) error {
	need := []string{"wsload", "lwsgate.yaml"}
	for i := range need {
		need[i] = filepath.Join(o.bin, need[i])
	}
	for _, s := range srvs {
		need = append(need, binPath(o, s))
	}
	for _, b := range need {
		if _, err := os.Stat(b); err != nil {
			return fmt.Errorf("%v (scripts/bench.sh builds the binaries)", err)
		}
	}
	if _, err := exec.LookPath("taskset"); err != nil {
		return errors.New("taskset not found (Debian: util-linux)")
	}
	// Both processes of the idle scenario hold a descriptor per link.
	// Children inherit the limit set here (Go passes an explicit
	// Setrlimit on to them).
	want := uint64(1024)
	for _, s := range scens {
		switch {
		case s.name == "idle":
			want = max(want, uint64(o.idleLinks)+1024)
		case s.idle > 0:
			want = max(want, uint64(s.idle)+1024)
		case s.balance:
			n, _ := strconv.Atoi(strings.TrimPrefix(s.name, "balance-"))
			want = max(want, uint64(n)+1024)
		}
	}
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return err
	}
	lim.Cur = max(lim.Cur, min(lim.Max, max(want, 65536)))
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return fmt.Errorf("raising the open-file limit to %d: %w", lim.Cur, err)
	}
	if lim.Cur < want {
		return fmt.Errorf("the idle scenario needs %d open files per process, the hard limit is %d: raise it (ulimit -Hn, as root) or use -idle-links", want, lim.Max)
	}
	return nil
}

// measure starts s, runs one scenario against it and stops it.
func measure(o *opts, s server, sc scenario, port int) sample {
	smp := sample{Server: s.name, Scenario: sc.name}
	serverCPU, loadCPU := o.serverCPU, o.loadCPU
	if sc.cpus != "" {
		serverCPU, loadCPU = sc.cpus, sc.cpus
	}
	sargs := s.args(port)
	if sc.balance && s.admin {
		sargs = append(sargs, adminAt(port)...)
	}
	cmd := exec.Command("taskset", append([]string{"-c", serverCPU, binPath(o, s)}, sargs...)...)
	cmd.Env = append(os.Environ(), s.env...)
	var serr syncBuf
	cmd.Stdout, cmd.Stderr = io.Discard, &serr
	if err := cmd.Start(); err != nil {
		smp.Failed = err.Error()
		return smp
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	defer stop(cmd, exited)
	if err := waitPort(port, 10*time.Second); err != nil {
		smp.Failed = fmt.Sprintf("server did not listen: %v: %s", err, tail(serr.String()))
		return smp
	}
	time.Sleep(300 * time.Millisecond) // let it settle before the RSS baseline

	scheme := "ws"
	if sc.name == "http" {
		scheme = "http"
	}
	url := fmt.Sprintf("%s://127.0.0.1:%d/", scheme, port)
	if sc.name == "http" {
		url += "v1/api/createtoken"
	}
	for i := 1; i < s.ports; i++ { // links spread over the server's ports
		url += fmt.Sprintf(",%s://127.0.0.1:%d/", scheme, port+i)
	}
	dur := o.dur
	if sc.name == "connect" {
		dur = min(o.connDur, o.dur)
	}
	args := []string{"-c", loadCPU, filepath.Join(o.bin, "wsload"), "-json", "-pid", strconv.Itoa(cmd.Process.Pid),
		"-url", url, "-d", dur.String(), "-warmup", o.warmup.String()}
	if sc.name == "idle" || sc.idle > 0 {
		// Settle: before reading RSS, or after opening the idle links.
		args[len(args)-1] = max(o.warmup, time.Second).String()
	}
	load := exec.Command("taskset", append(args, sc.args(o)...)...)
	var lout, lerr bytes.Buffer
	load.Stdout, load.Stderr = &lout, &lerr
	var split func() ([]workerShare, error)
	if sc.balance && s.admin {
		split = watchWorkers(metricsAt(port))
	}
	_ = load.Run() // a non-zero exit only means errors, which the JSON counts
	var got sample
	sc2 := bufio.NewScanner(&lout)
	found := false
	for sc2.Scan() {
		if l := sc2.Bytes(); len(l) > 0 && l[0] == '{' {
			found = json.Unmarshal(l, &got) == nil
		}
	}
	if !found {
		smp.Failed = fmt.Sprintf("no result from wsload: %s", tail(lerr.String()))
		return smp
	}
	got.Server, got.Scenario = smp.Server, smp.Scenario
	if split != nil {
		var err error
		if got.Workers, err = split(); err != nil {
			got.Failed = "per-worker split: " + err.Error()
		}
	}
	select {
	case <-exited:
		got.Failed = "server exited during the run: " + tail(serr.String())
	default:
	}
	return got
}

// syncBuf collects a server's stderr while the harness may read it.
type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuf) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuf) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

func tail(s string) string {
	s = strings.TrimSpace(s)
	if len(s) > 300 {
		s = "..." + s[len(s)-300:]
	}
	return s
}

func waitPort(port int, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), time.Second)
		if err == nil {
			c.Close()
			return nil
		}
		if time.Now().After(deadline) {
			return err
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// stop ends the server: SIGTERM, then SIGKILL after 3 s.
func stop(cmd *exec.Cmd, exited <-chan struct{}) {
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-exited:
	case <-time.After(3 * time.Second):
		_ = cmd.Process.Kill()
		<-exited
	}
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	sort.Float64s(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}
