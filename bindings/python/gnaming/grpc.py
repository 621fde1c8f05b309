"""grpcio channels that follow a libgnaming target through gRPC's own xDS client.

    channel = gnaming.grpc.channel("etcd:///echo")   # grpc.insecure_channel("xds:///echo")

`channel()` returns grpcio's own channel on the target's `xds:///` form, answered by the process's
default xDS server (`gnaming.xds`). grpcio then holds one subchannel per backend and updates them in
place: a change of the list opens a connection to a new backend only, and RPCs in flight (streams
included) are never cut by it. Weights, metadata and the load-balancing policy of the list travel in
the xDS resources; this module only opens channels.

Rules that come from grpcio, not from here:
- One xDS bootstrap per process. The first channel installs the default server's bootstrap; a process
  that already has another one (``GRPC_XDS_BOOTSTRAP`` or a foreign ``GRPC_XDS_BOOTSTRAP_CONFIG``, as
  a service mesh sets) gets `gnaming.BadStateError` rather than a mix-up. `swapping=True` gives the
  older channel that needs no xDS (`gnaming._swapping`).
- After ``os.fork`` the child's first channel closes the channels this module made in the parent
  (they cannot work in the child) and makes sure grpcio's one xDS client of the child talks to the
  child's own server, never to the parent's.
- `#N` (N connections per address) cannot be written in xDS, which refuses an address listed twice:
  the target becomes N channels (`gn_xds_channels_json`), each with its own subchannels, and calls go
  to them in proportion to the entries each holds.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import threading
import time
import weakref
from typing import Any, Callable, Iterable, Optional, Sequence

import grpc
import grpc.aio

from . import _ffi, xds

#: Seconds an old channel of the swapping channel stays open after a change (`swapping=True`).
DEFAULT_GRACE = 30.0

ChannelOptions = Sequence[tuple[str, Any]]

# Gives each of a target's `#N` channels subchannels of its own (grpc-core's
# GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL), so N channels open N connections to an address.
_LOCAL_SUBCHANNEL_POOL = ("grpc.use_local_subchannel_pool", 1)

# How long a forked child waits for its own xDS server to see grpcio's new xDS client, per attempt,
# and how long it leaves the parent's client to be freed before the next (times the attempt).
_FORK_PROBE_WAIT = 0.5
_FORK_PROBE_PAUSE = 0.05
_FORK_PROBE_ATTEMPTS = 8
# A name the server answers at once with an empty list (it is no valid target), so the probe
# channel subscribes without dialling anything.
_FORK_PROBE_TARGET = "xds:///ipv4:"


class _Process:
    """What this module did in the current process: bootstrap installed, xDS channels it opened."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        #: The process this module was imported in: another pid means a forked child.
        self.import_pid = os.getpid()
        #: The process the bootstrap was installed in.
        self.pid: Optional[int] = None
        self.channels: "weakref.WeakSet[Any]" = weakref.WeakSet()

    def after_fork_in_child(self) -> None:
        # A thread of the parent may have held the lock at the fork; it does not exist here.
        self.lock = threading.Lock()


_process = _Process()
os.register_at_fork(after_in_child=_process.after_fork_in_child)


def _installed_bootstrap() -> None:
    """Installs the default server's bootstrap once per process. In a forked child whose parent had
    one installed, first closes the parent's channels (they cannot work here) and waits until
    grpcio's xDS client will be made again from the child's bootstrap."""
    with _process.lock:
        pid = os.getpid()
        if _process.pid == pid:
            return
        # Only a parent with a bootstrap can have left an xDS client of grpcio's in this memory.
        parent_had_xds = _process.import_pid != pid and bool(os.environ.get(xds.BOOTSTRAP_ENV))
        inherited, _process.channels = list(_process.channels), weakref.WeakSet()
        try:
            xds.install_bootstrap()
        except _ffi.BadStateError as e:
            raise _ffi.BadStateError(
                f"{e.message}. gnaming.grpc.channel serves targets through grpcio's xDS client, which "
                "reads one bootstrap per process; pass swapping=True for a channel that needs none",
                e.status) from None
        if parent_had_xds:
            for channel in inherited:
                channel.close()
            _await_fresh_xds_client()
        _process.pid = pid


def _await_fresh_xds_client() -> None:
    """grpcio keeps one xDS client per process while any channel holds it, and frees it some time
    after the last one closes; a channel that found the parent's client would follow the parent's
    server. Opens probe channels until one makes a new client, which this process's server sees as
    a stream; grpcio reads the bootstrap again for every new client, so later ones are ours too."""
    for attempt in range(_FORK_PROBE_ATTEMPTS):
        # A probe made while the old client is being freed takes it back and keeps it alive.
        time.sleep(_FORK_PROBE_PAUSE * attempt)
        streams = xds.stats().get("xds_streams_total", 0)
        probe = grpc.insecure_channel(_FORK_PROBE_TARGET)
        try:
            probe.subscribe(_ignore_state, try_to_connect=True)
            deadline = time.monotonic() + _FORK_PROBE_WAIT
            while time.monotonic() < deadline:
                if xds.stats().get("xds_streams_total", 0) > streams:
                    return
                time.sleep(0.005)
        finally:
            probe.close()
    raise _ffi.BadStateError(
        "xds: after os.fork, grpcio kept the parent's xDS client (is an xDS channel the parent made "
        "outside gnaming.grpc.channel still open?); close it before forking, or start the process with "
        "multiprocessing's 'spawn'", _ffi.BadStateError.status)


def _plan(target: str) -> list[tuple[str, int]]:
    """[(xds target, share)] for `target`, from the library."""
    text = _ffi.take_string(_ffi.lib.gn_xds_channels_json, None, _ffi.encode(target, "target"))
    return [(c["target"], c["share"]) for c in json.loads(text)]


def _schedule(shares: list[int]) -> list[int]:
    """Smooth weighted round robin over indexes: each index appears `share` times, spread out."""
    current = [0] * len(shares)
    total = sum(shares)
    out = []
    for _ in range(total):
        for i, s in enumerate(shares):
            current[i] += s
        best = max(range(len(shares)), key=current.__getitem__)
        current[best] -= total
        out.append(best)
    return out


def _open(open_channel: Callable[..., Any], target: str, credentials: Optional[grpc.ChannelCredentials],
          options: Optional[ChannelOptions], compression: Optional[grpc.Compression]) -> tuple[list, list[int]]:
    opts = list(options or ())
    if any(key == "grpc.service_config" for key, _ in opts):
        # grpcio's xDS resolver always supplies the config, so this one would be dropped silently.
        raise _ffi.InvalidArgumentError(
            "grpc.service_config is not applied to xds: channels (grpcio takes the config from xDS, "
            "where libgnaming puts the target's own, e.g. a DNS TXT record's); pass swapping=True for "
            "a channel that applies it", _ffi.InvalidArgumentError.status)
    plan = _plan(target)
    _installed_bootstrap()
    if len(plan) > 1:
        opts.append(_LOCAL_SUBCHANNEL_POOL)
    channels = [open_channel(xds_target, credentials, opts, compression) for xds_target, _ in plan]
    return channels, [share for _, share in plan]


def _sync_channel(target: str, credentials: Optional[grpc.ChannelCredentials], options: list,
                  compression: Optional[grpc.Compression]) -> grpc.Channel:
    if credentials is None:
        channel = grpc.insecure_channel(target, options, compression)
    else:
        channel = grpc.secure_channel(target, credentials, options, compression)
    with _process.lock:
        _process.channels.add(channel)
    return channel


def _aio_channel(target: str, credentials: Optional[grpc.ChannelCredentials], options: list,
                 compression: Optional[grpc.Compression]) -> grpc.aio.Channel:
    if credentials is None:
        return grpc.aio.insecure_channel(target, options, compression)
    return grpc.aio.secure_channel(target, credentials, options, compression)


def channel(target: str, credentials: Optional[grpc.ChannelCredentials] = None,
            options: Optional[ChannelOptions] = None, compression: Optional[grpc.Compression] = None,
            *, swapping: bool = False, grace: float = DEFAULT_GRACE) -> grpc.Channel:
    """A channel whose backends follow `target` (`etcd:///svc`, `dns:///host:port`, `pass:///a:1,b:2`).

    Without `#N` it is grpcio's own channel on `xds:///...`; with `#N` a `CopiesChannel` over N of them.
    `credentials` None means plaintext to the backends; `options` are grpcio channel args, passed on
    as they are (for TLS, `grpc.ssl_target_name_override` names the servers' certificate), except
    `grpc.service_config`, which grpcio ignores on xDS channels and is refused. Raises
    `gnaming.BadStateError` in a process with another xDS bootstrap, `gnaming.InvalidTargetError` for
    a bad target. `swapping=True`: the channel that swaps inner `ipv4:` channels instead (no xDS;
    `grace` is how long old ones stay open for RPCs in flight)."""
    if swapping:
        from ._swapping import Channel

        return Channel(target, credentials, options, compression, grace=grace)
    channels, shares = _open(_sync_channel, target, credentials, options, compression)
    return channels[0] if len(channels) == 1 else CopiesChannel(target, channels, shares)


def aio_channel(target: str, credentials: Optional[grpc.ChannelCredentials] = None,
                options: Optional[ChannelOptions] = None,
                compression: Optional[grpc.Compression] = None) -> grpc.aio.Channel:
    """The `grpc.aio` twin of `channel()`: grpcio's `grpc.aio` channel on `xds:///...`, or an
    `AioCopiesChannel` for `#N`. Call it inside the running event loop. (The swapping channel is
    synchronous only.)"""
    channels, shares = _open(_aio_channel, target, credentials, options, compression)
    return channels[0] if len(channels) == 1 else AioCopiesChannel(target, channels, shares)


def stop_server(server: grpc.Server, registrations: Iterable[Any] = (), *, drain: float = 1.0,
                grace: Optional[float] = 10.0) -> None:
    """Stops a `grpc.server` without failing clients: deregisters first (watchers drop the address
    at once), waits `drain` seconds for clients to move their new RPCs elsewhere, then stops the
    server letting RPCs in flight finish for `grace` seconds. Blocks until the server is stopped."""
    for registration in registrations:
        registration.close()
    if drain > 0:
        time.sleep(drain)
    server.stop(grace).wait()


# ---- #N: several xDS channels, one call each --------------------------------------------------------

class _Picker:
    """Which of a target's channels the next call goes to, in proportion to their shares."""

    def __init__(self, shares: list[int]) -> None:
        self._order = _schedule(shares)
        self._turn = itertools.count()  # next() on a count is atomic under the GIL

    def __call__(self) -> int:
        return self._order[next(self._turn) % len(self._order)]


class _PickedMultiCallable(grpc.UnaryUnaryMultiCallable, grpc.UnaryStreamMultiCallable,
                           grpc.StreamUnaryMultiCallable, grpc.StreamStreamMultiCallable):
    """One method on every channel of a target; each call (and `with_call`, `future`) uses the next."""

    def __init__(self, pick: _Picker, inner: list[Any]) -> None:
        self._pick = pick
        self._inner = inner

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self._inner[self._pick()](*args, **kwargs)

    def with_call(self, *args: Any, **kwargs: Any) -> Any:
        return self._inner[self._pick()].with_call(*args, **kwargs)

    def future(self, *args: Any, **kwargs: Any) -> Any:
        return self._inner[self._pick()].future(*args, **kwargs)


class _Copies:
    """What the sync and the asyncio copies channels share: the channels and the picking."""

    def __init__(self, target: str, channels: list[Any], shares: list[int]) -> None:
        self.target = target
        #: grpcio's channels, one per copy layer (`gn_xds_channels_json`).
        self.channels = channels
        self._pick = _Picker(shares)

    def _method(self, kind: str, method: str, request_serializer: Any, response_deserializer: Any,
                _registered_method: bool) -> _PickedMultiCallable:
        inner = [getattr(ch, kind)(method, request_serializer, response_deserializer,
                                   _registered_method=_registered_method) for ch in self.channels]
        return _PickedMultiCallable(self._pick, inner)

    def unary_unary(self, method, request_serializer=None, response_deserializer=None, _registered_method=False):
        return self._method("unary_unary", method, request_serializer, response_deserializer, _registered_method)

    def unary_stream(self, method, request_serializer=None, response_deserializer=None, _registered_method=False):
        return self._method("unary_stream", method, request_serializer, response_deserializer, _registered_method)

    def stream_unary(self, method, request_serializer=None, response_deserializer=None, _registered_method=False):
        return self._method("stream_unary", method, request_serializer, response_deserializer, _registered_method)

    def stream_stream(self, method, request_serializer=None, response_deserializer=None, _registered_method=False):
        return self._method("stream_stream", method, request_serializer, response_deserializer, _registered_method)

    def __repr__(self) -> str:
        return f"<gnaming {type(self).__name__} {self.target!r} over {len(self.channels)} xDS channels>"


class CopiesChannel(_Copies, grpc.Channel):
    """A `#N` target: grpcio channels on `xds:///` targets, each with its own subchannels, so that every
    address gets its N connections; each call goes to the next channel in proportion to its share.
    Connectivity is the first channel's (it holds every address)."""

    def subscribe(self, callback: Callable[[grpc.ChannelConnectivity], None], try_to_connect: bool = False) -> None:
        self.channels[0].subscribe(callback, try_to_connect)

    def unsubscribe(self, callback: Callable[[grpc.ChannelConnectivity], None]) -> None:
        self.channels[0].unsubscribe(callback)

    def close(self) -> None:
        for ch in self.channels:
            ch.close()

    def __enter__(self) -> "CopiesChannel":
        return self

    def __exit__(self, *exc: object) -> bool:
        self.close()
        return False


def _ignore_state(_state: grpc.ChannelConnectivity) -> None:
    pass


class AioCopiesChannel(_Copies, grpc.aio.Channel):
    """The `grpc.aio` form of `CopiesChannel`."""

    def get_state(self, try_to_connect: bool = False) -> grpc.ChannelConnectivity:
        # Every channel is asked, so that try_to_connect reaches them all.
        return [ch.get_state(try_to_connect) for ch in self.channels][0]

    async def wait_for_state_change(self, last_observed_state: grpc.ChannelConnectivity) -> None:
        await self.channels[0].wait_for_state_change(last_observed_state)

    async def channel_ready(self) -> None:
        await asyncio.gather(*(ch.channel_ready() for ch in self.channels))

    async def close(self, grace: Optional[float] = None) -> None:
        await asyncio.gather(*(ch.close(grace) for ch in self.channels))

    async def __aenter__(self) -> "AioCopiesChannel":
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


__all__ = ["AioCopiesChannel", "CopiesChannel", "DEFAULT_GRACE", "aio_channel", "channel", "stop_server"]
