/* SPDX-License-Identifier: Apache-2.0 */
/*
 * export.c - local queue -> JetStream.
 *
 * A sliding window of up to EXPORT_WINDOW messages in flight: views are
 * taken from the queue (ipcq_recv_batch) and published asynchronously,
 * each with its priority in a header, while the PubAcks of those before
 * come back.  A view is released only once its own PubAck came back; a
 * view whose publish failed is given back (ipcq_nack), to be delivered and
 * published again.  So a bridge killed at any point loses nothing of an
 * at-least-once queue: what it held comes back to the queue.  The price is
 * a duplicate in the stream for each message JetStream stored but whose
 * PubAck did not reach the bridge: up to a window's worth after a kill.
 *
 * One handle holds at most BRIDGE_BATCH views (ipcq.h), so the window is
 * spread over EXPORT_HANDLES handles of the queue, opened through one
 * connection to the daemon; a slot remembers its handle.  Messages are
 * published in the order they were received, and the views are settled
 * (released or given back) in that order too: the window is a ring of
 * slots, from the oldest unsettled (head) to the next free (tail).
 *
 * Threads: the ack handler runs on a NATS client thread.  It only marks
 * the message's slot, found by the message's address (two messages alive
 * at once never share one; PubAcks come back in order, so the slot after
 * the last one marked is tried first), and wakes the main thread through
 * an eventfd when it waits and enough PubAcks came: a quarter of what is
 * in flight, at most EXPORT_WAKE_BATCH, so that the two threads do not
 * take turns for every message.  Every ipcq call is made on the main
 * thread.  A slot's message pointer is the handover: whoever takes it
 * (compare-exchange to NULL: the handler with a PubAck, the main thread
 * taking the message back) settles the slot's state, which the main
 * thread reads with acquire ordering before it touches the view.
 *
 * What never comes back: a PubAck the connection was owed when it broke
 * (what was buffered while the link was down goes out on reconnecting and
 * is answered at once), so a second after a reconnection, if the oldest
 * message still waits and was published before it, every message pending
 * is taken back from the client (js_PublishAsyncGetPendingList) and given
 * back; likewise once the oldest waited 10 s.  After a publish failed, no
 * more is taken until the window drained, then the bridge backs off.
 */
#include "config.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "bridge.h"
#include "util.h"

/* Queue handles the export receives through, each holding up to
 * BRIDGE_BATCH views. */
#define EXPORT_HANDLES 8u
/* Most messages published and not yet settled. */
#define EXPORT_WINDOW (EXPORT_HANDLES * BRIDGE_BATCH)
/* The oldest message waits this long for its PubAck at most... */
#define EXPORT_ACK_WAIT_MS 10000
/* ...and this long after the link came back, if published before. */
#define EXPORT_RECONNECT_WAIT_MS 1000
/* Most PubAcks the main thread sleeps through while the window is full. */
#define EXPORT_WAKE_BATCH 64u

enum slot_state {
	SLOT_PENDING,
	SLOT_ACKED,
	SLOT_FAILED,
};

struct export_slot {
	/* the main thread's alone */
	ipcq_msg m;
	unsigned handle;
	unsigned gen;     /* the local generation it was received in */
	int64_t sent_ms;  /* when it was published */
	/* shared with the ack handler */
	_Atomic(natsMsg *) sent; /* the message the client owns, until its PubAck */
	_Atomic enum slot_state state;
};

struct export_window {
	struct export_slot slot[EXPORT_WINDOW];
	uint64_t head, tail;       /* the main thread's: oldest unsettled, next free */
	_Atomic unsigned hint;     /* where the next PubAck is likely: after the last */
	_Atomic unsigned wake_in;  /* PubAcks to come before the waiting main thread is woken; 0: not waiting */
	int wake_fd;               /* eventfd */
	pthread_mutex_t err_lock;
	natsStatus first_err;      /* under err_lock: the first failure since the last report */
	jsErrCode first_jerr;
};

/* A queue handle of the window and what it holds in it. */
struct export_handle {
	ipcq_queue *q; /* handle 0's is the local_queue's */
	unsigned held;
};

struct exporter {
	const struct bridge_opts *opts;
	struct local_queue lq;
	struct js_link l;
	struct export_window *w;
	struct export_handle h[EXPORT_HANDLES];
	unsigned gen;       /* bumped when the handles are closed: their views went back */
	unsigned next;      /* handle to receive through first */
	unsigned seen_reconnects;
	int64_t reconnect_ms;    /* when the link came back, or -1 */
	uint64_t reconnect_tail; /* what was published before that */
	bool failing;            /* a publish failed: drain, then back off */
	unsigned failed, settled_since_failure;
	unsigned long long exported, given_back;
};

static int64_t now_ms(void)
{
	return (int64_t)(now_ns(CLOCK_MONOTONIC) / 1000000u);
}

static void export_note_failure(struct export_window *w, natsStatus err, jsErrCode jerr)
{
	pthread_mutex_lock(&w->err_lock);
	if (w->first_err == NATS_OK) {
		w->first_err = err;
		w->first_jerr = jerr;
	}
	pthread_mutex_unlock(&w->err_lock);
}

static void on_puback(jsCtx *js, natsMsg *msg, jsPubAck *pa, jsPubAckErr *pae, void *closure)
{
	struct export_window *w = closure;
	unsigned hint = atomic_load_explicit(&w->hint, memory_order_relaxed);

	(void)js;
	for (unsigned k = 0; k < EXPORT_WINDOW; k++) {
		unsigned i = (hint + k) % EXPORT_WINDOW;
		struct export_slot *s = &w->slot[i];
		natsMsg *expected = msg;
		unsigned left;

		if (atomic_load_explicit(&s->sent, memory_order_relaxed) != msg ||
		    !atomic_compare_exchange_strong(&s->sent, &expected, NULL))
			continue;
		if (!pa)
			export_note_failure(w, pae ? pae->Err : NATS_ERR, pae ? pae->ErrCode : 0);
		atomic_store(&s->state, pa ? SLOT_ACKED : SLOT_FAILED);
		atomic_store_explicit(&w->hint, (i + 1) % EXPORT_WINDOW, memory_order_relaxed);
		/* seq_cst, against the main thread's store of wake_in and load
		 * of the state: one of the two sees the other */
		left = atomic_load(&w->wake_in);
		while (left && !atomic_compare_exchange_weak(&w->wake_in, &left, left - 1))
			;
		if (left == 1) {
			uint64_t one = 1;

			if (write(w->wake_fd, &one, sizeof(one)) < 0) {
				/* the counter is full: the main thread is woken anyway */
			}
		}
		break;
	}
	natsMsg_Destroy(msg);
}

/* Publish a view into the window's next slot.  The slot is the client's
 * before the publish, since its PubAck may come before the call returns;
 * a message the client did not take counts as failed. */
static natsStatus export_publish(struct exporter *x, unsigned handle, const ipcq_msg *m)
{
	struct export_window *w = x->w;
	struct export_slot *s = &w->slot[w->tail % EXPORT_WINDOW];
	natsMsg *nm = NULL;
	char prio[16];
	natsStatus st;

	st = natsMsg_Create(&nm, x->opts->subject, NULL, m->data, (int)m->len);
	if (st == NATS_OK && m->prio) {
		snprintf(prio, sizeof(prio), "%u", m->prio);
		st = natsMsgHeader_Set(nm, BRIDGE_PRIO_HEADER, prio);
	}
	s->m = *m;
	s->handle = handle;
	s->gen = x->gen;
	s->sent_ms = now_ms();
	w->tail++;
	x->h[handle].held++;
	atomic_store_explicit(&s->state, st == NATS_OK ? SLOT_PENDING : SLOT_FAILED, memory_order_relaxed);
	atomic_store_explicit(&s->sent, st == NATS_OK ? nm : NULL, memory_order_release);
	if (st == NATS_OK)
		st = js_PublishMsgAsync(x->l.js, &nm, NULL);
	if (st != NATS_OK) {
		/* nm is still ours (NULL once the client took it) */
		natsMsg *expected = nm;

		if (nm && atomic_compare_exchange_strong(&s->sent, &expected, NULL))
			atomic_store_explicit(&s->state, SLOT_FAILED, memory_order_release);
		export_note_failure(w, st, 0);
		natsMsg_Destroy(nm);
	}
	return st;
}

/* Close the extra handles and the local queue (the views they held go
 * back to the queue), so that the next receive opens them anew. */
static void export_reset_local(struct exporter *x, int err, const char *what)
{
	for (unsigned i = 1; i < EXPORT_HANDLES; i++)
		if (x->h[i].q)
			ipcq_close(x->h[i].q);
	local_queue_reset(&x->lq, err, what);
	for (unsigned i = 0; i < EXPORT_HANDLES; i++)
		x->h[i] = (struct export_handle){ 0 };
	x->gen++;
}

/* Open the queue, and as many extra handles as will open: 0, or a
 * negative errno (-EINTR when stopping). */
static int export_open_local(struct exporter *x)
{
	int r;

	if (x->h[0].q)
		return 0;
	r = local_queue_ensure(&x->lq);
	if (r < 0)
		return r;
	x->h[0].q = x->lq.q;
	for (unsigned i = 1; i < EXPORT_HANDLES; i++)
		if (ipcq_open(x->lq.client, x->opts->queue, IPCQ_RECV, &x->h[i].q) < 0)
			x->h[i].q = NULL;
	return 0;
}

/* Release, in order from the oldest, the views whose PubAck came, and
 * give back those whose publish failed; stop at the first still pending. */
static void export_settle(struct exporter *x)
{
	struct export_window *w = x->w;
	enum slot_state state[EXPORT_WINDOW];
	unsigned n = 0;
	int err = 0;

	while (w->head + n < w->tail) {
		enum slot_state st =
			atomic_load_explicit(&w->slot[(w->head + n) % EXPORT_WINDOW].state, memory_order_acquire);

		if (st == SLOT_PENDING)
			break;
		state[n++] = st;
	}
	for (unsigned k = 0; k < n; k++) {
		struct export_slot *s = &w->slot[w->head++ % EXPORT_WINDOW];
		struct export_handle *h = &x->h[s->handle];
		int r = 0;

		if (state[k] == SLOT_FAILED) {
			x->failing = true;
			x->failed++;
			x->given_back++;
		} else {
			x->exported++;
		}
		x->settled_since_failure++;
		if (s->gen != x->gen)
			continue; /* its handle was closed: it went back then */
		h->held--;
		if (state[k] == SLOT_ACKED)
			r = ipcq_release(h->q, &s->m);
		else
			r = ipcq_nack(h->q, &s->m, 0);
		if (r < 0 && !err)
			err = r;
	}
	if (err)
		export_reset_local(x, err, "release failed");
}

/* Take back from the client every message still waiting for its PubAck:
 * they count as failed (given back).  A PubAck that comes later is
 * dropped by the client. */
static void export_take_back(struct exporter *x)
{
	struct export_window *w = x->w;
	natsMsgList pending = { 0 };
	bool got = js_PublishAsyncGetPendingList(&pending, x->l.js) == NATS_OK;

	/* a message whose PubAck the handler took first is the handler's to
	 * settle */
	for (uint64_t i = w->head; i < w->tail; i++) {
		struct export_slot *s = &w->slot[i % EXPORT_WINDOW];

		if (atomic_exchange(&s->sent, NULL))
			atomic_store_explicit(&s->state, SLOT_FAILED, memory_order_release);
	}
	export_note_failure(w, NATS_TIMEOUT, 0);
	if (got)
		natsMsgList_Destroy(&pending);
}

/* Whether the oldest message waited too long for its PubAck (see the top
 * of the file). */
static bool export_overdue(struct exporter *x)
{
	struct export_window *w = x->w;
	unsigned reconnects = atomic_load(&x->l.reconnects);
	const struct export_slot *s;
	int64_t now;
	bool pending;

	if (w->head == w->tail) {
		x->seen_reconnects = reconnects;
		x->reconnect_ms = -1;
		return false;
	}
	now = now_ms();
	if (reconnects != x->seen_reconnects) {
		x->seen_reconnects = reconnects;
		x->reconnect_ms = now;
		x->reconnect_tail = w->tail;
	}
	s = &w->slot[w->head % EXPORT_WINDOW];
	pending = atomic_load_explicit(&s->state, memory_order_acquire) == SLOT_PENDING;
	if (!pending)
		return false;
	if (now - s->sent_ms >= EXPORT_ACK_WAIT_MS)
		return true;
	return x->reconnect_ms >= 0 && w->head < x->reconnect_tail && js_link_connected(&x->l) &&
	       now - x->reconnect_ms >= EXPORT_RECONNECT_WAIT_MS;
}

/* Receive through the handles with room, and publish: how many were
 * taken, or a negative errno after which the local side was reset. */
static int export_fill(struct exporter *x)
{
	struct export_window *w = x->w;
	ipcq_msg msgs[BRIDGE_BATCH];
	int taken = 0;

	for (unsigned k = 0; k < EXPORT_HANDLES && !x->failing; k++) {
		unsigned hi = (x->next + k) % EXPORT_HANDLES;
		struct export_handle *h = &x->h[hi];
		unsigned room = EXPORT_WINDOW - (unsigned)(w->tail - w->head);
		unsigned want = BRIDGE_BATCH - h->held;
		int n = 0, r;

		if (!room)
			break;
		if (!h->q || !want)
			continue;
		if (want > room)
			want = room;
		/* one receive hands out at most a chunk: take what else waits */
		while ((unsigned)n < want && (r = ipcq_recv_batch(h->q, msgs + n, want - (unsigned)n, 0)) > 0)
			n += r;
		for (int i = 0; i < n; i++) {
			if (!x->failing) {
				if (export_publish(x, hi, &msgs[i]) != NATS_OK)
					x->failing = true; /* its slot failed: given back when settled */
				continue;
			}
			/* after one the client refused: give back the rest at once */
			ipcq_nack(h->q, &msgs[i], 0);
			x->failed++;
			x->given_back++;
			x->settled_since_failure++;
		}
		taken += n;
		if (n)
			x->next = (hi + 1) % EXPORT_HANDLES;
		if (r < 0 && local_error_needs_reopen(r)) {
			export_reset_local(x, r, "receive failed");
			return r;
		}
	}
	return taken;
}

/* Wait up to timeout_ms for a PubAck, or with for_messages (and room in
 * the window) for a message on a handle that may take more. */
static void export_wait(struct exporter *x, int timeout_ms, bool for_messages)
{
	struct export_window *w = x->w;
	struct pollfd pfd[1 + EXPORT_HANDLES];
	nfds_t n = 0;
	unsigned wake_in;
	uint64_t v;

	pfd[n++] = (struct pollfd){ .fd = w->wake_fd, .events = POLLIN };
	if (w->tail - w->head >= EXPORT_WINDOW)
		for_messages = false;
	for (unsigned i = 0; for_messages && i < EXPORT_HANDLES; i++) {
		int fd;

		if (!x->h[i].q || x->h[i].held >= BRIDGE_BATCH || (fd = ipcq_fd(x->h[i].q)) < 0)
			continue;
		pfd[n++] = (struct pollfd){ .fd = fd, .events = POLLIN };
	}
	/* woken once a quarter of what is in flight was acknowledged; not at
	 * all if that many are already (PubAcks come in order) */
	wake_in = (unsigned)(w->tail - w->head) / 4;
	wake_in = wake_in < 1 ? 1 : wake_in > EXPORT_WAKE_BATCH ? EXPORT_WAKE_BATCH : wake_in;
	atomic_store(&w->wake_in, wake_in);
	if (w->head == w->tail || atomic_load(&w->slot[(w->head + wake_in - 1) % EXPORT_WINDOW].state) == SLOT_PENDING)
		poll(pfd, n, timeout_ms);
	atomic_store(&w->wake_in, 0);
	if (read(w->wake_fd, &v, sizeof(v)) < 0) {
		/* nothing to read (EAGAIN): it was not written */
	}
}

/* After a failure, once the window drained: say so and back off.  False
 * when stopping. */
static bool export_after_failure(struct exporter *x, int *backoff)
{
	struct export_window *w = x->w;
	natsStatus err;
	jsErrCode jerr;
	char what[128];

	pthread_mutex_lock(&w->err_lock);
	err = w->first_err;
	jerr = w->first_jerr;
	w->first_err = NATS_OK;
	w->first_jerr = 0;
	pthread_mutex_unlock(&w->err_lock);
	snprintf(what, sizeof(what), "%u of %u messages not stored by JetStream; given back", x->failed,
	         x->settled_since_failure);
	js_report(what, err == NATS_OK ? NATS_ERR : err, jerr);
	x->failing = false;
	x->failed = 0;
	x->settled_since_failure = 0;
	if (!bridge_sleep(*backoff))
		return false;
	*backoff = *backoff < 2500 ? *backoff * 2 : 5000;
	return true;
}

/* Stopping: wait a while for the PubAcks in flight, and give back the
 * rest. */
static void export_drain(struct exporter *x)
{
	int64_t until = now_ms() + 2000;

	export_settle(x);
	while (x->w->head < x->w->tail && now_ms() < until && !export_overdue(x)) {
		export_wait(x, 100, false);
		export_settle(x);
	}
	if (x->w->head < x->w->tail) {
		export_take_back(x);
		export_settle(x);
	}
}

int bridge_export(const struct bridge_opts *opts)
{
	static struct export_window window = { .err_lock = PTHREAD_MUTEX_INITIALIZER, .wake_fd = -1 };
	struct exporter x = { .opts = opts, .w = &window, .reconnect_ms = -1 };
	int status = 0;
	int backoff = 100;
	bool announced = false;

	window.wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (window.wake_fd < 0) {
		perror("ipcq-bridge: eventfd");
		return 1;
	}
	if (js_link_open(&x.l, opts)) {
		close(window.wake_fd);
		return 1;
	}
	x.l.jsopts.PublishAsync.MaxPending = EXPORT_WINDOW;
	x.l.jsopts.PublishAsync.AckHandler = on_puback;
	x.l.jsopts.PublishAsync.AckHandlerClosure = &window;
	if (js_check_stream(&x.l, opts)) {
		js_link_close(&x.l);
		close(window.wake_fd);
		return 1;
	}
	bridge_ready();
	local_queue_init(&x.lq, opts, IPCQ_RECV);
	while (!bridge_stopping) {
		bool idle = window.head == window.tail;
		int r;

		export_settle(&x);
		if (export_overdue(&x)) {
			export_take_back(&x);
			continue;
		}
		if (x.failing) {
			announced = false;
			if (!idle)
				export_wait(&x, 100, false);
			else if (!export_after_failure(&x, &backoff))
				break;
			continue;
		}
		if (!js_link_connected(&x.l)) {
			bridge_status("waiting for NATS at %s", opts->url);
			announced = false;
			if (idle)
				bridge_sleep(200);
			else
				export_wait(&x, 100, false);
			continue;
		}
		r = export_open_local(&x);
		if (r == -EINTR)
			break;
		if (r < 0) {
			status = 1;
			break;
		}
		if (!announced) {
			bridge_status("exporting queue '%s' to subject '%s' at %s", opts->queue, opts->subject,
			              opts->url);
			announced = true;
		}
		r = export_fill(&x);
		if (r < 0) {
			announced = false; /* the local side was reset */
			continue;
		}
		if (r > 0) {
			if (!x.failing)
				backoff = 100;
			continue;
		}
		export_wait(&x, idle ? 500 : 100, true);
	}
	export_drain(&x);
	if (opts->verbose)
		fprintf(stderr, "ipcq-bridge: exported %llu messages (%llu given back to be sent again)\n",
		        x.exported, x.given_back);
	for (unsigned i = 1; i < EXPORT_HANDLES; i++)
		if (x.h[i].q)
			ipcq_close(x.h[i].q);
	local_queue_deinit(&x.lq);
	js_link_close(&x.l);
	close(window.wake_fd);
	return status;
}
