package cgo

/*
#include <stdlib.h>
#include "shim.h"
*/
import "C"

import (
	"errors"
	"unsafe"
)

// ConnectInfo describes one client connection.
type ConnectInfo struct {
	Vhost VhostID
	// Address is an IP literal: resolve names before, off the service
	// goroutine, so libwebsockets never blocks in getaddrinfo.
	Address string
	Port    int
	// Path is the request target (path and query).
	Path string
	// Host is the Host header and the TLS server name.
	Host   string
	Origin string
	// Method is the HTTP method; "" makes a WebSocket connection.
	Method string
	// Protocols are the offered WebSocket subprotocols, comma-separated.
	Protocols string
	ALPN      string
	TLS       bool
	// Insecure skips every certificate check (tests only).
	Insecure bool
	// Handle is stored in the wsi's opaque user data before the first
	// callback.
	Handle Handle
	// Headers are extra request headers, "name\x00value\x00" pairs.
	Headers []byte
	// Body says an HTTP request body follows: libwebsockets then calls
	// back CLIENT_HTTP_WRITEABLE until WSI.ClientBodyDone.
	Body bool
	// PingSecs and HangupSecs are the link's idle policy (0 both: the
	// vhost's).
	PingSecs, HangupSecs int
}

// Client is the C memory of one client connection (see lwsgo_client in
// shim.h). Free it once its wsi is destroyed, or when Connect returned 0
// and no WSI_DESTROY came. Service goroutine only, like every lws call.
type Client struct{ p *C.lwsgo_client }

// Free releases the client's C memory. Calling it twice is a no-op.
func (cl *Client) Free() {
	if cl != nil && cl.p != nil {
		C.lwsgo_client_free(cl.p)
		cl.p = nil
	}
}

// Connect starts a client connection. On the service goroutine only.
// libwebsockets may call back re-entrantly before Connect returns,
// including with CLIENT_CONNECTION_ERROR and WSI_DESTROY. A 0 WSI means the
// connection failed at once; cl is still returned (and must be freed).
func (c *Context) Connect(ci ConnectInfo) (WSI, *Client, error) {
	if int(ci.Vhost) < 0 || int(ci.Vhost) >= len(c.vhosts) {
		return 0, nil, errors.New("lws: Connect: unknown vhost")
	}
	var hp *C.char
	if len(ci.Headers) > 0 {
		hp = (*C.char)(unsafe.Pointer(&ci.Headers[0]))
	}
	cl := &Client{p: C.lwsgo_client_new(hp, C.int(len(ci.Headers)), b2i(ci.Body))}
	if cl.p == nil {
		return 0, nil, errors.New("lws: out of memory")
	}
	// The strings are copied into the wsi by lws_client_connect_via_info.
	var tmp []unsafe.Pointer
	cs := func(s string) *C.char {
		if s == "" {
			return nil
		}
		p := C.CString(s)
		tmp = append(tmp, unsafe.Pointer(p))
		return p
	}
	defer func() {
		for _, p := range tmp {
			C.free(p)
		}
	}()
	info := C.lwsgo_connect_info{
		vh:        c.vhosts[ci.Vhost],
		address:   cs(ci.Address),
		port:      C.int(ci.Port),
		path:      cs(ci.Path),
		host:      cs(ci.Host),
		origin:    cs(ci.Origin),
		method:    cs(ci.Method),
		protocols: cs(ci.Protocols),
		alpn:      cs(ci.ALPN),
		tls:       b2i(ci.TLS),
		insecure:  b2i(ci.Insecure),
		h:         C.uintptr_t(ci.Handle),
		cl:        cl.p,
		retry:     c.retry(ci.PingSecs, ci.HangupSecs),
	}
	if info.path == nil {
		info.path = cs("/")
	}
	w := WSI(C.lwsgo_client_connect(c.cd, &info))
	return w, cl, nil
}

// retry returns the C retry policy for a ping/hangup pair, made once per
// pair and kept until Destroy (libwebsockets keeps the pointer per wsi).
func (c *Context) retry(ping, hangup int) *C.lws_retry_bo_t {
	if ping == 0 && hangup == 0 {
		return nil
	}
	key := [2]int{ping, hangup}
	if r, ok := c.retries[key]; ok {
		return r
	}
	r := C.lwsgo_retry_new(C.uint16_t(ping), C.uint16_t(hangup))
	if r == nil {
		return nil
	}
	if c.retries == nil {
		c.retries = map[[2]int]*C.lws_retry_bo_t{}
	}
	c.retries[key] = r
	c.cmem = append(c.cmem, unsafe.Pointer(r))
	return r
}

// ClientResponse reads the status code and headers of the response a client
// link received into buf (grown if needed) as NUL-separated strings: the
// status in decimal, then name, value pairs (canonical names; custom as for
// HTTPRequest).
func (w WSI) ClientResponse(buf []byte, custom string) ([]byte, error) {
	return w.headerInfo(buf, custom, true)
}

// ClientBodyDone tells libwebsockets the request body is complete.
func (w WSI) ClientBodyDone() { C.lwsgo_client_body_done(C.uintptr_t(w)) }
