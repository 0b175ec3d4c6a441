// Package lws serves and makes WebSocket links and HTTP requests with
// libwebsockets. A Context is a libwebsockets context with its listeners
// and links; a WebSocket link is a Conn whose events reach a Handler; an
// HTTP request reaches an HTTPHandler, which answers it with a
// ResponseWriter; Dial and Transport make client links and requests. Start
// with the examples.
//
//	ctx, err := lws.New(&lws.Config{Listeners: []lws.Listener{{
//		Addr:    ":8090",
//		Handler: lws.EchoHandler{}, // WebSocket links
//		HTTPHandler: lws.HTTPHandlerFunc(func(w *lws.ResponseWriter, r *lws.Request) {
//			w.Header().Set("Content-Type", "text/plain")
//			_ = w.Respond(200, []byte("hello\n"))
//		}),
//	}}})
//	if err != nil { ... } // names the listener and cause: address in use, unreadable cert...
//	defer ctx.Close()     // stops accepting, closes links with 1001, releases everything
//
// # Threading
//
// One goroutine per Context, locked to its OS thread (the service
// goroutine), makes every libwebsockets call: libwebsockets may be called
// from no other thread, but for lws_cancel_service. Conn.Send, Conn.Close,
// ResponseWriter.Respond and every Context method are safe from any
// goroutine: they queue their work and wake the service goroutine with
// lws_cancel_service (one wake-up per burst, none when called from a
// handler). It waits for events in libev's epoll, where an event costs
// the same however many links are open, or in libwebsockets' own poll
// loop (Config.EventLoop).
//
// Handler, HTTPHandler, Listener.CheckUpgrade and the Config hooks
// (OnLinkOpen, OnLinkClose, OnLimit) run on the service goroutine, one at a
// time per Context, and must not block: a slow handler stalls every link of
// its Context. Hand long work to another goroutine. What waits for the
// service goroutine (Context's Close, Shutdown, Do, Dial, DialRetry,
// LinkTrace and SetListenerLimits; a Transport's requests) must therefore
// not be called from a handler. Each type's documentation says which of
// its methods are safe from where.
//
// # Several cores: a Group
//
// One Context uses one core. NewGroup runs N of them (workers) on the
// same listener, for a process that uses N cores (a Group per listener):
//
//	g, err := lws.NewGroup(runtime.GOMAXPROCS(0), func(worker int) *lws.Config {
//		return &lws.Config{Listeners: []lws.Listener{{Addr: ":8080", Handler: myHandler}}}
//	})
//
// The listener has one listening socket for the group, and the binding
// accepts: each new connection goes to the worker with the fewest
// connections, and lives there until it is destroyed
// (its callbacks run on that worker's service goroutine). This is the
// same on libwebsockets 4.1, which cannot share a port between contexts,
// and 4.3; TLS and ProxyProtocol listeners work alike. A listener's
// admission limits (MaxLinks, MaxLinksPerIP, AcceptRate) hold for the
// group as a whole, and link IDs are unique in the process. The workers'
// handlers run on N goroutines at once: what they share must be safe for
// that, and per-worker state can go in each worker's Config (cfg is
// called once per worker). Links a handler dials should be dialled from
// its own Context (Conn.Context), so that they live on its worker. Make
// GOMAXPROCS at least N+1: each service goroutine holds a thread.
//
// # Receiving
//
// Fragments are reassembled into whole messages, copied out of
// libwebsockets' buffer before its callback returns: Handler.OnMessage gets
// each whole message, its data valid until OnMessage returns (Send copies
// it, so echoing is safe). Listener.MaxMessageSize (1 MiB by default)
// closes a link whose message is bigger with 1009; a text message that is
// not UTF-8, checked by the binding as it arrives, closes it with 1007. An
// HTTP request reaches ServeHTTP with its whole body (at most
// Listener.MaxBodySize, else 413).
//
// # Sending
//
// Send copies the message, queues it and returns; the link's WRITEABLE
// callback writes the queue until the socket is choked, asking whether it
// is (a poll(2) in libwebsockets) only every 64 KiB. The binding writes in
// that callback only, never from another. On a server link without
// compression, a run of queued messages of up to 16 KiB each goes out
// framed by the binding in one send, not one send per message (in the
// pipelined benchmark, 1.2 µs of server CPU per message instead of 7).
// Listener.MaxSendQueue bounds the queue: ErrSendQueueFull to the sender,
// and with CloseSlowConsumer the link is closed with 1008. A handler
// answers an HTTP request with ResponseWriter.Respond, at once or later
// from any goroutine, exactly once.
//
// # Closing
//
// Conn.Close(code, reason) starts the closing handshake once what is queued
// is written; the peer's code and reason arrive in Handler.OnClose, called
// exactly once per opened link (1006 when the link was lost without a
// close frame). Config.OnLinkOpen and OnLinkClose see every link, WebSocket
// or HTTP, open and close exactly once.
//
// # Errors
//
// Errors are tested with errors.Is and errors.As: the sentinels (ErrClosed,
// ErrSendQueueFull, ...); *CloseError, with CloseStatus(err), for how a link
// ended; *HTTPError to refuse an upgrade with a status of one's choice;
// *DialError, whose Kind says which step of a dial failed, with the
// *TLSError (OpenSSL's X509 code) behind a rejected certificate. An error
// in a Config names the field at fault ("lws: Listeners[0]
// (main).HeaderTimeout ...").
//
// What a peer should not send is refused with an answer it can read (an
// HTTP status, or a close code with a reason) and reported to
// Config.OnLimit by its Limit name: requests with ambiguous framing (both
// Content-Length and Transfer-Encoding, duplicate or non-decimal lengths)
// and invalid upgrades (not GET, bad key, version other than 13, h2c) get
// 400/411/426/501 before any handler or 101; invalid close frames are
// answered with 1002 or 1007, never echoed; Listener.CheckUpgrade refuses
// an upgrade with any HTTP status. Links per listener and per address, the
// accept rate, header and body time, body, message and queue sizes are
// limited (see Limit; SECURITY.md gives each default its reason), and
// Context.SetListenerLimits changes the limits the binding enforces on a
// running Context.
//
// A handler that panics has its link closed with 1011 (an HTTP handler's
// request gets 500); the process and the other links carry on. The Go
// state of a connection is reached from C through a handle (a slot in the
// binding's own table, never a Go pointer in C memory), freed on
// WSI_DESTROY.
//
// # Clients
//
// Dial, from any goroutine, returns a Conn with the same contract once the
// link is open (DialOptions: subprotocols, headers, origin, TLS, keepalive,
// limits); Context.DialRetry redials with a Backoff. Transport is an
// http.RoundTripper: &http.Client{Transport: &lws.Transport{Context: c}}
// makes each request on a libwebsockets client connection, with DNS
// resolved in Go (the service goroutine never blocks on getaddrinfo), no
// redirects of its own, a streamed, size-limited response body
// (libwebsockets stops reading while 256 KiB wait for the reader) and
// dial, header and body timeouts.
//
// # Compression, TLS and keepalive
//
// Listener.Compression and DialOptions.Compression (both off by default)
// agree permessage-deflate (RFC 7692) with a peer that offers or accepts
// it, through libwebsockets' own extension; Link.Compression says whether
// a link did. MaxMessageSize bounds the inflated message (1009,
// max_message) and its compressed bytes too, at MaxMessageSize + 1/8 +
// 4 KiB (1009, max_compressed: a stream of empty deflate blocks inflates to
// nothing). Offers libwebsockets cannot honour (a server window size,
// unknown parameters) are declined. Each compressing link holds zlib's
// state, up to 288 KiB; a 16 KiB buffer its compressed frames go out from
// (libwebsockets' 1 KiB cut a 16 MiB message into more frames than Node's
// ws takes by default, 16,384); and while a message arrives, the
// compressed input zlib has not inflated yet (up to 64 KiB), which
// libwebsockets leaves in the buffer every link of the thread reads into,
// where the next link's read overwrote it (4.1.6 and 4.3.5). An empty
// message goes uncompressed, around libwebsockets' deflate, which aborts
// the process on one sent after another message when the window carries
// over (4.1.6 and 4.3.5: assert(0), "FAIL want to trim out length 0").
//
// Listener.TLS serves wss and https from PEM files (a chain file works);
// ClientTLS verifies a server against a CA file or the system's store with
// SNI and host name checks. PingInterval and PingTimeout ping a silent peer
// and drop one that stays silent: on a Listener the binding does it, with a
// Go timer per link (keepalive.go: libwebsockets' own policy costs a walk
// over every open link at each opening and pong); in DialOptions
// libwebsockets does. A PongHandler sees the pongs, but not those of the
// binding's pings.
//
// # Memory
//
// libwebsockets reads up to 64 KiB at a time and writes frames of up to
// 64 KiB. The binding gives it an allocator that puts each link's receive
// buffer in a page-aligned slot (cgo/rxpool.c), so that an idle link's
// buffer costs no memory until data arrives; with the binding's own state
// for it (its Conn and rec, the upgrade request's bytes: about 0.8 KB of Go
// heap), an idle link costs about 2.3 KB, against 5.4 KB in native
// libwebsockets (BENCHMARKS.md; serviceBufferSize in context.go says why
// the buffer is not smaller). Per-link traces (Config.LinkTrace) grow as
// they fill. The service goroutine yields its P every 5 ms, or Go's sysmon
// would take it away every 20 µs.
package lws
