/* SPDX-License-Identifier: Apache-2.0 */
/*
 * statefile.c - atomic, private state files (see statefile.h).
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "statefile.h"

int statefile_save(const char *path, int (*write)(FILE *f, void *ctx), void *ctx, int sync)
{
	char tmp[PATH_MAX];
	FILE *f = NULL;
	int fd, ret;

	if (snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int)sizeof(tmp))
		return -ENAMETOOLONG;
	/* O_TRUNC on our own leftover; O_NOFOLLOW: never write through a link */
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd >= 0 && fchmod(fd, 0600) == 0)
		f = fdopen(fd, "w");
	if (!f) {
		ret = -errno;
		if (fd >= 0)
			close(fd);
		log_error("cannot write %s: %s", tmp, strerror(-ret));
		return ret;
	}
	ret = write(f, ctx);
	if (ret == 0 && (fflush(f) != 0 || (sync && fsync(fileno(f)) < 0)))
		ret = -errno;
	if (fclose(f) != 0 && ret == 0)
		ret = -errno;
	if (ret == 0 && rename(tmp, path) < 0)
		ret = -errno;
	if (ret < 0) {
		log_error("cannot write %s: %s", path, strerror(-ret));
		unlink(tmp);
	}
	return ret;
}
