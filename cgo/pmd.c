/*
 * pmd.c: permessage-deflate (RFC 7692). See shim.c for the design of the C
 * layer and the list of its files.
 *
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
#include "internal.h"

#include <stdlib.h>
#include <string.h>

#if !defined(LWS_WITHOUT_EXTENSIONS)
#include <zlib.h>

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

const struct lws_extension lwsgo_extensions[] = {
	{ "permessage-deflate", lwsgo_pmd,
	  "permessage-deflate; client_max_window_bits" },
	{ NULL, NULL, NULL }
};
#endif

/* lwsgo_pss_release frees the compressed input kept for zlib: at
 * WSI_DESTROY, when lws no longer inflates anything of the link. */
void
lwsgo_pss_release(lwsgo_pss *ps)
{
	free(ps->keep);
	ps->keep = NULL;
}

/* lwsgo_set_rx_limit sets the count of compressed bytes past which lwsgo_pmd
 * makes lws call RECEIVE (see above). */
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
