/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ringcrash.c - a client to kill at awkward moments, for t_ringcrash.sh.
 *
 *   ringcrash hold-loan QUEUE SIZE      loan SIZE bytes, write half, print
 *                                       "ready", wait to be killed
 *   ringcrash hold-view QUEUE           take one message in place, print
 *                                       "ready LEN", wait to be killed
 *   ringcrash send QUEUE SIZE COUNT     send COUNT checkable messages
 *   ringcrash check QUEUE SIZE COUNT TIMEOUT_MS
 *                                       receive COUNT messages of SIZE bytes,
 *                                       exit 0 only if all arrive intact
 *   ringcrash used QUEUE                print "RING_USED RING_CHUNKS"
 *   ringcrash spin-send QUEUE LOGFILE   send messages of varied sizes (copy
 *                                       and loan/publish in turn) until
 *                                       killed; after each one sent, LOGFILE
 *                                       holds "PID COUNT"
 *   ringcrash drain QUEUE IDLE_MS [LOGFILE...]
 *                                       receive until IDLE_MS pass without a
 *                                       message; every message must be
 *                                       intact and unique, and every message
 *                                       a LOGFILE says was sent must be there
 *   ringcrash consume QUEUE RECORDS IDLE_MS
 *                                       the same, to be killed: each message
 *                                       is checked, then "PID SEQ" (or
 *                                       "damaged LEN") appended to RECORDS,
 *                                       then released
 *   ringcrash verify RECORDS LOGFILE... nothing in RECORDS is damaged, and
 *                                       every message a LOGFILE says was
 *                                       sent is there at least once
 *
 * A message is a header {magic, sender pid, seq, len, checksum} and bytes
 * derived from (pid, seq), so any receiver can tell an intact message
 * from a damaged or invented one without being told what was sent.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "ipcq.h"
#include "pattern.h"

#define MSG_MAGIC 0x48535243u /* "CRSH" */
#define SEND_TIMEOUT_MS 10000
#define SPIN_SIZE_MAX 300000u
#define LOG_RECORD_LEN 32

struct msg_hdr {
	uint32_t magic;
	uint32_t pid;
	uint32_t seq;
	uint32_t len; /* whole message, header included */
	uint64_t checksum;
};

static ipcq_client *client;
static ipcq_queue *queue;

/* ---- message content ---- */

static void fill_payload(unsigned char *p, size_t n, uint32_t pid, uint32_t seq)
{
	pattern_fill(p, n, ((uint64_t)pid << 32) | seq);
}

static void build_msg(unsigned char *buf, size_t len, uint32_t pid, uint32_t seq)
{
	struct msg_hdr h = { .magic = MSG_MAGIC, .pid = pid, .seq = seq, .len = (uint32_t)len };

	fill_payload(buf + sizeof(h), len - sizeof(h), pid, seq);
	h.checksum = pattern_checksum(buf + sizeof(h), len - sizeof(h));
	memcpy(buf, &h, sizeof(h));
}

/* Whether p[0..n) is an intact message; *h gets its header.  why says
 * what is wrong otherwise. */
static bool msg_intact(const unsigned char *p, size_t n, struct msg_hdr *h, const char **why)
{
	unsigned char *expect;
	bool same;

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
	expect = malloc(n - sizeof(*h) + 1);
	if (!expect) {
		*why = "out of memory";
		return false;
	}
	fill_payload(expect, n - sizeof(*h), h->pid, h->seq);
	same = memcmp(expect, p + sizeof(*h), n - sizeof(*h)) == 0;
	free(expect);
	if (!same) {
		*why = "payload is not the one its header names";
		return false;
	}
	return true;
}

/* ---- helpers ---- */

static int open_queue(const char *name, int flags)
{
	int r = ipcq_connect(&client, NULL);

	if (r < 0) {
		fprintf(stderr, "ringcrash: connect: %s\n", ipcq_strerror(r));
		return r;
	}
	r = ipcq_open(client, name, flags | IPCQ_CREATE, &queue);
	if (r < 0)
		fprintf(stderr, "ringcrash: open %s: %s (%s)\n", name, ipcq_strerror(r), ipcq_last_error(client));
	return r;
}

static void close_queue(void)
{
	ipcq_close(queue);
	ipcq_disconnect(client);
}

static int parse_ulong(const char *s, unsigned long max, unsigned long *out)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || end == s || *end || v > max) {
		fprintf(stderr, "ringcrash: bad number '%s'\n", s);
		return -EINVAL;
	}
	*out = v;
	return 0;
}

static int parse_size(const char *s, unsigned long *out)
{
	if (parse_ulong(s, UINT32_MAX, out) < 0)
		return -EINVAL;
	if (*out < sizeof(struct msg_hdr)) {
		fprintf(stderr, "ringcrash: SIZE must be at least %zu\n", sizeof(struct msg_hdr));
		return -EINVAL;
	}
	return 0;
}

static int wait_forever(void) __attribute__((noreturn));
static int wait_forever(void)
{
	for (;;)
		pause();
}

/* ---- subcommands ---- */

static int cmd_hold_loan(const char *name, const char *size_s)
{
	unsigned long size;
	void *buf;
	int r;

	if (parse_ulong(size_s, UINT32_MAX, &size) < 0 || open_queue(name, IPCQ_SEND) < 0)
		return 1;
	r = ipcq_loan(queue, size, &buf, SEND_TIMEOUT_MS);
	if (r < 0) {
		fprintf(stderr, "ringcrash: loan of %lu bytes: %s\n", size, ipcq_strerror(r));
		return 1;
	}
	memset(buf, 0x5a, size / 2);
	printf("ready\n");
	fflush(stdout);
	return wait_forever();
}

static int cmd_hold_view(const char *name)
{
	ipcq_msg m;
	int r;

	if (open_queue(name, IPCQ_RECV) < 0)
		return 1;
	r = ipcq_recv_view(queue, &m, SEND_TIMEOUT_MS);
	if (r < 0) {
		fprintf(stderr, "ringcrash: recv_view: %s\n", ipcq_strerror(r));
		return 1;
	}
	printf("ready %zu\n", m.len);
	fflush(stdout);
	return wait_forever();
}

static int cmd_send(const char *name, const char *size_s, const char *count_s)
{
	unsigned long size, count;
	unsigned char *buf;

	if (parse_size(size_s, &size) < 0 || parse_ulong(count_s, UINT32_MAX, &count) < 0)
		return 1;
	buf = malloc(size);
	if (!buf || open_queue(name, IPCQ_SEND) < 0)
		return 1;
	for (unsigned long i = 0; i < count; i++) {
		int r;

		build_msg(buf, size, (uint32_t)getpid(), (uint32_t)i);
		r = ipcq_send(queue, buf, size, 0, SEND_TIMEOUT_MS);
		if (r < 0) {
			fprintf(stderr, "ringcrash: send #%lu of %lu bytes: %s\n", i, size, ipcq_strerror(r));
			return 1;
		}
	}
	close_queue();
	free(buf);
	return 0;
}

static int cmd_check(const char *name, const char *size_s, const char *count_s, const char *timeout_s)
{
	unsigned long size, count, timeout, redelivered = 0;
	int bad = 0;

	if (parse_size(size_s, &size) < 0 || parse_ulong(count_s, UINT32_MAX, &count) < 0 ||
	    parse_ulong(timeout_s, INT32_MAX, &timeout) < 0 || open_queue(name, IPCQ_RECV) < 0)
		return 1;
	for (unsigned long i = 0; i < count; i++) {
		struct msg_hdr h;
		const char *why;
		ipcq_msg m;
		int r = ipcq_recv_view(queue, &m, (int)timeout);

		if (r < 0) {
			fprintf(stderr, "ringcrash: check: message %lu of %lu: %s\n", i + 1, count, ipcq_strerror(r));
			return 1;
		}
		if (m.len != size) {
			fprintf(stderr, "ringcrash: check: message %lu has %zu bytes, expected %lu\n", i + 1, m.len, size);
			bad++;
		} else if (!msg_intact(m.data, m.len, &h, &why)) {
			fprintf(stderr, "ringcrash: check: message %lu is damaged: %s\n", i + 1, why);
			bad++;
		}
		if (m.flags & IPCQ_MSG_REDELIVERED)
			redelivered++;
		ipcq_release(queue, &m);
	}
	close_queue();
	printf("received %lu intact %lu redelivered %lu\n", count, count - (unsigned long)bad, redelivered);
	return bad ? 1 : 0;
}

static int cmd_used(const char *name)
{
	ipcq_stats st;
	int r = ipcq_connect(&client, NULL);

	if (r == 0)
		r = ipcq_stat(client, name, &st);
	if (r < 0) {
		fprintf(stderr, "ringcrash: stat %s: %s\n", name, ipcq_strerror(r));
		return 1;
	}
	printf("%" PRIu64 " %" PRIu64 "\n", st.ring_used, st.ring_chunks);
	ipcq_disconnect(client);
	return 0;
}

/* Size of spin-send message seq: mostly ring messages, some inline. */
static size_t spin_size(uint32_t seq)
{
	uint64_t s = seq * 0x2545f4914f6cdd1dull;
	uint64_t r = splitmix64(&s);

	if (r % 4 == 0)
		return sizeof(struct msg_hdr) + (size_t)(r >> 8) % 600;
	return sizeof(struct msg_hdr) + (size_t)(r >> 8) % SPIN_SIZE_MAX;
}

static int log_progress(int fd, uint32_t pid, uint32_t count)
{
	char rec[LOG_RECORD_LEN + 1];

	snprintf(rec, sizeof(rec), "%10" PRIu32 " %19" PRIu32 "\n", pid, count);
	return pwrite(fd, rec, LOG_RECORD_LEN, 0) == LOG_RECORD_LEN ? 0 : -errno;
}

/* Every other message goes through ipcq_loan/ipcq_publish, so a kill
 * finds the producer at every point of both paths. */
static int cmd_spin_send(const char *name, const char *logfile)
{
	unsigned char *buf = malloc(sizeof(struct msg_hdr) + SPIN_SIZE_MAX);
	uint32_t pid = (uint32_t)getpid();
	int fd, r;

	fd = open(logfile, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0 || !buf) {
		perror("ringcrash: spin-send");
		return 1;
	}
	if (open_queue(name, IPCQ_SEND) < 0 || log_progress(fd, pid, 0) < 0)
		return 1;
	for (uint32_t seq = 0;; seq++) {
		size_t len = spin_size(seq);

		if (seq % 2 == 0) {
			void *loan;

			r = ipcq_loan(queue, len, &loan, SEND_TIMEOUT_MS);
			if (r == 0) {
				build_msg(loan, len, pid, seq);
				r = ipcq_publish(queue, loan, len, 0);
			}
		} else {
			build_msg(buf, len, pid, seq);
			r = ipcq_send(queue, buf, len, 0, SEND_TIMEOUT_MS);
		}
		if (r < 0) {
			fprintf(stderr, "ringcrash: spin-send #%u (%zu bytes): %s\n", seq, len, ipcq_strerror(r));
			return 1;
		}
		if (log_progress(fd, pid, seq + 1) < 0)
			return 1;
	}
}

struct seen {
	uint32_t pid, seq;
};

static int seen_cmp(const void *a, const void *b)
{
	const struct seen *x = a, *y = b;

	if (x->pid != y->pid)
		return x->pid < y->pid ? -1 : 1;
	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* Compare what arrived (sorted) with one spin-send log: every message it
 * logged as sent must be there, and nothing past the one in flight.
 * Duplicates are counted elsewhere. */
static int check_log(const char *path, const struct seen *got, size_t n)
{
	FILE *f = fopen(path, "r");
	unsigned long pid, count, have = 0, beyond = 0;
	int bad = 0;

	if (!f || fscanf(f, "%lu %lu", &pid, &count) != 2) {
		fprintf(stderr, "ringcrash: drain: cannot read log %s\n", path);
		if (f)
			fclose(f);
		return 1;
	}
	fclose(f);
	for (size_t i = 0; i < n; i++) {
		if (got[i].pid != pid || (i > 0 && seen_cmp(&got[i - 1], &got[i]) == 0))
			continue; /* another sender, or a duplicate */
		if (got[i].seq < count)
			have++;
		else
			beyond++;
		if (got[i].seq > count) {
			fprintf(stderr, "ringcrash: drain: pid %lu seq %u arrived, but only %lu were sent\n", pid,
			        got[i].seq, count);
			bad = 1;
		}
	}
	if (have != count) {
		fprintf(stderr, "ringcrash: drain: pid %lu sent %lu messages, %lu of them arrived\n", pid, count, have);
		bad = 1;
	}
	printf("pid %lu: sent %lu, received %lu (+%lu in flight when killed)\n", pid, count, have, beyond);
	return bad;
}

static int seen_add(struct seen **got, size_t *n, size_t *cap, uint32_t pid, uint32_t seq)
{
	if (*n == *cap) {
		struct seen *more;

		*cap = *cap ? 2 * *cap : 4096;
		more = realloc(*got, *cap * sizeof(**got));
		if (!more)
			return -ENOMEM;
		*got = more;
	}
	(*got)[(*n)++] = (struct seen){ pid, seq };
	return 0;
}

/* Messages received more than once in a sorted array. */
static unsigned long count_dups(const struct seen *got, size_t n, bool report)
{
	unsigned long dups = 0;

	for (size_t i = 1; i < n; i++) {
		if (seen_cmp(&got[i - 1], &got[i]) != 0)
			continue;
		if (report && dups < 10)
			fprintf(stderr, "ringcrash: pid %u seq %u received twice\n", got[i].pid, got[i].seq);
		dups++;
	}
	return dups;
}

static int cmd_drain(const char *name, const char *idle_s, int nlogs, char **logs)
{
	unsigned long idle, total = 0, damaged = 0, dups = 0, redelivered = 0, errors = 0;
	struct seen *got = NULL;
	size_t n = 0, cap = 0;
	int bad = 0;

	if (parse_ulong(idle_s, INT32_MAX, &idle) < 0 || open_queue(name, IPCQ_RECV) < 0)
		return 1;
	for (;;) {
		struct msg_hdr h;
		const char *why;
		ipcq_msg m;
		int r = ipcq_recv_view(queue, &m, (int)idle);

		if (r == -ETIMEDOUT)
			break;
		if (r < 0) {
			fprintf(stderr, "ringcrash: drain: %s\n", ipcq_strerror(r));
			errors++;
			if (r == -EBADMSG || r == -ESTALE)
				continue;
			return 1;
		}
		total++;
		if (m.flags & IPCQ_MSG_REDELIVERED)
			redelivered++;
		if (!msg_intact(m.data, m.len, &h, &why)) {
			if (damaged++ < 10)
				fprintf(stderr, "ringcrash: drain: a %zu-byte message is damaged: %s\n", m.len, why);
		} else if (seen_add(&got, &n, &cap, h.pid, h.seq) < 0) {
			return 1;
		}
		ipcq_release(queue, &m);
	}
	close_queue();
	qsort(got, n, sizeof(*got), seen_cmp);
	dups = count_dups(got, n, true);
	for (int i = 0; i < nlogs; i++)
		bad |= check_log(logs[i], got, n);
	printf("drained %lu damaged %lu duplicates %lu redelivered %lu errors %lu\n", total, damaged, dups,
	       redelivered, errors);
	free(got);
	return bad || damaged || dups || errors ? 1 : 0;
}

static int cmd_consume(const char *name, const char *records, const char *idle_s)
{
	unsigned long idle;
	int fd;

	if (parse_ulong(idle_s, INT32_MAX, &idle) < 0)
		return 1;
	fd = open(records, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
	if (fd < 0 || open_queue(name, IPCQ_RECV) < 0) {
		perror("ringcrash: consume");
		return 1;
	}
	for (;;) {
		struct msg_hdr h;
		const char *why;
		ipcq_msg m;
		char rec[32];
		int r = ipcq_recv_view(queue, &m, (int)idle), len;

		if (r == -ETIMEDOUT)
			break;
		if (r < 0) {
			fprintf(stderr, "ringcrash: consume: %s\n", ipcq_strerror(r));
			return 1;
		}
		/* recorded before it is released: a kill in between makes a
		 * duplicate (allowed), never a loss */
		if (msg_intact(m.data, m.len, &h, &why))
			len = snprintf(rec, sizeof(rec), "%u %u\n", h.pid, h.seq);
		else
			len = snprintf(rec, sizeof(rec), "damaged %zu\n", m.len);
		if (write(fd, rec, (size_t)len) != len) {
			perror("ringcrash: consume: write");
			return 1;
		}
		ipcq_release(queue, &m);
	}
	close_queue();
	close(fd);
	return 0;
}

static int cmd_verify(const char *records, int nlogs, char **logs)
{
	FILE *f = fopen(records, "r");
	struct seen *got = NULL;
	size_t n = 0, cap = 0;
	unsigned long damaged = 0;
	unsigned pid, seq;
	char line[64];
	int bad = 0;

	if (!f) {
		perror("ringcrash: verify");
		return 1;
	}
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "%u %u", &pid, &seq) == 2) {
			if (seen_add(&got, &n, &cap, pid, seq) < 0)
				return 1;
		} else if (damaged++ < 10) {
			fprintf(stderr, "ringcrash: verify: %s", line);
		}
	}
	fclose(f);
	qsort(got, n, sizeof(*got), seen_cmp);
	for (int i = 0; i < nlogs; i++)
		bad |= check_log(logs[i], got, n);
	printf("verified %zu records, %lu duplicates, %lu damaged\n", n, count_dups(got, n, false), damaged);
	free(got);
	return bad || damaged ? 1 : 0;
}

static int usage(void)
{
	fprintf(stderr, "usage: ringcrash hold-loan QUEUE SIZE\n"
	                "       ringcrash hold-view QUEUE\n"
	                "       ringcrash send QUEUE SIZE COUNT\n"
	                "       ringcrash check QUEUE SIZE COUNT TIMEOUT_MS\n"
	                "       ringcrash used QUEUE\n"
	                "       ringcrash spin-send QUEUE LOGFILE\n"
	                "       ringcrash drain QUEUE IDLE_MS [LOGFILE...]\n"
	                "       ringcrash consume QUEUE RECORDS IDLE_MS\n"
	                "       ringcrash verify RECORDS LOGFILE...\n");
	return 2;
}

int main(int argc, char **argv)
{
	const char *cmd = argc > 1 ? argv[1] : "";

	if (strcmp(cmd, "hold-loan") == 0 && argc == 4)
		return cmd_hold_loan(argv[2], argv[3]);
	if (strcmp(cmd, "hold-view") == 0 && argc == 3)
		return cmd_hold_view(argv[2]);
	if (strcmp(cmd, "send") == 0 && argc == 5)
		return cmd_send(argv[2], argv[3], argv[4]);
	if (strcmp(cmd, "check") == 0 && argc == 6)
		return cmd_check(argv[2], argv[3], argv[4], argv[5]);
	if (strcmp(cmd, "used") == 0 && argc == 3)
		return cmd_used(argv[2]);
	if (strcmp(cmd, "spin-send") == 0 && argc == 4)
		return cmd_spin_send(argv[2], argv[3]);
	if (strcmp(cmd, "drain") == 0 && argc >= 4)
		return cmd_drain(argv[2], argv[3], argc - 4, argv + 4);
	if (strcmp(cmd, "consume") == 0 && argc == 5)
		return cmd_consume(argv[2], argv[3], argv[4]);
	if (strcmp(cmd, "verify") == 0 && argc >= 4)
		return cmd_verify(argv[2], argc - 3, argv + 3);
	return usage();
}
