package testutil

import (
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestBuffer: concurrent writes all land, and String reads while they go on
// (go test -race checks the locking).
func TestBuffer(t *testing.T) {
	var b Buffer
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 100 {
				_, _ = b.Write([]byte("x"))
				_ = b.String()
			}
		})
	}
	wg.Wait()
	if n := len(b.String()); n != 800 {
		t.Fatalf("%d bytes, want 800", n)
	}
	p := b.Bytes()
	p[0] = 'y'
	if b.String()[0] != 'x' {
		t.Error("Bytes is not a copy")
	}
}

// TestPKI: each certificate verifies, or fails to, as its name says.
func TestPKI(t *testing.T) {
	p, err := NewPKI(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	roots := p.Pool()
	inter := x509.NewCertPool()
	inter.AddCert(load(t, p.Dir+"/int.pem")[0])
	verify := func(file, name string, usage x509.ExtKeyUsage) error {
		_, err := load(t, file)[0].Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, DNSName: name, KeyUsages: []x509.ExtKeyUsage{usage}})
		return err
	}
	for _, tc := range []struct {
		file, name string
		usage      x509.ExtKeyUsage
		ok         bool
	}{
		{p.ServerCert, "localhost", x509.ExtKeyUsageServerAuth, true},
		{p.ServerCert, "127.0.0.1", x509.ExtKeyUsageServerAuth, true},
		{p.ServerCert, "::1", x509.ExtKeyUsageServerAuth, true},
		{p.ExpiredChain, "localhost", x509.ExtKeyUsageServerAuth, false},
		{p.WrongNameChain, "localhost", x509.ExtKeyUsageServerAuth, false},
		{p.WrongNameChain, "wrong.example", x509.ExtKeyUsageServerAuth, true},
		{p.SelfSigned, "localhost", x509.ExtKeyUsageServerAuth, false},
		{p.ClientCert, "", x509.ExtKeyUsageClientAuth, true},
	} {
		if err := verify(tc.file, tc.name, tc.usage); (err == nil) != tc.ok {
			t.Errorf("%s for %q: %v, want ok %v", tc.file, tc.name, err, tc.ok)
		}
	}
	if got := len(load(t, p.ServerChain)); got != 2 {
		t.Errorf("chain.pem holds %d certificates, want 2", got)
	}
}

// TestSelfSigned: the certificate and key go together and the pool trusts
// the certificate for 127.0.0.1 and localhost, now.
func TestSelfSigned(t *testing.T) {
	c, err := SelfSigned(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	leaf := c.Pair.Leaf
	for _, name := range []string{"127.0.0.1", "localhost"} {
		if _, err := leaf.Verify(x509.VerifyOptions{Roots: c.Pool, DNSName: name, CurrentTime: time.Now()}); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	if got := load(t, c.CertFile)[0]; !got.Equal(leaf) {
		t.Error("cert.pem is not the key pair's certificate")
	}
}

func load(t *testing.T, file string) []*x509.Certificate {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var certs []*x509.Certificate
	for {
		var blk []byte
		blk, b = pemNext(b)
		if blk == nil {
			return certs
		}
		c, err := x509.ParseCertificate(blk)
		if err != nil {
			t.Fatal(err)
		}
		certs = append(certs, c)
	}
}

// pemNext returns the DER bytes of the first PEM block of b and the rest.
func pemNext(b []byte) ([]byte, []byte) {
	blk, rest := pem.Decode(b)
	if blk == nil {
		return nil, nil
	}
	return blk.Bytes, rest
}

// CheckHistory finds each fault the history checkers rely on it for,
// and passes a subscriber that got what it must.
func TestCheckHistory(t *testing.T) {
	acked := []uint64{3, 4, 6, 9}
	d := func(o uint64) Delivered { return Delivered{Offset: o, Data: fmt.Sprint("m", o)} }
	cases := []struct {
		name  string
		start uint64
		got   []Delivered
		want  string // a substring of the one fault; "" for none
	}{
		{"all after its start", 3, []Delivered{d(4), d(6), d(9)}, ""},
		{"one missed", 0, []Delivered{d(3), d(6), d(9)}, "misses 1 of 4 acknowledged offsets: [4]"},
		{"out of order", 3, []Delivered{d(4), d(9), d(6), d(9)}, "offset 6 after 9"},
		{"never acknowledged", 3, []Delivered{d(4), d(5), d(6), d(9)}, "got offset 5"},
		{"stored twice", 3, []Delivered{d(4), d(6), {Offset: 9, Data: "m6"}}, `got "m6" twice`},
	}
	for _, c := range cases {
		bad := CheckHistory(acked, c.start, c.got)
		switch {
		case c.want == "" && len(bad) > 0:
			t.Errorf("%s: %v", c.name, bad)
		case c.want != "" && (len(bad) == 0 || !strings.Contains(strings.Join(bad, "; "), c.want)):
			t.Errorf("%s: %v, want %q", c.name, bad, c.want)
		}
	}
}

// TestFreePorts: the ports are distinct, bindable and below the kernel's
// ephemeral range, where no outgoing connection takes them.
func TestFreePorts(t *testing.T) {
	got := FreePorts(t, 5)
	seen := map[string]bool{}
	for _, a := range got {
		if seen[a] {
			t.Fatalf("%s twice in %v", a, got)
		}
		seen[a] = true
		_, p, err := net.SplitHostPort(a)
		if err != nil {
			t.Fatal(err)
		}
		if n, _ := strconv.Atoi(p); n < 10000 || n >= ephemeralLow() {
			t.Errorf("%s: want a port in 10000-%d", a, ephemeralLow()-1)
		}
		ln, err := net.Listen("tcp", a)
		if err != nil {
			t.Fatalf("%s cannot be bound: %v", a, err)
		}
		ln.Close()
	}
}
