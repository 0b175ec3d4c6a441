/*
 * client.c: client links, WebSocket and HTTP. See shim.c for the design of
 * the C layer and the list of its files.
 *
 * A client link's C state is an lwsgo_client (shim.h), which Go allocates
 * before the connect call and frees after WSI_DESTROY: lws calls back
 * during the handshake for the request headers Go prepared, and those must
 * be at hand in C. lws sees it as the wsi's user_space and never frees it.
 * lwsgo_callback comes here twice, after Go answered: to append those
 * headers at CLIENT_APPEND_HANDSHAKE_HEADER (lwsgo_client_append), and to
 * read the response body at RECEIVE_CLIENT_HTTP (lwsgo_client_read).
 * The response's status and headers are read in headers.c.
 */
#include "internal.h"

#include <stdlib.h>
#include <string.h>

#if defined(LWSGO_OPENSSL)
#include <openssl/x509.h>
#endif

lwsgo_client *
lwsgo_client_new(const char *hdrs, int hdrslen, int body)
{
	lwsgo_client *cl = calloc(1, sizeof(*cl));

	if (!cl)
		return NULL;
	if (hdrslen > 0) {
		cl->hdrs = malloc((size_t)hdrslen);
		if (!cl->hdrs) {
			free(cl);
			return NULL;
		}
		memcpy(cl->hdrs, hdrs, (size_t)hdrslen);
		cl->hdrslen = hdrslen;
	}
	cl->body_pending = body;
	cl->pss.client = 1;

	return cl;
}

void
lwsgo_client_free(lwsgo_client *cl)
{
	if (!cl)
		return;
	lwsgo_pss_release(&cl->pss);
	free(cl->hdrs);
	free(cl);
}

uintptr_t
lwsgo_client_connect(lwsgo_ctx *cd, const lwsgo_connect_info *ci)
{
	struct lws_client_connect_info i;

	memset(&i, 0, sizeof(i));
	i.context = cd->ctx;
	i.vhost = ci->vh->vh;
	i.address = ci->address;
	i.port = ci->port;
	i.path = ci->path;
	i.host = ci->host;
	i.origin = ci->origin;
	i.method = ci->method;
	i.protocol = ci->protocols;
	/* bind the one local protocol whatever subprotocol is agreed */
	i.local_protocol_name = ci->vh->protocols[0].name;
	i.alpn = ci->alpn;
	if (ci->tls)
		i.ssl_connection |= LCCSCF_USE_SSL;
	if (ci->tls && ci->insecure)
		i.ssl_connection |= LCCSCF_ALLOW_SELFSIGNED |
				    LCCSCF_SKIP_SERVER_CERT_HOSTNAME_CHECK |
				    LCCSCF_ALLOW_EXPIRED | LCCSCF_ALLOW_INSECURE;
	if (ci->method)
		/* redirects are the caller's business (http.Client) */
		i.ssl_connection |= LCCSCF_HTTP_NO_FOLLOW_REDIRECT;
	i.userdata = ci->cl;
	i.opaque_user_data = (void *)ci->h;
	i.retry_and_idle_policy = ci->retry;

	/* strings are copied into the wsi's stash before this returns */
	return (uintptr_t)lws_client_connect_via_info(&i);
}

int
lwsgo_client_body_done(uintptr_t wsi)
{
	lws_client_http_body_pending((struct lws *)wsi, 0);

	return 0;
}

/*
 * lwsgo_client_append appends the request headers Go prepared to the
 * handshake lws is writing at *p, room bytes left, and asks for the body's
 * CLIENT_HTTP_WRITEABLE callbacks when one follows.
 */
int
lwsgo_client_append(struct lws *w, const lwsgo_client *cl, unsigned char **p,
		    size_t room)
{
	if (lwsgo_add_headers(w, cl->hdrs, cl->hdrslen, p, *p + room))
		return -1;
	if (cl->body_pending) {
		lws_client_http_body_pending(w, 1);
		lws_callback_on_writable(w);
	}
	return 0;
}

/* lwsgo_client_read reads what the socket holds of the response body: the
 * payload comes to Go as nested RECEIVE_CLIENT_HTTP_READ callbacks. */
int
lwsgo_client_read(struct lws *w)
{
	char buf[LWS_PRE + 16384], *p = buf + LWS_PRE;
	int n = (int)sizeof(buf) - LWS_PRE;

	return lws_http_client_read(w, &p, &n) < 0 ? -1 : 0;
}

lws_retry_bo_t *
lwsgo_retry_new(uint16_t ping_secs, uint16_t hangup_secs)
{
	lws_retry_bo_t *r = calloc(1, sizeof(*r));

	if (r) {
		r->secs_since_valid_ping = ping_secs;
		r->secs_since_valid_hangup = hangup_secs;
	}

	return r;
}

const char *
lwsgo_x509_error_string(int code)
{
#if defined(LWSGO_OPENSSL)
	return X509_verify_cert_error_string(code);
#else
	(void)code;
	return "certificate verification failed";
#endif
}
