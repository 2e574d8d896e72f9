/* SPDX-License-Identifier: Apache-2.0 */
/*
 * client.h - libipcq's internals, shared by its files:
 *   control.c  the control connection and administration (one request,
 *              one reply, over the daemon's socket)
 *   open.c     opening a queue: its kernel objects, mapped
 *   send.c     the send paths (window, backlog, batches, loans)
 *   recv.c     the receive paths (window, backlog, batches, views)
 * The core they share with the daemon is in common/: proto (wire format),
 * ring and backlog (shared memory), fdpass (SCM_RIGHTS), util.
 */
#ifndef IPCQ_CLIENT_H
#define IPCQ_CLIENT_H

#include <errno.h>
#include <mqueue.h>
#include <pthread.h>
#include <stdbool.h>
#include <time.h>

#include "backlog.h"
#include "ipcq.h"
#include "proto.h"
#include "ring.h"
#include "util.h"

#define EXPORT __attribute__((visibility("default")))

struct ipcq_client {
	int fd; /* -1 once disconnected: calls then fail with -ENOTCONN */
	pthread_mutex_t lock;
	/* the caller's reference and one per queue handle opened through it:
	 * ipcq_disconnect closes the connection, the last one frees it */
	_Atomic unsigned refs;
	char path[108]; /* the daemon's socket, to connect again when the connection broke */
	uint32_t seq;
	_Atomic uint32_t holder; /* what the daemon knows this process by (ring.h) */
	char errmsg[PROTO_ERRMSG_MAX];
};

/* Most messages one handle may have handed out and not released. */
#define HELD_MAX 64u
/* Receive buffers of a handle: what it may hold, and calls under way. */
#define RECV_BUFS PROTO_RECV_BUFS

/* A copy ipcq_recv returned in an at-least-once queue, leased until the
 * thread that received it acks it. */
struct lease {
	ipcq_msg m;
	pthread_t thread;
};

/* A chunk a receiving handle took: what ipcq_close gives back, and for
 * a batch, its messages nacked (ipcq_nack), which go back (requeue) or
 * to the dead-letter queue (reject) once the rest of the batch is done. */
struct taken {
	struct ring_ref ref;
	uint64_t requeue, reject;
	bool finished;
};

/* A batch a receiving handle took and hands out a message at a time. */
struct held_batch {
	struct ring_ref ref;
	uint64_t skip;    /* records done with before it was taken */
	unsigned next;    /* next record to look at */
	struct ring_recview rec[RING_BATCH_MAX];
};

struct ipcq_queue {
	ipcq_client *client;
	int flags;
	mqd_t mq;
	struct ring ring;
	/* The queue's lanes (ring.h, "Lanes"), by id: lane[0] is ring; a
	 * receiver maps the others as it meets them (lane_ring), read-only;
	 * a sender of a queue with lanes its own, read-write, at open */
	struct ring *_Atomic lane[PROTO_LANES_MAX + 1];
	pthread_mutex_t lane_lock;
	struct ring *sring;     /* what the handle sends through: ring, or its own lane */
	_Atomic unsigned lane_turn; /* where a receiver's look at the lanes' backlogs begins */
	_Atomic uint64_t lanes_mapped; /* the lanes mapped (bit id - 1), a receiver's */
	/* descriptors a receiver took off the window naming a lane it could
	 * not map then (the daemon was away): left in their receive buffers
	 * (where the daemon finds them if this process dies) until it can
	 * (recv.c, under recv_lock) */
	struct parked {
		int buf;
		unsigned prio;
	} parked[RECV_BUFS];
	_Atomic unsigned nparked;
	const struct proto_meta *meta; /* the daemon's page, mapped read-only */
	ipcq_geometry geo;
	uint32_t id;
	pid_t pid; /* the process that opened it: the one its holder id names */
	size_t inline_max;
	struct backlog_window window; /* how this handle sends into the mq window */
	int home_slot; /* -1 when not receiving */
	/* where receives land: RECV_BUFS buffers of msg_size bytes in a
	 * memfd shared with the daemon alone (recv.c), busy while a call or an
	 * inline view has one; kept apart from the receive slots, whose owner
	 * words any client of the queue can rewrite */
	unsigned char *buf[RECV_BUFS];
	atomic_flag buf_busy[RECV_BUFS];
	unsigned char *bufs;
	size_t bufs_len;
	atomic_flag home_busy;
	/* batches being handed out, and a message too large for the buffer
	 * ipcq_recv was given (the next receive on the handle returns it) */
	pthread_mutex_t recv_lock;
	unsigned nheld, held_cap;
	struct held_batch *held;
	int pollfd;       /* ipcq_fd of a receiving handle (open.c), or -1 */
	/* what its receivers sleep on (recv.c, sleep_set): -1 not made yet,
	 * SLEEP_SET_NONE when the kernel cannot make it */
	_Atomic int sleep_ep;
#define SLEEP_SET_NONE (-2)
	int held_bell;    /* eventfd readable while nheld or nkept, or -1 */
	bool held_rung;
	_Atomic unsigned nkept;
	unsigned kept_cap;
	ipcq_msg *kept;
	/* chunks this handle took and has not released: what ipcq_close
	 * gives back (under recv_lock) */
	unsigned ntaken, taken_cap;
	struct taken *taken;
	/* messages handed out and not released (views, kept messages, copies
	 * not acked): at most HELD_MAX */
	_Atomic unsigned nviews;
	/* ipcq_recv's copies not acked yet, in an at-least-once queue: one per
	 * thread at most, acked by its next ipcq_recv or ipcq_ack (under
	 * recv_lock) */
	unsigned nleases, lease_cap;
	struct lease *leases;
	_Atomic uint64_t ttl_ms; /* ipcq_set_ttl */
	/* spinning (recv.c): when the receiver last ran out of messages after
	 * one, and whether recv_next found one since */
	_Atomic uint64_t last_msg_ns;
	_Atomic bool got_msg;
	_Atomic uint32_t spin_ns;     /* the spin's budget (recv.c), 0 until the first */
	_Atomic uint32_t spins;       /* spins so far (every SPIN_PROBE-th is a full one) */
	/* batches with messages nacked (struct taken): their releases look
	 * at the masks (recv.c) */
	_Atomic unsigned nmasked;
	char name[IPCQ_NAME_MAX + 1];
};

/* control.c */
/* One request, one reply.  The reply is copied to rep (cap bytes); fds
 * (if not NULL) receives the passed descriptors, which the caller owns. */
/* A queue handle keeps its client: taken at open, given back at close. */
void client_ref(ipcq_client *c);
void client_unref(ipcq_client *c);
int client_call(ipcq_client *c, struct proto_req *req, struct proto_reply *rep, size_t cap,
                int fds[PROTO_OPEN_FDS]);
/* The same, passing the descriptor send_fd with the request. */
int client_call_fd(ipcq_client *c, struct proto_req *req, int send_fd, struct proto_reply *rep, size_t cap,
                   int fds[PROTO_OPEN_FDS]);
/* A reply with room for one stats record. */
struct reply_one {
	struct proto_reply rep;
	ipcq_stats st;
};

/* The message of a chunk the handle held, which the daemon keeps aside
 * (ring.c, "Moving aside"), acknowledged (how 1), given back (2) or
 * rejected (3), in the ring of lane lane: 0, or -ENOENT when the daemon
 * keeps no such message. */
enum { MOVED_ACK = 1, MOVED_REQUEUE = 2, MOVED_REJECT = 3 };
int client_moved(ipcq_queue *q, unsigned lane, uint64_t offset, uint64_t gen, int how);
/* open.c: the ring of lane id (0: q->ring), mapped at the first call;
 * NULL when the daemon gives none (a forged id) */
struct ring *lane_ring(ipcq_queue *q, unsigned id);
/* The lanes the daemon has made (proto_meta.lanes) */
static inline uint64_t lanes_made(const ipcq_queue *q)
{
	return atomic_load_explicit(&q->meta->lanes, memory_order_acquire);
}
/* recv.c: give back what a closing handle holds */
void recv_close(ipcq_queue *q);
/* recv.c, under recv_lock: the handle's bell follows what it holds */
void held_bell_update(ipcq_queue *q);
/* send.c: put a message into the window without waiting (struct backlog_window) */
int window_send(void *ctx, const void *msg, size_t len, unsigned prio);

/* A handle is its opener's: what it holds is marked with the holder id
 * the daemon gave that process, which would name the parent in a child. */
static inline int check_owner(const ipcq_queue *q)
{
	if (!q)
		return -EINVAL;
	return q->pid == self_pid() ? 0 : -ECHILD;
}

/* The home receive slot belongs to the process that opened the queue; a
 * child forked with the handle must not use or free it. */
static inline bool home_slot_mine(const ipcq_queue *q)
{
	return q->home_slot >= 0 && q->pid == self_pid();
}

static inline bool deleted(const ipcq_queue *q)
{
	return atomic_load_explicit(&q->meta->deleted, memory_order_acquire) != 0;
}

/* -EIDRM for a deleted queue, -EIO for a quarantined one, else 0 */
static inline int queue_state(const ipcq_queue *q)
{
	if (deleted(q))
		return -EIDRM;
	if (atomic_load_explicit(&q->meta->quarantined, memory_order_relaxed))
		return -EIO;
	return 0;
}

static inline void count_n(_Atomic uint64_t *ctr, uint64_t n)
{
	atomic_fetch_add_explicit(ctr, n, memory_order_relaxed);
}

static inline int timeout_error(int timeout_ms)
{
	return timeout_ms == 0 ? -EAGAIN : -ETIMEDOUT;
}

/* When a call with this timeout starts, for time_left: the clock is read
 * only for a timeout that counts down (a call that may wait as long as
 * it takes, or not at all, spares the read). */
static inline uint64_t call_start(int timeout_ms)
{
	return timeout_ms > 0 ? now_ns(CLOCK_MONOTONIC) : 0;
}

/* Milliseconds left of a timeout that started at start_ns (call_start). */
static inline int time_left(int timeout_ms, uint64_t start_ns)
{
	uint64_t spent;

	if (timeout_ms <= 0)
		return timeout_ms;
	spent = (now_ns(CLOCK_MONOTONIC) - start_ns) / 1000000u;
	return spent >= (uint64_t)timeout_ms ? 0 : timeout_ms - (int)spent;
}

#endif
