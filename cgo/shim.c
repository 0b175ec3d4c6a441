/*
 * shim.c: the C layer between libwebsockets and Go.
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
 *     not compressed; see permessage-deflate below);
 *   - for ESTABLISHED/CLIENT_ESTABLISHED: whether permessage-deflate is on;
 *   - for FILTER_NETWORK_CONNECTION: the peer's IP address as the data;
 *   - for EVENT_WAIT_CANCELLED: whether this is the first one since Go asked
 *     for a wake-up (lws broadcasts the reason to every protocol of every
 *     vhost; the atomic exchange makes exactly one of them drain Go's queue).
 *
 * Only three things are decided in C, because they must be: the wake
 * de-duplication above, the return value of reasons where a non-zero
 * return would break libwebsockets (EVENT_WAIT_CANCELLED closes the cancel
 * pipe on non-zero; GET_THREAD_ID must be 0 so that lws never tries to wake
 * a "foreign" thread itself), and whether HTTP_CONFIRM_UPGRADE's in may be
 * read at all (see there: CVE-2025-11677). All still reach Go for the
 * reason log.
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
 *
 * Threads
 * -------
 * Every function here runs on the service thread, the OS thread of the one
 * locked goroutine that created the context and calls lws_service, except
 * lwsgo_wake, which may be called from any thread (it only stores an atomic
 * and calls lws_cancel_service, the one lws API that is thread-safe), and
 * lwsgo_log_emit, which lws may call from wherever it logs.
 *
 * Return values
 * -------------
 * lwsgo_callback returns what Go returns: 0 continue, -1 close the wsi.
 * The write helpers return -1 on a fatal error (the caller must close),
 * 0 when the pipe can take more, 1 when it is choked (wait for WRITEABLE).
 */

#include "shim.h"
#include "_cgo_export.h"

#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#if !defined(LWS_WITHOUT_EXTENSIONS)
#include <zlib.h>
#endif

#if defined(LWS_WITH_TLS) && defined(LWS_OPENSSL_SUPPORT) && \
    !defined(LWS_WITH_MBEDTLS)
#include <openssl/x509.h>
#define LWSGO_OPENSSL 1
#endif

static int lwsgo_append_headers(struct lws *w, const lwsgo_client *cl,
				unsigned char **p, unsigned char *end);

/* lws' log lines go to Go; the levels are those lwsgo_log_init last set,
 * which Go does before it creates a context. */
static int lwsgo_log_levels;

static void
lwsgo_log_emit(int level, const char *line)
{
	goLwsLog(level, (char *)line);
}

/*
 * permessage-deflate (RFC 7692)
 * -----------------------------
 * A vhost made with compression gets lwsgo_extensions: libwebsockets' own
 * lws_extension_callback_pm_deflate behind a thin wrapper, lwsgo_pmd, which
 * changes nothing it compresses or inflates. It only
 *
 *   - marks the wsi's lwsgo_pss when the extension is instantiated, so that
 *     ESTABLISHED can tell Go (LWSGO_F_DEFLATE);
 *   - counts the compressed bytes each message brings (lwsgo_pss.rx_raw),
 *     which lwsgo_callback passes to Go with each RECEIVE: libwebsockets
 *     delivers inflated data only, so without it a peer could stream
 *     compressed bytes that inflate to nothing (empty deflate blocks) into
 *     one endless message that no size limit sees. Worse, a server's bulk
 *     payload path (lws_ws_frame_rest_is_payload) calls no RECEIVE at all
 *     for input that inflates to nothing, so once the count passes the
 *     limit Go set (lwsgo_set_rx_limit) the wrapper hands libwebsockets a
 *     one-byte placeholder output (lwsgo_pss.ph) to make it call RECEIVE:
 *     lwsgo_callback passes no data for it, and Go sees the count and
 *     closes the link with 1009;
 *   - on a server, swaps the two context-takeover options as the client's
 *     offer sets them: lws (4.1.6 to its main branch) resets the inflater
 *     after a message when server_no_context_takeover is agreed and the
 *     deflater when client_no_context_takeover is, in both roles. That is
 *     right for a client; a server must do the opposite (RFC 7692 section
 *     7.1.1);
 *   - keeps the compressed input zlib has not read yet in memory of the
 *     link's own (lwsgo_pss.keep, freed when zlib has read it or at
 *     WSI_DESTROY). lws inflates at most 1 KiB per pass and leaves the
 *     rest of the input to zlib for later passes of the service loop; on
 *     a server that input is where lws read it, the service thread's one
 *     read buffer (pt->serv_buf: lib/roles/ws/ops-ws.c, read into at
 *     "ebuf.token = pt->serv_buf", handed to the extension as is by
 *     lws_ws_frame_rest_is_payload in lib/roles/ws/server-ws.c, 4.1.6 to
 *     the main branch), which the next link's read overwrites before
 *     those passes. zlib then inflated another link's bytes: corrupt
 *     messages, or a zlib error and lws' assert(priv->rx.avail_out)
 *     aborting the process.
 *
 * The wrapper reads the private lws types below, whose layout has not
 * changed from 4.0 to the main branch (lib/roles/ws/private-lib-roles-ws.h,
 * lib/core-net/private-lib-core-net.h), and the inflater, the z_stream that
 * starts the extension's private struct lws_ext_pm_deflate_priv (the user
 * pointer of its callback; lib/roles/ws/ext/extension-permessage-deflate.h,
 * unchanged from 4.1 to the main branch).
 */
#if !defined(LWS_WITHOUT_EXTENSIONS)
struct lwsgo_pmd_ebufs {	/* struct lws_ext_pm_deflate_rx_ebufs */
	struct lws_tokens eb_in;
	struct lws_tokens eb_out;
};

enum {				/* enum pmd_return */
	LWSGO_PMDR_UNKNOWN,
	LWSGO_PMDR_DID_NOTHING,
	LWSGO_PMDR_HAS_PENDING,
	LWSGO_PMDR_EMPTY_NONFINAL,
	LWSGO_PMDR_EMPTY_FINAL,
	LWSGO_PMDR_NOTHING_WE_SHOULD_DO,
};

/* indices into lws_ext_pm_deflate_options */
#define LWSGO_PMD_SERVER_NO_CONTEXT_TAKEOVER 0
#define LWSGO_PMD_CLIENT_NO_CONTEXT_TAKEOVER 1

/*
 * lwsgo_pmd_keep makes the input zlib has left to read (next_in, avail_in)
 * a copy in ps->keep unless it is there already, and frees the copy once
 * zlib has read all of it. Returns -1 when out of memory.
 */
static int
lwsgo_pmd_keep(lwsgo_pss *ps, z_stream *z)
{
	lwsgo_keep *k = ps->keep;

	if (k && z->next_in >= k->b && z->next_in <= k->b + k->len) {
		if (!z->avail_in) {
			/* zlib reads no more of it: lws sets next_in anew
			 * before it gives zlib more input */
			free(k);
			ps->keep = NULL;
		}
		return 0;
	}
	free(k);
	ps->keep = NULL;
	if (!z->avail_in)
		return 0;
	k = malloc(sizeof(*k) + z->avail_in);
	if (!k)
		return -1;
	k->len = z->avail_in;
	memcpy(k->b, z->next_in, k->len);
	z->next_in = k->b;
	ps->keep = k;

	return 0;
}

static int
lwsgo_pmd(struct lws_context *cx, const struct lws_extension *ext,
	  struct lws *wsi, enum lws_extension_callback_reasons reason,
	  void *user, void *in, size_t len)
{
	lwsgo_pss *ps = wsi ? (lwsgo_pss *)lws_wsi_user(wsi) : NULL;
	struct lwsgo_pmd_ebufs *eb = in;
	struct lws_ext_option_arg oa;
	int n, fresh = 0;

	switch (reason) {
	case LWS_EXT_CB_CONSTRUCT:
	case LWS_EXT_CB_CLIENT_CONSTRUCT:
		if (!ps)
			/* nowhere to count: no compression on this link */
			return -1;
		n = lws_extension_callback_pm_deflate(cx, ext, wsi, reason,
						      user, in, len);
		if (!n)
			ps->pmd = 1;
		return n;
	case LWS_EXT_CB_OPTION_SET:
		if (!ps || ps->client || !in)
			break;
		oa = *(const struct lws_ext_option_arg *)in;
		if (oa.option_index == LWSGO_PMD_SERVER_NO_CONTEXT_TAKEOVER)
			oa.option_index = LWSGO_PMD_CLIENT_NO_CONTEXT_TAKEOVER;
		else if (oa.option_index == LWSGO_PMD_CLIENT_NO_CONTEXT_TAKEOVER)
			oa.option_index = LWSGO_PMD_SERVER_NO_CONTEXT_TAKEOVER;
		return lws_extension_callback_pm_deflate(cx, ext, wsi, reason,
							 user, &oa, len);
	case LWS_EXT_CB_PAYLOAD_RX:
		/* pm_deflate takes new input only when zlib has none left */
		if (ps && !ps->rx_avail && eb && eb->eb_in.token &&
		    eb->eb_in.len > 0)
			fresh = eb->eb_in.len;
		n = lws_extension_callback_pm_deflate(cx, ext, wsi, reason,
						      user, in, len);
		if (ps && user && n >= 0 &&
		    lwsgo_pmd_keep(ps, (z_stream *)user))
			return -1;
		if (ps && eb && (n == LWSGO_PMDR_HAS_PENDING ||
				 n == LWSGO_PMDR_EMPTY_NONFINAL ||
				 n == LWSGO_PMDR_EMPTY_FINAL)) {
			ps->rx_raw += (uint64_t)fresh;
			ps->rx_avail = eb->eb_in.len;
			if (ps->rx_limit && ps->rx_raw > ps->rx_limit &&
			    eb->eb_out.len <= 0) {
				/* lws writes a NUL after the output */
				ps->ph[0] = 'x';
				eb->eb_out.token = ps->ph;
				eb->eb_out.len = 1;
			}
		}
		return n;
	default:
		break;
	}

	return lws_extension_callback_pm_deflate(cx, ext, wsi, reason, user,
						 in, len);
}

static const struct lws_extension lwsgo_extensions[] = {
	{ "permessage-deflate", lwsgo_pmd,
	  "permessage-deflate; client_max_window_bits" },
	{ NULL, NULL, NULL }
};
#endif

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
 * bounds the allocator recorded for it (rxpool.c), found from the request
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

static int lwsgo_client_read(struct lws *w);

/*
 * lwsgo_go_ignores: reasons the Go side does nothing with (it returns 0,
 * as lws_callback_http_dummy does for them), so that with report_all off
 * they are answered here instead of crossing into Go. Three of an HTTP
 * request's seven callbacks are among them. They are still counted
 * (lwsgo_ctx.skipped), for Go's per-reason counts.
 * SERVER_NEW_CLIENT_INSTANTIATED is not: lws has just wiped the opaque
 * user data Go attached at WSI_CREATE, and Go attaches it again there.
 */
static int
lwsgo_go_ignores(enum lws_callback_reasons reason)
{
	switch (reason) {
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

static int
lwsgo_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user,
	       void *in, size_t len)
{
	struct lws_context *cx = wsi ? lws_get_context(wsi) : NULL;
	lwsgo_ctx *cd = cx ? (lwsgo_ctx *)lws_context_user(cx) : NULL;
	const struct lws_protocols *pr;
	char upg[64];
	unsigned char ip[16];
	uintptr_t h = 0;
	size_t dlen = len;
	int flags = 0, proto = -1, fake = 0, ret;

	if (cd && !__atomic_load_n(&cd->report_all, __ATOMIC_RELAXED) &&
	    lwsgo_go_ignores(reason))
		return lwsgo_skip(cd, reason);

	switch (reason) {
	case LWS_CALLBACK_EVENT_WAIT_CANCELLED:
		if (cd && __atomic_exchange_n(&cd->wake, 0, __ATOMIC_SEQ_CST))
			flags |= LWSGO_F_WAKE;
		else if (!cd)
			return 0;
		else if (!__atomic_load_n(&cd->report_all, __ATOMIC_RELAXED))
			/* another thread's cancel, or a spare broadcast */
			return lwsgo_skip(cd, reason);
		fake = 1;
		break;
	case LWS_CALLBACK_GET_THREAD_ID:
		/* here only with report_all on */
		if (cd)
			goLwsCallback(cd->h, (uintptr_t)wsi, 0, (int)reason,
				      NULL, 0, 0, 0, -1);
		return 0;
	case LWS_CALLBACK_WSI_DESTROY:
		/* before Go frees a client's lwsgo_client, and lws a
		 * server's pss */
		if (user) {
			free(((lwsgo_pss *)user)->keep);
			((lwsgo_pss *)user)->keep = NULL;
		}
		break;
	case LWS_CALLBACK_PROTOCOL_INIT:
	case LWS_CALLBACK_PROTOCOL_DESTROY:
	case LWS_CALLBACK_OPENSSL_LOAD_EXTRA_CLIENT_VERIFY_CERTS:
	case LWS_CALLBACK_OPENSSL_LOAD_EXTRA_SERVER_VERIFY_CERTS:
	case LWS_CALLBACK_VHOST_CERT_AGING:
	case LWS_CALLBACK_VHOST_CERT_UPDATE:
		fake = 1;
		break;
	case LWS_CALLBACK_RECEIVE:
	case LWS_CALLBACK_CLIENT_RECEIVE:
		if (lws_is_first_fragment(wsi))
			flags |= LWSGO_F_FIRST;
		if (lws_is_final_fragment(wsi))
			flags |= LWSGO_F_FINAL;
		if (lws_frame_is_binary(wsi))
			flags |= LWSGO_F_BINARY;
		if (!lws_remaining_packet_payload(wsi))
			flags |= LWSGO_F_NOREMAIN;
		len = 0;
		if (user && ((lwsgo_pss *)user)->pmd) {
			len = (size_t)((lwsgo_pss *)user)->rx_raw;
			if (in == ((lwsgo_pss *)user)->ph) {
				/* lwsgo_pmd's placeholder: no data */
				in = NULL;
				dlen = 0;
			}
		}
		break;
	case LWS_CALLBACK_ESTABLISHED:
	case LWS_CALLBACK_CLIENT_ESTABLISHED:
		if (user && ((lwsgo_pss *)user)->pmd) {
			flags |= LWSGO_F_DEFLATE;
			/*
			 * lws compresses into a 1 KiB buffer and sends each
			 * buffer as a frame: a 16 MiB message of random bytes
			 * was over 16,384 frames, the most Node's ws (8.x)
			 * takes by default ("Too many message fragments"), and
			 * a frame header per KiB. 16 KiB frames keep messages
			 * up to 256 MiB under it. Allocated at the first
			 * compressed send, so set before any.
			 */
			lws_set_extension_option(wsi, "permessage-deflate",
						 "tx_buf_size", "14");
		}
		break;
#if defined(LWSGO_OPENSSL)
	case LWS_CALLBACK_OPENSSL_PERFORM_SERVER_CERT_VERIFICATION:
		/* user is the X509_STORE_CTX and len preverify_ok; Go gets
		 * the X509_V_ERR_* code in len instead (0: this certificate
		 * of the chain verified). A 0 return lets lws' own verdict
		 * stand, so Go only learns why a handshake will fail. */
		len = len ? 0 : (size_t)X509_STORE_CTX_get_error(
					(X509_STORE_CTX *)user);
		dlen = 0;
		break;
#endif
	case LWS_CALLBACK_FILTER_NETWORK_CONNECTION:
		/* user is the lws_filter_network_conn_args: Go gets the
		 * peer's IP address (4 or 16 bytes) as the data */
		dlen = 0;
		if (user) {
			const struct lws_filter_network_conn_args *fa = user;

			if (fa->cli_addr.ss_family == AF_INET) {
				memcpy(ip, &((const struct sockaddr_in *)
					     &fa->cli_addr)->sin_addr, 4);
				dlen = 4;
			} else if (fa->cli_addr.ss_family == AF_INET6) {
				memcpy(ip, &((const struct sockaddr_in6 *)
					     &fa->cli_addr)->sin6_addr, 16);
				dlen = 16;
			}
		}
		in = dlen ? ip : NULL;
		break;
	case LWS_CALLBACK_HTTP_CONFIRM_UPGRADE:
		/*
		 * CVE-2025-11677 (fixed in lws 4.3.7, 4.4.2 and 4.5.0): for
		 * an Upgrade value other than websocket or h2c, lws answers
		 * 403, completes the transaction (on a keep-alive connection
		 * that frees or resets the header table) and then still
		 * calls back with in pointing into it. So in is never read
		 * here: Go gets a copy of the request's Upgrade header (its
		 * first line, which is what in points to when it is valid),
		 * and when the request has none any more (or one too long to
		 * be "websocket"), no data and
		 * LWSGO_F_STALE, and the connection is hung up (a <0 return
		 * makes lws skip its own later uses of the pointer).
		 */
		dlen = 0;
		if (!wsi || lws_hdr_copy_fragment(wsi, upg, sizeof(upg),
					WSI_TOKEN_UPGRADE, 0) <= 0) {
			flags |= LWSGO_F_STALE;
			in = NULL;
			len = 0;
			break;
		}
		in = upg;
		len = dlen = strlen(upg);
		break;
	case LWS_CALLBACK_HTTP:
	case LWS_CALLBACK_FILTER_HTTP_CONNECTION:
	case LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION:
	case LWS_CALLBACK_CONFIRM_EXTENSION_OKAY:
	case LWS_CALLBACK_CLIENT_CONNECTION_ERROR:
		/* in is a NUL-terminated string; len is not always set */
		dlen = in ? strlen((const char *)in) : 0;
		break;
	default:
		break;
	}

	if (!cd)
		/* No context to report to: only OPENSSL verification
		 * callbacks of a wsi-less TLS session could get here. */
		return 0;

	if (wsi && !fake) {
		h = (uintptr_t)lws_get_opaque_user_data(wsi);
		pr = lws_get_protocol(wsi);
		if (pr)
			proto = (int)pr->id;
	}

	ret = goLwsCallback(cd->h, (uintptr_t)wsi, h, (int)reason, in,
			    len, dlen, flags, proto);

	switch (reason) {
	case LWS_CALLBACK_EVENT_WAIT_CANCELLED:
		return 0;
	case LWS_CALLBACK_RECEIVE:
	case LWS_CALLBACK_CLIENT_RECEIVE:
		/* the message is complete: the next one counts from 0 */
		if (user && (flags & (LWSGO_F_FINAL | LWSGO_F_NOREMAIN)) ==
			    (LWSGO_F_FINAL | LWSGO_F_NOREMAIN))
			((lwsgo_pss *)user)->rx_raw = 0;
		return ret;
	case LWS_CALLBACK_HTTP_CONFIRM_UPGRADE:
		return flags & LWSGO_F_STALE ? -1 : ret;
	case LWS_CALLBACK_CLIENT_APPEND_HANDSHAKE_HEADER:
		/* in is a char **p into the request, len the room left; the
		 * headers Go prepared wait in the client's user_space */
		if (ret || !user)
			return ret;
		if (lwsgo_append_headers(wsi, (const lwsgo_client *)user,
					 (unsigned char **)in,
					 *(unsigned char **)in + len))
			return -1;
		if (((const lwsgo_client *)user)->body_pending) {
			lws_client_http_body_pending(wsi, 1);
			lws_callback_on_writable(wsi);
		}
		return 0;
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

static int
lwsgo_client_read(struct lws *w)
{
	char buf[LWS_PRE + 16384], *p = buf + LWS_PRE;
	int n = (int)sizeof(buf) - LWS_PRE;

	return lws_http_client_read(w, &p, &n) < 0 ? -1 : 0;
}

static int
lwsgo_append_headers(struct lws *w, const lwsgo_client *cl, unsigned char **p,
		     unsigned char *end)
{
	const char *h = cl->hdrs;
	int left = cl->hdrslen;
	char name[256];

	while (h && left > 0) {
		int nl = (int)strlen(h), vl;
		const char *v = h + nl + 1;

		vl = (int)strlen(v);
		if (nl == 0 || nl + 2 > (int)sizeof(name))
			return -1;
		/* lws copies the name verbatim: it must end in ':' */
		memcpy(name, h, (size_t)nl);
		name[nl] = ':';
		name[nl + 1] = '\0';
		if (lws_add_http_header_by_name(w, (unsigned char *)name,
						(const unsigned char *)v, vl,
						p, end))
			return -1;
		h = v + vl + 1;
		left -= nl + vl + 2;
	}

	return 0;
}

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
	free(cl->pss.keep);
	free(cl->hdrs);
	free(cl);
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

void
lwsgo_rx_flow(uintptr_t wsi, int enable)
{
	lws_rx_flow_control((struct lws *)wsi, enable);
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

lwsgo_ctx *
lwsgo_ctx_new(void)
{
	return calloc(1, sizeof(lwsgo_ctx));
}

int
lwsgo_ctx_create(lwsgo_ctx *cd, const lwsgo_ctx_info *ci)
{
	struct lws_context_creation_info info;

	lwsgo_rxpool_install();
	memset(&info, 0, sizeof(info));
	info.port = CONTEXT_PORT_NO_LISTEN;
	info.options = ci->options | LWS_SERVER_OPTION_EXPLICIT_VHOSTS;
	info.user = cd;
	info.timeout_secs = (unsigned int)ci->timeout_secs;
	info.fd_limit_per_thread = (unsigned int)ci->fd_limit_per_thread;
	info.pt_serv_buf_size = (unsigned int)ci->pt_serv_buf_size;
	info.max_http_header_data = ci->max_http_header_data;
	info.max_http_header_pool = ci->max_http_header_pool;
	info.count_threads = 1;
#if LWS_LIBRARY_VERSION_NUMBER >= 4003000
	/*
	 * libwebsockets 4.3 counts every object it tags (context, vhost,
	 * wsi) in a log context, by default one for the whole process,
	 * with a plain int when built with LWS_MAX_SMP 1 (Debian's) (4.3.5
	 * lib/core/logs.c, lwsl_refcount_cx). Contexts serviced on
	 * different threads lose counts there, and lws_context_destroy
	 * then fails its assert(cx->refcount) and aborts the process
	 * (TestChurn's two contexts in 6 of 18 runs on 4.3.5). Each
	 * context counts in its own, which logs as the process-wide one
	 * does.
	 */
	cd->log_cx.u.emit = lwsgo_log_emit;
	cd->log_cx.lll_flags = (uint32_t)lwsgo_log_levels;
	info.log_cx = &cd->log_cx;
#endif

	cd->ctx = lws_create_context(&info);

	return cd->ctx ? 0 : -1;
}

void
lwsgo_ctx_free(lwsgo_ctx *cd)
{
	free(cd);
}

void
lwsgo_wake(lwsgo_ctx *cd)
{
	__atomic_store_n(&cd->wake, 1, __ATOMIC_SEQ_CST);
	lws_cancel_service(cd->ctx);
}

void
lwsgo_set_report_all(lwsgo_ctx *cd, int on)
{
	__atomic_store_n(&cd->report_all, on, __ATOMIC_RELAXED);
}

lwsgo_vhost *
lwsgo_vhost_create(lwsgo_ctx *cd, const lwsgo_vhost_info *vi)
{
	struct lws_context_creation_info info;
	lwsgo_vhost *v;
	int n;

	v = calloc(1, sizeof(*v));
	if (!v)
		return NULL;
	v->protocols = calloc((size_t)vi->nprotocols + 1,
			      sizeof(struct lws_protocols));
	if (!v->protocols) {
		free(v);
		return NULL;
	}
	for (n = 0; n < vi->nprotocols; n++) {
		v->protocols[n].name = vi->protocol_names[n];
		v->protocols[n].callback = lwsgo_callback;
		/* Go keeps no state here (it is in the opaque user data), but
		 * lws only delivers the *_DROP_PROTOCOL reasons to a wsi that
		 * has user_space (lib/core-net/close.c): a listener's protocols
		 * ask for some so that the binding sees what a C program sees,
		 * and it holds the wsi's lwsgo_pss. Client links bring their
		 * own user_space (the lwsgo_client), which lws must not
		 * replace. */
		v->protocols[n].per_session_data_size =
			vi->port == CONTEXT_PORT_NO_LISTEN ? 0 : sizeof(lwsgo_pss);
		v->protocols[n].rx_buffer_size = vi->rx_buffer_size;
		v->protocols[n].tx_packet_size = vi->tx_packet_size;
		/* lws copies the table: carry our indices, not pointers */
		v->protocols[n].id = ((unsigned int)vi->index << 16) | (unsigned int)n;
	}

	memset(&info, 0, sizeof(info));
	info.vhost_name = vi->name;
	info.iface = vi->iface;
	info.port = vi->port;
	info.options = vi->options;
	info.protocols = v->protocols;
	info.ssl_cert_filepath = vi->cert_path;
	info.ssl_private_key_filepath = vi->key_path;
	info.ssl_ca_filepath = vi->ca_path;
	info.alpn = vi->alpn;
	info.client_ssl_ca_filepath = vi->client_ca_path;
	info.client_ssl_cert_filepath = vi->client_cert_path;
	info.client_ssl_private_key_filepath = vi->client_key_path;
	info.keepalive_timeout = (int)vi->keepalive_timeout;
	info.timeout_secs_ah_idle = vi->timeout_secs_ah_idle;
	info.timeout_secs = (unsigned int)vi->timeout_secs;
	if (vi->ping_secs || vi->hangup_secs) {
		v->retry.secs_since_valid_ping = vi->ping_secs;
		v->retry.secs_since_valid_hangup = vi->hangup_secs;
		info.retry_and_idle_policy = &v->retry;
	}
	info.user = cd;
#if !defined(LWS_WITHOUT_EXTENSIONS)
	/* a client link offers what its vhost has: compressing clients get
	 * a vhost of their own (lws/client.go) */
	if (vi->compression)
		info.extensions = lwsgo_extensions;
#endif

#if LWS_LIBRARY_VERSION_NUMBER >= 4003000
	info.log_cx = &cd->log_cx; /* see lwsgo_ctx_create */
#endif
	v->vh = lws_create_vhost(cd->ctx, &info);
	if (!v->vh) {
		free(v->protocols);
		free(v);
		return NULL;
	}

	return v;
}

void
lwsgo_vhost_free(lwsgo_vhost *v)
{
	if (!v)
		return;
	free(v->protocols);
	free(v);
}

int
lwsgo_vhost_port(lwsgo_vhost *v)
{
	return lws_get_vhost_listen_port(v->vh);
}

/*
 * lwsgo_adopt_socket hands a connected socket to a vhost that listens
 * nowhere (CONTEXT_PORT_NO_LISTEN_SERVER) as a server HTTP connection, TLS
 * when the vhost has a certificate: the way in for the connections of a
 * PROXY protocol listener, whose header the binding has read off the
 * socket first (lws/proxyproto.go). lws closes fd itself on failure
 * (lws_adopt_descriptor_vhost_via_info, 4.1.6 and 4.3.5).
 */
uintptr_t
lwsgo_adopt_socket(lwsgo_vhost *v, int fd)
{
	return (uintptr_t)lws_adopt_socket_vhost(v->vh, fd);
}

void
lwsgo_log_init(int levels)
{
	lwsgo_log_levels = levels;
	lws_set_log_level(levels, lwsgo_log_emit);
}

/*
 * The write helpers return -1 (failed: close), 0 (written) or 1 (written,
 * and the socket can take no more now). They ask lws_send_pipe_choked(),
 * which costs a poll(2) of the socket, only when check is set: the caller
 * has more to write in this callback. Whatever the kernel does not take,
 * libwebsockets keeps (buflist_out) and sends before anything written
 * after it, so a write into a choked socket is correct, only a copy.
 */
static int
lwsgo_choked(struct lws *w, int check)
{
	return check && lws_send_pipe_choked(w) ? 1 : 0;
}

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

/*
 * lwsgo_set_timer asks for LWS_CALLBACK_TIMER after usecs; a negative value
 * cancels. lws_set_timer_usecs(wsi, LWS_SET_TIMER_USEC_CANCEL) does not
 * cancel in lws 4.1.6 or 4.3.5, whatever its header says: it schedules the
 * timer at now - 1 us, so TIMER comes at once (seen in the reason log). A
 * cancel moves the timer a century ahead instead; lws drops it with the wsi.
 */
#define LWSGO_TIMER_NEVER ((lws_usec_t)100 * 365 * 24 * 3600 * LWS_US_PER_SEC)

void
lwsgo_set_timer(uintptr_t wsi, int64_t usecs)
{
	lws_set_timer_usecs((struct lws *)wsi,
			    usecs < 0 ? LWSGO_TIMER_NEVER : (lws_usec_t)usecs);
}

void
lwsgo_set_rx_limit(uintptr_t wsi, uint64_t limit)
{
	lwsgo_pss *ps = (lwsgo_pss *)lws_wsi_user((struct lws *)wsi);

	if (ps)
		ps->rx_limit = limit;
}

int
lwsgo_compression_available(void)
{
#if !defined(LWS_WITHOUT_EXTENSIONS)
	return 1;
#else
	return 0;
#endif
}

void
lwsgo_kill(uintptr_t wsi, int sync)
{
	lws_set_timeout((struct lws *)wsi, PENDING_TIMEOUT_USER_OK,
			sync ? LWS_TO_KILL_SYNC : LWS_TO_KILL_ASYNC);
}

/*
 * lwsgo_http_info fills buf with the request of an HTTP wsi as a sequence of
 * NUL-terminated strings: method, path, query, version ("HTTP/1.1"), then
 * name/value pairs of every header present (one pair per header line). Names are lower case without the colon. custom lists extra
 * header names ("x-a:\0x-b:\0", lower case with colon) to look up as custom
 * headers, for libwebsockets releases that cannot enumerate them.
 * Returns the bytes used, or -(bytes needed) when buf is too small.
 */
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

struct lwsgo_sink {
	char *buf;
	int len, used;
};

static void
lwsgo_put(struct lwsgo_sink *s, const char *p, int n)
{
	if (s->used + n + 1 <= s->len) {
		memcpy(s->buf + s->used, p, (size_t)n);
		s->buf[s->used + n] = '\0';
	}
	s->used += n + 1;
}

/* copies header/fragment into the sink in place; needs room for NUL */
static void
lwsgo_put_hdr(struct lwsgo_sink *s, struct lws *w, int tok, int total)
{
	if (s->used + total + 1 <= s->len) {
		if (lws_hdr_copy(w, s->buf + s->used, total + 1,
				 (enum lws_token_indexes)tok) < 0)
			s->buf[s->used] = '\0';
	}
	s->used += total + 1;
}

/* every header present, as name, value pairs, then the custom ones */
static void
lwsgo_put_headers(struct lwsgo_sink *sp, struct lws *w, const char *custom,
		  int customlen)
{
	int n, tok, nl, f;

	for (tok = 0; tok < WSI_TOKEN_COUNT; tok++) {
		const unsigned char *t;

		if (tok == WSI_TOKEN_HTTP_URI_ARGS)
			continue;
		n = lws_hdr_total_length(w, (enum lws_token_indexes)tok);
		if (n <= 0)
			continue;
		t = lws_token_to_string((enum lws_token_indexes)tok);
		if (!t)
			continue;
		nl = (int)strlen((const char *)t);
		/* real headers are "name:"; methods are "get " and pseudo
		 * headers ":path:" */
		if (nl < 2 || t[nl - 1] != ':' || t[0] == ':')
			continue;
		if (tok == WSI_TOKEN_HTTP_COOKIE) {
			/* lws joins repeated Cookie headers itself */
			lwsgo_put(sp, (const char *)t, nl - 1);
			lwsgo_put_hdr(sp, w, tok, n);
			continue;
		}
		/* one pair per occurrence: lws_hdr_copy would join repeated
		 * headers with ',', which breaks Set-Cookie */
		for (f = 0; ; f++) {
			int fl = lws_hdr_fragment_length(w,
					(enum lws_token_indexes)tok, f);

			if (fl <= 0 && f)
				break;
			lwsgo_put(sp, (const char *)t, nl - 1);
			if (sp->used + fl + 1 <= sp->len &&
			    lws_hdr_copy_fragment(w, sp->buf + sp->used, fl + 1,
					(enum lws_token_indexes)tok, f) < 0)
				sp->buf[sp->used] = '\0';
			sp->used += fl + 1;
			if (fl <= 0)
				break;
		}
	}

#if defined(LWS_WITH_CUSTOM_HEADERS)
	while (custom && customlen > 0) {
		int cl = (int)strlen(custom);

		n = lws_hdr_custom_length(w, custom, cl);
		if (n >= 0) {
			lwsgo_put(sp, custom, cl - 1);
			if (sp->used + n + 1 <= sp->len) {
				if (lws_hdr_custom_copy(w, sp->buf + sp->used,
							n + 1, custom, cl) < 0)
					sp->buf[sp->used] = '\0';
			}
			sp->used += n + 1;
		}
		custom += cl + 1;
		customlen -= cl + 1;
	}
#else
	(void)custom;
	(void)customlen;
#endif
}

int
lwsgo_http_info(uintptr_t wsi, char *buf, int len, const char *custom,
		int customlen)
{
	struct lws *w = (struct lws *)wsi;
	struct lwsgo_sink s = { buf, len, 0 };
	char *uri = NULL, frag[1024];
	const char *name;
	int m, ulen = 0, n, f, first = 1;

	m = lws_http_get_uri_and_method(w, &uri, &ulen);
	name = lwsgo_method_name(m);
	lwsgo_put(&s, name, (int)strlen(name));
	lwsgo_put(&s, uri ? uri : "", uri ? ulen : 0);

	/* query: the decoded URI_ARGS fragments joined by '&' */
	{
		int start = s.used, qlen = 0;

		for (f = 0; ; f++) {
			n = lws_hdr_copy_fragment(w, frag, sizeof(frag),
						  WSI_TOKEN_HTTP_URI_ARGS, f);
			if (n < 0)
				break;
			if (s.used + qlen + n + 2 <= s.len) {
				if (!first)
					s.buf[start + qlen] = '&';
				memcpy(s.buf + start + qlen + !first, frag,
				       (size_t)n);
			}
			qlen += n + !first;
			first = 0;
		}
		if (s.used + qlen + 1 <= s.len)
			s.buf[start + qlen] = '\0';
		s.used += qlen + 1;
	}

	/* the protocol version from the request line, e.g. "HTTP/1.1" */
	n = lws_hdr_total_length(w, WSI_TOKEN_HTTP);
	lwsgo_put_hdr(&s, w, WSI_TOKEN_HTTP, n > 0 ? n : 0);

	lwsgo_put_headers(&s, w, custom, customlen);

	return s.used <= s.len ? s.used : -s.used;
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
	size_t cap = LWS_PRE + 512 + (size_t)hdrslen * 2;
	unsigned char *buf, *start, *p, *end;
	char name[256];
	int r = -1;

	if (cap < LWS_PRE + LWS_RECOMMENDED_MIN_HEADER_SPACE)
		cap = LWS_PRE + LWS_RECOMMENDED_MIN_HEADER_SPACE;
	buf = malloc(cap);
	if (!buf)
		return -1;
	start = p = buf + LWS_PRE;
	end = buf + cap - 1;

	if (lws_add_http_common_headers(w, (unsigned int)status, NULL,
			content_length < 0 ? LWS_ILLEGAL_HTTP_CONTENT_LEN :
					     (lws_filepos_t)content_length,
			&p, end))
		goto out;

	while (hdrslen > 0) {
		int nl = (int)strlen(hdrs), vl;
		const char *v = hdrs + nl + 1;

		vl = (int)strlen(v);
		if (nl == 0 || nl + 2 > (int)sizeof(name))
			goto out;
		memcpy(name, hdrs, (size_t)nl);
		name[nl] = ':';
		name[nl + 1] = '\0';
		if (lws_add_http_header_by_name(w, (unsigned char *)name,
						(const unsigned char *)v, vl,
						&p, end))
			goto out;
		hdrs = v + vl + 1;
		hdrslen -= nl + vl + 2;
	}

	if (lws_finalize_write_http_header(w, start, &p, end))
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
 * close sends what is written before it shuts the socket. Like lws_return_http_status, the length goes in as a plain header
 * (not lws_add_http_header_content_length) because headers and body are
 * one LWS_WRITE_HTTP. Returns 0, or -1 when nothing could be written.
 */
int
lwsgo_http_refuse(uintptr_t wsi, int status, const char *hdrs, int hdrslen,
		  const unsigned char *body, int bodylen)
{
	struct lws *w = (struct lws *)wsi;
	size_t cap = LWS_PRE + 512 + (size_t)hdrslen * 2 + (size_t)bodylen;
	unsigned char *buf, *start, *p, *end;
	char name[256], clen[24];
	int r = -1, n;

	if (cap < LWS_PRE + LWS_RECOMMENDED_MIN_HEADER_SPACE + (size_t)bodylen)
		cap = LWS_PRE + LWS_RECOMMENDED_MIN_HEADER_SPACE +
		      (size_t)bodylen;
	buf = malloc(cap);
	if (!buf)
		return -1;
	start = p = buf + LWS_PRE;
	end = buf + cap - 1;

	/* no length here: lws adds "connection: close" and sets the
	 * connection to close after this transaction */
	if (lws_add_http_common_headers(w, (unsigned int)status,
					"text/plain; charset=utf-8",
					LWS_ILLEGAL_HTTP_CONTENT_LEN, &p, end))
		goto out;
	n = lws_snprintf(clen, sizeof(clen), "%d", bodylen);
	if (lws_add_http_header_by_token(w, WSI_TOKEN_HTTP_CONTENT_LENGTH,
					 (unsigned char *)clen, n, &p, end))
		goto out;
	while (hdrslen > 0) {
		int nl = (int)strlen(hdrs), vl;
		const char *v = hdrs + nl + 1;

		vl = (int)strlen(v);
		if (nl == 0 || nl + 2 > (int)sizeof(name))
			goto out;
		memcpy(name, hdrs, (size_t)nl);
		name[nl] = ':';
		name[nl + 1] = '\0';
		if (lws_add_http_header_by_name(w, (unsigned char *)name,
						(const unsigned char *)v, vl,
						&p, end))
			goto out;
		hdrs = v + vl + 1;
		hdrslen -= nl + vl + 2;
	}
	if (lws_finalize_http_header(w, &p, end))
		goto out;
	if (end - p < bodylen)
		goto out;
	if (bodylen)
		memcpy(p, body, (size_t)bodylen);
	p += bodylen;
	n = lws_ptr_diff(p, start);
	if (lws_write(w, start, (size_t)n, LWS_WRITE_HTTP) != n)
		goto out;
	r = 0;
out:
	free(buf);
	return r;
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

/*
 * lwsgo_http_service_writable delivers HTTP_WRITEABLE to wsi now, by
 * servicing its socket as if poll() had reported it writable and nothing
 * else: lws_service_fd with POLLOUT alone, what the event loop itself does
 * for each ready fd. It is called between lws_service passes, never from
 * inside a callback. So a response is written before libwebsockets reads
 * whatever the client sent after the request: both versions mishandle
 * those bytes while a transaction is open (see lws/http.go). lws_write
 * keeps what the socket does not take, as after a real POLLOUT. Returns
 * lws_service_fd's result; the wsi may be closed and freed when it returns.
 */
int
lwsgo_http_service_writable(uintptr_t wsi)
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
 * lwsgo_forced_service reports whether some connection of the context holds
 * input libwebsockets has read but not yet handed to a callback and may hand
 * over without waiting for the network: bytes kept in a connection's buflist
 * (not rx-paused, not between transactions), TLS data OpenSSL decrypted
 * ahead, inflated data still to drain. lws_service_adjust_timeout, the
 * public API event loops use to decide whether to wait in poll; on 4.3 it
 * also runs the scheduled events that are due, as lws_service would.
 */
int
lwsgo_forced_service(lwsgo_ctx *cd)
{
	return lws_service_adjust_timeout(cd->ctx, 1, 0) == 0;
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
