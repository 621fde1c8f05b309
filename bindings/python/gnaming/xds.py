"""gRPC's own xDS client fed by libgnaming: an ADS server on loopback that serves every target it
discovers (etcd, DNS, static lists), so a plain ``grpc.insecure_channel("xds:///echo")`` follows the
address list in place, with weights, without reconnecting backends that did not change.

    import gnaming.xds
    gnaming.xds.install_bootstrap()                 # before the process's first xds: channel
    channel = grpc.insecure_channel("xds:///echo")  # etcd:///echo, followed by grpcio itself

The server, the listener-name mapping, the bootstrap and its environment rules all live in
libgnaming; this module only converts arguments and owns the handles.

Listener names: ``xds:///echo`` is ``<default scheme>:///echo`` (etcd unless configured otherwise);
any full target can be named too, percent-encoded, which `xds_target` writes for you.
"""

from __future__ import annotations

import ctypes
import json
import os
from typing import Any, Optional

from . import _ffi, _lifecycle
from ._handle import CountedHandle

#: The variable grpcio reads its bootstrap JSON from (at its first xds: channel).
BOOTSTRAP_ENV = "GRPC_XDS_BOOTSTRAP_CONFIG"

# The C environment, read back after the library's setenv: Python's os.environ is a copy.
_libc = ctypes.CDLL(None)
_libc.getenv.restype = ctypes.c_char_p
_libc.getenv.argtypes = [ctypes.c_char_p]


class _Options:
    """A `gn_xds_options` built from keyword arguments, freed on exit from ``with``."""

    def __init__(self, listen: Optional[str], default_scheme: Optional[str], node_id_check: bool,
                 allow_non_loopback: bool, dns_nameserver: Optional[str]) -> None:
        lib = _ffi.lib
        self.ptr = lib.gn_xds_options_new()
        if not self.ptr:
            raise MemoryError("gn_xds_options_new")
        try:
            if listen is not None:
                _ffi.call(lib.gn_xds_options_set_listen, self.ptr, _ffi.encode(listen, "listen"))
            if default_scheme is not None:
                _ffi.call(lib.gn_xds_options_set_default_scheme, self.ptr,
                          _ffi.encode(default_scheme, "default_scheme"))
            _ffi.call(lib.gn_xds_options_set_node_id_check, self.ptr, bool(node_id_check))
            _ffi.call(lib.gn_xds_options_set_allow_non_loopback, self.ptr, bool(allow_non_loopback))
            if dns_nameserver is not None:
                self._set_resolver_options(dns_nameserver)
        except BaseException:
            lib.gn_xds_options_free(self.ptr)
            raise

    def _set_resolver_options(self, dns_nameserver: str) -> None:
        lib = _ffi.lib
        ropts = lib.gn_resolver_options_new()
        if not ropts:
            raise MemoryError("gn_resolver_options_new")
        try:
            _ffi.call(lib.gn_resolver_options_set_dns_nameserver, ropts,
                      _ffi.encode(dns_nameserver, "dns_nameserver"))
            _ffi.call(lib.gn_xds_options_set_resolver_options, self.ptr, ropts)
        finally:
            lib.gn_resolver_options_free(ropts)

    def __enter__(self) -> int:
        return self.ptr

    def __exit__(self, *exc: object) -> None:
        _ffi.lib.gn_xds_options_free(self.ptr)


class XdsServer:
    """An ADS server of its own (most programs want the process-wide one: `install_bootstrap`).

    - `listen`: "127.0.0.1:0" (the default: an ephemeral port), "[::1]:0", "localhost:PORT",
      "unix:/path" or "unix:" (a socket with mode 0600 in a new private directory). A non-loopback
      address is refused unless `allow_non_loopback`.
    - `default_scheme`: what a bare ``xds:///name`` means ("etcd" unless set, or "dns", ...).
    - `node_id_check`: answer only clients whose bootstrap node id is this server's.
    - `dns_nameserver`: the DNS server for the `dns:` targets it resolves ("10.0.0.1:5353").

    Give `bootstrap_json` to a client (``GRPC_XDS_BOOTSTRAP_CONFIG``, or the file named by
    ``GRPC_XDS_BOOTSTRAP``). Close it (or use ``with``): streams end and its resolvers stop.
    """

    _EXIT_ORDER = 1

    def __init__(self, *, listen: Optional[str] = None, default_scheme: Optional[str] = None,
                 node_id_check: bool = False, allow_non_loopback: bool = False,
                 dns_nameserver: Optional[str] = None) -> None:
        self._handle: Optional[CountedHandle] = None
        out = ctypes.c_void_p()
        with _Options(listen, default_scheme, node_id_check, allow_non_loopback, dns_nameserver) as opts:
            _lifecycle.track(self)
            try:
                _ffi.call(_ffi.lib.gn_xds_server_start, opts, ctypes.byref(out))
            except BaseException:
                _lifecycle.untrack(self)
                raise
        self._handle = CountedHandle(out.value, _ffi.lib.gn_xds_server_free, "xDS server")
        try:
            # Fixed for the server's life, and still readable after close() for messages.
            self.address: str = _ffi.take_string(_ffi.lib.gn_xds_server_address, out.value)
            self.bootstrap_json: str = _ffi.take_string(_ffi.lib.gn_xds_server_bootstrap_json, out.value)
        except BaseException:
            self.close()
            raise

    @property
    def bootstrap(self) -> dict:
        """`bootstrap_json` parsed."""
        return json.loads(self.bootstrap_json)

    def xds_target(self, target: str) -> str:
        """`target` in the ``xds:///`` form this server maps back to it."""
        with self._handle.use() as ptr:
            return _ffi.take_string(_ffi.lib.gn_xds_target, ptr, _ffi.encode(target, "target"))

    def close(self) -> None:
        """Stops listening, ends every stream and closes the server's resolvers. Idempotent and
        thread-safe; the handle is released once no other call on it is running."""
        handle = self._handle
        if handle is not None:
            _lifecycle.untrack(self)
            handle.close(_ffi.lib.gn_xds_server_close)

    def _close_at_exit(self) -> None:
        self.close()

    @property
    def closed(self) -> bool:
        return self._handle is None or self._handle.closed

    def __enter__(self) -> "XdsServer":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        # Unreachable, so no call can be running; the free closes it.
        handle = getattr(self, "_handle", None)
        if handle is not None:
            handle.close()

    def __repr__(self) -> str:
        return f"<gnaming.xds.XdsServer {self.address}{' closed' if self.closed else ''}>"


def xds_target(target: str, server: Optional[XdsServer] = None) -> str:
    """The ``xds:///`` form of a libgnaming target: ``xds:///echo`` for ``etcd:///echo`` (when the
    scheme is the server's default one), else ``xds:///`` and the percent-encoded target. Without
    `server`, for the process-wide server: its default scheme is etcd unless `configure_default`
    chose another."""
    if server is not None:
        return server.xds_target(target)
    return _ffi.take_string(_ffi.lib.gn_xds_target, None, _ffi.encode(target, "target"))


def configure_default(*, listen: Optional[str] = None, default_scheme: Optional[str] = None,
                      node_id_check: bool = False, allow_non_loopback: bool = False,
                      dns_nameserver: Optional[str] = None) -> None:
    """Options of the process-wide server (arguments as for `XdsServer`). Only before its first use
    (`default_bootstrap_json`, `install_bootstrap`); later it raises `gnaming.BadStateError`."""
    with _Options(listen, default_scheme, node_id_check, allow_non_loopback, dns_nameserver) as opts:
        _ffi.call(_ffi.lib.gn_xds_default_configure, opts)


def default_bootstrap_json() -> str:
    """The bootstrap of the process-wide server, which starts on first use (after ``os.fork`` the
    child gets a server of its own)."""
    return _ffi.take_string(_ffi.lib.gn_xds_default_bootstrap_json)


def default_bootstrap() -> dict:
    """`default_bootstrap_json` parsed."""
    return json.loads(default_bootstrap_json())


def install_bootstrap() -> str:
    """Points grpcio at the process-wide server: sets ``GRPC_XDS_BOOTSTRAP_CONFIG`` to its bootstrap
    and returns that JSON. Call it before the process's first xds: channel: grpcio reads the
    bootstrap once, then never again.

    Raises `gnaming.BadStateError` when ``GRPC_XDS_BOOTSTRAP`` or ``GRPC_XDS_BOOTSTRAP_CONFIG``
    already names another bootstrap (another xDS user in this process would lose its own). A
    bootstrap this library installed before ``os.fork`` is replaced by the child's."""
    _ffi.call(_ffi.lib.gn_xds_install_bootstrap)
    value = _libc.getenv(BOOTSTRAP_ENV.encode())
    if value is not None:
        # The library set the C environment; keep Python's copy of it the same.
        os.environ[BOOTSTRAP_ENV] = value.decode("utf-8")
        return value.decode("utf-8")
    return default_bootstrap_json()


def stats() -> dict[str, Any]:
    """The library's xDS counters (streams, pushes, ACKs, NACKs, resolvers), from `gnaming.stats()`."""
    from ._registration import stats as all_stats

    return {k: v for k, v in all_stats().items() if k.startswith("xds_")}


__all__ = [
    "BOOTSTRAP_ENV", "XdsServer", "configure_default", "default_bootstrap", "default_bootstrap_json",
    "install_bootstrap", "stats", "xds_target",
]
