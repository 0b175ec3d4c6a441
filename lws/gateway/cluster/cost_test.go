package cluster

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// TestEmbeddedCost measures what embedding NATS costs a program:
// binary size (testdata/costprobe built without and with the engine
// package), then startup time (wall and CPU) and idle resident memory
// of a process with no engine, the memory engine, and a single embedded
// node. It builds programs (a minute of CPU), so it runs only with
// LWSGATE_CLUSTER_COST=1; it logs the figures (go test -v).
func TestEmbeddedCost(t *testing.T) {
	if os.Getenv("LWSGATE_CLUSTER_COST") == "" {
		t.Skip("set LWSGATE_CLUSTER_COST=1 to measure (builds programs)")
	}
	dir := t.TempDir()
	build := func(name string, tags ...string) int64 {
		out := filepath.Join(dir, name)
		args := append([]string{"build", "-trimpath", "-o", out}, tags...)
		cmd := exec.Command("go", append(args, "./testdata/costprobe")...)
		if b, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("go build %v: %v\n%s", tags, err, b)
		}
		st, err := os.Stat(out)
		if err != nil {
			t.Fatal(err)
		}
		return st.Size()
	}
	plain, withNATS := build("plain"), build("nats", "-tags", "nats")
	t.Logf("binary: %d bytes without the engine package, %d with (+%.1f MiB)",
		plain, withNATS, float64(withNATS-plain)/(1<<20))

	for _, run := range []struct{ bin, engine string }{
		{"plain", "none"}, {"nats", "none"}, {"nats", "memory"}, {"nats", "embedded"},
	} {
		for i := 0; i < 3; i++ {
			out, err := exec.Command(filepath.Join(dir, run.bin), "-engine", run.engine).Output()
			if err != nil {
				t.Fatalf("%s -engine %s: %v", run.bin, run.engine, err)
			}
			var m map[string]any
			if err := json.Unmarshal(out, &m); err != nil {
				t.Fatalf("%s: %v", out, err)
			}
			t.Logf("%s binary, engine %-8s: startup %6.1f ms wall %6.1f ms CPU; idle RSS %6.0f KiB (peak %6.0f); idle CPU %5.1f ms/3s",
				run.bin, run.engine, m["startup_wall_ms"], m["startup_cpu_ms"], m["rss_kib"], m["rss_peak_kib"], m["idle_cpu_ms"])
		}
	}
}
