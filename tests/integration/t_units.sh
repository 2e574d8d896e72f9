#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# t_units.sh - the built systemd units (etc/ipcbrokerd.service and
# etc/ipcbrokerd.socket for the system daemon, etc/user/ for the per-user
# one, etc/ipcq-bridge@.service when the bridge is built) pass
# systemd-analyze verify.  The copies point
# ExecStart= at the built daemon, and MANPATH at the man pages of the
# source tree, so that Documentation= is checked too.
. "$(dirname "$0")/lib.sh"

U="$T/units"
mkdir -p "$U" "$T/man/man1" "$T/man/man5" "$T/man/man8"

command -v systemd-analyze >/dev/null 2>&1 || { echo "SKIP: no systemd-analyze"; exit 77; }
printf '[Unit]\nDescription=trivial\n[Service]\nExecStart=/bin/true\n' >"$U/ipcq-trivial.service"
if ! (cd "$U" && systemd-analyze verify ipcq-trivial.service) >"$T/out" 2>&1 || [ -s "$T/out" ]; then
	echo "SKIP: systemd-analyze verify does not work here: $(cat "$T/out")"
	exit 77
fi
rm "$U/ipcq-trivial.service"

command -v man >/dev/null 2>&1 || fail "no man command: systemd-analyze verify needs it for Documentation= (scripts/deps.sh installs man-db)"
cp "$S/man/ipcq.1" "$T/man/man1/"
cp "$S/man/ipcbrokerd.conf.5" "$T/man/man5/"
cp "$S/man/ipcbrokerd.8" "$T/man/man8/"

for unit in ipcbrokerd.service ipcbrokerd.socket user/ipcbrokerd.service user/ipcbrokerd.socket; do
	[ -f "$B/etc/$unit" ] || fail "$B/etc/$unit is not built"
done

test_units_have_no_placeholders() {
	for unit in ipcbrokerd.service ipcbrokerd.socket user/ipcbrokerd.service user/ipcbrokerd.socket; do
		if grep -n '@[a-z_]*@' "$B/etc/$unit" >"$T/out"; then
			fail "$unit keeps unsubstituted placeholders: $(cat "$T/out")"
		fi
	done
	grep -q '^ExecStart=/.*/ipcbrokerd$' "$B/etc/ipcbrokerd.service" ||
		fail "ExecStart= of ipcbrokerd.service is not an absolute path to ipcbrokerd"
	grep -q '^ExecStart=/.*/ipcbrokerd --user$' "$B/etc/user/ipcbrokerd.service" ||
		fail "ExecStart= of the user unit is not an absolute path to ipcbrokerd --user"
	pass "the built units have every @dir@ placeholder substituted"
}

# verify_units DIR [--user]: systemd-analyze verify of the two units in DIR
verify_units() {
	dir=$1
	shift
	st=0
	(cd "$dir" && MANPATH="$T/man" systemd-analyze "$@" verify ipcbrokerd.service ipcbrokerd.socket) \
		>"$T/verify.out" 2>"$T/verify.err" || st=$?
	if grep -q ipcbrokerd "$T/verify.err"; then
		fail "systemd-analyze $* verify complains about the units: $(cat "$T/verify.err")"
	fi
	assert_eq 0 "$st" "exit status of systemd-analyze $* verify ($(cat "$T/verify.err"))"
}

test_units_pass_systemd_analyze_verify() {
	sed "s|^ExecStart=[^ ]*|ExecStart=$IPCBROKERD|" "$B/etc/ipcbrokerd.service" >"$U/ipcbrokerd.service"
	cp "$B/etc/ipcbrokerd.socket" "$U/ipcbrokerd.socket"
	verify_units "$U"
	pass "systemd-analyze verify passes ipcbrokerd.service and ipcbrokerd.socket, man pages included"
}

test_user_units_pass_systemd_analyze_verify() {
	mkdir -p "$T/user" "$T/xdg"
	chmod 700 "$T/xdg"
	sed "s|^ExecStart=[^ ]*|ExecStart=$IPCBROKERD|" "$B/etc/user/ipcbrokerd.service" >"$T/user/ipcbrokerd.service"
	cp "$B/etc/user/ipcbrokerd.socket" "$T/user/ipcbrokerd.socket"
	XDG_RUNTIME_DIR="$T/xdg" verify_units "$T/user" --user
	grep -q '^ListenSequentialPacket=%t/ipcbroker/default.sock$' "$T/user/ipcbrokerd.socket" ||
		fail "the user socket unit does not listen where 'ipcq --user' looks"
	pass "systemd-analyze --user verify passes the per-user units, which listen where ipcq --user looks"
}

# The system daemon runs as the user sysusers.d/ipcbroker.conf makes, with
# CAP_KILL alone, and systemd-analyze security rates the unit's exposure
# 1.0 or lower (it was 1.8 as root with a bounding set).
test_service_runs_as_its_own_user_hardened() {
	grep -qx 'User=ipcbroker' "$B/etc/ipcbrokerd.service" || fail "ipcbrokerd.service sets no User=ipcbroker"
	grep -qx 'CapabilityBoundingSet=CAP_KILL' "$B/etc/ipcbrokerd.service" ||
		fail "ipcbrokerd.service keeps more than CAP_KILL"
	! grep -q '^DynamicUser=\|^PrivateIPC=yes\|^RemoveIPC=yes' "$B/etc/ipcbrokerd.service" ||
		fail "ipcbrokerd.service would lose or hide the queues: $(grep '^DynamicUser=\|^PrivateIPC=\|^RemoveIPC=' \
			"$B/etc/ipcbrokerd.service")"
	if command -v systemd-sysusers >/dev/null 2>&1; then
		mkdir -p "$T/sysroot/etc"
		systemd-sysusers --root="$T/sysroot" "$S/etc/sysusers.d/ipcbroker.conf" >"$T/out" 2>&1 ||
			fail "systemd-sysusers refuses sysusers.d/ipcbroker.conf: $(cat "$T/out")"
		grep -q '^ipcbroker:' "$T/sysroot/etc/passwd" || fail "sysusers.d/ipcbroker.conf makes no user ipcbroker"
	fi
	if systemd-analyze security --offline=yes "$U/ipcbrokerd.service" >"$T/security" 2>&1; then
		level=$(sed -n 's/.*Overall exposure level for ipcbrokerd.service: \([0-9.]*\).*/\1/p' "$T/security")
		[ -n "$level" ] || fail "no exposure level in: $(tail -n 3 "$T/security")"
		awk -v l="$level" 'BEGIN { exit !(l <= 1.0) }' || fail "exposure $level is above 1.0: $(cat "$T/security")"
		pass "ipcbrokerd.service runs as ipcbroker (sysusers.d) with CAP_KILL alone; exposure $level"
	else
		pass "ipcbrokerd.service runs as ipcbroker (sysusers.d) with CAP_KILL alone (no offline security rating here)"
	fi
}

# ipcq-bridge@.service, when the bridge is built: verified as an instance,
# which runs the bridge on the instance's config file
test_bridge_unit_passes_systemd_analyze_verify() {
	[ -x "$B/bridge/ipcq-bridge" ] || { echo "skip: ipcq-bridge not built, nor its unit"; return 0; }
	unit="$B/etc/ipcq-bridge@.service"
	[ -f "$unit" ] || fail "$unit is not built"
	if grep -n '@[a-z_]*@' "$unit" >"$T/out"; then
		fail "ipcq-bridge@.service keeps unsubstituted placeholders: $(cat "$T/out")"
	fi
	grep -q '^ExecStart=/.*/ipcq-bridge --config /.*/ipcbroker/bridge/%i\.conf$' "$unit" ||
		fail "ExecStart= of ipcq-bridge@.service does not run --config on the instance's file: $(grep ExecStart= "$unit")"
	cp "$S/man/ipcq-bridge.1" "$T/man/man1/"
	sed "s|^ExecStart=[^ ]*|ExecStart=$B/bridge/ipcq-bridge|" "$unit" >"$U/ipcq-bridge@.service"
	st=0
	(cd "$U" && MANPATH="$T/man" systemd-analyze verify ipcq-bridge@hub.service) >"$T/verify.out" \
		2>"$T/verify.err" || st=$?
	if grep -q ipcq-bridge "$T/verify.err"; then
		fail "systemd-analyze verify complains about ipcq-bridge@hub.service: $(cat "$T/verify.err")"
	fi
	assert_eq 0 "$st" "exit status of systemd-analyze verify ipcq-bridge@hub.service ($(cat "$T/verify.err"))"
	pass "systemd-analyze verify passes ipcq-bridge@hub.service, which runs ipcq-bridge --config .../hub.conf"
}

test_units_have_no_placeholders
test_units_pass_systemd_analyze_verify
test_bridge_unit_passes_systemd_analyze_verify
test_service_runs_as_its_own_user_hardened
test_user_units_pass_systemd_analyze_verify
