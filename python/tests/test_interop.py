# SPDX-License-Identifier: Apache-2.0
"""Python with C: the ipcq CLI (libipcq in C) at the other end; and
permissions, with a Python process run as the user nobody."""
import json
import os
import subprocess
import sys

from conftest import env_or_skip


def cli(*args, **kw):
    return subprocess.run([env_or_skip("IPCQ_CLI"), *args], capture_output=True, timeout=20, **kw)


def test_python_producer_c_consumer(make_queue):
    name, q = make_queue()
    lines = [b"line %d" % i for i in range(200)]
    q.send_batch(lines[:150])
    for m in lines[150:]:
        q.send(m)
    r = cli("recv", "-c", str(len(lines)), "-t", "5", name)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split(b"\n")[:-1] == lines
    blob = os.urandom(100 * 1000)
    q.send(blob)
    r = cli("recv", "-N", "-t", "5", name)
    assert r.returncode == 0 and r.stdout == blob


def test_c_producer_python_consumer(make_queue, tmp_path):
    name, q = make_queue()
    r = cli("send", "-p", "7", name, "first", "second")
    assert r.returncode == 0, r.stderr
    assert q.recv_prio(5) == (b"first", 7)
    assert q.recv_prio(5) == (b"second", 7)
    blob = os.urandom(100 * 1000)
    (tmp_path / "blob").write_bytes(blob)
    r = cli("send", "-f", str(tmp_path / "blob"), name)
    assert r.returncode == 0, r.stderr
    with q.recv_view(5) as v:
        assert bytes(v.data) == blob
    r = cli("send", name, input=b"".join(b"%d\n" % i for i in range(300)))
    assert r.returncode == 0, r.stderr
    got = []
    while len(got) < 300:
        got += q.recv_batch(64, 5)
    assert got == [b"%d" % i for i in range(300)]


NOBODY_SCRIPT = r"""
import json, sys, ipcq
out = {}
with ipcq.connect() as c:
    try:
        c.open("py_secret")
        out["secret"] = "opened"
    except ipcq.PermissionDenied as e:
        out["secret"] = [type(e).__name__, isinstance(e, PermissionError), e.errno, e.explanation, str(e)]
    q = c.open(sys.argv[1])
    q.send(b"from nobody")
    out["open"] = q.recv(timeout=5).decode()
    q.send(b"for root")
print(json.dumps(out))
"""


def test_permission_denied_as_nobody(conn, make_queue):
    as_nobody = env_or_skip("IPCQ_TEST_AS_NOBODY")
    name, q = make_queue()
    env = dict(os.environ)
    env["PYTHONPATH"] = env_or_skip("IPCQ_TEST_NOBODY_PYTHONPATH")
    env["IPCQ_LIBRARY"] = env_or_skip("IPCQ_TEST_NOBODY_LIBRARY")
    r = subprocess.run([as_nobody, sys.executable, "-c", NOBODY_SCRIPT, name], env=env,
                       capture_output=True, timeout=30)
    assert r.returncode == 0, r.stderr.decode()
    out = json.loads(r.stdout)
    kind, is_permission_error, err, explanation, text = out["secret"]
    assert kind == "PermissionDenied" and is_permission_error and err == 13  # EACCES
    assert explanation and explanation in text
    assert out["open"] == "from nobody"  # a queue without rules lets nobody in
    assert q.recv(5) == b"for root"
    assert conn.stat("py_secret")["depth"] == 0
