# SPDX-License-Identifier: Apache-2.0
"""stat and list: dicts of every counter of struct ipcq_stats."""
import ctypes
import os
import re

import pytest

import ipcq
from ipcq import _lib


def header_stats_fields():
    src = os.environ.get("IPCQ_SRCDIR")
    path = os.path.join(src or "", "libclient", "ipcq.h")
    if not src or not os.path.exists(path):
        pytest.skip("$IPCQ_SRCDIR/libclient/ipcq.h not found")
    text = open(path).read()
    body = re.search(r"typedef struct ipcq_stats \{(.*?)\} ipcq_stats;", text, re.S).group(1)
    body = re.sub(r"/\*.*?\*/", "", body, flags=re.S)
    return [m.group(1) for m in re.finditer(r"(\w+)(?:\[[^]]*\])?;", body)]


def test_stats_struct_mirrors_the_header():
    assert ctypes.sizeof(_lib.Stats) == 640
    assert [f for f, _ in _lib.Stats._fields_] == header_stats_fields()


def test_stat_has_every_field_and_counts(conn, make_queue):
    name, q = make_queue(max_msgs=8, ring_size=1 << 20)
    before = conn.stat(name)
    want = {f for f in header_stats_fields() if not f.endswith("_")} - {"geo"} | {"geometry"}
    assert set(before) == want
    assert before["name"] == name and before["geometry"]["max_msgs"] == 8
    assert before["geometry"]["ring_size"] == 1 << 20
    assert before["delivery"] == "at-most-once" and before["receivers"] == 1
    q.send_batch([b"1", b"2", b"3"])
    mid = conn.stat(name)
    assert mid["sent"] - before["sent"] == 3 and mid["depth"] == 3
    q.recv_batch(8, 1)
    assert conn.stat(name)["depth"] == 0
    assert conn.stat("py_alo")["delivery"] == "at-least-once"


def test_senders_isolated_by_default_or_shared_when_asked(conn, make_queue):
    iso, q = make_queue()
    shared, s = make_queue(senders="shared")
    assert conn.stat(iso)["geometry"]["senders"] == ipcq.SENDERS_ISOLATED
    assert conn.stat(shared)["geometry"]["senders"] == ipcq.SENDERS_SHARED
    assert s.geometry()["senders"] == ipcq.SENDERS_SHARED
    for h in (q, s):
        h.send(b"x" * 5000)
        assert h.recv(timeout=1) == b"x" * 5000
    with pytest.raises(ValueError):
        conn.create("py_bad_senders", senders="private")


def test_list_has_every_queue(conn, make_queue):
    names = {make_queue()[0] for _ in range(3)}
    listed = {d["name"]: d for d in conn.list()}
    assert names <= set(listed)
    assert "py_alo" in listed and "py_secret" in listed
    for n in names:
        assert listed[n]["depth"] == 0


def test_purge_drops_waiting_messages(conn, make_queue):
    name, q = make_queue()
    q.send_batch([b"a", b"b"])
    conn.purge(name)
    assert conn.stat(name)["depth"] == 0
    with pytest.raises(ipcq.Timeout):
        q.recv(timeout=0)


def test_notify_signals_when_the_queue_fills(conn, make_queue):
    import signal
    import time

    name, q = make_queue()
    came = []  # (not a threading.Event: its set() in a handler can deadlock with its wait())
    old = signal.signal(signal.SIGUSR1, lambda *_: came.append(1))
    try:
        q.notify(signal.SIGUSR1)
        assert conn.stat(name)["listeners"] == 1
        q.send(b"ring")
        deadline = time.monotonic() + 5
        while not came and time.monotonic() < deadline:
            time.sleep(0.01)
        assert came
        q.notify(0)
        assert conn.stat(name)["listeners"] == 0
    finally:
        signal.signal(signal.SIGUSR1, old)


def test_set_ttl_expires_what_is_not_received_in_time(conn, make_queue):
    import time

    name, q = make_queue()
    q.set_ttl(0.05)
    q.send(b"stale")
    time.sleep(0.3)
    with pytest.raises(ipcq.Timeout):
        q.recv(timeout=0.1)
    assert conn.stat(name)["expired"] == 1
    q.set_ttl(None)
    q.send(b"fresh")
    time.sleep(0.1)
    assert q.recv(timeout=1) == b"fresh"
