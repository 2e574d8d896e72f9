/* SPDX-License-Identifier: Apache-2.0 */
/*
 * proto.h - everything the daemon and the library must agree on, defined
 * once: the control-socket protocol, the format of every POSIX mq message,
 * and the naming of sockets and kernel objects.
 *
 * Control protocol.  The control socket is AF_UNIX SOCK_SEQPACKET, so
 * every request and reply is one datagram with its boundaries kept.  Both
 * are fixed-size structs in host byte order (client and daemon run on the
 * same host): a request that is not exactly sizeof(struct proto_req), has
 * the wrong magic or version, an unknown op or an invalid name is refused
 * with -EPROTO / -EINVAL and the connection stays usable.  A reply to OPEN
 * carries PROTO_OPEN_FDS descriptors as SCM_RIGHTS: the queue's mq, its
 * ring's control object, its meta page (read-only), its bell (backlog.c),
 * and its ring's data object (read-only unless the client may send).
 *
 * Data messages.  Every mq message starts with a struct proto_msg_hdr that
 * names its kind, so new kinds (batches) fit without a format change:
 *   INLINE: the payload follows the header, hdr.len bytes.
 *   RING:   a struct proto_ring_desc follows: the payload is in the ring.
 *   CLOSED: sent by the daemon when it deletes the queue, one per waiting
 *           receiver, so nobody stays blocked on a queue that is gone.
 *   NUDGE:  sent by the daemon when the window is empty beside a backlog
 *           (a sender died before it moved the backlog on): the receiver
 *           it wakes takes from the backlog (see backlog.c).
 * The descriptor of a RING message names a chunk holding one message or
 * a batch of them (ring.h); the mq carries no batch kind of its own.
 * A receiver checks the kind, and that hdr.len matches the message length
 * (inline) or the descriptor against the ring (see ring.h) before use.
 */
#ifndef IPCQ_PROTO_H
#define IPCQ_PROTO_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "ipcq.h"

#define PROTO_MAGIC 0x31515049u /* "IPQ1" */
#define PROTO_VERSION 7u
/* Largest holder id (24 bits: it shares a chunk's state word). */
#define PROTO_HOLDER_MAX 0xffffffu
/* The daemon's own holder id, for what it writes into a dead-letter
 * queue: never given to a client, and never holding anything between two
 * turns of the daemon's loop (so a lock or chunk found with it is a dead
 * daemon's). */
#define PROTO_HOLDER_DAEMON PROTO_HOLDER_MAX

/* prefix of every kernel object name (see proto_object_name) */
#define PROTO_OBJ_PREFIX "/ipcq."
#define PROTO_ERRMSG_MAX 256
#define PROTO_OPEN_FDS 5 /* mq, ring control, meta page, the backlog's bell (an eventfd), ring data */
#define PROTO_LIST_MAX 32 /* queues per LIST reply; the client pages */
#define PROTO_LANE_FDS 2  /* a lane's control object and data object */
/* Lanes a queue may have (ring.h, "Lanes"): senders that send at once,
 * each in a ring of its own; a bit each in proto_meta.lanes */
#define PROTO_LANES_MAX 64u
/* A chunk's place in a queue, as MOVED names it: its offset in the ring
 * of its lane (rings are at most 64 GiB: PROTO_RING_SIZE_MAX) */
#define PROTO_LANE_SHIFT 40
static inline uint64_t proto_lane_offset(unsigned lane, uint64_t offset)
{
	return offset | (uint64_t)lane << PROTO_LANE_SHIFT;
}

enum proto_op {
	PROTO_OP_OPEN = 1,   /* name, flags (IPCQ_SEND|RECV|CREATE), geo */
	PROTO_OP_CREATE = 2, /* name, geo, opts */
	PROTO_OP_DELETE = 3, /* name */
	PROTO_OP_PURGE = 4,  /* name */
	PROTO_OP_STAT = 5,   /* name */
	PROTO_OP_LIST = 6,   /* arg = index of the first queue */
	PROTO_OP_NOTIFY = 7, /* name, arg = signal number (0: unregister) */
	PROTO_OP_RECV_BUFS = 8, /* name, with a memfd: a receiving handle's buffers (daemon/rbuf.c) */
	PROTO_OP_MOVED = 9,     /* name, arg64 = offset, generation of a chunk the caller held, which the
	                         * daemon moved aside (ring.c), in the ring of its lane (proto_lane_offset):
	                         * arg = 1 acknowledge, 2 give back, 3 reject */
	PROTO_OP_LANE = 10,     /* name, arg = a lane of the queue (ring.h, "Lanes"): its control object
	                         * and its data object read-only, for a receiver; arg = 0: the caller's
	                         * own lane, data read-write, for a sender (reply.lane says which) */
	PROTO_OP_MAX_,
};

struct proto_req {
	uint32_t magic;
	uint16_t version;
	uint16_t op;
	uint32_t seq;
	uint32_t flags;
	int32_t arg;
	uint32_t reserved;
	char name[IPCQ_NAME_MAX + 1];
	char pad_[7];
	ipcq_geometry geo;
	ipcq_queue_opts opts; /* CREATE, and OPEN with IPCQ_CREATE */
	uint64_t arg64[2];    /* MOVED */
};

struct proto_reply {
	uint32_t magic;
	uint16_t version;
	uint16_t op;
	uint32_t seq;
	int32_t status; /* 0 or a negative errno */
	uint32_t nfds;  /* descriptors passed with this reply */
	uint32_t count; /* LIST: entries in this reply; total in total */
	uint32_t total;
	uint32_t holder; /* the id the daemon knows the caller's process by (see ring.h) */
	uint32_t lane;   /* LANE: the lane whose objects come with the reply */
	char errmsg[PROTO_ERRMSG_MAX]; /* explanation of a failure, or "" */
	ipcq_stats stats[];            /* OPEN/STAT: 1; LIST: count */
};

#define PROTO_REPLY_MAX (sizeof(struct proto_reply) + PROTO_LIST_MAX * sizeof(ipcq_stats))

/* ---- data messages on the mq ---- */

enum proto_msg_kind {
	PROTO_MSG_INLINE = 0x49, /* 'I' */
	PROTO_MSG_RING = 0x52,   /* 'R' */
	PROTO_MSG_CLOSED = 0x58, /* 'X': the queue was deleted (no payload) */
	PROTO_MSG_NUDGE = 0x4e,  /* 'N': the daemon wakes a receiver to look at the backlog */
};

enum proto_msg_flags {
	PROTO_MSGF_REDELIVERED = 1u << 0, /* it was handed to a receiver before (IPCQ_MSG_REDELIVERED) */
	PROTO_MSGF_RESENT = 1u << 1,      /* sent again by the daemon: another copy may be on the mq */
};

struct proto_msg_hdr {
	uint8_t kind;
	uint8_t flags;
	/* RING: the lane of the ring the chunk is in (0: the queue's own
	 * ring; ring.h, "Lanes"); 0 in other kinds */
	uint16_t lane;
	uint32_t len; /* payload bytes (inline) or descriptor payload length */
};

struct proto_ring_desc {
	struct proto_msg_hdr hdr;
	uint64_t offset; /* of the chunk header in the ring's data area */
	uint64_t gen;    /* generation stamped into the chunk */
};

#define PROTO_MSG_HDR_SIZE sizeof(struct proto_msg_hdr)
/* smallest mq message size that can carry a descriptor */
#define PROTO_MSG_SIZE_MIN 64u

/* ---- requests and replies ---- */

void proto_req_init(struct proto_req *req, enum proto_op op, uint32_t seq, const char *name);
/* Check a received request; 0 or -EPROTO (malformed), -EINVAL (bad name). */
int proto_req_decode(const void *buf, size_t len, struct proto_req *out);
/* The daemon's reading of a request datagram of len bytes (more than
 * sizeof(struct proto_req): one too long, its start in buf): 0 with *out
 * decoded, or -EPROTO / -EINVAL with *out zero but for what the reply
 * echoes (op and seq), when the datagram holds them. */
int proto_req_read(const void *buf, size_t len, struct proto_req *out);
void proto_reply_init(struct proto_reply *rep, const struct proto_req *req, int status);
/* Check a received reply against the request it answers. */
int proto_reply_decode(const void *buf, size_t len, const struct proto_req *req,
                       const struct proto_reply **out);

/* ---- names ---- */

bool proto_queue_name_valid(const char *name);
bool proto_namespace_valid(const char *ns);
/* Kernel object names are global to an IPC namespace, so another local
 * user could make one first.  The daemon creates its objects exclusively
 * under a random token per queue, recorded in its (private) registry, so
 * no one can predict a name to claim it first, and no two daemons
 * (system, per-user) ever share one:
 *   "/ipcq.<ns>.<queue>.<token><suffix>"   (token: PROTO_TOKEN_LEN hex digits)
 * An empty token gives the names of registries written before tokens.
 * Returns the length, -ENAMETOOLONG or -EINVAL. */
#define PROTO_TOKEN_LEN 16
#define PROTO_OBJ_NAME_MAX 160
int proto_object_name(char *buf, size_t cap, const char *ns, const char *queue, const char *token,
                      const char *suffix);
/* A token: PROTO_TOKEN_LEN lowercase hex digits, or "" (legacy). */
bool proto_token_valid(const char *token);
/* Where the system daemons listen: one socket per namespace. */
#define PROTO_SYSTEM_RUNDIR "/run/ipcbroker"
enum proto_bus {
	PROTO_BUS_SYSTEM, /* PROTO_SYSTEM_RUNDIR/NS.sock, for every user */
	PROTO_BUS_USER,   /* $XDG_RUNTIME_DIR/ipcbroker/NS.sock, the caller's own */
};
/* Socket path of namespace ns (NULL: "default") on a bus.  -EINVAL: bad
 * namespace; -EDESTADDRREQ: the user bus without XDG_RUNTIME_DIR. */
int proto_socket_path(char *buf, size_t cap, const char *ns, enum proto_bus bus);

/* ---- the meta page ---- */

/* A queue's daemon-owned page (shm "<name>.meta", one page): written by
 * the daemon alone, and passed to clients as a read-only descriptor, so
 * that what it says no client can forge: that the queue was deleted (its
 * CLOSED messages are genuine only then), that it is quarantined, and its
 * geometry.  Everything else a client shares with the queue's other
 * clients is in the ring, which they can all write (see ring.h). */
#define PROTO_META_MAGIC 0x4154454d51435049ull /* "IPCQMETA" */
#define PROTO_META_VERSION 3u
#define PROTO_META_SIZE 4096u
/* The geometry as the meta page holds it, in a layout of its own that
 * stays as it is when ipcq_geometry takes up its reserved room. */
struct proto_meta_geo {
	uint32_t max_msgs, msg_size;
	uint64_t ring_size, max_payload, max_depth;
	uint32_t prefetch, pad_;
};

static inline struct proto_meta_geo proto_meta_geo(const ipcq_geometry *g)
{
	return (struct proto_meta_geo){ .max_msgs = g->max_msgs,
		                        .msg_size = g->msg_size,
		                        .ring_size = g->ring_size,
		                        .max_payload = g->max_payload,
		                        .max_depth = g->max_depth,
		                        .prefetch = g->prefetch };
}

static inline bool proto_meta_geo_is(const struct proto_meta_geo *m, const ipcq_geometry *g)
{
	return m->max_msgs == g->max_msgs && m->msg_size == g->msg_size && m->ring_size == g->ring_size &&
	       m->max_payload == g->max_payload && m->max_depth == g->max_depth && m->prefetch == g->prefetch;
}

struct proto_meta {
	uint64_t magic;
	uint32_t version;
	uint32_t delivery;
	struct proto_meta_geo geo;
	_Atomic uint32_t deleted;     /* the daemon deleted the queue */
	_Atomic uint32_t quarantined; /* its shared memory failed the daemon's checks */
	/* what the queue does with what it cannot deliver (ipcq_queue_opts),
	 * as the daemon's config says now: read at every send and take */
	_Atomic uint64_t ttl_ms;
	_Atomic uint32_t max_deliveries;
	/* processes wait for the queue's signal (daemon/notify.c): senders
	 * then use the window, where the daemon sees what arrives */
	_Atomic uint32_t listened;
	/* the queue gives each sending user a lane of its own (ring.h,
	 * "Lanes"): 1; 0: its senders share its ring */
	uint32_t isolated;
	/* the lanes it has made: bit id - 1 for lane id (receivers map those
	 * they do not have yet) */
	_Atomic uint64_t lanes;
	/* whose each lane is: a sending user's uid + 1, or the daemon's
	 * (daemon/lane.h); 0: nobody's now */
	_Atomic uint32_t lane_owner[PROTO_LANES_MAX];
	/* lanes taken out of the queue (their ring failed a check): their
	 * ids are not given again, so no receiver takes a new lane for the
	 * one it mapped */
	_Atomic uint64_t lanes_retired;
};

/* ---- geometry ---- */

/* Bounds of a queue's geometry, whoever asks for it (the config, 'ipcq
 * create', auto_create, a registry being adopted): defined here once. */
#define PROTO_MAX_MSGS_MAX 65536u           /* the kernel's HARD_MSGMAX */
#define PROTO_MSG_SIZE_MAX (1u << 20)       /* inline slots stay small; the ring carries the rest */
#define PROTO_RING_SIZE_MIN (64ull << 10)
#define PROTO_RING_SIZE_MAX (64ull << 30)
#define PROTO_RING_PAGE 4096u               /* ring_size is a multiple of it */
#define PROTO_RING_RESERVE 64u              /* a chunk header: max_payload <= ring_size - 64 */
#define PROTO_MAX_PAYLOAD_MAX UINT32_MAX    /* lengths travel in 32 bits */
#define PROTO_RECV_BUFS 72u                 /* receive buffers of a handle: 64 held and calls under way */
#define PROTO_PREFETCH_MAX 64u              /* messages in a batch: a bit each (ring.h) */
#define PROTO_PREFETCH_DEFAULT 16u
#define PROTO_MAX_DEPTH_MAX (1ull << 40)
/* 0, or -EINVAL with *why saying which bound a geometry breaks. */
int proto_geometry_check(const ipcq_geometry *g, const char **why);

/* The queue's own ring of a queue whose senders are isolated carries no
 * payload (its lanes do, ring.h): it is the smallest ring there is, for
 * what every client shares (its header, the receive slots).  Its data
 * size and largest message: */
static inline uint64_t proto_home_ring_size(const ipcq_geometry *g)
{
	return g->senders == IPCQ_SENDERS_ISOLATED ? PROTO_RING_SIZE_MIN : g->ring_size;
}

static inline uint64_t proto_home_max_payload(const ipcq_geometry *g)
{
	uint64_t most = proto_home_ring_size(g) - PROTO_RING_RESERVE;

	return g->max_payload < most ? g->max_payload : most;
}

/* ---- data message helpers ---- */

/* Inline payload capacity of an mq message of msg_size bytes. */
static inline size_t proto_inline_max(uint32_t msg_size)
{
	return msg_size > PROTO_MSG_HDR_SIZE ? msg_size - PROTO_MSG_HDR_SIZE : 0;
}

/* Classify a received mq message of n bytes: returns its kind, or
 * -EBADMSG if it is malformed (bad kind, lengths that disagree). */
int proto_msg_check(const void *msg, size_t n);

#endif
