/* SPDX-License-Identifier: Apache-2.0 */
/*
 * aside.c - messages the daemon keeps out of a queue's ring while their
 * receiver holds them long.
 *
 * Ring space comes back in order, so one receiver that keeps a message
 * (an at-least-once lease not acknowledged) stops every byte sent after
 * it from coming back, and once the ring has gone round, every sender.
 * When the ring is half full (or senders wait for room) and a receiver
 * has held a message a second or more, one it keeps no pointer into (a
 * copy ipcq_recv made), the daemon's sweep takes the message out of the
 * ring and keeps it here, still leased to the same receiver; its chunk
 * is released (the handshake with the receiver is ring.c's "Moving
 * aside").  The receiver then acknowledges it, gives it back or rejects
 * it through the daemon (PROTO_OP_MOVED); if it dies, or holds it past
 * ack_timeout, the daemon writes it back into the queue, flagged
 * redelivered (inject.c).
 *
 * Each message kept is a shared object of the daemon's own, named after
 * the queue's objects (".a<seq>", created exclusively, mode 0600, never
 * passed to a client), holding a header and the bytes: so a daemon
 * restarted after a crash finds what the last one kept, and at least once
 * holds across it.  Of a move the crash cut short (the chunk still TAKEN
 * by its holder) the new daemon forgets what was kept: the holder has the
 * chunk.  The objects are few (only long holds under pressure) and
 * bounded per queue (ASIDE_MAX, and a quarter of the ring's bytes).
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "aside.h"
#include "inject.h"
#include "log.h"
#include "peer.h"
#include "queue.h"
#include "util.h"

#define ASIDE_MAGIC 0x4544534151435049ull /* "IPCQASDE" */
#define SHM_DIR "/dev/shm/"

/* The header of a kept message's object; its bytes follow. */
struct aside_obj {
	uint64_t magic;
	uint32_t holder, prio, deliveries, len;
	uint64_t from_offset, from_gen, expires;
};

static int entry_name(struct daemon *d, const struct queue *q, uint32_t seq, char name[PROTO_OBJ_NAME_MAX])
{
	char suffix[16];

	snprintf(suffix, sizeof(suffix), ".a%" PRIu32, seq);
	return queue_object_name(d, &q->rec, suffix, name);
}

static struct aside_entry *find(struct aside_table *t, uint32_t holder, uint64_t offset, uint64_t gen)
{
	for (size_t i = 0; i < t->n; i++)
		if (t->v[i].holder == holder && t->v[i].from_offset == offset && t->v[i].from_gen == gen)
			return &t->v[i];
	return NULL;
}

static int add(struct aside_table *t, const struct aside_entry *e)
{
	if (t->n == t->cap) {
		size_t cap = t->cap ? 2 * t->cap : 16;
		struct aside_entry *v = reallocarray(t->v, cap, sizeof(*v));

		if (!v)
			return -ENOMEM;
		t->v = v;
		t->cap = cap;
	}
	t->v[t->n++] = *e;
	t->bytes += e->len;
	if (e->seq >= t->next_seq)
		t->next_seq = e->seq + 1;
	return 0;
}

/* Forget entry e, and remove its object. */
static void drop(struct daemon *d, struct queue *q, struct aside_entry *e)
{
	struct aside_table *t = &q->aside;
	char name[PROTO_OBJ_NAME_MAX];

	if (entry_name(d, q, e->seq, name) >= 0)
		shm_unlink(name);
	t->bytes -= MIN(t->bytes, (uint64_t)e->len);
	*e = t->v[--t->n];
	if (t->n == 0) {
		free(t->v);
		t->v = NULL;
		t->cap = 0;
		t->bytes = 0;
	}
}

int aside_keep(struct daemon *d, struct queue *q, uint32_t holder, uint64_t offset, uint64_t gen,
               const struct ring_recview *msg, unsigned prio, unsigned deliveries, uint64_t expires)
{
	struct aside_table *t = &q->aside;
	struct aside_entry e = { .holder = holder, .seq = t->next_seq, .from_offset = offset, .from_gen = gen,
		                 .since_ms = now_ns(CLOCK_MONOTONIC) / 1000000u, .expires = expires,
		                 .prio = prio, .deliveries = deliveries, .len = msg->len };
	struct aside_obj h = { .magic = ASIDE_MAGIC, .holder = holder, .prio = prio, .deliveries = deliveries,
		               .len = msg->len, .from_offset = offset, .from_gen = gen, .expires = expires };
	char name[PROTO_OBJ_NAME_MAX];
	int fd, ret;

	if (aside_full(t, q->rec.geo.ring_size) || find(t, holder, offset, gen))
		return -ENOSPC;
	ret = entry_name(d, q, e.seq, name);
	if (ret < 0)
		return ret;
	fd = shm_open(name, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	ret = fchmod(fd, 0600) < 0 ? -errno : fd_write_all(fd, &h, sizeof(h));
	if (ret == 0)
		ret = fd_write_all(fd, msg->data, msg->len);
	close(fd);
	if (ret == 0)
		ret = add(t, &e);
	if (ret < 0) {
		shm_unlink(name);
		t->next_seq = e.seq + 1; /* the name may linger: never reused */
		return ret;
	}
	return 0;
}

void aside_forget(struct daemon *d, struct queue *q, uint32_t holder, uint64_t offset, uint64_t gen)
{
	struct aside_entry *e = find(&q->aside, holder, offset, gen);

	if (e)
		drop(d, q, e);
}

/* The bytes of entry e, read from its object (malloc'd), or NULL. */
static void *load(struct daemon *d, struct queue *q, const struct aside_entry *e)
{
	char name[PROTO_OBJ_NAME_MAX];
	unsigned char *buf;
	int fd;

	if (entry_name(d, q, e->seq, name) < 0 || (fd = shm_open(name, O_RDONLY | O_CLOEXEC, 0)) < 0)
		return NULL;
	buf = malloc(e->len ? e->len : 1);
	if (buf && pread(fd, buf, e->len, sizeof(struct aside_obj)) != (ssize_t)e->len) {
		free(buf);
		buf = NULL;
	}
	close(fd);
	return buf;
}

/* Write entry e into q again (back to receivers), or to its dead-letter
 * queue (dead: rejected, delivered max_deliveries times, expired); true
 * when it is done with (written, or dropped). */
static bool send_on(struct daemon *d, struct queue *q, const struct aside_entry *e, bool dead)
{
	struct ring_hdr *h = q->ring.hdr;
	struct ring_recview msg = { .len = e->len };
	bool expired = ring_expired(e->expires, ring_now_ms());
	void *bytes;
	int ret;

	dead = dead || expired || (q->policy.max_deliveries && e->deliveries >= q->policy.max_deliveries);
	bytes = load(d, q, e);
	msg.data = bytes;
	if (!bytes)
		ret = 0; /* its object is gone: nothing to send */
	else if (!dead)
		ret = inject_write(q, queue_daemon_ring(d, q), &msg, 1, e->prio, e->deliveries, e->expires);
	else
		ret = queue_dead_letter(d, q, &msg, 1, e->prio);
	free(bytes);
	if (ret == -EAGAIN)
		return false;
	if (expired)
		atomic_fetch_add_explicit(&h->expired, 1, memory_order_relaxed);
	if (dead || ret == 0)
		atomic_fetch_add_explicit(ret > 0 ? &h->dead_lettered : &h->dropped, 1, memory_order_relaxed);
	return true;
}

int aside_settle(struct daemon *d, struct queue *q, uint32_t holder, uint64_t offset, uint64_t gen, enum aside_how how)
{
	struct aside_entry *e = find(&q->aside, holder, offset, gen);

	if (!e || e->pending != ASIDE_KEEP)
		return -ENOENT;
	if (how == ASIDE_ACK) {
		drop(d, q, e);
		return 0;
	}
	e->pending = (uint8_t)how;
	if (send_on(d, q, e, how == ASIDE_REJECT))
		drop(d, q, e);
	return 0;
}

void aside_sweep(struct daemon *d, struct queue *q)
{
	uint64_t now = now_ns(CLOCK_MONOTONIC) / 1000000u;

	for (size_t i = q->aside.n; i-- > 0;) {
		struct aside_entry *e = &q->aside.v[i];
		bool gone = !peer_holder_alive(d, e->holder);
		bool timed_out = q->ack_timeout_ms && now - MIN(now, e->since_ms) >= q->ack_timeout_ms;

		if (e->pending == ASIDE_KEEP && !gone && !timed_out)
			continue;
		/* a holder that dies, or keeps it too long, gives it back */
		if (e->pending == ASIDE_KEEP)
			e->pending = ASIDE_REQUEUE;
		if (send_on(d, q, e, e->pending == ASIDE_REJECT))
			drop(d, q, e);
	}
}

unsigned aside_purge(struct daemon *d, struct queue *q)
{
	unsigned n = 0;

	for (size_t i = q->aside.n; i-- > 0;) {
		struct aside_entry *e = &q->aside.v[i];
		bool waiting = e->pending == ASIDE_REQUEUE ||
		               (e->pending == ASIDE_KEEP && !peer_holder_alive(d, e->holder));

		if (!waiting)
			continue;
		drop(d, q, e);
		n++;
	}
	return n;
}

/* An object the last daemon left for q: check it and take it in. */
static void adopt_one(struct daemon *d, struct queue *q, const char *name, uint32_t seq)
{
	char errbuf[PROTO_ERRMSG_MAX];
	struct aside_obj h;
	struct stat st;
	int fd = shm_open(name, O_RDWR | O_CLOEXEC, 0);
	const struct ring *r = NULL;
	uint64_t off = 0;
	bool keep = false;

	if (fd < 0)
		return;
	if (queue_check_owned(d, fd, "kept message", name, errbuf, sizeof(errbuf)) < 0) {
		log_warning("queue %s: %s", q->rec.name, errbuf);
		close(fd);
		return; /* not ours: left alone */
	}
	if (fstat(fd, &st) == 0 && pread(fd, &h, sizeof(h), 0) == (ssize_t)sizeof(h) && h.magic == ASIDE_MAGIC &&
	    (uint64_t)st.st_size == sizeof(h) + (uint64_t)h.len && h.len <= q->rec.geo.max_payload) {
		/* from_offset names the chunk's lane too (proto_lane_offset) */
		r = queue_ring_of(q, (unsigned)(h.from_offset >> PROTO_LANE_SHIFT));
		off = h.from_offset & ((1ull << PROTO_LANE_SHIFT) - 1);
	}
	if (r && off % RING_ALIGN == 0 && off < r->data_size) {
		uint64_t w = atomic_load_explicit(&r->states[off / RING_ALIGN].word, memory_order_acquire);
		struct aside_entry e = { .holder = h.holder, .seq = seq, .from_offset = h.from_offset,
			                 .from_gen = h.from_gen, .since_ms = now_ns(CLOCK_MONOTONIC) / 1000000u,
			                 .expires = h.expires, .prio = h.prio, .deliveries = h.deliveries, .len = h.len };

		/* a move the crash cut short: the holder still has the chunk */
		keep = w != RING_WORD(RING_TAKEN, h.holder, h.from_gen) && add(&q->aside, &e) == 0;
	}
	close(fd);
	if (!keep)
		shm_unlink(name);
}

void aside_adopt(struct daemon *d, struct queue *q)
{
	char prefix[PROTO_OBJ_NAME_MAX];
	size_t plen;
	struct dirent *de;
	DIR *dir;

	if (!q->ring.hdr || queue_object_name(d, &q->rec, ".a", prefix) < 0 || !(dir = opendir(SHM_DIR)))
		return;
	plen = strlen(prefix) - 1; /* shm names begin with '/', the files do not */
	while ((de = readdir(dir))) {
		char name[PROTO_OBJ_NAME_MAX + 1];
		char *end;
		unsigned long seq;

		if (strncmp(de->d_name, prefix + 1, plen) != 0 || !de->d_name[plen] ||
		    strlen(de->d_name) >= sizeof(name) - 1)
			continue;
		seq = strtoul(de->d_name + plen, &end, 10);
		if (*end || seq > UINT32_MAX)
			continue;
		name[0] = '/';
		memcpy(name + 1, de->d_name, strlen(de->d_name) + 1);
		adopt_one(d, q, name, (uint32_t)seq);
	}
	closedir(dir);
	if (q->aside.n)
		log_info("queue %s: %zu messages kept aside for their receivers taken back", q->rec.name, q->aside.n);
}

void aside_clear(struct daemon *d, struct queue *q, bool unlink_objects)
{
	char name[PROTO_OBJ_NAME_MAX];

	for (size_t i = 0; unlink_objects && i < q->aside.n; i++)
		if (entry_name(d, q, q->aside.v[i].seq, name) >= 0)
			shm_unlink(name);
	free(q->aside.v);
	q->aside = (struct aside_table){ 0 };
}
