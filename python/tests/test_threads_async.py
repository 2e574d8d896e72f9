# SPDX-License-Identifier: Apache-2.0
"""Threads (the GIL is released around blocking calls), selectors and
asyncio."""
import asyncio
import selectors
import threading
import time

import pytest

import ipcq


def test_threads_send_and_receive_every_message_once(queue):
    producers, per = 4, 1500
    got, lock, errors = [], threading.Lock(), []
    produced = threading.Event()

    def produce(p):
        for i in range(0, per, 50):
            batch = [b"%d:%d" % (p, j) for j in range(i, i + 50)]
            assert queue.send_batch(batch, timeout=10) == 50

    def consume(batched):
        try:
            while True:
                try:
                    ms = queue.recv_batch(32, timeout=0.2) if batched else [queue.recv(timeout=0.2)]
                except ipcq.Timeout:
                    if produced.is_set():
                        return
                    continue
                with lock:
                    got.extend(ms)
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    senders = [threading.Thread(target=produce, args=(p,)) for p in range(producers)]
    receivers = [threading.Thread(target=consume, args=(b,)) for b in (True, False, True)]
    for t in senders + receivers:
        t.start()
    for t in senders:
        t.join(60)
    produced.set()
    for t in receivers:
        t.join(60)
    assert not errors
    want = {b"%d:%d" % (p, j) for p in range(producers) for j in range(per)}
    assert len(got) == len(want) and set(got) == want


def test_blocking_recv_releases_the_gil(queue):
    result = {}

    def wait():
        t = time.monotonic()
        try:
            result["msg"] = queue.recv(timeout=3)
        except ipcq.Timeout:
            result["msg"] = None
        result["took"] = time.monotonic() - t

    t = threading.Thread(target=wait)
    t.start()
    time.sleep(0.05)
    spins, end = 0, time.monotonic() + 0.3
    while time.monotonic() < end:  # pure Python: needs the GIL
        spins += 1
    queue.send(b"wake")
    t.join(10)
    assert result["msg"] == b"wake" and result["took"] < 2
    assert spins > 1000


def test_fileno_polls_readable_when_a_message_waits(queue):
    with selectors.DefaultSelector() as sel:
        sel.register(queue.fileno(), selectors.EVENT_READ)
        assert sel.select(timeout=0.1) == []
        queue.send(b"ready")
        assert len(sel.select(timeout=2)) == 1
        assert queue.recv(timeout=0) == b"ready"


def test_arecv_waits_in_the_event_loop(queue):
    async def main():
        loop = asyncio.get_running_loop()
        loop.call_later(0.2, queue.send, b"async")
        ticks = 0

        async def tick():
            nonlocal ticks
            while True:
                await asyncio.sleep(0.01)
                ticks += 1

        ticker = asyncio.ensure_future(tick())
        msg = await queue.arecv(timeout=5)
        ticker.cancel()
        assert msg == b"async" and ticks >= 5  # the loop ran while arecv waited
        with pytest.raises(ipcq.Timeout):
            await queue.arecv(timeout=0.1)
        loop.call_later(0.1, queue.send_batch, [b"x", b"y"])
        both = await asyncio.gather(queue.arecv(timeout=5), queue.arecv(timeout=5))
        assert sorted(both) == [b"x", b"y"]

    asyncio.run(main())
