/*
 * headers.c: HTTP headers between libwebsockets and Go, both ways. See
 * shim.c for the design of the C layer and the list of its files.
 *
 * Go reads what lws parsed (a server's request, a client's response) as
 * one buffer of NUL-terminated strings, filled here in one call
 * (lwsgo_http_info, lwsgo_client_response): a buffer too small is not
 * written past; the call returns the size it needs, negated, and Go calls
 * again with a larger one. Header names come in Go's canonical form
 * ("Content-Type"), from a table of the tokens that are headers made once
 * (lwsgo_hnames), so that Go keeps them as they are. Go writes headers (a response, a refusal, a
 * client's request) as "name\0value\0" pairs, names without the colon,
 * which lwsgo_add_headers appends to what lws is building.
 */
#include "internal.h"

#include <pthread.h>
#include <string.h>
#include <strings.h>

/*
 * lwsgo_add_headers appends hdrslen bytes of Go's "name\0value\0" pairs at
 * hdrs to the headers being built at *p, up to end, with
 * lws_add_http_header_by_name. Returns 0, or -1 when a name is empty or
 * longer than 254 bytes, or the pairs do not fit.
 */
int
lwsgo_add_headers(struct lws *w, const char *hdrs, int hdrslen,
		  unsigned char **p, unsigned char *end)
{
	char name[256];

	while (hdrs && hdrslen > 0) {
		int nl = (int)strlen(hdrs), vl;
		const char *v = hdrs + nl + 1;

		vl = (int)strlen(v);
		if (nl == 0 || nl + 2 > (int)sizeof(name))
			return -1;
		/* lws copies the name verbatim: it must end in ':' */
		memcpy(name, hdrs, (size_t)nl);
		name[nl] = ':';
		name[nl + 1] = '\0';
		if (lws_add_http_header_by_name(w, (unsigned char *)name,
						(const unsigned char *)v, vl,
						p, end))
			return -1;
		hdrs = v + vl + 1;
		hdrslen -= nl + vl + 2;
	}

	return 0;
}

/* The buffer Go reads headers from: len bytes at buf, used of them
 * filled, or needed when used > len. */
struct lwsgo_sink {
	char *buf;
	int len, used;
};

/* lwsgo_take reserves n bytes and a NUL in s: it returns where they go, or
 * NULL when they do not fit (s still counts them, to say what it needs). */
static char *
lwsgo_take(struct lwsgo_sink *s, int n)
{
	char *at = s->used + n + 1 <= s->len ? s->buf + s->used : NULL;

	s->used += n + 1;
	return at;
}

static void
lwsgo_put(struct lwsgo_sink *s, const char *p, int n)
{
	char *at = lwsgo_take(s, n);

	if (at) {
		memcpy(at, p, (size_t)n);
		at[n] = '\0';
	}
}

/* lwsgo_put_hdr copies header tok, total bytes long, with its fragments
 * joined as lws_hdr_copy joins them. */
static void
lwsgo_put_hdr(struct lwsgo_sink *s, struct lws *w, int tok, int total)
{
	char *at = lwsgo_take(s, total);

	if (at && lws_hdr_copy(w, at, total + 1,
			       (enum lws_token_indexes)tok) < 0)
		*at = '\0';
}

/*
 * lwsgo_canon puts the n bytes of name in Go's canonical form
 * (http.CanonicalHeaderKey for a token): upper case at the start and after
 * each '-', lower case elsewhere.
 */
static void
lwsgo_canon(char *name, int n)
{
	int i, up = 1;

	for (i = 0; i < n; i++) {
		char ch = name[i];

		if (up && ch >= 'a' && ch <= 'z')
			ch = (char)(ch - 'a' + 'A');
		else if (!up && ch >= 'A' && ch <= 'Z')
			ch = (char)(ch - 'A' + 'a');
		name[i] = ch;
		up = ch == '-';
	}
}

/*
 * lwsgo_hnames: the tokens lws parses that are request or response
 * headers, with their names in canonical form and without the colon. lws
 * numbers its tokens differently from one release to the next, so the
 * table is made from lws_token_to_string once, when first needed, rather
 * than written here. Methods ("get "), the version ("http/1.1 "), pseudo
 * headers (":path:") and the query (URI_ARGS) are not headers.
 */
struct lwsgo_hname {
	int tok, len;
	char name[48];
};

static struct lwsgo_hname lwsgo_hnames[WSI_TOKEN_COUNT];
static int lwsgo_nhnames;
static pthread_once_t lwsgo_hnames_once = PTHREAD_ONCE_INIT;

static void
lwsgo_hnames_init(void)
{
	int tok, nl;

	for (tok = 0; tok < WSI_TOKEN_COUNT; tok++) {
		const unsigned char *t;
		struct lwsgo_hname *hn;

		if (tok == WSI_TOKEN_HTTP_URI_ARGS)
			continue;
		t = lws_token_to_string((enum lws_token_indexes)tok);
		if (!t)
			continue;
		nl = (int)strlen((const char *)t);
		if (nl < 2 || t[nl - 1] != ':' || t[0] == ':' ||
		    nl > (int)sizeof(hn->name))
			continue;
		hn = &lwsgo_hnames[lwsgo_nhnames++];
		hn->tok = tok;
		hn->len = nl - 1;
		memcpy(hn->name, t, (size_t)hn->len);
		lwsgo_canon(hn->name, hn->len);
	}
}

/* lwsgo_put_lines puts tok, named t (nl bytes without the colon), as one
 * pair per line: lws_hdr_copy would join repeated headers with ',', which
 * breaks Set-Cookie. */
static void
lwsgo_put_lines(struct lwsgo_sink *s, struct lws *w, int tok,
		const char *t, int nl)
{
	int f, fl;
	char *at;

	for (f = 0; ; f++) {
		fl = lws_hdr_fragment_length(w, (enum lws_token_indexes)tok, f);
		if (fl <= 0 && f)
			break;
		lwsgo_put(s, t, nl);
		at = lwsgo_take(s, fl);
		if (at && lws_hdr_copy_fragment(w, at, fl + 1,
				(enum lws_token_indexes)tok, f) < 0)
			*at = '\0';
		if (fl <= 0)
			break;
	}
}

/* lwsgo_put_custom puts the headers lws does not know that Go asked for:
 * custom holds their names ("x-a:\0x-b:\0", lower case with the colon),
 * for libwebsockets releases that cannot enumerate them. They go to Go in
 * canonical form, as the others. */
static void
lwsgo_put_custom(struct lwsgo_sink *s, struct lws *w, const char *custom,
		 int customlen)
{
#if defined(LWS_WITH_CUSTOM_HEADERS)
	while (custom && customlen > 0) {
		int cl = (int)strlen(custom), n;
		char *at;

		n = lws_hdr_custom_length(w, custom, cl);
		if (n >= 0) {
			at = lwsgo_take(s, cl - 1);
			if (at) {
				memcpy(at, custom, (size_t)(cl - 1));
				at[cl - 1] = '\0';
				lwsgo_canon(at, cl - 1);
			}
			at = lwsgo_take(s, n);
			if (at && lws_hdr_custom_copy(w, at, n + 1, custom,
						      cl) < 0)
				*at = '\0';
		}
		custom += cl + 1;
		customlen -= cl + 1;
	}
#else
	(void)s;
	(void)w;
	(void)custom;
	(void)customlen;
#endif
}

/* every header present, as name, value pairs, then the custom ones */
static void
lwsgo_put_headers(struct lwsgo_sink *s, struct lws *w, const char *custom,
		  int customlen)
{
	int i, n;

	pthread_once(&lwsgo_hnames_once, lwsgo_hnames_init);
	for (i = 0; i < lwsgo_nhnames; i++) {
		const struct lwsgo_hname *hn = &lwsgo_hnames[i];

		n = lws_hdr_total_length(w, (enum lws_token_indexes)hn->tok);
		if (n <= 0)
			continue;
		if (hn->tok == WSI_TOKEN_HTTP_COOKIE) {
			/* lws joins repeated Cookie headers itself */
			lwsgo_put(s, hn->name, hn->len);
			lwsgo_put_hdr(s, w, hn->tok, n);
			continue;
		}
		lwsgo_put_lines(s, w, hn->tok, hn->name, hn->len);
	}
	lwsgo_put_custom(s, w, custom, customlen);
}

static const char *
lwsgo_method_name(int m)
{
	switch (m) {
	case LWSHUMETH_GET: return "GET";
	case LWSHUMETH_POST: return "POST";
	case LWSHUMETH_OPTIONS: return "OPTIONS";
	case LWSHUMETH_PUT: return "PUT";
	case LWSHUMETH_PATCH: return "PATCH";
	case LWSHUMETH_DELETE: return "DELETE";
	case LWSHUMETH_CONNECT: return "CONNECT";
	case LWSHUMETH_HEAD: return "HEAD";
	default: return "";
	}
}

/* lwsgo_put_query puts the query: the decoded URI_ARGS fragments joined by
 * '&'. */
static void
lwsgo_put_query(struct lwsgo_sink *s, struct lws *w)
{
	int start = s->used, qlen = 0, n, f, first = 1;
	char frag[1024];

	for (f = 0; ; f++) {
		n = lws_hdr_copy_fragment(w, frag, sizeof(frag),
					  WSI_TOKEN_HTTP_URI_ARGS, f);
		if (n < 0)
			break;
		if (s->used + qlen + n + 2 <= s->len) {
			if (!first)
				s->buf[start + qlen] = '&';
			memcpy(s->buf + start + qlen + !first, frag,
			       (size_t)n);
		}
		qlen += n + !first;
		first = 0;
	}
	if (s->used + qlen + 1 <= s->len)
		s->buf[start + qlen] = '\0';
	s->used += qlen + 1;
}

/*
 * lwsgo_http_info fills buf with the request of an HTTP wsi as a sequence
 * of NUL-terminated strings: method, path, query, version ("HTTP/1.1"),
 * then name/value pairs of every header present (one pair per header
 * line), names canonical ("Content-Type") without the colon. custom lists
 * extra header names ("x-a:\0x-b:\0", lower case with colon) to look up
 * as custom headers, for libwebsockets releases that cannot enumerate
 * them.
 * Returns the bytes used, or -(bytes needed) when buf is too small.
 */
int
lwsgo_http_info(uintptr_t wsi, char *buf, int len, const char *custom,
		int customlen)
{
	struct lws *w = (struct lws *)wsi;
	struct lwsgo_sink s = { buf, len, 0 };
	char *uri = NULL;
	const char *name;
	int m, ulen = 0, n;

	m = lws_http_get_uri_and_method(w, &uri, &ulen);
	name = lwsgo_method_name(m);
	lwsgo_put(&s, name, (int)strlen(name));
	lwsgo_put(&s, uri ? uri : "", uri ? ulen : 0);
	lwsgo_put_query(&s, w);

	/* the protocol version from the request line, e.g. "HTTP/1.1" */
	n = lws_hdr_total_length(w, WSI_TOKEN_HTTP);
	lwsgo_put_hdr(&s, w, WSI_TOKEN_HTTP, n > 0 ? n : 0);

	lwsgo_put_headers(&s, w, custom, customlen);

	return s.used <= s.len ? s.used : -s.used;
}

/*
 * lwsgo_client_response fills buf like lwsgo_http_info, for the response a
 * client link received: the status code in decimal, then the header pairs.
 */
int
lwsgo_client_response(uintptr_t wsi, char *buf, int len, const char *custom,
		      int customlen)
{
	struct lws *w = (struct lws *)wsi;
	struct lwsgo_sink s = { buf, len, 0 };
	char status[16];
	int n;

	n = lws_snprintf(status, sizeof(status), "%u",
			 lws_http_client_http_response(w));
	lwsgo_put(&s, status, n);
	lwsgo_put_headers(&s, w, custom, customlen);

	return s.used <= s.len ? s.used : -s.used;
}

/*
 * lwsgo_custom_header_count counts the lines of a header libwebsockets does
 * not know (name lower case with the colon, "forwarded:"), or returns -1
 * when it cannot tell: lws_hdr_custom_copy gives the first line only, and
 * only lws_hdr_custom_name_foreach (4.3.0 and later) sees the others, so
 * with 4.1 a repeated header goes unnoticed.
 */
#if LWSGO_COUNTS_CUSTOM_HEADERS
struct lwsgo_hcount {
	const char *name;
	int nlen, n;
};

static void
lwsgo_hcount_cb(const char *name, int nlen, void *opaque)
{
	struct lwsgo_hcount *hc = opaque;

	if (nlen == hc->nlen && !strncasecmp(name, hc->name, (size_t)nlen))
		hc->n++;
}
#endif

int
lwsgo_custom_header_count(uintptr_t wsi, const char *name, int nlen)
{
#if LWSGO_COUNTS_CUSTOM_HEADERS
	struct lwsgo_hcount hc = { name, nlen, 0 };

	if (lws_hdr_custom_name_foreach((struct lws *)wsi, lwsgo_hcount_cb,
					&hc))
		return -1;
	return hc.n;
#else
	(void)wsi;
	(void)name;
	(void)nlen;
	return -1;
#endif
}
