/* SPDX-License-Identifier: Apache-2.0 */
/*
 * stats_print.h - a queue's state (ipcq_stats) in the three forms ipcq
 * prints it: "key: value" lines, JSON, and Prometheus's text exposition
 * format (which the daemon's metrics file uses too), all from one table
 * of its fields (stats_print.c).
 */
#ifndef IPCQ_STATS_PRINT_H
#define IPCQ_STATS_PRINT_H

#include <stddef.h>

#include "textbuf.h"
#include "ipcq.h"

void stats_add_text(struct textbuf *tb, const ipcq_stats *st);
/* One JSON object, without a newline. */
void stats_add_json(struct textbuf *tb, const ipcq_stats *st);
/* The queues all[0..n) as metric families, each with its # HELP and
 * # TYPE and a sample per queue (label queue="NAME"). */
void stats_add_prometheus(struct textbuf *tb, const ipcq_stats *all, size_t n);

const char *stats_delivery_name(uint32_t delivery);
/* "isolated" or "shared" (ipcq_geometry.senders), and back: 0 or -EINVAL */
const char *stats_senders_name(uint32_t senders);
int stats_senders_value(const char *word, uint32_t *out);

#endif
