/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz_ring.c - a queue's shared memory as a hostile client could leave
 * it: every client of a queue can write its ring's control object
 * (header, receive slots, chunk states, the backlog's levels and
 * counters), and every sender its data object (the senders' page, chunk
 * headers, payloads, batch records).  The fuzzer's bytes overwrite parts
 * of a ring (fuzzq.h: one of its images, with chunks in every state and
 * a backlog), then the daemon and a client do what they do with a ring:
 *  - the daemon (common/ring.c, as daemon/queue.c calls it): adopt it
 *    after a restart (ring_attach), send again a descriptor found in a
 *    dead receiver's buffers, reclaim what a dead client held, sweep
 *    (leases, moving aside, dead-lettering, orphans), census and stats,
 *    and purge (the window drained, the backlog released);
 *  - a client (libclient through a handle, common/backlog.c): send
 *    (inline, to the backlog, large, batches, a loan published), receive
 *    from the window and the backlog, release or nack, and close.
 * Nothing may crash, hang or read out of bounds: -EBADMSG (corrupt) or
 * any other error is a fine answer.
 *
 * The dead-letter queue the daemon's sweep writes into (daemon/inject.c)
 * is this same ring: the daemon then writes as a sender, into memory a
 * client scribbled on.
 *
 * Input: a byte of flags, a byte of operations (OP_*, run in that
 * order), a byte of the daemon's answers, a descriptor (24 bytes), a
 * byte counting forged state words (its low 3 bits) and the patches
 * made before anything runs (its high 5 bits; 31: all), the forgeries (6
 * bytes each: the state's index, the index of the chunk whose generation
 * it takes, a state and a holder: the words a client that copies words
 * about writes), then patches: a byte (length - 1 in the low 5 bits, the
 * region in the high 3), a 16-bit offset into the region (modulo its
 * size), and the bytes.  The patches past those made first are made
 * while the client works, as a client beside it would: between its loan
 * and its publish, or else before it receives.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backlog.h"
#include "fuzz.h"
#include "fuzzq.h"
#include "ring_impl.h"

enum {
	F_IMAGE = 3u,          /* FQ_BUSY | FQ_AT_LEAST_ONCE */
	F_RECV_ONLY = 1u << 2, /* the client's handle may only receive */
	F_NACK = 1u << 3,      /* the client nacks what it receives (else releases) */
	F_KEEP = 1u << 4,      /* ... or keeps it (close gives it back) */
	F_RESTART = 1u << 5,   /* the daemon adopts the ring as it finds it */
	F_TTL = 1u << 6,       /* the queue's messages have a ttl */
	F_LISTENED = 1u << 7,  /* someone waits for the queue's signal */
};
enum {
	OP_RESEND = 1u << 0,  /* daemon: a dead receiver's descriptor */
	OP_DEATH = 1u << 1,   /* daemon: reclaim what FQ_DEAD held */
	OP_SEND = 1u << 2,    /* client: send, small and large */
	OP_BATCH = 1u << 3,   /* client: a batch, and a loan */
	OP_RECV = 1u << 4,    /* client: receive */
	OP_SWEEP = 1u << 5,   /* daemon: the periodic sweep */
	OP_STAT = 1u << 6,    /* daemon: stat and census */
	OP_PURGE = 1u << 7,   /* daemon: purge */
};

/* The regions patches write: 0-2 the control object (header page,
 * receive slots, chunk states), 3 the senders' page, 4-7 the data area
 * in quarters. */
static unsigned char *region(struct fq *f, unsigned i, size_t *len)
{
	const size_t quarter = FQ_DATA_SIZE / 4;
	unsigned char *slots = f->daemon.slots, *states = (unsigned char *)f->daemon.states;

	switch (i) {
	case 0:
		*len = RING_HDR_SIZE;
		return f->ctl;
	case 1:
		*len = (size_t)(states - slots);
		return slots;
	case 2:
		*len = f->ctl_len - (size_t)(states - f->ctl);
		return states;
	case 3:
		*len = RING_SPAGE_SIZE;
		return f->data;
	default:
		*len = quarter;
		return f->daemon.data + (i - 4) * quarter;
	}
}

/* Up to max patches (all with max 31). */
static void patch(struct fq *f, struct fuzz_in *in, unsigned max)
{
	for (unsigned k = 0; in->n >= 3 && (max == 31 || k < max); k++) {
		uint8_t a = fuzz_u8(in);
		size_t len, off = fuzz_u16(in), n = (a & 31u) + 1;
		unsigned char *base = region(f, a >> 5, &len);

		off %= len;
		n = MIN(n, len - off);
		fuzz_bytes(in, base + off, n);
	}
}

/* State words forged from the generations of chunks. */
static void forge(struct fq *f, struct fuzz_in *in)
{
	static const uint32_t holders[] = { 0, FQ_SENDER, FQ_RECEIVER, FQ_DEAD };
	const size_t n = FQ_DATA_SIZE / RING_ALIGN;

	for (unsigned k = fuzz_u8(in) & 7; k; k--) {
		size_t i = fuzz_u16(in) % n, j = fuzz_u16(in) % n;
		unsigned state = fuzz_u8(in) % (RING_DOOMED + 1), holder = holders[fuzz_u8(in) & 3];
		const struct ring_chunk *c = (const struct ring_chunk *)(f->daemon.data + j * RING_ALIGN);

		atomic_store(&f->daemon.states[i].word, RING_WORD(state, holder, c->gen));
	}
}

static volatile uint8_t sink;

static void read_msg(const ipcq_msg *m)
{
	const volatile uint8_t *p = m->data;
	uint8_t x = 0;

	if (m->len > FQ_MAX_PAYLOAD)
		abort();
	for (size_t i = 0; i < m->len; i++)
		x ^= p[i];
	sink ^= x;
}

/* A peek at what waits: every message it shows lies within its buffer. */
static void client_peek(ipcq_queue *q)
{
	static unsigned char buf[8192];
	ipcq_msg msgs[16];
	int n = ipcq_peek(q, msgs, ARRAY_SIZE(msgs), buf, sizeof(buf));

	for (int i = 0; i < n; i++) {
		const unsigned char *d = msgs[i].data;

		if (d < buf || msgs[i].len > sizeof(buf) || d + msgs[i].len > buf + sizeof(buf))
			abort();
		read_msg(&msgs[i]);
	}
}

static void client_recv(struct fq *f, unsigned flags)
{
	ipcq_queue *q = &f->q;
	unsigned char buf[64];

	client_peek(q);
	for (unsigned i = 0; i < 4; i++) {
		ipcq_msg m;

		if (ipcq_recv_view(q, &m, 0) < 0)
			break;
		read_msg(&m);
		if (flags & F_NACK)
			ipcq_nack(q, &m, i & 1 ? IPCQ_NACK_REJECT : 0);
		else if (!(flags & F_KEEP))
			ipcq_release(q, &m);
	}
	/* a copy, into a buffer smaller than some messages (kept back) */
	ipcq_recv(q, buf, sizeof(buf), NULL, 0);
	ipcq_recv(q, buf, sizeof(buf), NULL, 0);
	ipcq_ack(q);
}

static void client_send(struct fq *f, unsigned prio)
{
	static unsigned char big[3000];
	ipcq_queue *q = &f->q;

	ipcq_send(q, "small", 5, prio, 0);
	ipcq_send(q, "small again", 11, prio, 0);
	ipcq_send(q, big, sizeof(big), prio, 0);
}

/* A batch, and a loan published, with the late patches made between
 * the loan and its publish, as another sender would. */
static void client_batch(struct fq *f, unsigned prio, struct fuzz_in *late)
{
	const struct iovec msgs[] = { { "one", 3 }, { "two", 3 }, { "three", 5 } };
	ipcq_queue *q = &f->q;
	void *loan;

	ipcq_send_batch(q, msgs, ARRAY_SIZE(msgs), prio, 0);
	if (ipcq_loan(q, 500, &loan, 0) == 0) {
		memset(loan, 'L', 400);
		patch(f, late, 31);
		if (ipcq_publish(q, loan, 400, prio) < 0)
			ipcq_unloan(q, loan);
	}
}

/* The daemon writes what receivers gave up into the dead-letter queue
 * (daemon/queue.c, queue_dead_letter): this ring. */
static int write_dead_letters(const struct ring_recview *msgs, unsigned n, unsigned prio, struct fq *f)
{
	return fq_inject(&f->daemon, f->mq_rw, f->bell, msgs, n, prio);
}

/* daemon/queue.c's mq_drain and queue_purge */
static void daemon_purge(struct fq *f)
{
	unsigned char buf[FQ_MSG_SIZE];
	unsigned n = 0;
	ssize_t len;
	static const struct timespec past = { 0, 0 };

	while (n < 2 * FQ_MAX_MSGS &&
	       (len = mq_timedreceive(f->mq_rw, (char *)buf, sizeof(buf), NULL, &past)) >= 0) {
		n++;
		if (proto_msg_check(buf, (size_t)len) == PROTO_MSG_RING) {
			struct proto_ring_desc desc;

			memcpy(&desc, buf, sizeof(desc));
			ring_take_for_purge(&f->daemon, &desc);
		}
	}
	window_taken(&f->daemon, n);
	ring_purge_backlog(&f->daemon);
}

static void daemon_stat(struct fq *f)
{
	struct ring_census census;
	ipcq_stats st;

	memset(&st, 0, sizeof(st));
	ring_fill_stats(&f->daemon, &st);
	ring_census(&f->daemon, &census);
	if (st.ring_used > FQ_DATA_SIZE || st.receivers > RING_SLOTS)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct fq f;
	static bool ready;
	struct fuzz_in in = { data, size };
	unsigned flags = fuzz_u8(&in), ops = fuzz_u8(&in), answers = fuzz_u8(&in);
	struct fq_reclaim rc = { .f = &f,
		                 .lease = answers & 3,
		                 .dl = (answers >> 2 & 3) == 3 ? -EAGAIN : (int)(answers >> 2 & 1),
		                 .write = write_dead_letters };
	struct ring_reclaim_ops death, sweep;
	struct proto_ring_desc desc;
	bool recv_only = flags & F_RECV_ONLY;
	unsigned prio = answers >> 6;
	const char *why;

	if (!ready) {
		if (fq_setup(&f) < 0)
			abort();
		ready = true;
	}
	if (rc.lease > RING_LEASE_MOVE)
		rc.lease = RING_LEASE_KEEP;
	death = fq_reclaim_ops(&rc, false, answers >> 4 & 3);
	sweep = fq_reclaim_ops(&rc, true, answers >> 4 & 3);
	fuzz_bytes(&in, &desc, sizeof(desc));
	fq_reset(&f, flags & F_IMAGE, recv_only ? IPCQ_RECV : IPCQ_SEND | IPCQ_RECV);
	fq_data_writable(&f, true);
	f.meta->ttl_ms = (flags & F_TTL) ? 60000 : 0;
	f.meta->listened = (flags & F_LISTENED) != 0;
	{
		/* the forgeries come before the patches in the input, and
		 * read generations the patches may have changed */
		struct fuzz_in forgeries = in;
		uint8_t counts = fuzz_u8(&in);

		fuzz_skip(&in, (counts & 7u) * 6u);
		patch(&f, &in, counts >> 3);
		forge(&f, &forgeries);
	}

	if (flags & F_RESTART) {
		/* a new daemon adopts what it finds (daemon/queue.c, ring_adopt) */
		struct ring adopted;

		if (ring_attach(&adopted, f.ctl, f.ctl_len, f.data, f.data_len, true) < 0 ||
		    !ring_geometry_equal(&adopted, &(struct ring_geometry){ .data_size = FQ_DATA_SIZE,
		                                                            .max_payload = FQ_MAX_PAYLOAD,
		                                                            .msg_size = FQ_MSG_SIZE }) ||
		    adopted.delivery != f.daemon.delivery) {
			fq_finish(&f);
			return 0; /* not adopted */
		}
		adopted.bell = f.bell;
		f.daemon = adopted;
	}
	if (ops & OP_RESEND)
		ring_resend_desc(&f.daemon, &desc, &death);
	if (ops & OP_DEATH)
		ring_reclaim(&f.daemon, &death, &why);
	if (ops & (OP_RECV | OP_SEND | OP_BATCH)) {
		fq_data_writable(&f, !recv_only);
		if (ops & OP_SEND)
			client_send(&f, prio);
		if (ops & OP_BATCH)
			client_batch(&f, prio, &in);
		fq_data_writable(&f, true);
		patch(&f, &in, 31); /* what the loan left, if any */
		fq_data_writable(&f, !recv_only);
		if (ops & OP_RECV)
			client_recv(&f, flags);
		fq_data_writable(&f, true);
	}
	if (ops & OP_SWEEP)
		ring_reclaim(&f.daemon, &sweep, &why);
	if (ops & OP_STAT)
		daemon_stat(&f);
	if (ops & OP_PURGE)
		daemon_purge(&f);
	fq_data_writable(&f, !recv_only);
	fq_finish(&f);
	return 0;
}
