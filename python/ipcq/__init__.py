# SPDX-License-Identifier: Apache-2.0
"""ipcq: Python binding of libipcq, the client library of ipcbroker.

    import ipcq
    with ipcq.connect() as c:                  # $IPCQ_SOCKET, or namespace=, or socket=
        q = c.open("jobs", create=True)
        q.send(b"hello", prio=5)
        msg = q.recv(timeout=1.0)              # raises ipcq.Timeout
        with q.recv_view() as v:               # zero-copy, released on exit
            print(bytes(v.data))

Errors are ipcq.Error (an OSError) and its subclasses Timeout,
PermissionDenied, QueueNotFound, MessageTooBig and QueueDeleted, which are
also TimeoutError, PermissionError and FileNotFoundError where those fit.
Timeouts are in seconds: None waits forever, 0 does not wait.
"""
from ._client import Connection, Queue, View, connect
from ._errors import Error, MessageTooBig, PermissionDenied, QueueDeleted, QueueNotFound, Timeout, strerror
from ._lib import MSG_REDELIVERED, SENDERS_ISOLATED, SENDERS_SHARED

__all__ = [
    "connect",
    "Connection",
    "Queue",
    "View",
    "Error",
    "Timeout",
    "PermissionDenied",
    "QueueNotFound",
    "MessageTooBig",
    "QueueDeleted",
    "strerror",
    "MSG_REDELIVERED",
    "SENDERS_ISOLATED",
    "SENDERS_SHARED",
]
__version__ = "0.1.0"
