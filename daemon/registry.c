/*
 * registry.c - the list of queues, kept in a state file beside the
 * control socket ("<dir>/<namespace>.queues") so that a restarted daemon
 * knows which kernel objects to adopt.  /dev/mqueue cannot be listed on
 * every machine (it need not be mounted), so the daemon keeps its own
 * list.  The file is replaced atomically (write, fsync, rename).
 *
 * One line per queue: NAME MAX_MSGS MSG_SIZE RING_SIZE MAX_PAYLOAD DELIVERY
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "queue.h"
#include "util.h"

int registry_save(struct daemon *d)
{
	char tmp[sizeof(d->state_path) + 8];
	FILE *f;
	int ret = 0;

	snprintf(tmp, sizeof(tmp), "%s.tmp", d->state_path);
	f = fopen(tmp, "we");
	if (!f) {
		ret = -errno;
		log_error("cannot write the queue registry %s: %s", tmp, strerror(errno));
		return ret;
	}
	fprintf(f, "# ipcbrokerd queue registry: name max_msgs msg_size ring_size max_payload delivery\n");
	for (struct queue *q = d->queues; q; q = q->next)
		fprintf(f, "%s %u %u %" PRIu64 " %" PRIu64 " %d\n", q->name, q->geo.max_msgs, q->geo.msg_size,
		        q->geo.ring_size, q->geo.max_payload, (int)q->delivery);
	if (fflush(f) != 0 || fsync(fileno(f)) < 0)
		ret = -errno;
	if (fclose(f) != 0 && ret == 0)
		ret = -errno;
	if (ret == 0 && rename(tmp, d->state_path) < 0)
		ret = -errno;
	if (ret < 0) {
		log_error("cannot write the queue registry %s: %s", d->state_path, strerror(-ret));
		unlink(tmp);
	}
	return ret;
}

int registry_adopt(struct daemon *d)
{
	FILE *f = fopen(d->state_path, "re");
	char line[512];
	unsigned lineno = 0;

	if (!f)
		return errno == ENOENT ? 0 : -errno;
	while (fgets(line, sizeof(line), f)) {
		char name[IPCQ_NAME_MAX + 2], err[PROTO_ERRMSG_MAX];
		ipcq_geometry geo = { 0 };
		int delivery = 0, ret;

		lineno++;
		if (line[0] == '#' || line[0] == '\n')
			continue;
		if (sscanf(line, "%65s %" SCNu32 " %" SCNu32 " %" SCNu64 " %" SCNu64 " %d", name, &geo.max_msgs,
		           &geo.msg_size, &geo.ring_size, &geo.max_payload, &delivery) != 6 ||
		    !proto_queue_name_valid(name) || (delivery != 0 && delivery != 1)) {
			log_warning("%s:%u: malformed registry line ignored", d->state_path, lineno);
			continue;
		}
		if (queue_find(d, name))
			continue;
		ret = queue_create(d, name, &geo, (enum delivery_mode)delivery, true, err, sizeof(err), NULL);
		if (ret < 0)
			log_warning("queue %s: not adopted: %s", name, err);
	}
	fclose(f);
	return 0;
}
