/* SPDX-License-Identifier: Apache-2.0 */
/*
 * backlogcrash.c - producers and consumers killed at random on a queue
 * that always has a backlog, and a daemon killed under them; for
 * t_backlogcrash.sh, t_restartbacklog.sh and t_chaos.sh.
 *
 *   backlogcrash chaos QUEUE DIR SECONDS SEED PRODUCERS CONSUMERS [--no-kill]
 *       run PRODUCERS producers and CONSUMERS consumers (processes) for
 *       SECONDS; every few ms SIGKILL one at random and start another in
 *       its place (not with --no-kill).  Then stop the producers, let the
 *       consumers drain until idle, and print what was seen of the queue.
 *       The daemon may be killed and restarted meanwhile (t_chaos.sh runs
 *       one of these per queue and kills the daemon itself).
 *   backlogcrash drain QUEUE DIR IDLE_MS
 *       one more consumer (recording like the others) until IDLE_MS pass
 *       without a message
 *   backlogcrash verify QUEUE DIR [--strict]
 *       compare what the producers say they sent with what the consumers
 *       recorded (see "What is checked" below); the last line, "figures:",
 *       gives the counts a caller adds up over several queues
 *   backlogcrash settle QUEUE SECONDS
 *       wait until the drained queue's ring, window and backlog are empty
 *       (ring_used, ring_chunks, depth, backlog and window all 0): space
 *       comes back as the daemon reaps what killed clients held
 *   backlogcrash fill QUEUE COUNT SIZE
 *       send COUNT messages of SIZE bytes, numbered 0..COUNT-1, in blocks
 *       that alternate ipcq_send and ipcq_send_batch, with timeout 0: a
 *       backlog never makes a send wait
 *   backlogcrash take QUEUE COUNT SIZE TIMEOUT_MS
 *       receive exactly the COUNT messages of fill, in order, intact and
 *       once each, then nothing more
 *   backlogcrash stat QUEUE FIELD
 *       print one field of ipcq_stat (depth, backlog, window, ring_used,
 *       ring_chunks, sent, received, redelivered, dropped, reclaimed,
 *       rejected, receivers, delivery)
 *
 * Producers and consumers.  DIR/state is a file every process maps
 * shared: one slot per producer and per consumer incarnation (a process
 * started in place of a killed one takes a new slot).  A producer's slot
 * says how many of its messages it has attempted (written before a send
 * call starts) and how many were acknowledged (written once the call
 * returned): messages [0, acked) must arrive, [acked, attempted) were in
 * flight when it died and may or may not, and nothing past attempted
 * may.  A message whose send call returned a prefix is sent again in the
 * next call, so acked is always a prefix.  Producers take turns among
 * ipcq_send_batch (1 to 32 messages a call), ipcq_send and
 * ipcq_loan/ipcq_publish, with sizes both inline and through the ring,
 * and priorities 0 to 2 (one per producer).
 *
 * A consumer takes messages with ipcq_recv_batch, ipcq_recv_view or
 * ipcq_recv, checks each, appends a record {producer, seq, flags} per
 * message to DIR/cons.SLOT, and only then acknowledges them: views by
 * ipcq_release (in a shuffled order, for batches), a copy by ipcq_ack or
 * by the next ipcq_recv (either, at random).  A kill between the record
 * and the acknowledgement makes a duplicate in an at-least-once queue,
 * never a loss.  In an at-most-once queue a copy is gone from the queue
 * once ipcq_recv took it, so a consumer killed inside ipcq_recv or before
 * it recorded what that returned may have lost one message for good; its
 * slot says so (in_copy) and the check allows one loss per such slot
 * there.  Records of copies cannot tell a redelivery.
 *
 * The daemon.  It is not on the data path: a producer or consumer that
 * runs when the daemon is killed goes on through the kernel objects its
 * handle has, and needs the daemon no more, so it never reconnects (its
 * broken control connection is only closed at its end).  One started
 * while the daemon is away (in place of one killed) retries its connect
 * and open every few ms until a new daemon answers, as a service would;
 * the new daemon adopts the queues and knows the live clients' holder
 * ids, and reaps the holdings of those that died meanwhile.  Each child
 * dies with its chaos process, so a test that fails leaves none running.
 *
 * What is checked.  No message damaged (header, length, checksum and the
 * bytes its (producer, seq) generate); nothing received that was not
 * attempted.  The queue's sent counter lies between the messages
 * acknowledged to producers and those plus the ones in flight.
 * At-least-once: every acknowledged message arrived; a
 * message received k times has at least k-1 receipts flagged
 * IPCQ_MSG_REDELIVERED (or through ipcq_recv, which cannot tell).
 * At-most-once: nothing received twice, nothing flagged redelivered, and
 * the acknowledged messages missing are at most the queue's dropped
 * counter plus the copy losses.  --strict (no process was killed): every
 * message attempted was acknowledged and arrived exactly once, and each
 * consumer saw each producer's messages in order.
 *
 * A producer whose call fails prints the queue's counters as they are
 * then; with BACKLOGCRASH_ON_STALL set, it also runs that command with
 * the queue's name (to dump the ring while the state is still there).
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "ipcq.h"
#include "pattern.h"
#include "timing.h"

#define MSG_MAGIC 0x4b4c4342u /* "BCLK" */
#define STATE_MAGIC 0x54534342u
#define MAX_PROD_SLOTS 16384u /* room for runs of some minutes by hand */
#define MAX_CONS_SLOTS 16384u
#define MAX_LIVE 32u
#define BATCH_MAX 32u
#define SMALL_MAX 200u    /* inline with the default msg_size */
#define MEDIUM_MIN 600u   /* through the ring */
#define MEDIUM_MAX 4000u
#define LARGE_MIN 20000u
#define LARGE_MAX 120000u
#define CALL_TIMEOUT_MS 10000
#define POLL_MS 200
#define CONSUMER_IDLE_MS 2000
#define STAT_EVERY_MS 100
#define DAEMON_AWAY_MAX_MS 20000 /* longest a client waits for a daemon to come back */
#define DAEMON_RETRY_MS 10

enum prod_mode { PROD_BATCH, PROD_SINGLE, PROD_LOAN, PROD_MODES };
enum cons_mode { CONS_BATCH, CONS_VIEW, CONS_COPY, CONS_MODES };
static const char *const prod_mode_names[] = { "send_batch", "send", "loan" };
static const char *const cons_mode_names[] = { "recv_batch", "recv_view", "recv" };

/* A record's flags */
enum {
	REC_REDELIVERED = 1u << 0,
	REC_FLAG_UNKNOWN = 1u << 1, /* ipcq_recv: redelivery cannot be told */
};
#define REC_DAMAGED UINT32_MAX /* in rec.producer */

struct msg_hdr {
	uint32_t magic;
	uint32_t producer; /* slot */
	uint32_t seq;
	uint32_t len; /* whole message, header included */
	uint64_t checksum;
};

struct rec {
	uint32_t producer;
	uint32_t seq;
	uint32_t flags;
	uint32_t check;
};

struct prod_slot {
	uint32_t used;
	uint32_t mode;
	uint32_t prio;
	uint32_t pid;
	uint64_t attempted; /* written before a send call */
	uint64_t acked;     /* written after it returned */
};

struct cons_slot {
	uint32_t used;
	uint32_t mode;
	uint32_t in_copy; /* inside ipcq_recv, or holding what it returned unrecorded (at-most-once: a loss) */
	uint32_t pid;
	uint64_t received;
	uint64_t killed;
};

struct state {
	uint32_t magic;
	uint32_t stop; /* producers finish their call and exit; consumers drain and exit */
	uint32_t nprod;
	uint32_t ncons;
	struct prod_slot prod[MAX_PROD_SLOTS];
	struct cons_slot cons[MAX_CONS_SLOTS];
};

static struct state *st;
static const char *dir;
static bool strict; /* verify: no process was killed */

/* ---- messages ---- */

static uint32_t rec_check(const struct rec *r)
{
	return (r->producer * 0x9e3779b1u) ^ (r->seq * 0x85ebca6bu) ^ r->flags ^ MSG_MAGIC;
}

/* Size of message seq of producer p: mostly inline, a fifth through the
 * ring, some large. */
static size_t chaos_size(uint32_t p, uint32_t seq)
{
	uint64_t s = ((uint64_t)p << 32) | seq;
	uint64_t r = splitmix64(&s);
	uint64_t v = r >> 8;

	if (r % 40 == 0)
		return LARGE_MIN + (size_t)(v % (LARGE_MAX - LARGE_MIN));
	if (r % 5 == 0)
		return MEDIUM_MIN + (size_t)(v % (MEDIUM_MAX - MEDIUM_MIN));
	return sizeof(struct msg_hdr) + (size_t)(v % (SMALL_MAX - sizeof(struct msg_hdr)));
}

static void fill_payload(unsigned char *p, size_t n, uint32_t producer, uint32_t seq)
{
	pattern_fill(p, n, ((uint64_t)producer << 32) ^ seq ^ 0x6261636b6c6f67ull);
}

static void build_msg(unsigned char *buf, size_t len, uint32_t producer, uint32_t seq)
{
	struct msg_hdr h = { .magic = MSG_MAGIC, .producer = producer, .seq = seq, .len = (uint32_t)len };

	fill_payload(buf + sizeof(h), len - sizeof(h), producer, seq);
	h.checksum = pattern_checksum(buf + sizeof(h), len - sizeof(h));
	memcpy(buf, &h, sizeof(h));
}

/* Whether p[0..n) is an intact message; *h gets its header.  scratch
 * holds at least n bytes. */
static bool msg_intact(const unsigned char *p, size_t n, struct msg_hdr *h, unsigned char *scratch,
                       const char **why)
{
	if (n < sizeof(*h)) {
		*why = "shorter than the header";
		return false;
	}
	memcpy(h, p, sizeof(*h));
	if (h->magic != MSG_MAGIC) {
		*why = "bad magic";
		return false;
	}
	if (h->len != n) {
		*why = "length differs from the header's";
		return false;
	}
	if (pattern_checksum(p + sizeof(*h), n - sizeof(*h)) != h->checksum) {
		*why = "checksum mismatch";
		return false;
	}
	fill_payload(scratch, n - sizeof(*h), h->producer, h->seq);
	if (memcmp(scratch, p + sizeof(*h), n - sizeof(*h)) != 0) {
		*why = "payload is not the one its header names";
		return false;
	}
	return true;
}

/* ---- helpers ---- */

static int parse_ulong(const char *s, unsigned long max, unsigned long *out)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || end == s || *end || v > max) {
		fprintf(stderr, "backlogcrash: bad number '%s'\n", s);
		return -EINVAL;
	}
	*out = v;
	return 0;
}

/* Whether r says no daemon answers: none listens (it is being
 * restarted), or the one asked died before it replied. */
static bool daemon_away(int r)
{
	return r == -ECONNREFUSED || r == -ECONNRESET || r == -EPIPE;
}

/* Connect and open, trying again for a while when no daemon answers. */
static int open_queue(const char *who, const char *name, int flags, ipcq_client **c, ipcq_queue **q)
{
	uint64_t give_up = now_ms() + DAEMON_AWAY_MAX_MS;
	char why[512];
	int r;

	for (;;) {
		r = ipcq_connect(c, NULL);
		if (r < 0) {
			snprintf(why, sizeof(why), "connect: %s", ipcq_strerror(r));
		} else {
			r = ipcq_open(*c, name, flags, q);
			if (r == 0)
				return 0;
			snprintf(why, sizeof(why), "open %s: %s (%s)", name, ipcq_strerror(r), ipcq_last_error(*c));
			ipcq_disconnect(*c);
		}
		if (!daemon_away(r) || now_ms() >= give_up)
			break;
		sleep_ms(DAEMON_RETRY_MS);
	}
	fprintf(stderr, "backlogcrash: %s: %s\n", who, why);
	return r;
}

static int stat_queue(const char *name, ipcq_stats *out)
{
	ipcq_client *c;
	int r = ipcq_connect(&c, NULL);

	if (r < 0)
		return r;
	r = ipcq_stat(c, name, out);
	ipcq_disconnect(c);
	return r;
}

static int state_map(bool create)
{
	char path[4096];
	int fd;

	snprintf(path, sizeof(path), "%s/state", dir);
	fd = open(path, create ? O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC : O_RDWR | O_CLOEXEC, 0644);
	if (fd < 0 || (create && ftruncate(fd, sizeof(*st)) < 0)) {
		fprintf(stderr, "backlogcrash: %s: %s\n", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	st = mmap(NULL, sizeof(*st), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	close(fd);
	if (st == MAP_FAILED) {
		perror("backlogcrash: mmap state");
		return -1;
	}
	if (create)
		st->magic = STATE_MAGIC;
	if (st->magic != STATE_MAGIC) {
		fprintf(stderr, "backlogcrash: %s is not a state file\n", path);
		return -1;
	}
	return 0;
}

static bool stopping(void)
{
	return __atomic_load_n(&st->stop, __ATOMIC_ACQUIRE) != 0;
}

/* ---- producer ---- */

static int send_some(ipcq_queue *q, struct prod_slot *ps, uint32_t slot, uint32_t seq, unsigned n,
                     unsigned char *buf)
{
	struct iovec iov[BATCH_MAX];
	size_t off = 0;

	switch (ps->mode) {
	case PROD_BATCH:
		for (unsigned i = 0; i < n; i++) {
			size_t len = chaos_size(slot, seq + i);

			build_msg(buf + off, len, slot, seq + i);
			iov[i] = (struct iovec){ buf + off, len };
			off += len;
		}
		return ipcq_send_batch(q, iov, n, ps->prio, CALL_TIMEOUT_MS);
	case PROD_SINGLE: {
		size_t len = chaos_size(slot, seq);
		int r;

		build_msg(buf, len, slot, seq);
		r = ipcq_send(q, buf, len, ps->prio, CALL_TIMEOUT_MS);
		return r < 0 ? r : 1;
	}
	default: {
		size_t len = chaos_size(slot, seq);
		void *loan;
		int r = ipcq_loan(q, len, &loan, CALL_TIMEOUT_MS);

		if (r < 0)
			return r;
		build_msg(loan, len, slot, seq);
		r = ipcq_publish(q, loan, len, ps->prio);
		return r < 0 ? r : 1;
	}
	}
}

static int producer_main(const char *name, uint32_t slot, uint64_t seed)
{
	struct prod_slot *ps = &st->prod[slot];
	unsigned char *buf = malloc((size_t)BATCH_MAX * LARGE_MAX);
	uint64_t rnd = seed;
	ipcq_client *c;
	ipcq_queue *q;
	uint32_t seq = 0;

	if (!buf || open_queue("producer", name, IPCQ_SEND, &c, &q) < 0)
		return 1;
	while (!stopping()) {
		unsigned n = ps->mode == PROD_BATCH ? 1 + (unsigned)(splitmix64(&rnd) % BATCH_MAX) : 1;
		int r;

		__atomic_store_n(&ps->attempted, (uint64_t)seq + n, __ATOMIC_RELEASE);
		r = send_some(q, ps, slot, seq, n, buf);
		if (r < 0 || (unsigned)r > n) {
			ipcq_stats qs;

			fprintf(stderr, "backlogcrash: producer %u (%s): %u messages from seq %u: %s\n", slot,
			        prod_mode_names[ps->mode], n, seq, r < 0 ? ipcq_strerror(r) : "count too large");
			/* what the queue looked like then */
			if (ipcq_stat(c, name, &qs) == 0)
				fprintf(stderr,
				        "backlogcrash: queue %s then: depth %" PRIu64 " backlog %" PRIu64 " window %u"
				        " ring_used %" PRIu64 " ring_chunks %" PRIu64 " receivers %u received %" PRIu64
				        " dropped %" PRIu64 " reclaimed %" PRIu64 "\n",
				        name, qs.depth, qs.backlog, qs.window, qs.ring_used, qs.ring_chunks, qs.receivers,
				        qs.received, qs.dropped, qs.reclaimed);
			if (getenv("BACKLOGCRASH_ON_STALL")) {
				char cmd[512];

				snprintf(cmd, sizeof(cmd), "%s %s >&2", getenv("BACKLOGCRASH_ON_STALL"), name);
				if (system(cmd) != 0)
					fprintf(stderr, "backlogcrash: %s failed\n", cmd);
			}
			return 1;
		}
		seq += (uint32_t)r;
		__atomic_store_n(&ps->acked, seq, __ATOMIC_RELEASE);
	}
	/* a prefix sent: the rest was attempted but never sent */
	__atomic_store_n(&ps->attempted, seq, __ATOMIC_RELEASE);
	ipcq_close(q);
	ipcq_disconnect(c);
	free(buf);
	return 0;
}

/* ---- consumer ---- */

static void shuffle(unsigned *order, unsigned n, uint64_t *rnd)
{
	for (unsigned i = 0; i < n; i++)
		order[i] = i;
	for (unsigned i = n; i > 1; i--) {
		unsigned j = (unsigned)(splitmix64(rnd) % i), t = order[i - 1];

		order[i - 1] = order[j];
		order[j] = t;
	}
}

static void make_rec(struct rec *r, const unsigned char *p, size_t len, unsigned flags, unsigned char *scratch)
{
	const char *why = NULL;
	struct msg_hdr h;

	if (msg_intact(p, len, &h, scratch, &why)) {
		if (len == chaos_size(h.producer, h.seq)) {
			*r = (struct rec){ .producer = h.producer, .seq = h.seq, .flags = flags };
			r->check = rec_check(r);
			return;
		}
		why = "its size is not the one its (producer, seq) has";
	}
	fprintf(stderr, "backlogcrash: a %zu-byte message is damaged: %s\n", len, why);
	*r = (struct rec){ .producer = REC_DAMAGED, .seq = (uint32_t)len, .flags = flags };
	r->check = rec_check(r);
}

static int write_all(int fd, const void *p, size_t n)
{
	ssize_t w = write(fd, p, n);

	if (w != (ssize_t)n) {
		fprintf(stderr, "backlogcrash: writing records: %s\n", w < 0 ? strerror(errno) : "short write");
		return -1;
	}
	return 0;
}

/* Receive, record, release until stopped and idle for idle_ms. */
static int consumer_main(const char *name, uint32_t slot, uint64_t seed, unsigned idle_ms)
{
	struct cons_slot *cs = &st->cons[slot];
	unsigned char *copy = malloc(LARGE_MAX), *scratch = malloc(LARGE_MAX);
	uint64_t rnd = seed, idle_since = now_ms();
	ipcq_msg msgs[BATCH_MAX];
	struct rec recs[BATCH_MAX];
	unsigned order[BATCH_MAX];
	ipcq_client *c;
	ipcq_queue *q;
	char path[4096];
	int fd;

	snprintf(path, sizeof(path), "%s/cons.%u", dir, slot);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0644);
	if (fd < 0 || !copy || !scratch) {
		fprintf(stderr, "backlogcrash: consumer %u: %s: %s\n", slot, path, strerror(errno));
		return 1;
	}
	if (open_queue("consumer", name, IPCQ_RECV, &c, &q) < 0)
		return 1;
	for (;;) {
		unsigned n = 1 + (unsigned)(splitmix64(&rnd) % BATCH_MAX);
		int r;

		switch (cs->mode) {
		case CONS_BATCH:
			r = ipcq_recv_batch(q, msgs, n, POLL_MS);
			if (r > (int)n) {
				fprintf(stderr, "backlogcrash: consumer %u: recv_batch of %u returned %d\n", slot, n, r);
				return 1;
			}
			break;
		case CONS_VIEW:
			r = ipcq_recv_view(q, &msgs[0], POLL_MS);
			if (r >= 0)
				r = 1;
			break;
		default: {
			ssize_t got;

			__atomic_store_n(&cs->in_copy, 1, __ATOMIC_RELEASE);
			got = ipcq_recv(q, copy, LARGE_MAX, NULL, POLL_MS);
			if (got >= 0)
				msgs[0] = (ipcq_msg){ .data = copy, .len = (size_t)got };
			r = got < 0 ? (int)got : 1;
			break;
		}
		}
		if (r == -ETIMEDOUT) {
			__atomic_store_n(&cs->in_copy, 0, __ATOMIC_RELEASE);
			if (stopping() && now_ms() - idle_since >= idle_ms)
				break;
			continue;
		}
		if (r < 0) {
			fprintf(stderr, "backlogcrash: consumer %u (%s): %s\n", slot, cons_mode_names[cs->mode],
			        ipcq_strerror(r));
			return 1;
		}
		idle_since = now_ms();
		for (int i = 0; i < r; i++) {
			unsigned flags = cs->mode == CONS_COPY ? REC_FLAG_UNKNOWN
			                 : msgs[i].flags & IPCQ_MSG_REDELIVERED ? REC_REDELIVERED
			                                                        : 0;

			make_rec(&recs[i], msgs[i].data, msgs[i].len, flags, scratch);
		}
		/* recorded before released: a kill in between is a duplicate */
		if (write_all(fd, recs, (size_t)r * sizeof(recs[0])) < 0)
			return 1;
		__atomic_store_n(&cs->received, cs->received + (uint64_t)r, __ATOMIC_RELEASE);
		if (cs->mode == CONS_COPY) {
			/* acknowledged here or by the next ipcq_recv */
			int e = splitmix64(&rnd) % 2 ? ipcq_ack(q) : 0;

			if (e < 0) {
				fprintf(stderr, "backlogcrash: consumer %u: ack: %s\n", slot, ipcq_strerror(e));
				return 1;
			}
			__atomic_store_n(&cs->in_copy, 0, __ATOMIC_RELEASE);
			continue;
		}
		shuffle(order, (unsigned)r, &rnd);
		for (int i = 0; i < r; i++) {
			int e = ipcq_release(q, &msgs[order[i]]);

			if (e < 0) {
				fprintf(stderr, "backlogcrash: consumer %u: release: %s\n", slot, ipcq_strerror(e));
				return 1;
			}
		}
	}
	ipcq_close(q);
	ipcq_disconnect(c);
	close(fd);
	free(copy);
	free(scratch);
	return 0;
}

/* ---- the chaos run ---- */

struct child {
	pid_t pid;
	bool producer;
	uint32_t slot;
};

static uint32_t take_slot(bool producer)
{
	uint32_t *count = producer ? &st->nprod : &st->ncons;
	uint32_t slot = __atomic_fetch_add(count, 1, __ATOMIC_ACQ_REL);

	if (slot >= (producer ? MAX_PROD_SLOTS : MAX_CONS_SLOTS)) {
		fprintf(stderr, "backlogcrash: out of %s slots\n", producer ? "producer" : "consumer");
		exit(1);
	}
	return slot;
}

static int start_child(struct child *ch, const char *name, bool producer, uint64_t seed)
{
	uint32_t slot = take_slot(producer);
	pid_t parent, pid;

	if (producer) {
		st->prod[slot] = (struct prod_slot){ .used = 1, .mode = slot % PROD_MODES, .prio = (slot / 3) % 3 };
	} else {
		st->cons[slot] = (struct cons_slot){ .used = 1, .mode = slot % CONS_MODES };
	}
	fflush(NULL);
	parent = getpid();
	pid = fork();
	if (pid < 0) {
		perror("backlogcrash: fork");
		return -1;
	}
	if (pid == 0) {
		uint64_t s = seed ^ ((uint64_t)slot << 20) ^ (producer ? 0x70 : 0x63);

		/* dies with the chaos process (which may have died before the prctl) */
		if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != parent)
			_exit(1);
		_exit(producer ? producer_main(name, slot, splitmix64(&s))
		               : consumer_main(name, slot, splitmix64(&s), CONSUMER_IDLE_MS));
	}
	if (producer)
		st->prod[slot].pid = (uint32_t)pid;
	else
		st->cons[slot].pid = (uint32_t)pid;
	*ch = (struct child){ .pid = pid, .producer = producer, .slot = slot };
	return 0;
}

/* A child that ended on its own, or not of the SIGKILL we sent. */
static int child_status_ok(const struct child *ch, int status, bool killed)
{
	if (killed && WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL)
		return 0;
	if (!killed && WIFEXITED(status) && WEXITSTATUS(status) == 0)
		return 0;
	fprintf(stderr, "backlogcrash: %s %u (pid %d) %s %d\n", ch->producer ? "producer" : "consumer", ch->slot,
	        (int)ch->pid, WIFEXITED(status) ? "exited with status" : "died of signal",
	        WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
	return 1;
}

struct sampling {
	unsigned samples, with_backlog, failed;
	uint64_t max_backlog, max_depth, max_ring_used;
};

static void sample(const char *name, struct sampling *s)
{
	ipcq_stats qs;

	if (stat_queue(name, &qs) < 0) {
		s->failed++; /* the daemon may be down on purpose */
		return;
	}
	s->samples++;
	s->with_backlog += qs.backlog > 0;
	if (qs.backlog > s->max_backlog)
		s->max_backlog = qs.backlog;
	if (qs.depth > s->max_depth)
		s->max_depth = qs.depth;
	if (qs.ring_used > s->max_ring_used)
		s->max_ring_used = qs.ring_used;
}

static int cmd_chaos(const char *name, unsigned long seconds, unsigned long seed, unsigned long nprod,
                     unsigned long ncons, bool kills)
{
	struct child live[MAX_LIVE];
	struct sampling smp = { 0 };
	unsigned nlive = 0, killed_prod = 0, killed_cons = 0;
	uint64_t rnd = seed, end, next_kill, next_stat;
	int bad = 0;

	if (nprod + ncons > MAX_LIVE || nprod == 0 || ncons == 0) {
		fprintf(stderr, "backlogcrash: 1 to %u processes in all\n", MAX_LIVE);
		return 2;
	}
	if (state_map(true) < 0)
		return 1;
	for (unsigned i = 0; i < nprod + ncons; i++)
		if (start_child(&live[nlive++], name, i < nprod, splitmix64(&rnd)) < 0)
			return 1;
	end = now_ms() + seconds * 1000u;
	next_kill = now_ms() + 100;
	next_stat = now_ms();
	while (now_ms() < end && !bad) {
		int status;
		pid_t pid;

		/* nobody ends on their own while running */
		while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
			for (unsigned i = 0; i < nlive; i++) {
				if (live[i].pid != pid)
					continue;
				child_status_ok(&live[i], status, false);
				fprintf(stderr, "backlogcrash: %s %u ended before it was told to stop\n",
				        live[i].producer ? "producer" : "consumer", live[i].slot);
				bad = 1;
			}
		}
		if (now_ms() >= next_stat) {
			sample(name, &smp);
			next_stat = now_ms() + STAT_EVERY_MS;
		}
		if (kills && now_ms() >= next_kill) {
			/* one victim, now and then two at once */
			unsigned victims = splitmix64(&rnd) % 8 == 0 ? 2 : 1;

			for (unsigned v = 0; v < victims; v++) {
				unsigned i = (unsigned)(splitmix64(&rnd) % nlive);
				struct child *ch = &live[i];

				kill(ch->pid, SIGKILL);
				if (waitpid(ch->pid, &status, 0) != ch->pid) {
					perror("backlogcrash: waitpid");
					return 1;
				}
				bad |= child_status_ok(ch, status, true);
				if (ch->producer) {
					killed_prod++;
				} else {
					st->cons[ch->slot].killed = 1;
					killed_cons++;
				}
				if (start_child(ch, name, ch->producer, splitmix64(&rnd)) < 0)
					return 1;
			}
			next_kill = now_ms() + 5 + splitmix64(&rnd) % 80;
		}
		sleep_ms(2);
	}
	/* producers first: they finish the call under way */
	__atomic_store_n(&st->stop, 1, __ATOMIC_RELEASE);
	for (unsigned i = 0; i < nlive; i++) {
		int status;

		if (waitpid(live[i].pid, &status, 0) == live[i].pid)
			bad |= child_status_ok(&live[i], status, false);
	}
	printf("chaos: seed %lu, %lu s, %u producer and %u consumer slots, killed %u producers and %u consumers\n",
	       seed, seconds, st->nprod, st->ncons, killed_prod, killed_cons);
	printf("chaos: %u samples (%u failed): backlog in %u, max backlog %" PRIu64 ", max depth %" PRIu64
	       ", max ring_used %" PRIu64 "\n",
	       smp.samples, smp.failed, smp.with_backlog, smp.max_backlog, smp.max_depth, smp.max_ring_used);
	return bad ? 1 : 0;
}

static int cmd_drain(const char *name, unsigned long idle)
{
	uint32_t slot;

	if (state_map(false) < 0)
		return 1;
	__atomic_store_n(&st->stop, 1, __ATOMIC_RELEASE);
	slot = take_slot(false);
	st->cons[slot] = (struct cons_slot){ .used = 1, .mode = CONS_BATCH, .pid = (uint32_t)getpid() };
	if (consumer_main(name, slot, slot * 0x1234567ull, (unsigned)idle))
		return 1;
	printf("drain: %" PRIu64 " more messages\n", st->cons[slot].received);
	return 0;
}

/* ---- verification ---- */

struct got {
	uint32_t producer, seq, flags, consumer;
};

#define EXAMPLES 10u

static void print_examples(const char *what, char (*ex)[96], unsigned long count)
{
	for (unsigned long i = 0; i < count && i < EXAMPLES; i++)
		fprintf(stderr, "backlogcrash: verify: %s: %s\n", what, ex[i]);
}

static int got_cmp(const void *a, const void *b)
{
	const struct got *x = a, *y = b;

	if (x->producer != y->producer)
		return x->producer < y->producer ? -1 : 1;
	if (x->seq != y->seq)
		return x->seq < y->seq ? -1 : 1;
	return 0;
}

/* Append consumer slot's records to *all; count damaged ones and, when
 * order is wanted, records out of order per producer. */
static int read_records(uint32_t slot, struct got **all, size_t *n, size_t *cap, unsigned long *damaged,
                        unsigned long *unordered)
{
	char path[4096];
	struct stat sb;
	struct rec *recs;
	int64_t *last;
	size_t *last_at, count;
	int fd;

	snprintf(path, sizeof(path), "%s/cons.%u", dir, slot);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		if (errno == ENOENT)
			return 0; /* killed before it opened its file */
		fprintf(stderr, "backlogcrash: verify: %s: %s\n", path, strerror(errno));
		return -1;
	}
	if (fstat(fd, &sb) < 0) {
		close(fd);
		return -1;
	}
	/* a kill in the middle of a write leaves part of a record (of
	 * messages not yet released) */
	count = (size_t)sb.st_size / sizeof(struct rec);
	recs = malloc(count * sizeof(*recs) + 1);
	last = malloc(MAX_PROD_SLOTS * sizeof(*last));
	last_at = calloc(MAX_PROD_SLOTS, sizeof(*last_at));
	if (!recs || !last || !last_at || pread(fd, recs, count * sizeof(*recs), 0) != (ssize_t)(count * sizeof(*recs))) {
		fprintf(stderr, "backlogcrash: verify: reading %s failed\n", path);
		close(fd);
		free(recs);
		free(last);
		free(last_at);
		return -1;
	}
	close(fd);
	for (size_t i = 0; i < MAX_PROD_SLOTS; i++)
		last[i] = -1;
	for (size_t i = 0; i < count; i++) {
		struct rec *r = &recs[i];

		if (r->check != rec_check(r) || r->producer == REC_DAMAGED) {
			if (r->check != rec_check(r))
				fprintf(stderr, "backlogcrash: verify: record %zu of %s is garbage\n", i, path);
			(*damaged)++;
			continue;
		}
		if (r->producer < MAX_PROD_SLOTS) {
			if ((int64_t)r->seq <= last[r->producer] && (*unordered)++ < 10 && strict)
				fprintf(stderr,
				        "backlogcrash: verify: consumer %u got producer %u's seq %u (its message %zu of %zu) "
				        "after its seq %" PRId64 " (message %zu)\n",
				        slot, r->producer, r->seq, i, count, last[r->producer], last_at[r->producer]);
			last[r->producer] = r->seq;
			last_at[r->producer] = i;
		}
		if (*n == *cap) {
			struct got *more;

			*cap = *cap ? 2 * *cap : 65536;
			more = realloc(*all, *cap * sizeof(**all));
			if (!more) {
				free(recs);
				free(last);
				free(last_at);
				return -1;
			}
			*all = more;
		}
		(*all)[(*n)++] = (struct got){ r->producer, r->seq, r->flags, slot };
	}
	free(recs);
	free(last);
	free(last_at);
	return 0;
}

static int cmd_verify(const char *name)
{
	unsigned long damaged = 0, unordered = 0, invented = 0, dups = 0, unexplained = 0, flagged = 0, missing = 0,
	              inflight_got = 0, inflight = 0, acked_total = 0, copy_allowance = 0, unacked_slots = 0;
	char missing_ex[EXAMPLES][96], flagged_ex[EXAMPLES][96];
	struct got *all = NULL;
	size_t n = 0, cap = 0, i;
	ipcq_stats qs;
	bool alo;
	int r, bad = 0;

	if (state_map(false) < 0)
		return 1;
	r = stat_queue(name, &qs);
	if (r < 0) {
		fprintf(stderr, "backlogcrash: verify: stat %s: %s\n", name, ipcq_strerror(r));
		return 1;
	}
	alo = qs.delivery == 1;
	for (uint32_t s = 0; s < st->ncons && s < MAX_CONS_SLOTS; s++) {
		if (!st->cons[s].used)
			continue;
		if (read_records(s, &all, &n, &cap, &damaged, &unordered) < 0)
			return 1;
		/* an at-least-once copy stays leased until acknowledged */
		copy_allowance += !alo && st->cons[s].in_copy != 0;
	}
	qsort(all, n, sizeof(*all), got_cmp);
	for (i = 0; i < n;) {
		size_t j = i, explained = 0;
		const struct got *g = &all[i];

		while (j < n && got_cmp(&all[j], g) == 0) {
			if ((all[j].flags & REC_REDELIVERED) && flagged++ < EXAMPLES)
				snprintf(flagged_ex[flagged - 1], sizeof(flagged_ex[0]), "producer %u seq %u (consumer %u, %s)",
				         all[j].producer, all[j].seq, all[j].consumer,
				         cons_mode_names[st->cons[all[j].consumer].mode]);
			if (all[j].flags & (REC_REDELIVERED | REC_FLAG_UNKNOWN))
				explained++;
			j++;
		}
		if (g->producer >= st->nprod || g->producer >= MAX_PROD_SLOTS || !st->prod[g->producer].used ||
		    g->seq >= st->prod[g->producer].attempted) {
			if (invented++ < 10)
				fprintf(stderr, "backlogcrash: verify: producer %u seq %u received but never sent\n",
				        g->producer, g->seq);
		}
		if (j - i > 1) {
			dups += j - i - 1;
			if (explained < j - i - 1 && unexplained++ < 10)
				fprintf(stderr,
				        "backlogcrash: verify: producer %u seq %u received %zu times, %zu of them flagged "
				        "redelivered (or by ipcq_recv)\n",
				        g->producer, g->seq, j - i, explained);
		}
		i = j;
	}
	/* every acknowledged message, once at least */
	i = 0;
	for (uint32_t p = 0; p < st->nprod && p < MAX_PROD_SLOTS; p++) {
		const struct prod_slot *ps = &st->prod[p];

		if (!ps->used)
			continue;
		acked_total += ps->acked;
		inflight += ps->attempted - ps->acked;
		unacked_slots += ps->attempted != ps->acked;
		while (i < n && all[i].producer < p)
			i++;
		for (uint64_t seq = 0; seq < ps->attempted; seq++) {
			bool have = false;

			while (i < n && all[i].producer == p && all[i].seq < seq)
				i++;
			have = i < n && all[i].producer == p && all[i].seq == seq;
			if (seq >= ps->acked) {
				inflight_got += have;
			} else if (!have && missing++ < EXAMPLES) {
				snprintf(missing_ex[missing - 1], sizeof(missing_ex[0]),
				         "producer %u (%s) seq %" PRIu64 " of %" PRIu64 " acknowledged", p,
				         prod_mode_names[ps->mode], seq, ps->acked);
			}
		}
	}
	printf("verify: %s, %u producers acknowledged %lu messages (+%lu in flight, %lu of them arrived); "
	       "received %zu: %lu duplicates (%lu flagged redelivered), %lu missing, %lu damaged, %lu invented, "
	       "%lu out of order; dropped %" PRIu64 ", redelivered %" PRIu64 ", copy losses allowed %lu\n",
	       alo ? "at-least-once" : "at-most-once", st->nprod, acked_total, inflight, inflight_got, n, dups,
	       flagged, missing, damaged, invented, unordered, qs.dropped, qs.redelivered, copy_allowance);
	printf("figures: %s sent %lu received %zu lost %lu duplicated %lu torn %lu dropped %" PRIu64 "\n",
	       alo ? "at-least-once" : "at-most-once", acked_total, n, missing, dups, damaged, qs.dropped);
	if (damaged || invented)
		bad = 1;
	/* the queue's sent counter: every message acknowledged to its
	 * producer, and of those in flight when one was killed no more than
	 * were attempted (a message counts as sent before it can go out) */
	if (qs.sent < acked_total || qs.sent > acked_total + inflight) {
		fprintf(stderr,
		        "backlogcrash: verify: the queue counted %" PRIu64 " sent; producers were told %lu, with %lu more "
		        "in flight\n",
		        qs.sent, acked_total, inflight);
		bad = 1;
	}
	if (alo && unexplained) {
		fprintf(stderr, "backlogcrash: verify: %lu duplicates not flagged redelivered\n", unexplained);
		bad = 1;
	}
	if (alo && missing) {
		fprintf(stderr, "backlogcrash: verify: at-least-once lost %lu acknowledged messages\n", missing);
		bad = 1;
	}
	if (!alo && (dups || flagged)) {
		fprintf(stderr, "backlogcrash: verify: at-most-once delivered %lu duplicates, %lu flagged redelivered\n",
		        dups, flagged);
		bad = 1;
	}
	if (!alo && missing > qs.dropped + copy_allowance) {
		fprintf(stderr,
		        "backlogcrash: verify: at-most-once lost %lu acknowledged messages, more than dropped (%" PRIu64
		        ") + %lu\n",
		        missing, qs.dropped, copy_allowance);
		bad = 1;
	}
	if (strict && (dups || missing || unordered || flagged || unacked_slots)) {
		fprintf(stderr,
		        "backlogcrash: verify --strict: %lu duplicates, %lu missing, %lu out of order, %lu flagged "
		        "redelivered, %lu producers with messages unacknowledged\n",
		        dups, missing, unordered, flagged, unacked_slots);
		bad = 1;
	}
	if (bad) {
		print_examples("never arrived", missing_ex, missing);
		print_examples("flagged redelivered", flagged_ex, flagged);
	}
	free(all);
	return bad;
}

/* ---- the daemon-restart helpers ---- */

#define FILL_BLOCK 1000u
#define FILL_BATCH 50u

static int cmd_fill(const char *name, unsigned long count, unsigned long size)
{
	unsigned char *buf = malloc(size * FILL_BATCH);
	struct iovec iov[FILL_BATCH];
	ipcq_client *c;
	ipcq_queue *q;
	unsigned long seq = 0;

	if (!buf || open_queue("fill", name, IPCQ_SEND, &c, &q) < 0)
		return 1;
	while (seq < count) {
		/* blocks of FILL_BLOCK: one message a call, then batches */
		unsigned n = (seq / FILL_BLOCK) % 2 ? FILL_BATCH : 1;
		int r;

		if (n > count - seq)
			n = (unsigned)(count - seq);
		for (unsigned i = 0; i < n; i++) {
			build_msg(buf + i * size, size, 0, (uint32_t)(seq + i));
			iov[i] = (struct iovec){ buf + i * size, size };
		}
		r = n == 1 ? ipcq_send(q, buf, size, 0, 0) : ipcq_send_batch(q, iov, n, 0, 0);
		if (r < 0 || (n > 1 && r != (int)n)) {
			fprintf(stderr, "backlogcrash: fill: %s of %u from #%lu: %s\n", n == 1 ? "send" : "send_batch", n,
			        seq, r < 0 ? ipcq_strerror(r) : "a prefix only");
			return 1;
		}
		seq += n;
	}
	ipcq_close(q);
	ipcq_disconnect(c);
	free(buf);
	printf("filled %lu\n", count);
	return 0;
}

static int cmd_take(const char *name, unsigned long count, unsigned long size, unsigned long timeout)
{
	unsigned char *scratch = malloc(size);
	unsigned long next = 0, redelivered = 0, bad = 0;
	ipcq_msg msgs[64];
	ipcq_client *c;
	ipcq_queue *q;
	int r;

	if (!scratch || open_queue("take", name, IPCQ_RECV, &c, &q) < 0)
		return 1;
	while (next < count) {
		r = ipcq_recv_batch(q, msgs, count - next < 64 ? (unsigned)(count - next) : 64, (int)timeout);
		if (r < 0) {
			fprintf(stderr, "backlogcrash: take: after %lu of %lu messages: %s\n", next, count,
			        ipcq_strerror(r));
			return 1;
		}
		for (int i = 0; i < r; i++) {
			struct msg_hdr h;
			const char *why;

			if (msgs[i].len != size || !msg_intact(msgs[i].data, msgs[i].len, &h, scratch, &why)) {
				if (bad++ < 10)
					fprintf(stderr, "backlogcrash: take: message #%lu (%zu bytes) is damaged\n", next,
					        msgs[i].len);
			} else if (h.producer != 0 || h.seq != next) {
				if (bad++ < 10)
					fprintf(stderr, "backlogcrash: take: message #%lu is seq %u\n", next, h.seq);
			}
			redelivered += (msgs[i].flags & IPCQ_MSG_REDELIVERED) != 0;
			next++;
			ipcq_release(q, &msgs[i]);
		}
	}
	r = ipcq_recv_batch(q, msgs, 64, 300);
	if (r != -ETIMEDOUT) {
		fprintf(stderr, "backlogcrash: take: after the %lu messages, receive gave %s\n", count,
		        r < 0 ? ipcq_strerror(r) : "more messages");
		return 1;
	}
	ipcq_close(q);
	ipcq_disconnect(c);
	free(scratch);
	printf("took %lu in order, %lu wrong, %lu redelivered\n", next, bad, redelivered);
	return bad ? 1 : 0;
}

static int cmd_stat(const char *name, const char *field)
{
	ipcq_stats qs;
	int r = stat_queue(name, &qs);
	const struct {
		const char *name;
		uint64_t value;
	} fields[] = {
		{ "depth", qs.depth },
		{ "backlog", qs.backlog },
		{ "window", qs.window },
		{ "ring_used", qs.ring_used },
		{ "ring_chunks", qs.ring_chunks },
		{ "sent", qs.sent },
		{ "received", qs.received },
		{ "redelivered", qs.redelivered },
		{ "dropped", qs.dropped },
		{ "reclaimed", qs.reclaimed },
		{ "rejected", qs.rejected },
		{ "receivers", qs.receivers },
		{ "delivery", qs.delivery },
	};

	if (r < 0) {
		fprintf(stderr, "backlogcrash: stat %s: %s\n", name, ipcq_strerror(r));
		return 1;
	}
	for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
		if (strcmp(fields[i].name, field) == 0) {
			printf("%" PRIu64 "\n", fields[i].value);
			return 0;
		}
	}
	fprintf(stderr, "backlogcrash: no field '%s'\n", field);
	return 2;
}

static bool queue_empty(const ipcq_stats *qs)
{
	return (qs->ring_used | qs->ring_chunks | qs->depth | qs->backlog | qs->window) == 0;
}

/* Wait until the queue holds nothing: no message waiting, no ring byte in
 * use.  Space comes back as the daemon reaps what dead clients held, so
 * this may take a moment after the last receive. */
static int cmd_settle(const char *name, unsigned long seconds)
{
	uint64_t give_up = now_ms() + seconds * 1000u;
	ipcq_stats qs;
	int r;

	for (;;) {
		r = stat_queue(name, &qs);
		if (r < 0) {
			fprintf(stderr, "backlogcrash: settle: stat %s: %s\n", name, ipcq_strerror(r));
			return 1;
		}
		if (queue_empty(&qs) || now_ms() >= give_up)
			break;
		sleep_ms(50);
	}
	printf("settle: %s: ring_used %" PRIu64 ", ring_chunks %" PRIu64 ", depth %" PRIu64 ", backlog %" PRIu64
	       ", window %" PRIu32 "\n",
	       name, qs.ring_used, qs.ring_chunks, qs.depth, qs.backlog, qs.window);
	if (!queue_empty(&qs)) {
		fprintf(stderr, "backlogcrash: settle: %s still holds something after %lu s\n", name, seconds);
		return 1;
	}
	return 0;
}

static int usage(void)
{
	fprintf(stderr, "usage: backlogcrash chaos QUEUE DIR SECONDS SEED PRODUCERS CONSUMERS [--no-kill]\n"
	                "       backlogcrash drain QUEUE DIR IDLE_MS\n"
	                "       backlogcrash verify QUEUE DIR [--strict]\n"
	                "       backlogcrash settle QUEUE SECONDS\n"
	                "       backlogcrash fill QUEUE COUNT SIZE\n"
	                "       backlogcrash take QUEUE COUNT SIZE TIMEOUT_MS\n"
	                "       backlogcrash stat QUEUE FIELD\n");
	return 2;
}

int main(int argc, char **argv)
{
	const char *cmd = argc > 1 ? argv[1] : "";
	unsigned long a, b, c, d, e;

	if (strcmp(cmd, "chaos") == 0 && (argc == 8 || (argc == 9 && strcmp(argv[8], "--no-kill") == 0))) {
		dir = argv[3];
		if (parse_ulong(argv[4], 3600, &a) < 0 || parse_ulong(argv[5], ULONG_MAX, &b) < 0 ||
		    parse_ulong(argv[6], MAX_LIVE, &c) < 0 || parse_ulong(argv[7], MAX_LIVE, &d) < 0)
			return 2;
		return cmd_chaos(argv[2], a, b, c, d, argc == 8);
	}
	if (strcmp(cmd, "drain") == 0 && argc == 5) {
		dir = argv[3];
		return parse_ulong(argv[4], INT32_MAX, &a) < 0 ? 2 : cmd_drain(argv[2], a);
	}
	if (strcmp(cmd, "verify") == 0 && (argc == 4 || (argc == 5 && strcmp(argv[4], "--strict") == 0))) {
		dir = argv[3];
		strict = argc == 5;
		return cmd_verify(argv[2]);
	}
	if (strcmp(cmd, "settle") == 0 && argc == 4)
		return parse_ulong(argv[3], 3600, &a) < 0 ? 2 : cmd_settle(argv[2], a);
	if (strcmp(cmd, "fill") == 0 && argc == 5) {
		if (parse_ulong(argv[3], UINT32_MAX, &a) < 0 || parse_ulong(argv[4], 1u << 20, &b) < 0 ||
		    b < sizeof(struct msg_hdr))
			return 2;
		return cmd_fill(argv[2], a, b);
	}
	if (strcmp(cmd, "take") == 0 && argc == 6) {
		if (parse_ulong(argv[3], UINT32_MAX, &a) < 0 || parse_ulong(argv[4], 1u << 20, &b) < 0 ||
		    b < sizeof(struct msg_hdr) || parse_ulong(argv[5], INT32_MAX, &e) < 0)
			return 2;
		return cmd_take(argv[2], a, b, e);
	}
	if (strcmp(cmd, "stat") == 0 && argc == 4)
		return cmd_stat(argv[2], argv[3]);
	return usage();
}
