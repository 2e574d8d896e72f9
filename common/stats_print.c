/* SPDX-License-Identifier: Apache-2.0 */
/*
 * stats_print.c - one table of a queue's numeric fields, read by the
 * three printers, so that a key added to ipcq_stats shows up in the text,
 * the JSON and the Prometheus output at once, under names that cannot
 * drift apart.
 *
 * The text and JSON keys are the fields' names in ipcq_stats.  Prometheus
 * names follow its conventions: ipcq_queue_ and the key, "_total" on
 * counters (which only grow, until the queue is made anew), base units
 * in the name ("_bytes", "_seconds": ttl_ms is exported in seconds).  The
 * queue's id, delivery mode and dead-letter queue are not quantities:
 * Prometheus gets them as labels of one ipcq_queue_info sample of value 1.
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <stddef.h>
#include <string.h>

#include "stats_print.h"
#include "util.h"

#define PROM_PREFIX "ipcq_queue_"

enum field_kind {
	FIELD_GAUGE,   /* a level, or a setting of the queue */
	FIELD_COUNTER, /* only grows */
	FIELD_MS,      /* milliseconds, a gauge in seconds for Prometheus */
};

struct stats_field {
	const char *key;  /* text and JSON */
	const char *prom; /* Prometheus name after PROM_PREFIX; NULL: a label instead */
	enum field_kind kind;
	size_t offset, size;
	const char *help;
};

#define FIELD(member, prom, kind, help) \
	{ #member, prom, kind, offsetof(ipcq_stats, member), sizeof(((ipcq_stats *)0)->member), help }
#define GEO(member, prom, help)                                                                    \
	{ #member, prom, FIELD_GAUGE, offsetof(ipcq_stats, geo) + offsetof(ipcq_geometry, member), \
	  sizeof(((ipcq_geometry *)0)->member), help }

/* In the order "ipcq stat" has always printed them. */
static const struct stats_field fields[] = {
	FIELD(id, NULL, FIELD_GAUGE, "the queue's id"),
	GEO(max_msgs, "max_msgs", "Window size: messages the queue's kernel message queue holds."),
	GEO(msg_size, "msg_size_bytes", "Bytes per kernel message (the inline limit and its header)."),
	GEO(ring_size, "ring_size_bytes", "Bytes of the queue's shared-memory ring."),
	GEO(max_payload, "max_payload_bytes", "Largest message the queue accepts."),
	GEO(max_depth, "max_depth", "Most messages waiting (0: only the ring bounds it)."),
	GEO(prefetch, "prefetch", "Most messages one receiver takes ahead."),
	FIELD(depth, "depth", FIELD_GAUGE, "Messages waiting, in the window and in the backlog."),
	FIELD(backlog, "backlog", FIELD_GAUGE, "Messages waiting in the ring beyond the window."),
	FIELD(window, "window", FIELD_GAUGE, "Kernel messages in the window (one may carry a batch)."),
	FIELD(ring_used, "ring_used_bytes", FIELD_GAUGE, "Ring bytes in use, headers and padding included."),
	FIELD(ring_hwm, "ring_hwm_bytes", FIELD_GAUGE, "High-water mark of ring bytes in use."),
	FIELD(ring_chunks, "ring_chunks", FIELD_GAUGE, "Ring chunks not yet reclaimed."),
	FIELD(memory, "memory_bytes", FIELD_GAUGE,
	      "Bytes of shared memory the queue holds now (a drained, idle queue gives its ring's pages back)."),
	FIELD(sent, "sent_total", FIELD_COUNTER, "Messages sent."),
	FIELD(received, "received_total", FIELD_COUNTER, "Messages received."),
	FIELD(sent_ring, "sent_ring_total", FIELD_COUNTER, "Messages sent through the ring."),
	FIELD(redelivered, "redelivered_total", FIELD_COUNTER,
	      "Deliveries again of messages a consumer had and did not acknowledge."),
	FIELD(dropped, "dropped_total", FIELD_COUNTER, "Messages dropped (a dead consumer's in at-most-once mode, "
	      "or undeliverable without a dead-letter queue)."),
	FIELD(reclaimed, "reclaimed_total", FIELD_COUNTER, "Ring chunks taken back from dead clients."),
	FIELD(rejected, "rejected_total", FIELD_COUNTER, "Forged or stale descriptors rejected."),
	FIELD(acked, "acked_total", FIELD_COUNTER, "Messages receivers released or acknowledged."),
	FIELD(nacked, "nacked_total", FIELD_COUNTER, "Messages receivers gave back or rejected."),
	FIELD(moved, "moved_total", FIELD_COUNTER, "Messages held long that the daemon copied out of the ring."),
	FIELD(expired, "expired_total", FIELD_COUNTER, "Messages whose ttl ran out before a receiver had them."),
	FIELD(dead_lettered, "dead_lettered_total", FIELD_COUNTER, "Messages moved to the dead-letter queue."),
	FIELD(ttl_ms, "ttl_seconds", FIELD_MS, "The queue's ttl (0: none)."),
	FIELD(max_deliveries, "max_deliveries", FIELD_GAUGE, "Deliveries after which a message is given up (0: no bound)."),
	FIELD(receivers, "receivers", FIELD_GAUGE, "Receiving handles open on the queue."),
	FIELD(listeners, "listeners", FIELD_GAUGE, "Processes registered for the queue's notification signal."),
	FIELD(quarantined, "quarantined", FIELD_GAUGE, "1 when the queue's shared memory failed a check."),
};

static uint64_t field_value(const struct stats_field *f, const ipcq_stats *st)
{
	const char *p = (const char *)st + f->offset;
	uint32_t v32;
	uint64_t v64;

	if (f->size == sizeof(v32)) {
		memcpy(&v32, p, sizeof(v32));
		return v32;
	}
	memcpy(&v64, p, sizeof(v64));
	return v64;
}

const char *stats_delivery_name(uint32_t delivery)
{
	return delivery == 1 ? "at-least-once" : delivery == 0 ? "at-most-once" : "unknown";
}

const char *stats_senders_name(uint32_t senders)
{
	return senders == IPCQ_SENDERS_ISOLATED ? "isolated" : senders == IPCQ_SENDERS_SHARED ? "shared" : "unknown";
}

int stats_senders_value(const char *word, uint32_t *out)
{
	for (uint32_t v = IPCQ_SENDERS_SHARED; v <= IPCQ_SENDERS_ISOLATED; v++) {
		if (strcmp(word, stats_senders_name(v)) == 0) {
			*out = v;
			return 0;
		}
	}
	return -EINVAL;
}

void stats_add_text(struct textbuf *tb, const ipcq_stats *st)
{
	textbuf_addf(tb, "name: %s\n", st->name);
	for (size_t i = 0; i < ARRAY_SIZE(fields); i++)
		textbuf_addf(tb, "%s: %" PRIu64 "\n", fields[i].key, field_value(&fields[i], st));
	textbuf_addf(tb, "delivery: %s\n", stats_delivery_name(st->delivery));
	textbuf_addf(tb, "senders: %s\n", stats_senders_name(st->geo.senders));
	textbuf_addf(tb, "dead_letter: %s\n", st->dead_letter);
}

void stats_add_json(struct textbuf *tb, const ipcq_stats *st)
{
	textbuf_adds(tb, "{\"name\": ");
	json_add_string(tb, st->name, strlen(st->name));
	for (size_t i = 0; i < ARRAY_SIZE(fields); i++)
		textbuf_addf(tb, ", \"%s\": %" PRIu64, fields[i].key, field_value(&fields[i], st));
	textbuf_addf(tb, ", \"delivery\": \"%s\", \"senders\": \"%s\", \"dead_letter\": ",
	             stats_delivery_name(st->delivery), stats_senders_name(st->geo.senders));
	json_add_string(tb, st->dead_letter, strlen(st->dead_letter));
	textbuf_addc(tb, '}');
}

static void add_family(struct textbuf *tb, const char *name, const char *type, const char *help)
{
	textbuf_addf(tb, "# HELP " PROM_PREFIX "%s %s\n# TYPE " PROM_PREFIX "%s %s\n", name, help, name, type);
}

void stats_add_prometheus(struct textbuf *tb, const ipcq_stats *all, size_t n)
{
	add_family(tb, "info", "gauge",
	           "A queue's id, delivery mode, senders and dead-letter queue, as labels (value 1).");
	for (size_t q = 0; q < n; q++) {
		textbuf_adds(tb, PROM_PREFIX "info{queue=");
		prom_add_label_value(tb, all[q].name);
		textbuf_addf(tb, ",id=\"%" PRIu32 "\",delivery=", all[q].id);
		prom_add_label_value(tb, stats_delivery_name(all[q].delivery));
		textbuf_adds(tb, ",senders=");
		prom_add_label_value(tb, stats_senders_name(all[q].geo.senders));
		textbuf_adds(tb, ",dead_letter=");
		prom_add_label_value(tb, all[q].dead_letter);
		textbuf_adds(tb, "} 1\n");
	}
	for (size_t i = 0; i < ARRAY_SIZE(fields); i++) {
		const struct stats_field *f = &fields[i];

		if (!f->prom)
			continue;
		add_family(tb, f->prom, f->kind == FIELD_COUNTER ? "counter" : "gauge", f->help);
		for (size_t q = 0; q < n; q++) {
			uint64_t v = field_value(f, &all[q]);

			textbuf_addf(tb, PROM_PREFIX "%s{queue=", f->prom);
			prom_add_label_value(tb, all[q].name);
			if (f->kind == FIELD_MS)
				textbuf_addf(tb, "} %" PRIu64 ".%03" PRIu64 "\n", v / 1000, v % 1000);
			else
				textbuf_addf(tb, "} %" PRIu64 "\n", v);
		}
	}
}
