/* SPDX-License-Identifier: Apache-2.0 */
/*
 * privilege.c - giving up root: run_as.
 *
 * Started as root with run_as = "USER" (or --run-as USER), the daemon
 * does as root only what needs root and then becomes USER for good:
 *  1. as root: the rlimits are raised (RLIMIT_MSGQUEUE past its hard
 *     limit needs CAP_SYS_RESOURCE), the runtime directory is made, the
 *     instance lock taken and the socket bound;
 *  2. still root: the runtime directory (when the daemon made it, or it
 *     is the system one) and the daemon's files in it (lock, registry,
 *     holders) are given to USER, so that it can keep writing them;
 *  3. setgroups to USER's group alone, setresgid, setresuid, keeping two
 *     capabilities (PR_SET_KEEPCAPS, then capset) and nothing else in
 *     the bounding set;
 *  4. as USER: every queue is adopted or created, owned by USER.  Queue
 *     objects the daemon left when it still ran as root (mode 0600, owned
 *     by root) are opened and taken over with fchown, which is what
 *     CAP_DAC_OVERRIDE and CAP_CHOWN are kept for;
 *  5. privilege_settle(): those two go.  What remains is CAP_KILL: the
 *     daemon signals listeners of other users (ipcq_notify, through their
 *     pidfds), which the kernel allows a process of another uid only with
 *     it.
 * What the daemon needs from then on needs no privilege: its own objects
 * in /dev/shm and the mqueue fs (0600, USER's), SO_PEERCRED, pidfd_open
 * and /proc/PID/stat of any process (world-readable, unless /proc is
 * mounted hidepid=), the runtime directory (USER's).  Not kept:
 * CAP_SYS_RESOURCE, so a queue deeper than fs.mqueue.msg_max needs the
 * sysctl raised (etc/sysctl.d does), and RLIMIT_MSGQUEUE is what the
 * daemon set in step 1, counted against USER.
 *
 * Run by systemd, the unit's User= and AmbientCapabilities=CAP_KILL do
 * the same without any of this; run_as is for starting it as root.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/capability.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "daemon.h"
#include "log.h"
#include "privilege.h"
#include "util.h"

/* getpwnam_r() wants a buffer of a size the system only hints at */
#define PASSWD_BUF_MAX (1u << 20)

static int lookup_user(const char *name, uid_t *uid, gid_t *gid)
{
	_cleanup_free_ char *buf = NULL;
	size_t size = 1024;

	for (;;) {
		struct passwd pw, *pwp = NULL;
		char *p = realloc(buf, size);
		int r;

		if (!p)
			return -ENOMEM;
		buf = p;
		r = getpwnam_r(name, &pw, buf, size, &pwp);
		if (r == ERANGE && size < PASSWD_BUF_MAX) {
			size *= 2;
			continue;
		}
		if (r)
			return -r;
		if (!pwp)
			return -ENOENT;
		*uid = pw.pw_uid;
		*gid = pw.pw_gid;
		return 0;
	}
}

/* Permitted and effective: exactly caps (a mask of CAP_* bits, all below
 * 32); inheritable: none. */
static int caps_set(uint32_t caps)
{
	struct __user_cap_header_struct hdr = { .version = _LINUX_CAPABILITY_VERSION_3 };
	struct __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3] = { { 0 } };

	data[0].permitted = data[0].effective = caps;
	return syscall(SYS_capset, &hdr, data) < 0 ? -errno : 0;
}

/* Nothing past caps can be gained again (by an exec the daemon never
 * does, but a bug might): needs CAP_SETPCAP, which root has. */
static void bounding_set_limit(uint32_t caps)
{
	for (int cap = 0; cap <= 63; cap++) {
		if (cap < 32 && (caps & (1u << cap)))
			continue;
		if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0 && errno == EINVAL)
			break; /* past the last capability this kernel knows */
	}
}

/* Give path (one of the daemon's own files, if it exists and is still
 * root's) to uid:gid. */
static int chown_own_file(const char *path, uid_t uid, gid_t gid)
{
	_cleanup_close_ int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	struct stat st;

	if (fd < 0)
		return errno == ENOENT ? 0 : -errno;
	if (fstat(fd, &st) < 0)
		return -errno;
	if (st.st_uid != geteuid() || !S_ISREG(st.st_mode))
		return 0;
	return fchown(fd, uid, gid) < 0 ? -errno : 0;
}

/* The directory of the socket and what the daemon keeps there. */
static int take_runtime_dir(struct daemon *d, uid_t uid, gid_t gid)
{
	char dir[sizeof(d->socket_path)];
	char *slash;
	struct stat st;
	int ret = 0;

	snprintf(dir, sizeof(dir), "%s", d->socket_path);
	slash = strrchr(dir, '/');
	if (slash)
		*(slash == dir ? slash + 1 : slash) = '\0';
	/* a directory the daemon did not make is only taken when it is the
	 * system one: elsewhere its owner says who may write there */
	if ((d->dir_created || strcmp(dir, PROTO_SYSTEM_RUNDIR) == 0) && stat(dir, &st) == 0 &&
	    st.st_uid == geteuid() && chown(dir, uid, gid) < 0)
		ret = -errno;
	if (ret == 0 && d->lock_fd >= 0 && fchown(d->lock_fd, uid, gid) < 0)
		ret = -errno;
	if (ret == 0)
		ret = chown_own_file(d->state_path, uid, gid);
	if (ret == 0)
		ret = chown_own_file(d->holders_path, uid, gid);
	if (ret < 0)
		log_error("run_as: cannot give %s and the files in it to uid %u: %s", dir, (unsigned)uid,
		          strerror(-ret));
	return ret;
}

static const char *run_as_of(const struct daemon *d)
{
	return d->opt.run_as ? d->opt.run_as : d->cfg->run_as;
}

int privilege_drop(struct daemon *d)
{
	const uint32_t keep = 1u << CAP_KILL | 1u << CAP_CHOWN | 1u << CAP_DAC_OVERRIDE;
	const char *name = run_as_of(d);
	char dir[sizeof(d->socket_path)];
	uid_t uid = (uid_t)-1;
	gid_t gid = (gid_t)-1;
	int ret;

	if (!name)
		return 0;
	ret = lookup_user(name, &uid, &gid);
	if (ret < 0) {
		log_error("run_as: user '%s': %s", name, ret == -ENOENT ? "no such user" : strerror(-ret));
		return ret;
	}
	if (geteuid() == uid)
		return 0; /* already that user (systemd's User=, say) */
	if (geteuid() != 0) {
		log_error("run_as: becoming user '%s' needs the daemon to be started as root (it runs as uid %u)", name,
		          (unsigned)geteuid());
		return -EPERM;
	}
	ret = take_runtime_dir(d, uid, gid);
	if (ret < 0)
		return ret;
	bounding_set_limit(keep);
	if (prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) < 0 || setgroups(1, &gid) < 0 || setresgid(gid, gid, gid) < 0 ||
	    setresuid(uid, uid, uid) < 0 || (ret = caps_set(keep)) < 0 || prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0) < 0) {
		ret = ret < 0 ? ret : -errno;
		log_error("run_as: cannot become user '%s' (uid %u, gid %u): %s", name, (unsigned)uid, (unsigned)gid,
		          strerror(-ret));
		return ret;
	}
	d->migrate_uid = d->uid;
	d->migrating = true;
	d->uid = uid;
	snprintf(dir, sizeof(dir), "%s", d->socket_path);
	*strrchr(dir, '/') = '\0';
	if (access(*dir ? dir : "/", W_OK) < 0) {
		ret = -errno;
		log_error("run_as: user '%s' cannot write to %s, where the daemon keeps its queue registry: %s (give "
		          "it the directory, or use a socket in a directory of its own)",
		          name, *dir ? dir : "/", strerror(-ret));
		return ret;
	}
	log_info("running as user %s (uid %u, gid %u), keeping CAP_KILL", name, (unsigned)uid, (unsigned)gid);
	return 0;
}

void privilege_settle(struct daemon *d)
{
	int ret;

	if (!d->migrating)
		return;
	d->migrating = false;
	ret = caps_set(1u << CAP_KILL);
	if (ret < 0)
		log_warning("run_as: cannot give up CAP_CHOWN and CAP_DAC_OVERRIDE: %s", strerror(-ret));
}
