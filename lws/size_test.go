package lws

import (
	"testing"
	"unsafe"
)

// TestLinkStateSize: an idle link's Go state is mostly its rec and its
// Conn (see Conn's doc). A field that takes either past 256 bytes moves it
// up a malloc size class: 32 bytes more for every idle link.
func TestLinkStateSize(t *testing.T) {
	if n := unsafe.Sizeof(rec{}); n > 256 {
		t.Errorf("rec is %d bytes, more than 256", n)
	}
	if n := unsafe.Sizeof(Conn{}); n > 256 {
		t.Errorf("Conn is %d bytes, more than 256", n)
	}
}
