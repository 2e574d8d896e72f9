# SPDX-License-Identifier: Apache-2.0
"""Exceptions: libipcq's negative errno values as OSError subclasses."""
from __future__ import annotations

import errno as _errno
from typing import Optional

from . import _lib


class Error(OSError):
    """Base of every ipcq error.  .errno is the errno value; .explanation
    the daemon's text about it (ipcq_last_error), or "" when it gave none."""

    explanation: str = ""


class Timeout(Error, TimeoutError):
    """Nothing came (or no room appeared) within the timeout."""


class PermissionDenied(Error, PermissionError):
    """The daemon's rules do not let this process do that (EACCES, EPERM)."""


class QueueNotFound(Error, FileNotFoundError):
    """No queue of that name (ENOENT)."""


class MessageTooBig(Error):
    """The message is larger than the queue's max_payload (EMSGSIZE)."""


class QueueDeleted(Error):
    """The queue was deleted while this handle was open (EIDRM)."""


_CLASSES = {
    _errno.ETIMEDOUT: Timeout,
    _errno.EAGAIN: Timeout,
    _errno.EACCES: PermissionDenied,
    _errno.EPERM: PermissionDenied,
    _errno.ENOENT: QueueNotFound,
    _errno.EMSGSIZE: MessageTooBig,
    _errno.EIDRM: QueueDeleted,
}


def strerror(err: int) -> str:
    """libipcq's text for an errno value (ipcq_strerror)."""
    text = _lib.lib.ipcq_strerror(-abs(err))
    return text.decode(errors="replace") if text else _errno.errorcode.get(abs(err), str(err))


def make_error(err: int, what: str, explanation: Optional[str] = None) -> Error:
    """The exception for a negative errno value err returned by what."""
    err = abs(err)
    cls = _CLASSES.get(err, Error)
    msg = f"{what}: {strerror(err)}"
    if explanation:
        msg += f" ({explanation})"
    exc = cls(err, msg)
    exc.explanation = explanation or ""
    return exc
