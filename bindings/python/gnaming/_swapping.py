"""The swapping channel: grpcio channels on `ipv4:`/`ipv6:` address lists, replaced on every change.

Why it still exists: `gnaming.grpc.channel` follows targets through gRPC's own xDS client, which needs
the process's one xDS bootstrap and IP endpoints. Where that is not possible (`swapping=True`):
- the process already has another xDS bootstrap (a service mesh), which grpcio would read instead;
- backends registered on unix sockets, which xDS cannot carry.
It costs what xDS avoids: every list change builds new channels, and once the old ones close after
their grace, the new ones have connected to every backend again; it re-expresses weights and `#N`
itself (listed w times; one inner "layer" channel per copy index). Synchronous only: kept as the way
out, not as a second product, it has no `grpc.aio` form.

How lists map onto grpcio:
- Weights: an address of weight w is listed w times (after dividing all weights by their gcd);
  round_robin then gives it w shares over one connection.
- `#N` copies: entries with copy index c go to a layer channel of their own (channel arg
  `gnaming.copy_index`=c), so each copy is a separate connection. Calls pick a layer in proportion
  to its weight, so each entry keeps its share.
- IPv4 and IPv6 entries mixed in one layer are written as `ipv6:` with `[::ffff:a.b.c.d]:port`.
  Unix sockets and host names (`pass:///name:port`, `passthrough:`) get one channel each, dialled
  by grpcio's own target syntax. Balancer (grpclb) entries are not used.
- Service config: the resolver's, else `grpc.service_config` from `options`; round_robin is added
  when it names no load-balancing policy.
- An empty list (or a failure before any list) keeps in-flight RPCs running on the old channels
  until the grace ends; new calls fail at once with UNAVAILABLE, or, with `wait_for_ready=True`,
  wait for a list (bounded by the call's timeout). Old channels close after a grace period, so RPCs
  in flight on them finish.
"""

from __future__ import annotations

import heapq
import ipaddress
import itertools
import json
import logging
import math
import threading
import time
from functools import reduce
from typing import Any, Callable, Iterable, Optional

import grpc

from . import _lifecycle
from ._resolver import AddressFamily, AddressKind, Resolver, Update
from .grpc import DEFAULT_GRACE, ChannelOptions, _schedule

log = logging.getLogger("gnaming")

# Caps the length of an address list built from weights (weights are scaled down beyond it).
_MAX_WEIGHT_SLOTS = 1000

_ROUND_ROBIN = [{"round_robin": {}}]


# ---- address list → channel plan ---------------------------------------------------------------

class _Layer(tuple):
    """(grpcio target, extra channel args, share): one inner channel of a plan."""

    __slots__ = ()

    def __new__(cls, target: str, args: tuple, share: int) -> "_Layer":
        return tuple.__new__(cls, (target, args, share))

    target = property(lambda self: self[0])
    args = property(lambda self: self[1])
    share = property(lambda self: self[2])


def _scaled_weights(weights: list[int]) -> list[int]:
    g = reduce(math.gcd, weights)
    scaled = [w // g for w in weights]
    total = sum(scaled)
    if total > _MAX_WEIGHT_SLOTS:
        scaled = [max(1, round(w * _MAX_WEIGHT_SLOTS / total)) for w in scaled]
    return scaled


def _ip_target(entries: list[tuple[str, AddressFamily, int]]) -> str:
    families = {family for _, family, _ in entries}
    parts = []
    if families == {AddressFamily.IPV4}:
        scheme = "ipv4:"
        parts = [addr for addr, _, w in entries for _ in range(w)]
    else:
        scheme = "ipv6:"
        for addr, family, w in entries:
            if family == AddressFamily.IPV4:
                host, port = addr.rsplit(":", 1)
                addr = f"[::ffff:{ipaddress.IPv4Address(host)}]:{port}"
            parts.extend([addr] * w)
    return scheme + ",".join(parts)


def plan(update: Update) -> tuple[_Layer, ...]:
    """The inner channels an update asks for; equal plans mean the same channels."""
    backends = [a for a in update.addresses if a.kind == AddressKind.BACKEND]
    if not backends:
        return ()
    weights = _scaled_weights([a.weight for a in backends])
    by_copy: dict[int, list[tuple[str, AddressFamily, int]]] = {}
    single: list[_Layer] = []
    for a, w in zip(backends, weights):
        if a.family in (AddressFamily.IPV4, AddressFamily.IPV6):
            by_copy.setdefault(a.copy_index, []).append((a.addr, a.family, w))
        else:
            # grpcio resolves these itself; a layer each keeps copies and weights apart.
            single.append(_Layer(a.addr, (("gnaming.copy_index", a.copy_index),), w))
    layers = [
        _Layer(_ip_target(entries), (("gnaming.copy_index", copy),), sum(w for _, _, w in entries))
        for copy, entries in sorted(by_copy.items())
    ]
    return tuple(layers + single)


def service_config(resolver_config: Optional[str], user_config: Optional[str]) -> str:
    """The service config for inner channels: the resolver's, else the user's, with round_robin
    unless one of them chose a policy."""
    config: dict = {}
    for source, text in (("the resolver's", resolver_config), ("the channel option's", user_config)):
        if not text:
            continue
        try:
            config = json.loads(text)
        except ValueError as e:
            # As grpc does with a bad config from a resolver: keep serving with the default.
            log.warning("gnaming: ignoring %s service config, not JSON: %s", source, e)
            continue
        if isinstance(config, dict):
            break
        log.warning("gnaming: ignoring %s service config, not a JSON object", source)
        config = {}
    if "loadBalancingConfig" not in config and "loadBalancingPolicy" not in config:
        config["loadBalancingConfig"] = _ROUND_ROBIN
    return json.dumps(config, sort_keys=True)


def _no_addresses(target: str, update: Optional[Update]) -> str:
    if update is None:
        return f"no address list yet for {target}"
    if not update.ok:
        return f"no addresses for {target}: {update.error}"
    return f"no addresses for {target}: the list is empty"


def _split_options(options: Optional[ChannelOptions]) -> tuple[list[tuple[str, Any]], Optional[str]]:
    rest, config = [], None
    for key, value in options or ():
        if key == "grpc.service_config":
            config = value
        else:
            rest.append((key, value))
    return rest, config


# ---- failed calls --------------------------------------------------------------------------------

class _FailedCall(grpc.RpcError, grpc.Call, grpc.Future):
    """A call that failed before reaching any channel (no addresses): raised by blocking calls,
    returned by `future()` and by streaming calls, whose iteration raises it."""

    def __init__(self, code: grpc.StatusCode, details: str) -> None:
        super().__init__(details)
        self._code = code
        self._details = details

    def __repr__(self) -> str:
        return f"<gnaming failed call: {self._code} {self._details!r}>"

    def code(self) -> grpc.StatusCode:
        return self._code

    def details(self) -> str:
        return self._details

    def initial_metadata(self) -> tuple:
        return ()

    def trailing_metadata(self) -> tuple:
        return ()

    def is_active(self) -> bool:
        return False

    def time_remaining(self) -> Optional[float]:
        return None

    def cancel(self) -> bool:
        return False

    def add_callback(self, callback: Callable[[], None]) -> bool:
        return False

    def cancelled(self) -> bool:
        return False

    def running(self) -> bool:
        return False

    def done(self) -> bool:
        return True

    def result(self, timeout: Optional[float] = None) -> Any:
        raise self

    def exception(self, timeout: Optional[float] = None) -> "_FailedCall":
        return self

    def traceback(self, timeout: Optional[float] = None) -> Any:
        return self.__traceback__

    def add_done_callback(self, fn: Callable[["_FailedCall"], None]) -> None:
        fn(self)

    def __iter__(self) -> "_FailedCall":
        return self

    def __next__(self) -> Any:
        raise self


# ---- the sync channel ----------------------------------------------------------------------------

class _Generation:
    """The inner channels built for one plan, and how calls pick among them."""

    def __init__(self, plan_: tuple[_Layer, ...], config: str, channels: list[Any]) -> None:
        #: What the channels were built for; an update with the same key changes nothing.
        self.key = (plan_, config)
        self.channels = channels
        self.multicallables: dict[tuple, Any] = {}
        order = _schedule([layer.share for layer in plan_]) if len(channels) > 1 else [0]
        self._picks = itertools.cycle(order)

    def pick(self) -> int:
        return next(self._picks)

    def multicallable(self, kind: str, method: str, ser: Any, deser: Any, registered: bool) -> Any:
        key = (kind, method, ser, deser, registered, self.pick())
        mc = self.multicallables.get(key)
        if mc is None:
            mc = getattr(self.channels[key[-1]], kind)(method, ser, deser, _registered_method=registered)
            self.multicallables[key] = mc
        return mc


class _Reaper:
    """Closes retired channels once their grace has passed, on one thread per discovered channel."""

    def __init__(self, name: str) -> None:
        self._heap: list[tuple[float, int, Callable[[], None]]] = []
        self._seq = itertools.count()
        self._cond = threading.Condition()
        self._stopped = False
        self._thread: Optional[threading.Thread] = None
        self._name = name

    def schedule(self, at: float, close: Callable[[], None]) -> None:
        with self._cond:
            if self._stopped:
                close()
                return
            heapq.heappush(self._heap, (at, next(self._seq), close))
            if self._thread is None:
                # Daemon: an unclosed channel must not keep the interpreter from exiting.
                self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
                self._thread.start()
            self._cond.notify()

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._stopped and (not self._heap or self._heap[0][0] > time.monotonic()):
                    self._cond.wait(None if not self._heap else self._heap[0][0] - time.monotonic())
                if self._stopped:
                    return
                _, _, close = heapq.heappop(self._heap)
            close()

    def stop(self) -> None:
        """Closes everything still waiting, now, and ends the thread."""
        with self._cond:
            self._stopped = True
            pending, self._heap = self._heap, []
            self._cond.notify()
            thread = self._thread
        for _, _, close in pending:
            close()
        if thread is not None and thread is not threading.current_thread():
            thread.join()


class Channel(grpc.Channel):
    """The swapping `grpc.Channel` for a libgnaming target (`gnaming.grpc.channel(..., swapping=True)`).

    Use it like any channel: stubs take it, `with` closes it. `close()` cancels RPCs in flight, as
    grpcio's does; RPCs in flight during an address change are left to finish for `grace` seconds.
    """

    _EXIT_ORDER = 1

    def __init__(self, target: str, credentials: Optional[grpc.ChannelCredentials] = None,
                 options: Optional[ChannelOptions] = None, compression: Optional[grpc.Compression] = None,
                 *, grace: float = DEFAULT_GRACE) -> None:
        self.target = target
        self._credentials = credentials
        self._options, self._user_config = _split_options(options)
        self._compression = compression
        self._grace = grace
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._generation: Optional[_Generation] = None
        self._last_update: Optional[Update] = None
        self._closed = False
        self._subscribers: list[tuple[Callable, bool]] = []
        self._reaper = _Reaper(f"gnaming-grace {target}")
        _lifecycle.track(self)
        try:
            self._resolver = Resolver(target, self._on_update)
        except BaseException:
            _lifecycle.untrack(self)
            raise

    # -- updates (library thread) --

    def _build(self, plan_: tuple[_Layer, ...], config: str) -> _Generation:
        channels = []
        for layer in plan_:
            opts = self._options + [("grpc.service_config", config), *layer.args]
            if self._credentials is None:
                channels.append(grpc.insecure_channel(layer.target, opts, self._compression))
            else:
                channels.append(grpc.secure_channel(layer.target, self._credentials, opts, self._compression))
        return _Generation(plan_, config, channels)

    def _on_update(self, update: Update) -> None:
        new_plan = plan(update)
        config = service_config(update.service_config, self._user_config)
        with self._lock:
            if self._closed:
                return
            self._last_update = update
            old = self._generation
            if old is None and not new_plan or old is not None and old.key == (new_plan, config):
                self._changed.notify_all()
                return
            new = self._build(new_plan, config) if new_plan else None
            self._generation = new
            subscribers = list(self._subscribers)
            self._changed.notify_all()
        # Outside the lock: a callback may call subscribe, unsubscribe or close.
        self._move_subscribers(subscribers, old, new)
        if old is not None:
            self._reaper.schedule(time.monotonic() + self._grace, lambda: _close_all(old.channels))

    # -- calls --

    def _current(self, wait_for_ready: Optional[bool], timeout: Optional[float]) -> _Generation:
        gen = self._generation
        if gen is not None:
            return gen
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._lock:
            while self._generation is None and wait_for_ready and not self._closed:
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    raise _FailedCall(grpc.StatusCode.DEADLINE_EXCEEDED,
                                      f"no addresses for {self.target} before the deadline")
                self._changed.wait(remaining)
            if self._closed:
                raise _FailedCall(grpc.StatusCode.CANCELLED, "Channel closed!")
            if self._generation is None:
                raise _FailedCall(grpc.StatusCode.UNAVAILABLE, _no_addresses(self.target, self._last_update))
            return self._generation


    def unary_unary(self, method, request_serializer=None, response_deserializer=None, _registered_method=False):
        return _UnaryUnary(self, method, request_serializer, response_deserializer, _registered_method)

    def unary_stream(self, method, request_serializer=None, response_deserializer=None, _registered_method=False):
        return _UnaryStream(self, method, request_serializer, response_deserializer, _registered_method)

    def stream_unary(self, method, request_serializer=None, response_deserializer=None, _registered_method=False):
        return _StreamUnary(self, method, request_serializer, response_deserializer, _registered_method)

    def stream_stream(self, method, request_serializer=None, response_deserializer=None, _registered_method=False):
        return _StreamStream(self, method, request_serializer, response_deserializer, _registered_method)

    # -- connectivity --

    def subscribe(self, callback: Callable[[grpc.ChannelConnectivity], None], try_to_connect: bool = False) -> None:
        """Connectivity of the current channel (the first layer); follows swaps. With no addresses
        the state is TRANSIENT_FAILURE."""
        with self._lock:
            self._subscribers.append((callback, try_to_connect))
            gen = self._generation
        if gen is None:
            callback(grpc.ChannelConnectivity.TRANSIENT_FAILURE)
        else:
            gen.channels[0].subscribe(callback, try_to_connect)

    def unsubscribe(self, callback: Callable[[grpc.ChannelConnectivity], None]) -> None:
        with self._lock:
            self._subscribers = [(c, t) for c, t in self._subscribers if c != callback]
            gen = self._generation
        if gen is not None:
            gen.channels[0].unsubscribe(callback)

    @staticmethod
    def _move_subscribers(subscribers: list[tuple[Callable, bool]], old: Optional[_Generation],
                          new: Optional[_Generation]) -> None:
        for callback, try_to_connect in subscribers:
            if old is not None:
                old.channels[0].unsubscribe(callback)
            if new is not None:
                new.channels[0].subscribe(callback, try_to_connect)
            else:
                callback(grpc.ChannelConnectivity.TRANSIENT_FAILURE)

    # -- state and lifetime --

    @property
    def last_update(self) -> Optional[Update]:
        """The latest update the resolver delivered, or None before the first."""
        return self._last_update

    def close(self) -> None:
        """Stops following the target and closes every inner channel now (RPCs in flight end with
        CANCELLED, as with grpcio's `close`). Idempotent."""
        self._resolver.close()
        with self._lock:
            if self._closed:
                return
            self._closed = True
            gen, self._generation = self._generation, None
            self._changed.notify_all()
        self._reaper.stop()
        if gen is not None:
            _close_all(gen.channels)
        _lifecycle.untrack(self)

    def _close_at_exit(self) -> None:
        self.close()

    def __enter__(self) -> "Channel":
        return self

    def __exit__(self, *exc: object) -> bool:
        self.close()
        return False

    def __repr__(self) -> str:
        return f"<gnaming swapping channel {self.target!r}>"


def _close_all(channels: Iterable[Any]) -> None:
    for ch in channels:
        ch.close()


class _MultiCallable:
    _kind = ""

    def __init__(self, owner: Channel, method: str, ser: Any, deser: Any, registered: bool) -> None:
        self._owner = owner
        self._key = (self._kind, method, ser, deser, registered)

    def _inner(self, timeout: Optional[float], wait_for_ready: Optional[bool]) -> Any:
        return self._owner._current(wait_for_ready, timeout).multicallable(*self._key)


class _UnaryUnary(_MultiCallable, grpc.UnaryUnaryMultiCallable):
    _kind = "unary_unary"

    def __call__(self, request, timeout=None, metadata=None, credentials=None, wait_for_ready=None, compression=None):
        return self._inner(timeout, wait_for_ready)(request, timeout, metadata, credentials, wait_for_ready, compression)

    def with_call(self, request, timeout=None, metadata=None, credentials=None, wait_for_ready=None, compression=None):
        return self._inner(timeout, wait_for_ready).with_call(request, timeout, metadata, credentials, wait_for_ready, compression)

    def future(self, request, timeout=None, metadata=None, credentials=None, wait_for_ready=None, compression=None):
        try:
            inner = self._inner(timeout, wait_for_ready)
        except _FailedCall as failed:
            return failed
        return inner.future(request, timeout, metadata, credentials, wait_for_ready, compression)


class _UnaryStream(_MultiCallable, grpc.UnaryStreamMultiCallable):
    _kind = "unary_stream"

    def __call__(self, request, timeout=None, metadata=None, credentials=None, wait_for_ready=None, compression=None):
        try:
            inner = self._inner(timeout, wait_for_ready)
        except _FailedCall as failed:
            return failed
        return inner(request, timeout, metadata, credentials, wait_for_ready, compression)


class _StreamUnary(_MultiCallable, grpc.StreamUnaryMultiCallable):
    _kind = "stream_unary"

    def __call__(self, request_iterator, timeout=None, metadata=None, credentials=None, wait_for_ready=None, compression=None):
        return self._inner(timeout, wait_for_ready)(request_iterator, timeout, metadata, credentials, wait_for_ready, compression)

    def with_call(self, request_iterator, timeout=None, metadata=None, credentials=None, wait_for_ready=None, compression=None):
        return self._inner(timeout, wait_for_ready).with_call(request_iterator, timeout, metadata, credentials, wait_for_ready, compression)

    def future(self, request_iterator, timeout=None, metadata=None, credentials=None, wait_for_ready=None, compression=None):
        try:
            inner = self._inner(timeout, wait_for_ready)
        except _FailedCall as failed:
            return failed
        return inner.future(request_iterator, timeout, metadata, credentials, wait_for_ready, compression)


class _StreamStream(_MultiCallable, grpc.StreamStreamMultiCallable):
    _kind = "stream_stream"

    def __call__(self, request_iterator, timeout=None, metadata=None, credentials=None, wait_for_ready=None, compression=None):
        try:
            inner = self._inner(timeout, wait_for_ready)
        except _FailedCall as failed:
            return failed
        return inner(request_iterator, timeout, metadata, credentials, wait_for_ready, compression)
