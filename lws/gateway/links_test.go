package gateway

import (
	"net"
	"testing"

	"github.com/stretchr/testify/assert"
)

// TestAddrString: addrString writes a TCP address as TCPAddr.String does.
func TestAddrString(t *testing.T) {
	for _, a := range []*net.TCPAddr{
		{IP: net.IPv4(127, 0, 0, 1), Port: 54321},
		{IP: net.IP{192, 0, 2, 7}, Port: 80},
		{IP: net.ParseIP("::ffff:192.0.2.7"), Port: 1},
		{IP: net.ParseIP("2001:db8::1"), Port: 443},
		{IP: net.ParseIP("fe80::1"), Port: 8090, Zone: "eth0"},
		{IP: net.IPv6zero, Port: 0},
		{Port: 8090},
	} {
		assert.Equal(t, a.String(), addrString(a), "%#v", a)
	}
	assert.Empty(t, addrString(nil))
	assert.Equal(t, "/tmp/s", addrString(&net.UnixAddr{Name: "/tmp/s", Net: "unix"}))
}
