package cgo

/*
#include <stdlib.h>
#include "shim.h"
*/
import "C"

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"unsafe"

	"github.com/lwsgate/lwsgate/callbacks"
)

// ContextInfo is what NewContext needs. The zero value of each field means
// "libwebsockets' choice" unless stated otherwise.
type ContextInfo struct {
	// Options are extra LWS_SERVER_OPTION_* bits for the context
	// (EXPLICIT_VHOSTS is always set: every vhost is made by NewVhost).
	Options uint64
	// TimeoutSecs bounds network round trips; lws defaults differ between
	// releases (5 s in 4.1, 15 s in 4.3), so callers should set it.
	TimeoutSecs int
	// FDLimitPerThread caps the fd table; 0 sizes it from the process limit.
	FDLimitPerThread int
	// ServiceBufferSize is pt_serv_buf_size (0: 4096).
	ServiceBufferSize int
	// MaxHTTPHeaderData is the buffer for one HTTP request's (or client
	// response's) headers, for every vhost: lws reads it from the context
	// only (0: 4096; at most 65535).
	MaxHTTPHeaderData int
	// MaxHTTPHeaderPool is the number of header buffers in use at once
	// (0: one per possible connection).
	MaxHTTPHeaderPool int
	// EventLoop is the loop the context runs on (0: LoopPoll).
	EventLoop EventLoop
}

// EventLoop is the event loop a context runs on.
type EventLoop int

const (
	// LoopPoll is libwebsockets' own loop, poll(2) over every descriptor
	// of the context at each pass.
	LoopPoll EventLoop = C.LWSGO_LOOP_POLL
	// LoopLibev is libev with its epoll backend, through libwebsockets'
	// libev support (see evloop.c).
	LoopLibev EventLoop = C.LWSGO_LOOP_LIBEV
)

// LibevPlugin is the file libwebsockets loads its libev support from, or
// "" when that support is built into the library (or absent).
func LibevPlugin() string { return C.GoString(C.lwsgo_libev_plugin_path()) }

// LibevPluginPackage is the Debian package that installs LibevPlugin.
const LibevPluginPackage = "libwebsockets-evlib-ev"

// CheckLibev reports why LoopLibev cannot be used, or nil.
func CheckLibev() error {
	if !libevBuilt {
		return errors.New("libwebsockets was built without libev (LWS_WITH_LIBEV)")
	}
	if p := LibevPlugin(); p != "" {
		f, err := os.Open(p)
		if err != nil {
			return fmt.Errorf("libwebsockets' libev plugin: %v (Debian: apt-get install %s)", err, LibevPluginPackage)
		}
		f.Close()
	}
	return nil
}

const libevBuilt = C.LWSGO_LIBEV_BUILT != 0

// VhostInfo describes one vhost, whichever constructor makes it: a listener
// (NewVhost), a server that listens nowhere (NewAdoptingVhost) or a vhost
// that only makes client connections (NewClientVhost). The zero value of
// each field means "libwebsockets' choice" unless stated otherwise.
type VhostInfo struct {
	// Index is reported back in callbacks.Event.Protocol as Index<<16|protocol.
	Index int
	Name  string // the vhost's name, for libwebsockets' logs
	Iface string // IP address or interface name; "" for all
	// Port is the listener's port (0: kernel-chosen). NewAdoptingVhost
	// and NewClientVhost set it themselves.
	Port int
	// Options are LWS_SERVER_OPTION_* bits that apply per vhost
	// (OptionDoSSLGlobalInit is needed for TLS, listener or client).
	Options uint64
	// CertPath, KeyPath and CAPath are PEM files for a TLS listener.
	CertPath, KeyPath, CAPath string
	// ClientCAPath verifies the servers of the vhost's client links ("":
	// the operating system's store); ClientCertPath and ClientKeyPath are
	// a client certificate for mutual TLS. libwebsockets keeps one client
	// TLS context per vhost, so each distinct setting needs a vhost.
	ClientCAPath, ClientCertPath, ClientKeyPath string
	// ALPN is the TLS ALPN list, e.g. "http/1.1".
	ALPN string
	// KeepaliveTimeout is the idle HTTP keep-alive time in seconds.
	KeepaliveTimeout int
	// HeaderTimeoutSecs bounds how long a connection may hold a header
	// buffer while its request's headers arrive (timeout_secs_ah_idle; 0:
	// 10).
	HeaderTimeoutSecs int
	// TimeoutSecs overrides the context's for this vhost.
	TimeoutSecs int
	// Protocols are the protocol names; at least one is required.
	// Protocols[0] also serves HTTP and WebSocket upgrades without a
	// subprotocol; a client vhost's links all bind to Protocols[0].
	Protocols []string
	// RxBufferSize and TxPacketSize are per protocol (0: lws defaults).
	RxBufferSize, TxPacketSize int
	// Compression makes a listener accept permessage-deflate (RFC 7692)
	// when a client offers it, and a client vhost's links offer it. It
	// needs CompressionAvailable.
	Compression bool
}

// CompressionAvailable reports whether the libwebsockets the binding is
// built against has permessage-deflate (it is compiled without extensions
// when LWS_WITHOUT_EXTENSIONS is set, the cmake default since 4.3).
func CompressionAvailable() bool { return C.lwsgo_compression_available() != 0 }

// NoListen is the Port of a vhost that only makes client connections.
const NoListen = C.CONTEXT_PORT_NO_LISTEN

// Option bits used by package lws.
const (
	OptionValidateUTF8        = C.LWS_SERVER_OPTION_VALIDATE_UTF8
	OptionDoSSLGlobalInit     = C.LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT
	OptionDisableIPv6         = C.LWS_SERVER_OPTION_DISABLE_IPV6
	OptionHTTPHeadersSecurity = C.LWS_SERVER_OPTION_HTTP_HEADERS_SECURITY_BEST_PRACTICES_ENFORCE
	OptionJustUseRawOrigin    = C.LWS_SERVER_OPTION_JUST_USE_RAW_ORIGIN
	OptionRequireClientCert   = C.LWS_SERVER_OPTION_REQUIRE_VALID_OPENSSL_CLIENT_CERT
)

// Context is one lws_context and the Go side of its callbacks.
//
// Concurrency: NewContext, NewVhost, Service, Destroy and every WSI method
// must be called on the one goroutine that created the context (the service
// goroutine, locked to its OS thread). Wake and SetReportAll may be called
// from any goroutine.
type Context struct {
	cd *C.lwsgo_ctx
	h  Handle
	d  callbacks.Dispatcher

	evs   [8]callbacks.Event // reused events, one per nesting level
	depth int

	mu   sync.RWMutex // guards dead against Wake
	dead bool

	cmem    []unsafe.Pointer // C memory kept for lws until destroy
	vhosts  []*C.lwsgo_vhost
	retries map[[2]int]*C.lws_retry_bo_t // client idle policies, in cmem
}

// NewContext creates an lws_context whose every callback goes to d.
// It must run on the service goroutine (see Context).
func NewContext(info ContextInfo, d callbacks.Dispatcher) (*Context, error) {
	c := &Context{d: d, cd: C.lwsgo_ctx_new()}
	if c.cd == nil {
		return nil, errors.New("lws: out of memory")
	}
	c.h = NewHandle(c)
	c.cd.h = C.uintptr_t(c.h)

	ci := C.lwsgo_ctx_info{
		options:             C.uint64_t(info.Options),
		timeout_secs:        C.int(info.TimeoutSecs),
		fd_limit_per_thread: C.int(info.FDLimitPerThread),
		pt_serv_buf_size:    C.int(info.ServiceBufferSize),

		max_http_header_data: C.ushort(info.MaxHTTPHeaderData),
		max_http_header_pool: C.ushort(info.MaxHTTPHeaderPool),
		event_loop:           C.int(info.EventLoop),
	}
	var rc C.int
	lines := captureErrors(func() { rc = C.lwsgo_ctx_create(c.cd, &ci) })
	if rc != 0 {
		c.h.Delete()
		C.lwsgo_ctx_free(c.cd)
		switch rc {
		case C.LWSGO_ERR_NO_LIBEV, C.LWSGO_ERR_NO_PLUGIN:
			return nil, fmt.Errorf("lws: event loop libev: %v", CheckLibev())
		case C.LWSGO_ERR_EVLOOP:
			return nil, errors.New("lws: event loop libev: ev_loop_new(EVBACKEND_EPOLL) failed")
		}
		return nil, fmt.Errorf("lws: lws_create_context failed%s", detail(lines))
	}
	return c, nil
}

func detail(lines []string) string {
	if len(lines) == 0 {
		return ""
	}
	return ": " + strings.Join(lines, "; ")
}

func (c *Context) cstr(s string) *C.char {
	if s == "" {
		return nil
	}
	p := C.CString(s)
	c.cmem = append(c.cmem, unsafe.Pointer(p))
	return p
}

// VhostID names a vhost made by NewAdoptingVhost or NewClientVhost.
type VhostID int

// NewVhost creates a listener and returns the port it listens on. On the
// service goroutine only.
func (c *Context) NewVhost(v VhostInfo) (port int, err error) {
	id, err := c.addVhost(v, "lws_create_vhost")
	if err != nil {
		return 0, err
	}
	return int(C.lwsgo_vhost_port(c.vhosts[id])), nil
}

// NewAdoptingVhost creates a server vhost that listens nowhere: its
// connections are sockets the caller accepted and hands over with
// AdoptSocket (v.Port is ignored). On the service goroutine only.
func (c *Context) NewAdoptingVhost(v VhostInfo) (VhostID, error) {
	v.Port = C.CONTEXT_PORT_NO_LISTEN_SERVER
	return c.addVhost(v, "lws_create_vhost")
}

// NewClientVhost creates a vhost that only makes client connections
// (v.Port is ignored). On the service goroutine only.
func (c *Context) NewClientVhost(v VhostInfo) (VhostID, error) {
	v.Port = NoListen
	return c.addVhost(v, "client vhost")
}

// AdoptSocket hands the connected socket fd to vhost vh (made by
// NewAdoptingVhost) as if its listener had accepted it: an HTTP server
// connection, TLS if the vhost has a certificate. libwebsockets owns fd
// from then on, and closes it itself when it fails, which AdoptSocket
// reports as the zero WSI. The callbacks of the new connection
// (WSI_CREATE...) run before it returns. On the service goroutine only.
func (c *Context) AdoptSocket(vh VhostID, fd int) WSI {
	return WSI(C.lwsgo_adopt_socket(c.vhosts[vh], C.int(fd)))
}

// addVhost fills the one C struct every vhost is made from; what names
// the vhost in an error.
func (c *Context) addVhost(v VhostInfo, what string) (VhostID, error) {
	if len(v.Protocols) == 0 {
		return 0, errors.New("lws: vhost needs at least one protocol")
	}
	names := (*[1 << 16]*C.char)(C.calloc(C.size_t(len(v.Protocols)), C.size_t(unsafe.Sizeof((*C.char)(nil)))))
	c.cmem = append(c.cmem, unsafe.Pointer(names))
	for i, p := range v.Protocols {
		names[i] = c.cstr(p)
	}
	vi := C.lwsgo_vhost_info{
		index:                C.int(v.Index),
		name:                 c.cstr(v.Name),
		iface:                c.cstr(v.Iface),
		port:                 C.int(v.Port),
		options:              C.uint64_t(v.Options),
		cert_path:            c.cstr(v.CertPath),
		key_path:             c.cstr(v.KeyPath),
		ca_path:              c.cstr(v.CAPath),
		alpn:                 c.cstr(v.ALPN),
		client_ca_path:       c.cstr(v.ClientCAPath),
		client_cert_path:     c.cstr(v.ClientCertPath),
		client_key_path:      c.cstr(v.ClientKeyPath),
		keepalive_timeout:    C.uint(v.KeepaliveTimeout),
		timeout_secs_ah_idle: C.uint(v.HeaderTimeoutSecs),
		timeout_secs:         C.int(v.TimeoutSecs),
		protocol_names:       (**C.char)(unsafe.Pointer(names)),
		nprotocols:           C.int(len(v.Protocols)),
		rx_buffer_size:       C.size_t(v.RxBufferSize),
		tx_packet_size:       C.size_t(v.TxPacketSize),
		compression:          b2i(v.Compression),
	}
	var vh *C.lwsgo_vhost
	lines := captureErrors(func() { vh = C.lwsgo_vhost_create(c.cd, &vi) })
	if vh == nil {
		return 0, fmt.Errorf("lws: %s %q failed%s", what, v.Name, detail(lines))
	}
	c.vhosts = append(c.vhosts, vh)
	return VhostID(len(c.vhosts) - 1), nil
}

// SetReportAll chooses whether the callbacks that only matter to a reason
// log cross into Go: spare EVENT_WAIT_CANCELLED broadcasts, GET_THREAD_ID,
// and the reasons no Go code acts on (see lwsgo_go_ignores in shim.c).
// When they do not, a Dispatcher that is a callbacks.SkipCounter gets
// their counts.
func (c *Context) SetReportAll(on bool) {
	v := C.int(0)
	if on {
		v = 1
	}
	C.lwsgo_set_report_all(c.cd, v)
}

// Service runs one pass of the event loop (lws_service, or one iteration
// of the libev loop): it waits for the next event or lws timer and handles
// what is ready. It returns an error when libwebsockets reports the
// context unusable.
func (c *Context) Service() error {
	n := C.lwsgo_service(c.cd)
	c.collectSkipped()
	if n < 0 {
		return errors.New("lws: lws_service failed")
	}
	return nil
}

// collectSkipped hands the counts of the callbacks the C layer answered
// itself to the Dispatcher, if it counts them. It reads lwsgo_ctx
// directly: the C layer writes those fields on this thread only.
func (c *Context) collectSkipped() {
	if c.cd.nskipped == 0 {
		return
	}
	c.cd.nskipped = 0
	sc, _ := c.d.(callbacks.SkipCounter)
	for i := range c.cd.skipped {
		if n := c.cd.skipped[i]; n > 0 {
			c.cd.skipped[i] = 0
			if sc != nil {
				sc.Skipped(callbacks.Reason(i), uint32(n))
			}
		}
	}
}

// Wake makes a blocked Service return soon, with an EVENT_WAIT_CANCELLED
// callback flagged callbacks.Wake. Safe from any goroutine, and a no-op
// after Destroy.
func (c *Context) Wake() {
	c.mu.RLock()
	if !c.dead {
		C.lwsgo_wake(c.cd)
	}
	c.mu.RUnlock()
}

// Destroy destroys the lws_context (delivering the closing callbacks of every
// live connection and vhost synchronously) and frees everything NewContext
// and NewVhost allocated. On the service goroutine only.
func (c *Context) Destroy() {
	c.mu.Lock()
	if c.dead {
		c.mu.Unlock()
		return
	}
	c.dead = true
	c.mu.Unlock()
	C.lwsgo_ctx_destroy(c.cd)
	c.collectSkipped()
	for _, v := range c.vhosts {
		C.lwsgo_vhost_free(v)
	}
	c.vhosts = nil
	for _, p := range c.cmem {
		C.free(p)
	}
	c.cmem = nil
	c.retries = nil
	c.h.Delete()
	C.lwsgo_ctx_free(c.cd)
	c.cd = nil
}

// dispatch turns one callback into an Event for the Dispatcher. Events are
// reused per nesting level: lws calls back re-entrantly from inside some
// calls Go makes (lws_write, lws_set_timeout, lws_context_destroy).
func (c *Context) dispatch(wsi, user uintptr, r callbacks.Reason, in unsafe.Pointer,
	length, dlen int, flags callbacks.Flags, proto int) int {
	var ev *callbacks.Event
	if c.depth < len(c.evs) {
		ev = &c.evs[c.depth]
	} else {
		ev = new(callbacks.Event)
	}
	c.depth++
	defer func() { c.depth-- }()
	*ev = callbacks.Event{Reason: r, WSI: wsi, User: user, Protocol: proto, Len: length, Flags: flags}
	if in != nil && dlen > 0 && r.HasBuffer() {
		ev.Data = unsafe.Slice((*byte)(in), dlen)
	}
	ret := c.d.Dispatch(ev)
	ev.Data = nil
	return ret
}
