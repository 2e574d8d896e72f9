/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ipcq.h - client API of ipcbroker, a local message broker.
 *
 * A client connects to the daemon (ipcbrokerd) over its control socket,
 * opens named queues, and then moves messages itself: small messages
 * travel inline in a POSIX message queue, larger ones (and batches of
 * small ones) through the queue's shared-memory ring with only a
 * descriptor on the mq; what does not fit the mq waits in the ring (see
 * "Depth and batches" below).  The daemon checks permissions and hands out
 * the kernel objects; it is not on the data path.
 *
 * Conventions (liburing style):
 *  - every call returns 0 or a non-negative count on success and a
 *    negative errno value on failure; errno is not used to report errors.
 *  - timeouts are in milliseconds: -1 waits forever, 0 does not wait
 *    (for a message, for room); a call with 0 may still wait up to 100 ms
 *    for another client's turn at a queue's lock, held for microseconds
 *    unless its holder was descheduled.
 *  - the library never prints and never exits.
 *
 * Thread safety: an ipcq_client may be used from several threads (control
 * requests are serialized internally).  An ipcq_queue may be used by
 * several threads at once for send/recv/loan/publish/recv_view/release;
 * ipcq_close() must not race with other calls on the same queue.
 *
 * Processes: a queue handle belongs to the process that opened it (what it
 * holds in shared memory is marked with the id the daemon gave that
 * process).  In a child after fork(), calls on the parent's handles return
 * -ECHILD: connect and open anew there.  ipcq_close() in the child frees
 * the child's copy without touching the parent's holdings.
 */
#ifndef IPCQ_H
#define IPCQ_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

#include "ipcq-version.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Longest queue name: letters, digits, '_', '-' and '.' (not first). */
#define IPCQ_NAME_MAX 64
/* Longest namespace name: letters, digits, '_' and '-'. */
#define IPCQ_NAMESPACE_MAX 32

typedef struct ipcq_client ipcq_client;
typedef struct ipcq_queue ipcq_queue;

/* ipcq_open() flags */
enum {
	IPCQ_SEND = 1u << 0,   /* the caller will send */
	IPCQ_RECV = 1u << 1,   /* the caller will receive */
	IPCQ_CREATE = 1u << 2, /* create the queue if it does not exist */
};

/* Message flags reported in ipcq_msg.flags */
enum {
	IPCQ_MSG_REDELIVERED = 1u << 0, /* delivered again after a client died */
};

/* A message read in place (ipcq_recv_view). data stays valid until
 * ipcq_release(). */
typedef struct ipcq_msg {
	const void *data;
	size_t len;
	unsigned prio;
	unsigned flags;
	unsigned deliveries; /* times delivered, this time included: 1 the first time */
	unsigned reserved_;
	uint64_t opaque_[2]; /* the library's own: which message this is */
} ipcq_msg;

/* Geometry of a queue. Zero fields mean "the daemon's default". */
typedef struct ipcq_geometry {
	uint32_t max_msgs;    /* the POSIX mq's window: mq messages receivers take from */
	uint32_t msg_size;    /* bytes per mq message (inline limit + header) */
	uint64_t ring_size;   /* bytes of the shared-memory ring: the queue's depth */
	uint64_t max_payload; /* largest message accepted */
	uint64_t max_depth;   /* most messages waiting; 0: only the ring bounds it */
	uint32_t prefetch;    /* most messages one receiver takes ahead (default 16) */
	/* IPCQ_SENDERS_ISOLATED: each sending user writes into a ring of its
	 * own (its processes share it), which no other can read or write; or
	 * IPCQ_SENDERS_SHARED: senders share the queue's ring (faster with
	 * many senders, but a sender can read and spoil what others sent).
	 * 0: the daemon's default */
	uint32_t senders;
	uint32_t reserved_[6]; /* room for fields to come, so the struct keeps its size: 0 */
} ipcq_geometry;

/* ipcq_geometry.senders */
enum {
	IPCQ_SENDERS_SHARED = 1,
	IPCQ_SENDERS_ISOLATED = 2,
};

/* Counters and state of a queue (ipcq_stat). */
typedef struct ipcq_stats {
	char name[IPCQ_NAME_MAX + 1];
	char reserved5_[7];      /* (so that every field lies where it does on 32-bit systems too) */
	ipcq_geometry geo;
	uint64_t depth;          /* messages waiting: in the window and in the backlog */
	uint64_t backlog;        /* of which in the backlog (shared memory, beyond the window) */
	uint32_t window;         /* mq messages in the window (one may carry a batch) */
	uint32_t id;             /* queue id (si_value of notifications) */
	uint64_t ring_used;      /* ring bytes in use (headers and padding included) */
	uint64_t ring_hwm;       /* high-water mark of ring_used */
	uint64_t ring_chunks;    /* chunks in the ring not yet reclaimed */
	uint64_t sent;           /* messages sent */
	uint64_t received;       /* messages received */
	uint64_t sent_ring;      /* of which through the ring */
	uint64_t redelivered;    /* deliveries again of what a consumer had and did not acknowledge (it died or closed; at-least-once) */
	uint64_t dropped;        /* messages dropped (dead consumer, at-most-once) */
	uint64_t reclaimed;      /* ring chunks taken back from dead clients, or sent again
	                            unseen (a consumer died before it had them) */
	uint64_t rejected;       /* forged or stale descriptors rejected */
	uint64_t acked;          /* messages receivers released or acknowledged */
	uint32_t delivery;       /* 0 at-most-once, 1 at-least-once */
	uint32_t receivers;      /* receive slots in use: open receiving handles */
	uint32_t quarantined;    /* 1: its shared memory failed a check; purge or delete it */
	uint32_t listeners;      /* processes registered for its signal (ipcq_notify) */
	uint64_t expired;        /* messages whose ttl ran out before a receiver had them */
	uint64_t dead_lettered;  /* messages moved to its dead-letter queue */
	uint64_t nacked;         /* messages receivers gave back or rejected (ipcq_nack) */
	uint64_t moved;          /* messages held long that the daemon copied aside, so that
	                            ring space behind them comes back (at-least-once) */
	uint64_t ttl_ms;         /* its ttl (0: none) */
	uint32_t max_deliveries; /* 0: unbounded */
	uint32_t reserved3_;
	char dead_letter[IPCQ_NAME_MAX + 1]; /* its dead-letter queue, or "" */
	char reserved4_[7];
	uint64_t memory;         /* bytes of shared memory the queue holds now (its ring and
	                            pages; a queue drained and idle a few seconds gives
	                            its ring's pages back) */
	uint64_t reserved2_[31]; /* room for counters to come, so the struct keeps its size: 0 */
} ipcq_stats;

/* What a queue does with messages it cannot deliver, beyond its geometry
 * (ipcq_create_ex).  Zero fields take what ipcbrokerd.conf(5) says (its
 * queue section, else its defaults).
 *  - ttl_ms: a message not received within this long after it was sent
 *    expires: it is never delivered, and goes to the dead-letter queue
 *    (or is dropped), counted in expired.  A sender may give a message a
 *    shorter one (ipcq_set_ttl).  Accurate to a millisecond.
 *  - max_deliveries (at-least-once queues): a message delivered this many
 *    times and never acknowledged is not delivered again: it goes to the
 *    dead-letter queue (or is dropped).
 *  - dead_letter: the queue that takes them (it must exist when they come;
 *    without one they are dropped, counted in dropped). */
typedef struct ipcq_queue_opts {
	uint64_t ttl_ms;
	uint32_t max_deliveries;
	uint32_t reserved_;
	char dead_letter[IPCQ_NAME_MAX + 1];
	char reserved2_[7];
} ipcq_queue_opts;

/* Finding a daemon.  As with D-Bus's system and session buses, there is
 * one system daemon per namespace, for every local user, and optionally a
 * per-user daemon that only its user talks to:
 *   system:   /run/ipcbroker/NS.sock
 *   per-user: $XDG_RUNTIME_DIR/ipcbroker/NS.sock (ipcbrokerd --user)
 * ns NULL means "default".  The path functions return its length or a
 * negative errno: -EINVAL for a bad namespace, -EDESTADDRREQ for the
 * per-user path when XDG_RUNTIME_DIR is not set. */
int ipcq_socket_path(const char *ns, char *buf, size_t cap);
int ipcq_user_socket_path(const char *ns, char *buf, size_t cap);

/* ipcq_connect_namespace() flags */
enum {
	IPCQ_CONNECT_USER = 1u << 0, /* the caller's per-user daemon, not the system's */
};

/* Connect to a daemon.  socket_or_null: a socket path, or NULL for
 * $IPCQ_SOCKET, else the daemon of namespace $IPCQ_NAMESPACE (default
 * "default"): the per-user one when $IPCQ_USER is set (to anything but
 * "", "0", "no" or "false"), else the system one.  -ECONNREFUSED when no
 * daemon listens there (no socket file, or nobody behind it).
 * Messages never pass through the daemon, so open queues go on while it
 * restarts.  A request that finds the connection broken (the daemon
 * restarted) connects again to the same socket and is made again once:
 * always when it had not gone out, and when its reply was lost only if
 * the daemon may have it twice (open, stat, list, notify, the answer
 * for a message kept aside); a create, delete or purge whose reply was
 * lost fails with -ECONNRESET, and the next call connects again.  What
 * belonged to the old connection is gone: signal registrations
 * (ipcq_notify again), and a receiving handle's buffers, so a receiver
 * killed between its mq_receive and its take is found by the daemon's
 * sweep alone. */
int ipcq_connect(ipcq_client **out, const char *socket_or_null);
/* Connect to the system daemon of namespace ns (NULL: "default"), or with
 * IPCQ_CONNECT_USER to the caller's per-user daemon; the environment is
 * not consulted. */
int ipcq_connect_namespace(ipcq_client **out, const char *ns, unsigned flags);
/* Disconnect.  Queues opened through c may stay open: messages do not
 * pass through the daemon, so they go on; what needs the daemon
 * (ipcq_notify, the acknowledgement of a message it moved aside, ...)
 * fails with -ENOTCONN; ipcq_close frees the rest. */
void ipcq_disconnect(ipcq_client *c);

/* Open (and with IPCQ_CREATE, create) a queue.  -ENOENT if it does not
 * exist, -EACCES if the caller may not use it as asked, -EDQUOT when
 * creating it would pass the daemon's user_limits, -EIO when the queue is
 * quarantined (its shared memory failed a check: purge or delete it),
 * -ENOMEM when its ring does not fit in this process's address space (a
 * 32-bit process holding many large rings).  Once the queue is
 * deleted, calls on an open handle return -EIDRM (a receiver blocked on
 * it is woken). */
int ipcq_open(ipcq_client *c, const char *name, int flags, ipcq_queue **out);
int ipcq_close(ipcq_queue *q);
/* Geometry of an open queue. */
int ipcq_geometry_of(ipcq_queue *q, ipcq_geometry *out);

/* Delivery.  In an at-most-once queue a message is delivered at most
 * once: a receiver that dies holding it loses it (counted in dropped).  In
 * an at-least-once queue every message received is leased to its
 * receiver until it is acknowledged, and a receiver that dies, or closes
 * its handle, before it acknowledged gives it back: it is delivered
 * again, with IPCQ_MSG_REDELIVERED set and deliveries > 1.  A view is
 * acknowledged by ipcq_release.  A copy (ipcq_recv) is acknowledged by
 * the next ipcq_recv on the handle from the same thread, or by ipcq_ack:
 * so the plain loop
 *     while ((n = ipcq_recv(q, buf, sizeof(buf), NULL, -1)) >= 0)
 *             process(buf, n);
 * acknowledges a message only once process() returned, and a worker
 * killed inside process() loses nothing.  ipcq_close acknowledges the
 * copies the closing thread received; what other threads received and did
 * not acknowledge, and views not released, go back.  Call ipcq_ack
 * before a long pause, so the message is not held meanwhile.
 * A message held longer than the queue's ack_timeout (ipcbrokerd.conf(5);
 * 5 minutes by default) without release or acknowledgement is delivered
 * again, to another receiver or the same: the late holder's ipcq_release
 * or ipcq_ack then does nothing, and its view may change under it.  The
 * messages of a batch taken ahead count from the batch's take.
 * A copy held long does not hold up the queue: ring space comes back in
 * order, so when the ring fills while a copy (ipcq_recv's, the last
 * message of its chunk unacknowledged) has been held a second or more,
 * the daemon moves the message out of the ring into its own keeping,
 * still leased to the receiver, whose ipcq_ack (or ipcq_nack, or
 * ipcq_close) then goes to the daemon (counted in moved).  Views
 * (ipcq_recv_view) point into the ring and never move: release them
 * promptly, or copy.  A daemon restarted meanwhile takes the
 * acknowledgement of a message it moved aside through the connection the
 * library makes again (ipcq_connect).
 * A handle takes no more from the queue while it holds 64 messages handed
 * out and not released (views, and copies not acknowledged, of all its
 * threads): it still hands out the rest of a batch it took, then its
 * receives fail at once with -ENOBUFS until it releases some. */
int ipcq_ack(ipcq_queue *q);
/* Negative acknowledgement.  Give a message back to the queue at once
 * (flags 0): it is delivered again, flagged redelivered, counting as a
 * delivery towards max_deliveries; or with IPCQ_NACK_REJECT, send it to
 * the queue's dead-letter queue (or drop it) without delivering it again.
 * m is a view ipcq_recv_view or ipcq_recv_batch handed out (released by
 * this call), or NULL for the copy ipcq_recv last returned to this thread
 * in an at-least-once queue.  -EINVAL if m is no message of the handle,
 * -ENOENT with NULL when this thread holds no copy.  Counted in nacked.
 * A message of a batch (messages sent while the queue was busy travel
 * together) goes back when the rest of its batch is released; if another
 * message of the same batch was given back, a rejected one goes back with
 * it and is rejected when it comes again (with max_deliveries set). */
enum {
	IPCQ_NACK_REJECT = 1u << 0,
};
int ipcq_nack(ipcq_queue *q, ipcq_msg *m_or_null, unsigned flags);
/* Messages this handle sends from now on expire ttl_ms after they are
 * sent (0: only the queue's ttl applies); the shorter of the two rules.
 * Messages with a ttl travel through the ring.  -EINVAL above a year. */
#define IPCQ_TTL_MAX_MS (8760ull * 3600u * 1000u)
int ipcq_set_ttl(ipcq_queue *q, uint64_t ttl_ms);

/* Copy API.  Messages up to the inline size go on the mq, larger ones
 * through the ring, transparently (in an at-least-once queue every
 * message goes through the ring, where it survives a receiver that dies
 * holding it).  -EMSGSIZE when len > max_payload.
 * ipcq_recv returns the message length; -EBADMSG when the copy was
 * spoilt while it was made (another client of the queue wrote over what
 * it must not: see the README's threat model); -EMSGSIZE if cap is too small:
 * the message is kept, and the next receive on this handle returns it
 * (ipcq_geometry_of tells max_payload, a size that always fits).
 * ipcq_close drops a message kept that way.  prio may be NULL. */
int ipcq_send(ipcq_queue *q, const void *buf, size_t len, unsigned prio, int timeout_ms);
ssize_t ipcq_recv(ipcq_queue *q, void *buf, size_t cap, unsigned *prio, int timeout_ms);

/* Depth and batches.  A queue holds as many messages as its ring has room
 * for (or max_depth, if set), whatever the kernel's mq limits: the mq is a
 * window of max_msgs mq messages that receivers take messages through, and
 * what does not fit waits in the ring as a backlog, in order, moved into
 * the window by the queue's clients as room appears.  A send waits (up to
 * its timeout; -EAGAIN with 0) only when the ring is full or max_depth is
 * reached, never because receivers are slow to empty the window.  (A
 * message through the ring may pause its send once a lap of the ring, at
 * most about as long as copying it takes and never with timeout 0, while
 * receivers take what waits: the ring then goes round memory still in
 * the caches.)
 *
 * One mq message may carry a batch of small messages (a ring chunk of up
 * to prefetch of them).  ipcq_send goes out at once when the window has
 * room, and is coalesced with the sends after it only under backpressure,
 * so an idle queue adds no latency.  A receiver takes at most a batch at a
 * time (prefetch messages ahead), so work stays shared among receivers.
 *
 * Priorities: higher first, FIFO within a priority, backlog included.  The
 * backlog keeps up to 8 distinct priorities apart; a ninth shares the list
 * of the nearest one.  Inversion is bounded by the window: a message may
 * wait behind what is already in it, at most max_msgs * prefetch messages
 * of lower priority.  A message given back (a receiver closed or died
 * holding it, or gave it back with ipcq_nack) may keep its place at the
 * head of the line it was taken from (a batch given back does): then it
 * goes before messages of higher priority sent while it was held.
 * In a queue whose senders are isolated (ipcq_geometry.senders), each
 * sending user's messages wait in a lane of their own: FIFO within a
 * priority holds for each user's; across users, receivers take the lane
 * whose waiting messages have the highest priority, and among those the
 * ones that joined the queue first (a batch at a time: a message appended
 * to a batch waiting in one lane may go before one another user sent
 * just before it).
 *
 * ipcq_send_batch sends n messages with one priority; returns how many
 * were sent (n, or a prefix when the timeout hit), or a negative errno
 * when none was.  ipcq_recv_batch receives up to n messages in place
 * (waiting up to timeout_ms for the first, not for the rest); returns how
 * many (>= 1) or a negative errno.  Each is released with ipcq_release(),
 * in any order. */
int ipcq_send_batch(ipcq_queue *q, const struct iovec *msgs, unsigned n, unsigned prio, int timeout_ms);
int ipcq_recv_batch(ipcq_queue *q, struct ipcq_msg *msgs, unsigned n, int timeout_ms);

/* Peeking: copies of up to n of the messages waiting in the queue,
 * without receiving them, in about the order receivers would get them.
 * Their bytes go into buf (cap bytes, one after the other); each msgs[i]
 * gets data (in buf), len, prio and flags (IPCQ_MSG_REDELIVERED; its
 * deliveries is 0: a peek delivers nothing), and is not to be released.  Returns how many (0 when none can be shown), or a
 * negative errno: -EMSGSIZE if the first does not fit in cap, -EBADF for
 * a handle opened without IPCQ_RECV.  What waits in the ring is shown
 * (every message of an at-least-once queue, large ones, and small ones
 * that piled up); a small message an at-most-once queue carries inline
 * in its mq window (sent while a receiver slept beside an empty window)
 * cannot be read without receiving it, and is not.  A snapshot: a message
 * received while it is copied is left out. */
int ipcq_peek(ipcq_queue *q, ipcq_msg *msgs, unsigned n, void *buf, size_t cap);

/* File descriptor that polls readable when a message waits: in the
 * window, in the backlog, or in a batch the handle holds.  For a receiving
 * handle it is an epoll descriptor (made at the first call, closed by
 * ipcq_close): poll, select or epoll it for reading, and receive with
 * timeout 0 until -EAGAIN; do not read from it.  For a send-only handle it
 * is the queue's mq descriptor. */
int ipcq_fd(ipcq_queue *q);
/* Signal notification: the daemon sends this process signal signo each
 * time the queue goes from empty to non-empty, with si_code SI_QUEUE and
 * si_value.sival_int the queue id (ipcq_stats.id); signo 0 unregisters.
 * Only a process that may receive from the queue may register (-EACCES).
 * signo is a realtime signal (SIGRTMIN to SIGRTMAX: they queue, one per
 * transition) or a classic one a process can catch (the kernel merges
 * those while one is pending); not SIGKILL or SIGSTOP (-EINVAL).  Block
 * it and take it with sigwaitinfo, sigtimedwait or a signalfd, or catch
 * it with an SA_SIGINFO handler.
 * Any number of processes may register for a queue: each is told of each
 * transition once.  If messages wait when it registers, the signal comes
 * at once.  A registration belongs to the queue and the connection it
 * came through (a second call replaces the signal) and ends with
 * ipcq_notify(q, 0), ipcq_close of the handle, ipcq_disconnect, the
 * process's end, a restart of the daemon (call ipcq_notify again: the
 * library connects again by itself), or the queue's deletion, which sends one last signal
 * (receives then return -EIDRM).  -EUSERS past the daemon's bounds (64
 * listeners a queue, 256 a user); ipcq_last_error says why.
 * A signal says that messages arrived, not how many, nor that they are
 * still there (another receiver may have taken them): receive with
 * timeout 0 until -EAGAIN.  It passes through the daemon, some
 * microseconds late, and up to a second late when the queue filled in a
 * way the kernel does not report (its backlog alone, or another process
 * holding the mq's notification).
 * Which way to wait for messages:
 *  - a blocking receive (timeout -1 or > 0): the simplest and the quickest
 *    wake-up, for a thread that does nothing else;
 *  - ipcq_fd in poll or epoll: an event loop that waits for other things
 *    too (sockets, timers), with no thread and no signal;
 *  - a signal: a process that must neither block nor poll (a
 *    single-threaded program busy with other work, a script through
 *    'ipcq watch'), or one that watches queues without consuming; best
 *    for queues that go idle between bursts, since every transition is a
 *    trip through the daemon. */
int ipcq_notify(ipcq_queue *q, int signo);

/* Zero-copy API: reserve len bytes in the ring, write them in place, and
 * publish; or read a message in place and release it.  A view of an
 * inline message points into the handle's own memory; a view of a ring
 * message into the ring, read-only (a receive-only handle maps it so),
 * where a hostile client of the same queue could have its space reused
 * under the view (see the README's threat model); copy what must not
 * change under you. */
int ipcq_loan(ipcq_queue *q, size_t len, void **buf, int timeout_ms);
/* Never waits for receivers: a full window sends the message to the
 * backlog (the room it takes was reserved by ipcq_loan, which waits up to
 * its timeout).  It may wait for the queue's lock, held for microseconds
 * by another client unless that client was stopped: ipcq_publish_timed
 * bounds that wait (-ETIMEDOUT; the loan is still the caller's, to publish
 * again or give back with ipcq_unloan). */
int ipcq_publish(ipcq_queue *q, void *buf, size_t len, unsigned prio);
int ipcq_publish_timed(ipcq_queue *q, void *buf, size_t len, unsigned prio, int timeout_ms);
/* Give back a loan without publishing it. */
int ipcq_unloan(ipcq_queue *q, void *buf);
int ipcq_recv_view(ipcq_queue *q, ipcq_msg *m, int timeout_ms);
int ipcq_release(ipcq_queue *q, ipcq_msg *m);

/* Administration through the daemon. */
int ipcq_create(ipcq_client *c, const char *name, const ipcq_geometry *geo_or_null);
/* ipcq_create with a dead-letter policy (see ipcq_queue_opts); -ENOENT
 * when dead_letter names no queue, -EINVAL when it names this one. */
int ipcq_create_ex(ipcq_client *c, const char *name, const ipcq_geometry *geo_or_null,
                   const ipcq_queue_opts *opts_or_null);
int ipcq_delete(ipcq_client *c, const char *name);
int ipcq_purge(ipcq_client *c, const char *name);
int ipcq_stat(ipcq_client *c, const char *name, ipcq_stats *out);
/* Fill out[0..cap) with the queues' stats; returns how many queues exist
 * (may exceed cap: call again with a larger array). */
int ipcq_list(ipcq_client *c, ipcq_stats *out, size_t cap);

/* Text of the last error the daemon explained on this client (for
 * instance which kernel limit refused a queue), or "" if none. */
const char *ipcq_last_error(ipcq_client *c);

/* Text for a negative (or positive) errno value, including ipcbroker's
 * own meanings (-ETIMEDOUT: timed out, -EBADMSG: forged descriptor...). */
const char *ipcq_strerror(int err);

#ifdef __cplusplus
}
#endif
#endif
