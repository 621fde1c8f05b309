"""Library log events into Python's `logging`, under "gnaming.lib.<module>". Opt-in: the library
logs nothing to Python until `log_to_python()` is called (GNAMING_LOG still logs to stderr)."""

from __future__ import annotations

import itertools
import logging
import threading
from typing import Optional

from . import _ffi

# gn_log_level values, most severe first, and the logging level each maps to.
_LEVELS = [(1, logging.ERROR), (2, logging.WARNING), (3, logging.INFO), (4, logging.DEBUG), (5, 5)]
_TO_PYTHON = dict(_LEVELS)

# How long removing the sink waits for log calls that are still running.
_DRAIN_TIMEOUT_S = 2.0

_lock = threading.Lock()
# user_data of the installed sink → set by its `drop`, which runs after its last call.
_dropped: dict[int, threading.Event] = {}
_current: Optional[int] = None
_ids = itertools.count(1)


def _on_log(user_data: Optional[int], level: int, target: Optional[bytes], message: Optional[bytes]) -> None:
    try:
        name = "gnaming.lib." + (target or b"").decode("utf-8", "replace").replace("::", ".")
        logging.getLogger(name).log(_TO_PYTHON.get(level, logging.DEBUG), "%s",
                                    (message or b"").decode("utf-8", "replace"))
    except BaseException:  # noqa: BLE001 - nothing may unwind into the library's thread
        pass


def _on_drop(user_data: Optional[int]) -> None:
    event = _dropped.pop(user_data or 0, None)
    if event is not None:
        event.set()


# Module-level so they outlive the sink: the library may call them until `drop` has run.
_CALL = _ffi.LOG_CALL(_on_log)
_DROP = _ffi.DROP_CALL(_on_drop)


def _set(call: _ffi.LOG_CALL, max_level: int) -> None:
    """Installs a sink (or none) and waits for the previous one's last call to end."""
    global _current
    key = next(_ids) if max_level > 0 else None
    if key is not None:
        _dropped[key] = threading.Event()
    previous = _dropped.get(_current) if _current is not None else None
    try:
        _ffi.call(_ffi.lib.gn_log_set_callback, _ffi.gn_log_callback(key, call, _DROP), max_level)
    except BaseException:
        _dropped.pop(key, None)
        raise
    _current = key
    if previous is not None:
        previous.wait(_DRAIN_TIMEOUT_S)


def log_to_python(level: int = logging.INFO) -> None:
    """Sends the library's log events at `level` and above (a `logging` level) to the
    "gnaming.lib.*" loggers. Calls come from library threads. Replaces an earlier sink."""
    max_level = max((c for c, py in _LEVELS if py >= level), default=0)
    with _lock:
        _set(_CALL if max_level else _ffi.LOG_CALL(), max_level)


def stop_logging_to_python() -> None:
    """Removes the sink; returns once no log call into Python is running (waiting at most
    2 s)."""
    with _lock:
        if _current is not None:
            _set(_ffi.LOG_CALL(), 0)
