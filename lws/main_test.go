package lws

import (
	"flag"
	"fmt"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/lwsgate/lwsgate/cgo"
)

// TestMain fails the run when any cgo handle or extra goroutine outlives
// the tests: every Context must release everything on Close.
func TestMain(m *testing.M) {
	base := runtime.NumGoroutine()
	code := m.Run()
	if err := CloseDefaultContext(); err != nil {
		fmt.Fprintln(os.Stderr, "FAIL: closing the default context:", err)
		code = 1
	}
	if code == 0 {
		if n := cgo.LiveHandles(); n != 0 {
			fmt.Fprintf(os.Stderr, "FAIL: %d cgo handles still live after all tests\n", n)
			code = 1
		}
		if n := cgo.HeaderBuffers(); n != 0 {
			fmt.Fprintf(os.Stderr, "FAIL: %d libwebsockets header buffers still recorded after all tests\n", n)
			code = 1
		}
		// The fuzzing engine keeps goroutines of its own (os/signal):
		// when fuzzing, only the handles are checked.
		if fz := flag.Lookup("test.fuzz"); fz == nil || fz.Value.String() == "" {
			if err := waitGoroutines(base); err != nil {
				fmt.Fprintln(os.Stderr, "FAIL:", err)
				code = 1
			}
		}
	}
	os.Exit(code)
}

// waitGoroutines waits (bounded) for goroutines to return to base.
func waitGoroutines(base int) error {
	deadline := time.Now().Add(5 * time.Second)
	for {
		n := runtime.NumGoroutine()
		if n <= base {
			return nil
		}
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			buf = buf[:runtime.Stack(buf, true)]
			return fmt.Errorf("%d goroutines running, want <= %d:\n%s", n, base, strings.TrimSpace(string(buf)))
		}
		time.Sleep(20 * time.Millisecond)
	}
}
