/*
 * lwsecho - the native libwebsockets echo server of the benchmark harness.
 *
 * The same echo semantics as lwsgate's default routing and the other
 * reference servers (bench/README.md), written directly against
 * libwebsockets so that the binding can be measured against the library
 * on its own:
 *
 *  - WebSocket (no subprotocol, or "lws-gate"): every message is echoed
 *    whole with its type. RECEIVE chunks are reassembled into one
 *    [LWS_PRE | payload] buffer per message (a message is complete at the
 *    final fragment with no payload remaining), appended to the link's
 *    queue, and SERVER_WRITEABLE writes queued messages until
 *    lws_send_pipe_choked() (write-until-choked), then asks for another
 *    WRITEABLE if any remain.
 *  - HTTP: POST /v1/api/createtoken answers 200 application/json
 *    {"code":0,"token":"native-<RequestId>"} with a content-length, on a
 *    keep-alive connection; the body is scanned crudely for "RequestId".
 *    Anything else gets 404.
 *
 * Context: VALIDATE_UTF8 (lws checks text itself; lwsgate does it in Go),
 * timeout_secs 15 as lwsgate, one vhost on -i/-p. The buffer sizes are the
 * knobs compared by the harness:
 *
 *   defaults: rx_buffer_size 0, tx_packet_size 0, pt_serv_buf_size 0 (all
 *             lws' defaults: 4096-byte reads, RECEIVE chunks and sends)
 *   tuned:    -s 65536 -t 65536 (64 KiB reads and sends), -r as chosen
 *
 * -w N runs N such contexts, each on a thread of its own with its own
 * event loop, the first on -p and the others on the ports after it: the
 * native counterpart of lwsgate's workers (N contexts, one service thread
 * each) for the scaling section. They do not share one port, because
 * libwebsockets 4.1.6 cannot (LWS_SERVER_OPTION_ALLOW_LISTEN_SHARE is
 * 4.3.1's); the load tool spreads its links over the ports instead.
 *
 * Usage: lwsecho [-i iface] [-p port] [-w contexts] [-r rx_buffer_size]
 *                [-t tx_packet_size] [-s pt_serv_buf_size]
 * Prints "listening on IFACE:PORT" once every vhost is up (PORT: the
 * first); SIGTERM/SIGINT end the process (the harness kills it; nothing
 * needs tearing down).
 */

#define _GNU_SOURCE /* memmem */

#include <libwebsockets.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_MESSAGE (16u * 1024u * 1024u)
#define BODY_SCAN 96 /* bytes of an HTTP body kept for the RequestId scan */

struct msg {
	struct msg *next;
	size_t len;
	int binary;
	unsigned char buf[]; /* LWS_PRE headroom, then the payload */
};

struct pss {
	/* WebSocket link */
	struct msg *head, *tail; /* echoes waiting for WRITEABLE */
	struct msg *rx;          /* the message being reassembled */
	size_t rxcap;
	/* HTTP transaction (the pss is reallocated for each) */
	char body[BODY_SCAN];
	size_t bodylen;
	int createtoken;
	int responded;
};

static void
free_ws(struct pss *p)
{
	struct msg *m = p->head, *n;

	for (; m; m = n) {
		n = m->next;
		free(m);
	}
	p->head = p->tail = NULL;
	free(p->rx);
	p->rx = NULL;
	p->rxcap = 0;
}

static int
ws_receive(struct lws *wsi, struct pss *p, const void *in, size_t len)
{
	size_t have = 0, need;

	if (lws_is_first_fragment(wsi)) {
		if (p->rx)
			p->rx->len = 0;
	} else if (p->rx)
		have = p->rx->len;

	need = have + len;
	if (need > MAX_MESSAGE) {
		lws_close_reason(wsi, LWS_CLOSE_STATUS_MESSAGE_TOO_LARGE, NULL, 0);
		return -1;
	}
	if (!p->rx || need > p->rxcap) {
		size_t cap = p->rxcap ? p->rxcap : 256;
		struct msg *m;

		while (cap < need)
			cap *= 2;
		m = realloc(p->rx, sizeof(*m) + LWS_PRE + cap);
		if (!m)
			return -1;
		if (!p->rx)
			m->len = 0;
		p->rx = m;
		p->rxcap = cap;
	}
	if (len)
		memcpy(p->rx->buf + LWS_PRE + have, in, len);
	p->rx->len = need;
	p->rx->binary = lws_frame_is_binary(wsi);

	if (!lws_is_final_fragment(wsi) || lws_remaining_packet_payload(wsi))
		return 0;

	/* complete: the reassembly buffer becomes the queued echo */
	p->rx->next = NULL;
	if (p->tail)
		p->tail->next = p->rx;
	else
		p->head = p->rx;
	p->tail = p->rx;
	p->rx = NULL;
	p->rxcap = 0;
	lws_callback_on_writable(wsi);

	return 0;
}

static int
ws_writeable(struct lws *wsi, struct pss *p)
{
	while (p->head) {
		struct msg *m = p->head;
		int fl = m->binary ? LWS_WRITE_BINARY : LWS_WRITE_TEXT;

		/* a short send is buffered by lws and reported as written */
		if (lws_write(wsi, m->buf + LWS_PRE, m->len,
			      (enum lws_write_protocol)fl) < (int)m->len)
			return -1;
		p->head = m->next;
		if (!p->head)
			p->tail = NULL;
		free(m);
		if (lws_send_pipe_choked(wsi))
			break;
	}
	if (p->head)
		lws_callback_on_writable(wsi);

	return 0;
}

static int
http_respond_headers(struct lws *wsi, int status, size_t clen)
{
	unsigned char buf[LWS_PRE + 512], *start = buf + LWS_PRE, *q = start,
		      *end = buf + sizeof(buf) - 1;

	if (lws_add_http_common_headers(wsi, (unsigned int)status,
					"application/json", clen, &q, end) ||
	    lws_finalize_write_http_header(wsi, start, &q, end))
		return -1;
	lws_callback_on_writable(wsi);

	return 0;
}

/*
 * The reply to the body seen: the crude scan finds "RequestId" : "..." and
 * answers {"code":0,"token":"native-<RequestId>"} ("0" when there is none).
 */
static int
format_reply(const struct pss *p, char *out, size_t outlen)
{
	const char *s = memmem(p->body, p->bodylen, "\"RequestId\"", 11);
	const char *e = p->body + p->bodylen, *v = NULL;
	int n = 0;

	if (s) {
		s += 11;
		while (s < e && (*s == ' ' || *s == ':' || *s == '"'))
			s++;
		v = s;
		while (s < e && *s != '"' && n < 64)
			s++, n++;
	}
	if (!n)
		v = "0", n = 1;

	return snprintf(out, outlen, "{\"code\":0,\"token\":\"native-%.*s\"}",
			n, v);
}

static int
callback(struct lws *wsi, enum lws_callback_reasons reason, void *user,
	 void *in, size_t len)
{
	struct pss *p = (struct pss *)user;

	switch (reason) {
	case LWS_CALLBACK_ESTABLISHED:
		return 0;
	case LWS_CALLBACK_RECEIVE:
		return ws_receive(wsi, p, in, len);
	case LWS_CALLBACK_SERVER_WRITEABLE:
		return ws_writeable(wsi, p);
	case LWS_CALLBACK_CLOSED:
	case LWS_CALLBACK_WSI_DESTROY:
		if (p)
			free_ws(p);
		return 0;

	case LWS_CALLBACK_HTTP:
		if (!strcmp((const char *)in, "/v1/api/createtoken") &&
		    lws_hdr_total_length(wsi, WSI_TOKEN_POST_URI) > 0) {
			p->createtoken = 1;
			return 0; /* the body follows */
		}
		if (lws_return_http_status(wsi, HTTP_STATUS_NOT_FOUND, NULL))
			return -1;
		return lws_http_transaction_completed(wsi) ? -1 : 0;
	case LWS_CALLBACK_HTTP_BODY:
		if (p && len) {
			size_t n = len;

			if (n > sizeof(p->body) - p->bodylen)
				n = sizeof(p->body) - p->bodylen;
			memcpy(p->body + p->bodylen, in, n);
			p->bodylen += n;
		}
		return 0;
	case LWS_CALLBACK_HTTP_BODY_COMPLETION: {
		char reply[128];

		if (!p || !p->createtoken)
			return -1;
		return http_respond_headers(wsi, 200, (size_t)format_reply(p,
						reply, sizeof(reply)));
	}
	case LWS_CALLBACK_HTTP_WRITEABLE: {
		unsigned char buf[LWS_PRE + 128];
		int m;

		if (!p || !p->createtoken || p->responded)
			return 0;
		m = format_reply(p, (char *)buf + LWS_PRE, sizeof(buf) - LWS_PRE);
		p->responded = 1;
		if (lws_write(wsi, buf + LWS_PRE, (size_t)m,
			      LWS_WRITE_HTTP_FINAL) != m)
			return -1;
		return lws_http_transaction_completed(wsi) ? -1 : 0;
	}
	default:
		break;
	}

	return lws_callback_http_dummy(wsi, reason, user, in, len);
}

#define MAX_CONTEXTS 64

/* serve runs one context's service loop; each context has its own thread. */
static void *
serve(void *ctx)
{
	while (lws_service(ctx, 0) >= 0)
		;
	return NULL;
}

int
main(int argc, char **argv)
{
	struct lws_context_creation_info info;
	struct lws_protocols protocols[3];
	struct lws_context *ctx[MAX_CONTEXTS];
	pthread_t th;
	const char *iface = "127.0.0.1";
	int port = 8090, rx = 0, tx = 0, serv = 0, n = 1, opt;

	while ((opt = getopt(argc, argv, "i:p:w:r:t:s:h")) != -1) {
		switch (opt) {
		case 'i': iface = optarg; break;
		case 'p': port = atoi(optarg); break;
		case 'w': n = atoi(optarg); break;
		case 'r': rx = atoi(optarg); break;
		case 't': tx = atoi(optarg); break;
		case 's': serv = atoi(optarg); break;
		default:
			fprintf(stderr, "usage: %s [-i iface] [-p port] "
				"[-w contexts] [-r rx_buffer_size] "
				"[-t tx_packet_size] [-s pt_serv_buf_size]\n",
				argv[0]);
			return opt == 'h' ? 0 : 2;
		}
	}
	if (n < 1 || n > MAX_CONTEXTS) {
		fprintf(stderr, "lwsecho: -w %d: want 1 to %d contexts\n", n,
			MAX_CONTEXTS);
		return 2;
	}

	lws_set_log_level(LLL_ERR | LLL_WARN, NULL);

	memset(protocols, 0, sizeof(protocols));
	protocols[0].name = "http";
	protocols[1].name = "lws-gate";
	for (opt = 0; opt < 2; opt++) {
		protocols[opt].callback = callback;
		protocols[opt].per_session_data_size = sizeof(struct pss);
		protocols[opt].rx_buffer_size = (size_t)rx;
		protocols[opt].tx_packet_size = (size_t)tx;
	}

	memset(&info, 0, sizeof(info));
	info.iface = iface;
	info.protocols = protocols;
	info.options = LWS_SERVER_OPTION_VALIDATE_UTF8;
	info.timeout_secs = 15;
	info.pt_serv_buf_size = (unsigned int)serv;
	info.count_threads = 1;

	for (opt = 0; opt < n; opt++) {
		info.port = port + opt;
		ctx[opt] = lws_create_context(&info);
		if (!ctx[opt]) {
			fprintf(stderr, "lwsecho: lws_create_context failed "
				"(port %d)\n", info.port);
			return 1;
		}
	}
	printf("listening on %s:%d\n", iface, port);
	fflush(stdout);

	for (opt = 1; opt < n; opt++)
		if (pthread_create(&th, NULL, serve, ctx[opt])) {
			fprintf(stderr, "lwsecho: pthread_create failed\n");
			return 1;
		}
	serve(ctx[0]);

	lws_context_destroy(ctx[0]);
	return 0;
}
