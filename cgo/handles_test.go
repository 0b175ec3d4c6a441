package cgo

import (
	"sync"
	"testing"
)

func mustPanic(t *testing.T, what string, f func()) {
	t.Helper()
	defer func() {
		if recover() == nil {
			t.Errorf("%s did not panic", what)
		}
	}()
	f()
}

func TestHandles(t *testing.T) {
	live := LiveHandles()
	a, b := NewHandle("a"), NewHandle(42)
	if a == 0 || b == 0 || a == b {
		t.Fatalf("handles %#x, %#x: want two distinct non-zero", a, b)
	}
	if a.Value() != "a" || b.Value() != 42 {
		t.Fatalf("values %v, %v", a.Value(), b.Value())
	}
	if LiveHandles() != live+2 {
		t.Fatalf("LiveHandles %d, want %d", LiveHandles(), live+2)
	}
	a.Delete()
	// The slot is reused, under another generation: the stale handle
	// must not find the new value.
	c := NewHandle("c")
	if c == a {
		t.Fatalf("a deleted handle was handed out again: %#x", c)
	}
	if c.Value() != "c" {
		t.Fatalf("c.Value() = %v", c.Value())
	}
	mustPanic(t, "Value of a deleted handle", func() { a.Value() })
	mustPanic(t, "Delete of a deleted handle", func() { a.Delete() })
	mustPanic(t, "Value of handle 0", func() { Handle(0).Value() })
	mustPanic(t, "Value of a handle never made", func() { Handle(1<<31 + 1).Value() })
	b.Delete()
	c.Delete()
	if LiveHandles() != live {
		t.Fatalf("LiveHandles %d, want %d", LiveHandles(), live)
	}
}

func TestHandlesConcurrent(t *testing.T) {
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 3000 { // crosses chunk boundaries
				h := NewHandle(g*10000 + i)
				if h.Value() != g*10000+i {
					t.Errorf("handle %#x: value %v, want %d", h, h.Value(), g*10000+i)
					return
				}
				if i%3 != 0 {
					h.Delete()
				} else {
					defer h.Delete()
				}
			}
		}()
	}
	wg.Wait()
}

func BenchmarkHandleValue(b *testing.B) {
	hs := make([]Handle, 10000)
	for i := range hs {
		hs[i] = NewHandle(i)
	}
	defer func() {
		for _, h := range hs {
			h.Delete()
		}
	}()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		_ = hs[i%len(hs)].Value()
		i += 7919
	}
}
