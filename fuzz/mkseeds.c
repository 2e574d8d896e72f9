/* SPDX-License-Identifier: Apache-2.0 */
/*
 * mkseeds.c - writes the fuzz targets' seed corpus: real inputs, made
 * with the project's own code, so that the fuzzer starts from what
 * clients, the daemon and administrators really write.
 *
 *   mkseeds DIR [CONFIG-FILE...]
 *
 * writes DIR/ctl (requests and replies of every operation), DIR/mq
 * (inline messages, descriptors of the chunks the queue's images hold
 * (fuzzq.h), nudges, CLOSED, and a few malformed ones), DIR/ring (each
 * image under every operation, and scribbles a hostile client makes:
 * locks held by the dead, forged states, sizes, positions, levels,
 * counters, batch records) and DIR/config (configs written here, and
 * each CONFIG-FILE).  'make fuzz-seeds' runs it into fuzz/corpus.
 */
#include "config.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fuzzq.h"
#include "ring_impl.h"

static const char *outdir;

static void put(const char *target, const char *name, const void *data, size_t len)
{
	char path[4096];
	FILE *fp;

	snprintf(path, sizeof(path), "%s/%s", outdir, target);
	mkdir(path, 0755);
	snprintf(path, sizeof(path), "%s/%s/%s", outdir, target, name);
	fp = fopen(path, "wb");
	if (!fp || fwrite(data, 1, len, fp) != len || fclose(fp) != 0) {
		fprintf(stderr, "mkseeds: %s: %s\n", path, strerror(errno));
		exit(1);
	}
}

/* ---- ctl: requests (what clients send) and replies (what the daemon sends) ---- */

static void ctl_seeds(void)
{
	static const struct {
		const char *name;
		enum proto_op op;
		uint32_t flags;
		int32_t arg;
	} reqs[] = {
		{ "open", PROTO_OP_OPEN, IPCQ_SEND | IPCQ_RECV | IPCQ_CREATE, 0 },
		{ "create", PROTO_OP_CREATE, 0, 0 },
		{ "delete", PROTO_OP_DELETE, 0, 0 },
		{ "purge", PROTO_OP_PURGE, 0, 0 },
		{ "stat", PROTO_OP_STAT, 0, 0 },
		{ "list", PROTO_OP_LIST, 0, 0 },
		{ "notify", PROTO_OP_NOTIFY, 0, 34 },
		{ "recv_bufs", PROTO_OP_RECV_BUFS, 0, 0 },
		{ "moved", PROTO_OP_MOVED, 0, 2 },
	};
	struct {
		struct proto_reply rep;
		ipcq_stats st[3];
	} reply;
	char name[64];

	for (size_t i = 0; i < ARRAY_SIZE(reqs); i++) {
		struct proto_req req;

		proto_req_init(&req, reqs[i].op, (uint32_t)i + 1, reqs[i].op == PROTO_OP_LIST ? NULL : "jobs.failed");
		req.flags = reqs[i].flags;
		req.arg = reqs[i].arg;
		if (reqs[i].op == PROTO_OP_CREATE) {
			req.geo = (ipcq_geometry){ .max_msgs = 10, .msg_size = 512, .ring_size = 1 << 20,
				                   .max_payload = 4096, .prefetch = 16 };
			req.opts.ttl_ms = 30000;
			req.opts.max_deliveries = 5;
			snprintf(req.opts.dead_letter, sizeof(req.opts.dead_letter), "dead");
		}
		if (reqs[i].op == PROTO_OP_MOVED) {
			req.arg64[0] = 4096;
			req.arg64[1] = 7;
		}
		snprintf(name, sizeof(name), "req-%s", reqs[i].name);
		put("ctl", name, &req, sizeof(req));

		/* the daemon's answer: OPEN and STAT carry one record, LIST three */
		memset(&reply, 0, sizeof(reply));
		proto_reply_init(&reply.rep, &req, 0);
		reply.rep.holder = 12;
		reply.rep.count = reqs[i].op == PROTO_OP_LIST ? 3 : reqs[i].op == PROTO_OP_OPEN || reqs[i].op == PROTO_OP_STAT;
		reply.rep.total = reply.rep.count;
		reply.rep.nfds = reqs[i].op == PROTO_OP_OPEN ? PROTO_OPEN_FDS : 0;
		for (uint32_t j = 0; j < reply.rep.count; j++) {
			snprintf(reply.st[j].name, sizeof(reply.st[j].name), "queue%u", j);
			reply.st[j].geo = req.geo;
			reply.st[j].depth = 3;
		}
		snprintf(name, sizeof(name), "reply-%s", reqs[i].name);
		put("ctl", name, &reply, sizeof(reply.rep) + reply.rep.count * sizeof(ipcq_stats));
	}
	{
		struct proto_req req;

		/* refused: a name with a slash, and a request cut short */
		proto_req_init(&req, PROTO_OP_OPEN, 99, "a/b");
		req.flags = IPCQ_RECV;
		put("ctl", "req-bad-name", &req, sizeof(req));
		put("ctl", "req-short", &req, 20);
		memset(&reply, 0, sizeof(reply));
		proto_reply_init(&reply.rep, &req, -EACCES);
		snprintf(reply.rep.errmsg, sizeof(reply.rep.errmsg), "uid 1000 may not receive from queue 'jobs'");
		put("ctl", "reply-error", &reply, sizeof(reply.rep));
	}
}

/* ---- mq: [flags][prio][counts][message] (fuzz_mq.c) ---- */

enum { MQ_BUSY = 1, MQ_ALO = 2, MQ_RO = 4, MQ_DELETED = 8, MQ_MAXD = 16, MQ_COPY = 1 << 5, MQ_BATCH = 2 << 5,
       MQ_NACK = 3 << 5, MQ_KEEP = 128 };

static void mq_seed(const char *name, unsigned flags, unsigned prio, unsigned counts, const void *msg, size_t len)
{
	unsigned char buf[3 + FQ_MSG_SIZE];

	buf[0] = (unsigned char)flags;
	buf[1] = (unsigned char)prio;
	buf[2] = (unsigned char)counts;
	memcpy(buf + 3, msg, len);
	put("mq", name, buf, 3 + len);
}

static void mq_seeds(const struct fq *f)
{
	static const char *const descs[] = { "raw", "batch", "expired", "past-pad" };
	const struct fq_known *k = &f->known[0];
	unsigned char inl[64];
	struct proto_msg_hdr h = { .kind = PROTO_MSG_INLINE, .len = 5 };
	struct proto_ring_desc d;
	char name[64];

	memcpy(inl, &h, sizeof(h));
	memcpy(inl + sizeof(h), "hello", 5);
	mq_seed("inline-view", 0, 0, 0, inl, sizeof(h) + 5);
	mq_seed("inline-copy", MQ_COPY, 1, 1, inl, sizeof(h) + 5);
	mq_seed("inline-copy-small-buffer", MQ_COPY, 1, 4, inl, sizeof(h) + 5);
	mq_seed("inline-batch-receive-only", MQ_BATCH | MQ_RO, 0, 0, inl, sizeof(h) + 5);
	mq_seed("inline-nack", MQ_NACK, 0, 0, inl, sizeof(h) + 5);
	h.len = 9;
	memcpy(inl, &h, sizeof(h));
	mq_seed("inline-bad-len", 0, 0, 0, inl, sizeof(h) + 5);
	for (unsigned i = 0; i < k->n && i < ARRAY_SIZE(descs); i++) {
		d = k->desc[i];
		snprintf(name, sizeof(name), "ring-%s-view", descs[i]);
		mq_seed(name, 0, k->prio[i], 3, &d, sizeof(d));
		snprintf(name, sizeof(name), "ring-%s-copy-at-least-once", descs[i]);
		mq_seed(name, MQ_COPY | MQ_ALO, k->prio[i], 3, &d, sizeof(d));
		snprintf(name, sizeof(name), "ring-%s-batch-receive-only-busy", descs[i]);
		mq_seed(name, MQ_BATCH | MQ_RO | MQ_BUSY, k->prio[i], 3, &d, sizeof(d));
		snprintf(name, sizeof(name), "ring-%s-nack-at-least-once-max-deliveries", descs[i]);
		mq_seed(name, MQ_NACK | MQ_ALO | MQ_MAXD, k->prio[i], 3, &d, sizeof(d));
		snprintf(name, sizeof(name), "ring-%s-kept-busy", descs[i]);
		mq_seed(name, MQ_KEEP | MQ_BUSY | MQ_ALO, k->prio[i], 2, &d, sizeof(d));
	}
	d = k->desc[0];
	d.hdr.flags = PROTO_MSGF_RESENT | PROTO_MSGF_REDELIVERED;
	mq_seed("ring-resent", 0, 0, 1, &d, sizeof(d));
	d = k->desc[1];
	d.gen += 100;
	mq_seed("ring-future-gen", 0, 0, 0, &d, sizeof(d));
	d = k->desc[1];
	d.offset += RING_ALIGN;
	mq_seed("ring-inside-payload", 0, 0, 0, &d, sizeof(d));
	mq_seed("ring-truncated", 0, 0, 0, &k->desc[0], sizeof(d) - 4);
	h = (struct proto_msg_hdr){ .kind = PROTO_MSG_CLOSED };
	mq_seed("closed-deleted", MQ_DELETED, 0, 0, &h, sizeof(h));
	mq_seed("closed-forged", 0, 0, 0, &h, sizeof(h));
	h = (struct proto_msg_hdr){ .kind = PROTO_MSG_NUDGE };
	mq_seed("nudge-busy", MQ_BUSY, 0, 3, &h, sizeof(h));
	mq_seed("nudge-busy-at-least-once-batch", MQ_BUSY | MQ_ALO | MQ_BATCH, 0, 3, &h, sizeof(h));
	mq_seed("empty-window-busy", MQ_BUSY | MQ_COPY, 0, 3, "", 0);
}

/* ---- ring: [flags][ops][answers][desc][patches] (fuzz_ring.c) ---- */

enum { R_BUSY = 1, R_ALO = 2, R_RO = 4, R_NACK = 8, R_KEEP = 16, R_RESTART = 32, R_TTL = 64, R_LISTENED = 128 };

struct seed {
	unsigned char b[4096];
	size_t n;
};

static void seed_start(struct seed *s, unsigned flags, unsigned ops, unsigned answers, const struct proto_ring_desc *d)
{
	s->b[0] = (unsigned char)flags;
	s->b[1] = (unsigned char)ops;
	s->b[2] = (unsigned char)answers;
	memcpy(s->b + 3, d, sizeof(*d));
	s->b[3 + sizeof(*d)] = 31 << 3; /* every patch first, no forgery */
	s->n = 4 + sizeof(*d);
}

/* A state word forged (fuzz_ring.c): before any patch. */
static void seed_forge(struct seed *s, uint64_t state_off, uint64_t gen_off, unsigned state, unsigned holder_sel)
{
	uint16_t i = (uint16_t)(state_off / RING_ALIGN), j = (uint16_t)(gen_off / RING_ALIGN);

	s->b[3 + sizeof(struct proto_ring_desc)]++;
	s->b[s->n++] = (unsigned char)(i >> 8);
	s->b[s->n++] = (unsigned char)i;
	s->b[s->n++] = (unsigned char)(j >> 8);
	s->b[s->n++] = (unsigned char)j;
	s->b[s->n++] = (unsigned char)state;
	s->b[s->n++] = (unsigned char)holder_sel;
}

/* A patch of len bytes at offset off of region (fuzz_ring.c). */
static void seed_patch(struct seed *s, unsigned region, size_t off, const void *bytes, size_t len)
{
	s->b[s->n++] = (unsigned char)(region << 5 | (len - 1));
	s->b[s->n++] = (unsigned char)(off >> 8);
	s->b[s->n++] = (unsigned char)off;
	memcpy(s->b + s->n, bytes, len);
	s->n += len;
}

/* ... into the data area, at offset off of it */
static void seed_patch_data(struct seed *s, uint64_t off, const void *bytes, size_t len)
{
	seed_patch(s, 4 + (unsigned)(off / (FQ_DATA_SIZE / 4)), off % (FQ_DATA_SIZE / 4), bytes, len);
}

/* ... into the state of the chunk at offset off */
static void seed_patch_state(struct seed *s, uint64_t off, size_t field, const void *bytes, size_t len)
{
	seed_patch(s, 2, off / RING_ALIGN * sizeof(struct ring_cstate) + field, bytes, len);
}

static void ring_seeds(const struct fq *f)
{
	const struct fq_known *k = &f->known[R_BUSY];
	const struct proto_ring_desc *raw = &k->desc[0], *batch = &k->desc[1];
	struct seed s;
	char name[64];
	uint64_t v;
	uint32_t v32;

	for (unsigned image = 0; image < FQ_IMAGES; image++) {
		seed_start(&s, image, 0xff, 0, raw);
		snprintf(name, sizeof(name), "image%u-all-ops", image);
		put("ring", name, s.b, s.n);
		seed_start(&s, image | R_RO | R_NACK | R_RESTART, 0xff, RING_LEASE_EXPIRED | 1 << 2 | 1 << 4, batch);
		snprintf(name, sizeof(name), "image%u-receive-only-nack-leases-expire", image);
		put("ring", name, s.b, s.n);
	}
	seed_start(&s, R_BUSY | R_ALO | R_KEEP | R_TTL, 0xff & ~0x80, RING_LEASE_MOVE | 3 << 2 | 2 << 4 | 1 << 6, raw);
	put("ring", "busy-move-aside-dead-letter-later", s.b, s.n);
	seed_start(&s, R_BUSY | R_LISTENED, 0xff, 0, raw);
	put("ring", "busy-listened", s.b, s.n);

	/* the locks, held by a client that died */
	v32 = FQ_DEAD << 1;
	seed_start(&s, R_BUSY, 0xff, 0, raw);
	seed_patch(&s, 0, offsetof(struct ring_hdr, lock), &v32, sizeof(v32));
	seed_patch(&s, 3, offsetof(struct ring_spage, lock), &v32, sizeof(v32));
	put("ring", "locks-held-by-the-dead", s.b, s.n);
	/* ... and by the live receiver itself */
	v32 = FQ_RECEIVER << 1 | 1;
	seed_start(&s, R_BUSY, 0xff, 0, raw);
	seed_patch(&s, 0, offsetof(struct ring_hdr, lock), &v32, sizeof(v32));
	put("ring", "lock-held-by-the-receiver", s.b, s.n);

	/* chunk states forged: taken by the dead, by the receiver, sealed
	 * words of another generation */
	seed_start(&s, R_BUSY | R_ALO, 0xff, 0, raw);
	v = RING_WORD(RING_TAKEN, FQ_DEAD, raw->gen);
	seed_patch_state(&s, raw->offset, offsetof(struct ring_cstate, word), &v, sizeof(v));
	v = RING_WORD(RING_TAKEN, FQ_RECEIVER, batch->gen);
	seed_patch_state(&s, batch->offset, offsetof(struct ring_cstate, word), &v, sizeof(v));
	v = ~0ull;
	seed_patch_state(&s, batch->offset, offsetof(struct ring_cstate, handed), &v, sizeof(v));
	put("ring", "states-forged", s.b, s.n);
	seed_start(&s, R_BUSY, 0xff, 0, raw);
	v = RING_WORD(RING_QUEUED, 0, raw->gen);
	seed_patch_state(&s, raw->offset, offsetof(struct ring_cstate, word), &v, sizeof(v));
	seed_patch_state(&s, raw->offset, offsetof(struct ring_cstate, level), "\x07", 1);
	v = RING_WORD(RING_DOOMED, 0, batch->gen);
	seed_patch_state(&s, batch->offset, offsetof(struct ring_cstate, word), &v, sizeof(v));
	put("ring", "states-queued-and-doomed", s.b, s.n);

	/* words copied from chunk to chunk: the batch's, taken by the
	 * receiver, at the raw message's state; the raw message's queued at
	 * the area's last state */
	seed_start(&s, R_BUSY | R_ALO | R_KEEP, 0xff, 0, batch);
	seed_forge(&s, raw->offset, batch->offset, RING_TAKEN, 2);
	seed_forge(&s, FQ_DATA_SIZE - RING_ALIGN, raw->offset, RING_QUEUED, 0);
	put("ring", "states-copied", s.b, s.n);

	/* chunk headers forged by a sender: a size, a position, a batch's
	 * count and record, a seal */
	seed_start(&s, R_BUSY, 0xff, 0, raw);
	v = 12345;
	seed_patch_data(&s, raw->offset + offsetof(struct ring_chunk, size), &v, sizeof(v));
	put("ring", "chunk-size-forged", s.b, s.n);
	seed_start(&s, R_BUSY | R_ALO, 0xff, 0, batch);
	v = FQ_DATA_SIZE * 3 - 8;
	seed_patch_data(&s, batch->offset + offsetof(struct ring_chunk, pos), &v, sizeof(v));
	put("ring", "chunk-pos-forged", s.b, s.n);
	seed_start(&s, R_BUSY, 0xff, 0, batch);
	v32 = 0xffffffffu;
	seed_patch_data(&s, batch->offset + RING_CHUNK_HDR, &v32, sizeof(v32));
	seed_patch_data(&s, batch->offset + offsetof(struct ring_chunk, count), "\x40\x00", 2);
	put("ring", "batch-records-forged", s.b, s.n);
	seed_start(&s, R_BUSY, 0xff, 0, raw);
	v = raw->gen + 1;
	seed_patch_data(&s, raw->offset + offsetof(struct ring_chunk, sealed), &v, sizeof(v));
	seed_patch_data(&s, raw->offset + offsetof(struct ring_chunk, len), "\xff\xff\x00\x00", 4);
	put("ring", "seal-and-len-forged", s.b, s.n);

	/* the senders' page: head past what the area holds, the newest
	 * batch's position */
	seed_start(&s, R_BUSY, 0xff, 0, raw);
	v = 3 * FQ_DATA_SIZE;
	seed_patch(&s, 3, offsetof(struct ring_spage, head), &v, sizeof(v));
	put("ring", "head-forged", s.b, s.n);
	seed_start(&s, R_BUSY, 0xff, 0, raw);
	v = raw->offset;
	seed_patch(&s, 3, offsetof(struct ring_spage, last), &v, sizeof(v));
	put("ring", "last-forged", s.b, s.n);

	/* the backlog's levels and counters */
	seed_start(&s, R_BUSY, 0xff, 0, raw);
	{
		struct ring_level l = { .prio = 9, .chunks = 1000, .cursor = 5 };

		seed_patch(&s, 0, offsetof(struct ring_hdr, levels) + sizeof(l), &l, sizeof(l));
		seed_patch(&s, 0, offsetof(struct ring_hdr, levels) + RING_RETURNED * sizeof(l), &l, sizeof(l));
	}
	put("ring", "levels-forged", s.b, s.n);
	seed_start(&s, R_BUSY | R_RO, 0xff, 0, raw);
	v = ~0ull >> 1;
	seed_patch(&s, 0, offsetof(struct ring_hdr, backlog), &v, sizeof(v));
	seed_patch(&s, 0, offsetof(struct ring_hdr, depth), &v, sizeof(v));
	seed_patch(&s, 0, offsetof(struct ring_hdr, sleepers), &v, 4);
	seed_patch(&s, 0, offsetof(struct ring_hdr, waiters), &v, 4);
	v = (uint64_t)-5;
	seed_patch(&s, 0, offsetof(struct ring_hdr, window_msgs), &v, sizeof(v));
	put("ring", "counters-forged", s.b, s.n);

	/* the header overwritten, and receive slots taken by the dead */
	seed_start(&s, R_RESTART, 0xff, 0, raw);
	seed_patch(&s, 0, offsetof(struct ring_hdr, data_size), "\x00\x00\x02", 3);
	put("ring", "header-overwritten", s.b, s.n);
	seed_start(&s, R_BUSY, 0xff, 0, raw);
	v32 = FQ_DEAD;
	for (unsigned i = 0; i < 8; i++)
		seed_patch(&s, 1, i * sizeof(struct ring_slot), &v32, sizeof(v32));
	put("ring", "slots-of-the-dead", s.b, s.n);
}

/* ---- config ---- */

static void config_seeds(int nfiles, char **files)
{
	static const struct {
		const char *name;
		const char *text;
	} configs[] = {
		{ "minimal", "namespace = \"test\"\n" },
		{ "queues",
		  "namespace = \"jobs-ns\"\n"
		  "socket = \"/run/ipcbroker/jobs.sock\"\n"
		  "auto_create = false\n"
		  "show_all_queues = true\n"
		  "log_level = \"debug\"\n"
		  "defaults { max_msgs = 10  msg_size = 512  ring_size = \"64M\"  max_payload = \"16M\" }\n"
		  "queue \"jobs\" {\n"
		  "  max_msgs = 10  msg_size = 1024  ring_size = \"256M\"\n"
		  "  max_depth = 1000000  prefetch = 1\n"
		  "  delivery = \"at-least-once\"  ack_timeout = \"10m\"\n"
		  "  max_deliveries = 5  dead_letter = \"jobs.failed\"  ttl = \"1h\"\n"
		  "  allow_send = { \"user:root\", \"group:root\", \"uid:1000\" }\n"
		  "  allow_recv = { \"gid:100\" }\n"
		  "}\n"
		  "queue \"jobs.failed\" { delivery = \"at-least-once\" }\n"
		  "queue \"frames\" {\n"
		  "\tring_size = \"1G\"\n"
		  "\tmax_payload = \"8M\"\n"
		  "\tallow_send = { \"*\" }\n"
		  "\tallow_recv = { }\n"
		  "}\n" },
		{ "user-limits",
		  "/* per-user bounds */\n"
		  "user_limits {\n"
		  "\tmax_clients = 16 // a few\n"
		  "\tmax_queues = 4\n"
		  "\tmax_ring_size = \"64K\"\n"
		  "\tmax_ring_total = \"1G\"\n"
		  "}\n"
		  "max_clients = 100\n" },
		{ "defaults-every-key",
		  "defaults {\n"
		  "\tmax_msgs = 8\n\tmsg_size = 256\n\tring_size = 65536\n\tmax_payload = 1024\n"
		  "\tmax_depth = 100\n\tprefetch = 64\n\tdelivery = \"at-least-once\"\n"
		  "\tack_timeout = \"30s\"\n\tttl = \"1500ms\"\n\tmax_deliveries = 3\n\tdead_letter = \"dead\"\n"
		  "}\n"
		  "queue \"dead\" { delivery = \"at-most-once\"  ttl = 0  ack_timeout = 0 }\n" },
		{ "errors",
		  "namespace = \"bad/ns\"\n"
		  "bogus = 1\n"
		  "defaults { ring_size = \"65K\"  max_payload = \"64K\" }\n"
		  "queue \".hidden\" { allow_send = { \"user:\", \"nobody:x\" } }\n"
		  "queue \"self\" { dead_letter = \"self\" }\n"
		  "queue \"self\" { }\n" },
	};

	for (size_t i = 0; i < ARRAY_SIZE(configs); i++)
		put("config", configs[i].name, configs[i].text, strlen(configs[i].text));
	for (int i = 0; i < nfiles; i++) {
		FILE *fp = fopen(files[i], "rb");
		static char text[1 << 16];
		const char *base = strrchr(files[i], '/');
		size_t n;

		if (!fp) {
			fprintf(stderr, "mkseeds: %s: %s\n", files[i], strerror(errno));
			exit(1);
		}
		n = fread(text, 1, sizeof(text), fp);
		fclose(fp);
		put("config", base ? base + 1 : files[i], text, n);
	}
}

int main(int argc, char **argv)
{
	static struct fq f;

	if (argc < 2) {
		fprintf(stderr, "usage: mkseeds DIR [CONFIG-FILE...]\n");
		return 2;
	}
	outdir = argv[1];
	mkdir(outdir, 0755);
	if (fq_setup(&f) < 0)
		return 1;
	ctl_seeds();
	mq_seeds(&f);
	ring_seeds(&f);
	config_seeds(argc - 2, argv + 2);
	return 0;
}
