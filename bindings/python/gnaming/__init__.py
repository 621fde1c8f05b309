"""libgnaming for Python: service discovery (etcd, DNS, static lists) for grpcio.

    import gnaming.grpc
    channel = gnaming.grpc.channel("etcd:///echo")        # grpcio's xds:///echo, fed by gnaming.xds

    with gnaming.Registration("echo", "10.0.0.5:50051"):   # a server announcing itself
        server.wait_for_termination()

The package loads libgnaming.so from $GNAMING_LIBRARY, else from next to this file (where
`pip install` puts it), else from the source tree's target/release (a checkout used in place).
"""

from ._ffi import (
    ABI_VERSION,
    BadStateError,
    ClosedError,
    GnamingError,
    InternalError,
    InvalidArgumentError,
    InvalidTargetError,
    LibraryNotFoundError,
    NotFoundError,
    PermissionDeniedError,
    RuntimeStartError,
    TimeoutError,
    UnavailableError,
    UnsupportedSchemeError,
    library_path,
    version,
)
from ._log import log_to_python, stop_logging_to_python
from ._registration import Registration, RegistrationState, configure_cluster, configure_zk, stats
from ._resolver import Address, AddressFamily, AddressKind, AsyncResolver, Resolver, Update
from . import xds
from .xds import XdsServer, xds_target

__all__ = [
    "ABI_VERSION", "Address", "AddressFamily", "AddressKind", "AsyncResolver", "BadStateError",
    "ClosedError", "GnamingError", "InternalError", "InvalidArgumentError", "InvalidTargetError",
    "LibraryNotFoundError", "NotFoundError", "PermissionDeniedError", "Registration",
    "RegistrationState", "Resolver", "RuntimeStartError", "TimeoutError", "UnavailableError",
    "UnsupportedSchemeError", "Update", "XdsServer", "configure_cluster", "configure_zk", "library_path", "log_to_python", "stats",
    "stop_logging_to_python", "version", "xds", "xds_target",
]
