/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzzq.c - the queue of the data-path fuzz targets (see fuzzq.h).
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <unistd.h>

#include "backlog.h"
#include "fuzzq.h"
#include "ring_impl.h"

#define PAGE 4096u

static const struct timespec past = { 0, 0 };

/* len bytes (rounded up to pages) between two inaccessible pages, the
 * end of the len bytes against the second; NULL on failure. */
static void *guarded_map(size_t len)
{
	size_t span = ALIGN_UP(len, (size_t)PAGE);
	unsigned char *p = mmap(NULL, span + 2 * PAGE, PROT_NONE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED)
		return NULL;
	if (mprotect(p + PAGE, span, PROT_READ | PROT_WRITE) < 0)
		return NULL;
	return p + PAGE + (span - len);
}

void fq_data_writable(struct fq *f, bool writable)
{
	if (mprotect(f->data, f->data_len, writable ? PROT_READ | PROT_WRITE : PROT_READ) < 0)
		abort();
}

unsigned fq_drain(struct fq *f)
{
	char buf[FQ_MSG_SIZE];
	unsigned n = 0;

	while (mq_timedreceive(f->mq_rw, buf, sizeof(buf), NULL, &past) >= 0)
		n++;
	return n;
}

/* ---- the daemon's reclaim ops ---- */

static volatile uint8_t sink;

/* Every byte of a message the daemon is given out of the ring. */
static void read_all(const struct ring_recview *m)
{
	const volatile uint8_t *p = m->data;
	uint8_t x = 0;

	for (uint32_t i = 0; i < m->len; i++)
		x ^= p[i];
	sink ^= x;
}

static bool fq_is_dead(uint32_t holder, void *ctx)
{
	(void)ctx;
	return holder != FQ_SENDER && holder != FQ_RECEIVER;
}

static int fq_resend(const void *msg, size_t len, unsigned prio, void *ctx)
{
	struct fq_reclaim *rc = ctx;

	return window_put(&rc->f->daemon, rc->f->mq_rw, msg, len, prio);
}

static bool fq_window_empty(void *ctx)
{
	struct fq_reclaim *rc = ctx;
	struct mq_attr attr;

	return mq_getattr(rc->f->mq_rw, &attr) == 0 && attr.mq_curmsgs == 0;
}

static void fq_walk_begin(void *ctx)
{
	(void)ctx;
}

static int fq_lease_check(uint64_t offset, uint64_t word, unsigned deliveries, bool aside, void *ctx)
{
	struct fq_reclaim *rc = ctx;

	(void)offset, (void)word, (void)deliveries;
	return rc->lease == RING_LEASE_MOVE && !aside ? RING_LEASE_KEEP : rc->lease;
}

static void fq_walk_end(bool whole, unsigned taken_back, void *ctx)
{
	(void)whole, (void)taken_back, (void)ctx;
}

static int fq_move_aside(uint32_t holder, uint64_t offset, uint64_t gen, const struct ring_recview *msg, unsigned prio,
                         unsigned deliveries, uint64_t expires, void *ctx)
{
	(void)holder, (void)offset, (void)gen, (void)prio, (void)deliveries, (void)expires, (void)ctx;
	read_all(msg);
	return 0;
}

static void fq_unmove(uint32_t holder, uint64_t offset, uint64_t gen, void *ctx)
{
	(void)holder, (void)offset, (void)gen, (void)ctx;
}

static int fq_dead_letter(const struct ring_recview *msgs, unsigned n, unsigned prio, void *ctx)
{
	struct fq_reclaim *rc = ctx;

	if (n == 0 || n > RING_BATCH_MAX)
		abort(); /* ring.c promises 1 to a batch's records */
	for (unsigned i = 0; i < n; i++)
		read_all(&msgs[i]);
	return rc->dl == 1 && rc->write ? rc->write(msgs, n, prio, rc->f) : rc->dl;
}

struct ring_reclaim_ops fq_reclaim_ops(struct fq_reclaim *rc, bool sweep, unsigned max_deliveries)
{
	/* as daemon/queue.c's queue_reclaim: a death's walk, or the sweep */
	return (struct ring_reclaim_ops){ .is_dead = fq_is_dead,
		                          .resend = fq_resend,
		                          .window_empty = sweep ? fq_window_empty : NULL,
		                          .walk_begin = sweep ? fq_walk_begin : NULL,
		                          .lease_check = sweep ? fq_lease_check : NULL,
		                          .move_aside = sweep ? fq_move_aside : NULL,
		                          .unmove = fq_unmove,
		                          .walk_end = sweep ? fq_walk_end : NULL,
		                          .dead_letter = sweep ? fq_dead_letter : NULL,
		                          .max_deliveries = max_deliveries,
		                          .ctx = rc };
}

/* ---- the images ---- */

/* The window while an image is made: it takes every descriptor (a
 * receiver sleeps on it, so senders use it) and keeps none. */
struct capture {
	struct proto_ring_desc last;
	unsigned prio;
};

static int capture_send(void *ctx, const void *msg, size_t len, unsigned prio)
{
	struct capture *cap = ctx;

	if (len != sizeof(cap->last))
		abort();
	memcpy(&cap->last, msg, len);
	cap->prio = prio;
	return 0;
}

static const _Atomic uint32_t asleep = 1;

static void must(int r, const char *what)
{
	if (r < 0) {
		fprintf(stderr, "fuzzq: %s: %s\n", what, strerror(-r));
		abort();
	}
}

/* A sender's chunk of one message of len bytes (a pattern), sent at prio
 * into the window (its descriptor into *d) or, with w NULL, the backlog. */
static struct ring_ref send_raw(struct ring *s, size_t len, unsigned prio, uint64_t expires,
                                const struct backlog_window *w, struct proto_ring_desc *d)
{
	struct capture *cap = w ? w->ctx : NULL;
	struct ring_ref ref;

	must(ring_reserve(s, len, 0, &ref), "reserve");
	for (size_t i = 0; i < len; i++)
		((unsigned char *)ref.payload)[i] = (unsigned char)('a' + i % 26);
	ring_chunk_at(s, ref.pos)->expires = expires;
	must(backlog_submit(s, &ref, prio, 1, w, 0, 0), "submit");
	if (d && cap)
		*d = cap->last;
	return ref;
}

/* A sender's batch of n records, as ipcq_send_batch writes one. */
static struct ring_ref send_batch(struct ring *s, unsigned n, unsigned prio, const struct backlog_window *w,
                                  struct proto_ring_desc *d)
{
	static const char *const words[] = { "one", "two", "three", "four", "five", "six", "seven", "eight" };
	struct capture *cap = w->ctx;
	uint64_t bytes = 0;
	struct ring_ref ref;
	struct ring_chunk *c;
	unsigned char *p;

	for (unsigned i = 0; i < n; i++)
		bytes += ring_rec_size(strlen(words[i]));
	must(ring_reserve(s, bytes, 0, &ref), "reserve a batch");
	p = ref.payload;
	for (unsigned i = 0; i < n; i++) {
		struct ring_rec rec = { .len = (uint32_t)strlen(words[i]) };

		memcpy(p, &rec, sizeof(rec));
		memcpy(p + sizeof(rec), words[i], rec.len);
		p += ring_rec_size(rec.len);
	}
	c = ring_chunk_at(s, ref.pos);
	c->kind = RING_KIND_BATCH;
	c->count = (uint16_t)n;
	must(backlog_submit(s, &ref, prio, n, w, 0, 0), "submit a batch");
	*d = cap->last;
	return ref;
}

static void known_add(struct fq_known *k, const struct proto_ring_desc *d, unsigned prio)
{
	if (k->n < FQ_KNOWN_MAX) {
		k->desc[k->n] = *d;
		k->prio[k->n++] = prio;
	}
}

static void make_image(struct fq *f, unsigned image)
{
	struct ring_geometry rg = { .data_size = FQ_DATA_SIZE,
		                    .max_payload = FQ_MAX_PAYLOAD,
		                    .msg_size = FQ_MSG_SIZE,
		                    .delivery = (image & FQ_AT_LEAST_ONCE) ? 1 : 0 };
	struct capture cap;
	const struct backlog_window w = { .send = capture_send, .ctx = &cap, .listened = &asleep };
	struct fq_known *k = &f->known[image];
	struct ring s, dead, recv;
	struct ring_ref ref, lap[4];
	struct proto_ring_desc d;
	int slot;

	memset(f->ctl, 0, f->ctl_len); /* a new object is zero */
	memset(f->data, 0, f->data_len);
	must(ring_format(&f->daemon, f->ctl, f->ctl_len, f->data, f->data_len, &rg), "format");
	s = dead = recv = f->daemon;
	s.self = FQ_SENDER;
	dead.self = FQ_DEAD;
	recv.self = FQ_RECEIVER;

	/* a lap of the ring first, so that what follows wraps round its end */
	for (unsigned i = 0; i < ARRAY_SIZE(lap); i++)
		must(ring_reserve(&s, 15872 - RING_CHUNK_HDR, 0, &lap[i]), "reserve a lap");
	for (unsigned i = 0; i < ARRAY_SIZE(lap); i++)
		ring_cancel(&s, &lap[i]);

	/* PUBLISHED, descriptors nowhere: one message, a batch, one that
	 * expired, and a larger one past a PAD at the end of the area */
	send_raw(&s, 21, 1, 0, &w, &d);
	known_add(k, &d, 1);
	send_batch(&s, 3, 2, &w, &d);
	known_add(k, &d, 2);
	send_raw(&s, 9, 0, 1, &w, &d);
	known_add(k, &d, 0);
	send_raw(&s, 1700, 3, 0, &w, &d);
	known_add(k, &d, 3);

	if (image & FQ_BUSY) {
		struct ring_ref back;

		/* a batch a receiver took and handed out one record of: it
		 * gives it back below (a handle closed) */
		send_batch(&s, 3, 2, &w, &d);
		must(ring_take(&recv, &d, &back), "take a batch");
		ring_batch_handed(&recv, back.offset, back.gen, 0);
		ring_batch_done(&recv, back.offset, back.gen, 0);
		/* a chunk released before the ones ahead of it */
		send_raw(&s, 40, 0, 0, &w, &d);
		must(ring_take(&recv, &d, &ref), "take");
		ring_release(&recv, &ref);
		/* what a dead consumer held: a message, and a batch it had
		 * two records of (one done) */
		send_raw(&s, 300, 1, 0, &w, &d);
		must(ring_take(&dead, &d, &ref), "take as the dead");
		send_batch(&s, 4, 0, &w, &d);
		must(ring_take(&dead, &d, &ref), "take a batch as the dead");
		ring_batch_handed(&dead, ref.offset, ref.gen, 0);
		ring_batch_done(&dead, ref.offset, ref.gen, 0);
		ring_batch_handed(&dead, ref.offset, ref.gen, 1);
		/* a message a live receiver gave up (DOOMED), and one it holds
		 * long and lets the daemon move aside */
		send_raw(&s, 30, 0, 0, &w, &d);
		must(ring_take(&recv, &d, &ref), "take to doom");
		ring_doom(&recv, ref.offset, ref.gen);
		send_raw(&s, 50, 0, 0, &w, &d);
		must(ring_take(&recv, &d, &ref), "take to hold");
		ring_allow_aside(&recv, ref.offset, ref.gen);
		/* what a dead producer left: a reservation, and a chunk it was
		 * publishing */
		must(ring_reserve(&dead, 100, 0, &ref), "reserve as the dead");
		must(ring_reserve(&dead, 60, 0, &ref), "reserve as the dead");
		ring_publishing(&dead, &ref, 4);
		/* the backlog: the batch given back, a batch of three at
		 * priority 0, one message at priority 5, and a large one at
		 * priority 0 */
		must(backlog_give_back(&recv, &back, 1), "give back");
		for (unsigned i = 0; i < 3; i++)
			must(backlog_append(&s, "backlog", 7, 0, 0, FQ_PREFETCH, NULL, 0), "append");
		must(backlog_append(&s, "urgent", 6, 5, 0, FQ_PREFETCH, NULL, 0), "append");
		send_raw(&s, 700, 0, 0, NULL, NULL);
		/* a dead receiver's slot, asleep */
		slot = ring_slot_claim(&dead);
		must(slot, "claim a slot as the dead");
		atomic_store(&ring_slot_at(&dead, (unsigned)slot)->sleeping, 1);
		atomic_fetch_add(&f->daemon.hdr->sleepers, 1);
	}
	f->home_slot[image] = ring_slot_claim(&recv);
	must(f->home_slot[image], "claim the home slot");
	memcpy(f->img_ctl[image], f->ctl, f->ctl_len);
	memcpy(f->img_data[image], f->data, f->data_len);
	f->img_ring[image] = f->daemon;
}

int fq_setup(struct fq *f)
{
	struct mq_attr attr = { .mq_maxmsg = FQ_MAX_MSGS, .mq_msgsize = FQ_MSG_SIZE };
	struct ring_geometry rg = { .data_size = FQ_DATA_SIZE, .max_payload = FQ_MAX_PAYLOAD, .msg_size = FQ_MSG_SIZE };
	char name[64];

	memset(f, 0, sizeof(*f));
	f->ctl_len = ring_map_size(&rg);
	f->data_len = ring_data_map_size(&rg);
	f->ctl = guarded_map(f->ctl_len);
	f->data = guarded_map(f->data_len);
	f->meta = guarded_map(PROTO_META_SIZE);
	f->q.bufs_len = (size_t)RECV_BUFS * FQ_MSG_SIZE;
	f->q.bufs = guarded_map(f->q.bufs_len);
	if (!f->ctl || !f->data || !f->meta || !f->q.bufs)
		return -ENOMEM;
	for (unsigned i = 0; i < FQ_IMAGES; i++) {
		f->img_ctl[i] = malloc(f->ctl_len);
		f->img_data[i] = malloc(f->data_len);
		if (!f->img_ctl[i] || !f->img_data[i])
			return -ENOMEM;
	}
	/* the window, by a name no one else uses, gone from the namespace
	 * as soon as it is open */
	snprintf(name, sizeof(name), "/ipcq.fuzz.%d", (int)getpid());
	mq_unlink(name);
	f->mq_rw = mq_open(name, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600, &attr);
	f->mq_ro = f->mq_rw == (mqd_t)-1 ? (mqd_t)-1 : mq_open(name, O_RDONLY | O_CLOEXEC);
	if (f->mq_rw != (mqd_t)-1)
		mq_unlink(name);
	if (f->mq_rw == (mqd_t)-1 || f->mq_ro == (mqd_t)-1) {
		fprintf(stderr, "fuzzq: mq_open %s: %s\n", name, strerror(errno));
		return -errno;
	}
	f->bell = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (f->bell < 0)
		return -errno;
	f->client.fd = -1;
	pthread_mutex_init(&f->client.lock, NULL);
	atomic_store(&f->client.holder, FQ_RECEIVER);
	for (unsigned i = 0; i < FQ_IMAGES; i++)
		make_image(f, i);
	return 0;
}

void fq_reset(struct fq *f, unsigned image, int flags)
{
	const ipcq_geometry geo = { .max_msgs = FQ_MAX_MSGS,
		                    .msg_size = FQ_MSG_SIZE,
		                    .ring_size = FQ_DATA_SIZE,
		                    .max_payload = FQ_MAX_PAYLOAD,
		                    .prefetch = FQ_PREFETCH };
	ipcq_queue *q = &f->q;
	unsigned char *bufs = q->bufs;
	size_t bufs_len = q->bufs_len;

	f->image = image % FQ_IMAGES;
	fq_data_writable(f, true);
	memcpy(f->ctl, f->img_ctl[f->image], f->ctl_len);
	memcpy(f->data, f->img_data[f->image], f->data_len);
	f->daemon = f->img_ring[f->image];
	f->daemon.bell = f->bell;
	/* the bell says whether a backlog waits (daemon/queue.c, bell_make) */
	eventfd_level(f->bell, false);
	if (atomic_load(&f->daemon.hdr->backlog))
		eventfd_level(f->bell, true);

	memset(f->meta, 0, PROTO_META_SIZE);
	f->meta->magic = PROTO_META_MAGIC;
	f->meta->version = PROTO_META_VERSION;
	f->meta->delivery = f->daemon.delivery;
	f->meta->geo = proto_meta_geo(&geo);

	/* the handle, as ipcq_open makes it */
	memset(q, 0, sizeof(*q));
	memset(bufs, 0, bufs_len);
	q->bufs = bufs;
	q->bufs_len = bufs_len;
	q->client = &f->client;
	q->flags = flags;
	q->mq = (flags & IPCQ_SEND) ? f->mq_rw : f->mq_ro;
	q->ring = f->daemon;
	q->ring.writable = (flags & IPCQ_SEND) != 0;
	q->ring.self = FQ_RECEIVER;
	/* a wait for a lock the input holds would only cost time: each is
	 * bounded by its deadline (tests/unit check that) */
	q->ring.nowait = true;
	q->meta = f->meta;
	q->geo = geo;
	q->id = 1;
	q->pid = self_pid();
	snprintf(q->name, sizeof(q->name), "fuzz");
	q->inline_max = proto_inline_max(FQ_MSG_SIZE);
	q->pollfd = q->held_bell = -1;
	q->home_slot = -1;
	q->sring = &q->ring;
	pthread_mutex_init(&q->recv_lock, NULL);
	pthread_mutex_init(&q->lane_lock, NULL);
	if (flags & IPCQ_SEND)
		q->window = (struct backlog_window){ .send = window_send, .ctx = q, .listened = &f->meta->listened };
	if (flags & IPCQ_RECV) {
		for (unsigned i = 0; i < RECV_BUFS; i++)
			q->buf[i] = q->bufs + (size_t)i * FQ_MSG_SIZE;
		q->home_slot = f->home_slot[f->image];
	}
	if (!(flags & IPCQ_SEND))
		fq_data_writable(f, false);
}

void fq_finish(struct fq *f)
{
	ipcq_queue *q = &f->q;

	/* ipcq_close's queue_free, but for the mappings, which stay */
	recv_close(q);
	if (home_slot_mine(q))
		ring_slot_free(&q->ring, q->home_slot);
	pthread_mutex_destroy(&q->recv_lock);
	pthread_mutex_destroy(&q->lane_lock);
	fq_data_writable(f, true);
	fq_drain(f);
}
