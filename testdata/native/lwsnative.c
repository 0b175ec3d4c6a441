/*
 * lwsnative - the native libwebsockets reference server for lwsgate.
 *
 * Design
 * ------
 * lwsgate is a Go (cgo) binding over libwebsockets plus a gateway.  This
 * program is the same service written directly in C against the library, so
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
 * Shape
 * -----
 *  - One context (EXPLICIT_VHOSTS, VALIDATE_UTF8, timeout_secs 15 because the
 *    default differs between 4.1 and 4.3) and one vhost created explicitly.
 *  - protocols[0] "http" gets all HTTP and ws upgrades without a subprotocol;
 *    protocols[1] "lws-gate" is the ws subprotocol.  Both use one callback.
 *  - WebSocket: fragments are reassembled into one malloc'd [LWS_PRE|payload]
 *    buffer; a complete message (final fragment and no payload remaining) is
 *    appended to the connection's queue and echoed with the same type.
 *    Messages over 16 MiB close the connection with 1009.  The queue is not
 *    bounded: the client bounds it by how many messages it keeps in flight.
 *  - HTTP: POST /v1/api/createtoken answers 200 application/json
 *    {"code":0,"token":"native-<RequestId>"} ("0" if no RequestId is found;
 *    the body is scanned crudely, no JSON parser).  Headers are written at
 *    HTTP_BODY_COMPLETION, the body from HTTP_WRITEABLE.  Every other request
 *    (other path, or another method on that path) gets 404.
 *  - Per-connection state lives in the per-session data (pss).  HTTP state is
 *    fixed-size because lws frees and re-allocates the pss when it re-binds
 *    the protocol (per HTTP transaction, and on ws upgrade).  The ws queue and
 *    reassembly buffer are heap memory and are freed at WSI_DESTROY, which is
 *    always delivered with the pss intact (CLOSED is not always delivered).
 *  - Unhandled reasons go to lws_callback_http_dummy().  GET_THREAD_ID
 *    returns 0.
 *  - SIGINT/SIGTERM only set a flag (lws_cancel_service is not
 *    async-signal-safe).  lws_service() returns on EINTR; a 250 ms sul tick
 *    bounds the wait if the signal lands just before poll().  Then the context
 *    is destroyed on the service thread (its callbacks are logged too).
 *
 * Builds against libwebsockets 4.1.6 and uses only API also present in 4.3.x;
 * reasons that exist in only some versions are guarded by
 * LWS_LIBRARY_VERSION_NUMBER.  Build: see README.md.
 */

#include <libwebsockets.h>

#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MAX_MESSAGE		(16u * 1024u * 1024u)
#define CREATETOKEN_PATH	"/v1/api/createtoken"
#define TICK_US			(250 * LWS_US_PER_MS)

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

	/* http (fixed size, see design note) */
	int		createtoken;	/* this transaction is POST createtoken */
	int		resp_pending;	/* resp is ready for HTTP_WRITEABLE */
	size_t		body_len;
	size_t		resp_len;
	char		body[1024];	/* first bytes of the request body */
	unsigned char	resp[LWS_PRE + 160];
};

static volatile sig_atomic_t interrupted;
static int trace_on;
static int write_single;		/* -m single */
static unsigned long next_wsi_id;
static struct lws_context *g_ctx;
static lws_sorted_usec_list_t tick;

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
 * Ids live in the wsi's opaque user data.  On an accepted connection lws
 * calls WSI_CREATE and *then* sets opaque_user_data from the adoption info
 * (NULL), wiping whatever WSI_CREATE stored (lib/core-net/adopt.c,
 * lws_adopt_descriptor_vhost1, 4.1.6 and 4.3.x).  So the id given at
 * WSI_CREATE is also remembered in a one-entry side slot and re-attached at
 * that wsi's next callback (SERVER_NEW_CLIENT_INSTANTIATED, in the same
 * adoption call).
 */
static struct lws *created_wsi;
static uintptr_t created_id;

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
/* websocket echo                                                            */

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

/* RECEIVE: append the chunk; queue the message once it is complete. */
static int
ws_receive(struct lws *wsi, struct pss *pss, const void *in, size_t len)
{
	size_t remaining = lws_remaining_packet_payload(wsi);
	struct msg *m = pss->rx;

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

	if (!lws_is_final_fragment(wsi) || remaining)
		return 0;

	/* complete: move to the tx queue */
	pss->rx = NULL;
	if (pss->tail)
		pss->tail->next = m;
	else
		pss->head = m;
	pss->tail = m;
	lws_callback_on_writable(wsi);

	return 0;
}

/* SERVER_WRITEABLE: one message (single) or until the pipe chokes. */
static int
ws_writeable(struct lws *wsi, struct pss *pss)
{
	struct msg *m;
	int n;

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

	if (pss->head)
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
http_not_found(struct lws *wsi)
{
	if (lws_return_http_status(wsi, HTTP_STATUS_NOT_FOUND, NULL))
		return -1;
	if (lws_http_transaction_completed(wsi))
		return -1;

	return 0;
}

/* BODY_COMPLETION of POST createtoken: send headers, body on WRITEABLE. */
static int
http_createtoken_reply(struct lws *wsi, struct pss *pss)
{
	unsigned char hdr[LWS_PRE + LWS_RECOMMENDED_MIN_HEADER_SPACE];
	unsigned char *start = hdr + LWS_PRE, *p = start,
		      *end = hdr + sizeof(hdr);
	char id[65];
	int n;

	pss->body[pss->body_len] = '\0';
	request_id(pss->body, id, sizeof(id));
	n = snprintf((char *)pss->resp + LWS_PRE, sizeof(pss->resp) - LWS_PRE,
		     "{\"code\":0,\"token\":\"native-%s\"}", id);
	if (n < 0 || (size_t)n >= sizeof(pss->resp) - LWS_PRE)
		return -1;
	pss->resp_len = (size_t)n;

	if (lws_add_http_common_headers(wsi, HTTP_STATUS_OK,
					"application/json",
					(lws_filepos_t)pss->resp_len, &p, end))
		return -1;
	if (lws_finalize_write_http_header(wsi, start, &p, end))
		return -1;

	pss->resp_pending = 1;
	lws_callback_on_writable(wsi);

	return 0;
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
		if (pss)
			ws_free_all(pss);
		if (trace_on)
			wsi_forget(wsi);
		return 0;

	/* websocket */

	case LWS_CALLBACK_RECEIVE:
		if (!pss)
			return -1;
		return ws_receive(wsi, pss, in, len);

	case LWS_CALLBACK_SERVER_WRITEABLE:
		if (!pss)
			return -1;
		return ws_writeable(wsi, pss);

	/* http */

	case LWS_CALLBACK_HTTP:
		if (pss && in && !strcmp((const char *)in, CREATETOKEN_PATH) &&
		    lws_hdr_total_length(wsi, WSI_TOKEN_POST_URI) > 0) {
			pss->createtoken = 1;
			pss->resp_pending = 0;
			pss->body_len = 0;
			return 0;	/* wait for the body */
		}
		return http_not_found(wsi);

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
		pss->resp_pending = 0;
		n = lws_write(wsi, pss->resp + LWS_PRE, pss->resp_len,
			      LWS_WRITE_HTTP_FINAL);
		if (n < 0 || (size_t)n < pss->resp_len)
			return -1;
		/* may rebind the protocol: pss is freed, don't touch it after */
		if (lws_http_transaction_completed(wsi))
			return -1;
		return 0;

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

static void
usage(const char *argv0)
{
	fprintf(stderr,
		"usage: %s [-p port] [-i iface] [-t] [-m single|choked] [-d] "
		"[-r bytes]\n"
		"  -p PORT   listen port (default 8090, 0 = kernel-chosen)\n"
		"  -i IFACE  bind address or interface (default 127.0.0.1)\n"
		"  -t        reason log on stdout\n"
		"  -m MODE   ws write mode: choked (default) or single\n"
		"  -d        lws debug logging on stderr\n"
		"  -r BYTES  rx_buffer_size and tx_packet_size (default 0)\n",
		argv0);
}

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

int
main(int argc, char **argv)
{
	static char stdout_buf[BUFSIZ];
	static struct lws_protocols protocols[3];
	struct lws_context_creation_info info;
	const char *iface = "127.0.0.1";
	int debug = 0, opt, i;
	long port = 8090, rxsize = 0;
	struct sigaction sa;
	struct lws_vhost *vh;

	while ((opt = getopt(argc, argv, "p:i:tm:dr:h")) != -1) {
		switch (opt) {
		case 'p':
			if (parse_num(optarg, 0, 65535, &port))
				goto bad;
			break;
		case 'i':
			iface = optarg;
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
				goto bad;
			break;
		case 'd':
			debug = 1;
			break;
		case 'r':
			if (parse_num(optarg, 0, 16 * 1024 * 1024, &rxsize))
				goto bad;
			break;
		case 'h':
			usage(argv[0]);
			return 0;
		default:
			goto bad;
		}
	}
	if (optind != argc)
		goto bad;

	setvbuf(stdout, stdout_buf, _IOLBF, sizeof(stdout_buf));

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;	/* no SA_RESTART: poll() returns EINTR */
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);

	lws_set_log_level(debug ? LLL_USER | LLL_ERR | LLL_WARN | LLL_NOTICE |
				  LLL_INFO | LLL_DEBUG
				: LLL_USER | LLL_ERR | LLL_WARN, NULL);

	for (i = 0; i < 2; i++) {
		protocols[i].name = i ? "lws-gate" : "http";
		protocols[i].callback = callback;
		protocols[i].per_session_data_size = sizeof(struct pss);
		protocols[i].rx_buffer_size = (size_t)rxsize;
		protocols[i].tx_packet_size = (size_t)rxsize;
		protocols[i].id = (unsigned int)i;
	}
	/* protocols[2] is the all-zero terminator */

	memset(&info, 0, sizeof(info));
	info.port = CONTEXT_PORT_NO_LISTEN;
	info.options = LWS_SERVER_OPTION_EXPLICIT_VHOSTS |
		       LWS_SERVER_OPTION_VALIDATE_UTF8;
	info.timeout_secs = 15;
	g_ctx = lws_create_context(&info);
	if (!g_ctx) {
		fprintf(stderr, "lwsnative: lws_create_context failed\n");
		return 1;
	}

	memset(&info, 0, sizeof(info));
	info.vhost_name = "default";
	info.port = (int)port;
	info.iface = iface;
	info.protocols = protocols;
	info.options = LWS_SERVER_OPTION_VALIDATE_UTF8;
	info.timeout_secs = 15;
	vh = lws_create_vhost(g_ctx, &info);
	if (!vh) {
		fprintf(stderr, "lwsnative: lws_create_vhost failed (%s:%ld)\n",
			iface, port);
		lws_context_destroy(g_ctx);
		return 1;
	}

	printf("listening on %s:%d\n", iface, lws_get_vhost_listen_port(vh));
	fflush(stdout);

	lws_sul_schedule(g_ctx, 0, &tick, tick_cb, TICK_US);

	while (!interrupted)
		if (lws_service(g_ctx, 0) < 0)
			break;

	lws_sul_cancel(&tick);
	lws_context_destroy(g_ctx);
	fflush(stdout);

	return 0;

bad:
	usage(argv[0]);
	return 2;
}
