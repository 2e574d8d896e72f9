/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz_mq.c - an mq message of any kind as libipcq's receive paths take
 * it (libclient/recv.c): the fuzzer's bytes are a message another client
 * put into a queue's window, and a receiving handle (fuzzq.h) takes it
 * with ipcq_recv_view, ipcq_recv or ipcq_recv_batch: an inline message,
 * a ring descriptor (of a chunk PUBLISHED in the ring, a batch, one
 * expired, one taken, anything), a nudge, CLOSED (genuine when the
 * daemon's page says the queue was deleted), or garbage.  Then it
 * releases, nacks or keeps what it was given, and closes (what it holds
 * goes back).  Nothing may crash, hang or read out of bounds; an error
 * is a fine answer.
 *
 * Input: a byte of flags, a byte of mq priority, a byte of call counts,
 * then the message (up to the queue's msg_size; none when empty).
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "fuzzq.h"

enum {
	F_BUSY = 1u << 0,          /* the busy image (fuzzq.h) */
	F_AT_LEAST_ONCE = 1u << 1, /* delivery */
	F_RECV_ONLY = 1u << 2,     /* a receive-only handle (read-only data) */
	F_DELETED = 1u << 3,       /* the daemon's page says deleted */
	F_MAX_DELIVERIES = 1u << 4, /* max_deliveries 1 */
	F_API_SHIFT = 5,           /* 2 bits: enum api */
	F_KEEP = 1u << 7,          /* views are not released (close gives back) */
};
enum api { API_VIEW, API_COPY, API_BATCH, API_NACK };

static volatile uint8_t sink;

/* Every byte of a message the library handed out: it is the caller's. */
static void read_msg(const ipcq_msg *m)
{
	const volatile uint8_t *p = m->data;
	uint8_t x = 0;

	if (m->len > FQ_MAX_PAYLOAD) {
		fprintf(stderr, "fuzz_mq: a message of %zu bytes, above max_payload\n", m->len);
		abort();
	}
	for (size_t i = 0; i < m->len; i++)
		x ^= p[i];
	sink ^= x;
}

static void done_with(ipcq_queue *q, ipcq_msg *m, unsigned flags, unsigned i)
{
	read_msg(m);
	if (flags & F_KEEP)
		return;
	if ((flags >> F_API_SHIFT & 3) == API_NACK)
		ipcq_nack(q, m, i & 1 ? IPCQ_NACK_REJECT : 0);
	else
		ipcq_release(q, m);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct fq f;
	static bool ready;
	struct fuzz_in in = { data, size };
	unsigned flags = fuzz_u8(&in), prio = fuzz_u8(&in), counts = fuzz_u8(&in);
	unsigned calls = 1 + (counts & 3);
	size_t cap = (counts & 4) ? 4 : FQ_MAX_PAYLOAD; /* ipcq_recv's buffer */
	int oflags = (flags & F_RECV_ONLY) ? IPCQ_RECV : IPCQ_SEND | IPCQ_RECV;
	ipcq_queue *q = &f.q;
	unsigned char msg[FQ_MSG_SIZE];
	size_t len = fuzz_bytes(&in, msg, sizeof(msg));

	if (!ready) {
		if (fq_setup(&f) < 0)
			abort();
		ready = true;
	}
	fq_reset(&f, (flags & F_BUSY ? FQ_BUSY : 0) | (flags & F_AT_LEAST_ONCE ? FQ_AT_LEAST_ONCE : 0), oflags);
	f.meta->deleted = (flags & F_DELETED) != 0;
	f.meta->max_deliveries = (flags & F_MAX_DELIVERIES) ? 1 : 0;
	/* into the window as a sender puts it (counted, backlog.h) */
	if (len && window_put(&f.daemon, f.mq_rw, msg, len, prio) < 0)
		abort();
	for (unsigned i = 0; i < calls; i++) {
		ipcq_msg m, batch[4];
		unsigned char *buf = malloc(cap);
		unsigned got_prio;
		ssize_t n;
		int r;

		if (!buf)
			abort();
		switch (flags >> F_API_SHIFT & 3) {
		case API_VIEW:
		case API_NACK:
			if (ipcq_recv_view(q, &m, 0) == 0)
				done_with(q, &m, flags, i);
			break;
		case API_COPY:
			n = ipcq_recv(q, buf, cap, &got_prio, 0);
			if (n > (ssize_t)cap)
				abort();
			break;
		case API_BATCH:
			r = ipcq_recv_batch(q, batch, ARRAY_SIZE(batch), 0);
			for (int j = 0; j < r; j++)
				done_with(q, &batch[j], flags, (unsigned)j);
			break;
		}
		free(buf);
	}
	if ((flags >> F_API_SHIFT & 3) == API_COPY)
		ipcq_ack(q);
	fq_finish(&f);
	return 0;
}
