/* SPDX-License-Identifier: Apache-2.0 */
/*
 * shmguard.c - a SIGBUS in a queue's shared memory is the queue's
 * problem, not the daemon's (see shmguard.h).
 */
#include "config.h"

#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "shmguard.h"

struct guard {
	struct guard *next;
	uintptr_t start;
	size_t len;
	volatile sig_atomic_t faulted;
};

/* Read by the handler: a list whose links are single stores, each node
 * whole before it is linked and unlinked before it is freed. */
static struct guard *volatile guards;

static void on_sigbus(int sig, siginfo_t *si, void *uctx)
{
	uintptr_t a = (uintptr_t)si->si_addr;

	(void)uctx;
	for (struct guard *g = guards; g; g = g->next) {
		if (a < g->start || a - g->start >= g->len)
			continue;
		/* mmap is not on the async-signal-safe list, but is a plain
		 * system call; libwayland's wl_shm does the same */
		if (mmap((void *)g->start, g->len, PROT_READ | PROT_WRITE, MAP_FIXED | MAP_PRIVATE | MAP_ANONYMOUS, -1,
		         0) == MAP_FAILED)
			break;
		g->faulted = 1;
		return;
	}
	/* not in a guarded mapping: a bug of the daemon's, die of it */
	signal(sig, SIG_DFL);
	raise(sig);
}

int shmguard_install(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = on_sigbus;
	sa.sa_flags = SA_SIGINFO;
	sigemptyset(&sa.sa_mask);
	return sigaction(SIGBUS, &sa, NULL) < 0 ? -errno : 0;
}

int shmguard_add(void *addr, size_t len)
{
	struct guard *g = calloc(1, sizeof(*g));

	if (!g)
		return -ENOMEM;
	g->start = (uintptr_t)addr;
	g->len = len;
	g->next = guards;
	__atomic_signal_fence(__ATOMIC_SEQ_CST);
	guards = g;
	return 0;
}

void shmguard_remove(void *addr)
{
	for (struct guard *volatile *link = &guards; *link; link = &(*link)->next) {
		struct guard *g = *link;

		if (g->start != (uintptr_t)addr)
			continue;
		*link = g->next;
		__atomic_signal_fence(__ATOMIC_SEQ_CST);
		free(g);
		return;
	}
}

bool shmguard_faulted(const void *addr)
{
	for (struct guard *g = guards; g; g = g->next)
		if (g->start == (uintptr_t)addr)
			return g->faulted != 0;
	return false;
}
