// Package interop holds the interop matrix: bin/lwsgate at its default
// configuration against WebSocket clients this repository did not write.
// See matrix_test.go.
package interop
