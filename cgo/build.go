package cgo

// Every #cgo directive of the module lives here.
//
// libwebsockets is found with pkg-config (Debian: libwebsockets-dev, which
// pulls in libssl-dev). libcrypto is linked directly because the C layer
// reads OpenSSL's certificate verification result to say why a TLS
// handshake failed. libev is linked for the loop the binding runs
// libwebsockets' libev support on (see lwsgo_ctx_create; Debian:
// libev-dev, which libwebsockets-dev depends on). The C layer is compiled
// with warnings as errors.

/*
#cgo pkg-config: libwebsockets libcrypto
#cgo LDFLAGS: -lev
#cgo CFLAGS: -Wall -Wextra -Werror -Wno-unused-parameter -std=gnu11
#include "shim.h"
*/
import "C"

// LinkInfo says how this binary was linked against libwebsockets and which
// headers it was compiled against.
const LinkInfo = "dynamic via pkg-config libwebsockets, compiled against headers " + C.LWS_LIBRARY_VERSION

// HeaderVersionNumber is LWS_LIBRARY_VERSION_NUMBER of the compile-time headers
// (major*1000000 + minor*1000 + patch).
const HeaderVersionNumber = C.LWS_LIBRARY_VERSION_MAJOR*1000000 + C.LWS_LIBRARY_VERSION_MINOR*1000 + C.LWS_LIBRARY_VERSION_PATCH

// Version returns the version string of the libwebsockets library loaded at
// run time (lws_get_library_version).
func Version() string { return C.GoString(C.lws_get_library_version()) }

// Pre is LWS_PRE: the headroom a WebSocket frame needs before its payload.
const Pre = C.LWS_PRE
