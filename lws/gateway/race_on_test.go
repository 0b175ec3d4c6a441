//go:build race

package gateway

// raceEnabled: the race detector is on. Its sync.Pool drops a share of
// what is put back, on purpose, so counts of allocations are not the
// program's.
const raceEnabled = true
