/* SPDX-License-Identifier: Apache-2.0 */
/*
 * privilege.h - giving up root: run_as (privilege.c's top comment says
 * what the daemon keeps and why).
 */
#ifndef IPCQ_PRIVILEGE_H
#define IPCQ_PRIVILEGE_H

struct daemon;

/* Become the run_as user (d->opt.run_as, else the config's), if one is
 * set: after the socket is listening, before any queue is adopted or
 * created.  Takes the runtime directory and the daemon's files in it for
 * that user, and keeps CAP_KILL and, until privilege_settle(), CAP_CHOWN
 * and CAP_DAC_OVERRIDE.
 * 0, or a negative errno (logged). */
int privilege_drop(struct daemon *d);
/* The queues are adopted: give up CAP_CHOWN and CAP_DAC_OVERRIDE, keep
 * CAP_KILL. */
void privilege_settle(struct daemon *d);

#endif
