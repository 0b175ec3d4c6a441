/*
 * offer.c: the Sec-WebSocket-Extensions offer libwebsockets is shown. See
 * shim.c for the design of the C layer and the list of its files.
 *
 * lws parses a client's extension offers with a parser no offer list
 * should meet, so the binding chooses the one offer lws sees and writes it
 * over the header in lws' own header buffer (lwsgo_ws_set_offer). No
 * public API finds that buffer: the allocator (rxpool.c) tells this file
 * the address and size of each buffer lws parses a request's headers into
 * (_lws_create_ah: lws_malloc(data_size, "ah data")) and of each it frees,
 * so that the change is made within the buffer's bounds. They are kept in
 * a hash table, which the allocator looks up on every free of a buffer
 * that is not a receive slot while any header buffer is live.
 *
 * The same way, the binding writes the subprotocol it chose over a
 * Sec-WebSocket-Protocol list lws cannot read (lwsgo_ws_set_protocol):
 * that also needs the header's recorded length changed, in the struct
 * that indexes the buffer (lws_zalloc(sizeof(*ah), "ah struct")), which
 * the allocator records too.
 */
#include "internal.h"

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static char *lwsgo_ah_data_find(const char *p, size_t *size);
static char *lwsgo_ah_struct_find(const char *data, size_t *size);

/*
 * lwsgo_ah_fragment finds where lws stores the first fragment of header tok,
 * flen bytes and a NUL, in its header buffer base (size bytes): the first
 * place those bytes and a NUL are. frag is the caller's buffer of flen + 1
 * bytes, for the fragment's copy. NULL when not found.
 */
static char *
lwsgo_ah_fragment(struct lws *w, enum lws_token_indexes tok, int flen,
		  char *base, size_t size, char *frag)
{
	size_t i;

	if (lws_hdr_copy_fragment(w, frag, flen + 1, tok, 0) != flen)
		return NULL;
	for (i = 0; i + (size_t)flen < size; i++)
		if (!base[i + (size_t)flen] &&
		    !memcmp(base + i, frag, (size_t)flen))
			return base + i;
	return NULL;
}

/*
 * lwsgo_ws_set_offer replaces the Sec-WebSocket-Extensions header of an
 * upgrade request, as libwebsockets parsed it, with offer: the one offer
 * the binding chose from the client's list, or "" for none. Called from
 * HTTP_CONFIRM_UPGRADE, before lws reads the header itself in
 * lws_extension_server_handshake (lib/roles/ws/server-ws.c, the same lines
 * in v4.1.6 and v4.3.5), a parser no client's offer list should meet:
 *
 *   - once it has looked at 255 bytes of the header (line 81: "if (c >=
 *     (char *)pt->serv_buf + 255) return -1;") it fails the handshake: the
 *     connection closes without an answer, compression on or off. A client
 *     offering Autobahn 13.7's three configurations cannot connect at all;
 *   - it copies the header (line 56) to the start of the buffer in which
 *     the 101 is being written, 400 bytes on (line 685): a header of 400
 *     bytes or more overwrites the answer (with NULs: lws_hdr_copy uses
 *     strncpy) if the parser gets as far as writing it;
 *   - after an offer it accepts, it fails the handshake at a second offer
 *     of the same extension (line 130, "ext mentioned twice"), unless the
 *     first had parameters; and it takes a tab for a separator.
 *
 * No public lws API changes a parsed header (lws_hdr_simple_create is
 * private), so the change is made in lws' header buffer itself, within the
 * bounds the allocator recorded for it (below), found from the request
 * URI, the first value lws stores there (lws_http_get_uri_and_method gives
 * its address). The header's first fragment, stored with a NUL after it,
 * is found by its bytes and overwritten with offer and a NUL. lws copies
 * the header's fragments into a C string (lws_hdr_copy): that string is
 * now offer. The change is checked by reading the header back, and undone
 * if it did not take. lws still copies the header's full length, so one of
 * more than LWSGO_EXTENSIONS_MAX bytes is left alone (the 101 would come
 * out overwritten). Returns the header's length as lws counts it (0: no
 * header), negated when the header was not changed (too long, the buffer
 * unknown, offer longer than the first fragment).
 */
int
lwsgo_ws_set_offer(uintptr_t wsi, const char *offer)
{
	char frag[LWSGO_EXTENSIONS_MAX + 1], back[LWSGO_EXTENSIONS_MAX + 1];
	char save[LWSGO_OFFER_MAX + 1], *uri = NULL, *base, *at;
	int flen, total, olen = (int)strlen(offer), ulen;
	struct lws *w = (struct lws *)wsi;
	size_t size = 0;

	total = lws_hdr_total_length(w, WSI_TOKEN_EXTENSIONS);
	if (!total)
		return 0;
	flen = lws_hdr_fragment_length(w, WSI_TOKEN_EXTENSIONS, 0);
	if (total > LWSGO_EXTENSIONS_MAX || olen > LWSGO_OFFER_MAX ||
	    flen < olen || lws_http_get_uri_and_method(w, &uri, &ulen) < 0)
		return -total;
	base = lwsgo_ah_data_find(uri, &size);
	if (!base || (size_t)flen >= size)
		return -total;
	at = lwsgo_ah_fragment(w, WSI_TOKEN_EXTENSIONS, flen, base, size, frag);
	if (!at)
		return -total;
	memcpy(save, at, (size_t)olen + 1);
	memcpy(at, offer, (size_t)olen + 1);
	if (lws_hdr_copy(w, back, total + 1, WSI_TOKEN_EXTENSIONS) < 0 ||
	    strcmp(back, offer)) {
		/* another value with the same bytes came first */
		memcpy(at, save, (size_t)olen + 1);
		return -total;
	}

	return total;
}

/*
 * lwsgo_ws_set_protocol replaces the Sec-WebSocket-Protocol header of an
 * upgrade request, as libwebsockets parsed it, with name: the subprotocol
 * the binding chose from the client's list. Called from
 * HTTP_CONFIRM_UPGRADE, before lws_process_ws_upgrade
 * (lib/roles/ws/server-ws.c, the same lines in v4.1.6, v4.3.5 and main)
 * copies the header into a buffer of 128 bytes and fails the handshake,
 * without an answer, when it is longer ("protocol list too long"), or when
 * a name before the one it binds is 64 bytes or more ("pcol name too
 * long"). A browser, which cannot set Authorization on a WebSocket,
 * carries a token there (["chat", "bearer.TOKEN"]): hundreds of bytes.
 *
 * Overwriting the header's bytes, as lwsgo_ws_set_offer does, is not
 * enough: lws_hdr_copy refuses by the length lws recorded for the header,
 * in its fragment record (struct lws_fragments { ah_data_idx_t offset;
 * uint16_t len; ... }, ah_data_idx_t a uint32_t but on FreeRTOS) in the
 * header struct (struct allocated_headers, private). So the struct that
 * indexes the header buffer is found among those the allocator recorded
 * (lwsgo_ah_struct_find), the fragment's bytes in the buffer
 * (lwsgo_ah_fragment), and in the struct the 4-byte-aligned record of
 * that offset and length; name and a NUL are written over the bytes and
 * name's length over the record's, and the header read back through lws'
 * API (lws_hdr_total_length, lws_hdr_copy): a record that was not the
 * header's is put back at once, and the bytes too when none was. Only a
 * header of one line is replaced (browsers send one). Returns the
 * header's length as lws counts it (0: no header), negated when it was not
 * replaced.
 */
int
lwsgo_ws_set_protocol(uintptr_t wsi, const char *name)
{
	char save[LWSGO_PROTOCOL_NAME_MAX + 1], back[LWSGO_PROTOCOL_NAME_MAX + 1];
	char *uri = NULL, *base, *ah, *at, *frag;
	int flen, total, nlen = (int)strlen(name), ulen;
	struct lws *w = (struct lws *)wsi;
	size_t size = 0, ahsize = 0, o;
	uint16_t was, now = (uint16_t)nlen, rl;
	uint32_t off, ro;

	total = lws_hdr_total_length(w, WSI_TOKEN_PROTOCOL);
	if (!total)
		return 0;
	flen = lws_hdr_fragment_length(w, WSI_TOKEN_PROTOCOL, 0);
	if (flen != total || flen > 0xffff || !nlen ||
	    nlen > LWSGO_PROTOCOL_NAME_MAX || nlen > flen ||
	    lws_http_get_uri_and_method(w, &uri, &ulen) < 0)
		return -total;
	base = lwsgo_ah_data_find(uri, &size);
	if (!base || (size_t)flen >= size)
		return -total;
	ah = lwsgo_ah_struct_find(base, &ahsize);
	frag = malloc((size_t)flen + 1);
	if (!ah || !frag) {
		free(frag);
		return -total;
	}
	at = lwsgo_ah_fragment(w, WSI_TOKEN_PROTOCOL, flen, base, size, frag);
	free(frag);
	if (!at)
		return -total;
	off = (uint32_t)(at - base);
	was = (uint16_t)flen;
	memcpy(save, at, (size_t)nlen + 1);
	memcpy(at, name, (size_t)nlen + 1);
	for (o = 0; o + 6 <= ahsize; o += 4) {
		memcpy(&ro, ah + o, 4);
		memcpy(&rl, ah + o + 4, 2);
		if (ro != off || rl != was)
			continue;
		memcpy(ah + o + 4, &now, 2);
		if (lws_hdr_total_length(w, WSI_TOKEN_PROTOCOL) == nlen &&
		    lws_hdr_copy(w, back, sizeof(back), WSI_TOKEN_PROTOCOL) ==
			    nlen &&
		    !strcmp(back, name))
			return total;
		memcpy(ah + o + 4, &was, 2); /* not the header's record */
	}
	memcpy(at, save, (size_t)nlen + 1);
	return -total;
}

/* The live header buffers and structs: open addressing, linear probing,
 * removal by backward shift; key 0 is an empty slot (ahd_mu). A struct's
 * size has LWSGO_AH_STRUCT set. */
static pthread_mutex_t ahd_mu = PTHREAD_MUTEX_INITIALIZER;
static uintptr_t *ahd_key;
static size_t *ahd_size;
static size_t ahd_cap; /* a power of two, or 0 */
static size_t ahd_n;   /* also read without ahd_mu, as a hint */

static size_t
ahd_home(uintptr_t k)
{
	return (size_t)((uint64_t)(k >> 4) * 0x9e3779b97f4a7c15ull) &
	       (ahd_cap - 1);
}

/* ahd_find returns k's slot, or that of the empty slot where it would go. */
static size_t
ahd_find(uintptr_t k)
{
	size_t i = ahd_home(k);

	while (ahd_key[i] && ahd_key[i] != k)
		i = (i + 1) & (ahd_cap - 1);
	return i;
}

void
lwsgo_ah_data_record(void *p, size_t size)
{
	size_t i;

	pthread_mutex_lock(&ahd_mu);
	if (2 * (ahd_n + 1) > ahd_cap) {
		size_t oc = ahd_cap, nc = oc ? 2 * oc : 64;
		uintptr_t *ok = ahd_key, *nk = calloc(nc, sizeof(*nk));
		size_t *os = ahd_size, *ns = calloc(nc, sizeof(*ns));

		if (!nk || !ns) {
			/* Not recorded: lwsgo_ws_set_offer will not find it. */
			free(nk);
			free(ns);
			pthread_mutex_unlock(&ahd_mu);
			return;
		}
		ahd_key = nk;
		ahd_size = ns;
		ahd_cap = nc;
		for (i = 0; i < oc; i++)
			if (ok[i]) {
				size_t j = ahd_find(ok[i]);

				ahd_key[j] = ok[i];
				ahd_size[j] = os[i];
			}
		free(ok);
		free(os);
	}
	i = ahd_find((uintptr_t)p);
	ahd_key[i] = (uintptr_t)p;
	ahd_size[i] = size;
	__atomic_store_n(&ahd_n, ahd_n + 1, __ATOMIC_RELAXED);
	pthread_mutex_unlock(&ahd_mu);
}

/* lwsgo_ah_data_forget forgets p; it returns p's size, 0 if p was no
 * header buffer. */
size_t
lwsgo_ah_data_forget(void *p)
{
	size_t i, j, h, n;

	if (!__atomic_load_n(&ahd_n, __ATOMIC_RELAXED))
		return 0;
	pthread_mutex_lock(&ahd_mu);
	i = ahd_find((uintptr_t)p);
	if (!ahd_key[i]) {
		pthread_mutex_unlock(&ahd_mu);
		return 0;
	}
	n = ahd_size[i];
	/* Shift back the entries the removed one's slot displaced. */
	for (j = (i + 1) & (ahd_cap - 1); ahd_key[j];
	     j = (j + 1) & (ahd_cap - 1)) {
		h = ahd_home(ahd_key[j]);
		if ((j > i && (h <= i || h > j)) ||
		    (j < i && h <= i && h > j)) {
			ahd_key[i] = ahd_key[j];
			ahd_size[i] = ahd_size[j];
			i = j;
		}
	}
	ahd_key[i] = 0;
	__atomic_store_n(&ahd_n, ahd_n - 1, __ATOMIC_RELAXED);
	pthread_mutex_unlock(&ahd_mu);
	return n;
}

/*
 * lwsgo_ah_data_find finds the header buffer that holds p, a value lws
 * stored near its start (the request URI, 9 bytes in): it tries the
 * addresses malloc may have returned (16-byte aligned) up to
 * LWSGO_AH_NEAR bytes before p. It returns the buffer and sets *size, or
 * returns NULL.
 */
#define LWSGO_AH_NEAR 256

static char *
lwsgo_ah_data_find(const char *p, size_t *size)
{
	uintptr_t a = (uintptr_t)p & ~(uintptr_t)15, k;
	size_t i;
	char *base = NULL;

	if (!p || !__atomic_load_n(&ahd_n, __ATOMIC_RELAXED))
		return NULL;
	pthread_mutex_lock(&ahd_mu);
	for (k = 0; k <= LWSGO_AH_NEAR && k <= a; k += 16) {
		i = ahd_find(a - k);
		if (ahd_key[i] && !(ahd_size[i] & LWSGO_AH_STRUCT) &&
		    (uintptr_t)p < ahd_key[i] + ahd_size[i]) {
			base = (char *)ahd_key[i];
			*size = ahd_size[i];
			break;
		}
	}
	pthread_mutex_unlock(&ahd_mu);
	return base;
}

/*
 * lwsgo_ah_struct_find finds the header struct that indexes the header
 * buffer data: one whose first LWSGO_AH_STRUCT_HEAD bytes hold data's
 * address, pointer-aligned (the struct's third pointer in v4.1.6 and
 * v4.3.5, after next and wsi; its fifth on main, after an lws_dll2). It
 * returns the struct and sets *size, or returns NULL. It looks at every
 * slot of the table: for the rare upgrade whose protocol list lws cannot
 * take, not per request.
 */
#define LWSGO_AH_STRUCT_HEAD 64

static char *
lwsgo_ah_struct_find(const char *data, size_t *size)
{
	char *found = NULL;
	size_t i, o, n;

	if (!data || !__atomic_load_n(&ahd_n, __ATOMIC_RELAXED))
		return NULL;
	pthread_mutex_lock(&ahd_mu);
	for (i = 0; !found && i < ahd_cap; i++) {
		if (!ahd_key[i] || !(ahd_size[i] & LWSGO_AH_STRUCT))
			continue;
		n = ahd_size[i] & ~LWSGO_AH_STRUCT;
		for (o = 0; o + sizeof(data) <= n && o < LWSGO_AH_STRUCT_HEAD;
		     o += sizeof(data)) {
			const char *v;

			memcpy(&v, (const char *)ahd_key[i] + o, sizeof(v));
			if (v == data) {
				found = (char *)ahd_key[i];
				*size = n;
				break;
			}
		}
	}
	pthread_mutex_unlock(&ahd_mu);
	return found;
}

/* the header buffers and structs recorded */
size_t
lwsgo_ah_data_live(void)
{
	return __atomic_load_n(&ahd_n, __ATOMIC_RELAXED);
}
