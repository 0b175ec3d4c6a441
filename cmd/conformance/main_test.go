package main

import (
	"fmt"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/lwsgate/lwsgate/cgo"
)

// TestConformance runs the cases against the binding's server and client,
// in process, as CI does: no case may fail unless KnownFailures lists it,
// and no listed case may pass (its entry would be stale). The
// permessage-deflate families run again with compression on, and every
// case runs again through lwsgate's relay (relay.go). Of Autobahn's
// 12.x/13.x matrix it runs a subset (deflateSubset), 5 messages a case
// instead of DefaultMessages: make conformance runs all of it. The runs
// go in parallel: most of a run is waiting.
func TestConformance(t *testing.T) {
	deflate := strings.Join(deflateSubset(), ",")
	all := "1,2,3,4,5,6,7,9," + deflate
	for _, tc := range []struct {
		name string
		args []string
	}{
		{"server", []string{"-target", "server", "-cases", all, "-messages", "5"}},
		{"client", []string{"-target", "client", "-cases", all, "-messages", "5"}},
		{"server-compression", []string{"-target", "server", "-compression", "-cases", deflate, "-messages", "5"}},
		{"client-compression", []string{"-target", "client", "-compression", "-cases", deflate, "-messages", "5"}},
		// Every case again through lwsgate's relay, both ways: the
		// bad frames of one side must not crash the relay while the
		// other side is being dialled, open or closing.
		{"server-relay", []string{"-target", "server", "-relay", "-cases", all, "-messages", "5"}},
		{"client-relay", []string{"-target", "client", "-relay", "-cases", all, "-messages", "5"}},
		{"server-relay-compression", []string{"-target", "server", "-relay", "-compression", "-cases", deflate, "-messages", "5"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var out strings.Builder
			status := run(tc.args, &out, &out)
			t.Log("\n" + out.String())
			if status != 0 {
				t.Fatalf("conformance %s exited %d: see PROBLEMS above", strings.Join(tc.args, " "), status)
			}
		})
	}
}

// deflateSubset selects, of Autobahn's 12.x and 13.x cases, the sizes of
// subcases 1, 10, 11 and 18 (16 bytes and 128 KiB in one frame, 8 KiB in
// frames of 256 bytes, 128 KiB in frames of 32 KiB) of every data set and
// offer, and every case this suite adds: what make test runs. make
// conformance runs them all.
func deflateSubset() []string {
	var ids []string
	for j := 1; j <= 5; j++ {
		for _, i := range []int{1, 10, 11, 18} {
			ids = append(ids, fmt.Sprintf("12.%d.%d", j, i))
		}
	}
	for j := 1; j <= 7; j++ {
		for _, i := range []int{1, 10, 11, 18} {
			ids = append(ids, fmt.Sprintf("13.%d.%d", j, i))
		}
	}
	ids = append(ids, "12.6", "12.7")
	for j := 8; j <= 22; j++ {
		ids = append(ids, fmt.Sprintf("13.%d", j))
	}
	return ids
}

func TestUsage(t *testing.T) {
	var out strings.Builder
	if got := run([]string{"-target", "nowhere"}, &out, &out); got != 2 {
		t.Errorf("-target nowhere: exit %d, want 2", got)
	}
	if got := run([]string{"extra"}, &out, &out); got != 2 {
		t.Errorf("an argument: exit %d, want 2", got)
	}
}

// TestMain fails the run when a cgo handle or an extra goroutine outlives
// the tests: every link the cases opened and broke must be released.
func TestMain(m *testing.M) {
	base := runtime.NumGoroutine()
	code := m.Run()
	if code == 0 {
		if n := cgo.LiveHandles(); n != 0 {
			fmt.Fprintf(os.Stderr, "FAIL: %d cgo handles still live after all tests\n", n)
			code = 1
		}
		deadline := time.Now().Add(5 * time.Second)
		for runtime.NumGoroutine() > base && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
		if n := runtime.NumGoroutine(); n > base {
			buf := make([]byte, 1<<20)
			fmt.Fprintf(os.Stderr, "FAIL: %d goroutines, want <= %d:\n%s\n", n, base, buf[:runtime.Stack(buf, true)])
			code = 1
		}
	}
	os.Exit(code)
}
