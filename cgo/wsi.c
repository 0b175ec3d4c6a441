/*
 * wsi.c: WebSocket writes and the controls of a connection. See shim.c for
 * the design of the C layer and the list of its files.
 *
 * The write helpers write what Go hands them at once (lws_write never
 * blocks: what the kernel does not take, lws keeps and sends first) and
 * return -1 (failed: close), 0 (written) or 1 (written, and the socket can
 * take no more now; see lwsgo_choked in internal.h). The controls are thin
 * calls of lws API, here so that Go passes a wsi as an integer only.
 */
#include "internal.h"

#include <string.h>

int
lwsgo_ws_write(uintptr_t wsi, unsigned char *payload, size_t len, int binary,
	       int first, int last, int check)
{
	struct lws *w = (struct lws *)wsi;
	int fl = lws_write_ws_flags(binary ? LWS_WRITE_BINARY : LWS_WRITE_TEXT,
				    first, last);

	/* payload has LWS_PRE writable bytes before it (see lws/frame.go) */
	if (lws_write(w, payload, len, (enum lws_write_protocol)fl) < 0)
		return -1;

	return lwsgo_choked(w, check);
}

/*
 * lwsgo_ws_write_raw writes bytes that are already whole WebSocket frames,
 * several of them at once: one send instead of one per frame. lws' ws role
 * passes LWS_WRITE_RAW (LWS_WRITE_HTTP) straight to lws_issue_raw, buflist
 * and all (lib/roles/ws/ops-ws.c, rops_write_role_protocol_ws, 4.1.6 and
 * 4.3): no masking, no extension. So it also sends an empty message on a
 * link with permessage-deflate, which the extension cannot (lws/frame.go,
 * emptyFrame); on a client link the caller masks.
 */
int
lwsgo_ws_write_raw(uintptr_t wsi, unsigned char *buf, size_t len, int check)
{
	struct lws *w = (struct lws *)wsi;

	if (lws_write(w, buf, len, LWS_WRITE_RAW) < 0)
		return -1;

	return lwsgo_choked(w, check);
}

int
lwsgo_ws_ping(uintptr_t wsi, unsigned char *payload, size_t len)
{
	struct lws *w = (struct lws *)wsi;

	if (lws_write(w, payload, len, LWS_WRITE_PING) < 0)
		return -1;

	return lws_send_pipe_choked(w) ? 1 : 0;
}

void
lwsgo_close_reason(uintptr_t wsi, int code, const unsigned char *reason,
		   size_t len)
{
	unsigned char buf[125];

	/* lws_close_reason takes a non-const buffer; keep Go's untouched */
	if (len > sizeof(buf) - 2)
		len = sizeof(buf) - 2;
	if (len)
		memcpy(buf, reason, len);
	lws_close_reason((struct lws *)wsi, (enum lws_close_status)code, buf,
			 len);
}

int
lwsgo_on_writable(uintptr_t wsi)
{
	return lws_callback_on_writable((struct lws *)wsi);
}

void
lwsgo_set_opaque(uintptr_t wsi, uintptr_t h)
{
	lws_set_opaque_user_data((struct lws *)wsi, (void *)h);
}

int
lwsgo_socket_fd(uintptr_t wsi)
{
	return (int)lws_get_socket_fd((struct lws *)wsi);
}

void
lwsgo_set_timeout(uintptr_t wsi, int secs)
{
	lws_set_timeout((struct lws *)wsi, PENDING_TIMEOUT_USER_OK, secs);
}

void
lwsgo_kill(uintptr_t wsi, int sync)
{
	lws_set_timeout((struct lws *)wsi, PENDING_TIMEOUT_USER_OK,
			sync ? LWS_TO_KILL_SYNC : LWS_TO_KILL_ASYNC);
}

void
lwsgo_rx_flow(uintptr_t wsi, int enable)
{
	lws_rx_flow_control((struct lws *)wsi, enable);
}

/*
 * lwsgo_service_writable delivers the WRITEABLE callback to wsi now
 * (HTTP_WRITEABLE, or a WebSocket link's), by servicing its socket as if
 * poll() had reported it writable and nothing else: lws_service_fd with
 * POLLOUT alone, what the event loop itself does for each ready fd. It is
 * called between lws_service passes, never from inside a callback. So a
 * response is written before libwebsockets reads whatever the client sent
 * after the request: both versions mishandle those bytes while a
 * transaction is open (see lws/http.go); and an echo is written right
 * after the pass that read its message, without another poll (writeNow in
 * lws/queue.go). lws_write keeps what the socket does not take, as after a
 * real POLLOUT. Returns lws_service_fd's result; the wsi may be closed and
 * freed when it returns.
 */
int
lwsgo_service_writable(uintptr_t wsi)
{
	struct lws *w = (struct lws *)wsi;
	struct lws_pollfd pfd;

	pfd.fd = lws_get_socket_fd(w);
	if (pfd.fd < 0)
		return -1;
	pfd.events = LWS_POLLOUT;
	pfd.revents = LWS_POLLOUT;

	return lws_service_fd(lws_get_context(w), &pfd);
}

/*
 * lwsgo_service_pending is lwsgo_service_writable with cd->pend set by the
 * caller: a write that the WRITEABLE callback of w would do and nothing
 * else (Go decides: lws/conn_tx.go, writeAlone; lws/http.go,
 * answerAlone). lwsgo_callback does it from that callback
 * (lwsgo_pending_write), instead of crossing into Go for it; it still
 * happens in the WRITEABLE callback, as every write of the binding does.
 * Returns the write's result (pend.res), or LWSGO_NOT_CALLED when lws did
 * not call back, as when it had bytes of its own to send first (a write
 * the socket did not take whole, a pong, a close): nothing was written
 * then. The Go memory pend points to is forgotten before it returns.
 */
int
lwsgo_service_pending(lwsgo_ctx *cd, struct lws *w)
{
	cd->pend.res = LWSGO_NOT_CALLED;
	cd->pend.wsi = w;
	lwsgo_service_writable((uintptr_t)w);
	cd->pend.wsi = NULL;
	cd->pend.buf = NULL;
	cd->pend.hdrs = NULL;

	return cd->pend.res;
}

/*
 * lwsgo_pending_write is the WRITEABLE callback of the wsi that
 * lwsgo_service_pending is delivering it to: it does the write handed
 * over, and returns what Go's callback would: -1 (close) when the write
 * failed or, for an HTTP answer, when the connection ends with it.
 */
int
lwsgo_pending_write(lwsgo_ctx *cd, struct lws *wsi)
{
	int fl, r;

	cd->pend.wsi = NULL;
	if (cd->pend.reason == LWS_CALLBACK_HTTP_WRITEABLE) {
		r = lwsgo_http_respond((uintptr_t)wsi, cd->pend.status,
				       cd->pend.hdrs, cd->pend.hdrslen,
				       cd->pend.buf, (int)cd->pend.len,
				       cd->pend.content_length, cd->pend.end);
		cd->pend.res = r;
		return r || !cd->pend.end ? -1 : 0;
	}
	fl = lws_write_ws_flags(cd->pend.binary ? LWS_WRITE_BINARY :
						  LWS_WRITE_TEXT, 1, 1);
	/* buf has LWS_PRE writable bytes before it (see lws/frame.go) */
	if (lws_write(wsi, (unsigned char *)cd->pend.buf, cd->pend.len,
		      (enum lws_write_protocol)fl) < 0) {
		cd->pend.res = -1;
		return -1;
	}
	cd->pend.res = 0;

	return 0;
}

/*
 * lwsgo_service_write delivers the SERVER_WRITEABLE callback of a server
 * link whose callback would only write one whole message, payload (with
 * LWS_PRE bytes of headroom), and writes it from there (see
 * lwsgo_service_pending). Returns what lwsgo_ws_write returns (-1: the
 * write failed, and lws closed the link), or LWSGO_NOT_CALLED.
 */
int
lwsgo_service_write(uintptr_t wsi, unsigned char *payload, size_t len,
		    int binary)
{
	struct lws *w = (struct lws *)wsi;
	lwsgo_ctx *cd = (lwsgo_ctx *)lws_context_user(lws_get_context(w));

	cd->pend.reason = LWS_CALLBACK_SERVER_WRITEABLE;
	cd->pend.buf = payload;
	cd->pend.len = len;
	cd->pend.binary = binary;

	return lwsgo_service_pending(cd, w);
}
