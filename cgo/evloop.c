/*
 * evloop.c: the libev loop a context may run on instead of lws' own. See
 * shim.c for the design of the C layer and the list of its files.
 *
 * Why: lws' default loop calls poll(2) on every descriptor of the context
 * at each pass, so that an event costs more the more links are open: a
 * ping-pong message took 376 us of native lws' CPU with 1,000 silent links
 * open instead of 36 us with none, nearly all of it in the kernel's
 * do_sys_poll (perf). With LWS_SERVER_OPTION_LIBEV lws hands its
 * descriptors to libev, whose epoll backend pays only for the ready ones.
 * The price: lws asks for POLLOUT before each WRITEABLE and drops it
 * after, which poll(2) gets for free and epoll as an epoll_ctl each (2
 * per ping-pong message, strace; within the noise of CPU per message
 * with no other link open).
 *
 * The loop is lws' "foreign" loop: made here, run one iteration per
 * lwsgo_service (ev_run EVRUN_ONCE waits for events once and handles
 * them, as lws_service does one poll), freed after lws_context_destroy.
 * Given no loop, lws makes its own and lws_service is ev_run(loop, 0)
 * (lib/event-libs/libev/libev.c, elops_run_pt_ev, 4.1.6 and 4.3.5), which
 * returns only when the loop is broken: the service goroutine would never
 * get back to its queue. On a loop of its own lws also watches SIGINT
 * (elops_init_pt_ev), which would take the signal from Go.
 *
 * What stays as with poll: lws_cancel_service writes the event pipe, which
 * lws watches in this loop as it does every descriptor; and
 * lws_context_destroy finishes before it returns, libev having no
 * asynchronous close (no destroy_context1), so the callbacks run in the
 * same order as with poll.
 *
 * What the binding adds, because the plugin does it only after an event
 * on one of lws' descriptors (lws_ev_idle_cb): input lws holds and may
 * hand over without the network (a link's buffered bytes once its rx flow
 * is on again, TLS data OpenSSL decrypted ahead) is handed over at the
 * next pass, as lws' poll loop does (it waits 0 ms then, unix-service.c):
 * before each wait, lwsgo_forced_service says whether there is any, and
 * an ev_idle (which makes libev not wait) runs
 * _lws_plat_service_forced_tsi, as the plugin's idle does; both are
 * exported to event libraries (lws-eventlib-exports.h). The binding turns
 * rx flow on again between passes (lws/queue.go, answer), where no event
 * of lws' would follow.
 *
 * What does not: lws' timers (sul: timeouts, the ping and hang-up of idle
 * links, lws_set_timer_usecs). The plugin keeps one ev_timer for the
 * earliest and re-arms it with ev_timer_set + ev_timer_start after every
 * event (lws_ev_idle_cb, libev.c:74-75 in 4.1.6 and 4.3.5); but
 * libev ignores ev_timer_start on a timer already running, and its
 * ev_timer_set must not be used on one (ev.h, "watcher states"): a timer
 * set earlier than the one running fires only when that one is due.
 * TestKeepaliveClient's silent server was never dropped, and a refusal
 * held for 1 s was answered after 10. So the binding runs lws' timers
 * itself, as lws' poll loop does before each wait
 * (lib/plat/unix/unix-service.c): an ev_prepare (run before each wait)
 * and an ev_timer of its own both call __lws_sul_service_ripe, which runs
 * the timers that are due and returns the time to the next, and the
 * ev_timer is re-armed for it. That function is exported and declared in
 * lws-timeout-timer.h ("for the case there's code using lws_sul"); it
 * takes the context's array of timer lists, found as the owner of a timer
 * the binding schedules once (lws_sul_schedule puts it on the first list,
 * pt_sul_owner[0], sorted-usec-list.c, lws_sul2_schedule). lws' own
 * ev_timer still runs too and finds nothing due or the same timers.
 *
 * What the binding adds for a pass with many messages: a hand-over in the
 * middle. One epoll wait may report a thousand links at once, and libev
 * then invokes every one's callback before the pass ends, so the echoes of
 * the whole batch would go out only after the last message was read: a
 * convoy, in which the peers have nothing to do while the pass reads, and
 * are asleep, to be woken one by one, while it writes. Capping each wait
 * at 64 events (an LD_PRELOAD experiment: libev has no such setting) cut
 * package lws' CPU per message by 12% at 1,000 links. So after every
 * LWSGO_MIDPASS_EVERY links of a pass whose messages reached Go
 * (lwsgo_evloop_received), the binding feeds an event to a watcher of its
 * own (ev_feed_event), whose callback hands over to Go (goLwsMidPass),
 * which delivers the WRITEABLE callbacks asked for so far as it does after
 * a pass (lws/queue.go, writeNow). Links, not messages: counting messages,
 * 100 links with 10 pipelined each were handed over every 6 links and cost
 * 4% more CPU per message. The callback runs between two of lws' I/O
 * callbacks, where lws' own libev callback (lws_accept_cb) calls
 * lws_service_fd: no lws callback is on the stack. libev 4 invokes the
 * pending watchers of one priority last fed first (ev_invoke_pending), so
 * the hand-over comes right after the I/O callback of the link that fed
 * it; were the order otherwise, it would come later in the pass, as the
 * writes did before.
 *
 * Debian builds lws' libev support as a plugin that lws_create_context
 * loads from LWS_INSTALL_LIBDIR (package libwebsockets-evlib-ev; 4.3 also
 * looks in the working directory first, lib/core/context.c, dlist).
 */
#include "internal.h"
#include "_cgo_export.h"

#include <stdlib.h>
#include <unistd.h>
#if defined(LWS_WITH_LIBEV)
#include <ev.h>
#endif

#if defined(LWS_WITH_LIBEV) && defined(LWS_WITH_EVLIB_PLUGINS)
#define LWSGO_LIBEV_PLUGIN LWS_INSTALL_LIBDIR "/libwebsockets-evlib_ev.so"
#endif

const char *
lwsgo_libev_plugin_path(void)
{
#if defined(LWSGO_LIBEV_PLUGIN)
	return LWSGO_LIBEV_PLUGIN;
#else
	return "";
#endif
}

#if defined(LWS_WITH_LIBEV)

/* links of a pass between two hand-overs to Go (see above) */
#define LWSGO_MIDPASS_EVERY 64

struct lwsgo_evloop {
	struct ev_loop *loop;
	ev_prepare prepare;     /* before each wait: lws' timers */
	ev_timer timer;         /* when lws' next timer is due */
	ev_idle forced;         /* while lws holds input to hand over */
	ev_check midpass;       /* never started: fed (lwsgo_evloop_received) */
	int received;           /* links with messages since the last hand-over */
	struct lws *last;       /* the link of the last message counted */
	struct lws_context *ctx;
	lwsgo_ctx *cd;          /* whose loop this is (goLwsMidPass: its handle) */
	lws_usec_t due;         /* when timer fires (0: stopped) */
	lws_dll2_owner_t *suls; /* the context's timer lists */
	lws_sorted_usec_list_t probe; /* scheduled once to find them */
};

/* lwsgo_evloop_timers runs lws' timers that are due and sets the ev_timer
 * for the next one. */
static void
lwsgo_evloop_timers(struct lwsgo_evloop *e)
{
	lws_usec_t now = lws_now_usecs(), us;

	/* lws' timer lists are the service thread's: no pt lock (a no-op
	 * with LWS_MAX_SMP 1) */
	us = __lws_sul_service_ripe(e->suls, LWS_COUNT_PT_SUL_OWNERS, now);
	if (us && e->due == now + us)
		return;
	ev_timer_stop(e->loop, &e->timer);
	e->due = 0;
	if (!us) /* no timer left */
		return;
	/* libev counts from the time it read last, before this pass' callbacks */
	ev_now_update(e->loop);
	ev_timer_set(&e->timer, (ev_tstamp)us / 1e6, 0.);
	ev_timer_start(e->loop, &e->timer);
	e->due = now + us;
}

static void
lwsgo_evloop_prepare_cb(struct ev_loop *loop, ev_prepare *w, int revents)
{
	struct lwsgo_evloop *e = lws_container_of(w, struct lwsgo_evloop, prepare);

	(void)revents;
	lwsgo_evloop_timers(e);
	if (lwsgo_forced_service(e->ctx))
		ev_idle_start(loop, &e->forced); /* no-op if it is on */
}

static void
lwsgo_evloop_forced_cb(struct ev_loop *loop, ev_idle *w, int revents)
{
	struct lwsgo_evloop *e = lws_container_of(w, struct lwsgo_evloop, forced);

	(void)revents;
	ev_idle_stop(loop, w); /* the next prepare starts it again if need be */
	_lws_plat_service_forced_tsi(e->ctx, 0);
}

static void
lwsgo_evloop_timer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct lwsgo_evloop *e = lws_container_of(w, struct lwsgo_evloop, timer);

	(void)loop;
	(void)revents;
	e->due = 0; /* stopped: it does not repeat */
	lwsgo_evloop_timers(e);
}

static void
lwsgo_evloop_midpass_cb(struct ev_loop *loop, ev_check *w, int revents)
{
	struct lwsgo_evloop *e = lws_container_of(w, struct lwsgo_evloop,
						  midpass);

	(void)loop;
	(void)revents;
	e->received = 0;
	e->last = NULL;
	goLwsMidPass(e->cd->h);
}

void
lwsgo_evloop_received(lwsgo_ctx *cd, struct lws *wsi)
{
	struct lwsgo_evloop *e = cd->ev;

	if (!e || wsi == e->last)
		return;
	e->last = wsi;
	if (++e->received == LWSGO_MIDPASS_EVERY)
		ev_feed_event(e->loop, &e->midpass, EV_CUSTOM);
}

static void
lwsgo_evloop_probe_cb(lws_sorted_usec_list_t *sul)
{
	(void)sul; /* cancelled before it is due */
}

int
lwsgo_evloop_new(lwsgo_ctx *cd, void **loop)
{
	struct lwsgo_evloop *e;

#if defined(LWSGO_LIBEV_PLUGIN)
	if (access(LWSGO_LIBEV_PLUGIN, R_OK))
		return LWSGO_ERR_NO_PLUGIN;
#endif
	e = calloc(1, sizeof(*e));
	if (!e)
		return LWSGO_ERR_EVLOOP;
	/* epoll only (no fallback to select or poll); libev neither reads
	 * LIBEV_FLAGS from the environment nor touches the signal mask,
	 * which is Go's */
	e->loop = ev_loop_new(EVBACKEND_EPOLL | EVFLAG_NOENV |
			      EVFLAG_NOSIGMASK);
	if (!e->loop) {
		free(e);
		return LWSGO_ERR_EVLOOP;
	}
	ev_prepare_init(&e->prepare, lwsgo_evloop_prepare_cb);
	ev_timer_init(&e->timer, lwsgo_evloop_timer_cb, 0., 0.);
	ev_idle_init(&e->forced, lwsgo_evloop_forced_cb);
	ev_check_init(&e->midpass, lwsgo_evloop_midpass_cb);
	e->cd = cd;
	cd->ev = e;
	*loop = e->loop;

	return 0;
}

int
lwsgo_evloop_attach(lwsgo_ctx *cd)
{
	struct lwsgo_evloop *e = cd->ev;

	/* a year: cancelled at once */
	lws_sul_schedule(cd->ctx, 0, &e->probe, lwsgo_evloop_probe_cb,
			 (lws_usec_t)366 * 24 * 3600 * 1000000);
	e->suls = e->probe.list.owner;
	lws_sul_schedule(cd->ctx, 0, &e->probe, lwsgo_evloop_probe_cb,
			 LWS_SET_TIMER_USEC_CANCEL);
	if (!e->suls)
		return -1;
	e->ctx = cd->ctx;
	ev_prepare_start(e->loop, &e->prepare);

	return 0;
}

void
lwsgo_evloop_run(lwsgo_ctx *cd)
{
	cd->ev->received = 0;
	cd->ev->last = NULL;
	ev_run(cd->ev->loop, EVRUN_ONCE);
}

void
lwsgo_evloop_free(lwsgo_ctx *cd)
{
	struct lwsgo_evloop *e = cd->ev;

	if (!e)
		return;
	ev_prepare_stop(e->loop, &e->prepare);
	ev_timer_stop(e->loop, &e->timer);
	ev_idle_stop(e->loop, &e->forced);
	ev_clear_pending(e->loop, &e->midpass);
	ev_loop_destroy(e->loop);
	free(e);
	cd->ev = NULL;
}

#else /* !LWS_WITH_LIBEV */

int
lwsgo_evloop_new(lwsgo_ctx *cd, void **loop)
{
	(void)cd;
	(void)loop;
	return LWSGO_ERR_NO_LIBEV;
}

int
lwsgo_evloop_attach(lwsgo_ctx *cd)
{
	(void)cd;
	return -1;
}

void
lwsgo_evloop_run(lwsgo_ctx *cd)
{
	(void)cd;
}

void
lwsgo_evloop_received(lwsgo_ctx *cd, struct lws *wsi)
{
	(void)cd;
	(void)wsi;
}

void
lwsgo_evloop_free(lwsgo_ctx *cd)
{
	(void)cd;
}

#endif
