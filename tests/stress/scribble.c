/* SPDX-License-Identifier: Apache-2.0 */
/*
 * scribble.c - a client that wrecks the shared memory of a queue it may
 * use, for t_scribble.sh; and the legitimate traffic the test checks
 * beside it.
 *
 *   scribble SOCKET QUEUE RIGHTS PATTERN ROUNDS AFTER
 *       RIGHTS   send | recv | both: how QUEUE is opened
 *       PATTERN  random | zero | ff | all (the three in turn, one a round)
 *                | tamper (one byte changed in the body of every traffic
 *                message found in memory it may write, nothing else)
 *       AFTER    exit (closes and exits 0) | stop (SIGSTOP: stays stopped,
 *                and exits 0 once continued) | kill (SIGKILL)
 *   scribble SOCKET QUEUE use MS TIMEOUT_MS TAG SENDERS
 *       a legitimate client that holds QUEUE before an attack: for MS
 *       milliseconds it sends traffic messages of TAG (by copy, by loan and
 *       in batches) and receives (a copy, a view, a batch of views),
 *       TIMEOUT_MS a call.  It judges each message as it comes, and holds
 *       each view through its next calls and a pause, exposed to the
 *       attack, before it judges it again and releases it.  It prints
 *       "open" once it holds the queue, and at the end what it sent, how
 *       many of the messages it received neither it nor SENDERS sent, and
 *       how many views changed while it held them, in the ring (which
 *       ipcq.h allows) and in its own memory (which it does not); exit 3
 *       if a call overran its timeout
 *   scribble SOCKET QUEUE feed TAG COUNT PAUSE_MS
 *       send COUNT traffic messages, PAUSE_MS apart, in blocks of eight:
 *       two alone, six in one ipcq_send_batch
 *   scribble SOCKET QUEUE check TAG COUNT TIMEOUT_MS
 *       receive them within TIMEOUT_MS (copies, views and batches in
 *       turn): exit 0 only if each of the COUNT arrived intact exactly
 *       once and nothing else came
 *   scribble SOCKET QUEUE drain SENDERS TIMEOUT_MS
 *       receive (copies, views and batches in turn) until QUEUE stays
 *       empty for a while, errors repeat, or TIMEOUT_MS passed: exit 4 if
 *       a message came that SENDERS did not send.  Losses, duplicates and
 *       errors are allowed, and a quarantined queue gives nothing
 *   scribble write TAG SEQ FILE
 *       write message SEQ of TAG to FILE (for ipcq send -f)
 *   scribble judge FILE SENDERS
 *       judge what ipcq recv -N wrote to FILE, messages back to back:
 *       exit 4 if one of them is not one SENDERS sent
 *
 * SENDERS says who sent on a queue: TAG:COUNT[,TAG:COUNT...], the sender
 * of TAG having sent its messages 0 to COUNT-1.
 *
 * The attack knows nothing of the ring's layout, on purpose: it finds the
 * queue's memory as any client could, as the shared mappings of /dev/shm
 * objects in /proc/self/maps, and overwrites every byte of those it may
 * write.  So the test still means something when the layout changes, and
 * it hits every field, not only those someone thought of.  The tamper
 * pattern knows the traffic's format instead, as an attacker knows the
 * application's: it looks for messages in flight wherever they lie and
 * changes one byte of each, leaving all else alone, so that no check of
 * the queue's own state notices, and only the rights the memory is mapped
 * with can stop it.  The attack also tries to forge messages of every
 * length on the queue's mq, and the kernel decides whether it may (a
 * receive-only descriptor must refuse).  Between rounds it calls the
 * library on the wreck: the calls may fail, but must return within their
 * timeouts ("late" counts those that did not), and must not crash this
 * process.
 *
 * It prints one line of what it did, then does AFTER.  Every wait it
 * makes is bounded.  Exit 1 means it could not attack (no connection, no
 * queue, no shared mapping, or none writable with send rights): the test
 * is broken, not the daemon.
 *
 * A traffic message is a header {magic, tag, seq, len, checksum} and
 * bytes derived from (tag, seq); message seq of a tag is 20000 bytes
 * (through the ring) when seq % 4 is 1, else 100 (inline, or a record of
 * a batch).  So the checker tells by itself an intact message from a
 * damaged or invented one, and, given who sent what, one really sent from
 * one never sent.
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <mqueue.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "client.h" /* the handle's raw mq, which a hostile client would use */
#include "ipcq.h"
#include "pattern.h"
#include "timing.h"

#define CALL_TIMEOUT_MS 100
/* a call that returns this much after its timeout is late: far beyond
 * scheduling noise, even under a sanitizer */
#define LATE_MARGIN_MS 1000
#define ROUND_PAUSE_US 20000
#define FORGE_PER_ROUND 64
#define INLINE_LEN 100
#define RING_LEN 20000
#define RECV_CAP 65536
#define RECV_BATCH 8
#define SEND_TIMEOUT_MS 5000
#define EXTRA_WAIT_MS 300
/* drain: the queue counts as empty once nothing came for this long, and
 * as beyond use after this many errors in a row (each a rejected message,
 * say) */
#define DRAIN_IDLE_MS 500
#define DRAIN_ERRORS_MAX 20
/* feed: blocks of FEED_BLOCK messages, the first FEED_SINGLES alone and
 * the rest in one batch */
#define FEED_BLOCK 8
#define FEED_SINGLES 2
#define USE_BATCH 6
#define SENDERS_MAX 8
#define WHY_MAX 200
#define JUDGE_FILE_MAX (1u << 20)
#define MAPPINGS_MAX 64
#define SHM_PREFIX "/dev/shm/"
#define MSG_MAGIC 0x42524353u /* "SCRB" */

enum pattern { PAT_RANDOM, PAT_ZERO, PAT_FF, PAT_ALL, PAT_TAMPER };
enum after { AFTER_EXIT, AFTER_STOP, AFTER_KILL };

static const char *const pattern_names[] = { "random", "zero", "ff", "all", "tamper" };
static const char *const after_names[] = { "exit", "stop", "kill" };

struct mapping {
	unsigned char *start;
	size_t len;
	bool writable;
};

/* what an attack did, for its report line */
struct tally {
	unsigned mappings, writable;
	uint64_t bytes;
	unsigned long tampered;
	unsigned long forged, forge_errors;
	unsigned long calls, errors, late;
	uint64_t slowest_ms;
	bool mq_refused; /* the kernel refused a send on the descriptor */
};

static uint64_t rng_state;

static uint64_t rnd(void)
{
	return splitmix64(&rng_state);
}

/* Milliseconds left until deadline (a now_ms() time), 0 once it passed. */
static int ms_until(uint64_t deadline)
{
	uint64_t now = now_ms();

	if (now >= deadline)
		return 0;
	return deadline - now > INT32_MAX ? INT32_MAX : (int)(deadline - now);
}

/* ---- traffic messages ---- */

struct msg_hdr {
	uint32_t magic;
	uint32_t tag;
	uint32_t seq;
	uint32_t len; /* whole message, header included */
	uint64_t checksum;
};

/* who sent what on a queue: the sender of tag[i] sent its messages 0 to
 * count[i]-1 */
struct senders {
	unsigned n;
	uint32_t tag[SENDERS_MAX];
	uint32_t count[SENDERS_MAX];
};

static size_t msg_len_of(uint32_t seq)
{
	return seq % 4 == 1 ? RING_LEN : INLINE_LEN;
}

static void build_msg(unsigned char *buf, uint32_t tag, uint32_t seq)
{
	size_t len = msg_len_of(seq);
	struct msg_hdr h = { .magic = MSG_MAGIC, .tag = tag, .seq = seq, .len = (uint32_t)len };

	pattern_fill(buf + sizeof(h), len - sizeof(h), ((uint64_t)tag << 32) | seq);
	h.checksum = pattern_checksum(buf + sizeof(h), len - sizeof(h));
	memcpy(buf, &h, sizeof(h));
}

enum verdict {
	MSG_INTACT,  /* sent by one of the senders */
	MSG_DAMAGED, /* no traffic message, or one changed */
	MSG_FOREIGN, /* intact, of a tag none of the senders has */
	MSG_UNSENT,  /* intact, of a sender's tag, beyond what it sent */
};

/* Judge the n bytes at p against senders.  An intact message of theirs
 * sets *who (its sender's index) and *seq; anything else is said in why. */
static enum verdict judge_msg(const unsigned char *p, size_t n, const struct senders *s, unsigned *who,
                              uint32_t *seq, char *why, size_t whycap)
{
	unsigned char want[RING_LEN];
	struct msg_hdr h;
	size_t at;
	unsigned i;

	if (n < sizeof(h)) {
		snprintf(why, whycap, "%zu bytes, too short for a traffic message", n);
		return MSG_DAMAGED;
	}
	memcpy(&h, p, sizeof(h));
	if (h.magic != MSG_MAGIC) {
		snprintf(why, whycap, "%zu bytes that are no traffic message (they begin %02x %02x %02x %02x)", n, p[0],
		         p[1], p[2], p[3]);
		return MSG_DAMAGED;
	}
	if (h.len != n || msg_len_of(h.seq) != n) {
		snprintf(why, whycap,
		         "%zu bytes headed as message %" PRIu32 " of tag %" PRIu32 " of %" PRIu32
		         " bytes (that message has %zu)",
		         n, h.seq, h.tag, h.len, msg_len_of(h.seq));
		return MSG_DAMAGED;
	}
	build_msg(want, h.tag, h.seq);
	for (at = 0; at < n && want[at] == p[at]; at++)
		;
	if (at < n) {
		snprintf(why, whycap,
		         "message %" PRIu32 " of tag %" PRIu32 " (%zu bytes) changed: byte %zu is %02x, not %02x", h.seq,
		         h.tag, n, at, p[at], want[at]);
		return MSG_DAMAGED;
	}
	for (i = 0; i < s->n && s->tag[i] != h.tag; i++)
		;
	if (i == s->n) {
		snprintf(why, whycap, "message %" PRIu32 " of tag %" PRIu32 ", a tag no sender of this queue has", h.seq,
		         h.tag);
		return MSG_FOREIGN;
	}
	if (h.seq >= s->count[i]) {
		snprintf(why, whycap, "message %" PRIu32 " of tag %" PRIu32 ", whose sender sent only %" PRIu32, h.seq,
		         h.tag, s->count[i]);
		return MSG_UNSENT;
	}
	*who = i;
	*seq = h.seq;
	return MSG_INTACT;
}

static int parse_u32(const char *s, uint32_t *out)
{
	char *end;
	unsigned long v = strtoul(s, &end, 10);

	if (!*s || *end || v > UINT32_MAX)
		return -EINVAL;
	*out = (uint32_t)v;
	return 0;
}

/* "TAG:COUNT[,TAG:COUNT...]" */
static int parse_senders(const char *arg, struct senders *s)
{
	const char *p = arg;

	s->n = 0;
	for (;;) {
		unsigned long tag, count;
		char *end;

		if (s->n == SENDERS_MAX)
			return -EINVAL;
		tag = strtoul(p, &end, 10);
		if (end == p || *end != ':' || tag > UINT32_MAX)
			return -EINVAL;
		p = end + 1;
		count = strtoul(p, &end, 10);
		if (end == p || (*end && *end != ',') || count > UINT32_MAX)
			return -EINVAL;
		s->tag[s->n] = (uint32_t)tag;
		s->count[s->n] = (uint32_t)count;
		s->n++;
		if (!*end)
			return 0;
		p = end + 1;
	}
}

/* What a receiver of a queue got, judged against who sent on it: any
 * message not sent is noted, and the first one described. */
struct receipts {
	const struct senders *senders;
	unsigned long received, intact, not_sent;
	unsigned long intact_of[SENDERS_MAX];
	char first[WHY_MAX];
	/* views intact when received that changed while held: in the ring,
	 * which ipcq.h allows (a hostile client of the queue may have the
	 * space reused under the view), or in the handle's own memory, which
	 * must not change */
	unsigned long changed_in_ring, changed_own;
	char first_changed_own[WHY_MAX];
};

/* Judge a message as it is received; whether it is intact. */
static bool receipt_intact(struct receipts *k, const unsigned char *p, size_t n)
{
	char why[WHY_MAX];
	unsigned who;
	uint32_t seq;

	k->received++;
	if (judge_msg(p, n, k->senders, &who, &seq, why, sizeof(why)) == MSG_INTACT) {
		k->intact++;
		k->intact_of[who]++;
		return true;
	}
	if (k->not_sent++ == 0)
		snprintf(k->first, sizeof(k->first), "%s", why);
	return false;
}

static void note_receipt(void *ctx, const unsigned char *p, size_t n)
{
	receipt_intact(ctx, p, n);
}

/* Judge again a view that was intact when received, before its release;
 * shared says whether it lies in shared memory (the ring). */
static void recheck_held(struct receipts *k, const unsigned char *p, size_t n, bool shared)
{
	char why[WHY_MAX];
	unsigned who;
	uint32_t seq;

	if (judge_msg(p, n, k->senders, &who, &seq, why, sizeof(why)) == MSG_INTACT)
		return;
	if (shared)
		k->changed_in_ring++;
	else if (k->changed_own++ == 0)
		snprintf(k->first_changed_own, sizeof(k->first_changed_own), "%s", why);
}

/* "received R: intact I (by tag: TAG n, ...), not sent B" */
static void print_receipts(const struct receipts *k)
{
	printf("received %lu: intact %lu (by tag:", k->received, k->intact);
	for (unsigned i = 0; i < k->senders->n; i++)
		printf("%s %" PRIu32 " %lu", i ? "," : "", k->senders->tag[i], k->intact_of[i]);
	printf("), not sent %lu", k->not_sent);
}

/* ---- finding what to scribble ---- */

/* One line of /proc/self/maps, if it is a shared mapping of a /dev/shm
 * object ("s" in its permissions). */
static bool parse_shm_mapping(const char *line, struct mapping *m)
{
	uintptr_t lo, hi;
	char perms[5];
	int path_at = 0;

	if (sscanf(line, "%" SCNxPTR "-%" SCNxPTR " %4s %*s %*s %*s %n", &lo, &hi, perms, &path_at) < 3 ||
	    path_at == 0)
		return false;
	if (perms[3] != 's' || strncmp(line + path_at, SHM_PREFIX, strlen(SHM_PREFIX)) != 0 || hi <= lo)
		return false;
	*m = (struct mapping){ .start = (unsigned char *)lo, .len = hi - lo, .writable = perms[1] == 'w' };
	return true;
}

/* The shared /dev/shm mappings of this process; their count or -errno.
 * Read anew each round, so a mapping the library dropped is never
 * touched. */
static int find_shm_mappings(struct mapping *out, size_t cap)
{
	FILE *f = fopen("/proc/self/maps", "re");
	char *line = NULL;
	size_t linecap = 0;
	size_t n = 0;

	if (!f)
		return -errno;
	while (getline(&line, &linecap, f) > 0 && n < cap)
		if (parse_shm_mapping(line, &out[n]))
			n++;
	free(line);
	fclose(f);
	return (int)n;
}

/* Whether the n bytes at p lie in one of the mappings. */
static bool in_mappings(const void *p, size_t n, const struct mapping *maps, int nmaps)
{
	const unsigned char *b = p;

	for (int i = 0; i < nmaps; i++)
		if (b >= maps[i].start && n <= maps[i].len && (size_t)(b - maps[i].start) <= maps[i].len - n)
			return true;
	return false;
}

/* ---- scribbling ---- */

static void fill(unsigned char *p, size_t len, enum pattern pat)
{
	if (pat == PAT_ZERO)
		memset(p, 0, len);
	else if (pat == PAT_FF)
		memset(p, 0xff, len);
	else
		pattern_fill(p, len, rnd());
}

/* Change one byte in the body of every traffic message in the len bytes
 * at p, wherever it lies (in a ring chunk, a batch, a receive slot);
 * returns how many. */
static unsigned long tamper(unsigned char *p, size_t len)
{
	static const uint32_t magic = MSG_MAGIC;
	unsigned long n = 0;
	size_t at = 0;

	for (;;) {
		unsigned char *hit = memmem(p + at, len - at, &magic, sizeof(magic));
		struct msg_hdr h;
		size_t off;

		if (!hit)
			return n;
		off = (size_t)(hit - p);
		at = off + sizeof(magic);
		if (len - off < sizeof(h))
			return n;
		memcpy(&h, hit, sizeof(h));
		if (h.len <= sizeof(h) || h.len > RING_LEN || h.len > len - off)
			continue;
		hit[sizeof(h) + rnd() % (h.len - sizeof(h))] ^= (unsigned char)(1u << (rnd() % 8));
		n++;
	}
}

/* Overwrite every byte of every writable mapping (or, for tamper, the
 * traffic messages in them); 0 or -errno.  Nothing else in this process
 * uses those bytes except through the library, which must cope. */
static int scribble_mappings(enum pattern pat, struct tally *t)
{
	struct mapping maps[MAPPINGS_MAX];
	int n = find_shm_mappings(maps, MAPPINGS_MAX);

	if (n < 0)
		return n;
	t->mappings = (unsigned)n;
	t->writable = 0;
	for (int i = 0; i < n; i++) {
		if (!maps[i].writable)
			continue;
		t->writable++;
		if (pat == PAT_TAMPER) {
			unsigned long k = tamper(maps[i].start, maps[i].len);

			t->tampered += k;
			t->bytes += k;
		} else {
			fill(maps[i].start, maps[i].len, pat);
			t->bytes += maps[i].len;
		}
	}
	return 0;
}

/* Forge messages of random lengths (0 to msg_size) onto the mq until it
 * is full.  The kernel says whether we may: EBADF on a receive-only
 * descriptor ends the forging for good. */
static void forge_messages(mqd_t mq, enum pattern pat, struct tally *t)
{
	struct mq_attr attr;
	unsigned char *buf;

	if (t->mq_refused || mq_getattr(mq, &attr) < 0 || attr.mq_msgsize <= 0)
		return;
	buf = malloc((size_t)attr.mq_msgsize);
	if (!buf)
		return;
	for (int i = 0; i < FORGE_PER_ROUND; i++) {
		size_t len = (size_t)(rnd() % ((uint64_t)attr.mq_msgsize + 1));
		struct timespec dl;

		fill(buf, len, pat);
		clock_gettime(CLOCK_REALTIME, &dl);
		dl.tv_nsec += CALL_TIMEOUT_MS * 1000000L;
		if (dl.tv_nsec >= 1000000000L) {
			dl.tv_sec++;
			dl.tv_nsec -= 1000000000L;
		}
		if (mq_timedsend(mq, (const char *)buf, len, (unsigned)(rnd() % 32), &dl) == 0) {
			t->forged++;
			continue;
		}
		if (errno == EBADF)
			t->mq_refused = true;
		else if (errno != ETIMEDOUT && errno != EAGAIN)
			t->forge_errors++;
		break; /* refused, or full: the next round tries again */
	}
	free(buf);
}

/* ---- the library against the wreck ---- */

/* Count a library call that started at t0 with timeout_ms. */
static void account(struct tally *t, long r, uint64_t t0, int timeout_ms)
{
	uint64_t took = now_ms() - t0;

	t->calls++;
	if (r < 0)
		t->errors++;
	if (took > t->slowest_ms)
		t->slowest_ms = took;
	if (took > (uint64_t)timeout_ms + LATE_MARGIN_MS) {
		t->late++;
		fprintf(stderr, "scribble: a call with a %d ms timeout took %" PRIu64 " ms (it returned %ld: %s)\n",
		        timeout_ms, took, r, r < 0 ? ipcq_strerror((int)r) : "success");
	}
}

static void exercise_send(ipcq_queue *q, unsigned char *buf, int timeout_ms, struct tally *t)
{
	uint64_t t0 = now_ms();
	void *loan;
	int r;

	account(t, ipcq_send(q, buf, INLINE_LEN, 0, timeout_ms), t0, timeout_ms);
	t0 = now_ms();
	account(t, ipcq_send(q, buf, RING_LEN, 0, timeout_ms), t0, timeout_ms);
	/* a loan handed out on a wreck must still lie in memory we may
	 * write; it is given back, as ipcq_publish has no timeout and the
	 * forged messages may have filled the mq */
	t0 = now_ms();
	r = ipcq_loan(q, RING_LEN, &loan, timeout_ms);
	account(t, r, t0, timeout_ms);
	if (r == 0) {
		memset(loan, 0x5a, RING_LEN);
		t0 = now_ms();
		account(t, ipcq_unloan(q, loan), t0, 0);
	}
}

static void exercise_recv(ipcq_queue *q, unsigned char *buf, int timeout_ms, struct tally *t)
{
	uint64_t t0 = now_ms();
	ipcq_msg m;
	int r;

	account(t, (long)ipcq_recv(q, buf, RECV_CAP, NULL, timeout_ms), t0, timeout_ms);
	t0 = now_ms();
	r = ipcq_recv_view(q, &m, timeout_ms);
	account(t, r, t0, timeout_ms);
	if (r == 0) {
		/* a view of a wreck must still lie in memory we may read */
		volatile uint64_t sink = pattern_checksum(m.data, m.len);

		(void)sink;
		t0 = now_ms();
		account(t, ipcq_release(q, &m), t0, 0);
	}
}

/* ---- the attack ---- */

struct attack {
	const char *queue;
	int flags;
	enum pattern pattern;
	unsigned rounds;
	enum after after;
};

static int parse_attack(char **argv, struct attack *a)
{
	unsigned long rounds;
	char *end;
	int i;

	a->queue = argv[2];
	if (strcmp(argv[3], "send") == 0)
		a->flags = IPCQ_SEND;
	else if (strcmp(argv[3], "recv") == 0)
		a->flags = IPCQ_RECV;
	else if (strcmp(argv[3], "both") == 0)
		a->flags = IPCQ_SEND | IPCQ_RECV;
	else
		return -EINVAL;
	for (i = 0; i <= PAT_TAMPER && strcmp(argv[4], pattern_names[i]) != 0; i++)
		;
	if (i > PAT_TAMPER)
		return -EINVAL;
	a->pattern = (enum pattern)i;
	rounds = strtoul(argv[5], &end, 10);
	if (*end || rounds == 0 || rounds > 1000)
		return -EINVAL;
	a->rounds = (unsigned)rounds;
	for (i = 0; i <= AFTER_KILL && strcmp(argv[6], after_names[i]) != 0; i++)
		;
	if (i > AFTER_KILL)
		return -EINVAL;
	a->after = (enum after)i;
	return 0;
}

static void report(const struct attack *a, const char *rights, const struct tally *t)
{
	printf("scribble %s %s %s: %u rounds over %u shared mappings (%u writable), %" PRIu64
	       " bytes written (%lu traffic messages altered); forged %lu mq messages (%s, %lu other errors);"
	       " library calls %lu, errors %lu, late %lu, slowest %" PRIu64 " ms\n",
	       rights, pattern_names[a->pattern], after_names[a->after], a->rounds, t->mappings, t->writable,
	       t->bytes, t->tampered, t->forged, t->mq_refused ? "the mq refused writes" : "the mq took writes",
	       t->forge_errors, t->calls, t->errors, t->late, t->slowest_ms);
	fflush(stdout);
}

/* Whether the attack found what it needs: shared mappings at all, and a
 * writable one when it may send (a sender writes payloads).  A
 * receive-only client may well have nothing writable. */
static bool attack_found_memory(const struct attack *a, const struct tally *t)
{
	return t->mappings > 0 && (t->writable > 0 || !(a->flags & IPCQ_SEND));
}

static int run_rounds(const struct attack *a, ipcq_queue *q, struct tally *t)
{
	unsigned char *buf = malloc(RECV_CAP);
	int r = 0;

	if (!buf)
		return -ENOMEM;
	memset(buf, 0x77, RECV_CAP);
	for (unsigned i = 0; i < a->rounds; i++) {
		enum pattern pat = a->pattern == PAT_ALL ? (enum pattern)(i % PAT_ALL) : a->pattern;

		r = scribble_mappings(pat, t);
		if (r < 0 || !attack_found_memory(a, t))
			break;
		forge_messages(q->mq, pat, t);
		if (i + 1 == a->rounds)
			break; /* leave the wreck as the last round made it */
		usleep(ROUND_PAUSE_US);
		if (a->flags & IPCQ_SEND)
			exercise_send(q, buf, CALL_TIMEOUT_MS, t);
		if (a->flags & IPCQ_RECV)
			exercise_recv(q, buf, CALL_TIMEOUT_MS, t);
	}
	free(buf);
	return r;
}

static int mode_attack(const char *sock, char **argv)
{
	struct attack a;
	struct tally t = { 0 };
	ipcq_client *c;
	ipcq_queue *q;
	int r;

	if (parse_attack(argv, &a) < 0) {
		fprintf(stderr, "scribble: bad arguments\n");
		return 2;
	}
	r = ipcq_connect(&c, sock);
	if (r < 0) {
		fprintf(stderr, "scribble: connect: %s\n", ipcq_strerror(r));
		return 1;
	}
	r = ipcq_open(c, a.queue, a.flags, &q);
	if (r < 0) {
		fprintf(stderr, "scribble: open %s: %s\n", a.queue, ipcq_strerror(r));
		ipcq_disconnect(c);
		return 1;
	}
	r = run_rounds(&a, q, &t);
	if (r < 0 || !attack_found_memory(&a, &t)) {
		fprintf(stderr, "scribble: no %sshared mapping of %s found in /proc/self/maps (%s)\n",
		        t.mappings ? "writable " : "", SHM_PREFIX,
		        r < 0 ? strerror(-r) : "the test no longer sees the queue's memory");
		ipcq_close(q);
		ipcq_disconnect(c);
		return 1;
	}
	report(&a, argv[3], &t);
	if (a.after == AFTER_KILL)
		raise(SIGKILL);
	if (a.after == AFTER_STOP)
		raise(SIGSTOP);
	ipcq_close(q);
	ipcq_disconnect(c);
	return 0;
}

/* ---- legitimate traffic ---- */

static int open_traffic(const char *sock, const char *name, int flags, ipcq_client **c, ipcq_queue **q)
{
	int r = ipcq_connect(c, sock);

	if (r == 0) {
		r = ipcq_open(*c, name, flags, q);
		if (r < 0)
			ipcq_disconnect(*c);
	}
	if (r < 0)
		fprintf(stderr, "scribble: open %s: %s\n", name, ipcq_strerror(r));
	return r;
}

/* Send messages from to from+n-1 of tag, built in bufs (n of RING_LEN
 * bytes): each with ipcq_send, or all with one ipcq_send_batch; how many
 * went, or the error when none did. */
static int send_traffic(ipcq_queue *q, uint32_t tag, uint32_t from, unsigned n, bool batch, unsigned char *bufs,
                        int timeout_ms)
{
	struct iovec iov[FEED_BLOCK];
	unsigned i;
	int r = 0;

	for (i = 0; i < n; i++) {
		build_msg(bufs + (size_t)i * RING_LEN, tag, from + i);
		iov[i] = (struct iovec){ .iov_base = bufs + (size_t)i * RING_LEN, .iov_len = msg_len_of(from + i) };
	}
	if (batch)
		return ipcq_send_batch(q, iov, n, 0, timeout_ms);
	for (i = 0; i < n && (r = ipcq_send(q, iov[i].iov_base, iov[i].iov_len, 0, timeout_ms)) == 0; i++)
		;
	return i ? (int)i : r;
}

static int mode_feed(const char *sock, char **argv)
{
	uint32_t tag, count, pause_ms, sent = 0;
	unsigned char *bufs;
	ipcq_client *c;
	ipcq_queue *q;

	if (parse_u32(argv[4], &tag) < 0 || parse_u32(argv[5], &count) < 0 || parse_u32(argv[6], &pause_ms) < 0)
		return 2;
	bufs = malloc((size_t)FEED_BLOCK * RING_LEN);
	if (!bufs || open_traffic(sock, argv[2], IPCQ_SEND, &c, &q) < 0) {
		free(bufs);
		return 1;
	}
	while (sent < count) {
		bool batch = sent % FEED_BLOCK >= FEED_SINGLES;
		unsigned n = batch ? FEED_BLOCK - sent % FEED_BLOCK : 1;
		int r;

		if (n > count - sent)
			n = count - sent;
		r = send_traffic(q, tag, sent, n, batch, bufs, SEND_TIMEOUT_MS);
		if (r > 0)
			sent += (uint32_t)r;
		if (r < (int)n) {
			fprintf(stderr, "scribble: feed: message %" PRIu32 ": %s\n", sent,
			        r < 0 ? ipcq_strerror(r) : "a batch went out in part");
			break;
		}
		usleep(pause_ms * 1000u * n);
	}
	printf("feed %s: tag %" PRIu32 ": sent %" PRIu32 " of %" PRIu32 "\n", argv[2], tag, sent, count);
	ipcq_close(q);
	ipcq_disconnect(c);
	free(bufs);
	return sent == count ? 0 : 1;
}

typedef void on_msg_fn(void *ctx, const unsigned char *p, size_t n);

/* Receive in the way-th of three ways (a copy, a view, a batch of views),
 * hand each message to on_msg and release it; how many, or the receive's
 * negative errno.  -EMSGSIZE keeps a message too long for a copy, and the
 * next way, a view, takes it. */
static int receive_some(ipcq_queue *q, unsigned way, unsigned char *buf, int timeout_ms, on_msg_fn *on_msg,
                        void *ctx)
{
	ipcq_msg m[RECV_BATCH];
	ssize_t n;
	int r;

	switch (way % 3) {
	case 0:
		n = ipcq_recv(q, buf, RECV_CAP, NULL, timeout_ms);
		if (n < 0)
			return (int)n;
		on_msg(ctx, buf, (size_t)n);
		return 1;
	case 1:
		r = ipcq_recv_view(q, &m[0], timeout_ms);
		if (r == 0)
			r = 1;
		break;
	default:
		r = ipcq_recv_batch(q, m, RECV_BATCH, timeout_ms);
		break;
	}
	for (int i = 0; i < r && i < RECV_BATCH; i++) {
		on_msg(ctx, m[i].data, m[i].len);
		ipcq_release(q, &m[i]);
	}
	return r;
}

struct check_counts {
	uint32_t intact, damaged, duplicate, foreign, extra, errors;
};

struct check {
	const struct senders *senders; /* the one sender checked */
	bool *seen;
	struct check_counts k;
};

static void check_msg(void *ctx, const unsigned char *p, size_t n)
{
	struct check *c = ctx;
	bool after_last = c->k.intact == c->senders->count[0];
	char why[WHY_MAX];
	unsigned who;
	uint32_t seq;

	switch (judge_msg(p, n, c->senders, &who, &seq, why, sizeof(why))) {
	case MSG_INTACT:
		if (c->seen[seq]) {
			c->k.duplicate++;
		} else {
			c->seen[seq] = true;
			c->k.intact++;
		}
		break;
	case MSG_FOREIGN:
		c->k.foreign++;
		break;
	default:
		c->k.damaged++;
		fprintf(stderr, "scribble: check: %s\n", why);
	}
	if (after_last)
		c->k.extra++;
}

static int mode_check(const char *sock, char **argv)
{
	struct senders s = { .n = 1 };
	struct check c = { .senders = &s };
	struct check_counts *k = &c.k;
	uint32_t timeout_ms, count;
	unsigned char *buf;
	uint64_t deadline;
	unsigned way = 0;
	ipcq_client *cl;
	ipcq_queue *q;
	int r;

	if (parse_u32(argv[4], &s.tag[0]) < 0 || parse_u32(argv[5], &s.count[0]) < 0 ||
	    parse_u32(argv[6], &timeout_ms) < 0)
		return 2;
	count = s.count[0];
	c.seen = calloc(count + 1, sizeof(*c.seen));
	buf = malloc(RECV_CAP);
	if (!c.seen || !buf || open_traffic(sock, argv[2], IPCQ_RECV, &cl, &q) < 0) {
		free(c.seen);
		free(buf);
		return 1;
	}
	deadline = now_ms() + timeout_ms;
	for (int left; k->intact < count && (left = ms_until(deadline)) > 0; way++) {
		r = receive_some(q, way, buf, left, check_msg, &c);
		if (r < 0 && r != -ETIMEDOUT && r != -EAGAIN && r != -EMSGSIZE) {
			fprintf(stderr, "scribble: check: receive: %s\n", ipcq_strerror(r));
			k->errors++;
			break;
		}
	}
	/* once all came, nothing more may come */
	while (k->intact == count && k->extra < count && receive_some(q, way++, buf, EXTRA_WAIT_MS, check_msg, &c) > 0)
		;
	printf("check %s: tag %" PRIu32 ": %u of %u intact, %u damaged, %u duplicates, %u foreign, %u errors, "
	       "%u missing, %u after the last\n",
	       argv[2], s.tag[0], k->intact, count, k->damaged, k->duplicate, k->foreign, k->errors, count - k->intact,
	       k->extra);
	ipcq_close(q);
	ipcq_disconnect(cl);
	free(c.seen);
	free(buf);
	return k->intact == count && !k->damaged && !k->duplicate && !k->foreign && !k->errors && !k->extra ? 0 : 1;
}

/* Take everything QUEUE gives and judge it: exit 4 if a message came that
 * SENDERS did not send.  Receive errors are allowed (a wreck may fail
 * every call), and a queue quarantined before it could be opened gives
 * nothing. */
static int mode_drain(const char *sock, char **argv)
{
	struct senders s;
	struct receipts k = { .senders = &s };
	unsigned long errors = 0;
	unsigned errors_in_a_row = 0;
	int last_error = 0, left;
	uint32_t timeout_ms;
	unsigned char *buf;
	uint64_t deadline;
	ipcq_client *c;
	ipcq_queue *q;
	int r;

	if (parse_senders(argv[4], &s) < 0 || parse_u32(argv[5], &timeout_ms) < 0)
		return 2;
	buf = malloc(RECV_CAP);
	if (!buf)
		return 1;
	r = ipcq_connect(&c, sock);
	if (r < 0) {
		fprintf(stderr, "scribble: drain: connect: %s\n", ipcq_strerror(r));
		free(buf);
		return 1;
	}
	r = ipcq_open(c, argv[2], IPCQ_RECV, &q);
	if (r < 0) {
		ipcq_disconnect(c);
		free(buf);
		if (r != -EIO) {
			fprintf(stderr, "scribble: drain: open %s: %s\n", argv[2], ipcq_strerror(r));
			return 1;
		}
		printf("drain %s: quarantined, nothing received\n", argv[2]);
		return 0;
	}
	deadline = now_ms() + timeout_ms;
	for (unsigned way = 0; (left = ms_until(deadline)) > 0; way++) {
		r = receive_some(q, way, buf, left < DRAIN_IDLE_MS ? left : DRAIN_IDLE_MS, note_receipt, &k);
		if (r > 0 || r == -EMSGSIZE) {
			errors_in_a_row = 0;
			continue;
		}
		if (r == -ETIMEDOUT || r == -EAGAIN)
			break; /* empty */
		errors++;
		last_error = r;
		/* quarantined or deleted: for good */
		if (r == -EIO || r == -EIDRM || ++errors_in_a_row == DRAIN_ERRORS_MAX)
			break;
		usleep(ROUND_PAUSE_US);
	}
	printf("drain %s: ", argv[2]);
	print_receipts(&k);
	printf(", errors %lu%s%s\n", errors, errors ? ", the last: " : "", errors ? ipcq_strerror(last_error) : "");
	if (k.not_sent)
		printf("drain %s: first not sent: %s\n", argv[2], k.first);
	ipcq_close(q);
	ipcq_disconnect(c);
	free(buf);
	return k.not_sent ? 4 : 0;
}

static int mode_write(char **argv)
{
	unsigned char buf[RING_LEN];
	uint32_t tag, seq;
	FILE *f;
	bool ok;

	if (parse_u32(argv[2], &tag) < 0 || parse_u32(argv[3], &seq) < 0)
		return 2;
	build_msg(buf, tag, seq);
	f = fopen(argv[4], "wbe");
	if (!f) {
		fprintf(stderr, "scribble: write %s: %s\n", argv[4], strerror(errno));
		return 1;
	}
	ok = fwrite(buf, 1, msg_len_of(seq), f) == msg_len_of(seq);
	if (fclose(f) != 0 || !ok) {
		fprintf(stderr, "scribble: write %s: failed\n", argv[4]);
		return 1;
	}
	return 0;
}

/* Messages back to back, as ipcq recv -N writes them: each header says
 * how far its message goes; what cannot be a message is judged whole. */
static int mode_judge(char **argv)
{
	unsigned char *buf = malloc(JUDGE_FILE_MAX + 1);
	struct senders s;
	struct receipts k = { .senders = &s };
	size_t n, at = 0;
	FILE *f;

	if (!buf || parse_senders(argv[3], &s) < 0) {
		free(buf);
		return 2;
	}
	f = fopen(argv[2], "rbe");
	if (!f) {
		fprintf(stderr, "scribble: judge %s: %s\n", argv[2], strerror(errno));
		free(buf);
		return 1;
	}
	n = fread(buf, 1, JUDGE_FILE_MAX + 1, f);
	fclose(f);
	while (at < n) {
		struct msg_hdr h;
		size_t len = n - at;

		if (len >= sizeof(h)) {
			memcpy(&h, buf + at, sizeof(h));
			if (h.magic == MSG_MAGIC && h.len >= sizeof(h) && h.len <= len)
				len = h.len;
		}
		note_receipt(&k, buf + at, len);
		at += len;
	}
	printf("judge %s: ", argv[2]);
	print_receipts(&k);
	printf("\n");
	if (k.not_sent)
		printf("judge %s: first not sent: %s\n", argv[2], k.first);
	free(buf);
	return k.not_sent ? 4 : 0;
}

/* ---- a legitimate client of the attacked queue ---- */

/* One round of a user's sends: two copies, a loan, a batch; its next
 * message numbers, counted in *next whether or not the call succeeded,
 * so that a message that went out despite an error is still known as
 * sent. */
static void use_send(ipcq_queue *q, uint32_t tag, uint32_t *next, unsigned char *bufs, int timeout_ms,
                     struct tally *t)
{
	uint64_t t0;
	size_t len;
	void *loan;
	int r;

	for (int i = 0; i < 2; i++) {
		t0 = now_ms();
		account(t, send_traffic(q, tag, (*next)++, 1, false, bufs, timeout_ms), t0, timeout_ms);
	}
	len = msg_len_of(*next);
	t0 = now_ms();
	r = ipcq_loan(q, len, &loan, timeout_ms);
	account(t, r, t0, timeout_ms);
	if (r == 0) {
		/* a loan handed out on a wreck must still lie in memory we
		 * may write */
		build_msg(loan, tag, *next);
		t0 = now_ms();
		r = ipcq_publish_timed(q, loan, len, 0, timeout_ms);
		account(t, r, t0, timeout_ms);
		if (r < 0) {
			t0 = now_ms();
			account(t, ipcq_unloan(q, loan), t0, 0);
		}
	}
	(*next)++;
	t0 = now_ms();
	account(t, send_traffic(q, tag, *next, USE_BATCH, true, bufs, timeout_ms), t0, timeout_ms);
	*next += USE_BATCH;
}

/* One round of a user's receives: a copy; a view and a batch of views,
 * which it holds (in held[1 + RECV_BATCH], intact_at[] saying which were
 * intact when received); each judged as it comes; how many it holds. */
static unsigned use_take(ipcq_queue *q, ipcq_msg *held, bool *intact_at, unsigned char *buf, int timeout_ms,
                         struct tally *t, struct receipts *k)
{
	uint64_t t0 = now_ms();
	ssize_t n = ipcq_recv(q, buf, RECV_CAP, NULL, timeout_ms);
	unsigned nheld = 0;
	int r;

	account(t, (long)n, t0, timeout_ms);
	if (n >= 0)
		receipt_intact(k, buf, (size_t)n);
	t0 = now_ms();
	r = ipcq_recv_view(q, &held[0], timeout_ms);
	account(t, r, t0, timeout_ms);
	if (r == 0) {
		intact_at[0] = receipt_intact(k, held[0].data, held[0].len);
		nheld = 1;
	}
	t0 = now_ms();
	r = ipcq_recv_batch(q, held + nheld, RECV_BATCH, timeout_ms);
	account(t, r, t0, timeout_ms);
	for (int i = 0; i < r && i < RECV_BATCH; i++, nheld++)
		intact_at[nheld] = receipt_intact(k, held[nheld].data, held[nheld].len);
	return nheld;
}

/* After the pause: judge again what it held, and release it. */
static void use_release(ipcq_queue *q, ipcq_msg *held, const bool *intact_at, unsigned nheld, struct tally *t,
                        struct receipts *k)
{
	struct mapping maps[MAPPINGS_MAX];
	int nmaps = find_shm_mappings(maps, MAPPINGS_MAX);

	for (unsigned i = 0; i < nheld; i++) {
		uint64_t t0;

		if (intact_at[i])
			recheck_held(k, held[i].data, held[i].len,
			             nmaps < 0 || in_mappings(held[i].data, held[i].len, maps, nmaps));
		t0 = now_ms();
		account(t, ipcq_release(q, &held[i]), t0, 0);
	}
}

/* Open QUEUE for sending and receiving, say "open", then send and receive
 * for MS milliseconds, TIMEOUT_MS a call: it held the queue before the
 * attack, so its calls meet the wreck itself, not an open that fails.
 * Exit 0 unless a call overran its timeout (3); what it received that was
 * not sent is only told, the test decides what that means. */
static int mode_use(const char *sock, char **argv)
{
	unsigned char *buf = malloc(RECV_CAP), *bufs = malloc((size_t)FEED_BLOCK * RING_LEN);
	ipcq_msg held[1 + RECV_BATCH];
	bool intact_at[1 + RECV_BATCH];
	uint32_t ms, timeout_ms, tag, next = 0;
	struct senders s;
	struct receipts k = { .senders = &s };
	struct tally t = { 0 };
	uint64_t end;
	ipcq_client *c;
	ipcq_queue *q;
	int r;

	if (!buf || !bufs || parse_u32(argv[4], &ms) < 0 || parse_u32(argv[5], &timeout_ms) < 0 ||
	    timeout_ms > INT32_MAX || parse_u32(argv[6], &tag) < 0 || parse_senders(argv[7], &s) < 0 ||
	    s.n == SENDERS_MAX) {
		free(buf);
		free(bufs);
		return 2;
	}
	/* itself, last among the senders, with what it sent so far */
	s.tag[s.n++] = tag;
	r = ipcq_connect(&c, sock);
	if (r == 0) {
		r = ipcq_open(c, argv[2], IPCQ_SEND | IPCQ_RECV, &q);
		if (r < 0) {
			fprintf(stderr, "scribble: use: open %s: %s (%s)\n", argv[2], ipcq_strerror(r), ipcq_last_error(c));
			ipcq_disconnect(c);
		}
	}
	if (r < 0) {
		fprintf(stderr, "scribble: use: cannot open %s: %s\n", argv[2], ipcq_strerror(r));
		free(buf);
		free(bufs);
		return 1;
	}
	printf("open\n");
	fflush(stdout);
	for (end = now_ms() + ms; now_ms() < end;) {
		unsigned nheld;

		use_send(q, tag, &next, bufs, (int)timeout_ms, &t);
		s.count[s.n - 1] = next;
		nheld = use_take(q, held, intact_at, buf, (int)timeout_ms, &t, &k);
		/* the views stay exposed meanwhile; and calls that fail at
		 * once must not spin */
		usleep(ROUND_PAUSE_US);
		use_release(q, held, intact_at, nheld, &t, &k);
	}
	printf("use %s: library calls %lu, errors %lu, late %lu, slowest %" PRIu64 " ms; sent %" PRIu32
	       " (tag %" PRIu32 "); ",
	       argv[2], t.calls, t.errors, t.late, t.slowest_ms, next, tag);
	print_receipts(&k);
	printf("; views changed while held: in the ring %lu, in the handle's own memory %lu\n", k.changed_in_ring,
	       k.changed_own);
	if (k.not_sent)
		printf("use %s: first not sent: %s\n", argv[2], k.first);
	if (k.changed_own)
		printf("use %s: first view changed in the handle's own memory: %s\n", argv[2], k.first_changed_own);
	ipcq_close(q);
	ipcq_disconnect(c);
	free(buf);
	free(bufs);
	return t.late ? 3 : 0;
}

static int usage(void)
{
	fprintf(stderr, "usage: scribble SOCKET QUEUE send|recv|both random|zero|ff|all|tamper ROUNDS exit|stop|kill\n"
	                "       scribble SOCKET QUEUE use MS TIMEOUT_MS TAG SENDERS\n"
	                "       scribble SOCKET QUEUE feed TAG COUNT PAUSE_MS\n"
	                "       scribble SOCKET QUEUE check TAG COUNT TIMEOUT_MS\n"
	                "       scribble SOCKET QUEUE drain SENDERS TIMEOUT_MS\n"
	                "       scribble write TAG SEQ FILE\n"
	                "       scribble judge FILE SENDERS\n"
	                "SENDERS: TAG:COUNT[,TAG:COUNT...]\n");
	return 2;
}

int main(int argc, char **argv)
{
	if (argc == 5 && strcmp(argv[1], "write") == 0)
		return mode_write(argv);
	if (argc == 4 && strcmp(argv[1], "judge") == 0)
		return mode_judge(argv);
	if (argc < 6)
		return usage();
	rng_state = ((uint64_t)getpid() << 32) ^ (uint64_t)time(NULL);
	if (argc == 8 && strcmp(argv[3], "use") == 0)
		return mode_use(argv[1], argv);
	if (argc == 6 && strcmp(argv[3], "drain") == 0)
		return mode_drain(argv[1], argv);
	if (argc != 7)
		return usage();
	if (strcmp(argv[3], "feed") == 0)
		return mode_feed(argv[1], argv);
	if (strcmp(argv[3], "check") == 0)
		return mode_check(argv[1], argv);
	return mode_attack(argv[1], argv);
}
