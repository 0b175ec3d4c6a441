package main

import (
	"bufio"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// How a server with workers spread its links: the balance scenarios read
// lwsgate's per-worker gauges from /metrics while the load runs.

// workerShare is one worker's part of a balance run.
type workerShare struct {
	Worker   string  `json:"worker"`
	Links    float64 `json:"links"`    // open while every link was
	Messages float64 `json:"messages"` // received over that window
}

// workerScrape is one read of the per-worker series.
type workerScrape struct {
	links, msgs map[string]float64
}

func (w workerScrape) total() (n float64) {
	for _, v := range w.links {
		n += v
	}
	return n
}

// watchWorkers reads url every 100 ms until the returned function is
// called, which gives the split: links from the first read with the most
// links open, messages as the difference between the first and last reads
// with that many (the window in which every link was open and sending).
func watchWorkers(url string) func() ([]workerShare, error) {
	var (
		mu    sync.Mutex
		reads []workerScrape
		last  error
	)
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		client := &http.Client{Timeout: time.Second}
		for {
			w, err := scrapeWorkers(client, url)
			mu.Lock()
			if err != nil {
				last = err
			} else {
				reads = append(reads, w)
			}
			mu.Unlock()
			select {
			case <-stop:
				return
			case <-time.After(100 * time.Millisecond):
			}
		}
	}()
	return func() ([]workerShare, error) {
		close(stop)
		<-done
		mu.Lock()
		defer mu.Unlock()
		return splitOf(reads, last)
	}
}

// splitOf picks the reads in which the most links were open.
func splitOf(reads []workerScrape, last error) ([]workerShare, error) {
	most := 0.0
	for _, r := range reads {
		most = max(most, r.total())
	}
	var first, end *workerScrape
	for i := range reads {
		if reads[i].total() == most {
			if first == nil {
				first = &reads[i]
			}
			end = &reads[i]
		}
	}
	if first == nil || most == 0 {
		if last != nil {
			return nil, last
		}
		return nil, fmt.Errorf("no read of lwsgate_worker_links saw a link open (%d reads)", len(reads))
	}
	var out []workerShare
	for w, n := range first.links {
		out = append(out, workerShare{Worker: w, Links: n, Messages: end.msgs[w] - first.msgs[w]})
	}
	slices.SortFunc(out, func(a, b workerShare) int { return strings.Compare(a.Worker, b.Worker) })
	return out, nil
}

// scrapeWorkers reads lwsgate_worker_links and
// lwsgate_worker_messages_total from a Prometheus text page.
func scrapeWorkers(client *http.Client, url string) (workerScrape, error) {
	w := workerScrape{links: map[string]float64{}, msgs: map[string]float64{}}
	resp, err := client.Get(url)
	if err != nil {
		return w, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return w, fmt.Errorf("%s: %s", url, resp.Status)
	}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		name, rest, ok := strings.Cut(sc.Text(), `{worker="`)
		if !ok {
			continue
		}
		worker, val, ok := strings.Cut(rest, `"} `)
		if !ok {
			continue
		}
		v, err := strconv.ParseFloat(strings.TrimSpace(val), 64)
		if err != nil {
			return w, fmt.Errorf("%s: %q: %w", url, sc.Text(), err)
		}
		switch name {
		case "lwsgate_worker_links":
			w.links[worker] = v
		case "lwsgate_worker_messages_total":
			w.msgs[worker] = v
		}
	}
	return w, sc.Err()
}
