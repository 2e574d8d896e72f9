# SPDX-License-Identifier: Apache-2.0
"""Timeouts, missing and deleted queues, and what the exceptions carry."""
import threading
import time

import pytest

import ipcq


def test_recv_times_out_with_timeout_error(queue):
    t = time.monotonic()
    with pytest.raises(ipcq.Timeout) as e:
        queue.recv(timeout=0.2)
    took = time.monotonic() - t
    assert 0.19 <= took < 1.5
    assert isinstance(e.value, TimeoutError) and e.value.errno in (11, 110)
    with pytest.raises(TimeoutError):
        queue.recv(timeout=0)


def test_wait_longer_than_a_slice_still_ends_at_the_timeout(queue):
    t = time.monotonic()
    with pytest.raises(ipcq.Timeout):
        queue.recv_batch(4, timeout=1.3)
    assert 1.25 <= time.monotonic() - t < 3


def test_message_arriving_during_a_long_wait_is_received_at_once(queue):
    threading.Timer(0.3, queue.send, (b"late",)).start()
    t = time.monotonic()
    assert queue.recv(timeout=None) == b"late"
    assert time.monotonic() - t < 1.0


def test_send_to_a_full_queue_times_out_and_batch_sends_a_prefix(make_queue):
    _, q = make_queue(max_depth=2)
    assert q.send_batch([b"1", b"2", b"3", b"4"], timeout=0.1) == 2
    with pytest.raises(ipcq.Timeout):
        q.send(b"5", timeout=0.1)
    with pytest.raises(ipcq.Timeout):
        q.send_batch([b"5"], timeout=0)
    got = []
    while len(got) < 2:
        got += q.recv_batch(8, 1)
    assert got == [b"1", b"2"]
    with pytest.raises(ipcq.Timeout):
        q.recv(timeout=0)


def test_missing_queue_raises_queue_not_found_with_the_daemons_text(conn):
    with pytest.raises(ipcq.QueueNotFound) as e:
        conn.open("py.no-such-queue")
    assert isinstance(e.value, FileNotFoundError) and e.value.errno == 2
    assert e.value.explanation and e.value.explanation in str(e.value)
    with pytest.raises(FileNotFoundError):
        conn.stat("py.no-such-queue")


def test_deleted_queue_ends_iteration_after_what_was_received(conn, make_queue):
    name, q = make_queue()

    def produce_then_delete():
        for m in (b"one", b"two", b"three"):
            q.send(m)
        deadline = time.monotonic() + 10
        while conn.stat(name)["depth"] and time.monotonic() < deadline:
            time.sleep(0.01)
        conn.delete(name)

    t = threading.Thread(target=produce_then_delete)
    t.start()
    got = list(q)
    t.join()
    assert got == [b"one", b"two", b"three"]
    with pytest.raises(ipcq.QueueDeleted):
        q.recv(timeout=0)


def test_closed_handles_refuse_calls(conn, make_queue):
    _, q = make_queue()
    q.close()
    q.close()
    with pytest.raises(ValueError):
        q.send(b"x")


def test_holding_64_views_makes_receives_fail_with_enobufs(queue):
    queue.send_batch([b"%d" % i for i in range(70)])
    views = []
    while len(views) < 64:
        views += queue.recv_view_batch(64 - len(views), timeout=1)
    t = time.monotonic()
    with pytest.raises(ipcq.Error) as e:
        queue.recv(timeout=5)
    assert e.value.errno == 105  # ENOBUFS, after the second recv waits it out
    assert 0.9 <= time.monotonic() - t < 4
    views[0].release()
    assert queue.recv(timeout=1) == b"64"
