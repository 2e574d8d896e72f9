# SPDX-License-Identifier: Apache-2.0
"""At-least-once delivery: acks, nacks and redelivery (queue py_alo of the
test daemon's configuration)."""
import pytest

import ipcq


def test_copy_is_acknowledged_by_ack_not_before(conn, alo):
    alo.send(b"job")
    acked = conn.stat("py_alo")["acked"]
    assert alo.recv(1) == b"job"
    assert conn.stat("py_alo")["acked"] == acked
    alo.ack()
    assert conn.stat("py_alo")["acked"] == acked + 1


def test_copy_is_acknowledged_by_the_next_recv(conn, alo):
    alo.send_batch([b"a", b"b"])
    acked = conn.stat("py_alo")["acked"]
    assert alo.recv(1) == b"a"
    assert alo.recv(1) == b"b"
    assert conn.stat("py_alo")["acked"] == acked + 1


def test_nack_gives_the_copy_back_flagged_redelivered(conn, alo):
    alo.send(b"retry me")
    assert alo.recv(1) == b"retry me"
    alo.nack()
    with alo.recv_view(1) as v:
        assert bytes(v.data) == b"retry me"
        assert v.redelivered and v.deliveries == 2
    assert conn.stat("py_alo")["nacked"] >= 1
    with pytest.raises(ipcq.QueueNotFound):
        alo.nack()  # ENOENT: this thread holds no copy


def test_view_nack_reject_drops_it(conn, alo):
    alo.send(b"poison")
    before = conn.stat("py_alo")
    v = alo.recv_view(1)
    v.nack(reject=True)
    assert v.released
    after = conn.stat("py_alo")
    assert after["nacked"] == before["nacked"] + 1
    with pytest.raises(ipcq.Timeout):
        alo.recv(timeout=0.1)


def test_close_gives_back_what_a_handle_did_not_acknowledge(conn, alo):
    alo.send(b"unfinished")
    other = conn.open("py_alo")
    v = other.recv_view(1)
    assert bytes(v.data) == b"unfinished"
    other.close()
    with alo.recv_view(1) as again:
        assert bytes(again.data) == b"unfinished"
        assert again.redelivered
