/*
 * epollecho - the raw epoll WebSocket echo of the benchmark harness: the
 * machine's limit, what one core can do with no library in the way.
 *
 * One thread, level-triggered epoll, non-blocking sockets. Reads go to one
 * shared buffer; a connection keeps only the bytes of an incomplete request
 * or frame, and the output the socket did not take. Everything that arrived
 * is parsed at once and everything it produces goes out with one write:
 *
 *  - HTTP/1.1: a GET with "Upgrade: websocket" is answered 101 (the
 *    Sec-WebSocket-Accept computed with libcrypto; "lws-gate" is accepted
 *    as a subprotocol); POST /v1/api/createtoken with a content-length body
 *    gets {"code":0,"token":"native-<RequestId>"} like every reference
 *    server, keep-alive; anything else 404.
 *  - WebSocket: each data frame is unmasked in place and echoed as the same
 *    frame (opcode and FIN kept, so a fragmented message comes back as the
 *    same fragments: the same message). PING gets a PONG; a CLOSE is echoed
 *    and the connection closed once the output is flushed. No UTF-8 check,
 *    no limit but 16 MiB frames: it is the limit, not a peer.
 *
 * Usage: epollecho [-i addr] [-p port]; prints "listening on ADDR:PORT".
 */

#define _GNU_SOURCE

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/evp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAX_FRAME (16u << 20)
#define READ_CHUNK (256u << 10)

/* every read lands here, behind what was left over from the last one */
static unsigned char g[MAX_FRAME + 14 + READ_CHUNK];

struct conn {
	int fd;
	int ws;       /* 1 after the upgrade */
	int closing;  /* close once out is flushed */
	int pollout;  /* EPOLLOUT registered */
	int echoed;   /* out has carried echoes: keep it allocated */
	unsigned char *in; /* left over: an incomplete request or frame */
	size_t inlen, incap;
	unsigned char *out;
	size_t outoff, outlen, outcap;
};

static int ep;

static int
reserve(unsigned char **b, size_t *cap, size_t need)
{
	size_t c = *cap ? *cap : 4096;
	unsigned char *nb;

	if (need <= *cap)
		return 0;
	while (c < need)
		c *= 2;
	nb = realloc(*b, c);
	if (!nb)
		return -1;
	*b = nb;
	*cap = c;
	return 0;
}

static int
out_put(struct conn *c, const void *p, size_t n)
{
	if (c->outoff && c->outoff == c->outlen)
		c->outoff = c->outlen = 0;
	if (reserve(&c->out, &c->outcap, c->outlen + n))
		return -1;
	memcpy(c->out + c->outlen, p, n);
	c->outlen += n;
	return 0;
}

static void
conn_free(struct conn *c)
{
	close(c->fd);
	free(c->in);
	free(c->out);
	free(c);
}

/* find a header's value in the request head [p, e); 0 if absent */
static size_t
header(const char *p, const char *e, const char *name, const char **val)
{
	size_t nl = strlen(name);

	for (;;) {
		const char *eol = memmem(p, (size_t)(e - p), "\r\n", 2);

		if (!eol)
			return 0;
		if ((size_t)(eol - p) > nl && p[nl] == ':' &&
		    !strncasecmp(p, name, nl)) {
			const char *v = p + nl + 1, *ve = eol;

			while (v < ve && (*v == ' ' || *v == '\t'))
				v++;
			while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t'))
				ve--;
			*val = v;
			return (size_t)(ve - v);
		}
		p = eol + 2;
	}
}

static int
http_reply(struct conn *c, const char *status, const char *type,
	   const char *body, size_t blen)
{
	char h[256];
	int n = snprintf(h, sizeof(h),
			 "HTTP/1.1 %s\r\ncontent-type: %s\r\n"
			 "content-length: %zu\r\n\r\n", status, type, blen);

	if (out_put(c, h, (size_t)n))
		return -1;
	return out_put(c, body, blen);
}

static int
upgrade(struct conn *c, const char *head, const char *he)
{
	static const char guid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
	unsigned char md[EVP_MAX_MD_SIZE], acc[64];
	const char *key, *proto;
	char buf[256], resp[512];
	size_t kl = header(head, he, "Sec-WebSocket-Key", &key);
	size_t pl = header(head, he, "Sec-WebSocket-Protocol", &proto);
	unsigned int mdlen;
	int n;

	if (!kl || kl > 64)
		return -1;
	memcpy(buf, key, kl);
	memcpy(buf + kl, guid, sizeof(guid) - 1);
	if (!EVP_Digest(buf, kl + sizeof(guid) - 1, md, &mdlen, EVP_sha1(),
			NULL))
		return -1;
	EVP_EncodeBlock(acc, md, (int)mdlen);
	n = snprintf(resp, sizeof(resp),
		     "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
		     "Connection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n%s\r\n",
		     acc, pl && memmem(proto, pl, "lws-gate", 8) ?
			     "Sec-WebSocket-Protocol: lws-gate\r\n" : "");
	c->ws = 1;
	return out_put(c, resp, (size_t)n);
}

static int
createtoken(struct conn *c, const char *body, size_t blen)
{
	const char *s = memmem(body, blen, "\"RequestId\"", 11), *e = body + blen;
	const char *v = "0";
	char reply[128];
	int n = 0, m;

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
	m = snprintf(reply, sizeof(reply),
		     "{\"code\":0,\"token\":\"native-%.*s\"}", n, v);
	return http_reply(c, "200 OK", "application/json", reply, (size_t)m);
}

/* consume complete HTTP requests; returns bytes used, -1 on error */
static long
parse_http(struct conn *c, const unsigned char *buf, size_t blen)
{
	const char *p = (const char *)buf, *e = p + blen, *he, *v;
	size_t used = 0, clen = 0, n;

	while (!c->ws) {
		he = memmem(p, (size_t)(e - p), "\r\n\r\n", 4);
		if (!he)
			break;
		he += 2; /* header lines end at he */
		n = header(p, he, "Content-Length", &v);
		clen = n ? strtoul(v, NULL, 10) : 0;
		if ((size_t)(e - (he + 2)) < clen)
			break; /* body incomplete */
		if (!strncmp(p, "GET ", 4) &&
		    header(p, he, "Upgrade", &v) == 9 &&
		    !strncasecmp(v, "websocket", 9)) {
			if (upgrade(c, p, he))
				return -1;
		} else if (!strncmp(p, "POST /v1/api/createtoken ", 25)) {
			if (createtoken(c, he + 2, clen))
				return -1;
		} else if (http_reply(c, "404 Not Found", "text/plain",
				      "not found\n", 10))
			return -1;
		used += (size_t)(he + 2 + clen - p);
		p = he + 2 + clen;
	}
	return (long)used;
}

/* echo complete frames; returns bytes used, -1 on error */
static long
parse_ws(struct conn *c, unsigned char *buf, size_t blen)
{
	unsigned char *p = buf, *e = buf + blen, hdr[10];
	size_t used = 0;

	while (e - p >= 2 && !c->closing) {
		unsigned char op = p[0] & 0x0f, *pl;
		size_t hl = 2, len = p[1] & 0x7f, i, h;

		if (!(p[1] & 0x80))
			return -1; /* clients must mask */
		if (len == 126) {
			if (e - p < 4)
				break;
			len = (size_t)p[2] << 8 | p[3];
			hl = 4;
		} else if (len == 127) {
			if (e - p < 10)
				break;
			for (len = 0, i = 2; i < 10; i++)
				len = len << 8 | p[i];
			hl = 10;
			if (len > MAX_FRAME)
				return -1;
		}
		if ((size_t)(e - p) < hl + 4 + len)
			break;
		pl = p + hl + 4;
		for (i = 0; i < len; i++)
			pl[i] ^= p[hl + (i & 3)];

		if (op == 0x9)
			op = 0xA; /* pong our answer to a ping */
		else if (op == 0xA) {
			p += hl + 4 + len;
			used += hl + 4 + len;
			continue;
		}
		h = 0;
		hdr[h++] = (unsigned char)((p[0] & 0xf0) | op);
		if (len < 126)
			hdr[h++] = (unsigned char)len;
		else if (len < 65536) {
			hdr[h++] = 126;
			hdr[h++] = (unsigned char)(len >> 8);
			hdr[h++] = (unsigned char)len;
		} else {
			hdr[h++] = 127;
			for (i = 0; i < 8; i++)
				hdr[h++] = (unsigned char)(len >> (56 - 8 * i));
		}
		if (out_put(c, hdr, h) || out_put(c, pl, len))
			return -1;
		if (op == 0x8)
			c->closing = 1;
		c->echoed = 1;
		p += hl + 4 + len;
		used += hl + 4 + len;
	}
	return (long)used;
}

static void
set_pollout(struct conn *c, int on)
{
	struct epoll_event ev = { .events = EPOLLIN | (on ? EPOLLOUT : 0),
				  .data.ptr = c };

	if (c->pollout != on) {
		epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
		c->pollout = on;
	}
}

/* write what is pending; -1: the connection is done */
static int
flush(struct conn *c)
{
	while (c->outoff < c->outlen) {
		ssize_t n = write(c->fd, c->out + c->outoff,
				  c->outlen - c->outoff);

		if (n < 0 && errno == EAGAIN) {
			set_pollout(c, 1);
			return 0;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		c->outoff += (size_t)n;
	}
	c->outoff = c->outlen = 0;
	if (!c->echoed || c->outcap > (1u << 20)) {
		/* an idle link keeps no buffers */
		free(c->out);
		c->out = NULL;
		c->outcap = 0;
	}
	set_pollout(c, 0);
	if (c->closing) {
		shutdown(c->fd, SHUT_WR); /* the server closes first */
		return -1;
	}
	return 0;
}

static int
on_readable(struct conn *c)
{
	for (;;) {
		size_t have = c->inlen, len;
		ssize_t n;
		long used = 0;

		memcpy(g, c->in, have);
		n = read(c->fd, g + have, READ_CHUNK);
		if (n < 0 && errno == EAGAIN)
			break;
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		len = have + (size_t)n;

		if (!c->ws) {
			used = parse_http(c, g, len);
			if (used < 0)
				return -1;
		}
		if (c->ws) {
			long w = parse_ws(c, g + used, len - (size_t)used);

			if (w < 0)
				return -1;
			used += w;
		}
		c->inlen = len - (size_t)used;
		if (c->inlen > MAX_FRAME + 14)
			return -1;
		if (c->inlen) {
			if (reserve(&c->in, &c->incap, c->inlen))
				return -1;
			memcpy(c->in, g + used, c->inlen);
		} else if (c->incap > 4096) {
			free(c->in); /* don't keep a big message's buffer */
			c->in = NULL;
			c->incap = 0;
		}
		if ((size_t)n < READ_CHUNK)
			break; /* the socket is drained */
	}
	return flush(c);
}

int
main(int argc, char **argv)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	const char *addr = "127.0.0.1";
	struct epoll_event evs[256], ev;
	int port = 8090, lfd, one = 1, opt;

	while ((opt = getopt(argc, argv, "i:p:h")) != -1) {
		switch (opt) {
		case 'i': addr = optarg; break;
		case 'p': port = atoi(optarg); break;
		default:
			fprintf(stderr, "usage: %s [-i addr] [-p port]\n",
				argv[0]);
			return opt == 'h' ? 0 : 2;
		}
	}
	signal(SIGPIPE, SIG_IGN);
	sa.sin_port = htons((uint16_t)port);
	if (inet_pton(AF_INET, addr, &sa.sin_addr) != 1) {
		fprintf(stderr, "epollecho: bad address %s\n", addr);
		return 2;
	}
	lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (lfd < 0 || bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) ||
	    listen(lfd, SOMAXCONN)) {
		perror("epollecho: listen");
		return 1;
	}
	ep = epoll_create1(0);
	ev.events = EPOLLIN;
	ev.data.ptr = NULL;
	epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev);
	printf("listening on %s:%d\n", addr, port);
	fflush(stdout);

	for (;;) {
		int n = epoll_wait(ep, evs, 256, -1), i;

		for (i = 0; i < n; i++) {
			struct conn *c = evs[i].data.ptr;

			if (!c) {
				int fd;

				while ((fd = accept4(lfd, NULL, NULL,
						     SOCK_NONBLOCK)) >= 0) {
					c = calloc(1, sizeof(*c));
					if (!c) {
						close(fd);
						continue;
					}
					c->fd = fd;
					setsockopt(fd, IPPROTO_TCP, TCP_NODELAY,
						   &one, sizeof(one));
					ev.events = EPOLLIN;
					ev.data.ptr = c;
					epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
				}
				continue;
			}
			if ((evs[i].events & (EPOLLERR | EPOLLHUP)) ||
			    ((evs[i].events & EPOLLOUT) && flush(c)) ||
			    ((evs[i].events & EPOLLIN) && on_readable(c)))
				conn_free(c);
		}
	}
}
