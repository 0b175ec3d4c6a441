package cluster

import (
	"encoding/binary"
	"slices"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// benchPair starts two embedded nodes in this process, n2 interested in
// channel "bench" and deliver taking n2's deliveries.
func benchPair(b *testing.B, deliver func(Delivery)) (n1, n2 *tnode) {
	c := startCluster(b, 2, testGrace, func(nd *tnode) {
		if nd.name == "n2" {
			nd.deliver = deliver
		}
	})
	n1, n2 = c.nodes[0], c.nodes[1]
	if err := n2.eng.Interest("bench", true); err != nil {
		b.Fatal(err)
	}
	subj := n1.eng.pre + "ch.bench"
	eventually(b, 5*time.Second, "n2's interest on n1", func() bool { return sameSet(routeInterest(b, n1, subj), "n2") })
	return n1, n2
}

// BenchmarkRemoteDelivery: the latency from Publish on one node to the
// Deliver hook on another, one message at a time (no queueing), 64-byte
// payloads, both nodes' servers and engines in this process over
// loopback routes. Reports p50 and p99.
func BenchmarkRemoteDelivery(b *testing.B) {
	got := make(chan time.Duration, 1)
	n1, _ := benchPair(b, func(d Delivery) {
		got <- time.Duration(time.Now().UnixNano() - int64(binary.LittleEndian.Uint64(d.Data)))
	})
	ctx := stepCtx(b)
	buf := make([]byte, 64)
	var lat []time.Duration
	for b.Loop() {
		binary.LittleEndian.PutUint64(buf, uint64(time.Now().UnixNano()))
		if _, err := n1.eng.Publish(ctx, "bench", Message{Data: buf}); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, <-got)
	}
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
}

// BenchmarkRemoteDeliveryCPU: messages published back to back (at most
// 4096 in flight) from one node to another; reports the process's CPU
// time (user + system, from getrusage, so both nodes and the
// publisher) per delivered message.
func BenchmarkRemoteDeliveryCPU(b *testing.B) {
	var delivered atomic.Int64
	wake := make(chan struct{}, 1)
	n1, _ := benchPair(b, func(Delivery) {
		delivered.Add(1)
		select {
		case wake <- struct{}{}:
		default:
		}
	})
	ctx := stepCtx(b)
	m := Message{Data: make([]byte, 64)}
	cpu0 := cpuTime()
	var sent int64
	for b.Loop() {
		for sent-delivered.Load() >= 4096 {
			<-wake
		}
		if _, err := n1.eng.Publish(ctx, "bench", m); err != nil {
			b.Fatal(err)
		}
		sent++
	}
	for delivered.Load() < sent {
		select {
		case <-wake:
		case <-time.After(10 * time.Second):
			b.Fatalf("%d of %d delivered", delivered.Load(), sent)
		}
	}
	b.ReportMetric(float64(cpuTime()-cpu0)/float64(sent), "cpu-ns/delivery")
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
