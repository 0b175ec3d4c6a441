/*
 * lwsnative - the native libwebsockets reference peer for lwsgate.
 *
 * Design
 * ------
 * lwsgate is a Go (cgo) binding over libwebsockets plus a gateway.  This
 * program plays the same roles written directly in C against the library, so
 * that the binding can be compared with what libwebsockets does on its own:
 *
 *  - Reason log (-t): one line per protocol callback invocation, in the exact
 *    format lwsgate writes, e.g.
 *        [2026-11-24 10:05:47.123][DEBUG] cb ctx:1 wsi:7 reason:6 LWS_CALLBACK_RECEIVE
 *    "wsi" is a small integer given to each real wsi in order of first
 *    appearance (kept in the wsi's opaque user data, dropped at WSI_DESTROY);
 *    callbacks made with a fake or NULL wsi log wsi:0.  Diffing lwsgate's log
 *    against this one shows which callbacks the binding adds, drops or
 *    reorders.
 *  - Throughput: a WebSocket echo whose write strategy is selectable (-m):
 *    "choked" writes queued messages until lws_send_pipe_choked(), "single"
 *    writes one message per SERVER_WRITEABLE.  Compare with bench/cmd/wsload.
 *
 * Roles
 * -----
 *  - Server (default): ws echo with server-initiated close, POST
 *    /v1/api/createtoken, GET /v1/api/slow; optionally TLS (-C/-K) and an
 *    idle ping/hangup policy (-P/-Q).
 *  - WebSocket client (-c URL): sends each -s message, waits for one message
 *    back per message sent, then closes with 1000.
 *  - HTTP client (-H URL): one request (-X, -D), prints status and body.
 *  A client mode makes no listener and exactly one link; the program exits
 *  after that link's WSI_DESTROY.  Client output goes to stderr, since stdout
 *  carries the reason log.
 *
 * Shape
 * -----
 *  - One context (EXPLICIT_VHOSTS, VALIDATE_UTF8, timeout_secs 15 because the
 *    default differs between 4.1 and 4.3; DO_SSL_GLOBAL_INIT with TLS or in a
 *    client mode, JUST_USE_RAW_ORIGIN in a client mode) and one vhost created
 *    explicitly.  A client vhost has port CONTEXT_PORT_NO_LISTEN.
 *  - Server protocols: protocols[0] "http" gets all HTTP and ws upgrades
 *    without a subprotocol; protocols[1] "lws-gate" is the ws subprotocol.
 *    Client protocols: the one "lwsnative-client", bound by
 *    local_protocol_name.  Every protocol uses the one callback.
 *  - WebSocket: fragments are reassembled into one malloc'd [LWS_PRE|payload]
 *    buffer (server and client alike).  On the server a complete message
 *    (final fragment and no payload remaining) is appended to the
 *    connection's queue and echoed with the same type, unless it is the text
 *    "/close CODE [REASON]": then the server closes the link with that code
 *    and reason from a SERVER_WRITEABLE where the queue is already empty (so
 *    after echoes queued before it; later messages are dropped).  A
 *    malformed "/close " command is answered with an "error: ..." text
 *    instead of its echo (as lwsgate does).  Messages over 16 MiB close the
 *    connection with 1009.  The queue is not bounded: the client bounds it
 *    by how many messages it keeps in flight.  lws calls WRITEABLE once more
 *    after a close started from WRITEABLE; that one must return 0, or the
 *    closing handshake is cut short (see ws_writeable).
 *  - HTTP: POST /v1/api/createtoken answers 200 application/json
 *    {"code":0,"token":"native-<RequestId>"} ("0" if no RequestId is found;
 *    the body is scanned crudely, no JSON parser).  Headers are written at
 *    HTTP_BODY_COMPLETION, the body from HTTP_WRITEABLE.  GET
 *    /v1/api/slow?ms=N answers 200 text/plain "slow\n" after N ms: a sul
 *    timer embedded in the pss asks for HTTP_WRITEABLE, which writes headers
 *    and body; the timer is cancelled at HTTP_DROP_PROTOCOL, CLOSED_HTTP and
 *    WSI_DESTROY, so it never fires for a dead wsi or a freed pss.  lws
 *    before 4.3.1 does not notice a client that leaves while the reply
 *    waits (and spins, see SLOW_RX_OFF): so HTTP_WRITEABLE checks the socket
 *    for the peer's FIN first and closes without writing.  Every other
 *    request (other path, or another method on those paths) gets 404.
 *  - Per-connection state lives in the per-session data (pss).  HTTP state is
 *    fixed-size because lws frees and re-allocates the pss when it re-binds
 *    the protocol (per HTTP transaction, and on ws upgrade).  The ws queue and
 *    reassembly buffer are heap memory and are freed at WSI_DESTROY, which is
 *    always delivered with the pss intact (CLOSED is not always delivered).
 *  - Clients: the URL's host is resolved with getaddrinfo before the context
 *    exists and lws gets an IP literal (lws would call getaddrinfo on the
 *    service thread); Host is the URL's host[:port].  The one link's state
 *    is global (struct client); its ws reassembly uses the pss like the
 *    server's.  Its reason-log id is taken before connecting (see wsi_id).
 *    A ws client closes with 1000 from CLIENT_WRITEABLE after the last
 *    reply.  An HTTP client sends -D with a content-length header from
 *    CLIENT_HTTP_WRITEABLE, keeps the body until COMPLETED_CLIENT_HTTP and
 *    returns -1 there: one request per connection, as lwsgate does.
 *  - Keepalive (-P/-Q), as lwsgate does it (lws/keepalive.go): the server
 *    vhost has an idle policy of all zeros, which turns lws' own off (lws
 *    would keep every link's ping timer in one sorted list, a walk over
 *    all links at each opening and pong); each ws link has a sul in its
 *    pss, armed at ESTABLISHED for the ping time and re-armed by every
 *    RECEIVE_PONG.  When it fires the link is pinged from its next
 *    SERVER_WRITEABLE with KA_PAYLOAD (lws reports no pong without payload
 *    on server links), and the sul is armed for the rest of the hangup
 *    time; if it fires again the link is closed at once.  Without -P/-Q:
 *    300 s and 310 s, lws' defaults.  A client link keeps lws' policy: an
 *    lws_retry_bo_t in static storage (lws keeps the pointer) in its
 *    connect info.
 *  - Unhandled reasons go to lws_callback_http_dummy().  GET_THREAD_ID
 *    returns 0.
 *  - Event loop (-e): lws' own poll loop (default), or libev as lwsgate runs
 *    it (lwsgate -event-loop libev, cgo/evloop.c): LWS_SERVER_OPTION_LIBEV
 *    on a foreign ev_loop (epoll only) made here, one ev_run(EVRUN_ONCE)
 *    per pass where lws_service() is one poll; lws' timers run from an
 *    ev_prepare and an ev_timer of the program's, since the plugin's own
 *    timer fires late when an earlier one is set; an ev_idle hands over
 *    input lws holds.  Given no loop, lws would make its own, and
 *    lws_service() would be ev_run(loop, 0), which returns only when the
 *    loop is broken; on its own loop lws also takes SIGINT.  The tick's
 *    list is the context's first timer list, which the loop's timers need.
 *  - SIGINT/SIGTERM only set a flag (lws_cancel_service is not
 *    async-signal-safe).  lws_service() (epoll_wait on libev) returns on
 *    EINTR; a 250 ms sul tick bounds the wait if the signal lands just
 *    before poll().  Then the context is destroyed on the service thread
 *    (its callbacks are logged too), and then the libev loop.
 *
 * Builds against libwebsockets 4.1.6 and uses only API also present in 4.3.x;
 * reasons that exist in only some versions are guarded by
 * LWS_LIBRARY_VERSION_NUMBER.  Build: see README.md.
 */

#define _GNU_SOURCE		/* POLLRDHUP */

#include <libwebsockets.h>

#include <errno.h>
#include <limits.h>
#include <netdb.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#if defined(LWS_WITH_LIBEV)
#include <ev.h>
#endif

#define MAX_MESSAGE		(16u * 1024u * 1024u)
#define CREATETOKEN_PATH	"/v1/api/createtoken"
#define SLOW_PATH		"/v1/api/slow"
#define SLOW_DEFAULT_MS		500
#define SLOW_MAX_MS		10000
#define CLOSE_REASON_MAX	123	/* close payload 125, less the code */
#define HANGUP_AFTER_PING	10	/* -P without -Q: hangup 10 s later */
#define KA_PING_DEFAULT		300	/* lws' default secs_since_valid_ping */
#define KA_PAYLOAD		"lwsgate-keepalive"	/* as lwsgate's */
#define TICK_US			(250 * LWS_US_PER_MS)

/*
 * Before 4.3.1 an h1 server wsi whose reply is pending (DOING_TRANSACTION)
 * never reads: once the peer closes, POLLIN stays set and lws spins at 100%
 * CPU until the reply is written (fixed by lws commit 28e5d41d9, "http: sse:
 * check POLLIN during DOING_TRANSACTION").  So while a slow reply waits,
 * POLLIN is switched off with lws_rx_flow_control(), and on again when the
 * timer fires (a flow-controlled h1 wsi gets no HTTP_WRITEABLE either).
 */
#define SLOW_RX_OFF		(LWS_LIBRARY_VERSION_NUMBER < 4003001)

#ifndef POLLRDHUP
#define POLLRDHUP		0	/* not Linux: only a reset shows */
#endif

/* One queued or partially received ws message: [LWS_PRE | payload]. */
struct msg {
	struct msg	*next;
	size_t		len;		/* payload bytes */
	size_t		cap;		/* payload capacity */
	int		binary;
	unsigned char	buf[];		/* LWS_PRE + cap */
};

/* Per-session data, zeroed by lws whenever a protocol binds to the wsi. */
struct pss {
	/* ws */
	struct msg	*head, *tail;	/* messages waiting to be echoed */
	struct msg	*rx;		/* message being reassembled */
	int		close_code;	/* "/close" received: close when drained */
	struct lws	*ka_wsi;	/* keepalive: the link (ka_cb) */
	lws_sorted_usec_list_t ka_sul;	/* keepalive: ping, then hangup, due */
	int		ka_ping_due;	/* write a ping at the next WRITEABLE */
	int		ka_pinged;	/* pinged, no pong since: next is hangup */
	int		close_sent;	/* returned -1 for it: lws is closing */
	size_t		close_len;
	unsigned char	close_reason[CLOSE_REASON_MAX];

	/* http (fixed size, see design note) */
	struct lws	*wsi;		/* for slow_cb */
	lws_sorted_usec_list_t sul;	/* GET slow: reply timer */
	int		slow;		/* this transaction is GET slow */
	int		createtoken;	/* this transaction is POST createtoken */
	int		resp_pending;	/* resp is ready for HTTP_WRITEABLE */
	size_t		body_len;
	size_t		resp_len;
	char		body[1024];	/* first bytes of the request body */
	unsigned char	resp[LWS_PRE + 160];
};

/* A URL of a client mode, split and resolved. */
struct target {
	int		tls;
	int		port;
	const char	*path;		/* in the URL; "/" if it has none */
	char		authority[256];	/* Host: host[:port] as written */
	char		host[256];	/* name or IP, without [] */
	char		address[NI_MAXHOST];	/* resolved: IP literal */
};

/* Command line. */
static struct options {
	const char	*iface;
	long		port;
	long		rxsize;
	int		debug;
	long		ping_secs;	/* -P; 0: lws default */
	long		hangup_secs;	/* -Q */
	const char	*cert, *key;		/* -C, -K */
	int		libev;		/* -e libev */

	int		client;		/* 0 (server), 'c' or 'H' */
	const char	*url;
	const char	**sends;	/* -s, in order */
	int		nsends;
	const char	*method, *data;	/* -X, -D */
	int		insecure;	/* -k */
	const char	*cafile;	/* -A */
} o = { .iface = "127.0.0.1", .port = 8090 };

/* The one link of a client mode. */
static struct client {
	struct target	t;
	struct lws	*wsi;		/* filled in by lws (ci.pwsi) */
	unsigned char	*tx;		/* [LWS_PRE | largest -s or -D] */
	size_t		data_len;	/* -D bytes */
	int		sent;		/* ws: -s messages written */
	int		awaiting;	/* ws: a reply is due */
	int		closing;	/* ws: returned -1 to close */
	int		body_sent;	/* http: -D written */
	char		*rxbody;	/* http: the response body so far */
	size_t		rxbody_len;
	int		ok;		/* exchange finished: exit 0 */
	int		failed;		/* error already reported */
	int		done;		/* WSI_DESTROY seen */
} cl;

static volatile sig_atomic_t interrupted;
static int trace_on;
static int write_single;		/* -m single */
static unsigned long next_wsi_id;
static struct lws_context *g_ctx;
static lws_sorted_usec_list_t tick;
static lws_retry_bo_t retry;		/* -P/-Q of a client; lws keeps the pointer */
static lws_retry_bo_t no_idle;		/* the server vhost's: lws' policy off */
static long ka_ping = KA_PING_DEFAULT, ka_hangup = KA_PING_DEFAULT + HANGUP_AFTER_PING;

static int
parse_num(const char *s, long min, long max, long *out)
{
	char *e;
	long v;

	errno = 0;
	v = strtol(s, &e, 10);
	if (errno || e == s || *e || v < min || v > max)
		return -1;
	*out = v;

	return 0;
}

/* ------------------------------------------------------------------------ */
/* reason log                                                                */

static const char *
reason_name(int reason)
{
	switch (reason) {
#define N(x) case LWS_CALLBACK_##x: return "LWS_CALLBACK_" #x;
	N(ESTABLISHED)
	N(CLIENT_CONNECTION_ERROR)
	N(CLIENT_FILTER_PRE_ESTABLISH)
	N(CLIENT_ESTABLISHED)
	N(CLOSED)
	N(CLOSED_HTTP)
	N(RECEIVE)
	N(RECEIVE_PONG)
	N(CLIENT_RECEIVE)
	N(CLIENT_RECEIVE_PONG)
	N(CLIENT_WRITEABLE)
	N(SERVER_WRITEABLE)
	N(HTTP)
	N(HTTP_BODY)
	N(HTTP_BODY_COMPLETION)
	N(HTTP_FILE_COMPLETION)
	N(HTTP_WRITEABLE)
	N(FILTER_NETWORK_CONNECTION)
	N(FILTER_HTTP_CONNECTION)
	N(SERVER_NEW_CLIENT_INSTANTIATED)
	N(FILTER_PROTOCOL_CONNECTION)
	N(OPENSSL_LOAD_EXTRA_CLIENT_VERIFY_CERTS)
	N(OPENSSL_LOAD_EXTRA_SERVER_VERIFY_CERTS)
	N(OPENSSL_PERFORM_CLIENT_CERT_VERIFICATION)
	N(CLIENT_APPEND_HANDSHAKE_HEADER)
	N(CONFIRM_EXTENSION_OKAY)
	N(CLIENT_CONFIRM_EXTENSION_SUPPORTED)
	N(PROTOCOL_INIT)
	N(PROTOCOL_DESTROY)
	N(WSI_CREATE)
	N(WSI_DESTROY)
	N(GET_THREAD_ID)
	N(ADD_POLL_FD)
	N(DEL_POLL_FD)
	N(CHANGE_MODE_POLL_FD)
	N(LOCK_POLL)
	N(UNLOCK_POLL)
#if LWS_LIBRARY_VERSION_NUMBER < 4003003	/* removed in 4.3.3 */
	N(OPENSSL_CONTEXT_REQUIRES_PRIVATE_KEY)
#endif
	N(WS_PEER_INITIATED_CLOSE)
	N(WS_EXT_DEFAULTS)
	N(CGI)
	N(CGI_TERMINATED)
	N(CGI_STDIN_DATA)
	N(CGI_STDIN_COMPLETED)
	N(ESTABLISHED_CLIENT_HTTP)
	N(CLOSED_CLIENT_HTTP)
	N(RECEIVE_CLIENT_HTTP)
	N(COMPLETED_CLIENT_HTTP)
	N(RECEIVE_CLIENT_HTTP_READ)
	N(HTTP_BIND_PROTOCOL)
	N(HTTP_DROP_PROTOCOL)
	N(CHECK_ACCESS_RIGHTS)
	N(PROCESS_HTML)
	N(ADD_HEADERS)
	N(SESSION_INFO)
	N(GS_EVENT)
	N(HTTP_PMO)
	N(CLIENT_HTTP_WRITEABLE)
	N(OPENSSL_PERFORM_SERVER_CERT_VERIFICATION)
	N(RAW_RX)
	N(RAW_CLOSE)
	N(RAW_WRITEABLE)
	N(RAW_ADOPT)
	N(RAW_ADOPT_FILE)
	N(RAW_RX_FILE)
	N(RAW_WRITEABLE_FILE)
	N(RAW_CLOSE_FILE)
	N(SSL_INFO)
	N(CHILD_CLOSING)
	N(CGI_PROCESS_ATTACH)
	N(EVENT_WAIT_CANCELLED)
	N(VHOST_CERT_AGING)
	N(TIMER)
	N(VHOST_CERT_UPDATE)
	N(CLIENT_CLOSED)
	N(CLIENT_HTTP_DROP_PROTOCOL)
	N(WS_SERVER_BIND_PROTOCOL)
	N(WS_SERVER_DROP_PROTOCOL)
	N(WS_CLIENT_BIND_PROTOCOL)
	N(WS_CLIENT_DROP_PROTOCOL)
	N(RAW_SKT_BIND_PROTOCOL)
	N(RAW_SKT_DROP_PROTOCOL)
	N(RAW_FILE_BIND_PROTOCOL)
	N(RAW_FILE_DROP_PROTOCOL)
	N(CLIENT_HTTP_BIND_PROTOCOL)
	N(HTTP_CONFIRM_UPGRADE)
	N(RAW_PROXY_CLI_RX)
	N(RAW_PROXY_SRV_RX)
	N(RAW_PROXY_CLI_CLOSE)
	N(RAW_PROXY_SRV_CLOSE)
	N(RAW_PROXY_CLI_WRITEABLE)
	N(RAW_PROXY_SRV_WRITEABLE)
	N(RAW_PROXY_CLI_ADOPT)
	N(RAW_PROXY_SRV_ADOPT)
	N(RAW_PROXY_CLI_BIND_PROTOCOL)
	N(RAW_PROXY_SRV_BIND_PROTOCOL)
	N(RAW_PROXY_CLI_DROP_PROTOCOL)
	N(RAW_PROXY_SRV_DROP_PROTOCOL)
	N(RAW_CONNECTED)
	N(VERIFY_BASIC_AUTHORIZATION)
	N(WSI_TX_CREDIT_GET)
	N(CLIENT_HTTP_REDIRECT)
#if LWS_LIBRARY_VERSION_NUMBER >= 4002000	/* added in 4.2.0 */
	N(CONNECTING)
#endif
	N(MQTT_NEW_CLIENT_INSTANTIATED)
	N(MQTT_IDLE)
	N(MQTT_CLIENT_ESTABLISHED)
	N(MQTT_SUBSCRIBED)
	N(MQTT_CLIENT_WRITEABLE)
	N(MQTT_CLIENT_RX)
	N(MQTT_UNSUBSCRIBED)
	N(MQTT_DROP_PROTOCOL)
	N(MQTT_CLIENT_CLOSED)
	N(MQTT_ACK)
	N(MQTT_RESEND)
#if LWS_LIBRARY_VERSION_NUMBER >= 4003000	/* added in 4.3.0 */
	N(MQTT_UNSUBSCRIBE_TIMEOUT)
#endif
#if LWS_LIBRARY_VERSION_NUMBER >= 4003002	/* added in 4.3.2 */
	N(MQTT_SHADOW_TIMEOUT)
#endif
	N(USER)
#undef N
	}

	return "LWS_CALLBACK_UNKNOWN";
}

/*
 * Reasons whose wsi is a fake (stack or per-thread) wsi, or NULL: they log
 * wsi:0 and never get an id.  37 is compared numerically since the enum name
 * is gone in 4.3.3+.
 */
static int
reason_has_fake_wsi(int reason)
{
	switch (reason) {
	case LWS_CALLBACK_PROTOCOL_INIT:
	case LWS_CALLBACK_PROTOCOL_DESTROY:
	case LWS_CALLBACK_GET_THREAD_ID:
	case LWS_CALLBACK_EVENT_WAIT_CANCELLED:
	case LWS_CALLBACK_OPENSSL_LOAD_EXTRA_CLIENT_VERIFY_CERTS:
	case LWS_CALLBACK_OPENSSL_LOAD_EXTRA_SERVER_VERIFY_CERTS:
	case LWS_CALLBACK_OPENSSL_PERFORM_CLIENT_CERT_VERIFICATION:
	case 37: /* OPENSSL_CONTEXT_REQUIRES_PRIVATE_KEY */
	case LWS_CALLBACK_VHOST_CERT_AGING:
	case LWS_CALLBACK_VHOST_CERT_UPDATE:
		return 1;
	}

	return 0;
}

/*
 * Ids live in the wsi's opaque user data, which lws sets itself at two points
 * where the wsi has already had a callback (lib/core-net/adopt.c and
 * lib/core-net/connect.c, 4.1.6 and 4.3.x):
 *
 *  - An accepted connection: lws calls WSI_CREATE and *then* sets
 *    opaque_user_data from the adoption info (NULL), wiping whatever
 *    WSI_CREATE stored (lws_adopt_descriptor_vhost1).  So the id given at
 *    WSI_CREATE is also remembered in a one-entry side slot and re-attached
 *    at that wsi's next callback (SERVER_NEW_CLIENT_INSTANTIATED, in the same
 *    adoption call).
 *  - A client connection: lws_client_connect_via_info calls
 *    CLIENT_HTTP_BIND_PROTOCOL before it copies ci.opaque_user_data into the
 *    wsi (and into its stash, from which lws restores it again later).  So
 *    the client's id is taken before connecting and passed as
 *    ci.opaque_user_data; while the call runs it is also "connecting_id",
 *    which the wsi without an id (the new one) gets.  This is also how
 *    lwsgate numbers a client link: its record exists before the connect.
 */
static struct lws *created_wsi;
static uintptr_t created_id;
static uintptr_t connecting_id;

static unsigned long
wsi_id(struct lws *wsi, int reason)
{
	uintptr_t id;

	if (!wsi || reason_has_fake_wsi(reason))
		return 0;

	id = (uintptr_t)lws_get_opaque_user_data(wsi);
	if (wsi == created_wsi && reason != LWS_CALLBACK_WSI_CREATE) {
		if (!id) {
			id = created_id;
			lws_set_opaque_user_data(wsi, (void *)id);
		}
		created_wsi = NULL;
	}
	if (!id && connecting_id) {
		id = connecting_id;
		lws_set_opaque_user_data(wsi, (void *)id);
	}
	if (!id) {
		id = ++next_wsi_id;
		lws_set_opaque_user_data(wsi, (void *)id);
	}

	if (reason == LWS_CALLBACK_WSI_CREATE) {
		created_wsi = wsi;
		created_id = id;
	}

	return (unsigned long)id;
}

/* WSI_DESTROY: the wsi's memory may be reused, forget its id. */
static void
wsi_forget(struct lws *wsi)
{
	lws_set_opaque_user_data(wsi, NULL);
	if (wsi == created_wsi)
		created_wsi = NULL;
}

static void
trace(struct lws *wsi, int reason)
{
	char line[192], ts[32];
	struct timespec now;
	struct tm tm;
	int n;

	clock_gettime(CLOCK_REALTIME, &now);
	localtime_r(&now.tv_sec, &tm);
	strftime(ts, sizeof(ts), "%Y-%m-%d %H:%M:%S", &tm);

	n = snprintf(line, sizeof(line),
		     "[%s.%03ld][DEBUG] cb ctx:1 wsi:%lu reason:%d %s\n", ts,
		     now.tv_nsec / 1000000, wsi_id(wsi, reason), reason,
		     reason_name(reason));
	if (n > 0 && (size_t)n < sizeof(line))
		/* stdout is line buffered: one write(2) per line */
		fwrite(line, 1, (size_t)n, stdout);
}

/* ------------------------------------------------------------------------ */
/* websocket                                                                 */

/* Keepalive (see the design note): the link's ping or hangup is due. */
static void
ka_cb(lws_sorted_usec_list_t *sul)
{
	struct pss *pss = lws_container_of(sul, struct pss, ka_sul);

	if (pss->ka_pinged || ka_hangup <= ka_ping) {
		/* no pong in time: close without a close frame, as lws' own
		 * policy and lwsgate do */
		lws_set_timeout(pss->ka_wsi, PENDING_TIMEOUT_USER_OK,
				LWS_TO_KILL_SYNC);
		return;
	}
	pss->ka_pinged = 1;
	pss->ka_ping_due = 1;
	lws_callback_on_writable(pss->ka_wsi);
	lws_sul_schedule(g_ctx, 0, &pss->ka_sul, ka_cb,
			 (lws_usec_t)(ka_hangup - ka_ping) * LWS_US_PER_SEC);
}

/* ESTABLISHED and RECEIVE_PONG: the link is alive; ping it after ka_ping. */
static void
ka_arm(struct lws *wsi, struct pss *pss)
{
	pss->ka_wsi = wsi;
	pss->ka_pinged = 0;
	lws_sul_schedule(g_ctx, 0, &pss->ka_sul, ka_cb,
			 (lws_usec_t)(ka_hangup <= ka_ping ? ka_hangup : ka_ping) *
			 LWS_US_PER_SEC);
}

static void
ws_free_all(struct pss *pss)
{
	struct msg *m;

	while ((m = pss->head)) {
		pss->head = m->next;
		free(m);
	}
	pss->tail = NULL;
	free(pss->rx);
	pss->rx = NULL;
}

static int
too_large(struct lws *wsi)
{
	static const char why[] = "message too large";

	lws_close_reason(wsi, LWS_CLOSE_STATUS_MESSAGE_TOO_LARGE,
			 (unsigned char *)why, sizeof(why) - 1);

	return -1;
}

/*
 * RECEIVE, CLIENT_RECEIVE: append the chunk to pss->rx.  When it completes
 * the message (final fragment and no payload remaining), *done gets it and
 * the caller owns it; otherwise *done is NULL.
 */
static int
ws_reassemble(struct lws *wsi, struct pss *pss, const void *in, size_t len,
	      struct msg **done)
{
	size_t remaining = lws_remaining_packet_payload(wsi);
	struct msg *m = pss->rx;

	*done = NULL;
	if (!m) {
		/* first chunk: size for the whole frame if we can */
		size_t cap = len + remaining;

		if (cap > MAX_MESSAGE)
			return too_large(wsi);
		m = malloc(sizeof(*m) + LWS_PRE + cap);
		if (!m)
			return -1;
		m->next = NULL;
		m->len = 0;
		m->cap = cap;
		m->binary = lws_frame_is_binary(wsi);
		pss->rx = m;
	}

	if (m->len + len + remaining > MAX_MESSAGE)
		return too_large(wsi);

	if (m->len + len > m->cap) {
		/* another frame of a fragmented message: grow geometrically */
		size_t cap = m->cap * 2;
		struct msg *g;

		if (cap < m->len + len + remaining)
			cap = m->len + len + remaining;
		if (cap > MAX_MESSAGE)
			cap = MAX_MESSAGE;
		g = realloc(m, sizeof(*m) + LWS_PRE + cap);
		if (!g)
			return -1;
		g->cap = cap;
		m = pss->rx = g;
	}

	if (len)
		memcpy(m->buf + LWS_PRE + m->len, in, len);
	m->len += len;

	if (lws_is_final_fragment(wsi) && !remaining) {
		pss->rx = NULL;
		*done = m;
	}

	return 0;
}

/* Close codes a close frame may carry (RFC 6455 7.4, IANA registry). */
static int
close_code_sendable(int code)
{
	return (code >= 1000 && code <= 1003) ||
	       (code >= 1007 && code <= 1014) ||
	       (code >= 3000 && code <= 4999);
}

/*
 * A text message starting "/close " is a close command: "/close CODE" or
 * "/close CODE REASON" (CODE sendable, REASON up to 123 bytes).  Returns 0
 * for any other message, 1 for a command (remembered in the pss), -1 for a
 * malformed one.
 */
static int
close_command(struct pss *pss, const struct msg *m)
{
	static const char cmd[] = "/close ";
	const char *p = (const char *)m->buf + LWS_PRE, *end = p + m->len;
	int code = 0, digits = 0;

	if (m->binary || m->len < sizeof(cmd) - 1 ||
	    memcmp(p, cmd, sizeof(cmd) - 1))
		return 0;
	for (p += sizeof(cmd) - 1; p < end && digits < 4 &&
				   *p >= '0' && *p <= '9'; p++, digits++)
		code = code * 10 + (*p - '0');
	if (!close_code_sendable(code))
		return -1;
	if (p < end && (*p++ != ' ' || end - p > CLOSE_REASON_MAX))
		return -1;

	pss->close_code = code;
	pss->close_len = (size_t)(end - p);
	memcpy(pss->close_reason, p, pss->close_len);

	return 1;
}

/* A text message of our own for the echo queue. */
static struct msg *
text_msg(const char *text)
{
	size_t len = strlen(text);
	struct msg *m = malloc(sizeof(*m) + LWS_PRE + len);

	if (!m)
		return NULL;
	m->next = NULL;
	m->len = m->cap = len;
	m->binary = 0;
	memcpy(m->buf + LWS_PRE, text, len);

	return m;
}

/* RECEIVE: queue complete messages for the echo, or take a close command. */
static int
ws_receive(struct lws *wsi, struct pss *pss, const void *in, size_t len)
{
	struct msg *m;

	if (ws_reassemble(wsi, pss, in, len, &m))
		return -1;
	if (!m)
		return 0;

	if (pss->close_code) {
		/* closing: nothing more is echoed */
		free(m);
		return 0;
	}
	switch (close_command(pss, m)) {
	case 1:
		free(m);
		lws_callback_on_writable(wsi);
		return 0;
	case -1:
		/* the answer replaces the echo, as lwsgate does */
		free(m);
		m = text_msg("error: want /close CODE [REASON]: CODE "
			     "1000-1003, 1007-1014 or 3000-4999, REASON up "
			     "to 123 bytes");
		if (!m)
			return -1;
		break;
	}

	if (pss->tail)
		pss->tail->next = m;
	else
		pss->head = m;
	pss->tail = m;
	lws_callback_on_writable(wsi);

	return 0;
}

/*
 * SERVER_WRITEABLE: one message (single) or until the pipe chokes; once the
 * queue was empty at the start of a writeable, carry out a close command.
 * lws calls SERVER_WRITEABLE again after it has sent that close frame, while
 * it waits for the peer's: returning -1 then would drop the connection
 * without the closing handshake, so that one returns 0.
 */
static int
ws_writeable(struct lws *wsi, struct pss *pss)
{
	struct msg *m;
	int n;

	if (pss->close_sent)
		return 0;
	if (pss->ka_ping_due) {
		/* control frames first, as lwsgate writes its pings */
		unsigned char ping[LWS_PRE + sizeof(KA_PAYLOAD)];

		pss->ka_ping_due = 0;
		memcpy(ping + LWS_PRE, KA_PAYLOAD, sizeof(KA_PAYLOAD) - 1);
		if (lws_write(wsi, ping + LWS_PRE, sizeof(KA_PAYLOAD) - 1,
			      LWS_WRITE_PING) < (int)sizeof(KA_PAYLOAD) - 1)
			return -1;
	}
	if (!pss->head && pss->close_code) {
		lws_close_reason(wsi, (enum lws_close_status)pss->close_code,
				 pss->close_reason, pss->close_len);
		pss->close_sent = 1;
		return -1;
	}

	while ((m = pss->head)) {
		n = lws_write(wsi, m->buf + LWS_PRE, m->len,
			      m->binary ? LWS_WRITE_BINARY : LWS_WRITE_TEXT);
		if (n < 0 || (size_t)n < m->len)
			return -1;
		pss->head = m->next;
		if (!pss->head)
			pss->tail = NULL;
		free(m);
		if (write_single || lws_send_pipe_choked(wsi))
			break;
	}

	if (pss->head || pss->close_code)
		lws_callback_on_writable(wsi);

	return 0;
}

/* ------------------------------------------------------------------------ */
/* http                                                                      */

/* Crude: the value after "RequestId", quoted or not, [A-Za-z0-9._-] only. */
static void
request_id(const char *body, char *out, size_t outlen)
{
	const char *p = strstr(body, "\"RequestId\"");
	size_t n = 0;

	if (p) {
		p += strlen("\"RequestId\"");
		while (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n')
			p++;
		if (*p == ':') {
			p++;
			while (*p == ' ' || *p == '\t' || *p == '\r' ||
			       *p == '\n' || *p == '"')
				p++;
			while (n + 1 < outlen &&
			       ((*p >= '0' && *p <= '9') ||
				(*p >= 'a' && *p <= 'z') ||
				(*p >= 'A' && *p <= 'Z') ||
				*p == '.' || *p == '_' || *p == '-'))
				out[n++] = *p++;
		}
	}
	if (!n)
		out[n++] = '0';
	out[n] = '\0';
}

static int
http_status(struct lws *wsi, unsigned int code)
{
	if (lws_return_http_status(wsi, code, NULL))
		return -1;
	if (lws_http_transaction_completed(wsi))
		return -1;

	return 0;
}

/* Status 200 headers for a body of len bytes. */
static int
http_headers(struct lws *wsi, const char *ctype, size_t len)
{
	unsigned char hdr[LWS_PRE + LWS_RECOMMENDED_MIN_HEADER_SPACE];
	unsigned char *start = hdr + LWS_PRE, *p = start,
		      *end = hdr + sizeof(hdr);

	if (lws_add_http_common_headers(wsi, HTTP_STATUS_OK, ctype,
					(lws_filepos_t)len, &p, end))
		return -1;
	if (lws_finalize_write_http_header(wsi, start, &p, end))
		return -1;

	return 0;
}

/* BODY_COMPLETION of POST createtoken: send headers, body on WRITEABLE. */
static int
http_createtoken_reply(struct lws *wsi, struct pss *pss)
{
	char id[65];
	int n;

	pss->body[pss->body_len] = '\0';
	request_id(pss->body, id, sizeof(id));
	n = snprintf((char *)pss->resp + LWS_PRE, sizeof(pss->resp) - LWS_PRE,
		     "{\"code\":0,\"token\":\"native-%s\"}", id);
	if (n < 0 || (size_t)n >= sizeof(pss->resp) - LWS_PRE)
		return -1;
	pss->resp_len = (size_t)n;

	if (http_headers(wsi, "application/json", pss->resp_len))
		return -1;

	pss->resp_pending = 1;
	lws_callback_on_writable(wsi);

	return 0;
}

/* The GET slow timer: the reply is due. */
static void
slow_cb(lws_sorted_usec_list_t *sul)
{
	struct pss *pss = lws_container_of(sul, struct pss, sul);
	static const char body[] = "slow\n";

	memcpy(pss->resp + LWS_PRE, body, sizeof(body) - 1);
	pss->resp_len = sizeof(body) - 1;
	pss->resp_pending = 1;
	if (SLOW_RX_OFF)
		lws_rx_flow_control(pss->wsi, 1);
	lws_callback_on_writable(pss->wsi);
}

/*
 * HTTP of GET /v1/api/slow[?ms=N]: reply in N ms.  As lwsgate: N is clamped
 * to 0-10000, and is 500 when missing or not a number.
 */
static int
http_slow(struct lws *wsi, struct pss *pss)
{
	long ms = SLOW_DEFAULT_MS;
	const char *v;
	char arg[32];

	v = lws_get_urlarg_by_name(wsi, "ms=", arg, (int)sizeof(arg));
	if (v && !parse_num(v, LONG_MIN, LONG_MAX, &ms))
		ms = ms < 0 ? 0 : ms > SLOW_MAX_MS ? SLOW_MAX_MS : ms;

	pss->slow = 1;
	pss->wsi = wsi;
	lws_sul_schedule(g_ctx, 0, &pss->sul, slow_cb,
			 (lws_usec_t)ms * LWS_US_PER_MS);
	if (SLOW_RX_OFF)
		lws_rx_flow_control(wsi, 0);

	return 0;
}

/*
 * The peer has shut down its side (FIN or reset), pending data or not (a TLS
 * close_notify is data): nobody is left to read a reply.  Needed on 4.1 for
 * the slow reply (see SLOW_RX_OFF); on 4.3.1+ lws closes the wsi first.
 */
static int
peer_gone(struct lws *wsi)
{
	struct pollfd pfd;

	pfd.fd = lws_get_socket_fd(wsi);
	pfd.events = POLLRDHUP;
	pfd.revents = 0;

	return pfd.fd >= 0 && poll(&pfd, 1, 0) > 0 &&
	       (pfd.revents & (POLLRDHUP | POLLHUP | POLLERR));
}

static int
http_request(struct lws *wsi, struct pss *pss, const char *path)
{
	if (pss && path && !strcmp(path, CREATETOKEN_PATH) &&
	    lws_hdr_total_length(wsi, WSI_TOKEN_POST_URI) > 0) {
		pss->createtoken = 1;
		pss->resp_pending = 0;
		pss->body_len = 0;
		return 0;	/* wait for the body */
	}
	if (pss && path && !strcmp(path, SLOW_PATH) &&
	    lws_hdr_total_length(wsi, WSI_TOKEN_GET_URI) > 0)
		return http_slow(wsi, pss);

	return http_status(wsi, HTTP_STATUS_NOT_FOUND);
}

/* HTTP_WRITEABLE with a reply ready: [headers,] body, end of transaction. */
static int
http_writeable(struct lws *wsi, struct pss *pss)
{
	int n;

	pss->resp_pending = 0;
	if (pss->slow) {
		if (peer_gone(wsi))
			return -1;	/* write nothing */
		if (http_headers(wsi, "text/plain", pss->resp_len))
			return -1;
	}
	n = lws_write(wsi, pss->resp + LWS_PRE, pss->resp_len,
		      LWS_WRITE_HTTP_FINAL);
	if (n < 0 || (size_t)n < pss->resp_len)
		return -1;
	/* may rebind the protocol: pss is freed, don't touch it after */
	if (lws_http_transaction_completed(wsi))
		return -1;

	return 0;
}

/* ------------------------------------------------------------------------ */
/* clients (-c, -H): the one link                                            */

/* CLIENT_WRITEABLE: the next -s message, or the close after the last reply. */
static int
ws_client_writeable(struct lws *wsi)
{
	size_t len;
	int n;

	if (cl.awaiting || cl.closing)
		return 0;
	if (cl.sent == o.nsends) {
		cl.ok = cl.closing = 1;
		lws_close_reason(wsi, LWS_CLOSE_STATUS_NORMAL, NULL, 0);
		return -1;
	}

	/* masked in place: write from our own buffer */
	len = strlen(o.sends[cl.sent]);
	memcpy(cl.tx + LWS_PRE, o.sends[cl.sent], len);
	n = lws_write(wsi, cl.tx + LWS_PRE, len, LWS_WRITE_TEXT);
	if (n < 0 || (size_t)n < len)
		return -1;
	cl.sent++;
	cl.awaiting = 1;

	return 0;
}

/* CLIENT_RECEIVE: a complete message is the reply we were waiting for. */
static int
ws_client_receive(struct lws *wsi, struct pss *pss, const void *in,
		  size_t len)
{
	struct msg *m;

	if (ws_reassemble(wsi, pss, in, len, &m))
		return -1;
	if (!m)
		return 0;

	fprintf(stderr, "recv: %.*s\n", (int)m->len,
		(const char *)m->buf + LWS_PRE);
	free(m);
	cl.awaiting = 0;
	lws_callback_on_writable(wsi);

	return 0;
}

/* WS_PEER_INITIATED_CLOSE on the client: in is the close payload. */
static void
ws_client_peer_close(const unsigned char *in, size_t len)
{
	if (len >= 2)
		fprintf(stderr, "close: %d %.*s\n", in[0] << 8 | in[1],
			(int)(len - 2), (const char *)in + 2);
	else
		fprintf(stderr, "close: (no code)\n");
	cl.ok = 1;
}

/* CLIENT_APPEND_HANDSHAKE_HEADER of -H with -D: announce the body. */
static int
http_client_headers(struct lws *wsi, unsigned char **p, size_t room)
{
	char clen[24];

	if (!o.data)
		return 0;
	snprintf(clen, sizeof(clen), "%zu", cl.data_len);
	if (lws_add_http_header_by_token(wsi, WSI_TOKEN_HTTP_CONTENT_LENGTH,
					 (unsigned char *)clen,
					 (int)strlen(clen), p, *p + room))
		return -1;
	lws_client_http_body_pending(wsi, 1);
	lws_callback_on_writable(wsi);

	return 0;
}

/* CLIENT_HTTP_WRITEABLE: the whole -D body in one final write. */
static int
http_client_writeable(struct lws *wsi)
{
	int n;

	if (!o.data || cl.body_sent)
		return 0;	/* lws may call again: nothing to do */
	cl.body_sent = 1;
	lws_client_http_body_pending(wsi, 0);
	n = lws_write(wsi, cl.tx + LWS_PRE, cl.data_len, LWS_WRITE_HTTP_FINAL);
	if (n < 0 || (size_t)n < cl.data_len)
		return -1;

	return 0;
}

/* RECEIVE_CLIENT_HTTP: let lws read; the body comes as ..._HTTP_READ. */
static int
http_client_read(struct lws *wsi)
{
	char buf[LWS_PRE + 4096], *p = buf + LWS_PRE;
	int n = (int)sizeof(buf) - LWS_PRE;

	return lws_http_client_read(wsi, &p, &n) < 0 ? -1 : 0;
}

/*
 * RECEIVE_CLIENT_HTTP_READ: keep the chunk.  The body is printed whole at
 * COMPLETED_CLIENT_HTTP, so that it comes out as whole lines between the
 * reason log's lines when stdout and stderr share a pipe.
 */
static int
http_client_body(const void *in, size_t len)
{
	char *b;

	if (cl.rxbody_len + len > MAX_MESSAGE)
		return -1;
	b = realloc(cl.rxbody, cl.rxbody_len + len);
	if (!b)
		return -1;
	memcpy(b + cl.rxbody_len, in, len);
	cl.rxbody = b;
	cl.rxbody_len += len;

	return 0;
}

/* COMPLETED_CLIENT_HTTP: the body, ending with a newline. */
static void
http_client_done(void)
{
	if (cl.rxbody_len) {
		fwrite(cl.rxbody, 1, cl.rxbody_len, stderr);
		if (cl.rxbody[cl.rxbody_len - 1] != '\n')
			fputc('\n', stderr);
	}
	cl.ok = 1;
}

/* ------------------------------------------------------------------------ */
/* the one protocol callback                                                 */

static int
callback(struct lws *wsi, enum lws_callback_reasons reason, void *user,
	 void *in, size_t len)
{
	struct pss *pss = (struct pss *)user;
	int n;

	if (trace_on)
		trace(wsi, (int)reason);

	switch (reason) {
	case LWS_CALLBACK_GET_THREAD_ID:
		return 0;

	case LWS_CALLBACK_WSI_DESTROY:
		if (pss) {
			ws_free_all(pss);
			lws_sul_cancel(&pss->sul);
			lws_sul_cancel(&pss->ka_sul);
		}
		if (trace_on)
			wsi_forget(wsi);
		if (wsi == cl.wsi)
			cl.done = 1;
		return 0;

	/* websocket server */

	case LWS_CALLBACK_ESTABLISHED:
	case LWS_CALLBACK_RECEIVE_PONG:
		if (pss)
			ka_arm(wsi, pss);
		return 0;

	case LWS_CALLBACK_RECEIVE:
		if (!pss)
			return -1;
		return ws_receive(wsi, pss, in, len);

	case LWS_CALLBACK_SERVER_WRITEABLE:
		if (!pss)
			return -1;
		return ws_writeable(wsi, pss);

	/* http server */

	case LWS_CALLBACK_HTTP:
		return http_request(wsi, pss, (const char *)in);

	case LWS_CALLBACK_HTTP_BODY:
		if (!pss || !pss->createtoken)
			break;
		n = (int)(sizeof(pss->body) - 1 - pss->body_len);
		if (in && n > 0) {
			if ((size_t)n > len)
				n = (int)len;
			memcpy(pss->body + pss->body_len, in, (size_t)n);
			pss->body_len += (size_t)n;
		}
		return 0;

	case LWS_CALLBACK_HTTP_BODY_COMPLETION:
		if (!pss || !pss->createtoken)
			break;
		return http_createtoken_reply(wsi, pss);

	case LWS_CALLBACK_HTTP_WRITEABLE:
		if (!pss || !pss->resp_pending)
			break;
		return http_writeable(wsi, pss);

	case LWS_CALLBACK_HTTP_DROP_PROTOCOL:
	case LWS_CALLBACK_CLOSED_HTTP:
		/* the pss goes away: a pending slow reply must not fire */
		if (pss)
			lws_sul_cancel(&pss->sul);
		break;

	/* clients */

	case LWS_CALLBACK_CLIENT_CONNECTION_ERROR:
		fprintf(stderr, "error: %s\n",
			in ? (const char *)in : "(no reason)");
		cl.failed = 1;
		return 0;

	case LWS_CALLBACK_CLIENT_ESTABLISHED:
		lws_callback_on_writable(wsi);
		return 0;

	case LWS_CALLBACK_CLIENT_RECEIVE:
		if (!pss)
			return -1;
		return ws_client_receive(wsi, pss, in, len);

	case LWS_CALLBACK_CLIENT_WRITEABLE:
		return ws_client_writeable(wsi);

	case LWS_CALLBACK_WS_PEER_INITIATED_CLOSE:
		if (wsi == cl.wsi)
			ws_client_peer_close(in, len);
		break;

	case LWS_CALLBACK_CLIENT_APPEND_HANDSHAKE_HEADER:
		if (o.client != 'H')
			break;
		return http_client_headers(wsi, (unsigned char **)in, len);

	case LWS_CALLBACK_CLIENT_HTTP_WRITEABLE:
		return http_client_writeable(wsi);

	case LWS_CALLBACK_ESTABLISHED_CLIENT_HTTP:
		if (o.client == 'H')
			fprintf(stderr, "status: %u\n",
				lws_http_client_http_response(wsi));
		break;

	case LWS_CALLBACK_RECEIVE_CLIENT_HTTP:
		return http_client_read(wsi);

	case LWS_CALLBACK_RECEIVE_CLIENT_HTTP_READ:
		if (!in || !len)
			return 0;
		return http_client_body(in, len);

	case LWS_CALLBACK_COMPLETED_CLIENT_HTTP:
		http_client_done();
		return -1;	/* one request per connection */

	default:
		break;
	}

	return lws_callback_http_dummy(wsi, reason, user, in, len);
}

/* ------------------------------------------------------------------------ */
/* main                                                                      */

static void
on_signal(int sig)
{
	(void)sig;
	interrupted = 1;
}

/* Keeps lws_service() from sleeping indefinitely while a signal is pending. */
static void
tick_cb(lws_sorted_usec_list_t *sul)
{
	if (!interrupted)
		lws_sul_schedule(g_ctx, 0, sul, tick_cb, TICK_US);
}

/* ------------------------------------------------------------------------ */
/* the libev loop (-e libev)                                                 */

#if defined(LWS_WITH_LIBEV)

/*
 * The loop lwsgate's service goroutine runs (cgo/evloop.c, whose comment
 * says why each part is there): lws on a foreign libev loop (epoll), one
 * ev_run(EVRUN_ONCE) per pass where lws_service() is one poll; lws' timers
 * run from an ev_prepare before each wait and an ev_timer for the next one
 * (lws' own libev timer is re-armed with ev_timer_set on a running timer,
 * which libev ignores: a timer due sooner fires late); and an ev_idle hands
 * over input lws holds (_lws_plat_service_forced_tsi) whenever
 * lws_service_adjust_timeout says there is some, as lws' poll loop does.
 */
static struct evloop {
	struct ev_loop	*loop;
	ev_prepare	prepare;	/* before each wait: lws' timers */
	ev_timer	timer;		/* when lws' next timer is due */
	ev_idle		forced;		/* while lws holds input */
	lws_dll2_owner_t *suls;		/* the context's timer lists */
	lws_usec_t	due;		/* when timer fires (0: stopped) */
} evl;

/* Runs lws' timers that are due and sets the ev_timer for the next one. */
static void
evl_timers(void)
{
	lws_usec_t now = lws_now_usecs(), us;

	us = __lws_sul_service_ripe(evl.suls, LWS_COUNT_PT_SUL_OWNERS, now);
	if (us && evl.due == now + us)
		return;
	ev_timer_stop(evl.loop, &evl.timer);
	evl.due = 0;
	if (!us)
		return;
	ev_now_update(evl.loop);	/* libev counts from its last read */
	ev_timer_set(&evl.timer, (ev_tstamp)us / 1e6, 0.);
	ev_timer_start(evl.loop, &evl.timer);
	evl.due = now + us;
}

static void
evl_prepare_cb(struct ev_loop *loop, ev_prepare *w, int revents)
{
	(void)w;
	(void)revents;
	evl_timers();
	if (!lws_service_adjust_timeout(g_ctx, 1, 0))
		ev_idle_start(loop, &evl.forced);
}

static void
evl_forced_cb(struct ev_loop *loop, ev_idle *w, int revents)
{
	(void)revents;
	ev_idle_stop(loop, w);	/* the next prepare starts it if need be */
	_lws_plat_service_forced_tsi(g_ctx, 0);
}

static void
evl_timer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop;
	(void)w;
	(void)revents;
	evl.due = 0;
	evl_timers();
}

/* Before lws_create_context: the loop for info.foreign_loops. */
static int
evl_new(void)
{
	/* epoll only; no LIBEV_FLAGS from the environment, signal mask
	 * left alone (as lwsgate, whose signals are Go's) */
	evl.loop = ev_loop_new(EVBACKEND_EPOLL | EVFLAG_NOENV |
			      EVFLAG_NOSIGMASK);
	if (!evl.loop) {
		fprintf(stderr, "lwsnative: ev_loop_new(EVBACKEND_EPOLL) "
			"failed\n");
		return -1;
	}
	ev_prepare_init(&evl.prepare, evl_prepare_cb);
	ev_timer_init(&evl.timer, evl_timer_cb, 0., 0.);
	ev_idle_init(&evl.forced, evl_forced_cb);

	return 0;
}

/* Once the tick is scheduled: its list is the first of the context's. */
static void
evl_attach(void)
{
	evl.suls = tick.list.owner;
	ev_prepare_start(evl.loop, &evl.prepare);
}

/* After lws_context_destroy. */
static void
evl_free(void)
{
	if (!evl.loop)
		return;
	ev_prepare_stop(evl.loop, &evl.prepare);
	ev_timer_stop(evl.loop, &evl.timer);
	ev_idle_stop(evl.loop, &evl.forced);
	ev_loop_destroy(evl.loop);
	evl.loop = NULL;
}

#endif /* LWS_WITH_LIBEV */

/* One pass of the loop: wait for events or a timer once, handle them. */
static int
service(void)
{
#if defined(LWS_WITH_LIBEV)
	if (o.libev) {
		ev_run(evl.loop, EVRUN_ONCE);
		return 0;
	}
#endif
	return lws_service(g_ctx, 0);
}

static void
usage(const char *argv0)
{
	fprintf(stderr,
		"usage: %s [-p port] [-i iface] [-t] [-m single|choked] [-d] "
		"[-r bytes] [-e poll|libev]\n"
		"          [-P secs] [-Q secs] [-C certfile -K keyfile]\n"
		"       %s -c ws[s]://host[:port][/path] [-s text]... "
		"[-k] [-A cafile] [-t] ...\n"
		"       %s -H http[s]://host[:port][/path] [-X method] "
		"[-D body] [-k] [-A cafile] [-t] ...\n"
		"  -p PORT   listen port (default 8090, 0 = kernel-chosen)\n"
		"  -i IFACE  bind address or interface (default 127.0.0.1)\n"
		"  -t        reason log on stdout\n"
		"  -m MODE   ws write mode: choked (default) or single\n"
		"  -d        lws debug logging on stderr\n"
		"  -r BYTES  rx_buffer_size and tx_packet_size (default 0)\n"
		"  -P SECS   idle ping after SECS (default: 300, lws')\n"
		"  -Q SECS   idle hangup after SECS (default -P + %d)\n"
		"  -C FILE   TLS certificate (PEM); needs -K\n"
		"  -K FILE   TLS private key (PEM); needs -C\n"
		"  -c URL    ws client: send each -s, await a reply to each\n"
		"  -s TEXT   message (repeatable; default \"hello world\")\n"
		"  -H URL    HTTP client: one request; status, body on stderr\n"
		"  -X METHOD request method (default GET, POST with -D)\n"
		"  -D BODY   request body (sent with content-length)\n"
		"  -k        client: accept any server certificate\n"
		"  -A FILE   client: CA certificates (PEM) to verify with\n"
		"  -e LOOP   event loop: poll (lws' own, default) or libev\n",
		argv0, argv0, argv0, HANGUP_AFTER_PING);
}

/*
 * Split scheme://host[:port][/path] (host may be a [v6] literal).  The port
 * defaults to 80, or 443 for the secure scheme; the path to "/".
 */
static int
parse_url(const char *url, const char *plain, const char *secure,
	  struct target *t)
{
	const char *a = strstr(url, "://"), *end, *h, *he, *pc;
	size_t schemelen, n;
	long port;

	if (!a)
		return -1;
	schemelen = (size_t)(a - url);
	if (schemelen == strlen(secure) && !strncmp(url, secure, schemelen))
		t->tls = 1;
	else if (schemelen != strlen(plain) || strncmp(url, plain, schemelen))
		return -1;
	a += 3;

	end = a + strcspn(a, "/?#");
	if (*end && *end != '/')
		return -1;
	t->path = *end ? end : "/";
	n = (size_t)(end - a);
	if (!n || n >= sizeof(t->authority))
		return -1;
	memcpy(t->authority, a, n);
	t->authority[n] = '\0';

	/* host and optional :port */
	h = a;
	if (*h == '[') {
		he = memchr(h, ']', n);
		if (!he)
			return -1;
		h++;
		pc = he + 1;
	} else {
		he = memchr(h, ':', n);
		if (!he)
			he = end;
		pc = he;
	}
	if (he == h || (size_t)(he - h) >= sizeof(t->host))
		return -1;
	memcpy(t->host, h, (size_t)(he - h));
	t->host[he - h] = '\0';

	t->port = t->tls ? 443 : 80;
	if (pc < end) {
		char num[8];

		if (*pc != ':' || (size_t)(end - pc) > sizeof(num))
			return -1;
		memcpy(num, pc + 1, (size_t)(end - pc - 1));
		num[end - pc - 1] = '\0';
		if (parse_num(num, 1, 65535, &port))
			return -1;
		t->port = (int)port;
	}

	return 0;
}

/* getaddrinfo now, so lws gets an IP literal and never resolves itself. */
static int
resolve(struct target *t)
{
	struct addrinfo hints, *res;
	int n;

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	n = getaddrinfo(t->host, NULL, &hints, &res);
	if (!n) {
		n = getnameinfo(res->ai_addr, res->ai_addrlen, t->address,
				sizeof(t->address), NULL, 0, NI_NUMERICHOST);
		freeaddrinfo(res);
	}
	if (n) {
		fprintf(stderr, "lwsnative: %s: %s\n", t->host,
			gai_strerror(n));
		return -1;
	}

	return 0;
}

/* -C, -K, -A: say which file is missing or not PEM before lws tries it. */
static int
check_pem(const char *flag, const char *path, const char *label)
{
	char buf[16384], end[32];
	size_t n;
	FILE *f;

	f = fopen(path, "r");
	if (!f) {
		fprintf(stderr, "lwsnative: %s %s: %s\n", flag, path,
			strerror(errno));
		return -1;
	}
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	/* "-----BEGIN CERTIFICATE-----", "-----BEGIN EC PRIVATE KEY-----" */
	snprintf(end, sizeof(end), "%s-----", label);
	if (!strstr(buf, "-----BEGIN ") || !strstr(buf, end)) {
		fprintf(stderr, "lwsnative: %s %s: no PEM %s\n", flag, path,
			label);
		return -1;
	}

	return 0;
}

/* Client modes: the one link. */
static int
client_connect(struct lws_vhost *vh)
{
	struct lws_client_connect_info i;
	struct lws *wsi;

	memset(&i, 0, sizeof(i));
	i.context = g_ctx;
	i.vhost = vh;
	i.address = cl.t.address;
	i.port = cl.t.port;
	i.path = cl.t.path;
	i.host = cl.t.authority;
	i.local_protocol_name = "lwsnative-client";
	if (cl.t.tls) {
		i.ssl_connection |= LCCSCF_USE_SSL;
		i.alpn = "http/1.1";	/* ws and http over h1, never h2 */
	}
	if (cl.t.tls && o.insecure)
		i.ssl_connection |= LCCSCF_ALLOW_SELFSIGNED |
				    LCCSCF_SKIP_SERVER_CERT_HOSTNAME_CHECK |
				    LCCSCF_ALLOW_EXPIRED |
				    LCCSCF_ALLOW_INSECURE;
	if (o.client == 'H') {
		i.method = o.method;
		i.ssl_connection |= LCCSCF_HTTP_NO_FOLLOW_REDIRECT;
	}
	if (o.ping_secs)
		i.retry_and_idle_policy = &retry;
	i.pwsi = &cl.wsi;

	/* the link's id, before its first callback (see wsi_id) */
	connecting_id = ++next_wsi_id;
	i.opaque_user_data = (void *)connecting_id;
	wsi = lws_client_connect_via_info(&i);
	connecting_id = 0;

	if (!wsi) {
		if (!cl.failed)
			fprintf(stderr, "error: connect to %s failed\n", o.url);
		cl.failed = 1;
		return -1;
	}

	return 0;
}

/* 0: run, 1: -h, -1: bad arguments. */
static int
parse_args(int argc, char **argv)
{
	int opt, server_only = 0, client_only = 0, ws_only = 0, http_only = 0;

	/* -s strings in order (argc is room enough, and for the default) */
	o.sends = calloc((size_t)argc, sizeof(*o.sends));
	if (!o.sends)
		return -1;

	while ((opt = getopt(argc, argv, "p:i:tm:dr:P:Q:C:K:c:s:H:X:D:kA:e:h")) !=
	       -1) {
		switch (opt) {
		case 'p':
			if (parse_num(optarg, 0, 65535, &o.port))
				return -1;
			server_only = 1;
			break;
		case 'i':
			o.iface = optarg;
			server_only = 1;
			break;
		case 't':
			trace_on = 1;
			break;
		case 'm':
			if (!strcmp(optarg, "single"))
				write_single = 1;
			else if (!strcmp(optarg, "choked"))
				write_single = 0;
			else
				return -1;
			server_only = 1;
			break;
		case 'd':
			o.debug = 1;
			break;
		case 'r':
			if (parse_num(optarg, 0, 16 * 1024 * 1024, &o.rxsize))
				return -1;
			break;
		case 'P':
			if (parse_num(optarg, 1, 65535, &o.ping_secs))
				return -1;
			break;
		case 'Q':
			if (parse_num(optarg, 1, 65535, &o.hangup_secs))
				return -1;
			break;
		case 'C':
			o.cert = optarg;
			server_only = 1;
			break;
		case 'K':
			o.key = optarg;
			server_only = 1;
			break;
		case 'c':
		case 'H':
			if (o.client)
				return -1;
			o.client = opt;
			o.url = optarg;
			break;
		case 's':
			o.sends[o.nsends++] = optarg;
			ws_only = 1;
			break;
		case 'X':
			o.method = optarg;
			http_only = 1;
			break;
		case 'D':
			o.data = optarg;
			http_only = 1;
			break;
		case 'k':
			o.insecure = 1;
			client_only = 1;
			break;
		case 'A':
			o.cafile = optarg;
			client_only = 1;
			break;
		case 'e':
			if (!strcmp(optarg, "libev"))
				o.libev = 1;
			else if (!strcmp(optarg, "poll"))
				o.libev = 0;
			else
				return -1;
			break;
		case 'h':
			return 1;
		default:
			return -1;
		}
	}
	if (optind != argc || !o.cert != !o.key ||
	    (o.client && server_only) || (!o.client && client_only) ||
	    (ws_only && o.client != 'c') || (http_only && o.client != 'H'))
		return -1;

	if (o.client == 'c') {
		if (!o.nsends)
			o.sends[o.nsends++] = "hello world";
		if (parse_url(o.url, "ws", "wss", &cl.t)) {
			fprintf(stderr, "lwsnative: -c %s: want "
				"ws[s]://host[:port][/path]\n", o.url);
			return -1;
		}
	}
	if (o.client == 'H') {
		if (!o.method)
			o.method = o.data ? "POST" : "GET";
		if (parse_url(o.url, "http", "https", &cl.t)) {
			fprintf(stderr, "lwsnative: -H %s: want "
				"http[s]://host[:port][/path]\n", o.url);
			return -1;
		}
	}

	/*
	 * -P alone: hang up HANGUP_AFTER_PING s after the ping.  -Q alone: lws'
	 * default ping time (300 s), so with a shorter -Q no ping, just the
	 * hangup (lws pings only if ping < hangup).
	 */
	if (o.ping_secs && !o.hangup_secs)
		o.hangup_secs = o.ping_secs + HANGUP_AFTER_PING > 65535 ? 65535 :
				o.ping_secs + HANGUP_AFTER_PING;
	if (o.hangup_secs && !o.ping_secs)
		o.ping_secs = 300;
	retry.secs_since_valid_ping = (uint16_t)o.ping_secs;
	retry.secs_since_valid_hangup = (uint16_t)o.hangup_secs;
	if (o.ping_secs) {
		ka_ping = o.ping_secs;
		ka_hangup = o.hangup_secs;
	}

	return 0;
}

static struct lws_vhost *
create_server_vhost(struct lws_protocols *protocols)
{
	struct lws_context_creation_info info;
	struct lws_vhost *vh;

	memset(&info, 0, sizeof(info));
	info.vhost_name = "default";
	info.port = (int)o.port;
	info.iface = o.iface;
	info.protocols = protocols;
	info.options = LWS_SERVER_OPTION_VALIDATE_UTF8;
	info.timeout_secs = 15;
	info.retry_and_idle_policy = &no_idle;	/* keepalive: ka_arm */
	if (o.cert) {
		info.options |= LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
		info.ssl_cert_filepath = o.cert;
		info.ssl_private_key_filepath = o.key;
		info.alpn = "http/1.1";
	}
	vh = lws_create_vhost(g_ctx, &info);
	if (!vh) {
		if (o.cert)
			fprintf(stderr, "lwsnative: lws_create_vhost failed "
				"(%s:%ld): check -C %s and -K %s\n", o.iface,
				o.port, o.cert, o.key);
		else
			fprintf(stderr, "lwsnative: lws_create_vhost failed "
				"(%s:%ld)\n", o.iface, o.port);
		return NULL;
	}

	printf("listening on %s:%d\n", o.iface, lws_get_vhost_listen_port(vh));
	fflush(stdout);

	return vh;
}

static struct lws_vhost *
create_client_vhost(struct lws_protocols *protocols)
{
	struct lws_context_creation_info info;
	struct lws_vhost *vh;

	memset(&info, 0, sizeof(info));
	info.vhost_name = "client";
	info.port = CONTEXT_PORT_NO_LISTEN;
	info.protocols = protocols;
	info.options = LWS_SERVER_OPTION_VALIDATE_UTF8 |
		       LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT |
		       LWS_SERVER_OPTION_JUST_USE_RAW_ORIGIN;
	info.timeout_secs = 15;
	info.client_ssl_ca_filepath = o.cafile;
	if (o.ping_secs)
		info.retry_and_idle_policy = &retry;
	vh = lws_create_vhost(g_ctx, &info);
	if (!vh)
		fprintf(stderr, "lwsnative: lws_create_vhost failed%s%s\n",
			o.cafile ? ": check -A " : "",
			o.cafile ? o.cafile : "");

	return vh;
}

int
main(int argc, char **argv)
{
	static char stdout_buf[BUFSIZ];
	static struct lws_protocols protocols[3];
	struct lws_context_creation_info info;
	struct sigaction sa;
	struct lws_vhost *vh;
	size_t txlen = 0;
	int i, ret = 1;
#if defined(LWS_WITH_LIBEV)
	void *foreign[1];
#endif

	i = parse_args(argc, argv);
	if (i) {
		usage(argv[0]);
		free(o.sends);
		return i > 0 ? 0 : 2;
	}
	if ((o.cert && (check_pem("-C", o.cert, "CERTIFICATE") ||
			check_pem("-K", o.key, "PRIVATE KEY"))) ||
	    (o.cafile && check_pem("-A", o.cafile, "CERTIFICATE")))
		goto out;
	if (o.client && resolve(&cl.t))
		goto out;

	/* client tx buffer: the largest -s message, or the -D body */
	for (i = 0; o.client == 'c' && i < o.nsends; i++)
		if (strlen(o.sends[i]) > txlen)
			txlen = strlen(o.sends[i]);
	if (o.data)
		txlen = cl.data_len = strlen(o.data);
	if (o.client) {
		cl.tx = malloc(LWS_PRE + txlen);
		if (!cl.tx)
			goto out;
		if (o.data)
			memcpy(cl.tx + LWS_PRE, o.data, cl.data_len);
	}

	setvbuf(stdout, stdout_buf, _IOLBF, sizeof(stdout_buf));

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;	/* no SA_RESTART: poll() returns EINTR */
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);

	lws_set_log_level(o.debug ? LLL_USER | LLL_ERR | LLL_WARN | LLL_NOTICE |
				    LLL_INFO | LLL_DEBUG
				  : LLL_USER | LLL_ERR | LLL_WARN, NULL);

	for (i = 0; i < (o.client ? 1 : 2); i++) {
		protocols[i].name = o.client ? "lwsnative-client" :
				    i ? "lws-gate" : "http";
		protocols[i].callback = callback;
		protocols[i].per_session_data_size = sizeof(struct pss);
		protocols[i].rx_buffer_size = (size_t)o.rxsize;
		protocols[i].tx_packet_size = (size_t)o.rxsize;
		protocols[i].id = (unsigned int)i;
	}
	/* the rest of protocols[] is the all-zero terminator */

	memset(&info, 0, sizeof(info));
	if (o.libev) {
#if defined(LWS_WITH_LIBEV)
		if (evl_new())
			goto out;
		foreign[0] = evl.loop;	/* read in lws_create_context */
		info.foreign_loops = foreign;
		info.options = LWS_SERVER_OPTION_LIBEV;
#else
		fprintf(stderr, "lwsnative: -e libev: libwebsockets was built "
			"without libev (LWS_WITH_LIBEV)\n");
		goto out;
#endif
	}
	info.port = CONTEXT_PORT_NO_LISTEN;
	info.options |= LWS_SERVER_OPTION_EXPLICIT_VHOSTS |
			LWS_SERVER_OPTION_VALIDATE_UTF8;
	if (o.cert || o.client)
		info.options |= LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
	if (o.client)
		info.options |= LWS_SERVER_OPTION_JUST_USE_RAW_ORIGIN;
	info.timeout_secs = 15;
	g_ctx = lws_create_context(&info);
	if (!g_ctx) {
		fprintf(stderr, "lwsnative: lws_create_context failed%s\n",
			o.libev ? " (-e libev: is libwebsockets' libev plugin "
				  "installed? Debian: libwebsockets-evlib-ev)" :
				  "");
		goto out;
	}

	vh = o.client ? create_client_vhost(protocols) :
			create_server_vhost(protocols);
	if (!vh || (o.client && client_connect(vh)))
		goto out_ctx;

	lws_sul_schedule(g_ctx, 0, &tick, tick_cb, TICK_US);
#if defined(LWS_WITH_LIBEV)
	if (o.libev)
		evl_attach();
#endif

	while (!interrupted && !cl.done)
		if (service() < 0)
			break;

	lws_sul_cancel(&tick);
	ret = 0;

out_ctx:
	lws_context_destroy(g_ctx);
	fflush(stdout);
out:
#if defined(LWS_WITH_LIBEV)
	evl_free();
#endif
	if (o.client && !ret && !cl.ok) {
		if (!cl.failed)
			fprintf(stderr, "error: link closed before the "
				"exchange finished\n");
		ret = 1;
	}
	free(cl.tx);
	free(cl.rxbody);
	free(o.sends);

	return ret;
}
