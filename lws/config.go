package lws

import (
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/lwsgate/lwsgate/cgo"
)

// Config configures a Context. A nil *Config means all defaults; the zero
// value of each field is documented on it. New never modifies the caller's
// Config.
type Config struct {
	// Listeners are the server endpoints, one libwebsockets vhost each.
	// Empty: the context listens nowhere.
	Listeners []Listener

	// Logger receives the binding's log records and libwebsockets' own log
	// lines (at Debug for lws info/notice, Warn, Error). nil: slog.Default().
	Logger *slog.Logger

	// Trace, when non-nil, receives one reason-log line per libwebsockets
	// callback, in the format of callbacks.AppendTraceLine:
	//	[2026-11-24 10:05:47.123][DEBUG] cb ctx:1 wsi:7 reason:6 LWS_CALLBACK_RECEIVE
	// Lines are buffered and written once per service-loop pass, from the
	// service goroutine: a slow writer slows every link. nil: no reason log.
	Trace io.Writer

	// LinkTrace is how many of its last callbacks each link remembers for
	// Context.LinkTrace: a per-link reason log on demand. 0: none.
	// Unless Trace is set too, it holds the callbacks that reach Go:
	// those the binding acts on, and the WRITEABLE callbacks in which the
	// C layer writes a message Go handed over. The C layer answers the
	// rest itself (HTTP_BIND_PROTOCOL and HTTP_DROP_PROTOCOL,
	// FILTER_HTTP_CONNECTION, poll-fd changes...), which ReasonCounts
	// still counts. The entries of one service pass share a clock read,
	// 16 at most: an entry's time may be early by what the callbacks
	// before it in its pass took.
	LinkTrace int

	// NetworkTimeout bounds each network step libwebsockets waits on, such as
	// a handshake or a close acknowledgement (timeout_secs). 0:
	// DefaultNetworkTimeout (15s).
	NetworkTimeout time.Duration

	// MaxHeaderBytes is the buffer for one HTTP request's request line and
	// headers (and for a client link's response headers), for every
	// listener: libwebsockets sizes it per context (a Listener's
	// MaxHeaderBytes can only raise it). A request with more is
	// closed by libwebsockets without a response (431 is not sent) and
	// without a callback, so it is not reported to OnLimit. The buffer is
	// allocated per connection only while it reads a request. 0:
	// DefaultMaxHeaderBytes (8192).
	// At most 65535.
	MaxHeaderBytes int

	// ShutdownTimeout is how long Close waits for links to finish their close
	// handshakes before it destroys the context anyway. 0:
	// DefaultShutdownTimeout (5s).
	ShutdownTimeout time.Duration

	// EventLoop is the event loop the service goroutine runs:
	// EventLoopLibev or EventLoopPoll (see them for the difference).
	// "": DefaultEventLoop (libev). New fails, naming the package to
	// install, when the loop is libev and libwebsockets' libev support is
	// missing.
	EventLoop EventLoop

	// DisableUTF8Validation turns off the check that text messages (and
	// close reasons) are valid UTF-8. By default the binding checks them
	// as they arrive and closes an offending link with 1007.
	DisableUTF8Validation bool

	// OnLinkOpen, when non-nil, is called on the service goroutine when a
	// link becomes known: a WebSocket link at ESTABLISHED, an HTTP link at
	// its first request. It must not block.
	OnLinkOpen func(Link)
	// OnLinkClose, when non-nil, is called on the service goroutine exactly
	// once for every link OnLinkOpen saw, when libwebsockets destroys it
	// (WSI_DESTROY, which unlike CLOSED is always delivered). It must not
	// block.
	OnLinkClose func(Link, CloseError)
	// OnLinkTrace, when non-nil and LinkTrace is set, is called on the
	// service goroutine just before OnLinkClose, for the same links, with
	// the link's last LinkTrace callbacks up to its WSI_DESTROY: the end
	// of its trace, which Context.LinkTrace no longer has once the link
	// is gone. The Trace is the callee's to keep. It must not block.
	OnLinkTrace func(Link, Trace)

	// OnLimit, when non-nil, is called on the service goroutine each time
	// a limit or an input check refuses something: listener is the
	// listener's Name ("" for a link this side dialled) and limit one of
	// the Limit* names (see LimitMaxLinks), for example to count them in
	// metrics. It must not block.
	OnLimit func(listener string, limit Limit)
}

// Accept says what a listener accepts: WebSocket links, HTTP requests, or
// both on one port.
type Accept uint8

// What a listener accepts.
const (
	// AcceptWebSocket: WebSocket upgrades, each a long-lived link
	// (Listener.Handler).
	AcceptWebSocket Accept = 1 << iota
	// AcceptHTTP: HTTP requests (Listener.HTTPHandler).
	AcceptHTTP
)

// String returns "ws", "http" or "ws,http", as LinkKind names them.
func (a Accept) String() string {
	var s []string
	if a&AcceptWebSocket != 0 {
		s = append(s, LinkWebSocket.String())
	}
	if a&AcceptHTTP != 0 {
		s = append(s, LinkHTTP.String())
	}
	return strings.Join(s, ",")
}

// SlowConsumerPolicy says what Send does when a link's send queue is full.
type SlowConsumerPolicy int

const (
	// RejectSend returns ErrSendQueueFull to the sender and keeps the link;
	// the message is not queued. The zero value.
	RejectSend SlowConsumerPolicy = iota
	// CloseSlowConsumer returns ErrSendQueueFull and closes the link with
	// 1008 (policy violation) after what is already queued is written, so
	// that a stuck reader cannot hold the sender's memory.
	CloseSlowConsumer
)

// TLSFiles names the PEM files of a TLS listener.
type TLSFiles struct {
	CertFile string // certificate (chain), required
	KeyFile  string // private key, required
	// CAFile, when set, makes the listener require a client certificate
	// signed by one of its CAs (mutual TLS): a client without one fails
	// the TLS handshake.
	CAFile string
}

// Listener configures one listening endpoint (a libwebsockets vhost). The
// limits the binding enforces in Go (ListenerLimits) can change on a
// running Context: see Context.SetListenerLimits.
type Listener struct {
	// Name identifies the listener in logs and Link.Listener. "": Addr.
	Name string
	// Addr is "host:port" to listen on; host "" means every address, port 0
	// a kernel-chosen port (see Context.Addrs). Required.
	Addr string
	// Accept is what the listener accepts. 0: AcceptWebSocket|AcceptHTTP.
	Accept Accept

	// Handler receives the WebSocket links. nil: messages are dropped.
	Handler Handler
	// HTTPHandler serves HTTP requests. nil: every request gets 404.
	HTTPHandler HTTPHandler

	// CheckUpgrade, when non-nil, is called on the service goroutine for each
	// WebSocket upgrade request that passed the binding's own checks, before the
	// 101. A non-nil error refuses the upgrade: an *HTTPError sends its Status
	// and Message; any other error sends 403. It must not block. A value
	// it attaches to the request (Request.SetValue) becomes the link's
	// Conn.Value.
	//
	// A refused request gets that status with "Connection: close", and the
	// connection is closed once the response is out. The link never opens:
	// neither Handler.OnOpen nor Config.OnLinkOpen is called for it, and so
	// neither are OnClose and OnLinkClose. A panic in CheckUpgrade refuses
	// with 500; an *HTTPError whose Status is not 400..599 is sent as 500
	// and logged.
	CheckUpgrade func(r *Request) error

	// Subprotocols are WebSocket subprotocols accepted besides none. A
	// client asking only for others is refused. A list of any length is
	// taken (a browser may carry a token in it), though libwebsockets
	// reads 126 bytes: the binding gives it the name it chose.
	Subprotocols []string

	// MaxMessageSize is the largest WebSocket message accepted; a bigger
	// one closes the link with 1009. 0: DefaultMaxMessageSize (1 MiB).
	// Negative: no limit.
	MaxMessageSize int64
	// MaxSendQueue caps the bytes queued by Send and not yet written to
	// the socket, per link. 0: DefaultMaxSendQueue(MaxMessageSize), twice
	// MaxMessageSize and at least 4 MiB.
	MaxSendQueue int64
	// SlowConsumer is the policy when MaxSendQueue is reached. 0: RejectSend.
	SlowConsumer SlowConsumerPolicy

	// MaxBodySize is the largest HTTP request body accepted; a bigger one
	// gets 413 and the connection is closed. 0: 1 MiB.
	MaxBodySize int64
	// ExtraHeaders are header names, beyond the ones libwebsockets knows,
	// to make available in Request.Header (libwebsockets 4.1 cannot list
	// unknown headers; 4.3 and later return all of them anyway).
	ExtraHeaders []string
	// MaxHeaderBytes, when set, raises Config.MaxHeaderBytes for the whole
	// Context: libwebsockets has one header buffer size per context, so
	// the largest of Config.MaxHeaderBytes and every listener's
	// MaxHeaderBytes applies to all listeners. 0: Config.MaxHeaderBytes.
	MaxHeaderBytes int
	// HTTPKeepAlive is how long an idle HTTP/1.1 connection stays open
	// between requests. 0: 5s.
	HTTPKeepAlive time.Duration

	// HeaderTimeout bounds the time from accepting a connection to the end
	// of its request's headers (for a WebSocket link, of its upgrade
	// request); a connection that takes longer is closed and reported as
	// header_timeout. On a keep-alive connection each later request gets
	// the same time from its first byte (plus 1s), enforced by
	// libwebsockets without a report. Whole seconds. 0: 10s.
	HeaderTimeout time.Duration
	// BodyTimeout bounds the time from the end of a request's headers to
	// the end of its body, however slowly the body trickles in: 408, the
	// connection is closed, reported as body_timeout. (libwebsockets also
	// closes a body that stalls for Config.NetworkTimeout.) 0: 30s.
	BodyTimeout time.Duration

	// MaxLinks caps the connections the listener holds at once,
	// WebSocket links and HTTP connections together; one more is refused
	// (its request gets 503 and the connection closes: see LimitMaxLinks)
	// and reported as max_links. 0: 10000. Negative: no limit.
	MaxLinks int
	// MaxLinksPerIP caps the connections from one client address (an
	// IPv4 address, or an IPv6 /64: what one host can easily hold),
	// refused like MaxLinks, reported as max_links_per_ip. 0 or negative:
	// no limit, as nginx, Envoy and Centrifugo have none by default: an
	// office or carrier NAT, or a proxy that is not in TrustedProxies,
	// puts many users behind one address (see SECURITY.md).
	MaxLinksPerIP int
	// TrustedProxies are the addresses of the proxies (load balancers,
	// CDNs, reverse proxies) believed about their clients' addresses. A
	// request that comes from one names its client in ForwardedHeader:
	// that is walked back from the right past every trusted address to
	// the first that is not, which becomes the request's and the link's
	// Remote, what MaxLinksPerIP counts (then at the upgrade request, not
	// at accept: HTTP connections from a proxy, which serve many clients,
	// are not counted by address) and what the logs name. From any other
	// peer the header is ignored: whatever a client writes in it changes
	// nothing. nil: no proxy is trusted.
	TrustedProxies []netip.Prefix
	// ForwardedHeader is the header the TrustedProxies name clients in:
	// "X-Forwarded-For" or "Forwarded" (RFC 7239's for= parameters).
	// Only that one is read: a proxy that appends to one of them leaves
	// what a client wrote in the other as it was. "Forwarded" needs
	// libwebsockets 4.3 or later, where the binding can see that a
	// request repeats the header (4.1 shows only the first line, which a
	// client can write; a request repeating it is then not believed).
	// "": X-Forwarded-For.
	ForwardedHeader string

	// ProxyProtocol: every connection starts with a PROXY protocol header
	// (v1 or v2, as HAProxy and load balancers such as AWS's NLB write
	// it), which names the client the proxy accepted: that is the
	// connection's address (Link.Remote, MaxLinksPerIP, the logs; and
	// when it is itself one of the TrustedProxies, its requests name the
	// client in ForwardedHeader). With TrustedProxies, the header is
	// believed from those peers only (from others it is read and
	// ignored); without, from every peer: the listener must then be
	// reachable by the proxies alone. A connection whose header is
	// missing, malformed or not in within HeaderTimeout is closed and
	// reported (bad_proxy_header, header_timeout), with a warning. A v1
	// UNKNOWN or v2 LOCAL header (a proxy's health check) keeps the TCP
	// peer's address, as the specification asks. The binding accepts
	// these connections itself and hands each socket to libwebsockets
	// once the header is read. false: no PROXY protocol.
	ProxyProtocol bool

	// AcceptRate caps the connections accepted per second: a token bucket
	// that holds one second's worth, so bursts up to AcceptRate pass.
	// Others are refused like MaxLinks, reported as accept_rate.
	// 0: 1000. Negative: no limit.
	AcceptRate int

	// PingInterval makes the binding ping a WebSocket link that had no pong
	// for that long, and drop it (1006) when it has had none for
	// PingTimeout (0: PingInterval + DefaultPingGrace). Whole seconds.
	// Only pongs prove a link alive, not data, as with libwebsockets' own
	// policy: a peer that sends but never reads is dropped. The pings carry
	// a payload of their own, and their pongs do not reach OnPong.
	// 0: DefaultPingInterval.
	PingInterval, PingTimeout time.Duration

	// TLS, when non-nil, makes this a TLS (wss/https) listener.
	TLS *TLSFiles

	// Compression accepts permessage-deflate (RFC 7692) from WebSocket
	// clients that offer it (offers libwebsockets cannot honour, such as
	// one naming server_max_window_bits, are declined): messages are
	// inflated as they arrive and Send's messages compressed;
	// Link.Compression says whether a link agreed it. MaxMessageSize
	// bounds a message after inflation, and its compressed bytes too (see
	// LimitMaxCompressed). Each compressing link holds zlib's state, up to
	// 288 KiB (zconf.h: 256 KiB to deflate at libwebsockets' window and
	// memory level, 32 KiB to inflate). false (the zero value): off;
	// offers are ignored and every message goes uncompressed.
	Compression bool
}

// The defaults: what a zero field of Config, Listener or DialOptions
// stands for, stated here once; SECURITY.md gives the reason for each
// limit.
const (
	DefaultNetworkTimeout  = 15 * time.Second // Config.NetworkTimeout
	DefaultShutdownTimeout = 5 * time.Second  // Config.ShutdownTimeout
	DefaultMaxHeaderBytes  = 8 << 10          // Config.MaxHeaderBytes
	DefaultMaxMessageSize  = 1 << 20          // Listener and DialOptions MaxMessageSize
	DefaultMaxBodySize     = 1 << 20          // Listener.MaxBodySize
	DefaultHTTPKeepAlive   = 5 * time.Second  // Listener.HTTPKeepAlive
	DefaultHeaderTimeout   = 10 * time.Second // Listener.HeaderTimeout
	DefaultBodyTimeout     = 30 * time.Second // Listener.BodyTimeout
	DefaultMaxLinks        = 10000            // Listener.MaxLinks
	DefaultAcceptRate      = 1000             // Listener.AcceptRate
	DefaultEventLoop       = EventLoopLibev   // Config.EventLoop
	// DefaultPingInterval is Listener.PingInterval's 0: libwebsockets'
	// own default, kept when the binding took its listeners' pings over.
	DefaultPingInterval = 5 * time.Minute
	// DefaultPingGrace is how long after PingInterval a link without a
	// pong is dropped when PingTimeout is 0 (Listener, DialOptions).
	DefaultPingGrace = 10 * time.Second

	// minDefaultMaxSendQueue is DefaultMaxSendQueue's floor.
	minDefaultMaxSendQueue = 4 << 20
	txPacketSize           = 64 << 10
)

// DefaultMaxSendQueue is the send queue of a link whose MaxSendQueue is 0
// (Listener, DialOptions): twice its MaxMessageSize, at least 4 MiB.
func DefaultMaxSendQueue(maxMessageSize int64) int64 {
	return max(minDefaultMaxSendQueue, 2*maxMessageSize)
}

// pingTimeout is the PingTimeout that a PingInterval and PingTimeout pair
// stands for.
func pingTimeout(interval, timeout time.Duration) time.Duration {
	if timeout == 0 {
		return interval + DefaultPingGrace
	}
	return timeout
}

func (c *Config) withDefaults() *Config {
	var out Config
	if c != nil {
		out = *c
	}
	out.Listeners = append([]Listener(nil), out.Listeners...)
	if out.Logger == nil {
		out.Logger = slog.Default()
	}
	if out.NetworkTimeout == 0 {
		out.NetworkTimeout = DefaultNetworkTimeout
	}
	if out.ShutdownTimeout == 0 {
		out.ShutdownTimeout = DefaultShutdownTimeout
	}
	if out.MaxHeaderBytes == 0 {
		out.MaxHeaderBytes = DefaultMaxHeaderBytes
	}
	if out.EventLoop == "" {
		out.EventLoop = DefaultEventLoop
	}
	for i := range out.Listeners {
		l := &out.Listeners[i]
		if l.Name == "" {
			l.Name = l.Addr
		}
		if l.Accept == 0 {
			l.Accept = AcceptWebSocket | AcceptHTTP
		}
		if l.MaxMessageSize == 0 {
			l.MaxMessageSize = DefaultMaxMessageSize
		}
		if l.MaxSendQueue == 0 {
			l.MaxSendQueue = DefaultMaxSendQueue(l.MaxMessageSize)
		}
		if l.MaxBodySize == 0 {
			l.MaxBodySize = DefaultMaxBodySize
		}
		if l.HTTPKeepAlive == 0 {
			l.HTTPKeepAlive = DefaultHTTPKeepAlive
		}
		if l.HeaderTimeout == 0 {
			l.HeaderTimeout = DefaultHeaderTimeout
		}
		if l.BodyTimeout == 0 {
			l.BodyTimeout = DefaultBodyTimeout
		}
		if l.MaxLinks == 0 {
			l.MaxLinks = DefaultMaxLinks
		}
		if l.AcceptRate == 0 {
			l.AcceptRate = DefaultAcceptRate
		}
		if l.PingInterval > 0 {
			l.PingTimeout = pingTimeout(l.PingInterval, l.PingTimeout)
		}
		l.Subprotocols = append([]string(nil), l.Subprotocols...)
		l.ExtraHeaders = append([]string(nil), l.ExtraHeaders...)
		l.TrustedProxies = append([]netip.Prefix(nil), l.TrustedProxies...)
		for j, p := range l.TrustedProxies {
			l.TrustedProxies[j] = normPrefix(p)
		}
		if l.ForwardedHeader == "" {
			l.ForwardedHeader = headerXForwardedFor
		}
		for _, h := range []string{headerXForwardedFor, headerForwarded} {
			if strings.EqualFold(l.ForwardedHeader, h) {
				l.ForwardedHeader = h
			}
		}
	}
	return &out
}

// validate checks a defaulted config; errors name the field at fault.
func (c *Config) validate() error {
	if c.LinkTrace < 0 || c.LinkTrace > 1<<16 {
		return fmt.Errorf("lws: Config.LinkTrace %d: must be 0..65536", c.LinkTrace)
	}
	if c.NetworkTimeout < time.Second {
		return fmt.Errorf("lws: Config.NetworkTimeout %v: must be at least 1s", c.NetworkTimeout)
	}
	if c.MaxHeaderBytes < 256 || c.MaxHeaderBytes > 65535 {
		return fmt.Errorf("lws: Config.MaxHeaderBytes %d: must be 256..65535", c.MaxHeaderBytes)
	}
	if err := CheckEventLoop(c.EventLoop); err != nil {
		return fmt.Errorf("lws: Config.EventLoop %q: %v", c.EventLoop, err)
	}
	names := map[string]bool{}
	for i, l := range c.Listeners {
		field := func(f string) string { return fmt.Sprintf("lws: Listeners[%d] (%s).%s", i, l.Name, f) }
		if names[l.Name] {
			return fmt.Errorf("%s: duplicate listener name", field("Name"))
		}
		names[l.Name] = true
		if err := CheckAddr(l.Addr); err != nil {
			return fmt.Errorf("%s %q: %v", field("Addr"), l.Addr, err)
		}
		if l.Accept&^(AcceptWebSocket|AcceptHTTP) != 0 {
			return fmt.Errorf("%s: unknown bits %#x", field("Accept"), uint8(l.Accept))
		}
		if l.MaxSendQueue < 0 {
			return fmt.Errorf("%s %d: must not be negative", field("MaxSendQueue"), l.MaxSendQueue)
		}
		if l.MaxBodySize < 0 {
			return fmt.Errorf("%s %d: must not be negative", field("MaxBodySize"), l.MaxBodySize)
		}
		if l.MaxHeaderBytes < 0 || l.MaxHeaderBytes > 65535 {
			return fmt.Errorf("%s %d: must be 0..65535", field("MaxHeaderBytes"), l.MaxHeaderBytes)
		}
		if l.HeaderTimeout < time.Second || l.HeaderTimeout > time.Hour {
			return fmt.Errorf("%s %v: must be 1s..1h", field("HeaderTimeout"), l.HeaderTimeout)
		}
		if l.BodyTimeout < 0 {
			return fmt.Errorf("%s %v: must not be negative", field("BodyTimeout"), l.BodyTimeout)
		}
		if err := CheckKeepalive(l.PingInterval, l.PingTimeout); err != nil {
			return fmt.Errorf("lws: Listeners[%d] (%s).%v", i, l.Name, err)
		}
		for j, p := range l.Subprotocols {
			if p == "" || strings.ContainsAny(p, " ,\t\"") {
				return fmt.Errorf("%s[%d] %q: not a valid subprotocol token", field("Subprotocols"), j, p)
			}
			if p == httpProtocol {
				return fmt.Errorf("%s[%d] %q: reserved for the listener's HTTP protocol", field("Subprotocols"), j, p)
			}
		}
		for j, h := range l.ExtraHeaders {
			if h == "" || strings.ContainsAny(h, ": \t\r\n") {
				return fmt.Errorf("%s[%d] %q: not a header name", field("ExtraHeaders"), j, h)
			}
		}
		for j, p := range l.TrustedProxies {
			if !p.IsValid() {
				return fmt.Errorf("%s[%d]: not a valid address prefix", field("TrustedProxies"), j)
			}
		}
		if err := CheckForwardedHeader(l.ForwardedHeader); err != nil {
			return fmt.Errorf("%s %q: %v", field("ForwardedHeader"), l.ForwardedHeader, err)
		}
		if l.Compression && !cgo.CompressionAvailable() {
			return fmt.Errorf("%s: the libwebsockets this binary uses was built without extensions (LWS_WITHOUT_EXTENSIONS)", field("Compression"))
		}
		if l.TLS != nil {
			for _, f := range []struct{ name, path string }{{"CertFile", l.TLS.CertFile}, {"KeyFile", l.TLS.KeyFile}, {"CAFile", l.TLS.CAFile}} {
				if f.path == "" {
					if f.name == "CAFile" {
						continue
					}
					return fmt.Errorf("%s: required for a TLS listener", field("TLS."+f.name))
				}
				if err := CheckReadable(f.path); err != nil {
					return fmt.Errorf("%s: %v", field("TLS."+f.name), err)
				}
			}
		}
	}
	return nil
}

// headerBytes is the header buffer size of the context: libwebsockets has
// one for all listeners.
func (c *Config) headerBytes() int {
	n := c.MaxHeaderBytes
	for _, l := range c.Listeners {
		n = max(n, l.MaxHeaderBytes)
	}
	return n
}

// CheckReadable checks that a file (a certificate, a key) can be opened
// and is not a directory: a wrong path is an error when a configuration is
// checked rather than when a listener or a link starts.
func CheckReadable(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	if st.IsDir() {
		return fmt.Errorf("%s is a directory", path)
	}
	return nil
}

// CheckAddr checks a listening address as Listener.Addr takes it:
// "host:port", the host empty (every address), "localhost" or an IP
// address, the port 0 to 65535.
func CheckAddr(addr string) error {
	_, _, err := splitAddr(addr)
	return err
}

// KeepaliveError is why CheckKeepalive refuses a PingInterval and
// PingTimeout pair.
//
// Concurrency: a value.
type KeepaliveError struct {
	// Field is the one at fault: "PingTimeout" when a time is negative or
	// the timeout does not exceed the interval, "PingInterval" when they
	// are not whole seconds from 1s to 65535s.
	Field             string
	Interval, Timeout time.Duration
}

func (e *KeepaliveError) Error() string {
	if e.Field == "PingTimeout" {
		return fmt.Sprintf("PingTimeout %v must exceed PingInterval %v", e.Timeout, e.Interval)
	}
	return "PingInterval: ping times are whole seconds from 1s to 65535s"
}

// CheckKeepalive checks a PingInterval and PingTimeout pair as Listener and
// DialOptions take them: an interval of 0 stands for the defaults (5
// minutes, then DefaultPingGrace) and the timeout is then not used;
// otherwise both are whole seconds from 1s to 65535s, and the timeout (0:
// the interval + DefaultPingGrace) exceeds the interval.
// The error is a *KeepaliveError; its text starts with the field.
func CheckKeepalive(interval, timeout time.Duration) error {
	if interval < 0 || timeout < 0 || (interval > 0 && timeout != 0 && timeout <= interval) {
		return &KeepaliveError{"PingTimeout", interval, timeout}
	}
	if interval == 0 {
		return nil
	}
	timeout = pingTimeout(interval, timeout)
	if interval < time.Second || timeout > 65535*time.Second || interval%time.Second != 0 || timeout%time.Second != 0 {
		return &KeepaliveError{"PingInterval", interval, timeout}
	}
	return nil
}

// splitAddr splits "host:port" into the iface libwebsockets wants ("" for
// all addresses) and a port.
func splitAddr(addr string) (host string, port int, err error) {
	h, p, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, err
	}
	port, err = strconv.Atoi(p)
	if err != nil || port < 0 || port > 65535 {
		return "", 0, fmt.Errorf("port %q: want 0..65535", p)
	}
	if h != "" && net.ParseIP(h) == nil && h != "localhost" {
		return "", 0, fmt.Errorf("host %q: want an IP address", h)
	}
	if h == "localhost" {
		h = "127.0.0.1"
	}
	return h, port, nil
}
