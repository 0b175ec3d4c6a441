/*
 * context.c: the lws_context and its vhosts. See shim.c for the design of
 * the C layer and the list of its files.
 *
 * A context's lwsgo_ctx is made before the context (lwsgo_ctx_new), so
 * that the context's user pointer and its Go handle are in place for the
 * callbacks lws_create_context makes, and freed after lws_context_destroy
 * (lwsgo_ctx_free). The context runs on lws' own poll(2) loop or on
 * libev's (evloop.c); lwsgo_service runs one pass of either. Each vhost
 * gets a protocols table of its own whose every callback is
 * lwsgo_callback. Also here: the two calls any thread may make
 * (lwsgo_wake, lwsgo_set_report_all), what the service loop asks
 * (lwsgo_forced_service), sockets handed to a vhost (lwsgo_adopt_socket)
 * and lws' log lines, which go to Go.
 */
#include "internal.h"
#include "_cgo_export.h"

#include <stdlib.h>
#include <string.h>

/* lws' log lines go to Go; the levels are those lwsgo_log_init last set,
 * which Go does before it creates a context. */
static int lwsgo_log_levels;

static void
lwsgo_log_emit(int level, const char *line)
{
	goLwsLog(level, (char *)line);
}

void
lwsgo_log_init(int levels)
{
	lwsgo_log_levels = levels;
	lws_set_log_level(levels, lwsgo_log_emit);
}

lwsgo_ctx *
lwsgo_ctx_new(void)
{
	return calloc(1, sizeof(lwsgo_ctx));
}

int
lwsgo_ctx_create(lwsgo_ctx *cd, const lwsgo_ctx_info *ci)
{
	struct lws_context_creation_info info;
	void *foreign[1];
	int rc;

	lwsgo_rxpool_install();
	memset(&info, 0, sizeof(info));
	if (ci->event_loop == LWSGO_LOOP_LIBEV) {
		rc = lwsgo_evloop_new(cd, &foreign[0]);
		if (rc)
			return rc;
		/* lws reads it during lws_create_context */
		info.foreign_loops = foreign;
		info.options = LWSGO_OPTION_LIBEV;
	}
	info.port = CONTEXT_PORT_NO_LISTEN;
	info.options |= ci->options | LWS_SERVER_OPTION_EXPLICIT_VHOSTS;
	info.user = cd;
	info.timeout_secs = (unsigned int)ci->timeout_secs;
	info.fd_limit_per_thread = (unsigned int)ci->fd_limit_per_thread;
	info.pt_serv_buf_size = (unsigned int)ci->pt_serv_buf_size;
	info.max_http_header_data = ci->max_http_header_data;
	info.max_http_header_pool = ci->max_http_header_pool;
	info.count_threads = 1;
#if LWS_LIBRARY_VERSION_NUMBER >= 4003000
	/*
	 * libwebsockets 4.3 counts every object it tags (context, vhost,
	 * wsi) in a log context, by default one for the whole process,
	 * with a plain int when built with LWS_MAX_SMP 1 (Debian's) (4.3.5
	 * lib/core/logs.c, lwsl_refcount_cx). Contexts serviced on
	 * different threads lose counts there, and lws_context_destroy
	 * then fails its assert(cx->refcount) and aborts the process
	 * (TestChurn's two contexts in 6 of 18 runs on 4.3.5). Each
	 * context counts in its own, which logs as the process-wide one
	 * does.
	 */
	cd->log_cx.u.emit = lwsgo_log_emit;
	cd->log_cx.lll_flags = (uint32_t)lwsgo_log_levels;
	info.log_cx = &cd->log_cx;
#endif

	cd->ctx = lws_create_context(&info);
	if (!cd->ctx || (cd->ev && lwsgo_evloop_attach(cd))) {
		lwsgo_ctx_destroy(cd);
		return -1;
	}

	return 0;
}

/* lwsgo_service runs one pass of the context's loop: it waits for the
 * next event or lws timer and handles what is ready. */
int
lwsgo_service(lwsgo_ctx *cd)
{
	if (cd->ev) {
		lwsgo_evloop_run(cd);
		return 0;
	}
	return lws_service(cd->ctx, 0);
}

/* lwsgo_ctx_destroy destroys the context (its closing callbacks run
 * before it returns), then its loop. */
void
lwsgo_ctx_destroy(lwsgo_ctx *cd)
{
	if (cd->ctx)
		lws_context_destroy(cd->ctx);
	cd->ctx = NULL;
	lwsgo_evloop_free(cd);
}

void
lwsgo_ctx_free(lwsgo_ctx *cd)
{
	free(cd);
}

void
lwsgo_wake(lwsgo_ctx *cd)
{
	__atomic_store_n(&cd->wake, 1, __ATOMIC_SEQ_CST);
	lws_cancel_service(cd->ctx);
}

void
lwsgo_set_report_all(lwsgo_ctx *cd, int on)
{
	__atomic_store_n(&cd->report_all, on, __ATOMIC_RELAXED);
}

/*
 * lwsgo_forced_service reports whether some connection of the context holds
 * input libwebsockets has read but not yet handed to a callback and may hand
 * over without waiting for the network: bytes kept in a connection's buflist
 * (not rx-paused, not between transactions), TLS data OpenSSL decrypted
 * ahead, inflated data still to drain. lws_service_adjust_timeout, the
 * public API event loops use to decide whether to wait in poll; on 4.3 it
 * also runs the scheduled events that are due, as lws_service would.
 *
 * It returns 0 for such input, or else the timeout it is given, which it
 * first shortens to the time until lws' next scheduled event (4.3 with an
 * event library, 4.1 with LWS_WITH_EXTERNAL_POLL): given 1 ms, an event due
 * within the millisecond made it 0 too, on 4.3.5 with libev: a keep-alive
 * answer then said "connection: close" for no reason (a few requests in a
 * thousand), and the libev loop went round without waiting until the
 * event was due (evloop.c). Given -1, poll's "no timeout", it is never
 * shortened: only that input gives 0.
 */
int
lwsgo_forced_service(struct lws_context *ctx)
{
	return lws_service_adjust_timeout(ctx, -1, 0) == 0;
}

/*
 * lwsgo_protocols_new makes a vhost's protocols table, NULL-terminated:
 * every protocol's callback is lwsgo_callback, and its id carries the
 * listener and protocol index.
 */
static struct lws_protocols *
lwsgo_protocols_new(const lwsgo_vhost_info *vi)
{
	struct lws_protocols *pr;
	int n;

	pr = calloc((size_t)vi->nprotocols + 1, sizeof(*pr));
	if (!pr)
		return NULL;
	for (n = 0; n < vi->nprotocols; n++) {
		pr[n].name = vi->protocol_names[n];
		pr[n].callback = lwsgo_callback;
		/* Go keeps no state here (it is in the opaque user data), but
		 * lws only delivers the *_DROP_PROTOCOL reasons to a wsi that
		 * has user_space (lib/core-net/close.c): a listener's protocols
		 * ask for some so that the binding sees what a C program sees,
		 * and it holds the wsi's lwsgo_pss. Client links bring their
		 * own user_space (the lwsgo_client), which lws must not
		 * replace. */
		pr[n].per_session_data_size =
			vi->port == CONTEXT_PORT_NO_LISTEN ? 0 : sizeof(lwsgo_pss);
		pr[n].rx_buffer_size = vi->rx_buffer_size;
		pr[n].tx_packet_size = vi->tx_packet_size;
		/* lws copies the table: carry our indices, not pointers */
		pr[n].id = ((unsigned int)vi->index << 16) | (unsigned int)n;
	}

	return pr;
}

lwsgo_vhost *
lwsgo_vhost_create(lwsgo_ctx *cd, const lwsgo_vhost_info *vi)
{
	struct lws_context_creation_info info;
	lwsgo_vhost *v;

	v = calloc(1, sizeof(*v));
	if (!v)
		return NULL;
	v->protocols = lwsgo_protocols_new(vi);
	if (!v->protocols) {
		free(v);
		return NULL;
	}

	memset(&info, 0, sizeof(info));
	info.vhost_name = vi->name;
	info.iface = vi->iface;
	info.port = vi->port;
	info.options = vi->options;
	info.protocols = v->protocols;
	info.ssl_cert_filepath = vi->cert_path;
	info.ssl_private_key_filepath = vi->key_path;
	info.ssl_ca_filepath = vi->ca_path;
	info.alpn = vi->alpn;
	info.client_ssl_ca_filepath = vi->client_ca_path;
	info.client_ssl_cert_filepath = vi->client_cert_path;
	info.client_ssl_private_key_filepath = vi->client_key_path;
	info.keepalive_timeout = (int)vi->keepalive_timeout;
	info.timeout_secs_ah_idle = vi->timeout_secs_ah_idle;
	info.timeout_secs = (unsigned int)vi->timeout_secs;
	/* No idle policy (secs_since_valid_hangup 0): lws would keep each
	 * link's ping timer in its one sorted list of timers, a walk over
	 * every open link at each opening and each pong. The binding pings
	 * its server links itself (lws/keepalive.go); dialled links take the
	 * policy of their connect info (client.c). */
	info.retry_and_idle_policy = &v->retry;
	info.user = cd;
#if !defined(LWS_WITHOUT_EXTENSIONS)
	/* a client link offers what its vhost has: compressing clients get
	 * a vhost of their own (lws/client.go) */
	if (vi->compression)
		info.extensions = lwsgo_extensions;
#endif

#if LWS_LIBRARY_VERSION_NUMBER >= 4003000
	info.log_cx = &cd->log_cx; /* see lwsgo_ctx_create */
#endif
	v->vh = lws_create_vhost(cd->ctx, &info);
	if (!v->vh) {
		free(v->protocols);
		free(v);
		return NULL;
	}

	return v;
}

void
lwsgo_vhost_free(lwsgo_vhost *v)
{
	if (!v)
		return;
	free(v->protocols);
	free(v);
}

int
lwsgo_vhost_port(lwsgo_vhost *v)
{
	return lws_get_vhost_listen_port(v->vh);
}

/*
 * lwsgo_adopt_socket hands a connected socket to a vhost that listens
 * nowhere (CONTEXT_PORT_NO_LISTEN_SERVER) as a server HTTP connection, TLS
 * when the vhost has a certificate: the way in for the connections of a
 * PROXY protocol listener, whose header the binding has read off the
 * socket first (lws/proxyproto.go). lws closes fd itself on failure
 * (lws_adopt_descriptor_vhost_via_info, 4.1.6 and 4.3.5).
 */
uintptr_t
lwsgo_adopt_socket(lwsgo_vhost *v, int fd)
{
	return (uintptr_t)lws_adopt_socket_vhost(v->vh, fd);
}
