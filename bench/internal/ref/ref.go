// Package ref holds what the Go reference servers of the benchmark harness
// share: the createtoken answer every server gives, and how they start.
package ref

import (
	"bytes"
	"flag"
	"fmt"
	"net"
	"os"
)

// CreateTokenPath is the HTTP POST the harness measures.
const CreateTokenPath = "/v1/api/createtoken"

// Reply is the answer to a createtoken body, the same in every reference
// server (and in bench/servers/lwsecho.c): {"code":0,"token":"native-<id>"}
// where id is the body's "RequestId" found by a crude scan (no JSON
// parser), "0" when there is none. lwsgate itself signs a real JWT.
func Reply(body []byte) []byte {
	id := []byte("0")
	if i := bytes.Index(body, []byte(`"RequestId"`)); i >= 0 {
		s := body[i+len(`"RequestId"`):]
		s = bytes.TrimLeft(s, ` :"`)
		if j := bytes.IndexByte(s, '"'); j > 0 {
			id = s[:min(j, 64)]
		} else if j < 0 && len(s) > 0 {
			id = s[:min(len(s), 64)]
		}
	}
	out := make([]byte, 0, 48+len(id))
	out = append(out, `{"code":0,"token":"native-`...)
	out = append(out, id...)
	return append(out, `"}`...)
}

// Listen parses -listen (default 127.0.0.1:8090), listens, and prints
// "listening on ADDR" as the C servers do.
func Listen() net.Listener {
	addr := flag.String("listen", "127.0.0.1:8090", "address to listen on")
	flag.Parse()
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Println("listening on", ln.Addr())
	return ln
}
