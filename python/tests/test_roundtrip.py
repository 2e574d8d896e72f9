# SPDX-License-Identifier: Apache-2.0
"""Round trips: every size class, buffers, priorities, batches, views."""
import array
import os

import pytest

import ipcq


def sizes_of(q):
    g = q.geometry()
    inline = g["msg_size"] - 8  # the mq message's header (ipcq.h: inline limit + header)
    return [0, 1, inline, inline + 1, 100 * 1000, g["max_payload"]]


@pytest.fixture
def big(make_queue):
    return make_queue(ring_size=4 << 20, max_payload=1 << 20)[1]


def test_every_size_class_round_trips_as_copy_and_view(big):
    for n in sizes_of(big):
        data = os.urandom(n)
        big.send(data)
        assert big.recv(timeout=5) == data, n
        big.send(data)
        with big.recv_view(timeout=5) as v:
            assert len(v.data) == n and bytes(v.data) == data, n


def test_payload_above_max_payload_raises_message_too_big(big):
    with pytest.raises(ipcq.MessageTooBig) as e:
        big.send(bytes(big.max_payload + 1))
    assert isinstance(e.value, ipcq.Error) and isinstance(e.value, OSError)
    assert e.value.errno == 90  # EMSGSIZE
    with pytest.raises(ipcq.Timeout):
        big.recv(timeout=0)


def test_any_bytes_like_is_sent_and_str_is_a_type_error(queue):
    queue.send(bytearray(b"from a bytearray"))
    queue.send(memoryview(b"xxfrom a memoryview")[2:])
    queue.send(array.array("B", b"from an array"))
    assert [queue.recv(1) for _ in range(3)] == [b"from a bytearray", b"from a memoryview", b"from an array"]
    with pytest.raises(TypeError):
        queue.send("text")
    with pytest.raises(TypeError):
        queue.send_batch([b"ok", "text"])
    with pytest.raises(ipcq.Timeout):
        queue.recv(timeout=0)


def test_higher_priority_first(queue):
    queue.send(b"low", prio=1)
    queue.send(b"high", prio=9)
    assert queue.recv_prio(1) == (b"high", 9)
    assert queue.recv_prio(1) == (b"low", 1)


def test_batches_round_trip_in_order(queue):
    msgs = [os.urandom(i % 900) for i in range(500)] + [bytearray(b"last")]
    assert queue.send_batch(msgs, prio=3, timeout=5) == len(msgs)
    assert queue.send_batch([]) == 0
    got = []
    while len(got) < len(msgs):
        batch = queue.recv_batch(64, timeout=5)
        assert 1 <= len(batch) <= 64
        got += batch
    assert got == [bytes(m) for m in msgs]
    with pytest.raises(ipcq.Timeout):
        queue.recv_batch(8, timeout=0)


def test_view_is_released_on_exit_and_its_memoryview_ends(conn, make_queue):
    name, q = make_queue()
    q.send(b"in place", prio=4)
    acked = conn.stat(name)["acked"]
    with q.recv_view(timeout=1) as v:
        data = v.data
        assert data.readonly and bytes(data) == b"in place"
        assert (v.prio, v.deliveries, v.redelivered) == (4, 1, False)
        assert conn.stat(name)["acked"] == acked
    assert v.released
    assert conn.stat(name)["acked"] == acked + 1
    with pytest.raises(ValueError):
        bytes(data)
    v.release()  # again: nothing
    assert conn.stat(name)["acked"] == acked + 1


def test_view_batch_released_in_any_order(conn, make_queue):
    name, q = make_queue()
    q.send_batch([b"a", b"b" * 2000, b"c"])
    views = []
    while len(views) < 3:
        views += q.recv_view_batch(8, timeout=1)
    assert [bytes(v.data) for v in views] == [b"a", b"b" * 2000, b"c"]
    acked = conn.stat(name)["acked"]
    for v in reversed(views):
        v.release()
    assert conn.stat(name)["acked"] == acked + 3


def test_close_ends_views_not_released(make_queue):
    name, q = make_queue()
    q.send(b"held")
    v = q.recv_view(1)
    q.close()
    assert v.released
    with pytest.raises(ValueError):
        v.data[0]
    with pytest.raises(ValueError):
        q.recv(0)


def test_peek_shows_what_waits_and_leaves_it(big):
    big.send(b"low")
    big.send(b"high", prio=7)
    big.send(os.urandom(200 * 1000))
    seen = big.peek(10)
    assert [p for _, p in seen] == [7, 0, 0]
    assert seen[0][0] == b"high" and seen[1][0] == b"low" and len(seen[2][0]) == 200 * 1000
    assert big.peek(1) == [(b"high", 7)]
    assert big.recv(timeout=5) == b"high"
    assert big.recv(timeout=5) == b"low"
    assert big.recv(timeout=5) == seen[2][0]
    assert big.peek() == []
