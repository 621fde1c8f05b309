"""The ctypes layer: finds and loads libgnaming, checks its ABI version, declares every C function
the package calls, and turns failed statuses into `GnamingError` subclasses.

Nothing outside this module touches `ctypes.CDLL` directly, so the C contract lives in one place.
"""

from __future__ import annotations

import builtins
import ctypes
import os
from ctypes import (
    CFUNCTYPE,
    POINTER,
    Structure,
    c_bool,
    c_char_p,
    c_int,
    c_int64,
    c_size_t,
    c_uint32,
    c_uint64,
    c_void_p,
)
from pathlib import Path
from typing import Callable, Optional

#: The `GN_ABI_VERSION` this package was written for; a library reporting another one is refused.
ABI_VERSION = 1

LIBRARY_ENV = "GNAMING_LIBRARY"
LIBRARY_NAME = "libgnaming.so"


class GnamingError(Exception):
    """A libgnaming call failed. `status` is the C `gn_status` value, `message` the library's text."""

    status = -1

    def __init__(self, message: str, status: Optional[int] = None) -> None:
        super().__init__(message)
        self.message = message
        if status is not None:
            self.status = status


class InvalidArgumentError(GnamingError, ValueError):
    """An argument was empty, not UTF-8 or out of range."""

    status = 1


class InvalidTargetError(GnamingError, ValueError):
    """A target string could not be parsed; the message names the bad part."""

    status = 2


class UnsupportedSchemeError(GnamingError, ValueError):
    """The target's scheme is not served by this library build."""

    status = 3


class TimeoutError(GnamingError, builtins.TimeoutError):
    """A wait ran out of time."""

    status = 4


class ClosedError(GnamingError):
    """The object was closed."""

    status = 5


class BadStateError(GnamingError):
    """The call does not fit the object's state."""

    status = 6


class UnavailableError(GnamingError, ConnectionError):
    """A server (etcd, DNS) could not be reached or did not answer in time."""

    status = 7


class PermissionDeniedError(GnamingError, PermissionError):
    """A server refused the credentials."""

    status = 8


class NotFoundError(GnamingError, LookupError):
    """Something named does not exist, for example an unknown cluster name."""

    status = 9


class RuntimeStartError(GnamingError):
    """libgnaming's background runtime could not be started."""

    status = 10


class InternalError(GnamingError):
    """A bug inside libgnaming was caught at its boundary; please report the message."""

    status = 11


class LibraryNotFoundError(GnamingError, ImportError):
    """libgnaming.so could not be found or loaded, or has another ABI version."""


_ERRORS = {cls.status: cls for cls in (
    InvalidArgumentError, InvalidTargetError, UnsupportedSchemeError, TimeoutError, ClosedError,
    BadStateError, UnavailableError, PermissionDeniedError, NotFoundError, RuntimeStartError,
    InternalError,
)}


# ---- C types ---------------------------------------------------------------------------------

STATUS_OK = 0
STATUS_TIMEOUT = 4
STATUS_CLOSED = 5


class gn_address(Structure):
    # Fields may be appended in later ABI versions; the struct is only read through pointers.
    _fields_ = [
        ("addr", c_char_p),
        ("family", c_int),
        ("kind", c_int),
        ("weight", c_uint32),
        ("copy_index", c_uint32),
        ("metadata_json", c_char_p),
    ]


UPDATE_CALL = CFUNCTYPE(None, c_void_p, c_void_p)
DROP_CALL = CFUNCTYPE(None, c_void_p)


class gn_update_callback(Structure):
    _fields_ = [("user_data", c_void_p), ("call", UPDATE_CALL), ("drop", DROP_CALL)]


LOG_CALL = CFUNCTYPE(None, c_void_p, c_int, c_char_p, c_char_p)


class gn_log_callback(Structure):
    _fields_ = [("user_data", c_void_p), ("call", LOG_CALL), ("drop", DROP_CALL)]


_err = POINTER(c_void_p)

# name: (restype, argtypes). Every function the package calls, as include/gnaming.h declares it.
_SIGNATURES = {
    "gn_version": (c_char_p, []),
    "gn_abi_version": (c_uint32, []),
    "gn_error_status": (c_int, [c_void_p]),
    "gn_error_message": (c_char_p, [c_void_p]),
    "gn_error_free": (None, [c_void_p]),
    "gn_status_name": (c_char_p, [c_int]),
    "gn_log_set_callback": (c_int, [gn_log_callback, c_int, _err]),
    "gn_resolver_options_new": (c_void_p, []),
    "gn_resolver_options_free": (None, [c_void_p]),
    "gn_resolver_options_set_client_language": (c_int, [c_void_p, c_char_p, _err]),
    "gn_resolver_start": (c_int, [c_char_p, c_void_p, gn_update_callback, POINTER(c_void_p), _err]),
    "gn_resolver_resolve_now": (c_int, [c_void_p, _err]),
    "gn_resolver_next": (c_int, [c_void_p, c_int64, POINTER(c_void_p), _err]),
    "gn_resolver_close": (None, [c_void_p]),
    "gn_resolver_free": (None, [c_void_p]),
    "gn_runtime_configure": (c_int, [c_size_t, _err]),
    "gn_runtime_shutdown": (c_int, [c_uint32, _err]),
    "gn_update_state": (c_int, [c_void_p]),
    "gn_update_error_message": (c_char_p, [c_void_p]),
    "gn_update_sequence": (c_uint64, [c_void_p]),
    "gn_update_address_count": (c_size_t, [c_void_p]),
    "gn_update_address": (POINTER(gn_address), [c_void_p, c_size_t]),
    "gn_update_service_config": (c_char_p, [c_void_p]),
    "gn_update_free": (None, [c_void_p]),
    "gn_cluster_options_new": (c_void_p, []),
    "gn_cluster_options_free": (None, [c_void_p]),
    "gn_cluster_options_set_endpoints": (c_int, [c_void_p, c_char_p, _err]),
    "gn_cluster_options_set_dial_timeout_ms": (c_int, [c_void_p, c_uint32, _err]),
    "gn_cluster_options_set_request_timeout_ms": (c_int, [c_void_p, c_uint32, _err]),
    "gn_cluster_options_set_tls": (c_int, [c_void_p, c_char_p, c_char_p, c_char_p, _err]),
    "gn_cluster_options_set_auth": (c_int, [c_void_p, c_char_p, c_char_p, _err]),
    "gn_cluster_register": (c_int, [c_char_p, c_void_p, _err]),
    "gn_zk_options_new": (c_void_p, []),
    "gn_zk_options_free": (None, [c_void_p]),
    "gn_zk_options_set_servers": (c_int, [c_void_p, c_char_p, _err]),
    "gn_zk_options_set_digest": (c_int, [c_void_p, c_char_p, c_char_p, _err]),
    "gn_zk_options_set_node_acl": (c_int, [c_void_p, c_char_p, _err]),
    "gn_zk_register": (c_int, [c_char_p, c_void_p, _err]),
    "gn_registration_options_new": (c_void_p, []),
    "gn_registration_options_free": (None, [c_void_p]),
    "gn_registration_options_set_cluster": (c_int, [c_void_p, c_char_p, _err]),
    "gn_registration_options_set_ttl_ms": (c_int, [c_void_p, c_uint32, _err]),
    "gn_registration_options_set_metadata_json": (c_int, [c_void_p, c_char_p, _err]),
    "gn_registration_options_set_raw_value": (c_int, [c_void_p, c_bool, _err]),
    "gn_registration_options_set_format": (c_int, [c_void_p, c_char_p, _err]),
    "gn_registration_start": (c_int, [c_char_p, c_char_p, c_void_p, POINTER(c_void_p), _err]),
    "gn_registration_wait": (c_int, [c_void_p, c_int64, _err]),
    "gn_registration_get_state": (c_int, [c_void_p]),
    "gn_registration_close": (c_int, [c_void_p, c_uint32, _err]),
    "gn_registration_free": (None, [c_void_p]),
    "gn_stats_json": (c_int, [POINTER(c_void_p), _err]),
    "gn_string_free": (None, [c_void_p]),
    "gn_resolver_options_set_dns_nameserver": (c_int, [c_void_p, c_char_p, _err]),
    "gn_xds_options_new": (c_void_p, []),
    "gn_xds_options_free": (None, [c_void_p]),
    "gn_xds_options_set_listen": (c_int, [c_void_p, c_char_p, _err]),
    "gn_xds_options_set_allow_non_loopback": (c_int, [c_void_p, c_bool, _err]),
    "gn_xds_options_set_default_scheme": (c_int, [c_void_p, c_char_p, _err]),
    "gn_xds_options_set_node_id_check": (c_int, [c_void_p, c_bool, _err]),
    "gn_xds_options_set_resolver_options": (c_int, [c_void_p, c_void_p, _err]),
    "gn_xds_server_start": (c_int, [c_void_p, POINTER(c_void_p), _err]),
    "gn_xds_server_address": (c_int, [c_void_p, POINTER(c_void_p), _err]),
    "gn_xds_server_bootstrap_json": (c_int, [c_void_p, POINTER(c_void_p), _err]),
    "gn_xds_server_close": (None, [c_void_p]),
    "gn_xds_server_free": (None, [c_void_p]),
    "gn_xds_target": (c_int, [c_void_p, c_char_p, POINTER(c_void_p), _err]),
    "gn_xds_channels_json": (c_int, [c_void_p, c_char_p, POINTER(c_void_p), _err]),
    "gn_xds_default_configure": (c_int, [c_void_p, _err]),
    "gn_xds_default_bootstrap_json": (c_int, [POINTER(c_void_p), _err]),
    "gn_xds_install_bootstrap": (c_int, [_err]),
    # Warm-up and drain.
    "gn_registration_options_set_warmup_ms": (c_int, [c_void_p, c_uint32, _err]),
    "gn_registration_drain": (c_int, [c_void_p, c_uint32, c_uint32, _err]),
}


def _candidates() -> list[Path]:
    """Where to look, in order: $GNAMING_LIBRARY, the package directory (where `pip install`, editable
    or not, put the library it compiled), then the source tree's cargo output (a checkout used in place,
    with no install)."""
    out = []
    env = os.environ.get(LIBRARY_ENV)
    if env:
        out.append(Path(env))
    here = Path(__file__).resolve().parent
    out.append(here / LIBRARY_NAME)
    repo = here.parent.parent.parent
    if (repo / "Cargo.toml").is_file():
        out.append(repo / "target" / "release" / LIBRARY_NAME)
    return out


def _load() -> ctypes.CDLL:
    tried = []
    for path in _candidates():
        if not path.is_file():
            tried.append(f"{path} (missing)")
            continue
        try:
            # CDLL, not PyDLL: every call releases the GIL, so a close that waits for an
            # in-flight callback cannot deadlock against the callback taking the GIL.
            lib = ctypes.CDLL(str(path.resolve()))
        except OSError as e:
            tried.append(f"{path} ({e})")
            continue
        lib.gn_abi_version.restype = c_uint32
        lib.gn_abi_version.argtypes = []
        abi = lib.gn_abi_version()
        if abi != ABI_VERSION:
            raise LibraryNotFoundError(
                f"{path} has ABI version {abi}, this gnaming package needs {ABI_VERSION}; "
                f"rebuild the library or install the matching package")
        return lib
    raise LibraryNotFoundError(
        f"libgnaming not found; set {LIBRARY_ENV} to the path of {LIBRARY_NAME}. Tried: " + "; ".join(tried))


lib = _load()
library_path = lib._name

# Functions are only ever added within one ABI version: a library older than this package lacks some.
_missing = [name for name in _SIGNATURES if not hasattr(lib, name)]
if _missing:
    raise LibraryNotFoundError(
        f"{library_path} is older than this gnaming package: it lacks {', '.join(_missing)}; "
        "install the library and the package from the same release"
    )

for _name, (_restype, _argtypes) in _SIGNATURES.items():
    _fn = getattr(lib, _name)
    _fn.restype = _restype
    _fn.argtypes = _argtypes


def take_string(fn, *args) -> str:
    """Calls a C function whose last output before `err_out` is a library-owned string (`char **`);
    returns it decoded and frees it with `gn_string_free`."""
    out = c_void_p()
    call(fn, *args, ctypes.byref(out))
    try:
        return ctypes.string_at(out.value).decode("utf-8")
    finally:
        lib.gn_string_free(out.value)


def error_from(status: int, err: c_void_p) -> GnamingError:
    """Builds the exception for a failed call and frees the C error object."""
    message = ""
    if err:
        message = (lib.gn_error_message(err) or b"").decode("utf-8", "replace")
        lib.gn_error_free(err)
    if not message:
        message = (lib.gn_status_name(status) or b"").decode()
    cls = _ERRORS.get(status, GnamingError)
    return cls(message, status)


def call(fn: Callable, *args) -> None:
    """Calls a C function whose last parameter is `gn_error **` and raises on failure."""
    err = c_void_p()
    status = fn(*args, ctypes.byref(err))
    if status != STATUS_OK:
        raise error_from(status, err)


def encode(value: str, what: str) -> bytes:
    if not isinstance(value, str):
        raise TypeError(f"{what} must be a str, not {type(value).__name__}")
    if "\0" in value:
        raise InvalidArgumentError(f"{what} contains a NUL character", 1)
    return value.encode("utf-8")


def optional_str(ptr: Optional[bytes]) -> Optional[str]:
    return None if ptr is None else ptr.decode("utf-8", "replace")


def version() -> str:
    """The loaded library's version, "MAJOR.MINOR.PATCH"."""
    return lib.gn_version().decode()
