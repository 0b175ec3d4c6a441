package interop

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"unicode/utf8"
)

// payload is one message a client sends, in a file the client reads; the
// echo must come back with the same type, length and SHA-256.
type payload struct {
	name   string // text-65536, binary-16777216...
	typ    string // text or binary
	size   int
	file   string
	sum    string // hex SHA-256
	splits []int  // where the fragments of a fragmented send begin
}

// The sizes each client sends: the edges of the 7-bit, 16-bit and 64-bit
// length encodings, 1 MiB (libwebsockets' buffers are far smaller), and
// 16 MiB, lwsgate's default max_message. maxMessage+1 must be refused.
const (
	maxMessage = 16 << 20
	mib        = 1 << 20
)

var sizes = []int{0, 1, 125, 126, 127, 65535, 65536, 65537, mib, maxMessage}

// payloads writes every payload into dir.
func payloads(t *testing.T, dir string) map[string]*payload {
	ps := map[string]*payload{}
	src := rand.NewChaCha8([32]byte{'l', 'w', 's'})
	r := rand.New(src)
	add := func(typ string, size int) {
		p := &payload{name: fmt.Sprintf("%s-%d", typ, size), typ: typ, size: size}
		var b []byte
		if typ == "text" {
			b = textBytes(r, size)
		} else {
			b = make([]byte, size)
			_, _ = src.Read(b) // ChaCha8 never fails
		}
		p.file = filepath.Join(dir, p.name)
		if err := os.WriteFile(p.file, b, 0o600); err != nil {
			t.Fatal(err)
		}
		s := sha256.Sum256(b)
		p.sum = hex.EncodeToString(s[:])
		if size == mib {
			p.splits = splits(b, typ)
		}
		ps[p.name] = p
	}
	for _, n := range sizes {
		add("text", n)
		add("binary", n)
	}
	add("binary", maxMessage+1)
	return ps
}

// textBytes is valid UTF-8 of exactly n bytes: mostly a small ASCII
// alphabet (so that it compresses, as text does), with one character in
// eight of two, three or four bytes, so that fragment and buffer
// boundaries fall inside characters. It never starts with "/" or "{": the
// default rules would take it as a command.
func textBytes(r *rand.Rand, n int) []byte {
	const ascii = "abcdefgh ijklmnop,.\n"
	wide := []rune{'é', 'ß', '€', '☃', '😀', '𝄞'}
	b := make([]byte, 0, n)
	for len(b) < n {
		c := rune(ascii[r.IntN(len(ascii))])
		if r.IntN(8) == 0 {
			c = wide[r.IntN(len(wide))]
		}
		if len(b)+utf8.RuneLen(c) > n {
			c = 'z'
		}
		b = utf8.AppendRune(b, c)
	}
	return b
}

// splits are the fragment boundaries of a fragmented send: tiny
// fragments first, then larger ones. In text each boundary is moved into
// the middle of the next multi-byte character, so that a receiver must
// check UTF-8 across fragments; binary has an empty fragment (two equal
// boundaries).
func splits(b []byte, typ string) []int {
	at := []int{1, 2, 3, 100, 4096, 70000, len(b) - 3}
	if typ == "binary" {
		return append([]int{1, 1}, at[1:]...)
	}
	prev := 0
	for i, p := range at {
		p = max(p, prev+1)
		for p < len(b)-1 && utf8.RuneStart(b[p]) {
			p++
		}
		at[i], prev = p, p
	}
	return at
}
