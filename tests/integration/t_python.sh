#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# t_python.sh - the Python binding's pytest suite (python/tests) against a
# private daemon: round trips, batches, views, acks, timeouts, threads,
# asyncio, stat/list, the ipcq CLI at the other end, and permissions as the
# user nobody (when run as root).  Skips when no python3 with pytest is
# found.
MQ_BUDGET_NEEDED=65536
. "$(dirname "$0")/lib.sh"

PY=
for p in python3 /usr/bin/python3; do
	if command -v "$p" >/dev/null 2>&1 && "$p" -c 'import pytest' >/dev/null 2>&1; then
		PY=$(command -v "$p")
		break
	fi
done
[ -n "$PY" ] || { echo "SKIP: no python3 with pytest (Debian: python3-pytest)"; exit 77; }
# a library of another word size (the -m32 build of scripts/build-32.sh)
# is not one this python can load: its ELF class (1: 32-bit, 2: 64-bit)
lib_class=$(od -An -tu1 -j4 -N1 "$B/libclient/.libs/libipcq.so" | tr -d ' ')
py_class=$("$PY" -c 'import struct; print(struct.calcsize("P") // 4)')
[ "$lib_class" = "$py_class" ] ||
	{ echo "SKIP: libipcq is ELF class $lib_class, $PY is $py_class: it cannot load it"; exit 77; }

cat >"$T/ipcbrokerd.conf" <<CONF
queue "py_alo" {
	delivery = "at-least-once"
}
queue "py_secret" {
	allow_send = { "uid:0" }
	allow_recv = { "uid:0" }
}
CONF

# nobody runs a copy of the package and the library, where it may read them
if (need_nobody) >/dev/null 2>&1; then
	need_nobody
	if command -v setpriv >/dev/null 2>&1 &&
		setpriv --reuid=nobody --regid="$NOBODY_GROUP" --clear-groups true 2>/dev/null; then
		run_as="setpriv --reuid=nobody --regid=$NOBODY_GROUP --clear-groups"
	else
		run_as="runuser -u nobody -g $NOBODY_GROUP --"
	fi
	printf '#!/bin/sh\nexec %s "$@"\n' "$run_as" >"$T/as-nobody"
	mkdir -p "$T/py/lib"
	cp -R "$S/python/ipcq" "$T/py/"
	cp -P "$B"/libclient/.libs/libipcq.so* "$T/py/lib/"
	chmod 755 "$T/as-nobody"
	chmod -R a+rX "$T/py"
	if "$T/as-nobody" "$PY" -c 'import ctypes' 2>/dev/null; then
		IPCQ_TEST_AS_NOBODY=$T/as-nobody
		IPCQ_TEST_NOBODY_PYTHONPATH=$T/py
		IPCQ_TEST_NOBODY_LIBRARY=$T/py/lib/libipcq.so.1
		export IPCQ_TEST_AS_NOBODY IPCQ_TEST_NOBODY_PYTHONPATH IPCQ_TEST_NOBODY_LIBRARY
	else
		echo "note: the permission test is skipped: nobody cannot run $PY"
	fi
else
	echo "note: the permission test is skipped (it runs a process as nobody: needs root)"
fi

start_daemon -c "$T/ipcbrokerd.conf"

# a sanitizer build's libipcq needs the ASan runtime loaded first: preload
# it into python (whose own leaks at exit are not ours to report)
asan=$(ldd "$B/libclient/.libs/libipcq.so" 2>/dev/null | sed -n 's/.*=> \(\/[^ ]*libasan[^ ]*\).*/\1/p')
py_env=
if [ -n "$asan" ]; then
	py_env="LD_PRELOAD=$asan${LD_PRELOAD:+:$LD_PRELOAD} ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0"
fi

IPCQ_LIBRARY="$B/libclient/.libs/libipcq.so"
IPCQ_CLI="$IPCQ"
PYTHONPATH="$S/python${PYTHONPATH:+:$PYTHONPATH}"
PYTHONDONTWRITEBYTECODE=1
IPCQ_SRCDIR="$S"
export IPCQ_LIBRARY IPCQ_CLI PYTHONPATH PYTHONDONTWRITEBYTECODE IPCQ_SRCDIR
cd "$T"
env $py_env "$PY" -m pytest -q --tb=short -p no:cacheprovider -o "tmp_path_retention_count=0" --basetemp="$T/pytest" \
	"$S/python/tests" || fail "pytest reported failures (above)"
daemon_alive || fail "ipcbrokerd died during the tests"
pass "the Python binding's pytest suite passed"
