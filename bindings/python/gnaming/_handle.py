"""Native handles shared by threads: the C free runs once, after the handle is closed and the last
C call running on it has returned, however `close` races those calls.

The C contract of every handle says its `gn_*_free` must be the last call on it. A Python object
cannot promise that by swapping its pointer out under a lock: a thread that read the pointer just
before may still be about to enter C, or be inside C, when the closer frees it. So every call takes
a use of the handle for its whole duration, and whoever drops the last use frees it.
"""

from __future__ import annotations

import threading
from contextlib import contextmanager
from typing import Callable, Iterator, Optional

from . import _ffi


class CountedHandle:
    """A C handle (`ptr`) with its `free` function; `what` names it in errors ("the resolver is
    closed")."""

    def __init__(self, ptr: int, free: Callable[[int], None], what: str) -> None:
        self._ptr = ptr
        self._free = free
        self._what = what
        self._users = 0
        self._closed = False
        self._freed = False
        self._lock = threading.Lock()

    def acquire(self) -> int:
        """A use of the handle, for one C call; raises `ClosedError` once closed. Pair with
        `release`."""
        with self._lock:
            if self._closed:
                raise _ffi.ClosedError(f"the {self._what} is closed", _ffi.STATUS_CLOSED)
            self._users += 1
            return self._ptr

    def release(self) -> None:
        with self._lock:
            self._users -= 1
            free = self._closed and self._users == 0 and not self._freed
            self._freed = self._freed or free
        if free:
            self._free(self._ptr)

    @contextmanager
    def use(self) -> Iterator[int]:
        """``with handle.use() as ptr:`` around a C call on `ptr`."""
        ptr = self.acquire()
        try:
            yield ptr
        finally:
            self.release()

    def close(self, close: Optional[Callable[[int], None]] = None) -> None:
        """Marks the handle closed, so new calls raise `ClosedError`, and runs `close(ptr)` (the C
        close, which wakes calls blocked on the handle); the free follows once no call is running.
        Every closer runs `close`, not only the first, so that each returns only when the C close
        does. Once freed, does nothing. Exceptions from `close` propagate; the handle is still
        released."""
        with self._lock:
            if self._freed:
                return
            self._closed = True
            # The closing call is a user too: calls it wakes return while it is still running, and
            # their release() must not free the handle under it.
            self._users += 1
        try:
            if close is not None:
                close(self._ptr)
        finally:
            self.release()

    @property
    def closed(self) -> bool:
        return self._closed
