package gateway_test

import (
	"fmt"

	"github.com/lwsgate/lwsgate/lws/gateway"
)

func ExampleParseLinkTypes() {
	links, err := gateway.ParseLinkTypes("ws,httplisten")
	fmt.Println(links, err)
	_, err = gateway.ParseLinkTypes("udp")
	fmt.Println(err)
	// Output:
	// [tcplisten httplisten] <nil>
	// unknown link type "udp" (want tcplisten, httplisten)
}
