/* SPDX-License-Identifier: Apache-2.0 */
/*
 * registry.c - the list of queues, kept in a state file beside the
 * control socket ("<dir>/<namespace>.queues") so that a restarted daemon
 * knows which kernel objects to adopt.  /dev/mqueue cannot be listed on
 * every machine (it need not be mounted), and a listing would show other
 * users' objects too, so the daemon keeps its own list.  The file is the
 * daemon's alone (mode 0600: it holds the random tokens that keep object
 * names unguessable) and replaced atomically (write, fsync, rename).
 *
 * One line per queue:
 *   NAME TOKEN MAX_MSGS MSG_SIZE RING_SIZE MAX_PAYLOAD DELIVERY CREATOR_UID
 *   MAX_DEPTH PREFETCH TTL_MS MAX_DELIVERIES DEAD_LETTER ("-": none) SENDERS
 * (SENDERS: IPCQ_SENDERS_*; lines without it are of queues made before
 * lanes, whose senders share the ring.)  Lines of six fields, without
 * token and creator, come from a daemon before tokens; their queues are
 * adopted under the old names.
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "queue.h"
#include "statefile.h"
#include "util.h"

static int write_records(FILE *f, void *ctx)
{
	const struct daemon *d = ctx;

	fprintf(f, "# ipcbrokerd queue registry: name token max_msgs msg_size ring_size max_payload delivery "
	           "creator_uid max_depth prefetch ttl_ms max_deliveries dead_letter senders\n");
	for (const struct queue *q = d->queues; q; q = q->next) {
		const struct queue_record *r = &q->rec;

		fprintf(f, "%s %s %u %u %" PRIu64 " %" PRIu64 " %d %u %" PRIu64 " %u %" PRIu64 " %u %s %u\n", r->name,
		        *r->token ? r->token : "-", r->geo.max_msgs, r->geo.msg_size, r->geo.ring_size,
		        r->geo.max_payload, (int)r->delivery, (unsigned)r->creator, r->geo.max_depth, r->geo.prefetch,
		        r->opts.ttl_ms, r->opts.max_deliveries, *r->opts.dead_letter ? r->opts.dead_letter : "-",
		        r->geo.senders);
	}
	return ferror(f) ? -EIO : 0;
}

int registry_save(struct daemon *d)
{
	return statefile_save(d->state_path, write_records, d, 1);
}

/* One line into rec; false if it is malformed. */
static bool parse_record(struct daemon *d, const char *line, struct queue_record *rec)
{
	char name[IPCQ_NAME_MAX + 2], token[PROTO_TOKEN_LEN + 2], dl[IPCQ_NAME_MAX + 2] = "-";
	unsigned creator;
	int delivery = 0, n;

	memset(rec, 0, sizeof(*rec));
	/* lines written before max_depth and prefetch have 8 fields */
	rec->geo.prefetch = PROTO_PREFETCH_DEFAULT;
	rec->geo.senders = IPCQ_SENDERS_SHARED;
	n = sscanf(line,
	           "%65s %17s %" SCNu32 " %" SCNu32 " %" SCNu64 " %" SCNu64 " %d %u %" SCNu64 " %" SCNu32 " %" SCNu64
	           " %" SCNu32 " %65s %" SCNu32,
	           name, token, &rec->geo.max_msgs, &rec->geo.msg_size, &rec->geo.ring_size, &rec->geo.max_payload,
	           &delivery, &creator, &rec->geo.max_depth, &rec->geo.prefetch, &rec->opts.ttl_ms,
	           &rec->opts.max_deliveries, dl, &rec->geo.senders);
	if (n == 8 || n == 10 || n == 13 || n == 14) {
		if (strcmp(token, "-") == 0)
			token[0] = '\0';
	} else {
		/* before tokens: NAME MAX_MSGS MSG_SIZE RING_SIZE MAX_PAYLOAD DELIVERY */
		token[0] = '\0';
		creator = (unsigned)d->uid;
		if (sscanf(line, "%65s %" SCNu32 " %" SCNu32 " %" SCNu64 " %" SCNu64 " %d", name, &rec->geo.max_msgs,
		           &rec->geo.msg_size, &rec->geo.ring_size, &rec->geo.max_payload, &delivery) != 6)
			return false;
	}
	if (!proto_queue_name_valid(name) || !proto_token_valid(token) || (delivery != 0 && delivery != 1) ||
	    (strcmp(dl, "-") != 0 && !proto_queue_name_valid(dl)) || rec->opts.ttl_ms > CONFIG_TTL_MAX_MS ||
	    rec->opts.max_deliveries > CONFIG_MAX_DELIVERIES_MAX ||
	    (rec->geo.senders != IPCQ_SENDERS_SHARED && rec->geo.senders != IPCQ_SENDERS_ISOLATED))
		return false;
	if (strcmp(dl, "-") != 0)
		memcpy(rec->opts.dead_letter, dl, strlen(dl) + 1); /* valid: at most IPCQ_NAME_MAX */
	memcpy(rec->name, name, strlen(name) + 1);   /* valid: at most IPCQ_NAME_MAX */
	memcpy(rec->token, token, strlen(token) + 1); /* valid: at most PROTO_TOKEN_LEN */
	rec->delivery = (enum delivery_mode)delivery;
	rec->creator = (uid_t)creator;
	return true;
}

int registry_adopt(struct daemon *d)
{
	FILE *f = fopen(d->state_path, "re");
	char line[512];
	unsigned lineno = 0;

	if (!f)
		return errno == ENOENT ? 0 : -errno;
	while (fgets(line, sizeof(line), f)) {
		char err[PROTO_ERRMSG_MAX];
		struct queue_record rec;
		struct queue *q;
		int ret;

		lineno++;
		if (line[0] == '#' || line[0] == '\n')
			continue;
		if (!parse_record(d, line, &rec)) {
			log_warning("%s:%u: malformed registry line ignored", d->state_path, lineno);
			continue;
		}
		if (queue_find(d, rec.name))
			continue;
		ret = queue_adopt(d, &rec, err, sizeof(err), &q);
		if (ret == -EPERM)
			log_error("queue %s: not adopted: %s", rec.name, err);
		else if (ret < 0)
			log_warning("queue %s: not adopted: %s", rec.name, err);
	}
	fclose(f);
	return 0;
}
