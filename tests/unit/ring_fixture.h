/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ring_fixture.h - a ring for the cmocka tests of the ring and the
 * backlog (test_ring.c, test_backlog.c): formatted in two shared
 * mappings, its control object and its data object, in one process.
 * A receive-only client is a second view of the same ring whose data
 * object is mapped again, read-only, from a memfd, as the daemon's
 * read-only descriptor makes it: any write it made there would kill the
 * test with SIGSEGV (assert_write_faults checks that it would).
 *
 * Included after cmocka.h.
 */
#ifndef IPCQ_RING_FIXTURE_H
#define IPCQ_RING_FIXTURE_H

#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ring.h"

#define KIB 1024ull

#define TEST_HOLDER 4242u
#define RECEIVER_HOLDER 5151u /* a receive-only client */
#define DEAD_HOLDER 777u      /* a holder id no live process has */

struct test_ring {
	struct ring r;
	void *mem; /* the control object */
	size_t len;
	void *data; /* the data object */
	size_t data_len;
	int data_fd;   /* the data object's memfd, or -1 (anonymous) */
	void *ro_data; /* a read-only mapping of it, for a receive-only view */
	struct ring_geometry geo;
};

/* A ring held by TEST_HOLDER; memfd: its data object comes from a memfd,
 * so that a receive-only view can map it again (attach_receive_only). */
static inline struct test_ring *ring_new_in(uint64_t data_size, uint64_t max_payload, uint32_t delivery,
                                            bool memfd)
{
	struct test_ring *t = calloc(1, sizeof(*t));

	assert_non_null(t);
	t->geo = (struct ring_geometry){
		.data_size = data_size, .max_payload = max_payload, .msg_size = 256, .delivery = delivery
	};
	assert_int_equal(ring_geometry_check(&t->geo, NULL), 0);
	t->len = ring_map_size(&t->geo);
	t->data_len = ring_data_map_size(&t->geo);
	t->data_fd = -1;
	t->mem = mmap(NULL, t->len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	assert_true(t->mem != MAP_FAILED);
	if (memfd) {
		t->data_fd = memfd_create("test-ring-data", MFD_CLOEXEC);
		assert_true(t->data_fd >= 0);
		assert_int_equal(ftruncate(t->data_fd, (off_t)t->data_len), 0);
		t->data = mmap(NULL, t->data_len, PROT_READ | PROT_WRITE, MAP_SHARED, t->data_fd, 0);
	} else {
		t->data = mmap(NULL, t->data_len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	}
	assert_true(t->data != MAP_FAILED);
	assert_int_equal(ring_format(&t->r, t->mem, t->len, t->data, t->data_len, &t->geo), 0);
	t->r.self = TEST_HOLDER;
	return t;
}

static inline struct test_ring *ring_new(uint64_t data_size, uint64_t max_payload, uint32_t delivery)
{
	return ring_new_in(data_size, max_payload, delivery, false);
}

/* A receive-only client's view of t (made with ring_new_in(..., true)):
 * the control object shared read-write, the data object mapped again,
 * read-only. */
static inline void attach_receive_only(struct test_ring *t, struct ring *ro)
{
	assert_true(t->data_fd >= 0);
	if (!t->ro_data) {
		t->ro_data = mmap(NULL, t->data_len, PROT_READ, MAP_SHARED, t->data_fd, 0);
		assert_true(t->ro_data != MAP_FAILED);
	}
	assert_int_equal(ring_attach(ro, t->mem, t->len, t->ro_data, t->data_len, false), 0);
	assert_false(ro->writable);
	ro->self = RECEIVER_HOLDER;
}

static inline void ring_free(struct test_ring *t)
{
	if (!t)
		return;
	if (t->ro_data)
		munmap(t->ro_data, t->data_len);
	munmap(t->data, t->data_len);
	munmap(t->mem, t->len);
	if (t->data_fd >= 0)
		close(t->data_fd);
	free(t);
}

static inline int teardown_ring(void **state)
{
	ring_free(*state);
	*state = NULL;
	return 0;
}

#define SEGV_EXIT 99

static inline void exit_on_segv(int sig)
{
	(void)sig;
	_exit(SEGV_EXIT);
}

/* A write to p faults (the check is live: a write the library made
 * through a receive-only view would kill the test). */
static inline void assert_write_faults(void *p)
{
	pid_t pid = fork();
	int st;

	assert_true(pid >= 0);
	if (pid == 0) {
		struct sigaction sa = { .sa_handler = exit_on_segv };

		sigaction(SIGSEGV, &sa, NULL);
		sigaction(SIGBUS, &sa, NULL);
		*(volatile unsigned char *)p = *(volatile unsigned char *)p;
		_exit(0);
	}
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true((WIFEXITED(st) && WEXITSTATUS(st) == SEGV_EXIT) || (WIFSIGNALED(st) && WTERMSIG(st) == SIGSEGV));
}

#endif
