// Package clustertest holds the process tier of cluster mode: three
// bin/lwsgate processes forming one cluster on 127.0.0.1 (embedded
// NATS) behind TCP proxies, faulted with partitions, kill -9, SIGSTOP and
// SIGCONT, and restarted. See cluster_test.go, and history_test.go for
// the history checker against the processes; make cluster-test runs them.
package clustertest
