/*
 * rxpool.c: where libwebsockets keeps the receive buffer of each WebSocket
 * link (lws_server_init_wsi_for_ws: lws_malloc(pt_serv_buf_size + LWS_PRE
 * + 4, "rx_ubuf"), 64 KiB here, for the link's life).
 *
 * From malloc, an idle link's buffer costs a page of memory although
 * nothing is written in it: malloc writes its chunk header just before the
 * buffer, and 64 KiB chunks put each header on a page of its own. That
 * page was 4 KB of the 5.4 KB native libwebsockets holds per idle link.
 * Here each buffer is a page-aligned slot of its own in one reserved range
 * of address space: a page becomes memory only when data is written in it,
 * so an idle link's buffer costs none. Of the slots given back, the last
 * RXPOOL_WARM are reused as they are (their written pages still memory,
 * as a reused malloc chunk's are: links that come and go at a high rate
 * pay no madvise and page faults per link); the others are emptied
 * (MADV_DONTNEED) first. Every other allocation, and a
 * buffer too big for a slot or beyond the range, goes to realloc/free as
 * libwebsockets' own allocator does. Built with AddressSanitizer there is
 * no range, and every buffer is malloc's.
 *
 * The allocator also tells offer.c of each buffer lws parses a request's
 * headers into (_lws_create_ah: lws_malloc(data_size, "ah data")) and of
 * each struct that indexes one ("ah struct"), and of their frees, so that
 * the binding can change a header within the buffer's bounds
 * (lwsgo_ws_set_offer, lwsgo_ws_set_protocol).
 *
 * See shim.c for the design of the C layer and the list of its files.
 */
#include "internal.h"

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#define RXPOOL_SLOT  ((size_t)17 * 4096) /* 64 KiB + LWS_PRE + 4, page-rounded */
#define RXPOOL_SLOTS ((size_t)1 << 17)   /* 131,072 links: 9 GB of address space, not memory */
#define RXPOOL_GROW  ((size_t)256)       /* slots made writable at once */
#define RXPOOL_WARM  32                  /* slots given back reused unemptied */

static char *rx_base;            /* the reserved range; NULL: no pool */
static pthread_mutex_t rx_mu = PTHREAD_MUTEX_INITIALIZER;
static size_t rx_usable;         /* slots writable (rx_mu) */
static size_t rx_next;           /* slots ever handed out (rx_mu) */
static uint32_t *rx_free;        /* slots given back (rx_mu) */
static size_t rx_nfree, rx_capfree;
static long rx_live;             /* slots in use (rx_mu) */
static uint32_t rx_warm[RXPOOL_WARM]; /* given back, not emptied (rx_mu) */
static size_t rx_nwarm;

static int
rx_owns(const void *p)
{
	return rx_base && (const char *)p >= rx_base &&
	       (const char *)p < rx_base + RXPOOL_SLOT * RXPOOL_SLOTS;
}

static void *
rx_alloc(void)
{
	void *p = NULL;
	size_t i;

	pthread_mutex_lock(&rx_mu);
	if (rx_nwarm) {
		i = rx_warm[--rx_nwarm];
	} else if (rx_nfree) {
		i = rx_free[--rx_nfree];
	} else {
		if (rx_next == rx_usable) {
			if (rx_usable == RXPOOL_SLOTS ||
			    mprotect(rx_base + rx_usable * RXPOOL_SLOT,
				     RXPOOL_GROW * RXPOOL_SLOT,
				     PROT_READ | PROT_WRITE))
				goto out;
			rx_usable += RXPOOL_GROW;
		}
		i = rx_next++;
	}
	rx_live++;
	p = rx_base + i * RXPOOL_SLOT;
out:
	pthread_mutex_unlock(&rx_mu);
	return p;
}

static void
rx_release(void *p)
{
	size_t i = (size_t)((char *)p - rx_base) / RXPOOL_SLOT;

	pthread_mutex_lock(&rx_mu);
	if (rx_nwarm < RXPOOL_WARM) {
		rx_warm[rx_nwarm++] = (uint32_t)i;
		rx_live--;
		pthread_mutex_unlock(&rx_mu);
		return;
	}
	pthread_mutex_unlock(&rx_mu);
	/* Whatever was received is dropped: the pages are memory no more. */
	madvise(rx_base + i * RXPOOL_SLOT, RXPOOL_SLOT, MADV_DONTNEED);
	pthread_mutex_lock(&rx_mu);
	if (rx_nfree == rx_capfree) {
		size_t cap = rx_capfree ? 2 * rx_capfree : 1024;
		uint32_t *f = realloc(rx_free, cap * sizeof(*f));

		if (!f) {
			/* The slot is lost, not reused: still correct. */
			rx_live--;
			pthread_mutex_unlock(&rx_mu);
			return;
		}
		rx_free = f;
		rx_capfree = cap;
	}
	rx_free[rx_nfree++] = (uint32_t)i;
	rx_live--;
	pthread_mutex_unlock(&rx_mu);
}

/* libwebsockets' allocator (lws_set_allocator): realloc, and free when
 * size is 0. */
static void *
lwsgo_lws_realloc(void *ptr, size_t size, const char *reason)
{
	size_t old;

	if (ptr && rx_owns(ptr)) {
		void *n;

		if (!size) {
			rx_release(ptr);
			return NULL;
		}
		if (size <= RXPOOL_SLOT)
			return ptr;
		n = malloc(size);
		if (!n)
			return NULL;
		memcpy(n, ptr, RXPOOL_SLOT);
		rx_release(ptr);
		return n;
	}
	if (!ptr && size && size <= RXPOOL_SLOT && reason &&
	    !strcmp(reason, "rx_ubuf")) {
		void *p = rx_alloc();

		if (p)
			return p;
	}
	if (ptr && size && (old = lwsgo_ah_data_forget(ptr))) {
		/* lws does not resize header buffers; were it to... */
		void *n = realloc(ptr, size);

		lwsgo_ah_data_record(n ? n : ptr,
				     n ? size | (old & LWSGO_AH_STRUCT) : old);
		return n;
	}
	if (!ptr && size && reason &&
	    (!strcmp(reason, "ah data") || !strcmp(reason, "ah struct"))) {
		void *p = malloc(size);

		if (p)
			lwsgo_ah_data_record(p, strcmp(reason, "ah struct") ?
						      size : size | LWSGO_AH_STRUCT);
		return p;
	}
	if (size)
		return realloc(ptr, size);
	if (ptr)
		lwsgo_ah_data_forget(ptr);
	free(ptr);
	return NULL;
}

static pthread_once_t rx_once = PTHREAD_ONCE_INIT;

static void
rx_install(void)
{
#if !defined(__SANITIZE_ADDRESS__)
	void *p = mmap(NULL, RXPOOL_SLOT * RXPOOL_SLOTS, PROT_NONE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);

	if (p != MAP_FAILED)
		rx_base = p;
#endif
	/*
	 * Without the range every buffer comes from malloc, as before; so
	 * under AddressSanitizer (make asan), which guards malloc's: a
	 * libwebsockets parser writing past its receive buffer must be
	 * caught, not land in a slot's slack or its neighbour.
	 */
	lws_set_allocator(lwsgo_lws_realloc);
}

int
lwsgo_rxpool_enabled(void)
{
	return rx_base != NULL;
}

void
lwsgo_rxpool_install(void)
{
	pthread_once(&rx_once, rx_install);
}

long
lwsgo_rxpool_live(void)
{
	long n;

	pthread_mutex_lock(&rx_mu);
	n = rx_live;
	pthread_mutex_unlock(&rx_mu);
	return n;
}
