/* SPDX-License-Identifier: Apache-2.0 */
/*
 * statefile.h - the daemon's state files (the queue registry, the holder
 * table): the daemon's alone (mode 0600, never through a symlink) and
 * replaced atomically (write a temporary file, rename it over), so a
 * daemon killed at any instant leaves the old file or the new one.
 */
#ifndef IPCQ_STATEFILE_H
#define IPCQ_STATEFILE_H

#include <stdio.h>

/* Write path anew through write(f, ctx), which returns 0 or a negative
 * errno; sync says whether to fsync before the rename.  Logs a failure;
 * returns 0 or a negative errno. */
int statefile_save(const char *path, int (*write)(FILE *f, void *ctx), void *ctx, int sync);

#endif
