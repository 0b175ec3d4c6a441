package main

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"
)

// TestWatchWorkers: the split comes from the reads with every link open:
// links from the first of them, messages between the first and the last;
// reads while links were still opening or already closing are left out.
func TestWatchWorkers(t *testing.T) {
	var n atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		i := n.Add(1)
		links := [2]int{6, 4}
		switch {
		case i == 1: // opening
			links = [2]int{2, 1}
		case i > 6: // closing
			links = [2]int{1, 0}
		}
		fmt.Fprintf(w, "# HELP lwsgate_worker_links x\nlwsgate_worker_links{worker=\"0\"} %d\nlwsgate_worker_links{worker=\"1\"} %d\n", links[0], links[1])
		fmt.Fprintf(w, "lwsgate_worker_messages_total{worker=\"0\"} %d\nlwsgate_worker_messages_total{worker=\"1\"} %d\nlwsgate_links 10\n", 100*i, 50*i)
	}))
	defer srv.Close()
	split := watchWorkers(srv.URL)
	for n.Load() < 9 {
		time.Sleep(10 * time.Millisecond)
	}
	got, err := split()
	if err != nil {
		t.Fatal(err)
	}
	// Reads 2 to 6 had all 10 links: messages from read 2 to read 6.
	want := []workerShare{{"0", 6, 400}, {"1", 4, 200}}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("split = %v, want %v", got, want)
	}
	if b := busiest([]float64{6, 4}); b != 1.2 {
		t.Fatalf("busiest(6, 4) = %v, want 1.2", b)
	}
}

// TestWatchWorkersNoLinks: a server that never showed a link open is an
// error, not an even split.
func TestWatchWorkersNoLinks(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, "lwsgate_worker_links{worker=\"0\"} 0\n")
	}))
	defer srv.Close()
	split := watchWorkers(srv.URL)
	time.Sleep(150 * time.Millisecond)
	if got, err := split(); err == nil {
		t.Fatalf("split = %v, want an error", got)
	}
}
