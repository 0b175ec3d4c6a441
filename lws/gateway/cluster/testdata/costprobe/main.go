// Command costprobe measures what an engine costs a process: it opens
// one (-engine none, memory or embedded: a single embedded NATS node),
// stays idle for -idle, then prints its startup time (wall and CPU) and
// resident memory. Built with -tags nats it links the engine package;
// without, it does not, so the two binaries' sizes differ by exactly
// what embedding NATS adds. TestEmbeddedCost builds and runs it.
package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"strings"
	"syscall"
	"time"
)

// open starts the engine (cluster.go, -tags nats) and returns its
// closer; without the tag only "none" exists.
var open = func(engine, dir string) (func(), error) {
	if engine != "none" {
		return nil, fmt.Errorf("built without -tags nats")
	}
	return func() {}, nil
}

func main() {
	engine := flag.String("engine", "none", "none, memory or embedded")
	idle := flag.Duration("idle", 3*time.Second, "idle time before measuring memory")
	flag.Parse()
	dir, err := os.MkdirTemp("", "costprobe")
	if err != nil {
		fail(err)
	}
	defer os.RemoveAll(dir)
	cpu0, wall0 := cpu(), time.Now()
	stop, err := open(*engine, dir)
	if err != nil {
		fail(err)
	}
	startWall, startCPU := time.Since(wall0), cpu()-cpu0
	time.Sleep(*idle)
	out := map[string]any{
		"engine":          *engine,
		"startup_wall_ms": float64(startWall.Microseconds()) / 1000,
		"startup_cpu_ms":  float64(startCPU.Microseconds()) / 1000,
		"rss_kib":         status("VmRSS"),
		"rss_peak_kib":    status("VmHWM"),
		"idle_cpu_ms":     float64((cpu() - cpu0 - startCPU).Microseconds()) / 1000,
	}
	stop()
	_ = json.NewEncoder(os.Stdout).Encode(out)
}

func cpu() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// status reads a kB field of /proc/self/status.
func status(field string) int {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return -1
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), field+":"); ok {
			var n int
			fmt.Sscanf(strings.TrimSpace(v), "%d", &n)
			return n
		}
	}
	return -1
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "costprobe:", err)
	os.Exit(1)
}
