/*
 * internal.h: what the C files of package cgo share with each other and Go
 * never calls. Go includes shim.h only. See shim.c for the design and the
 * list of files.
 */
#ifndef LWSGO_INTERNAL_H
#define LWSGO_INTERNAL_H

#include "shim.h"

/* OpenSSL is the TLS library: its certificate verification result can be
 * read (shim.c, client.c). */
#if defined(LWS_WITH_TLS) && defined(LWS_OPENSSL_SUPPORT) && \
    !defined(LWS_WITH_MBEDTLS)
#define LWSGO_OPENSSL 1
#endif

/* evloop.c: the libev loop of a context that runs on one. new makes it
 * (before lws_create_context, *loop is for info.foreign_loops), attach
 * takes over lws' timers (after), run is one pass, received counts the
 * links whose messages reached Go (for the mid-pass hand-over), free ends it
 * (after lws_context_destroy; also when new failed). */
int lwsgo_evloop_new(lwsgo_ctx *cd, void **loop);
int lwsgo_evloop_attach(lwsgo_ctx *cd);
void lwsgo_evloop_run(lwsgo_ctx *cd);
void lwsgo_evloop_received(lwsgo_ctx *cd, struct lws *wsi);
void lwsgo_evloop_free(lwsgo_ctx *cd);
#if defined(LWS_WITH_LIBEV)
#define LWSGO_OPTION_LIBEV LWS_SERVER_OPTION_LIBEV
#else
#define LWSGO_OPTION_LIBEV 0 /* lwsgo_evloop_new fails first */
#endif

/* shim.c: the callback of every protocol of every vhost. */
int lwsgo_callback(struct lws *wsi, enum lws_callback_reasons reason,
		   void *user, void *in, size_t len);

/* pmd.c: the extension table of a vhost with compression, and the end of
 * a wsi's compression state (at WSI_DESTROY, or when a client's C memory
 * is freed). */
#if !defined(LWS_WITHOUT_EXTENSIONS)
extern const struct lws_extension lwsgo_extensions[];
#endif
void lwsgo_pss_release(lwsgo_pss *ps);

/* offer.c: the record of lws' header buffers ("ah data") and of the
 * structs that index them ("ah struct", their size recorded with
 * LWSGO_AH_STRUCT set), kept by the allocator (rxpool.c) for
 * lwsgo_ws_set_offer and lwsgo_ws_set_protocol. lwsgo_ah_data_forget
 * returns the size recorded for p, or 0 if p is neither. */
#define LWSGO_AH_STRUCT ((size_t)1 << (sizeof(size_t) * 8 - 1))
void lwsgo_ah_data_record(void *p, size_t size);
size_t lwsgo_ah_data_forget(void *p);

/* headers.c: appends Go's "name\0value\0" pairs to headers being built. */
int lwsgo_add_headers(struct lws *w, const char *hdrs, int hdrslen,
		      unsigned char **p, unsigned char *end);

/* wsi.c: a WRITEABLE callback delivered with the write it is to do
 * (lwsgo_service_write, lwsgo_service_respond), and that callback. */
int lwsgo_service_pending(lwsgo_ctx *cd, struct lws *w);
int lwsgo_pending_write(lwsgo_ctx *cd, struct lws *wsi);

/* client.c: what lwsgo_callback does after Go answered a client reason. */
int lwsgo_client_append(struct lws *w, const lwsgo_client *cl,
			unsigned char **p, size_t room);
int lwsgo_client_read(struct lws *w);

/*
 * lwsgo_choked is what the write helpers (wsi.c, http.c) return after a
 * write that lws took: 1 when the socket can take no more now, else 0. It
 * asks lws_send_pipe_choked(), which costs a poll(2) of the socket, only
 * when check is set: the caller has more to write in this callback.
 * Whatever the kernel does not take, libwebsockets keeps (buflist_out) and
 * sends before anything written after it, so a write into a choked socket
 * is correct, only a copy.
 */
static inline int
lwsgo_choked(struct lws *w, int check)
{
	return check && lws_send_pipe_choked(w) ? 1 : 0;
}

#endif
