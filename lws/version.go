package lws

import "github.com/lwsgate/lwsgate/cgo"

// LinkInfo says how the binary was linked against libwebsockets and which
// headers it was compiled against.
const LinkInfo = cgo.LinkInfo

// Version returns the version of the libwebsockets library in use.
func Version() string { return cgo.Version() }
