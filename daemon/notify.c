/* SPDX-License-Identifier: Apache-2.0 */
/*
 * notify.c - signal notification: the daemon tells every listener of a
 * queue (ipcq_notify) when the queue goes from empty to non-empty.
 *
 * Detection.  The kernel lets one process register for mq_notify on a
 * message queue, so the daemon owns that registration and fans out.  It
 * arms its own mq descriptor of a queue while the queue has a listener
 * (SIGEV_SIGNAL with NOTIFY_SIGNAL, a realtime signal it blocks and reads
 * through the event loop, si_value the queue id) and disarms it when the
 * last one goes.  A registration fires once, when a message lands in an
 * empty window, and is gone then: the daemon arms again first and looks
 * at the queue after, so a message that lands in between is seen by the
 * look if not by the kernel.  What mq_notify does not report:
 *  - a message handed straight to a receiver blocked in mq_receive, which
 *    never waited (nothing to report), and a queue that fills only in its
 *    backlog while the window stays empty, which the window's
 *    notification cannot see;
 *  - a registration the kernel dropped: it drops the registration of a
 *    process that closes any descriptor of the queue, and the daemon
 *    closes one after every open (the client's copy, once passed), so it
 *    arms again after each (notify_queue_mq_closed), and one whenever a
 *    client passes it a descriptor of the mq in place of another it asks
 *    for (ctl.c closes what it does not keep); a notification lost to a
 *    full signal queue;
 *  - a registration a client took: every client holds a descriptor of the
 *    mq and may call mq_notify on it first.  The daemon then warns once,
 *    naming the process (the mq's own status line tells it), and keeps
 *    trying.
 * For all of these the periodic sweep (notify_sweep, every second) arms
 * again if the registration is gone and looks at every queue with
 * listeners: a signal may come up to a sweep late, never not at all.
 *
 * A look.  The daemon reads counters only, never a message and never a
 * lock: the window's length (mq_getattr: the kernel's count, which no
 * client can bend), and the messages in the backlog and the messages
 * received so far (the ring header's counters, which clients keep).
 * Messages wait when the window or the backlog holds some.  The daemon
 * keeps what its last look read, and a transition is:
 *  - after a notification, or after arming again when one may have been
 *    lost: messages wait, and the queue may have been empty since the
 *    last look, that is nothing waited then, or receivers took at least
 *    as many messages since as the window and the backlog held then (the
 *    daemon's own nudges left out: receivers do not count them).  A
 *    notification alone is not enough: receivers take from the backlog
 *    while the window is empty, and the next move from the backlog into
 *    the window fires it though the queue never emptied; and a look after
 *    arming may already have seen what a notification reports (a client
 *    sends as soon as it has its descriptor, before the daemon closed its
 *    copy and armed again);
 *  - at a sweep while the registration held: messages wait and none did
 *    at the last look, so the same transition is never told twice.
 * Both err towards a signal too many rather than a listener asleep beside
 * messages: an mq message may carry a batch, so what the window held is
 * counted low; where notifications went missing (the registration was
 * lost, or is another process's), every sweep takes the first rule, so a
 * steady flow then gets a signal a sweep.  The depth counter is not used:
 * a client killed between a step and its count leaves it high until the
 * queue is at rest, and a daemon that believed it would wait for an
 * emptying that already happened.  A transition that receivers undid
 * before the daemon looked (nothing waits any more) is not told: there is
 * nothing left to receive.  A client of the queue that spoils the
 * counters can make signals spurious, late or missing, as it can already
 * drop messages (README, threat model).
 *
 * Delivery.  Each listener gets its signal with si_code SI_QUEUE and
 * si_value.sival_int the queue id, through pidfd_send_signal on the pidfd
 * the daemon already watches its process by (peer.c), so a pid reused
 * after the listener died is never signalled; sigqueue only where
 * pidfd_send_signal is not available.  Nothing blocks.  A listener that
 * is gone or that the daemon may no longer signal is dropped; one whose
 * queue of realtime signals is full has signals waiting already.
 *
 * Listeners are bounded per queue and per user (notify.h), and live as
 * long as their registration (notify.h).  After a restart of the daemon
 * there are none: the connections they came through are gone.
 */
#include "config.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "log.h"
#include "notify.h"
#include "peer.h"
#include "queue.h"
#include "util.h"

/* what the kernel's mq_notify sends the daemon */
#define NOTIFY_SIGNAL SIGRTMIN

struct notify_listener {
	struct notify_listener *next;
	const struct conn *conn; /* the registration's connection */
	struct peer *p;          /* and its process */
	uid_t uid;
	int signo;
};

/* What a look reads of a queue: counters only. */
struct level {
	uint64_t window;   /* mq messages in the window (the kernel's count) */
	uint64_t backlog;  /* messages in the backlog (the clients' count) */
	uint64_t received; /* messages received so far (the clients' count) */
};

/* A queue's listeners and what the daemon last saw of the queue. */
struct notify_queue {
	struct notify_listener *listeners;
	unsigned n;
	bool taken;        /* another process holds the mq's registration (warned) */
	bool waiting;      /* the last look found messages waiting */
	struct level seen; /* what it read */
	uint64_t held;     /* messages the window and the backlog held then, at least */
	unsigned nudges;   /* the daemon's nudges that may still be in the window */
};

enum look_cause {
	LOOK_SWEEP,  /* the registration held: only a plain empty -> non-empty */
	LOOK_LANDED, /* a message landed in an empty window, reported or maybe not */
};

bool notify_signo_valid(int signo)
{
	if (signo >= SIGRTMIN && signo <= SIGRTMAX)
		return true;
	return signo > 0 && signo < 32 && signo != SIGKILL && signo != SIGSTOP;
}

/* ---- delivery ---- */

static int send_signal(const struct peer *p, int signo, uint32_t queue_id)
{
	union sigval value = { .sival_int = (int)queue_id };
	siginfo_t si;

	memset(&si, 0, sizeof(si));
	si.si_signo = signo;
	si.si_code = SI_QUEUE;
	si.si_pid = getpid();
	si.si_uid = getuid();
	si.si_value = value;
	if (syscall(SYS_pidfd_send_signal, p->pidfd, signo, &si, 0) == 0)
		return 0;
	if (errno != ENOSYS)
		return -errno;
	return sigqueue(p->pid, signo, value) == 0 ? 0 : -errno;
}

static void listener_free(struct queue *q, struct notify_listener **pp, const char *why)
{
	static struct log_ratelimit lines;
	struct notify_listener *l = *pp;

	*pp = l->next;
	q->notify->n--;
	log_limited(&lines, LOG_LEVEL_DEBUG, "queue %s: listener pid %d (signal %d) dropped (%s); %u listeners left",
	            q->rec.name, (int)l->p->pid, l->signo, why, q->notify->n);
	free(l);
}

/* Signal the listeners of q (only: just that one), dropping those that
 * cannot be signalled any more. */
static void fan_out(struct daemon *d, struct queue *q, const struct notify_listener *only)
{
	static struct log_ratelimit failures;
	struct notify_listener **pp = &q->notify->listeners;

	while (*pp) {
		struct notify_listener *l = *pp;
		int ret;

		if (only && l != only) {
			pp = &l->next;
			continue;
		}
		ret = send_signal(l->p, l->signo, q->id);
		if (ret == -ESRCH) {
			listener_free(q, pp, "it exited");
			continue;
		}
		if (ret == -EPERM) {
			listener_free(q, pp, "the daemon may no longer signal it");
			continue;
		}
		if (ret < 0 && ret != -EAGAIN)
			log_limited(&failures, LOG_LEVEL_WARNING, "queue %s: cannot signal listener pid %d: %s",
			            q->rec.name, (int)l->p->pid, strerror(-ret));
		pp = &l->next;
	}
}

/* ---- detection ---- */

/* The pid that holds the mq's notification registration, from the status
 * line the kernel gives for a read of an mq descriptor; -1 if unknown. */
static pid_t registration_owner(mqd_t mq)
{
	char line[128], *p;
	ssize_t n = pread(mq, line, sizeof(line) - 1, 0);

	if (n <= 0)
		return -1;
	line[n] = '\0';
	p = strstr(line, "NOTIFY_PID:");
	return p ? (pid_t)strtol(p + strlen("NOTIFY_PID:"), NULL, 10) : -1;
}

enum arm_result {
	ARM_NEW,  /* armed now: a landing since the last look may have gone unreported */
	ARM_HELD, /* it was armed already */
	ARM_NONE, /* another process holds it, or mq_notify failed: landings go unreported */
};

static enum arm_result arm(struct queue *q)
{
	static struct log_ratelimit lines;
	struct notify_queue *nq = q->notify;
	struct sigevent ev = { .sigev_notify = SIGEV_SIGNAL };
	pid_t owner;

	ev.sigev_signo = NOTIFY_SIGNAL;
	ev.sigev_value.sival_int = (int)q->id;
	if (mq_notify(q->mq, &ev) == 0) {
		if (nq->taken)
			log_limited(&lines, LOG_LEVEL_INFO, "queue %s: the daemon holds its notification again",
			            q->rec.name);
		nq->taken = false;
		return ARM_NEW;
	}
	if (errno != EBUSY) {
		log_limited(&lines, LOG_LEVEL_WARNING, "queue %s: mq_notify: %s", q->rec.name, strerror(errno));
		return ARM_NONE;
	}
	owner = registration_owner(q->mq);
	if (owner < 0 || owner == getpid())
		return ARM_HELD;
	if (!nq->taken)
		log_limited(&lines, LOG_LEVEL_WARNING,
		            "queue %s: process %d holds its mq notification (mq_notify on the descriptor it "
		            "was given): its listeners are signalled by the daemon's sweep, up to a second "
		            "late, until it lets go",
		            q->rec.name, (int)owner);
	nq->taken = true;
	return ARM_NONE;
}

static void disarm(struct queue *q)
{
	/* removes the registration only if it is the daemon's */
	mq_notify(q->mq, NULL);
}

static void queue_notify_free(struct queue *q)
{
	if (q->meta)
		atomic_store_explicit(&q->meta->listened, 0, memory_order_relaxed);
	disarm(q);
	free(q->notify);
	q->notify = NULL;
}

/* After a fan-out: the last listener may have been dropped. */
static void forget_if_idle(struct queue *q)
{
	if (q->notify && q->notify->n == 0)
		queue_notify_free(q);
}

static int read_level(const struct queue *q, struct level *out)
{
	struct mq_attr attr;

	if (mq_getattr(q->mq, &attr) < 0)
		return -errno;
	*out = (struct level){ .window = attr.mq_curmsgs > 0 ? (uint64_t)attr.mq_curmsgs : 0 };
	if (q->ring.hdr && !queue_quarantined(q)) {
		/* clamped: the sum with the window stays an int64_t */
		/* (a queue with lanes counts theirs together: lanes_backlog) */
		out->backlog = MIN(atomic_load_explicit(&q->ring.hdr->backlog, memory_order_relaxed),
		                   (uint64_t)INT32_MAX);
		out->backlog += MIN(atomic_load_explicit(&q->ring.hdr->lanes_backlog, memory_order_relaxed),
		                    (uint64_t)INT32_MAX);
		out->received = atomic_load_explicit(&q->ring.hdr->received, memory_order_relaxed);
	}
	return 0;
}

/* Look at q, tell its listeners if it went from empty to non-empty (see
 * the top comment), and remember what was seen. */
static void look(struct daemon *d, struct queue *q, enum look_cause cause)
{
	struct notify_queue *nq = q->notify;
	struct level now;
	bool waiting, emptied, transition;
	int64_t taken;

	if (read_level(q, &now) < 0)
		return;
	waiting = now.window > 0 || now.backlog > 0;
	/* signed: a client giving a message back counts it off again */
	taken = (int64_t)(now.received - nq->seen.received);
	emptied = !nq->waiting || taken >= (int64_t)nq->held;
	transition = waiting && (cause == LOOK_SWEEP ? !nq->waiting : emptied);
	if (now.window == 0)
		nq->nudges = 0;
	nq->waiting = waiting;
	nq->seen = now;
	nq->held = now.window - MIN(now.window, nq->nudges) + now.backlog;
	if (transition)
		fan_out(d, q, NULL);
}

static void arm_and_look(struct daemon *d, struct queue *q)
{
	look(d, q, arm(q) == ARM_HELD ? LOOK_SWEEP : LOOK_LANDED);
}

static struct queue *queue_by_id(struct daemon *d, uint32_t id)
{
	for (struct queue *q = d->queues; q; q = q->next)
		if (q->id == id)
			return q;
	return NULL;
}

static int on_mq_notify(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata)
{
	struct daemon *d = userdata;
	struct queue *q;

	if (si->ssi_code != SI_MESGQ)
		return 0;
	q = queue_by_id(d, (uint32_t)si->ssi_int);
	if (!q || !q->notify)
		return 0; /* a queue gone, or without listeners since */
	/* again first, then look: what lands in between is in the look */
	arm(q);
	look(d, q, LOOK_LANDED);
	forget_if_idle(q);
	return 0;
}

void notify_sweep(struct daemon *d)
{
	for (struct queue *q = d->queues; q; q = q->next) {
		if (q->notify) {
			arm_and_look(d, q);
			forget_if_idle(q);
		}
	}
}

int notify_init(struct daemon *d)
{
	sigset_t mask;

	sigemptyset(&mask);
	sigaddset(&mask, NOTIFY_SIGNAL);
	if (sigprocmask(SIG_BLOCK, &mask, NULL) < 0)
		return -errno;
	return sd_event_add_signal(d->event, NULL, NOTIFY_SIGNAL, on_mq_notify, d);
}

/* ---- listeners ---- */

/* Drop q's listeners that match conn (if given) and p (if given). */
static void drop_listeners(struct daemon *d, struct queue *q, const struct conn *conn, const struct peer *p,
                           const char *why)
{
	struct notify_listener **pp;

	if (!q->notify)
		return;
	pp = &q->notify->listeners;
	while (*pp) {
		if ((!conn || (*pp)->conn == conn) && (!p || (*pp)->p == p))
			listener_free(q, pp, why);
		else
			pp = &(*pp)->next;
	}
	if (q->notify->n == 0)
		queue_notify_free(q);
}

static unsigned listeners_of_uid(const struct daemon *d, uid_t uid)
{
	unsigned n = 0;

	for (const struct queue *q = d->queues; q; q = q->next)
		for (const struct notify_listener *l = q->notify ? q->notify->listeners : NULL; l; l = l->next)
			n += l->uid == uid;
	return n;
}

static struct notify_listener *find_listener(const struct queue *q, const struct conn *conn)
{
	for (struct notify_listener *l = q->notify ? q->notify->listeners : NULL; l; l = l->next)
		if (l->conn == conn)
			return l;
	return NULL;
}

/* Whether one more listener of uid fits q and the user's bound; 0 or
 * -EUSERS with the reason in why. */
static int check_room(const struct daemon *d, const struct queue *q, uid_t uid, bool privileged, char *why,
                      size_t whycap)
{
	unsigned held;

	if (q->notify && q->notify->n >= NOTIFY_LISTENERS_PER_QUEUE) {
		snprintf(why, whycap, "queue '%s' has %u listeners, the most one queue takes", q->rec.name,
		         q->notify->n);
		return -EUSERS;
	}
	held = privileged ? 0 : listeners_of_uid(d, uid);
	if (held >= NOTIFY_LISTENERS_PER_USER) {
		snprintf(why, whycap, "uid %u holds %u listeners, the most one user may hold", (unsigned)uid, held);
		return -EUSERS;
	}
	return 0;
}

/* Take conn's listener of q out of the list, to be put back with its new
 * signal. */
static void listener_unlink(struct queue *q, struct notify_listener *l)
{
	struct notify_listener **pp = &q->notify->listeners;

	while (*pp != l)
		pp = &(*pp)->next;
	*pp = l->next;
	q->notify->n--;
}

int notify_register(struct daemon *d, struct queue *q, const struct conn *conn, struct peer *p, uid_t uid,
                    bool privileged, int signo, char *why, size_t whycap)
{
	static struct log_ratelimit lines;
	struct notify_listener *l = find_listener(q, conn);
	int ret;

	if (!notify_signo_valid(signo)) {
		snprintf(why, whycap,
		         "signal %d cannot carry notifications: use a realtime signal (%d to %d) or a "
		         "catchable one below 32 (not SIGKILL or SIGSTOP)",
		         signo, SIGRTMIN, SIGRTMAX);
		return -EINVAL;
	}
	/* signal 0 checks that the daemon may signal the process at all */
	if (syscall(SYS_pidfd_send_signal, p->pidfd, 0, NULL, 0) < 0 && (errno == EPERM || errno == ESRCH)) {
		ret = -errno;
		if (ret == -EPERM)
			snprintf(why, whycap, "the daemon (uid %u) may not send signals to pid %d", (unsigned)getuid(),
			         (int)p->pid);
		else
			snprintf(why, whycap, "pid %d has exited", (int)p->pid);
		return ret;
	}
	if (l) {
		listener_unlink(q, l);
	} else {
		ret = check_room(d, q, uid, privileged, why, whycap);
		if (ret < 0)
			return ret;
		if (!q->notify && !(q->notify = calloc(1, sizeof(*q->notify))))
			return -ENOMEM;
		l = calloc(1, sizeof(*l));
		if (!l) {
			forget_if_idle(q);
			return -ENOMEM;
		}
		if (q->meta)
			atomic_store_explicit(&q->meta->listened, 1, memory_order_relaxed);
	}
	/* the others first, with what this look finds; then the new one, at
	 * once if messages wait */
	arm_and_look(d, q);
	*l = (struct notify_listener){
		.next = q->notify->listeners, .conn = conn, .p = p, .uid = uid, .signo = signo
	};
	q->notify->listeners = l;
	q->notify->n++;
	log_limited(&lines, LOG_LEVEL_DEBUG, "queue %s: listener pid %d registered for signal %d; %u listeners",
	            q->rec.name, (int)p->pid, signo, q->notify->n);
	if (q->notify->waiting)
		fan_out(d, q, l);
	forget_if_idle(q);
	return 0;
}

void notify_unregister(struct daemon *d, struct queue *q, const struct conn *conn)
{
	if (find_listener(q, conn))
		drop_listeners(d, q, conn, NULL, "it unregistered");
}

void notify_conn_gone(struct daemon *d, const struct conn *conn)
{
	for (struct queue *q = d->queues; q; q = q->next)
		drop_listeners(d, q, conn, NULL, "its connection closed");
}

void notify_peer_gone(struct daemon *d, const struct peer *p)
{
	for (struct queue *q = d->queues; q; q = q->next)
		drop_listeners(d, q, NULL, p, "it exited");
}

void notify_queue_gone(struct daemon *d, struct queue *q, bool deleted)
{
	if (!q->notify)
		return;
	disarm(q);
	if (deleted)
		fan_out(d, q, NULL); /* the last: their receives say -EIDRM now */
	drop_listeners(d, q, NULL, NULL, deleted ? "the queue was deleted" : "the daemon stops");
}

void notify_queue_reset(struct daemon *d, struct queue *q)
{
	if (!q->notify)
		return;
	/* emptied by no receiver, or new objects with new counters: what was
	 * seen says nothing any more */
	q->notify->waiting = false;
	q->notify->seen = (struct level){ 0 };
	q->notify->held = q->notify->nudges = 0;
	arm_and_look(d, q);
	forget_if_idle(q);
}

void notify_queue_mq_closed(struct daemon *d, struct queue *q)
{
	if (!q->notify)
		return;
	arm_and_look(d, q);
	forget_if_idle(q);
}

void notify_queue_nudged(struct queue *q)
{
	if (q->notify)
		q->notify->nudges++;
}

unsigned notify_listeners(const struct queue *q)
{
	return q->notify ? q->notify->n : 0;
}
