/* SPDX-License-Identifier: Apache-2.0 */
/*
 * notify.h - signal notification: the processes that asked, through
 * ipcq_notify, for a signal when a queue becomes non-empty, and the
 * daemon's fan-out to them (the design is notify.c's top comment).
 *
 * A registration belongs to a connection (the ipcq_client it came
 * through) and its process: it ends when that process unregisters (signal
 * 0) or closes its handle, when the connection closes, when the process
 * dies, and when the queue is deleted.
 */
#ifndef IPCQ_NOTIFY_H
#define IPCQ_NOTIFY_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

struct daemon;
struct queue;
struct conn;
struct peer;

/* Listeners one queue takes, and one user may hold over all queues
 * (root and the daemon's user are bound by the first only).  Past them a
 * registration is refused with -EUSERS. */
#define NOTIFY_LISTENERS_PER_QUEUE 64u
#define NOTIFY_LISTENERS_PER_USER 256u

/* Whether signo may carry notifications: a realtime signal, or a classic
 * one a process can catch (not SIGKILL, SIGSTOP, nor glibc's own 32, 33). */
bool notify_signo_valid(int signo);

/* The daemon's own signal for mq_notify, blocked and watched through the
 * event loop; 0 or a negative errno. */
int notify_init(struct daemon *d);
void notify_deinit(struct daemon *d);

/* Register conn's process p (uid, privileged: policy_uid_privileged) for
 * signo on q, or replace the signal of its registration; it is signalled
 * at once if q holds messages.  The caller has checked that it may
 * receive from q.  0, or a negative errno with the reason in why. */
int notify_register(struct daemon *d, struct queue *q, const struct conn *conn, struct peer *p, uid_t uid,
                    bool privileged, int signo, char *why, size_t whycap);
/* End conn's registration on q, if it has one. */
void notify_unregister(struct daemon *d, struct queue *q, const struct conn *conn);

/* Hooks: a connection closed; a client process died (peer.c); q is
 * going (deleted: its listeners get one last signal, so that they learn
 * it; the daemon stopping: they do not); q was emptied by the daemon
 * (purge) or got new kernel objects (queue_rebuild), and its listeners
 * stay; the daemon closed a descriptor of q's mq, which ends its
 * mq_notify registration (the kernel drops the registration of a process
 * that closes any descriptor of the queue). */
void notify_conn_gone(struct daemon *d, const struct conn *conn);
void notify_peer_gone(struct daemon *d, const struct peer *p);
void notify_queue_gone(struct daemon *d, struct queue *q, bool deleted);
void notify_queue_reset(struct daemon *d, struct queue *q);
void notify_queue_mq_closed(struct daemon *d, struct queue *q);
/* The daemon put a nudge in q's window (queue.c): an mq message that is
 * no message, which receivers take without counting it. */
void notify_queue_nudged(struct queue *q);

/* The periodic sweep: re-arm what was lost and catch transitions mq_notify
 * does not report (see notify.c). */
void notify_sweep(struct daemon *d);

/* Listeners of q (for the log and the tests). */
unsigned notify_listeners(const struct queue *q);

#endif
