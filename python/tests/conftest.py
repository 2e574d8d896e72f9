# SPDX-License-Identifier: Apache-2.0
"""Fixtures: a connection to the daemon tests/integration/t_python.sh
started ($IPCQ_SOCKET), and queues made for one test and deleted after it,
whatever its outcome."""
import itertools
import os

import pytest

if not os.environ.get("IPCQ_SOCKET"):
    pytest.skip("needs a daemon: run tests/integration/t_python.sh", allow_module_level=True)

import ipcq  # noqa: E402

_serial = itertools.count()


@pytest.fixture(scope="session")
def conn():
    with ipcq.connect() as c:
        yield c


@pytest.fixture
def make_queue(conn, request):
    """make_queue(**geometry) -> (name, Queue): a new queue, deleted after
    the test."""
    names = []

    def make(**geometry):
        name = f"py.{request.node.name[:40]}.{next(_serial)}".replace("[", "_").replace("]", "_")
        name = "".join(ch if ch.isalnum() or ch in "_-." else "_" for ch in name)
        conn.create(name, **geometry)
        names.append(name)
        return name, conn.open(name)

    try:
        yield make
    finally:
        for name in names:
            try:
                conn.delete(name)
            except ipcq.QueueNotFound:
                pass


@pytest.fixture
def queue(make_queue):
    return make_queue()[1]


@pytest.fixture
def alo(conn):
    """The at-least-once queue of the test daemon's configuration, emptied
    after the test."""
    q = conn.open("py_alo")
    try:
        yield q
    finally:
        q.close()
        conn.purge("py_alo")


def env_or_skip(var):
    value = os.environ.get(var)
    if not value:
        pytest.skip(f"${var} is not set (tests/integration/t_python.sh sets it)")
    return value
