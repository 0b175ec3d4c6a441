package testutil

import (
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"testing"
)

// FreePorts returns n loopback addresses ("127.0.0.1:port") that could be
// bound when it returned, for servers that must know each other's
// addresses before any of them starts (the cluster's route listeners).
//
// The ports are drawn at random from below the kernel's ephemeral range
// (net.ipv4.ip_local_port_range), not chosen by binding port 0: a port
// the kernel chose and the test released is back in the range it gives
// every outgoing connection, and a test running beside this one may take
// it before the server binds it. Below that range only a listener asking
// for that very port can. Where the range leaves no room below it, the
// kernel chooses, as before.
func FreePorts(t testing.TB, n int) []string {
	t.Helper()
	out, err := Ports(n)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// Ports is FreePorts for a program that is not a test (the cluster
// bench): it returns an error where FreePorts fails the test.
func Ports(n int) ([]string, error) {
	lo, hi := 10000, ephemeralLow()
	pick := func() string { return fmt.Sprintf("127.0.0.1:%d", lo+rand.IntN(hi-lo)) }
	if hi-lo < 1000 {
		pick = func() string { return "127.0.0.1:0" }
	}
	var out []string
	var held []net.Listener
	defer func() {
		for _, ln := range held {
			ln.Close()
		}
	}()
	for tries := 0; len(out) < n; tries++ {
		if tries > 100*n {
			return nil, fmt.Errorf("FreePorts: no %d free ports below %d after %d tries", n, hi, tries)
		}
		ln, err := net.Listen("tcp", pick())
		if err != nil {
			continue // taken
		}
		held = append(held, ln) // held until all are found: no duplicates
		out = append(out, ln.Addr().String())
	}
	return out, nil
}

// ephemeralLow is the first port of the kernel's ephemeral range, 32768
// where it cannot be read.
func ephemeralLow() int {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	var lo, hi int
	if err != nil {
		return 32768
	}
	if _, err := fmt.Sscan(string(b), &lo, &hi); err != nil || lo <= 0 {
		return 32768
	}
	return lo
}
