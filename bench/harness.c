/* SPDX-License-Identifier: Apache-2.0 */
/*
 * harness.c - the shared part of the bench/ programs (see harness.h).
 */
#include "config.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"

uint64_t bench_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

int bench_parse_ulong(const char *s, unsigned long min, unsigned long max, unsigned long *out)
{
	char *end;

	errno = 0;
	*out = strtoul(s, &end, 10);
	return *s >= '0' && *s <= '9' && !*end && !errno && *out >= min && *out <= max ? 0 : -1;
}

void *bench_shared_alloc(size_t len)
{
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);

	return p == MAP_FAILED ? NULL : p;
}

int bench_peer_start(struct bench_peer *p, int (*fn)(void *arg, int ready_fd), void *arg)
{
	pid_t parent = getpid();
	int ready[2];

	p->pid = 0;
	p->ready_fd = -1;
	if (pipe(ready) < 0)
		return -1;
	fflush(NULL);
	p->pid = fork();
	if (p->pid < 0) {
		p->pid = 0;
		close(ready[0]);
		close(ready[1]);
		return -1;
	}
	if (p->pid == 0) {
		signal(SIGINT, SIG_DFL);
		signal(SIGTERM, SIG_DFL);
		signal(SIGHUP, SIG_DFL);
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(1);
		close(ready[0]);
		_exit(fn(arg, ready[1]));
	}
	close(ready[1]);
	p->ready_fd = ready[0];
	return 0;
}

int bench_say_ready(int ready_fd)
{
	int r = write(ready_fd, "", 1) == 1 ? 0 : -1;

	close(ready_fd);
	return r;
}

int bench_peer_wait_ready(struct bench_peer *p)
{
	char ch;
	ssize_t n;

	do
		n = read(p->ready_fd, &ch, 1);
	while (n < 0 && errno == EINTR);
	close(p->ready_fd);
	p->ready_fd = -1;
	return n == 1 ? 0 : -1;
}

int bench_peer_finish(struct bench_peer *p, int kill_it)
{
	int status;

	if (p->ready_fd >= 0)
		close(p->ready_fd);
	p->ready_fd = -1;
	if (p->pid <= 0)
		return -1;
	if (kill_it)
		kill(p->pid, SIGKILL);
	while (waitpid(p->pid, &status, 0) < 0)
		if (errno != EINTR)
			return -1;
	p->pid = 0;
	return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -1;
}

static int compare_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static double rank_us(const uint64_t *s, size_t n, unsigned pct)
{
	size_t rank = (n * pct + 99) / 100;

	return (double)s[rank ? rank - 1 : 0] / 1e3;
}

void bench_latency_of(uint64_t *samples, size_t n, struct bench_latency *out)
{
	*out = (struct bench_latency){ 0 };
	if (n == 0)
		return;
	qsort(samples, n, sizeof(*samples), compare_u64);
	out->p50_us = rank_us(samples, n, 50);
	out->p99_us = rank_us(samples, n, 99);
	out->max_us = (double)samples[n - 1] / 1e3;
}

double bench_rate(double n, uint64_t ns)
{
	return ns ? n / ((double)ns / 1e9) : 0;
}
