/* SPDX-License-Identifier: Apache-2.0 */
/*
 * metrics.c - the queues' state in Prometheus's text format, kept in a
 * file for node_exporter's textfile collector.
 *
 * The daemon is off the data path, but it maps every queue's ring, whose
 * control object carries the counters clients keep (sent, received...):
 * a stat request reads them there (queue_stats), and so does this, every
 * metrics_interval, for every queue.  The file is written beside its
 * final name ("NAME.tmp", which the collector ignores: it reads *.prom)
 * and renamed over it, so a scrape never sees half a file.  It is mode
 * 0644: the collector runs as another user.
 *
 * Names follow ipcq stat --prometheus: ipcq_queue_ and the field, with
 * "_total" on counters and base units in the name ("_seconds": ttl_ms is
 * exported in seconds), one sample per queue labelled queue="NAME" (queue
 * names need no escaping: proto.h allows letters, digits, '_', '-' and
 * '.'), and ipcq_queue_info with the queue's id, delivery mode and
 * dead-letter queue as labels; the daemon's own gauges are ipcq_daemon_*,
 * labelled with its namespace.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "daemon.h"
#include "log.h"
#include "metrics.h"
#include "peer.h"
#include "queue.h"
#include "stats_print.h"
#include "textbuf.h"
#include "util.h"

static void add_daemon_metric(struct textbuf *tb, const struct daemon *d, const char *name, const char *type,
                              const char *help, uint64_t v)
{
	textbuf_addf(tb, "# HELP ipcq_daemon_%s %s\n# TYPE ipcq_daemon_%s %s\n", name, help, name, type);
	textbuf_addf(tb, "ipcq_daemon_%s{namespace=", name);
	prom_add_label_value(tb, d->ns);
	textbuf_addf(tb, "} %" PRIu64 "\n", v);
}

/* The whole file: the daemon's gauges, then the queues' families, from
 * the table ipcq stat --prometheus prints (common/stats_print.c). */
static void metrics_format(struct daemon *d, struct textbuf *tb, const ipcq_stats *all, size_t n)
{
	textbuf_addf(tb, "# ipcbrokerd, namespace %s: %zu queues, rewritten every %u ms\n", d->ns, n,
	             d->cfg->metrics_interval_ms);
	add_daemon_metric(tb, d, "queues", "gauge", "Queues the daemon serves.", d->n_queues);
	add_daemon_metric(tb, d, "connections", "gauge", "Control connections open.", d->n_conns);
	add_daemon_metric(tb, d, "client_processes", "gauge", "Client processes the daemon watches.", peer_count(d));
	add_daemon_metric(tb, d, "quarantined_total", "counter", "Queues quarantined since the daemon started.",
	                  d->quarantined);
	stats_add_prometheus(tb, all, n);
}

/* text[0..len) to path, through path.tmp and a rename. */
static int write_atomically(const char *path, const char *text, size_t len)
{
	char tmp[PATH_MAX];
	_cleanup_close_ int fd = -1;
	int ret;

	if (snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int)sizeof(tmp))
		return -ENAMETOOLONG;
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
	if (fd < 0)
		return -errno;
	/* readable by the collector whatever the umask */
	ret = fchmod(fd, 0644) < 0 ? -errno : fd_write_all(fd, text, len);
	if (ret == 0 && rename(tmp, path) < 0)
		ret = -errno;
	if (ret < 0)
		unlink(tmp);
	return ret;
}

int metrics_write(struct daemon *d)
{
	static struct log_ratelimit failures;
	_cleanup_free_ ipcq_stats *all = NULL;
	struct textbuf tb = { 0 };
	size_t n = 0;
	int ret;

	if (!d->metrics_path)
		return 0;
	if (d->n_queues && !(all = calloc(d->n_queues, sizeof(*all))))
		return -ENOMEM;
	for (struct queue *q = d->queues; q && n < d->n_queues; q = q->next)
		queue_stats(d, q, &all[n++]);
	metrics_format(d, &tb, all, n);
	ret = tb.failed ? -ENOMEM : write_atomically(d->metrics_path, tb.data, tb.len);
	textbuf_deinit(&tb);
	if (ret < 0)
		log_limited(&failures, LOG_LEVEL_WARNING, "metrics_file %s: cannot write it: %s", d->metrics_path,
		            strerror(-ret));
	return ret;
}

static int on_metrics_timer(sd_event_source *s, uint64_t usec, void *userdata)
{
	struct daemon *d = userdata;

	metrics_write(d);
	sd_event_source_set_time(s, usec + (uint64_t)d->cfg->metrics_interval_ms * 1000u);
	return 0;
}

static void metrics_stop(struct daemon *d)
{
	d->metrics_src = sd_event_source_disable_unref(d->metrics_src);
	if (d->metrics_path)
		unlink(d->metrics_path);
	free(d->metrics_path);
	d->metrics_path = NULL;
}

int metrics_apply_config(struct daemon *d)
{
	uint64_t now;
	int ret;

	if (d->metrics_path && d->cfg->metrics_file && strcmp(d->metrics_path, d->cfg->metrics_file) == 0) {
		/* the same file: a new interval from the next write on */
		metrics_write(d);
		return 0;
	}
	metrics_stop(d);
	if (!d->cfg->metrics_file)
		return 0;
	d->metrics_path = strdup(d->cfg->metrics_file);
	if (!d->metrics_path)
		return -ENOMEM;
	ret = sd_event_now(d->event, CLOCK_MONOTONIC, &now);
	if (ret >= 0)
		ret = sd_event_add_time(d->event, &d->metrics_src, CLOCK_MONOTONIC,
		                        now + (uint64_t)d->cfg->metrics_interval_ms * 1000u, 0, on_metrics_timer, d);
	if (ret >= 0)
		ret = sd_event_source_set_enabled(d->metrics_src, SD_EVENT_ON);
	if (ret < 0) {
		log_error("metrics_file %s: cannot set up its timer: %s", d->metrics_path, strerror(-ret));
		metrics_stop(d);
		return ret;
	}
	log_info("writing metrics to %s every %u ms", d->metrics_path, d->cfg->metrics_interval_ms);
	metrics_write(d);
	return 0;
}

void metrics_deinit(struct daemon *d)
{
	metrics_stop(d);
}
