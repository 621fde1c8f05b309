"""Shared fixtures: real grpcio servers on loopback ports and the repository's real etcd cluster.

Servers speak a tiny bytes-only service (no generated code): Echo answers with the server's name,
Count streams N numbered messages with a pause between them. Each server counts calls and the
distinct client connections (peer addresses) it saw.
"""

from __future__ import annotations

import importlib.util
import os
import re
import threading
import time
from concurrent import futures
from pathlib import Path
from typing import Callable, Iterator, Optional

import grpc
import pytest

ECHO = "/gnaming.test.Echo/Echo"
COUNT = "/gnaming.test.Echo/Count"
JOIN = "/gnaming.test.Echo/Join"
SHOUT = "/gnaming.test.Echo/Shout"
REPO = Path(__file__).resolve().parents[3]


class Backend:
    """One real grpcio server on 127.0.0.1 with an ephemeral port."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.calls = 0
        self.peers: set[str] = set()
        self._lock = threading.Lock()
        self.server = grpc.server(futures.ThreadPoolExecutor(max_workers=16))
        handlers = {
            "Echo": grpc.unary_unary_rpc_method_handler(self._echo),
            "Count": grpc.unary_stream_rpc_method_handler(self._count),
            "Join": grpc.stream_unary_rpc_method_handler(self._join),
            "Shout": grpc.stream_stream_rpc_method_handler(self._shout),
        }
        self.server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler("gnaming.test.Echo", handlers),))
        self.port = self.server.add_insecure_port("127.0.0.1:0")
        self.address = f"127.0.0.1:{self.port}"
        self.server.start()

    def _seen(self, context: grpc.ServicerContext) -> None:
        with self._lock:
            self.calls += 1
            self.peers.add(context.peer())

    def _echo(self, request: bytes, context: grpc.ServicerContext) -> bytes:
        self._seen(context)
        return self.name.encode()

    def _count(self, request: bytes, context: grpc.ServicerContext) -> Iterator[bytes]:
        self._seen(context)
        n, pause_ms = (int(x) for x in request.decode().split(","))
        for i in range(n):
            time.sleep(pause_ms / 1000)
            yield f"{self.name}:{i}".encode()

    def _join(self, requests: Iterator[bytes], context: grpc.ServicerContext) -> bytes:
        self._seen(context)
        return b",".join(requests)

    def _shout(self, requests: Iterator[bytes], context: grpc.ServicerContext) -> Iterator[bytes]:
        self._seen(context)
        for r in requests:
            yield r.upper()

    def reset(self) -> None:
        with self._lock:
            self.calls = 0
            self.peers = set()

    def stop(self, grace: Optional[float] = None) -> None:
        self.server.stop(grace).wait()


@pytest.fixture
def backends() -> Iterator[Callable[[int], list[Backend]]]:
    started: list[Backend] = []

    def start(n: int) -> list[Backend]:
        new = [Backend(f"s{len(started) + i}") for i in range(n)]
        started.extend(new)
        return new

    yield start
    for b in started:
        b.stop()


def wait_until(predicate: Callable[[], bool], timeout: float, what: str,
               observed: Callable[[], object] = lambda: None) -> None:
    """Polls `predicate` until true; fails naming `what` and the last observed value otherwise."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.01)
    pytest.fail(f"timed out after {timeout}s waiting for {what}; observed: {observed()!r}")


def channel_addresses(ch) -> list[str]:
    u = ch.last_update
    return sorted(a.addr for a in u.addresses) if u else []


# ---- etcd ------------------------------------------------------------------------------------------

def _harness():
    path = REPO / "tests" / "harness" / "etcd_cluster.py"
    spec = importlib.util.spec_from_file_location("etcd_cluster", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def etcd():
    """The 3-member cluster from `etcd_cluster.py run` (GNAMING_TEST_ETCD_DIR), or one started here;
    made the process's default cluster so `etcd:///svc` targets reach it."""
    import gnaming

    harness = _harness()
    shared = os.environ.get("GNAMING_TEST_ETCD_DIR")
    if shared:
        cluster = harness.EtcdCluster.load(shared)
        own = None
    else:
        own = cluster = harness.EtcdCluster(members=3)
        cluster.start()
    try:
        gnaming.configure_cluster("", endpoints=cluster.endpoints, dial_timeout=2.0, request_timeout=2.0)
        yield cluster
    finally:
        if own is not None:
            own.stop()


_service_ids = iter(range(1, 1_000_000))


@pytest.fixture
def service(request) -> str:
    """A service name no other test uses, so watches never see another test's servers."""
    name = re.sub(r"[^A-Za-z0-9_-]", "-", request.node.name)[:40]
    return f"pytest-{os.getpid()}-{next(_service_ids)}-{name}"
