/*
 * shim.c: the C layer between libwebsockets and Go, and its callback.
 *
 * This comment is the C layer's index: its design, who owns what, which
 * threads run it, what its functions return, and the file of each part.
 * Every other file opens with a short design comment of its own.
 *
 * Design
 * ------
 * One function, lwsgo_callback, is the callback of every protocol of every
 * vhost. It forwards every reason libwebsockets delivers to one exported Go
 * function, goLwsCallback, with everything Go needs pre-computed in C so that
 * each callback costs exactly one C->Go crossing:
 *
 *   - the context's Go handle, read from lws_context_user();
 *   - the connection's Go handle, read from the wsi's opaque user data
 *     (0 for placeholder "fake" wsi and before Go attached one);
 *   - the listener and protocol index (lws copies the protocols table, so
 *     they are carried in lws_protocols.id as listener<<16 | protocol, never
 *     found by pointer comparison);
 *   - for RECEIVE/CLIENT_RECEIVE: first/final/binary/remaining as bit flags,
 *     and in len the compressed bytes of the message so far (0 when it is
 *     not compressed; see pmd.c);
 *   - for ESTABLISHED/CLIENT_ESTABLISHED: whether permessage-deflate is on;
 *   - for FILTER_NETWORK_CONNECTION: the peer's IP address and port as the
 *     data;
 *   - for EVENT_WAIT_CANCELLED: whether this is the first one since Go asked
 *     for a wake-up (lws broadcasts the reason to every protocol of every
 *     vhost; the atomic exchange makes exactly one of them drain Go's queue).
 *
 * Only three things are decided in C, because they must be: the wake
 * de-duplication above, the return value of reasons where a non-zero
 * return would break libwebsockets (EVENT_WAIT_CANCELLED closes the cancel
 * pipe on non-zero; GET_THREAD_ID must be 0 so that lws never tries to wake
 * a "foreign" thread itself), and whether HTTP_CONFIRM_UPGRADE's in may be
 * read at all (see lwsgo_prep_upgrade: CVE-2025-11677). All still reach Go
 * for the reason log. With the reason log off, the reasons Go does nothing
 * with are answered here and only counted (lwsgo_go_ignores), and so is
 * a WRITEABLE callback that Go delivers with the one write it is to do and
 * nothing else (a WebSocket message, a whole HTTP answer:
 * lwsgo_service_pending, in wsi.c): the write is done here, without
 * crossing.
 *
 * The callback runs in three steps: lwsgo_prepare computes what Go gets
 * for the reason, goLwsCallback crosses, and lwsgo_finish turns Go's answer
 * into lws' (and does the C work some reasons need after Go: a client's
 * request headers, its response body).
 *
 * One other crossing is not a callback: on the libev loop, evloop.c hands
 * over to Go (goLwsMidPass) between two of lws' I/O callbacks of a pass
 * that brings messages on many links, so that Go writes what it has
 * queued before the pass ends.
 *
 * Files
 * -----
 *   shim.h      what Go calls: every lwsgo_* function and the structs Go
 *               fills or reads
 *   internal.h  what the C files share and Go never calls
 *   shim.c      this comment, and the callback
 *   context.c   the context and its vhosts; wake-ups; the service loop's
 *               question (lwsgo_forced_service); sockets adopted by a vhost
 *               (PROXY protocol listeners); lws' log lines, per context
 *               on 4.3
 *   evloop.c    the libev loop a context may run on instead of lws' poll(2)
 *               loop, its timers, and the hand-over to Go in the middle of
 *               a pass that brings messages on many links (goLwsMidPass)
 *   pmd.c       the permessage-deflate wrapper: compressed byte counts and
 *               limit, the server's context-takeover options, zlib's unread
 *               input
 *   offer.c     the Sec-WebSocket-Extensions offer and Sec-WebSocket-Protocol
 *               name lws is shown, and the record of lws' header buffers
 *               and structs that the change needs
 *   wsi.c       WebSocket writes and a connection's controls (close
 *               reason, writable, timeouts, timers, kill, rx flow)
 *   http.c      the HTTP server's answers: head, body, refusal, end of
 *               transaction, and the write between service passes that
 *               pipelined requests need
 *   headers.c   headers both ways: a request's or response's into Go's
 *               NUL-separated strings, Go's name/value pairs into lws'
 *               (lwsgo_add_headers), custom header counts
 *   client.c    client links: connect, request headers, response body,
 *               certificate error texts
 *   rxpool.c    lws' allocator: links' receive buffers in page-aligned
 *               slots, header buffers recorded for offer.c
 *
 * Ownership
 * ---------
 * `in`/`len` belong to libwebsockets and are valid only during the callback;
 * Go copies what it keeps before returning. Buffers Go passes to lwsgo_*
 * write functions are Go memory that C uses only for the duration of the
 * call: lws_write either sends or copies to its own buflist before it returns.
 * The exception is a link with permessage-deflate, whose zlib stream keeps
 * pointing into the payload until it has compressed all of it, over later
 * WRITEABLE rounds: Go passes those payloads in C memory (cgo.HeldFrame).
 * Strings handed to lws for the lifetime of a vhost (names, iface, protocol
 * names) are C memory owned by Go and freed after lws_context_destroy.
 * A wsi's C state (lwsgo_pss, shim.h) is lws' user_space on a listener's
 * link, and the start of Go's lwsgo_client on a client link; what it points
 * to is freed at WSI_DESTROY.
 *
 * Threads
 * -------
 * Every function of the C layer runs on the service thread, the OS thread
 * of the one locked goroutine that created the context and calls
 * lws_service, except lwsgo_wake, which may be called from any thread (it
 * only stores an atomic and calls lws_cancel_service, the one lws API that
 * is thread-safe), lwsgo_set_report_all (an atomic store), and
 * lwsgo_log_emit, which lws may call from wherever it logs. The allocator
 * (rxpool.c, offer.c's record) takes locks of its own.
 *
 * Return values
 * -------------
 * lwsgo_callback returns what Go returns: 0 continue, -1 close the wsi.
 * The write helpers return -1 on a fatal error (the caller must close),
 * 0 when the pipe can take more, 1 when it is choked (wait for WRITEABLE).
 * Functions that fill a buffer for Go return the bytes used, or the bytes
 * needed, negated, when it is too small.
 */
#include "internal.h"
#include "_cgo_export.h"

#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>

#if defined(LWSGO_OPENSSL)
#include <openssl/x509.h>
#endif

/*
 * lwsgo_go_ignores: reasons the Go side does nothing with (it returns 0,
 * as lws_callback_http_dummy does for them), so that with report_all off
 * they are answered here instead of crossing into Go. Three of an HTTP
 * request's seven callbacks are among them. They are still counted
 * (lwsgo_ctx.skipped), for Go's per-reason counts.
 * SERVER_NEW_CLIENT_INSTANTIATED is among them: lws has just wiped the
 * opaque user data Go attached at WSI_CREATE, and lwsgo_reattach puts it
 * back before anything else.
 */
static int
lwsgo_go_ignores(enum lws_callback_reasons reason)
{
	switch (reason) {
	case LWS_CALLBACK_SERVER_NEW_CLIENT_INSTANTIATED:
	case LWS_CALLBACK_FILTER_HTTP_CONNECTION:
	case LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION:
	case LWS_CALLBACK_HTTP_BIND_PROTOCOL:
	case LWS_CALLBACK_HTTP_DROP_PROTOCOL:
	case LWS_CALLBACK_ADD_HEADERS:
	case LWS_CALLBACK_GET_THREAD_ID:
	case LWS_CALLBACK_ADD_POLL_FD:
	case LWS_CALLBACK_DEL_POLL_FD:
	case LWS_CALLBACK_CHANGE_MODE_POLL_FD:
	case LWS_CALLBACK_LOCK_POLL:
	case LWS_CALLBACK_UNLOCK_POLL:
		return 1;
	default:
		return 0;
	}
}

static int
lwsgo_skip(lwsgo_ctx *cd, enum lws_callback_reasons reason)
{
	unsigned int i = (unsigned int)reason;

	cd->skipped[i < LWSGO_REASONS ? i : LWSGO_REASONS - 1]++;
	cd->nskipped++;
	return 0;
}

/* What Go gets for one callback, as lwsgo_prepare computes it. */
typedef struct lwsgo_call {
	void *in;      /* the data (NULL: none) */
	size_t len;    /* callbacks.Event.Len */
	size_t dlen;   /* the bytes of data at in */
	int flags;     /* LWSGO_F_* */
	int fake;      /* no wsi of its own: no handle, no protocol to read */
	union {        /* data made here, for in to point at */
		char upg[64];
		unsigned char ip[18];
	} b;
} lwsgo_call;

/* lwsgo_prepare's verdicts */
enum { LWSGO_CROSS, LWSGO_ANSWERED };

/* EVENT_WAIT_CANCELLED: the first since Go asked for a wake-up drains Go's
 * queue; the others reach Go only for the reason log. */
static int
lwsgo_prep_wake(lwsgo_ctx *cd, lwsgo_call *c)
{
	if (!cd)
		return LWSGO_ANSWERED;
	if (__atomic_exchange_n(&cd->wake, 0, __ATOMIC_SEQ_CST))
		c->flags |= LWSGO_F_WAKE;
	else if (!__atomic_load_n(&cd->report_all, __ATOMIC_RELAXED)) {
		/* another thread's cancel, or a spare broadcast */
		lwsgo_skip(cd, LWS_CALLBACK_EVENT_WAIT_CANCELLED);
		return LWSGO_ANSWERED;
	}
	c->fake = 1;
	return LWSGO_CROSS;
}

/* RECEIVE, CLIENT_RECEIVE: the fragment's flags, and the compressed bytes
 * of the message so far. */
static void
lwsgo_prep_receive(struct lws *wsi, lwsgo_pss *ps, lwsgo_call *c)
{
	if (lws_is_first_fragment(wsi))
		c->flags |= LWSGO_F_FIRST;
	if (lws_is_final_fragment(wsi))
		c->flags |= LWSGO_F_FINAL;
	if (lws_frame_is_binary(wsi))
		c->flags |= LWSGO_F_BINARY;
	if (!lws_remaining_packet_payload(wsi))
		c->flags |= LWSGO_F_NOREMAIN;
	c->len = 0;
	if (ps && ps->pmd) {
		c->len = (size_t)ps->rx_raw;
		if (c->in == ps->ph) {
			/* lwsgo_pmd's placeholder: no data */
			c->in = NULL;
			c->dlen = 0;
		}
	}
}

/* ESTABLISHED, CLIENT_ESTABLISHED: whether permessage-deflate is on. */
static void
lwsgo_prep_established(struct lws *wsi, lwsgo_pss *ps, lwsgo_call *c)
{
	if (!ps || !ps->pmd)
		return;
	c->flags |= LWSGO_F_DEFLATE;
	/*
	 * lws compresses into a 1 KiB buffer and sends each buffer as a
	 * frame: a 16 MiB message of random bytes was over 16,384 frames,
	 * the most Node's ws (8.x) takes by default ("Too many message
	 * fragments"), and a frame header per KiB. 16 KiB frames keep
	 * messages up to 256 MiB under it. Allocated at the first
	 * compressed send, so set before any.
	 */
	lws_set_extension_option(wsi, "permessage-deflate", "tx_buf_size",
				 "14");
}

/* FILTER_NETWORK_CONNECTION: user is the lws_filter_network_conn_args; Go
 * gets the peer's IP address (4 or 16 bytes) and then its port (2 bytes,
 * network order) as the data: what accept(2) returned, so that Go need not
 * ask the kernel again for the new link's address. */
static void
lwsgo_prep_peer(const struct lws_filter_network_conn_args *fa, lwsgo_call *c)
{
	c->dlen = 0;
	if (fa && fa->cli_addr.ss_family == AF_INET) {
		const struct sockaddr_in *sa =
			(const struct sockaddr_in *)&fa->cli_addr;

		memcpy(c->b.ip, &sa->sin_addr, 4);
		memcpy(c->b.ip + 4, &sa->sin_port, 2);
		c->dlen = 6;
	} else if (fa && fa->cli_addr.ss_family == AF_INET6) {
		const struct sockaddr_in6 *sa =
			(const struct sockaddr_in6 *)&fa->cli_addr;

		memcpy(c->b.ip, &sa->sin6_addr, 16);
		memcpy(c->b.ip + 16, &sa->sin6_port, 2);
		c->dlen = 18;
	}
	c->in = c->dlen ? c->b.ip : NULL;
}

/*
 * HTTP_CONFIRM_UPGRADE. CVE-2025-11677 (fixed in lws 4.3.7, 4.4.2 and
 * 4.5.0): for an Upgrade value other than websocket or h2c, lws answers
 * 403, completes the transaction (on a keep-alive connection that frees or
 * resets the header table) and then still calls back with in pointing into
 * it. So in is never read here: Go gets a copy of the request's Upgrade
 * header (its first line, which is what in points to when it is valid),
 * and when the request has none any more (or one too long to be
 * "websocket"), no data and LWSGO_F_STALE, and the connection is hung up
 * (a <0 return makes lws skip its own later uses of the pointer).
 */
static void
lwsgo_prep_upgrade(struct lws *wsi, lwsgo_call *c)
{
	c->dlen = 0;
	if (!wsi || lws_hdr_copy_fragment(wsi, c->b.upg, sizeof(c->b.upg),
					  WSI_TOKEN_UPGRADE, 0) <= 0) {
		c->flags |= LWSGO_F_STALE;
		c->in = NULL;
		c->len = 0;
		return;
	}
	c->in = c->b.upg;
	c->len = c->dlen = strlen(c->b.upg);
}

/*
 * lwsgo_prepare computes into c, which holds lws' in and len on entry,
 * what Go gets for the callback. It returns LWSGO_ANSWERED when the
 * callback is answered here, with 0, and does not cross into Go.
 */
static int
lwsgo_prepare(lwsgo_ctx *cd, struct lws *wsi, enum lws_callback_reasons reason,
	      void *user, lwsgo_call *c)
{
	switch (reason) {
	case LWS_CALLBACK_EVENT_WAIT_CANCELLED:
		return lwsgo_prep_wake(cd, c);
	case LWS_CALLBACK_GET_THREAD_ID:
		/* here only with report_all on */
		c->fake = 1;
		c->in = NULL;
		c->len = c->dlen = 0;
		break;
	case LWS_CALLBACK_WSI_DESTROY:
		/* before Go frees a client's lwsgo_client, and lws a
		 * server's pss */
		if (user)
			lwsgo_pss_release(user);
		break;
	case LWS_CALLBACK_PROTOCOL_INIT:
	case LWS_CALLBACK_PROTOCOL_DESTROY:
	case LWS_CALLBACK_OPENSSL_LOAD_EXTRA_CLIENT_VERIFY_CERTS:
	case LWS_CALLBACK_OPENSSL_LOAD_EXTRA_SERVER_VERIFY_CERTS:
	case LWS_CALLBACK_VHOST_CERT_AGING:
	case LWS_CALLBACK_VHOST_CERT_UPDATE:
		c->fake = 1;
		break;
	case LWS_CALLBACK_RECEIVE:
	case LWS_CALLBACK_CLIENT_RECEIVE:
		lwsgo_prep_receive(wsi, user, c);
		break;
	case LWS_CALLBACK_ESTABLISHED:
	case LWS_CALLBACK_CLIENT_ESTABLISHED:
		lwsgo_prep_established(wsi, user, c);
		break;
#if defined(LWSGO_OPENSSL)
	case LWS_CALLBACK_OPENSSL_PERFORM_SERVER_CERT_VERIFICATION:
		/* user is the X509_STORE_CTX and len preverify_ok; Go gets
		 * the X509_V_ERR_* code in len instead (0: this certificate
		 * of the chain verified). A 0 return lets lws' own verdict
		 * stand, so Go only learns why a handshake will fail. */
		c->len = c->len ? 0 : (size_t)X509_STORE_CTX_get_error(
						(X509_STORE_CTX *)user);
		c->dlen = 0;
		break;
#endif
	case LWS_CALLBACK_FILTER_NETWORK_CONNECTION:
		lwsgo_prep_peer(user, c);
		break;
	case LWS_CALLBACK_HTTP_CONFIRM_UPGRADE:
		lwsgo_prep_upgrade(wsi, c);
		break;
	case LWS_CALLBACK_HTTP:
	case LWS_CALLBACK_FILTER_HTTP_CONNECTION:
	case LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION:
	case LWS_CALLBACK_CONFIRM_EXTENSION_OKAY:
	case LWS_CALLBACK_CLIENT_CONNECTION_ERROR:
		/* in is a NUL-terminated string; len is not always set */
		c->dlen = c->in ? strlen((const char *)c->in) : 0;
		break;
	default:
		break;
	}

	return LWSGO_CROSS;
}

/*
 * lwsgo_finish turns Go's answer ret into the callback's return value, and
 * does what some reasons need after Go: in and len are lws' own.
 */
static int
lwsgo_finish(struct lws *wsi, enum lws_callback_reasons reason, void *user,
	     void *in, size_t len, const lwsgo_call *c, int ret)
{
	switch (reason) {
	case LWS_CALLBACK_EVENT_WAIT_CANCELLED:
	case LWS_CALLBACK_GET_THREAD_ID:
		return 0;
	case LWS_CALLBACK_RECEIVE:
	case LWS_CALLBACK_CLIENT_RECEIVE:
		/* the message is complete: the next one counts from 0 */
		if (user && (c->flags & (LWSGO_F_FINAL | LWSGO_F_NOREMAIN)) ==
			    (LWSGO_F_FINAL | LWSGO_F_NOREMAIN))
			((lwsgo_pss *)user)->rx_raw = 0;
		return ret;
	case LWS_CALLBACK_HTTP_CONFIRM_UPGRADE:
		return c->flags & LWSGO_F_STALE ? -1 : ret;
	case LWS_CALLBACK_CLIENT_APPEND_HANDSHAKE_HEADER:
		/* in is a char **p into the request, len the room left; the
		 * headers Go prepared wait in the client's user_space */
		if (ret || !user)
			return ret;
		return lwsgo_client_append(wsi, user, (unsigned char **)in,
					   len);
	case LWS_CALLBACK_RECEIVE_CLIENT_HTTP:
		/* Go returns 0 to read now (the payload comes back as nested
		 * RECEIVE_CLIENT_HTTP_READ callbacks), 1 when it paused rx
		 * with lws_rx_flow_control until its reader catches up */
		if (ret > 0)
			return 0;
		if (ret < 0)
			return ret;
		return lwsgo_client_read(wsi);
	default:
		return ret;
	}
}

/*
 * lwsgo_reattach: an accepted wsi gets its handle from Go at WSI_CREATE
 * (lwsgo_set_opaque), and lws then sets the opaque user data from the
 * adoption info, NULL, before the wsi's next callback (lib/core-net/adopt.c,
 * 4.1 to 4.3): put the handle back on any callback of that wsi that finds
 * it gone, SERVER_NEW_CLIENT_INSTANTIATED first, until the adoption is
 * over.
 */
static void
lwsgo_reattach(lwsgo_ctx *cd, struct lws *wsi, enum lws_callback_reasons reason)
{
	if (wsi != cd->created)
		return;
	if (!lws_get_opaque_user_data(wsi))
		lws_set_opaque_user_data(wsi, (void *)cd->created_h);
	if (reason == LWS_CALLBACK_SERVER_NEW_CLIENT_INSTANTIATED ||
	    reason == LWS_CALLBACK_WSI_DESTROY)
		cd->created = NULL;
}

int
lwsgo_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user,
	       void *in, size_t len)
{
	struct lws_context *cx = wsi ? lws_get_context(wsi) : NULL;
	lwsgo_ctx *cd = cx ? (lwsgo_ctx *)lws_context_user(cx) : NULL;
	const struct lws_protocols *pr;
	uintptr_t h = 0;
	int proto = -1, ret;
	lwsgo_call c;

	if (cd && cd->created)
		lwsgo_reattach(cd, wsi, reason);
	if (cd && wsi && cd->pend.wsi == wsi && (int)reason == cd->pend.reason) {
		/* the write Go handed over (lwsgo_service_pending) */
		lwsgo_skip(cd, reason);
		return lwsgo_pending_write(cd, wsi);
	}
	if (cd && !__atomic_load_n(&cd->report_all, __ATOMIC_RELAXED) &&
	    lwsgo_go_ignores(reason))
		return lwsgo_skip(cd, reason);

	c.in = in;
	c.len = c.dlen = len;
	c.flags = c.fake = 0;
	if (lwsgo_prepare(cd, wsi, reason, user, &c) == LWSGO_ANSWERED)
		return 0;
	if (!cd)
		/* No context to report to: only OPENSSL verification
		 * callbacks of a wsi-less TLS session could get here. */
		return 0;

	if (wsi && !c.fake) {
		h = (uintptr_t)lws_get_opaque_user_data(wsi);
		pr = lws_get_protocol(wsi);
		if (pr)
			proto = (int)pr->id;
	}
	ret = goLwsCallback(cd->h, (uintptr_t)wsi, h, (int)reason, c.in, c.len,
			    c.dlen, c.flags, proto);
	if (reason == LWS_CALLBACK_WSI_CREATE && wsi) {
		cd->created = wsi;
		cd->created_h = (uintptr_t)lws_get_opaque_user_data(wsi);
	}
	if ((reason == LWS_CALLBACK_RECEIVE ||
	     reason == LWS_CALLBACK_CLIENT_RECEIVE) && (c.flags & LWSGO_F_FINAL))
		lwsgo_evloop_received(cd, wsi);

	return lwsgo_finish(wsi, reason, user, in, len, &c, ret);
}
