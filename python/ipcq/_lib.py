# SPDX-License-Identifier: Apache-2.0
"""ctypes declarations of libipcq (ipcq.h): its structs and functions.

The structs mirror ipcq.h field for field, reserved room included, so that
their sizes are the C ones (checked below at import: a libipcq whose
structs differ would write past them).  Every function returns 0, a count
or a negative errno value, as in C; the Python layer turns those into
exceptions.

libipcq is looked up as $IPCQ_LIBRARY when that is set (a path, e.g. a
build tree's libclient/.libs/libipcq.so), else as libipcq.so.1 through the
dynamic linker's path, else by ctypes.util.find_library("ipcq").

ctypes.CDLL releases the GIL around every call, so a blocking receive in
one thread does not stop the others.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import os

NAME_MAX = 64
NAMESPACE_MAX = 32

SEND = 1 << 0
RECV = 1 << 1
CREATE = 1 << 2
SENDERS_SHARED = 1
SENDERS_ISOLATED = 2
CONNECT_USER = 1 << 0
MSG_REDELIVERED = 1 << 0
NACK_REJECT = 1 << 0
TTL_MAX_MS = 8760 * 3600 * 1000

c_char = ctypes.c_char
c_int = ctypes.c_int
c_uint = ctypes.c_uint
c_size_t = ctypes.c_size_t
c_ssize_t = ctypes.c_ssize_t
c_uint32 = ctypes.c_uint32
c_uint64 = ctypes.c_uint64
c_void_p = ctypes.c_void_p
c_char_p = ctypes.c_char_p
POINTER = ctypes.POINTER


class Msg(ctypes.Structure):
    """struct ipcq_msg: a message read in place."""

    _fields_ = [
        ("data", c_void_p),
        ("len", c_size_t),
        ("prio", c_uint),
        ("flags", c_uint),
        ("deliveries", c_uint),
        ("reserved_", c_uint),
        ("opaque_", c_uint64 * 2),
    ]


class Geometry(ctypes.Structure):
    """struct ipcq_geometry."""

    _fields_ = [
        ("max_msgs", c_uint32),
        ("msg_size", c_uint32),
        ("ring_size", c_uint64),
        ("max_payload", c_uint64),
        ("max_depth", c_uint64),
        ("prefetch", c_uint32),
        ("senders", c_uint32),  # SENDERS_SHARED or SENDERS_ISOLATED; 0: the daemon's default
        ("reserved_", c_uint32 * 6),
    ]


class Stats(ctypes.Structure):
    """struct ipcq_stats: 640 bytes, with room for counters to come."""

    _fields_ = [
        ("name", c_char * (NAME_MAX + 1)),
        ("reserved5_", c_char * 7),
        ("geo", Geometry),
        ("depth", c_uint64),
        ("backlog", c_uint64),
        ("window", c_uint32),
        ("id", c_uint32),
        ("ring_used", c_uint64),
        ("ring_hwm", c_uint64),
        ("ring_chunks", c_uint64),
        ("sent", c_uint64),
        ("received", c_uint64),
        ("sent_ring", c_uint64),
        ("redelivered", c_uint64),
        ("dropped", c_uint64),
        ("reclaimed", c_uint64),
        ("rejected", c_uint64),
        ("acked", c_uint64),
        ("delivery", c_uint32),
        ("receivers", c_uint32),
        ("quarantined", c_uint32),
        ("listeners", c_uint32),
        ("expired", c_uint64),
        ("dead_lettered", c_uint64),
        ("nacked", c_uint64),
        ("moved", c_uint64),
        ("ttl_ms", c_uint64),
        ("max_deliveries", c_uint32),
        ("reserved3_", c_uint32),
        ("dead_letter", c_char * (NAME_MAX + 1)),
        ("reserved4_", c_char * 7),
        ("memory", c_uint64),
        ("reserved2_", c_uint64 * 31),
    ]


class QueueOpts(ctypes.Structure):
    """struct ipcq_queue_opts (ipcq_create_ex)."""

    _fields_ = [
        ("ttl_ms", c_uint64),
        ("max_deliveries", c_uint32),
        ("reserved_", c_uint32),
        ("dead_letter", c_char * (NAME_MAX + 1)),
        ("reserved2_", c_char * 7),
    ]


class IoVec(ctypes.Structure):
    """struct iovec."""

    _fields_ = [("iov_base", c_void_p), ("iov_len", c_size_t)]


# the layout ipcq.h promises (common/proto.c asserts the same in C)
assert ctypes.sizeof(Msg) == 48
assert ctypes.sizeof(Geometry) == 64
assert ctypes.sizeof(Stats) == 640
assert Stats.geo.offset == 72 and Stats.memory.offset == 384
assert ctypes.sizeof(QueueOpts) == 88
assert ctypes.sizeof(IoVec) == 16
assert Msg.data.offset == 0 and Msg.len.offset == 8 and ctypes.sizeof(c_size_t) == 8


def _load() -> ctypes.CDLL:
    path = os.environ.get("IPCQ_LIBRARY")
    if path:
        return ctypes.CDLL(path)
    try:
        return ctypes.CDLL("libipcq.so.1")
    except OSError:
        found = ctypes.util.find_library("ipcq")
        if not found:
            raise OSError(
                "libipcq not found: install ipcbroker's libipcq (libipcq.so.1), "
                "or set IPCQ_LIBRARY to its path"
            ) from None
        return ctypes.CDLL(found)


lib = _load()

_client_pp = POINTER(c_void_p)
_PROTOTYPES = {
    "ipcq_connect": (c_int, [_client_pp, c_char_p]),
    "ipcq_connect_namespace": (c_int, [_client_pp, c_char_p, c_uint]),
    "ipcq_disconnect": (None, [c_void_p]),
    "ipcq_open": (c_int, [c_void_p, c_char_p, c_int, _client_pp]),
    "ipcq_close": (c_int, [c_void_p]),
    "ipcq_geometry_of": (c_int, [c_void_p, POINTER(Geometry)]),
    "ipcq_ack": (c_int, [c_void_p]),
    "ipcq_nack": (c_int, [c_void_p, POINTER(Msg), c_uint]),
    "ipcq_set_ttl": (c_int, [c_void_p, c_uint64]),
    "ipcq_send": (c_int, [c_void_p, c_void_p, c_size_t, c_uint, c_int]),
    "ipcq_recv": (c_ssize_t, [c_void_p, c_void_p, c_size_t, POINTER(c_uint), c_int]),
    "ipcq_send_batch": (c_int, [c_void_p, c_void_p, c_uint, c_uint, c_int]),
    "ipcq_recv_batch": (c_int, [c_void_p, POINTER(Msg), c_uint, c_int]),
    "ipcq_peek": (c_int, [c_void_p, POINTER(Msg), c_uint, c_void_p, c_size_t]),
    "ipcq_fd": (c_int, [c_void_p]),
    "ipcq_notify": (c_int, [c_void_p, c_int]),
    "ipcq_recv_view": (c_int, [c_void_p, POINTER(Msg), c_int]),
    "ipcq_release": (c_int, [c_void_p, POINTER(Msg)]),
    "ipcq_create_ex": (c_int, [c_void_p, c_char_p, POINTER(Geometry), POINTER(QueueOpts)]),
    "ipcq_delete": (c_int, [c_void_p, c_char_p]),
    "ipcq_purge": (c_int, [c_void_p, c_char_p]),
    "ipcq_stat": (c_int, [c_void_p, c_char_p, POINTER(Stats)]),
    "ipcq_list": (c_int, [c_void_p, POINTER(Stats), c_size_t]),
    "ipcq_last_error": (c_char_p, [c_void_p]),
    "ipcq_strerror": (c_char_p, [c_int]),
}
for _name, (_restype, _argtypes) in _PROTOTYPES.items():
    _fn = getattr(lib, _name)
    _fn.restype = _restype
    _fn.argtypes = _argtypes

# ipcq_release without argument conversion (recv_batch passes c_void_p
# objects made once): a third quicker a call than with argtypes
release_raw = lib["ipcq_release"]
release_raw.restype = c_int


def _memoryview_from_memory():
    """PyMemoryView_FromMemory, for a read-only memoryview over a view's
    bytes without a ctypes object under it (so that release() ends it)."""
    try:
        fn = ctypes.pythonapi.PyMemoryView_FromMemory
    except AttributeError:  # not CPython
        return None
    fn.restype = ctypes.py_object
    fn.argtypes = [c_void_p, ctypes.c_ssize_t, c_int]
    return fn


_PyBUF_READ = 0x100
_mv_from_memory = _memoryview_from_memory()


def memoryview_at(addr: int, size: int) -> memoryview:
    """A read-only memoryview of size bytes at addr (format 'B')."""
    if size == 0:
        return memoryview(b"")
    if _mv_from_memory is not None:
        return _mv_from_memory(addr, size, _PyBUF_READ)
    return memoryview((ctypes.c_ubyte * size).from_address(addr)).cast("B").toreadonly()
