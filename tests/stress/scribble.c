/*
 * scribble.c - a client that wrecks the shared memory of a queue it may
 * use, for t_scribble.sh; and the legitimate traffic the test checks
 * beside it.
 *
 *   scribble SOCKET QUEUE RIGHTS PATTERN ROUNDS AFTER
 *       RIGHTS   send | recv | both: how QUEUE is opened
 *       PATTERN  random | zero | ff | all (the three in turn, one a round)
 *       AFTER    exit (closes and exits 0) | stop (SIGSTOP: stays stopped,
 *                and exits 0 once continued) | kill (SIGKILL)
 *   scribble SOCKET QUEUE use MS TIMEOUT_MS
 *       a legitimate client that holds QUEUE before an attack: it sends and
 *       receives for MS milliseconds, TIMEOUT_MS a call, and prints "open"
 *       once it holds the queue; exit 3 if a call overran its timeout
 *   scribble SOCKET QUEUE feed TAG COUNT PAUSE_MS
 *       send COUNT checkable messages, 100 and 20000 bytes in turn (inline
 *       and through the ring), PAUSE_MS apart
 *   scribble SOCKET QUEUE check TAG COUNT TIMEOUT_MS
 *       receive them within TIMEOUT_MS: exit 0 only if each of the COUNT
 *       arrived intact exactly once and nothing else came
 *
 * The attack knows nothing of the ring's layout, on purpose: it finds the
 * queue's memory as any client could, as the shared mappings of /dev/shm
 * objects in /proc/self/maps, and overwrites every byte of those it may
 * write.  So the test still means something when the layout changes, and
 * it hits every field, not only those someone thought of.  It also tries
 * to forge messages of every length on the queue's mq, and the kernel
 * decides whether it may (a receive-only descriptor must refuse).
 * Between rounds it calls the library on the wreck: the calls may fail,
 * but must return within their timeouts ("late" counts those that did
 * not), and must not crash this process.
 *
 * It prints one line of what it did, then does AFTER.  Every wait it
 * makes is bounded.  Exit 1 means it could not attack (no connection, no
 * queue, no writable mapping): the test is broken, not the daemon.
 *
 * A traffic message is a header {magic, tag, seq, len, checksum} and
 * bytes derived from (tag, seq), so the checker tells an intact message
 * from a damaged, foreign (another run's) or invented one by itself.
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
#include <time.h>
#include <unistd.h>

#include "client.h" /* the handle's raw mq, which a hostile client would use */
#include "ipcq.h"
#include "pattern.h"

#define CALL_TIMEOUT_MS 100
/* a call that returns this much after its timeout is late: far beyond
 * scheduling noise, even under a sanitizer */
#define LATE_MARGIN_MS 1000
#define ROUND_PAUSE_US 20000
#define FORGE_PER_ROUND 64
#define INLINE_LEN 100
#define RING_LEN 20000
#define RECV_CAP 65536
#define SEND_TIMEOUT_MS 5000
#define EXTRA_WAIT_MS 300
#define MAPPINGS_MAX 64
#define SHM_PREFIX "/dev/shm/"
#define MSG_MAGIC 0x42524353u /* "SCRB" */

enum pattern { PAT_RANDOM, PAT_ZERO, PAT_FF, PAT_ALL };
enum after { AFTER_EXIT, AFTER_STOP, AFTER_KILL };

static const char *const pattern_names[] = { "random", "zero", "ff", "all" };
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

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* Milliseconds left until deadline (a now_ms() time), 0 once it passed. */
static int ms_until(uint64_t deadline)
{
	uint64_t now = now_ms();

	if (now >= deadline)
		return 0;
	return deadline - now > INT32_MAX ? INT32_MAX : (int)(deadline - now);
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

/* Overwrite every byte of every writable mapping; 0 or -errno.  Nothing
 * else in this process uses those bytes except through the library, which
 * must cope. */
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
		fill(maps[i].start, maps[i].len, pat);
		t->writable++;
		t->bytes += maps[i].len;
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
	for (i = 0; i <= PAT_ALL && strcmp(argv[4], pattern_names[i]) != 0; i++)
		;
	if (i > PAT_ALL)
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
	       " bytes written; forged %lu mq messages (%s, %lu other errors); library calls %lu, errors %lu, late %lu,"
	       " slowest %" PRIu64 " ms\n",
	       rights, pattern_names[a->pattern], after_names[a->after], a->rounds, t->mappings, t->writable,
	       t->bytes, t->forged, t->mq_refused ? "the mq refused writes" : "the mq took writes", t->forge_errors,
	       t->calls, t->errors, t->late, t->slowest_ms);
	fflush(stdout);
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
		if (r < 0 || t->writable == 0)
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
	if (r < 0 || t.writable == 0) {
		fprintf(stderr, "scribble: no writable shared mapping of %s found in /proc/self/maps (%s)\n", SHM_PREFIX,
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

/* ---- a legitimate client of the attacked queue ---- */

static int parse_u32(const char *s, uint32_t *out)
{
	char *end;
	unsigned long v = strtoul(s, &end, 10);

	if (!*s || *end || v > UINT32_MAX)
		return -EINVAL;
	*out = (uint32_t)v;
	return 0;
}

/* Open QUEUE for sending and receiving, say "open", then send and receive
 * for MS milliseconds, TIMEOUT_MS a call: it held the queue before the
 * attack, so its calls meet the wreck itself, not an open that fails.
 * Exit 0 unless a call overran its timeout (3). */
static int mode_use(const char *sock, char **argv)
{
	unsigned char *buf = malloc(RECV_CAP);
	uint32_t ms, timeout_ms;
	struct tally t = { 0 };
	uint64_t end;
	ipcq_client *c;
	ipcq_queue *q;
	int r;

	if (!buf || parse_u32(argv[4], &ms) < 0 || parse_u32(argv[5], &timeout_ms) < 0 || timeout_ms > INT32_MAX) {
		free(buf);
		return 2;
	}
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
		return 1;
	}
	printf("open\n");
	fflush(stdout);
	memset(buf, 0x66, RECV_CAP);
	for (end = now_ms() + ms; now_ms() < end;) {
		exercise_send(q, buf, (int)timeout_ms, &t);
		exercise_recv(q, buf, (int)timeout_ms, &t);
		usleep(ROUND_PAUSE_US); /* calls that fail at once must not spin */
	}
	printf("use %s: library calls %lu, errors %lu, late %lu, slowest %" PRIu64 " ms\n", argv[2], t.calls,
	       t.errors, t.late, t.slowest_ms);
	ipcq_close(q);
	ipcq_disconnect(c);
	free(buf);
	return t.late ? 3 : 0;
}

/* ---- legitimate traffic ---- */

struct msg_hdr {
	uint32_t magic;
	uint32_t tag;
	uint32_t seq;
	uint32_t len; /* whole message, header included */
	uint64_t checksum;
};

static size_t msg_len_of(uint32_t seq)
{
	return seq % 2 ? RING_LEN : INLINE_LEN;
}

static void build_msg(unsigned char *buf, uint32_t tag, uint32_t seq)
{
	size_t len = msg_len_of(seq);
	struct msg_hdr h = { .magic = MSG_MAGIC, .tag = tag, .seq = seq, .len = (uint32_t)len };

	pattern_fill(buf + sizeof(h), len - sizeof(h), ((uint64_t)tag << 32) | seq);
	h.checksum = pattern_checksum(buf + sizeof(h), len - sizeof(h));
	memcpy(buf, &h, sizeof(h));
}

enum verdict { MSG_INTACT, MSG_DAMAGED, MSG_FOREIGN };

/* An intact message of this run sets *seq; one of another run is foreign. */
static enum verdict judge_msg(const unsigned char *p, size_t n, uint32_t tag, uint32_t count, uint32_t *seq)
{
	unsigned char want[RING_LEN];
	struct msg_hdr h;

	if (n < sizeof(h))
		return MSG_DAMAGED;
	memcpy(&h, p, sizeof(h));
	if (h.magic != MSG_MAGIC || h.len != n)
		return MSG_DAMAGED;
	if (h.tag != tag)
		return MSG_FOREIGN;
	if (h.seq >= count || msg_len_of(h.seq) != n)
		return MSG_DAMAGED;
	build_msg(want, tag, h.seq);
	if (memcmp(want, p, n) != 0)
		return MSG_DAMAGED;
	*seq = h.seq;
	return MSG_INTACT;
}

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

static int mode_feed(const char *sock, char **argv)
{
	unsigned char buf[RING_LEN];
	uint32_t tag, count, pause_ms, sent = 0;
	ipcq_client *c;
	ipcq_queue *q;
	int r = 0;

	if (parse_u32(argv[4], &tag) < 0 || parse_u32(argv[5], &count) < 0 || parse_u32(argv[6], &pause_ms) < 0)
		return 2;
	if (open_traffic(sock, argv[2], IPCQ_SEND, &c, &q) < 0)
		return 1;
	for (; sent < count; sent++) {
		build_msg(buf, tag, sent);
		r = ipcq_send(q, buf, msg_len_of(sent), 0, SEND_TIMEOUT_MS);
		if (r < 0) {
			fprintf(stderr, "scribble: feed: message %u: %s\n", sent, ipcq_strerror(r));
			break;
		}
		usleep(pause_ms * 1000u);
	}
	printf("feed %s: tag %u: sent %u of %u\n", argv[2], tag, sent, count);
	ipcq_close(q);
	ipcq_disconnect(c);
	return sent == count ? 0 : 1;
}

struct check_counts {
	uint32_t intact, damaged, duplicate, foreign, extra, errors;
};

/* Receive one message with the given timeout and judge it; 0, or the
 * negative errno of the receive. */
static int check_one(ipcq_queue *q, uint32_t tag, uint32_t count, bool *seen, int timeout_ms,
                     struct check_counts *k)
{
	ipcq_msg m;
	uint32_t seq;
	int r = ipcq_recv_view(q, &m, timeout_ms);

	if (r < 0)
		return r;
	switch (judge_msg(m.data, m.len, tag, count, &seq)) {
	case MSG_INTACT:
		if (seen[seq]) {
			k->duplicate++;
		} else {
			seen[seq] = true;
			k->intact++;
		}
		break;
	case MSG_FOREIGN:
		k->foreign++;
		break;
	default:
		k->damaged++;
		fprintf(stderr, "scribble: check: a damaged message of %zu bytes\n", m.len);
	}
	ipcq_release(q, &m);
	return 0;
}

static int mode_check(const char *sock, char **argv)
{
	struct check_counts k = { 0 };
	uint32_t tag, count, timeout_ms;
	uint64_t deadline;
	ipcq_client *c;
	ipcq_queue *q;
	bool *seen;
	int r;

	if (parse_u32(argv[4], &tag) < 0 || parse_u32(argv[5], &count) < 0 || parse_u32(argv[6], &timeout_ms) < 0)
		return 2;
	seen = calloc(count + 1, sizeof(*seen));
	if (!seen || open_traffic(sock, argv[2], IPCQ_RECV, &c, &q) < 0) {
		free(seen);
		return 1;
	}
	deadline = now_ms() + timeout_ms;
	for (int left; k.intact < count && (left = ms_until(deadline)) > 0;) {
		r = check_one(q, tag, count, seen, left, &k);
		if (r < 0 && r != -ETIMEDOUT && r != -EAGAIN) {
			fprintf(stderr, "scribble: check: receive: %s\n", ipcq_strerror(r));
			k.errors++;
			break;
		}
	}
	/* once all came, nothing more may come */
	while (k.intact == count && k.extra < count && check_one(q, tag, count, seen, EXTRA_WAIT_MS, &k) == 0)
		k.extra++;
	printf("check %s: tag %u: %u of %u intact, %u damaged, %u duplicates, %u foreign, %u errors, %u missing, "
	       "%u after the last\n",
	       argv[2], tag, k.intact, count, k.damaged, k.duplicate, k.foreign, k.errors, count - k.intact, k.extra);
	ipcq_close(q);
	ipcq_disconnect(c);
	free(seen);
	return k.intact == count && !k.damaged && !k.duplicate && !k.foreign && !k.errors && !k.extra ? 0 : 1;
}

static int usage(void)
{
	fprintf(stderr, "usage: scribble SOCKET QUEUE send|recv|both random|zero|ff|all ROUNDS exit|stop|kill\n"
	                "       scribble SOCKET QUEUE use MS TIMEOUT_MS\n"
	                "       scribble SOCKET QUEUE feed TAG COUNT PAUSE_MS\n"
	                "       scribble SOCKET QUEUE check TAG COUNT TIMEOUT_MS\n");
	return 2;
}

int main(int argc, char **argv)
{
	if (argc < 6)
		return usage();
	rng_state = ((uint64_t)getpid() << 32) ^ (uint64_t)time(NULL);
	if (argc == 6 && strcmp(argv[3], "use") == 0)
		return mode_use(argv[1], argv);
	if (argc != 7)
		return usage();
	if (strcmp(argv[3], "feed") == 0)
		return mode_feed(argv[1], argv);
	if (strcmp(argv[3], "check") == 0)
		return mode_check(argv[1], argv);
	return mode_attack(argv[1], argv);
}
