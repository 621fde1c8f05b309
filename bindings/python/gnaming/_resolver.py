"""Resolvers: a target string in, complete address lists out — as callbacks on a library thread, as
a blocking iterator (`next(timeout)`), or as an asyncio async iterator.

Callbacks reach Python through two module-level ctypes trampolines (kept alive for the life of the
process) and a table from an integer `user_data` to the Python handler; the library's `drop` removes
the entry, exactly once.
"""

from __future__ import annotations

import asyncio
import ctypes
import enum
import itertools
import json
import logging
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Optional

from . import _ffi, _lifecycle
from ._handle import CountedHandle

log = logging.getLogger("gnaming")

# Slices of a blocking wait, so Ctrl-C interrupts `next()` and `for update in resolver` promptly.
_WAIT_SLICE_S = 0.25


class AddressFamily(enum.IntEnum):
    """How to dial `Address.addr`."""

    IPV4 = 0  #: "a.b.c.d:port"
    IPV6 = 1  #: "[v6]:port"
    UNIX = 2  #: "unix:/path"
    NAME = 3  #: "host:port" or an opaque string the gRPC stack resolves itself


class AddressKind(enum.IntEnum):
    BACKEND = 0  #: a server that handles RPCs
    BALANCER = 1  #: a grpclb load balancer


@dataclass(frozen=True)
class Address:
    """One entry of an address list."""

    addr: str
    family: AddressFamily
    kind: AddressKind
    #: Relative share of traffic, at least 1.
    weight: int
    #: 0..N-1 when the target asked for N connections to `addr` (`#N`).
    copy_index: int
    #: Metadata as JSON text exactly as the source had it, or None.
    metadata_json: Optional[str]

    @property
    def metadata(self) -> Any:
        """The metadata parsed from JSON, or None."""
        return None if self.metadata_json is None else json.loads(self.metadata_json)


@dataclass(frozen=True)
class Update:
    """A complete address list. When `ok` is False the source could not be read: `addresses` is the
    last good list (empty if there was none) and `error` says why."""

    sequence: int
    ok: bool
    error: Optional[str]
    addresses: tuple[Address, ...]
    #: The service config chosen for Python clients, as JSON text, or None.
    service_config: Optional[str]

    @classmethod
    def _from_c(cls, ptr: int) -> "Update":
        lib = _ffi.lib
        addresses = []
        for i in range(lib.gn_update_address_count(ptr)):
            a = lib.gn_update_address(ptr, i).contents
            addresses.append(Address(
                addr=a.addr.decode("utf-8", "replace"),
                family=AddressFamily(a.family),
                kind=AddressKind(a.kind),
                weight=a.weight,
                copy_index=a.copy_index,
                metadata_json=_ffi.optional_str(a.metadata_json),
            ))
        return cls(
            sequence=lib.gn_update_sequence(ptr),
            ok=lib.gn_update_state(ptr) == 0,
            error=_ffi.optional_str(lib.gn_update_error_message(ptr)),
            addresses=tuple(addresses),
            service_config=_ffi.optional_str(lib.gn_update_service_config(ptr)),
        )


# ---- callback plumbing -------------------------------------------------------------------------

_handlers: dict[int, Callable[[Update], None]] = {}
# Set by the library's `drop` of each callback resolver, so every close() can wait for it.
_dropped: dict[int, threading.Event] = {}
# The key of the resolver whose callback this thread is running, if any.
_calling = threading.local()
_next_id = itertools.count(1)


def _on_call(user_data: Optional[int], update_ptr: Optional[int]) -> None:
    handler = _handlers.get(user_data or 0)
    if handler is None or not update_ptr:
        return
    _calling.key = user_data
    try:
        handler(Update._from_c(update_ptr))
    except BaseException:  # noqa: BLE001 - an exception must not cross into the library's thread
        log.exception("gnaming: update callback raised")
    finally:
        _calling.key = None


def _on_drop(user_data: Optional[int]) -> None:
    _handlers.pop(user_data or 0, None)
    dropped = _dropped.pop(user_data or 0, None)
    if dropped is not None:
        dropped.set()


# Module-level so they outlive every resolver: the library may call them until `drop` has run.
_CALL = _ffi.UPDATE_CALL(_on_call)
_DROP = _ffi.DROP_CALL(_on_drop)


def _start(target: str, handler: Optional[Callable[[Update], None]], client_language: str) -> "_Handle":
    """Starts a C resolver; with `handler` None it is a pull resolver."""
    target_b = _ffi.encode(target, "target")
    opts = _ffi.lib.gn_resolver_options_new()
    if not opts:
        raise MemoryError("gn_resolver_options_new")
    try:
        _ffi.call(_ffi.lib.gn_resolver_options_set_client_language, opts, _ffi.encode(client_language, "client_language"))
        key = next(_next_id)
        dropped = None
        if handler is not None:
            _handlers[key] = handler
            dropped = _dropped[key] = threading.Event()
            cb = _ffi.gn_update_callback(key, _CALL, _DROP)
        else:
            cb = _ffi.gn_update_callback(None, _ffi.UPDATE_CALL(), _ffi.DROP_CALL())
        out = ctypes.c_void_p()
        # On failure the library has already run `drop`, which removed the handler.
        _ffi.call(_ffi.lib.gn_resolver_start, target_b, opts, cb, ctypes.byref(out))
        return _Handle(out.value, key, dropped)
    finally:
        _ffi.lib.gn_resolver_options_free(opts)


class _Handle(CountedHandle):
    """A C resolver handle: counted like every handle, and a close returns only after the callback's
    last call and `drop`."""

    def __init__(self, ptr: int, key: int, dropped: Optional[threading.Event]) -> None:
        super().__init__(ptr, _ffi.lib.gn_resolver_free, "resolver")
        self._key = key
        self._dropped = dropped

    def close(self) -> None:
        # `gn_resolver_close` returns only once no callback runs (unless made from inside the
        # callback), so a second close() waits as the first does. ctypes drops the GIL meanwhile.
        super().close(_ffi.lib.gn_resolver_close)
        self._wait_for_drop()

    def _wait_for_drop(self) -> None:
        """A close that raced another (which may even have freed the handle from inside the
        callback) still returns only after the callback's last call and `drop`; from inside this
        resolver's own callback it cannot wait for itself."""
        if self._dropped is not None and getattr(_calling, "key", None) != self._key:
            self._dropped.wait()


class Resolver:
    """Resolves `target` in the background until closed.

    With `on_update`, every update is passed to it on a library thread (calls never overlap; when
    updates come faster than the callback returns, it gets the latest complete list). Exceptions it
    raises are logged to the "gnaming" logger. Without `on_update`, pull updates with `next()` or
    iterate: ``for update in resolver: ...``.

    Close it (or use ``with``): `close()` returns once no callback runs and none will. Keep a
    reference while it should run: a collected resolver is closed.
    """

    def __init__(self, target: str, on_update: Optional[Callable[[Update], None]] = None, *,
                 client_language: str = "python") -> None:
        self.target = target
        self._callback = on_update is not None
        _lifecycle.track(self)
        try:
            self._handle = _start(target, on_update, client_language)
        except BaseException:
            _lifecycle.untrack(self)
            raise

    def next(self, timeout: Optional[float] = None) -> Update:
        """Waits up to `timeout` seconds (None: no limit) for an update newer than the last one
        taken. Raises `gnaming.TimeoutError` when none came, `gnaming.ClosedError` once closed."""
        if self._callback:
            raise _ffi.BadStateError("next() needs a resolver started without on_update", 6)
        deadline = None if timeout is None else time.monotonic() + max(timeout, 0.0)
        with self._handle.use() as ptr:
            while True:
                wait = _WAIT_SLICE_S if deadline is None else min(_WAIT_SLICE_S, max(deadline - time.monotonic(), 0.0))
                out = ctypes.c_void_p()
                err = ctypes.c_void_p()
                status = _ffi.lib.gn_resolver_next(ptr, int(wait * 1000), ctypes.byref(out), ctypes.byref(err))
                if status == _ffi.STATUS_OK:
                    try:
                        return Update._from_c(out.value)
                    finally:
                        _ffi.lib.gn_update_free(out.value)
                if status == _ffi.STATUS_TIMEOUT and (deadline is None or time.monotonic() < deadline):
                    _ffi.lib.gn_error_free(err)
                    continue
                raise _ffi.error_from(status, err)

    def __iter__(self) -> Iterator[Update]:
        """Yields updates until the resolver is closed."""
        while True:
            try:
                yield self.next()
            except _ffi.ClosedError:
                return

    def resolve_now(self) -> None:
        """Asks the source to look again now (rate-limited by the backend; static targets ignore it)."""
        with self._handle.use() as ptr:
            _ffi.call(_ffi.lib.gn_resolver_resolve_now, ptr)

    def close(self) -> None:
        """Stops resolving. Idempotent, thread-safe, allowed inside the callback."""
        handle = getattr(self, "_handle", None)
        if handle is not None:
            handle.close()
        _lifecycle.untrack(self)

    @property
    def closed(self) -> bool:
        return self._handle.closed

    def _close_at_exit(self) -> None:
        self.close()

    def __enter__(self) -> "Resolver":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        handle = getattr(self, "_handle", None)
        if handle is not None:
            handle.close()

    def __repr__(self) -> str:
        return f"<gnaming.Resolver {self.target!r}{' closed' if self.closed else ''}>"


class AsyncResolver:
    """The asyncio form: ``async with AsyncResolver(target) as r: async for update in r: ...``.

    Updates arrive on a library thread and are handed to the event loop that created the resolver;
    only the latest undelivered update is kept, as in the C library. Iteration ends when closed.
    """

    def __init__(self, target: str, *, client_language: str = "python") -> None:
        self._loop = asyncio.get_running_loop()
        self._latest: Optional[Update] = None
        self._wakeup = asyncio.Event()
        self._closed = False
        self._resolver = Resolver(target, self._from_thread, client_language=client_language)

    def _from_thread(self, update: Update) -> None:
        try:
            self._loop.call_soon_threadsafe(self._deliver, update)
        except RuntimeError:
            # The loop was closed before the resolver: nobody is left to read the update.
            pass

    def _deliver(self, update: Update) -> None:
        self._latest = update
        self._wakeup.set()

    async def next(self, timeout: Optional[float] = None) -> Update:
        """The next update; raises `gnaming.TimeoutError` after `timeout` seconds and
        `gnaming.ClosedError` once closed."""
        while self._latest is None:
            if self._closed:
                raise _ffi.ClosedError("the resolver is closed", _ffi.STATUS_CLOSED)
            try:
                await asyncio.wait_for(self._wakeup.wait(), timeout)
            except asyncio.TimeoutError:
                raise _ffi.TimeoutError("no update in time", _ffi.STATUS_TIMEOUT) from None
            self._wakeup.clear()
        update, self._latest = self._latest, None
        return update

    def __aiter__(self) -> "AsyncResolver":
        return self

    async def __anext__(self) -> Update:
        try:
            return await self.next()
        except _ffi.ClosedError:
            raise StopAsyncIteration from None

    def close(self) -> None:
        """Stops resolving; a waiting `next()` ends with ClosedError (iteration stops)."""
        self._closed = True
        self._resolver.close()
        self._wakeup.set()

    @property
    def closed(self) -> bool:
        return self._closed

    async def __aenter__(self) -> "AsyncResolver":
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()
