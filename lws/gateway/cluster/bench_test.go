package cluster

import (
	"encoding/binary"
	"fmt"
	"os"
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

// BenchmarkHistoryPublish: acknowledged publishes on a history channel
// of one embedded node (R1, JetStream's default sync), 64-byte
// payloads. async: PublishAsync, up to 4096 unacknowledged (the
// JetStream client's asynchronous publish); sync64: Publish from 64
// goroutines at once, as concurrent admin requests would. Reports
// acknowledged publishes per second of wall time, and the process's
// CPU time per publish.
func BenchmarkHistoryPublish(b *testing.B) {
	cfg := Config{Channels: []ChannelConfig{{Match: "*", History: HistoryConfig{Size: 1000}}}}
	if s := os.Getenv("LWSGATE_BENCH_SYNC"); s != "" {
		cfg.NATS.Embedded.Sync = s // "always": fsync before each acknowledgement
	}
	e, _ := startSingle(b, cfg)
	m := Message{Data: make([]byte, 64)}
	report := func(b *testing.B, n int64, start time.Time, cpu0 time.Duration) {
		b.ReportMetric(float64(n)/time.Since(start).Seconds(), "acks/s")
		b.ReportMetric(float64(cpuTime()-cpu0)/float64(n), "cpu-ns/publish")
	}
	b.Run("async", func(b *testing.B) {
		sem := make(chan struct{}, 4096)
		var failed atomic.Int64
		var n int64
		start, cpu0 := time.Now(), cpuTime()
		for b.Loop() {
			sem <- struct{}{}
			e.PublishAsync(fmt.Sprint("bench:", n%16), m, func(_ Position, err error) {
				if err != nil {
					failed.Add(1)
				}
				<-sem
			})
			n++
		}
		for range cap(sem) {
			sem <- struct{}{}
		}
		if failed.Load() > 0 {
			b.Fatalf("%d publishes failed", failed.Load())
		}
		report(b, n, start, cpu0)
	})
	b.Run("sync64", func(b *testing.B) {
		ctx := stepCtx(b)
		var n atomic.Int64
		start, cpu0 := time.Now(), cpuTime()
		b.SetParallelism(32) // 64 goroutines on 2 CPUs
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				i := n.Add(1)
				if _, err := e.Publish(ctx, fmt.Sprint("bench:", i%16), m); err != nil {
					b.Error(err)
					return
				}
			}
		})
		report(b, n.Load(), start, cpu0)
	})
}

// BenchmarkResume100: a member comes back to a history channel having
// missed 100 messages, on a node of three (R3 streams) that has the
// channel's interest already; the time from Resume to its join with
// the 100 messages. Reports p50 and p99.
func BenchmarkResume100(b *testing.B) {
	hubs := map[string]*hub{}
	c := startCluster(b, 3, testGrace, func(nd *tnode) {
		hubs[nd.name] = newHub()
		nd.deliver = hubs[nd.name].deliver
		nd.cfg.Channels = []ChannelConfig{{Match: "*", History: HistoryConfig{Size: 1000}}}
	})
	n1, n2 := c.nodes[0], c.nodes[1]
	const ch = "resume"
	subscribe(b, n2.eng, hubs[n2.name], newMember("anchor", ch), Position{})
	ps := publishN(b, n1.eng, ch, "r", 101)
	since := ps[0]
	var lat []time.Duration
	cpu0 := cpuTime()
	for b.Loop() {
		m := newMember("r", ch)
		start := time.Now()
		cu := subscribe(b, n2.eng, hubs[n2.name], m, since)
		lat = append(lat, time.Since(start))
		if !cu.Recovered || len(cu.Missed) != 100 {
			b.Fatalf("resume: recovered %v, %d missed", cu.Recovered, len(cu.Missed))
		}
		hubs[n2.name].leave(m)
	}
	cpu := cpuTime() - cpu0
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
	b.ReportMetric(float64(cpu.Microseconds())/float64(len(lat)), "cpu-µs/resume")
}
