"""Servers announcing themselves: etcd cluster settings, lease-backed registrations and the
library's statistics. Retrying, keep-alive and the key format all live in libgnaming; this module
only converts arguments and owns the handles.
"""

from __future__ import annotations

import ctypes
import enum
import json
from typing import Any, Optional

from . import _ffi, _lifecycle
from ._handle import CountedHandle

# How long the exit hook waits for each registration's key to be deleted.
_EXIT_CLOSE_TIMEOUT_S = 2.0


def _ms(seconds: float, what: str) -> int:
    ms = int(round(seconds * 1000))
    if not 0 <= ms <= 0xFFFFFFFF:
        raise _ffi.InvalidArgumentError(f"{what} is out of range: {seconds} s", 1)
    return ms


def configure_cluster(name: str = "", *, endpoints: str, dial_timeout: Optional[float] = None,
                      request_timeout: Optional[float] = None, ca: Optional[str] = None,
                      cert: Optional[str] = None, key: Optional[str] = None, user: Optional[str] = None,
                      password: Optional[str] = None) -> None:
    """Defines etcd cluster `name` ("" is the default cluster, used by `etcd:///svc`; other names by
    `etcd://NAME/svc` and `Registration(cluster=NAME)`). `endpoints` is "host:port,host:port";
    timeouts are in seconds; `ca`, `cert`, `key` are PEM file paths for TLS."""
    lib = _ffi.lib
    opts = lib.gn_cluster_options_new()
    if not opts:
        raise MemoryError("gn_cluster_options_new")
    try:
        _ffi.call(lib.gn_cluster_options_set_endpoints, opts, _ffi.encode(endpoints, "endpoints"))
        if dial_timeout is not None:
            _ffi.call(lib.gn_cluster_options_set_dial_timeout_ms, opts, _ms(dial_timeout, "dial_timeout"))
        if request_timeout is not None:
            _ffi.call(lib.gn_cluster_options_set_request_timeout_ms, opts, _ms(request_timeout, "request_timeout"))
        if ca is not None or cert is not None or key is not None:
            enc = [None if v is None else _ffi.encode(v, n) for v, n in ((ca, "ca"), (cert, "cert"), (key, "key"))]
            _ffi.call(lib.gn_cluster_options_set_tls, opts, *enc)
        if user is not None or password is not None:
            _ffi.call(lib.gn_cluster_options_set_auth, opts, _ffi.encode(user or "", "user"),
                      _ffi.encode(password or "", "password"))
        _ffi.call(lib.gn_cluster_register, _ffi.encode(name, "name"), opts)
    finally:
        lib.gn_cluster_options_free(opts)


def configure_zk(name: str = "", *, servers: str, digest: Optional[tuple[str, str]] = None,
                 node_acl: str = "open") -> None:
    """Defines ZooKeeper ensemble `name` ("" is the default ensemble, used by `zk:///path`; other
    names by `zk://NAME/path`, for resolvers and registrations alike). `servers` is a connect string,
    "host:port,host:port" with an optional chroot ("/apps/prod"); `digest` is a (user, password)
    pair sent on every session; `node_acl` is the ACL of the nodes registrations create: "open",
    "creator-all" or "creator-all-anyone-read" (see `gn_zk_options_set_node_acl` in gnaming.h)."""
    lib = _ffi.lib
    opts = lib.gn_zk_options_new()
    if not opts:
        raise MemoryError("gn_zk_options_new")
    try:
        _ffi.call(lib.gn_zk_options_set_servers, opts, _ffi.encode(servers, "servers"))
        if digest is not None:
            user, password = digest
            _ffi.call(lib.gn_zk_options_set_digest, opts, _ffi.encode(user, "user"), _ffi.encode(password, "password"))
        _ffi.call(lib.gn_zk_options_set_node_acl, opts, _ffi.encode(node_acl, "node_acl"))
        _ffi.call(lib.gn_zk_register, _ffi.encode(name, "name"), opts)
    finally:
        lib.gn_zk_options_free(opts)


class RegistrationState(enum.IntEnum):
    REGISTERING = 0  #: the first registration attempt is under way
    REGISTERED = 1  #: the key exists under a live lease
    RETRYING = 2  #: the lease or key was lost; registering again
    CLOSED = 3  #: closed; the key was deleted (or its lease will expire)
    WARMING_UP = 4  #: waiting out the warm-up; nothing is in etcd yet


class Registration:
    """Announces `address` under `service` in etcd until closed; with ``with``, the key is deleted
    on exit so watchers drop the address at once.

    Starting returns at once and the library keeps retrying in the background; call `wait()` to
    block until registered. `cluster` is "" (default cluster), a name given to
    `configure_cluster`, or a single "host:port" endpoint. `ttl` (seconds, at least 1) bounds how
    long the address outlives a crashed process. `metadata` is stored as JSON next to the address;
    `raw_value=True` stores the bare address instead (go-zero's format). `format` writes another
    framework's document and key layout instead of etcd's: "kratos" or "go-micro" (the library checks
    the name; see `gn_registration_options_set_format` in gnaming.h for the layouts). `warmup` (seconds) delays
    every write to etcd, so clients reach the server only once it is warm; `drain()` takes the
    address out of discovery before the server stops.
    """

    _EXIT_ORDER = 0

    def __init__(self, service: str, address: str, *, cluster: str = "", ttl: float = 10.0,
                 metadata: Any = None, raw_value: bool = False, format: str = "etcd",
                 warmup: float = 0.0) -> None:
        self.service = service
        self.address = address
        self._handle: Optional[CountedHandle] = None
        lib = _ffi.lib
        opts = lib.gn_registration_options_new()
        if not opts:
            raise MemoryError("gn_registration_options_new")
        try:
            _ffi.call(lib.gn_registration_options_set_cluster, opts, _ffi.encode(cluster, "cluster"))
            _ffi.call(lib.gn_registration_options_set_ttl_ms, opts, _ms(ttl, "ttl"))
            if metadata is not None:
                _ffi.call(lib.gn_registration_options_set_metadata_json, opts,
                          _ffi.encode(json.dumps(metadata), "metadata"))
            _ffi.call(lib.gn_registration_options_set_raw_value, opts, bool(raw_value))
            _ffi.call(lib.gn_registration_options_set_format, opts, _ffi.encode(format, "format"))
            _ffi.call(lib.gn_registration_options_set_warmup_ms, opts, _ms(warmup, "warmup"))
            _lifecycle.track(self)
            out = ctypes.c_void_p()
            try:
                _ffi.call(lib.gn_registration_start, _ffi.encode(service, "service"),
                          _ffi.encode(address, "address"), opts, ctypes.byref(out))
            except BaseException:
                _lifecycle.untrack(self)
                raise
            # wait, state and close may run on several threads at once; the handle is freed only
            # after the last of their C calls has returned.
            self._handle = CountedHandle(out.value, _ffi.lib.gn_registration_free, "registration")
        finally:
            lib.gn_registration_options_free(opts)

    def wait(self, timeout: Optional[float] = None) -> None:
        """Blocks until the address is registered; raises `gnaming.TimeoutError` after `timeout`
        seconds (None: no limit) and `gnaming.ClosedError` once closed."""
        ms = -1 if timeout is None else _ms(timeout, "timeout")
        with self._handle.use() as ptr:
            _ffi.call(_ffi.lib.gn_registration_wait, ptr, ms)

    @property
    def state(self) -> RegistrationState:
        try:
            with self._handle.use() as ptr:
                return RegistrationState(_ffi.lib.gn_registration_get_state(ptr))
        except _ffi.ClosedError:
            return RegistrationState.CLOSED

    def close(self, timeout: float = 5.0) -> None:
        """Deletes the key (waiting at most `timeout` seconds; after that the lease expires on its
        own) and stops the keep-alive; `wait()` calls in other threads end with `ClosedError`.
        Idempotent and thread-safe: a close racing another returns when the first is done. Raises
        if the key could not be deleted in time; the handle is released either way, once no other
        call on it is running."""
        ms = _ms(timeout, "timeout")
        handle = getattr(self, "_handle", None)
        if handle is None:
            return
        _lifecycle.untrack(self)
        handle.close(lambda ptr: _ffi.call(_ffi.lib.gn_registration_close, ptr, ms))

    def drain(self, seconds: float, timeout: float = 5.0) -> None:
        """Deletes the key, then waits `seconds` (counted from etcd's confirmation) for clients to
        see that and stop picking this address while the server keeps answering, and returns: stop
        the server then (`server.stop(grace)` lets RPCs in flight finish). While etcd is unreachable
        the deletion is retried for up to `timeout` seconds; if it is not confirmed by then, it still
        waits `seconds` and raises `gnaming.TimeoutError` (the key goes when its lease expires).
        During the warm-up nothing is in etcd: it closes and returns at once. Afterwards the
        registration is closed; a later `drain()` or `close()` returns at once. Raises
        `gnaming.BadStateError` inside a resolver callback, where it must not block."""
        drain_ms, timeout_ms = _ms(seconds, "seconds"), _ms(timeout, "timeout")
        handle = getattr(self, "_handle", None)
        if handle is None:
            return
        _lifecycle.untrack(self)
        handle.close(lambda ptr: _ffi.call(_ffi.lib.gn_registration_drain, ptr, drain_ms, timeout_ms))

    def _close_at_exit(self) -> None:
        self.close(_EXIT_CLOSE_TIMEOUT_S)

    def __enter__(self) -> "Registration":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        # Unreachable, so no call can be running; the free closes it (waiting at most 1 s).
        handle = getattr(self, "_handle", None)
        if handle is not None:
            handle.close()

    def __repr__(self) -> str:
        return f"<gnaming.Registration {self.service!r} {self.address!r} {self.state.name}>"


def stats() -> dict:
    """The library's counters (resolvers, registrations, etcd connections...) as a dict."""
    return json.loads(_ffi.take_string(_ffi.lib.gn_stats_json))
