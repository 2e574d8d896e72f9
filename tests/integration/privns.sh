# SPDX-License-Identifier: Apache-2.0
# privns.sh - sourced first (before lib.sh) by a test that must run in
# private namespaces: it runs the test again inside them, so that what the
# test mounts (tmpfs on /run, a small /dev/shm) never reaches the real
# system, and all of it vanishes with the namespaces.
#
#   PRIVNS_FLAGS="--mount --ipc" . "$(dirname "$0")/privns.sh"
#   ...
#   privns_mount_private /run /dev/shm   # before mounting over them
#
# Skips (exit 77) where namespaces cannot be made.
if [ -z "${IPCQ_PRIVNS_INSIDE:-}" ]; then
	[ "$(id -u)" -eq 0 ] || { echo "SKIP: needs root for private namespaces"; exit 77; }
	command -v unshare >/dev/null 2>&1 || { echo "SKIP: no unshare"; exit 77; }
	# In a chroot "/" is no mount point and cannot be made private as a
	# whole; then privns_mount_private makes the mounts beneath private.
	privns_prop=private
	# shellcheck disable=SC2086
	unshare $PRIVNS_FLAGS --propagation private true 2>/dev/null || privns_prop=unchanged
	# shellcheck disable=SC2086
	unshare $PRIVNS_FLAGS --propagation $privns_prop true 2>/dev/null ||
		{ echo "SKIP: cannot make private namespaces ($PRIVNS_FLAGS) here"; exit 77; }
	# shellcheck disable=SC2086
	IPCQ_PRIVNS_INSIDE=$privns_prop exec unshare $PRIVNS_FLAGS --propagation $privns_prop sh "$0" "$@"
fi

# privns_mount_private DIR...: mounts over DIR must not propagate back.
# With "/" private they cannot; otherwise DIR must be a mount point that
# can be made private.
privns_mount_private() {
	[ "$IPCQ_PRIVNS_INSIDE" = unchanged ] || return 0
	for m in "$@"; do
		if ! mountpoint -q "$m" || ! mount --make-private "$m"; then
			echo "SKIP: $m is no mount point that can be made private in this chroot"
			exit 77
		fi
	done
}
