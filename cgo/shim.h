/*
 * shim.h: the C side of package cgo. See shim.c for the design.
 *
 * Go calls only the lwsgo_* functions declared here. They take a wsi as
 * uintptr_t so that Go never converts integers back into pointers.
 */
#ifndef LWSGO_SHIM_H
#define LWSGO_SHIM_H

#include <stdint.h>
#include <stddef.h>
#include <libwebsockets.h>

#if !defined(LWS_LIBRARY_VERSION_MAJOR) || \
    (LWS_LIBRARY_VERSION_MAJOR * 1000 + LWS_LIBRARY_VERSION_MINOR) < 4001
#error "lwsgate needs libwebsockets 4.1 or newer (Debian: apt-get install libwebsockets-dev)"
#endif
#if !defined(LWS_ROLE_WS) || !defined(LWS_ROLE_H1)
#error "lwsgate needs libwebsockets built with the ws and h1 roles"
#endif

/* Flags computed in C and passed with each callback (callbacks.Flags). */
#define LWSGO_F_FIRST    (1 << 0)
#define LWSGO_F_FINAL    (1 << 1)
#define LWSGO_F_BINARY   (1 << 2)
#define LWSGO_F_NOREMAIN (1 << 3)
#define LWSGO_F_WAKE     (1 << 4)
#define LWSGO_F_STALE    (1 << 5)
#define LWSGO_F_DEFLATE  (1 << 6) /* ESTABLISHED: permessage-deflate is on */

/*
 * The C state of a wsi, at the start of its lws user_space: a listener's
 * protocols have lws allocate it (per_session_data_size), zeroed; a client
 * brings its own as the first member of lwsgo_client. Only the
 * permessage-deflate wrapper (pmd.c) and lwsgo_callback use it.
 */
typedef struct lwsgo_keep {
	size_t len;
	unsigned char b[];
} lwsgo_keep;

typedef struct lwsgo_pss {
	uint64_t rx_raw;   /* compressed bytes of the message being received */
	uint64_t rx_limit; /* above this, force a RECEIVE (0: none; Go sets it) */
	lwsgo_keep *keep;  /* those rx_avail bytes, copied out (see lwsgo_pmd) */
	int rx_avail;      /* compressed bytes zlib holds and has not inflated */
	uint8_t pmd;       /* permessage-deflate is active on the link */
	uint8_t client;    /* the wsi is a client link (set by lwsgo_client_new) */
	unsigned char ph[2]; /* the placeholder output (see lwsgo_pmd) */
} lwsgo_pss;

/* One per lws_context, C-allocated; lws_context_user() points here. */
/* Reasons counted per number; larger numbers count as the last. */
#define LWSGO_REASONS 128

typedef struct lwsgo_ctx {
	struct lws_context *ctx;
	uintptr_t h;          /* cgo.Handle of the Go *cgo.Context */
	int wake;       /* 1 while a wake-up is pending (__atomic builtins) */
	int report_all; /* cross to Go for every reason (reason log on) */
	/* Callbacks answered in C without crossing into Go (report_all
	 * off), per reason, since Go last collected them; written and read
	 * on the service thread only. */
	uint32_t skipped[LWSGO_REASONS];
	int nskipped;
	/* The accepted wsi whose WSI_CREATE came last, until its
	 * SERVER_NEW_CLIENT_INSTANTIATED or WSI_DESTROY, and the handle Go
	 * attached to it there: lws resets the opaque user data right after
	 * WSI_CREATE, and the callback puts it back (lwsgo_reattach).
	 * Service thread only. */
	struct lws *created;
	uintptr_t created_h;
#if LWS_LIBRARY_VERSION_NUMBER >= 4003000
	/* The context's own log context (see lwsgo_ctx_create); it outlives
	 * the lws_context, as this struct does. */
	lws_log_cx_t log_cx;
#endif
	/* The libev loop the context runs on (evloop.c), or NULL for
	 * libwebsockets' own poll(2) loop. */
	struct lwsgo_evloop *ev;
	/* What lwsgo_service_write or lwsgo_service_respond hands to the
	 * WRITEABLE callback (reason) of wsi they deliver, for
	 * lwsgo_callback to write without crossing into Go: a WebSocket
	 * message (buf, len, binary), or an HTTP answer (status, hdrs,
	 * buf as its body, len, content_length, end). Set only during that
	 * call: buf and hdrs are Go memory. res is the result. Service
	 * thread only. */
	struct {
		struct lws *wsi;
		int reason;
		const unsigned char *buf;
		size_t len;
		int binary;
		int status;
		const char *hdrs;
		int hdrslen;
		int64_t content_length;
		int end;
		int res;
	} pend;
} lwsgo_ctx;

/* Context-wide settings, copied into lws_context_creation_info by name. */
typedef struct lwsgo_ctx_info {
	uint64_t options;
	int timeout_secs;
	int fd_limit_per_thread;
	int pt_serv_buf_size;
	unsigned short max_http_header_data; /* per context in lws */
	unsigned short max_http_header_pool;
	int event_loop; /* LWSGO_LOOP_* */
} lwsgo_ctx_info;

/* The event loops a context can run on (lwsgo_ctx_info.event_loop). */
#define LWSGO_LOOP_POLL  0
#define LWSGO_LOOP_LIBEV 1
#if defined(LWS_WITH_LIBEV)
#define LWSGO_LIBEV_BUILT 1
#else
#define LWSGO_LIBEV_BUILT 0
#endif

/* lwsgo_ctx_create's failures other than lws_create_context's own. */
#define LWSGO_ERR_NO_LIBEV   (-2) /* libwebsockets built without libev */
#define LWSGO_ERR_NO_PLUGIN  (-3) /* its libev plugin is not installed */
#define LWSGO_ERR_EVLOOP     (-4) /* ev_loop_new failed */

/* One listener (vhost). Strings are C memory owned by Go until the context
 * is destroyed: lws keeps pointers to name, iface and protocol names. */
typedef struct lwsgo_vhost_info {
	int index;             /* listener index, carried in lws_protocols.id */
	const char *name;
	const char *iface;
	int port;
	uint64_t options;
	const char *cert_path;
	const char *key_path;
	const char *ca_path;
	const char *alpn;
	const char *client_ca_path;   /* CA file for client links; NULL: OS store */
	const char *client_cert_path; /* client certificate (mutual TLS) */
	const char *client_key_path;
	unsigned int keepalive_timeout;
	unsigned int timeout_secs_ah_idle; /* 0: lws default (10 s) */
	int timeout_secs;
	const char **protocol_names; /* protocol_names[0] gets HTTP */
	int nprotocols;
	size_t rx_buffer_size;
	size_t tx_packet_size;
	int compression;       /* 1: offer and accept permessage-deflate */
} lwsgo_vhost_info;

/* What lwsgo_vhost_create allocates; freed by lwsgo_vhost_free after the
 * context is destroyed. */
typedef struct lwsgo_vhost {
	struct lws_vhost *vh;
	struct lws_protocols *protocols;
	lws_retry_bo_t retry; /* all zero: no idle policy (context.c) */
} lwsgo_vhost;

/* context.c */
lwsgo_ctx *lwsgo_ctx_new(void);
int lwsgo_ctx_create(lwsgo_ctx *cd, const lwsgo_ctx_info *ci);
void lwsgo_ctx_free(lwsgo_ctx *cd);
int lwsgo_service(lwsgo_ctx *cd);
void lwsgo_ctx_destroy(lwsgo_ctx *cd);
const char *lwsgo_libev_plugin_path(void);
void lwsgo_wake(lwsgo_ctx *cd);
void lwsgo_set_report_all(lwsgo_ctx *cd, int on);
int lwsgo_forced_service(struct lws_context *ctx);
lwsgo_vhost *lwsgo_vhost_create(lwsgo_ctx *cd, const lwsgo_vhost_info *vi);
void lwsgo_vhost_free(lwsgo_vhost *v);
int lwsgo_vhost_port(lwsgo_vhost *v);
uintptr_t lwsgo_adopt_socket(lwsgo_vhost *v, int fd);
void lwsgo_log_init(int levels);

/* rxpool.c: libwebsockets' allocator, with the links' receive buffers in
 * page-aligned slots (installed once, by the first context). */
void lwsgo_rxpool_install(void);
int lwsgo_rxpool_enabled(void);
long lwsgo_rxpool_live(void);

/*
 * Client links. A client's C-side state lives in lwsgo_client, C memory that
 * Go allocates before the connect call and frees after the wsi is destroyed
 * (or at the call site when the connect call returns 0): lws calls back
 * during the handshake for the request headers, and those must be at hand
 * in C. lws receives it as the wsi's user_space (ci.userdata), which lws
 * never frees because it did not allocate it.
 */
typedef struct lwsgo_client {
	lwsgo_pss pss;    /* first: lws_wsi_user() of the wsi points here */
	char *hdrs;       /* "name\0value\0" pairs for the request, C memory */
	int hdrslen;
	int body_pending; /* an HTTP request body follows the headers */
} lwsgo_client;

typedef struct lwsgo_connect_info {
	lwsgo_vhost *vh;
	const char *address;  /* IP literal: names are resolved in Go */
	int port;
	const char *path;     /* path and query */
	const char *host;     /* Host header, TLS SNI and certificate name */
	const char *origin;
	const char *method;   /* NULL: WebSocket */
	const char *protocols;/* offered subprotocols, comma-separated */
	const char *alpn;
	int tls;              /* 1: TLS */
	int insecure;         /* 1: skip every certificate check */
	uintptr_t h;          /* Go handle, the wsi's opaque user data */
	lwsgo_client *cl;
	const lws_retry_bo_t *retry; /* NULL: the context's default (lws 300 s / 310 s) */
} lwsgo_connect_info;

/* client.c */
uintptr_t lwsgo_client_connect(lwsgo_ctx *cd, const lwsgo_connect_info *ci);
lwsgo_client *lwsgo_client_new(const char *hdrs, int hdrslen, int body);
void lwsgo_client_free(lwsgo_client *cl);
lws_retry_bo_t *lwsgo_retry_new(uint16_t ping_secs, uint16_t hangup_secs);
int lwsgo_client_body_done(uintptr_t wsi);
const char *lwsgo_x509_error_string(int code);

/* wsi.c */
int lwsgo_ws_write(uintptr_t wsi, unsigned char *payload, size_t len,
		   int binary, int first, int last, int check);
int lwsgo_ws_ping(uintptr_t wsi, unsigned char *payload, size_t len);
int lwsgo_ws_write_raw(uintptr_t wsi, unsigned char *buf, size_t len,
		       int check);
void lwsgo_close_reason(uintptr_t wsi, int code, const unsigned char *reason,
			size_t len);
int lwsgo_on_writable(uintptr_t wsi);
int lwsgo_service_writable(uintptr_t wsi);
/* lwsgo_service_write's and lwsgo_service_respond's result when lws did
 * not call WRITEABLE back */
#define LWSGO_NOT_CALLED 2
int lwsgo_service_write(uintptr_t wsi, unsigned char *payload, size_t len,
			int binary);
void lwsgo_set_opaque(uintptr_t wsi, uintptr_t h);
int lwsgo_socket_fd(uintptr_t wsi);
void lwsgo_kill(uintptr_t wsi, int sync);
void lwsgo_set_timeout(uintptr_t wsi, int secs);
void lwsgo_rx_flow(uintptr_t wsi, int enable);

/* pmd.c */
int lwsgo_compression_available(void);
void lwsgo_set_rx_limit(uintptr_t wsi, uint64_t limit);

/* offer.c */
/* The longest offer lwsgo_ws_set_offer writes: permessage-deflate with both
 * context takeover parameters. */
#define LWSGO_OFFER_MAX 80
/* The longest Sec-WebSocket-Extensions header lws copies to the buffer of
 * its 101 without overwriting the answer, which it writes
 * MAX_WEBSOCKET_04_KEY_LEN (128, private) + 256 + LWS_PRE bytes in
 * (lib/roles/ws/server-ws.c, handshake_0405): the copy and its NUL must
 * end before. */
#define LWSGO_EXTENSIONS_MAX (128 + 256 + LWS_PRE - 1)
int lwsgo_ws_set_offer(uintptr_t wsi, const char *offer);
/* The longest subprotocol name lws binds: it tokenizes names into 64 bytes
 * (lws_process_ws_upgrade, lib/roles/ws/server-ws.c). */
#define LWSGO_PROTOCOL_NAME_MAX 63
int lwsgo_ws_set_protocol(uintptr_t wsi, const char *name);
size_t lwsgo_ah_data_live(void);

/* http.c */
int lwsgo_http_headers(uintptr_t wsi, int status, const char *hdrs,
		       int hdrslen, int64_t content_length, int check);
int lwsgo_http_write(uintptr_t wsi, unsigned char *payload, size_t len,
		     int final, int check);
int lwsgo_http_transaction_completed(uintptr_t wsi);
int lwsgo_service_respond(uintptr_t wsi, int status, const char *hdrs,
			  int hdrslen, const unsigned char *body, int bodylen,
			  int64_t content_length, int end);
int lwsgo_http_respond(uintptr_t wsi, int status, const char *hdrs,
		       int hdrslen, const unsigned char *body, int bodylen,
		       int64_t content_length, int end);
int lwsgo_http_resume(uintptr_t wsi, int ask);
int lwsgo_http_refuse(uintptr_t wsi, int status, const char *hdrs, int hdrslen,
		      const unsigned char *body, int bodylen);

/* headers.c */
int lwsgo_http_info(uintptr_t wsi, char *buf, int len, const char *custom,
		    int customlen);
int lwsgo_client_response(uintptr_t wsi, char *buf, int len, const char *custom,
			  int customlen);
int lwsgo_custom_header_count(uintptr_t wsi, const char *name, int nlen);
/* 1 when lwsgo_custom_header_count can count (see there) */
#if LWS_LIBRARY_VERSION_NUMBER >= 4003000 && defined(LWS_WITH_CUSTOM_HEADERS)
#define LWSGO_COUNTS_CUSTOM_HEADERS 1
#else
#define LWSGO_COUNTS_CUSTOM_HEADERS 0
#endif

#endif
