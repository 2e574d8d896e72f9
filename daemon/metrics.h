/* SPDX-License-Identifier: Apache-2.0 */
/*
 * metrics.h - the daemon's Prometheus textfile (metrics_file), rewritten
 * every metrics_interval for node_exporter's textfile collector.
 */
#ifndef IPCQ_METRICS_H
#define IPCQ_METRICS_H

struct daemon;

/* Start (or, after a reload, restart or stop) writing the file the
 * config names: written at once, then every metrics_interval.  A file
 * the previous config named is removed. */
int metrics_apply_config(struct daemon *d);
/* Write the file now: 0, or a negative errno (logged, rate-limited). */
int metrics_write(struct daemon *d);
/* Stop writing and remove the file: a stopped daemon reports nothing
 * rather than numbers that no longer move. */
void metrics_deinit(struct daemon *d);

#endif
