# SPDX-License-Identifier: Apache-2.0
"""Connections, queues and views over libipcq.

Blocking calls run in libipcq with the GIL released (ctypes.CDLL does
that for every call), so other threads go on meanwhile.  A wait without a
bound, or a long one, is made of waits of at most a second each, so that a
signal (Ctrl-C: KeyboardInterrupt) is seen within a second; a message or
room that comes ends the wait at once, whatever the slice.
"""
from __future__ import annotations

import asyncio
import ctypes
import errno
import math
import operator
import os
import threading
import time
import weakref
from array import array
from itertools import accumulate, islice
from types import TracebackType
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence, Tuple, Type, Union

from . import _lib
from ._errors import Error, QueueDeleted, Timeout, make_error

lib = _lib.lib
Buffer = Union[bytes, bytearray, memoryview, Any]  # anything with the buffer protocol
PathLike = Union[str, bytes, "os.PathLike[str]", "os.PathLike[bytes]"]

_INT_MAX = 2**31 - 1
_SLICE_MS = 1000
_WAIT_OVER = (-errno.ETIMEDOUT, -errno.EAGAIN, -errno.EINTR)
_MSG_SIZE = ctypes.sizeof(_lib.Msg)
_MSG_WORDS = _MSG_SIZE // 8  # struct ipcq_msg in 64-bit words: data, len first
_RECV_BUF_START = 64 * 1024

_GEOMETRY_FIELDS = ("max_msgs", "msg_size", "ring_size", "max_payload", "max_depth", "prefetch", "senders")
_STATS_FIELDS = tuple(
    f for f, _ in _lib.Stats._fields_ if not f.endswith("_") and f not in ("name", "geo", "dead_letter")
)


def _ms(timeout: Optional[float]) -> int:
    """A timeout in seconds (None: forever) as libipcq's milliseconds."""
    if timeout is None:
        return -1
    if timeout <= 0:
        return 0
    return min(math.ceil(timeout * 1000), _INT_MAX)


def _waiting(call: Callable[[int], int], timeout: Optional[float]) -> int:
    """call(ms) until it is done or timeout (seconds, None: forever) passed,
    in slices of at most a second (see the module's comment).  Returns the
    last result."""
    total = _ms(timeout)
    if 0 <= total <= _SLICE_MS:
        while True:
            r = call(total)
            if r != -errno.EINTR:
                return r
    deadline = None if total < 0 else time.monotonic() + total / 1000
    while True:
        left = _SLICE_MS if deadline is None else math.ceil((deadline - time.monotonic()) * 1000)
        r = call(max(0, min(left, _SLICE_MS)))
        if r not in _WAIT_OVER or (r != -errno.EINTR and deadline is not None and left <= _SLICE_MS):
            return r


def _receiving(call: Callable[[int], int], timeout: Optional[float]) -> int:
    """_waiting() for receives, which also waits out -ENOBUFS for up to a
    second (within the timeout): a handle hands out at most 64 messages not
    released, and with threads sharing a handle, recv_batch's views held
    for the moment of their copy count too.  A caller holding 64 views
    itself gets the error after that second."""
    deadline = None if timeout is None else time.monotonic() + max(timeout, 0)
    busy_until = None
    while True:
        left = None if deadline is None else max(0.0, deadline - time.monotonic())
        r = _waiting(call, left)
        if r != -errno.ENOBUFS:
            return r
        now = time.monotonic()
        if busy_until is None:
            busy_until = now + 1.0
        if now >= busy_until or (deadline is not None and now >= deadline):
            return r
        time.sleep(0.001)


def _name(name: str) -> bytes:
    if not isinstance(name, str):
        raise TypeError(f"a queue name is a str, not {type(name).__name__}")
    return name.encode()


def _as_buffer(data: Buffer) -> Tuple[Any, int]:
    """What ipcq_send takes for data: (pointer argument, length), without a
    copy for bytes and writable buffers."""
    if type(data) is bytes:
        return data, len(data)
    if isinstance(data, str):
        raise TypeError("ipcq sends bytes-like objects, not str (encode it)")
    mv = memoryview(data)
    n = mv.nbytes
    if mv.readonly or not mv.c_contiguous or n == 0:
        b = mv.tobytes()
        return b, len(b)
    return (ctypes.c_char * n).from_buffer(mv.cast("B")), n


def _geometry_dict(g: _lib.Geometry) -> Dict[str, int]:
    return {f: getattr(g, f) for f in _GEOMETRY_FIELDS}


def _stats_dict(s: _lib.Stats) -> Dict[str, Any]:
    d: Dict[str, Any] = {"name": s.name.decode(errors="replace")}
    d["geometry"] = _geometry_dict(s.geo)
    for f in _STATS_FIELDS:
        d[f] = getattr(s, f)
    d["delivery"] = "at-least-once" if s.delivery == 1 else "at-most-once"
    d["quarantined"] = bool(s.quarantined)
    d["dead_letter"] = s.dead_letter.decode(errors="replace")
    return d


class View:
    """A message read in place (ipcq_recv_view).

    .data is a read-only memoryview of its bytes, valid until release():
    release() (or leaving the with block) releases .data too, so using it
    afterwards raises ValueError.  Objects made from .data that hold its
    buffer (a numpy.frombuffer array, a slice of it) are not invalidated:
    do not use them after the release (copy what must live on: bytes(v.data)).
    In an at-least-once queue the release acknowledges the message.
    """

    __slots__ = ("data", "prio", "flags", "deliveries", "_queue", "_msg", "__weakref__")

    def __init__(self, queue: "Queue", msg: _lib.Msg) -> None:
        self._queue = queue
        self._msg = msg
        self.data: memoryview = _lib.memoryview_at(msg.data or 0, msg.len)
        self.prio: int = msg.prio
        self.flags: int = msg.flags
        self.deliveries: int = msg.deliveries
        queue._views.add(self)

    @property
    def redelivered(self) -> bool:
        """True when the message was delivered before (at-least-once)."""
        return bool(self.flags & _lib.MSG_REDELIVERED)

    @property
    def released(self) -> bool:
        return self._msg is None

    def _end(self) -> Optional[_lib.Msg]:
        msg, self._msg = self._msg, None
        if msg is not None:
            self._queue._views.discard(self)
            try:
                self.data.release()
            except BufferError:
                pass  # exported (numpy, a slice): see the class's comment
        return msg

    def release(self) -> None:
        """Release the message (acknowledge it, at-least-once).  Idempotent."""
        msg = self._end()
        if msg is not None:
            q = self._queue
            if q._h is not None:
                r = lib.ipcq_release(q._h, ctypes.byref(msg))
                if r < 0:
                    raise make_error(r, f"release on '{q.name}'")

    def nack(self, reject: bool = False) -> None:
        """Give the message back to the queue (ipcq_nack): it is delivered
        again; with reject=True it goes to the dead-letter queue (or is
        dropped) instead.  Releases the view."""
        q = self._queue
        if self._msg is None:
            raise ValueError("the view was released")
        h = q._handle()
        msg = self._end()
        r = lib.ipcq_nack(h, ctypes.byref(msg), _lib.NACK_REJECT if reject else 0)
        if r < 0:
            raise make_error(r, f"nack on '{q.name}'")

    def __enter__(self) -> "View":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.release()

    def __len__(self) -> int:
        return 0 if self._msg is None else self._msg.len

    def __repr__(self) -> str:
        state = "released" if self._msg is None else f"{self._msg.len} bytes"
        return f"<ipcq.View {state} prio={self.prio} deliveries={self.deliveries}>"


class _PerThread(threading.local):
    def __init__(self) -> None:
        self.buf: Optional[ctypes.Array] = None
        self.prio = ctypes.c_uint(0)
        self.msgs: Optional[ctypes.Array] = None
        self.slots: List[ctypes.c_void_p] = []  # the addresses of msgs' elements


class Queue:
    """An open queue (ipcq_open).  Made by Connection.open().

    Methods may be called from several threads at once, except close(),
    which must not race with other calls on the queue.  A handle belongs to
    the process that opened it: after fork() open the queue anew.
    """

    def __init__(self, conn: "Connection", name: str, flags: int) -> None:
        self.name = name
        self.connection = conn
        self._h: Optional[int] = None
        self._views: "weakref.WeakSet[View]" = weakref.WeakSet()
        self._local = _PerThread()
        self._waiters: List["asyncio.Future[None]"] = []
        self._reader_loop: Optional[asyncio.AbstractEventLoop] = None
        h = ctypes.c_void_p()
        r = lib.ipcq_open(conn._handle(), _name(name), flags, ctypes.byref(h))
        if r < 0:
            raise conn._error(r, f"open '{name}'")
        self._h = h.value
        self._hp = h  # the handle as a ctypes object, for calls without argument conversion
        g = _lib.Geometry()
        r = lib.ipcq_geometry_of(self._h, ctypes.byref(g))
        if r < 0:
            self.close()
            raise make_error(r, f"geometry of '{name}'")
        self._geometry = _geometry_dict(g)
        self.max_payload: int = g.max_payload

    def _handle(self) -> int:
        h = self._h
        if h is None:
            raise ValueError(f"queue '{self.name}' is closed")
        return h

    @property
    def closed(self) -> bool:
        return self._h is None

    def geometry(self) -> Dict[str, int]:
        """The queue's geometry (ipcq_geometry_of): max_msgs, msg_size,
        ring_size, max_payload, max_depth, prefetch, senders
        (ipcq.SENDERS_SHARED or ipcq.SENDERS_ISOLATED)."""
        return dict(self._geometry)

    # ---- sending ----

    def send(self, data: Buffer, prio: int = 0, timeout: Optional[float] = None) -> None:
        """Send one message: a bytes-like object (str is a TypeError).
        Waits up to timeout seconds (None: forever, 0: not at all) for room
        in the queue; raises Timeout when none came, MessageTooBig above
        max_payload."""
        h = self._handle()
        ptr, n = _as_buffer(data)
        r = _waiting(lambda ms: lib.ipcq_send(h, ptr, n, prio, ms), timeout)
        if r < 0:
            raise make_error(r, f"send to '{self.name}'")

    def send_batch(self, msgs: Sequence[Buffer], prio: int = 0, timeout: Optional[float] = None) -> int:
        """Send messages with one priority in one call (ipcq_send_batch).
        Returns how many were sent: all, or the first ones when the timeout
        hit (Timeout is raised only when none was sent)."""
        h = self._handle()
        n = len(msgs)
        if n == 0:
            return 0
        if any(isinstance(m, str) for m in msgs):
            raise TypeError("ipcq sends bytes-like objects, not str (encode it)")
        if set(map(type, msgs)) == {bytes}:
            lengths = array("Q", map(len, msgs))
        else:
            lengths = array("Q", (memoryview(m).nbytes for m in msgs))
        joined = b"".join(msgs)
        base = ctypes.cast(ctypes.c_char_p(joined), ctypes.c_void_p).value or 0
        iov = array("Q", bytes(16 * n))
        iov[0::2] = array("Q", islice(accumulate(lengths, initial=base), n))
        iov[1::2] = lengths
        iov_addr = iov.buffer_info()[0]
        sent = 0

        def call(ms: int) -> int:
            nonlocal sent
            r = lib.ipcq_send_batch(h, iov_addr + 16 * sent, n - sent, prio, ms)
            if r > 0:
                sent += r
                return 0 if sent == n else -errno.ETIMEDOUT
            return r

        r = _waiting(call, timeout)
        if sent == 0 and r < 0:
            raise make_error(r, f"send_batch to '{self.name}'")
        return sent

    def set_ttl(self, ttl: Optional[float]) -> None:
        """Messages this handle sends from now on expire ttl seconds after
        they are sent (None or 0: only the queue's ttl applies)."""
        r = lib.ipcq_set_ttl(self._handle(), 0 if not ttl else max(1, math.ceil(ttl * 1000)))
        if r < 0:
            raise make_error(r, f"set_ttl on '{self.name}'")

    # ---- receiving copies ----

    def _recv_into(self, timeout: Optional[float]) -> Tuple[int, ctypes.Array]:
        h = self._handle()
        local = self._local
        buf = local.buf
        if buf is None:
            buf = local.buf = ctypes.create_string_buffer(min(self.max_payload, _RECV_BUF_START) or 1)
        prio = ctypes.byref(local.prio)
        r = _receiving(lambda ms: lib.ipcq_recv(h, buf, len(buf), prio, ms), timeout)
        if r == -errno.EMSGSIZE and len(buf) < self.max_payload:
            # the message is kept for this handle's next receive
            buf = local.buf = ctypes.create_string_buffer(self.max_payload)
            r = _receiving(lambda ms: lib.ipcq_recv(h, buf, len(buf), prio, ms), timeout)
        if r < 0:
            raise make_error(r, f"recv from '{self.name}'")
        return r, buf

    def recv(self, timeout: Optional[float] = None) -> bytes:
        """Receive one message as bytes (ipcq_recv), waiting up to timeout
        seconds (None: forever, 0: not at all); raises Timeout when none
        came, QueueDeleted once the queue is deleted.

        In an at-least-once queue the copy is acknowledged by this
        thread's next recv() on the queue, by ack(), or by close()."""
        n, buf = self._recv_into(timeout)
        return ctypes.string_at(buf, n)

    def recv_prio(self, timeout: Optional[float] = None) -> Tuple[bytes, int]:
        """recv(), and the message's priority: (data, prio)."""
        n, buf = self._recv_into(timeout)
        return ctypes.string_at(buf, n), self._local.prio.value

    def ack(self) -> None:
        """Acknowledge the copies this thread received (ipcq_ack), so that
        they are not held meanwhile (at-least-once queues)."""
        r = lib.ipcq_ack(self._handle())
        if r < 0:
            raise make_error(r, f"ack on '{self.name}'")

    def nack(self, reject: bool = False) -> None:
        """Give back the copy recv() last returned to this thread in an
        at-least-once queue (ipcq_nack): it is delivered again, or with
        reject=True goes to the dead-letter queue (or is dropped).
        QueueNotFound (ENOENT) when this thread holds no copy."""
        r = lib.ipcq_nack(self._handle(), None, _lib.NACK_REJECT if reject else 0)
        if r < 0:
            raise make_error(r, f"nack on '{self.name}'")

    def peek(self, n: int = 10) -> List[Tuple[bytes, int]]:
        """Copies of up to n messages waiting in the queue, without
        receiving them (ipcq_peek): (data, prio) pairs, in about the order
        receivers would get them.  A small message of an at-most-once
        queue carried inline in its mq window cannot be read without
        receiving it, and is not among them."""
        if n <= 0:
            raise ValueError("n must be at least 1")
        msgs = (_lib.Msg * n)()
        cap = max(1, min(n * max(self.max_payload, 1), 256 << 20))
        buf = ctypes.create_string_buffer(cap)
        r = lib.ipcq_peek(self._handle(), msgs, n, buf, cap)
        if r < 0:
            raise make_error(r, f"peek at '{self.name}'")
        return [(ctypes.string_at(msgs[i].data, msgs[i].len) if msgs[i].len else b"", msgs[i].prio)
                for i in range(r)]

    def _msgs(self, n: int) -> ctypes.Array:
        local = self._local
        msgs = local.msgs
        if msgs is None or len(msgs) < n:
            msgs = local.msgs = (_lib.Msg * n)()
            base = ctypes.addressof(msgs)
            local.slots = [ctypes.c_void_p(base + i * _MSG_SIZE) for i in range(n)]
        return msgs

    def _take_batch(self, n: int, timeout: Optional[float]) -> Tuple[int, ctypes.Array]:
        if n <= 0:
            raise ValueError("n must be at least 1")
        h = self._handle()
        msgs = self._msgs(n)
        r = _receiving(lambda ms: lib.ipcq_recv_batch(h, msgs, n, ms), timeout)
        if r < 0:
            raise make_error(r, f"recv_batch from '{self.name}'")
        return r, msgs

    def recv_batch(self, n: int, timeout: Optional[float] = None) -> List[bytes]:
        """Receive up to n messages as bytes (ipcq_recv_batch), waiting up
        to timeout seconds for the first and not for the rest.  Each is
        copied and then released (acknowledged, at-least-once) before this
        returns; recv_view_batch() hands out views to release later."""
        self._handle()
        k, msgs = self._take_batch(n, timeout)
        # the messages' (data, len) pairs, read at once from the ipcq_msg array
        fields = array("Q", ctypes.string_at(ctypes.addressof(msgs), k * _MSG_SIZE))
        datas, lens = fields[0::_MSG_WORDS], fields[1::_MSG_WORDS]
        if 0 in lens:
            out = [ctypes.string_at(d, ln) if ln else b"" for d, ln in zip(datas, lens)]
        else:
            # one memoryview over the span the batch lies in, sliced: far
            # quicker than a ctypes.string_at per message (nothing outside
            # the messages themselves is read)
            lo = min(datas)
            span = _lib.memoryview_at(lo, max(map(operator.add, datas, lens)) - lo)
            out = [span[d - lo:d - lo + ln].tobytes() for d, ln in zip(datas, lens)]
            span.release()
        release, hp = _lib.release_raw, self._hp
        err = 0
        for slot in self._local.slots[:k]:
            r = release(hp, slot)
            if r < 0 and not err:
                err = r
        if err:
            raise make_error(err, f"release on '{self.name}'")
        return out

    # ---- receiving in place ----

    def recv_view(self, timeout: Optional[float] = None) -> View:
        """Receive one message in place (ipcq_recv_view): a View, to use as
        a context manager (released on exit) or to release()."""
        h = self._handle()
        msg = _lib.Msg()
        ref = ctypes.byref(msg)
        r = _receiving(lambda ms: lib.ipcq_recv_view(h, ref, ms), timeout)
        if r < 0:
            raise make_error(r, f"recv_view from '{self.name}'")
        return View(self, msg)

    def recv_view_batch(self, n: int, timeout: Optional[float] = None) -> List[View]:
        """Receive up to n messages in place (ipcq_recv_batch): Views, each
        to release (in any order)."""
        k, msgs = self._take_batch(n, timeout)
        return [View(self, _lib.Msg.from_buffer_copy(msgs[i])) for i in range(k)]

    def __iter__(self) -> Iterator[bytes]:
        """Receive messages until the queue is deleted."""
        while True:
            try:
                yield self.recv()
            except QueueDeleted:
                return

    # ---- waiting elsewhere ----

    def fileno(self) -> int:
        """A descriptor that polls readable while a message waits (ipcq_fd),
        for select/selectors/asyncio: then receive with timeout 0 until
        Timeout.  Do not read from it or close it."""
        r = lib.ipcq_fd(self._handle())
        if r < 0:
            raise make_error(r, f"fd of '{self.name}'")
        return r

    def _wake_waiters(self) -> None:
        waiters, self._waiters = self._waiters, []
        if self._reader_loop is not None:
            self._reader_loop.remove_reader(self.fileno())
            self._reader_loop = None
        for fut in waiters:
            if not fut.done():
                fut.set_result(None)

    async def arecv(self, timeout: Optional[float] = None) -> bytes:
        """recv() for asyncio: waits on fileno() in the running loop, then
        receives without waiting.  Raises Timeout after timeout seconds."""
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        while True:
            try:
                return self.recv(timeout=0)
            except Timeout:
                pass
            left = None if deadline is None else deadline - loop.time()
            if left is not None and left <= 0:
                raise make_error(-errno.ETIMEDOUT, f"arecv from '{self.name}'")
            if self._reader_loop is not None and self._reader_loop is not loop:
                raise RuntimeError("arecv on one queue from two event loops")
            fut: "asyncio.Future[None]" = loop.create_future()
            if self._reader_loop is None:
                loop.add_reader(self.fileno(), self._wake_waiters)
                self._reader_loop = loop
            self._waiters.append(fut)
            try:
                await asyncio.wait_for(fut, left)
            except asyncio.TimeoutError:
                pass
            finally:
                if fut in self._waiters:
                    self._waiters.remove(fut)
                if not self._waiters and self._reader_loop is not None:
                    self._reader_loop.remove_reader(self.fileno())
                    self._reader_loop = None

    def notify(self, signo: int) -> None:
        """Have the daemon send this process signal signo each time the
        queue goes from empty to non-empty (ipcq_notify); 0 unregisters."""
        r = lib.ipcq_notify(self._handle(), signo)
        if r < 0:
            raise self.connection._error(r, f"notify on '{self.name}'")

    # ---- the end ----

    def close(self) -> None:
        """Close the handle (ipcq_close): views not released and, in an
        at-least-once queue, copies other threads did not acknowledge go
        back to the queue.  Must not race with other calls on the queue."""
        h, self._h = self._h, None
        if h is None:
            return
        for v in list(self._views):
            v._end()
        lib.ipcq_close(h)

    def __enter__(self) -> "Queue":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:
            pass

    def __repr__(self) -> str:
        return f"<ipcq.Queue '{self.name}'{' closed' if self._h is None else ''}>"


class Connection:
    """A connection to ipcbrokerd (ipcq_connect).  Made by ipcq.connect().

    May be used from several threads.  close() (or leaving the with block)
    closes the queues opened through it, then disconnects."""

    def __init__(self, socket: Optional[PathLike] = None, namespace: Optional[str] = None,
                 user: bool = False) -> None:
        self._h: Optional[int] = None
        self._queues: "weakref.WeakSet[Queue]" = weakref.WeakSet()
        if socket is not None and (namespace is not None or user):
            raise ValueError("give socket or namespace/user, not both")
        h = ctypes.c_void_p()
        if socket is not None:
            what = f"connect to {os.fsdecode(socket)}"
            r = lib.ipcq_connect(ctypes.byref(h), os.fsencode(socket))
        elif namespace is not None or user:
            what = f"connect to namespace {namespace or 'default'}{' (per-user)' if user else ''}"
            r = lib.ipcq_connect_namespace(ctypes.byref(h), namespace.encode() if namespace else None,
                                           _lib.CONNECT_USER if user else 0)
        else:
            what = "connect"
            r = lib.ipcq_connect(ctypes.byref(h), None)
        if r < 0:
            raise make_error(r, what)
        self._h = h.value

    def _handle(self) -> int:
        h = self._h
        if h is None:
            raise ValueError("the connection is closed")
        return h

    @property
    def closed(self) -> bool:
        return self._h is None

    def last_error(self) -> str:
        """The daemon's explanation of the last error on this connection
        (ipcq_last_error), or ""."""
        h = self._h
        if h is None:
            return ""
        text = lib.ipcq_last_error(h)
        return text.decode(errors="replace") if text else ""

    def _error(self, r: int, what: str) -> Error:
        return make_error(r, what, self.last_error())

    def open(self, name: str, create: bool = False, send: bool = True, recv: bool = True) -> Queue:
        """Open the queue name (create=True: create it if it does not
        exist) to send and/or receive.  Raises QueueNotFound,
        PermissionDenied..."""
        flags = (_lib.SEND if send else 0) | (_lib.RECV if recv else 0) | (_lib.CREATE if create else 0)
        q = Queue(self, name, flags)
        self._queues.add(q)
        return q

    def create(self, name: str, *, max_msgs: int = 0, msg_size: int = 0, ring_size: int = 0,
               max_payload: int = 0, max_depth: int = 0, prefetch: int = 0,
               ttl: Optional[float] = None, max_deliveries: int = 0,
               dead_letter: Optional[str] = None, senders: Optional[str] = None) -> None:
        """Create a queue (ipcq_create_ex); what is not given (0, None) is
        the daemon's default.  ttl in seconds.  senders: "isolated" (each
        sending user writes a ring of its own) or "shared"."""
        modes = {None: 0, "shared": _lib.SENDERS_SHARED, "isolated": _lib.SENDERS_ISOLATED}
        if senders not in modes:
            raise ValueError(f"senders must be 'isolated' or 'shared', not {senders!r}")
        g = _lib.Geometry(max_msgs=max_msgs, msg_size=msg_size, ring_size=ring_size,
                          max_payload=max_payload, max_depth=max_depth, prefetch=prefetch,
                          senders=modes[senders])
        opts = _lib.QueueOpts(ttl_ms=0 if not ttl else max(1, math.ceil(ttl * 1000)),
                              max_deliveries=max_deliveries,
                              dead_letter=_name(dead_letter) if dead_letter else b"")
        r = lib.ipcq_create_ex(self._handle(), _name(name), ctypes.byref(g), ctypes.byref(opts))
        if r < 0:
            raise self._error(r, f"create '{name}'")

    def delete(self, name: str) -> None:
        """Delete a queue: its open handles then raise QueueDeleted."""
        r = lib.ipcq_delete(self._handle(), _name(name))
        if r < 0:
            raise self._error(r, f"delete '{name}'")

    def purge(self, name: str) -> None:
        """Drop every message waiting in a queue."""
        r = lib.ipcq_purge(self._handle(), _name(name))
        if r < 0:
            raise self._error(r, f"purge '{name}'")

    def stat(self, name: str) -> Dict[str, Any]:
        """A queue's counters and state (ipcq_stat) as a dict: every field
        of struct ipcq_stats but the reserved ones, the geometry as a dict
        under "geometry", delivery as "at-most-once" or "at-least-once"."""
        s = _lib.Stats()
        r = lib.ipcq_stat(self._handle(), _name(name), ctypes.byref(s))
        if r < 0:
            raise self._error(r, f"stat '{name}'")
        return _stats_dict(s)

    def list(self) -> List[Dict[str, Any]]:
        """Every queue's stat() dict (ipcq_list)."""
        h = self._handle()
        cap = 64
        while True:
            arr = (_lib.Stats * cap)()
            r = lib.ipcq_list(h, arr, cap)
            if r < 0:
                raise self._error(r, "list")
            if r <= cap:
                return [_stats_dict(arr[i]) for i in range(r)]
            cap = r + 16

    def close(self) -> None:
        """Close the queues opened through this connection, and disconnect."""
        h, self._h = self._h, None
        if h is None:
            return
        for q in list(self._queues):
            q.close()
        lib.ipcq_disconnect(h)

    def __enter__(self) -> "Connection":
        return self

    def __exit__(self, exc_type: Optional[Type[BaseException]], exc: Optional[BaseException],
                 tb: Optional[TracebackType]) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:
            pass


def connect(socket: Optional[PathLike] = None, namespace: Optional[str] = None, user: bool = False) -> Connection:
    """Connect to ipcbrokerd: at socket (a path); or to the daemon of
    namespace (the per-user one with user=True); or, with neither, as
    libipcq finds it: $IPCQ_SOCKET, else namespace $IPCQ_NAMESPACE
    (default "default"), per-user when $IPCQ_USER says so.  Use it as a
    context manager."""
    return Connection(socket=socket, namespace=namespace, user=user)
