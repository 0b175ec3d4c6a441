// Package clustertest holds the process tier of cluster mode: three
// bin/lwsgate processes forming one cluster on 127.0.0.1 (embedded
// NATS), faulted with kill -9, SIGSTOP and SIGCONT. See cluster_test.go;
// make cluster-test runs it.
package clustertest
