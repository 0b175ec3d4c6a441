/*
 * http.c: the HTTP server's answers. See shim.c for the design of the C
 * layer and the list of its files.
 *
 * Go answers a request from HTTP_WRITEABLE. An answer whose body is known
 * and small is one write, status line, headers and body together, and the
 * end of the transaction (lwsgo_http_respond): one send. A larger one is
 * the status line and headers (lwsgo_http_headers), then the body in
 * chunks as the socket takes them (lwsgo_http_write), then the end of the
 * transaction, after which a keep-alive connection reads its next request. A refusal is the whole
 * answer in one write (lwsgo_http_refuse). The request itself is read in
 * headers.c. Pipelined requests: lws mishandles bytes a client sends after
 * a request while its transaction is open (see httpConn in lws/http.go),
 * so the binding keeps rx paused while it answers and writes the answer
 * between lws_service passes (lwsgo_service_writable, in wsi.c), before lws
 * reads the socket again.
 */
#include "internal.h"

#include <stdlib.h>
#include <string.h>

/*
 * lwsgo_head_alloc allocates the buffer of a response: LWS_PRE bytes, room
 * for its status line and headers (hdrslen bytes of Go's pairs, with lws'
 * own), and extra bytes after them. It sets *start where the response
 * goes and *end one byte before the buffer's end (lws writes a NUL at
 * *end). Returns the buffer to free, or NULL.
 */
static unsigned char *
lwsgo_head_alloc(int hdrslen, int extra, unsigned char **start,
		 unsigned char **end)
{
	size_t cap = LWS_PRE + 512 + (size_t)hdrslen * 2 + (size_t)extra;
	unsigned char *buf;

	if (cap < LWS_PRE + LWS_RECOMMENDED_MIN_HEADER_SPACE + (size_t)extra)
		cap = LWS_PRE + LWS_RECOMMENDED_MIN_HEADER_SPACE +
		      (size_t)extra;
	buf = malloc(cap);
	if (!buf)
		return NULL;
	*start = buf + LWS_PRE;
	*end = buf + cap - 1;

	return buf;
}

/*
 * lwsgo_write_whole ends the headers built from start to p (up to end),
 * appends bodylen bytes of body and writes it all in one lws_write of
 * kind wp. Returns 0, or -1 when it does not fit or was not written.
 */
static int
lwsgo_write_whole(struct lws *w, unsigned char *start, unsigned char *p,
		  unsigned char *end, const unsigned char *body, int bodylen,
		  enum lws_write_protocol wp)
{
	int n;

	if (lws_finalize_http_header(w, &p, end) || end - p < bodylen)
		return -1;
	if (bodylen)
		memcpy(p, body, (size_t)bodylen);
	p += bodylen;
	n = lws_ptr_diff(p, start);

	return lws_write(w, start, (size_t)n, wp) == n ? 0 : -1;
}

/*
 * lwsgo_http_headers writes the status line and headers of a response.
 * hdrs is a sequence of NUL-terminated name, value strings. A
 * content_length < 0 means none (lws then adds "connection: close").
 */
int
lwsgo_http_headers(uintptr_t wsi, int status, const char *hdrs, int hdrslen,
		   int64_t content_length, int check)
{
	struct lws *w = (struct lws *)wsi;
	unsigned char *buf, *start, *p, *end;
	int r = -1;

	buf = lwsgo_head_alloc(hdrslen, 0, &start, &end);
	if (!buf)
		return -1;
	p = start;
	if (lws_add_http_common_headers(w, (unsigned int)status, NULL,
			content_length < 0 ? LWS_ILLEGAL_HTTP_CONTENT_LEN :
					     (lws_filepos_t)content_length,
			&p, end) ||
	    lwsgo_add_headers(w, hdrs, hdrslen, &p, end) ||
	    lws_finalize_write_http_header(w, start, &p, end))
		goto out;
	r = lwsgo_choked(w, check);
out:
	free(buf);
	return r;
}

/*
 * lwsgo_http_refuse answers the request on wsi with status, hdrs (NUL-
 * terminated name, value pairs) and a text/plain body, in one write, and
 * marks the connection to close. It is for refusing a WebSocket upgrade
 * from HTTP_CONFIRM_UPGRADE, where lws has not run its HTTP action (so no
 * keep-alive decision was made) and where a callback that returns 1 has
 * answered itself: lws then calls lws_http_transaction_completed, which
 * sees the "connection: close" set here and closes once the response is
 * out. From LWS_CALLBACK_HTTP the callback returns -1 instead, and lws'
 * close sends what is written before it shuts the socket. Like
 * lws_return_http_status, the length goes in as a plain header (not
 * lws_add_http_header_content_length) because headers and body are one
 * LWS_WRITE_HTTP. Returns 0, or -1 when nothing could be written.
 */
int
lwsgo_http_refuse(uintptr_t wsi, int status, const char *hdrs, int hdrslen,
		  const unsigned char *body, int bodylen)
{
	struct lws *w = (struct lws *)wsi;
	unsigned char *buf, *start, *p, *end;
	char clen[24];
	int r = -1, n;

	buf = lwsgo_head_alloc(hdrslen, bodylen, &start, &end);
	if (!buf)
		return -1;
	p = start;
	/* no length here: lws adds "connection: close" and sets the
	 * connection to close after this transaction */
	if (lws_add_http_common_headers(w, (unsigned int)status,
					"text/plain; charset=utf-8",
					LWS_ILLEGAL_HTTP_CONTENT_LEN, &p, end))
		goto out;
	n = lws_snprintf(clen, sizeof(clen), "%d", bodylen);
	if (lws_add_http_header_by_token(w, WSI_TOKEN_HTTP_CONTENT_LENGTH,
					 (unsigned char *)clen, n, &p, end) ||
	    lwsgo_add_headers(w, hdrs, hdrslen, &p, end))
		goto out;
	r = lwsgo_write_whole(w, start, p, end, body, bodylen, LWS_WRITE_HTTP);
out:
	free(buf);
	return r;
}

/*
 * lwsgo_http_respond writes a whole answer in one lws_write: the status
 * line, lws' own headers, content-length, Go's hdrs (NUL-terminated name,
 * value pairs), then bodylen bytes of body (none for a HEAD: pass 0 and
 * the length in content_length). One send instead of two (headers, then
 * body), as lws_return_http_status does for HTTP/1. The length goes in as
 * for lwsgo_http_headers, so lws counts the body against it: h1 writes do
 * not check that count. The buffer is on the stack when the answer fits
 * (a few KiB), else malloc'd. With end, it then ends the transaction.
 * Returns -1 when nothing could be written (close), 0, or 1 when end says
 * the connection must close now (lws_http_transaction_completed).
 * For HTTP/1 only: an h2 stream sends headers and data in frames of their
 * own (the binding offers http/1.1 alone in ALPN).
 */
int
lwsgo_http_respond(uintptr_t wsi, int status, const char *hdrs, int hdrslen,
		   const unsigned char *body, int bodylen,
		   int64_t content_length, int end)
{
	struct lws *w = (struct lws *)wsi;
	unsigned char sbuf[LWS_PRE + 4096], *buf = NULL, *start, *p, *e;
	size_t need = 512 + (size_t)hdrslen * 2 + (size_t)bodylen;
	int r = -1;

	if (need < LWS_RECOMMENDED_MIN_HEADER_SPACE)
		need = LWS_RECOMMENDED_MIN_HEADER_SPACE;
	if (need + 1 <= sizeof(sbuf) - LWS_PRE) {
		start = sbuf + LWS_PRE;
		e = sbuf + sizeof(sbuf) - 1;
	} else {
		buf = lwsgo_head_alloc(hdrslen, bodylen, &start, &e);
		if (!buf)
			return -1;
	}
	p = start;
	if (lws_add_http_common_headers(w, (unsigned int)status, NULL,
			(lws_filepos_t)content_length, &p, e) ||
	    lwsgo_add_headers(w, hdrs, hdrslen, &p, e) ||
	    lwsgo_write_whole(w, start, p, e, body, bodylen,
			      LWS_WRITE_HTTP_FINAL))
		goto out;
	r = end && lws_http_transaction_completed(w) ? 1 : 0;
out:
	free(buf);
	return r;
}

/*
 * lwsgo_service_respond delivers the HTTP_WRITEABLE callback of a
 * connection whose callback would only write a whole answer in one write,
 * and writes it from there with lwsgo_http_respond (see
 * lwsgo_service_pending in wsi.c; the arguments are lwsgo_http_respond's).
 * Returns lwsgo_http_respond's result (-1 and 1: the callback returned -1,
 * and lws closed the connection), or LWSGO_NOT_CALLED.
 */
int
lwsgo_service_respond(uintptr_t wsi, int status, const char *hdrs,
		      int hdrslen, const unsigned char *body, int bodylen,
		      int64_t content_length, int end)
{
	struct lws *w = (struct lws *)wsi;
	lwsgo_ctx *cd = (lwsgo_ctx *)lws_context_user(lws_get_context(w));

	cd->pend.reason = LWS_CALLBACK_HTTP_WRITEABLE;
	cd->pend.status = status;
	cd->pend.hdrs = hdrs;
	cd->pend.hdrslen = hdrslen;
	cd->pend.buf = body;
	cd->pend.len = (size_t)bodylen;
	cd->pend.content_length = content_length;
	cd->pend.end = end;

	return lwsgo_service_pending(cd, w);
}

int
lwsgo_http_write(uintptr_t wsi, unsigned char *payload, size_t len, int final,
		 int check)
{
	struct lws *w = (struct lws *)wsi;

	if (lws_write(w, payload, len,
		      final ? LWS_WRITE_HTTP_FINAL : LWS_WRITE_HTTP) < 0)
		return -1;

	return lwsgo_choked(w, check);
}

int
lwsgo_http_transaction_completed(uintptr_t wsi)
{
	return lws_http_transaction_completed((struct lws *)wsi);
}

/*
 * lwsgo_http_resume resumes reading on wsi, paused while its answer was
 * prepared, and with ask reports whether some connection of the context
 * holds input lws read ahead and may hand over without the network (as
 * lwsgo_forced_service): one call before the answer, not two. On 4.3 the
 * check runs the scheduled events that are due, which may close wsi.
 */
int
lwsgo_http_resume(uintptr_t wsi, int ask)
{
	struct lws *w = (struct lws *)wsi;

	lws_rx_flow_control(w, 1);

	return ask && lwsgo_forced_service(lws_get_context(w));
}
