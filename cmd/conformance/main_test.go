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

// TestConformance runs every case against the binding's server and client,
// in process, as CI does: no case may fail unless KnownFailures lists it,
// and no listed case may pass (its entry would be stale). The
// permessage-deflate families run again with compression on, and every
// case runs again through lwsgate's relay (relay.go). The runs go in
// parallel: most of a run is waiting.
func TestConformance(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
	}{
		{"server", []string{"-target", "server"}},
		{"client", []string{"-target", "client"}},
		{"server-compression", []string{"-target", "server", "-compression", "-cases", "12,13"}},
		{"client-compression", []string{"-target", "client", "-compression", "-cases", "12,13"}},
		// Every case again through lwsgate's relay, both ways: the
		// bad frames of one side must not crash the relay while the
		// other side is being dialled, open or closing.
		{"server-relay", []string{"-target", "server", "-relay"}},
		{"client-relay", []string{"-target", "client", "-relay"}},
		{"server-relay-compression", []string{"-target", "server", "-relay", "-compression", "-cases", "12,13"}},
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
