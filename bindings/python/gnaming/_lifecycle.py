"""Interpreter exit: every live handle is closed at `atexit`, before Python finalizes, so no library
thread calls into Python while the interpreter is being torn down.

Objects register themselves here when they start and leave when they close; the set is weak so a
forgotten handle can still be collected (its `__del__` closes it).
"""

from __future__ import annotations

import atexit
import threading
import weakref
from typing import Protocol

from . import _ffi, _log

# How long the exit hook lets the runtime's threads finish.
_SHUTDOWN_TIMEOUT_MS = 5000


class _Closable(Protocol):
    def _close_at_exit(self) -> None: ...


_live: "weakref.WeakSet[_Closable]" = weakref.WeakSet()
_lock = threading.Lock()
_exiting = False


def track(obj: _Closable) -> None:
    with _lock:
        if _exiting:
            raise _ffi.ClosedError("the interpreter is exiting", _ffi.STATUS_CLOSED)
        _live.add(obj)


def untrack(obj: _Closable) -> None:
    with _lock:
        _live.discard(obj)


def exiting() -> bool:
    return _exiting


@atexit.register
def _close_everything() -> None:
    global _exiting
    with _lock:
        _exiting = True
        objs = list(_live)
    # Registrations first (they deregister), then channels and resolvers.
    objs.sort(key=lambda o: getattr(o, "_EXIT_ORDER", 1))
    for obj in objs:
        try:
            obj._close_at_exit()
        except Exception:  # noqa: BLE001 - exit must go on; one failure must not leave others open
            pass
    _log.stop_logging_to_python()
    # Closes anything still running in the library (resolvers started by other code in this
    # process included) and stops its threads before Python finalizes.
    err = _ffi.c_void_p()
    status = _ffi.lib.gn_runtime_shutdown(_SHUTDOWN_TIMEOUT_MS, _ffi.ctypes.byref(err))
    if status != _ffi.STATUS_OK:
        _ffi.lib.gn_error_free(err)
