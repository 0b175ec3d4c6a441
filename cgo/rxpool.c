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
 * The allocator also keeps the address and size of each buffer lws parses
 * a request's headers into (_lws_create_ah: lws_malloc(data_size, "ah
 * data")), so that the shim can change a header in it within its bounds
 * (lwsgo_ws_set_offer), and of each struct that indexes such a buffer
 * (lws_zalloc(sizeof(*ah), "ah struct")), whose record of a header's
 * length lwsgo_ws_set_protocol changes: a hash table, looked up on every
 * free of a buffer that is not a slot while any is live.
 */
#include "shim.h"

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

/* The live header buffers and structs: open addressing, linear probing,
 * removal by backward shift; key 0 is an empty slot (ahd_mu). A struct's
 * size has AHD_STRUCT set. */
#define AHD_STRUCT ((size_t)1 << (sizeof(size_t) * 8 - 1))
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

static void
ahd_add(void *p, size_t size)
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

/* ahd_del forgets p; it returns p's size (with AHD_STRUCT for a struct), 0
 * if p was neither a header buffer nor a header struct. */
static size_t
ahd_del(void *p)
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

char *
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
		if (ahd_key[i] && !(ahd_size[i] & AHD_STRUCT) &&
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

char *
lwsgo_ah_struct_find(const char *data, size_t *size)
{
	char *found = NULL;
	size_t i, o, n;

	if (!data || !__atomic_load_n(&ahd_n, __ATOMIC_RELAXED))
		return NULL;
	pthread_mutex_lock(&ahd_mu);
	for (i = 0; !found && i < ahd_cap; i++) {
		if (!ahd_key[i] || !(ahd_size[i] & AHD_STRUCT))
			continue;
		n = ahd_size[i] & ~AHD_STRUCT;
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
	if (ptr && size && (old = ahd_del(ptr))) {
		/* lws does not resize header buffers; were it to... */
		void *n = realloc(ptr, size);

		ahd_add(n ? n : ptr, n ? size | (old & AHD_STRUCT) : old);
		return n;
	}
	if (!ptr && size && reason &&
	    (!strcmp(reason, "ah data") || !strcmp(reason, "ah struct"))) {
		void *p = malloc(size);

		if (p)
			ahd_add(p, strcmp(reason, "ah struct") ? size :
						     size | AHD_STRUCT);
		return p;
	}
	if (size)
		return realloc(ptr, size);
	if (ptr)
		ahd_del(ptr);
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

/* the header buffers and structs recorded */
size_t
lwsgo_ah_data_live(void)
{
	return __atomic_load_n(&ahd_n, __ATOMIC_RELAXED);
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
