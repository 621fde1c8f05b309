"""gnaming.grpc.channel: grpcio's own xDS client on the target's `xds:///` form, fed by the
process-wide gnaming.xds server, against servers registered through libgnaming in a real 3-member
etcd: RPCs (streams included) follow every change, unchanged backends keep their one connection,
weights set traffic shares, `#N` opens N connections, an etcd outage fails no RPC and an empty
service fails RPCs fast or waits for ready. Also the asyncio twin, options and credentials passed
through, and gnaming.xds itself (private servers, targets, refusals).

grpcio reads its bootstrap once per process, at the first xds: channel, so every test here shares
the one server `install_bootstrap` points it at (the `xds` fixture)."""

from __future__ import annotations

import collections
import json
import os
import select
import stat
import subprocess
import sys
import textwrap
import threading
import time
from concurrent import futures
from typing import Iterable, Optional

import grpc
import pytest

import gnaming
import gnaming.grpc
import gnaming.xds

from conftest import COUNT, ECHO, Backend, wait_until

# Changes made in the connection-count test (each one an add or a removal of the same backend).
CHANGES = 50
UNCHANGED_BACKENDS = 8
# Consecutive RPCs that must all avoid a removed backend (or all stay within an expected set).
CLEAN_BATCH = 60
# The server stream that runs through the changes: long enough to outlive them, cancelled after.
STREAM_MESSAGES = 100_000
STREAM_PAUSE_MS = 20
# How long after a SIGKILL RPCs are watched for a reconnect to the dead address (see its test).
IMPOSTOR_WINDOW_S = 7.0


@pytest.fixture(scope="session")
def xds(etcd) -> dict:
    """The bootstrap grpcio uses in this process: the process-wide server's, installed before any
    xds: channel exists. `etcd` comes first so `etcd:///svc` reaches the test cluster."""
    return json.loads(gnaming.xds.install_bootstrap())


def xds_channel(service: str, cluster: str = "") -> grpc.Channel:
    ch = gnaming.grpc.channel(f"etcd://{cluster}/{service}")
    assert ch._channel.target().decode().startswith("xds:///"), "expected grpcio's own xds: channel"
    return ch


class Echo:
    """Unary Echo calls on one channel; every reply names the server that answered."""

    def __init__(self, channel: grpc.Channel) -> None:
        self._call = channel.unary_unary(ECHO)

    def __call__(self, timeout: float = 5, wait_for_ready: Optional[bool] = None) -> str:
        return self._call(b"", timeout=timeout, wait_for_ready=wait_for_ready).decode()

    def batch(self, n: int) -> tuple[collections.Counter, list[str]]:
        replies: collections.Counter = collections.Counter()
        failures = []
        for _ in range(n):
            try:
                replies[self()] += 1
            except grpc.RpcError as e:
                failures.append(f"{e.code()}: {e.details()}")
        return replies, failures

    def converge(self, expected: Iterable[str], timeout: float = 15, batch: int = CLEAN_BATCH) -> None:
        """Polls with batches of RPCs until one batch reaches exactly `expected` and fails none."""
        expected = set(expected)
        last: list = []

        def clean() -> bool:
            replies, failures = self.batch(batch)
            last[:] = [dict(replies), failures[:3]]
            return not failures and set(replies) == expected

        wait_until(clean, timeout, f"a batch of {batch} RPCs answered by exactly {sorted(expected)}",
                   lambda: last)


def register(service: str, servers: Iterable[Backend], **kw) -> list[gnaming.Registration]:
    regs = [gnaming.Registration(service, b.address, **kw) for b in servers]
    for r in regs:
        r.wait(10)
    return regs


# A greeter in a process of its own, so the test can SIGKILL it: it registers itself with a 2 s
# lease and prints its port once registered.
GREETER = textwrap.dedent("""
    import sys
    from concurrent import futures
    import grpc, gnaming

    endpoints, service, name = sys.argv[1:4]
    gnaming.configure_cluster("", endpoints=endpoints)
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    echo = grpc.unary_unary_rpc_method_handler(lambda request, context: name.encode())
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler("gnaming.test.Echo", {"Echo": echo}),))
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    registration = gnaming.Registration(service, f"127.0.0.1:{port}", ttl=2)
    registration.wait(10)
    print(port, flush=True)
    server.wait_for_termination()
""")


class KillableGreeter:
    def __init__(self, endpoints: str, service: str, name: str) -> None:
        self.name = name
        self.proc = subprocess.Popen([sys.executable, "-c", GREETER, endpoints, service, name],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        ready, _, _ = select.select([self.proc.stdout], [], [], 30)
        line = self.proc.stdout.readline() if ready else ""
        if not line.strip().isdigit():
            self.proc.kill()
            _, err = self.proc.communicate(timeout=10)
            pytest.fail(f"greeter {name} did not start: {line!r} {err}")
        self.port = int(line)
        self.address = f"127.0.0.1:{self.port}"

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait(10)


class Impostor:
    """An unregistered server on a given port, counting the RPCs that reach it."""

    def __init__(self, port: int) -> None:
        self.calls = 0
        self.server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        echo = grpc.unary_unary_rpc_method_handler(self._echo)
        self.server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler("gnaming.test.Echo", {"Echo": echo}),))
        if self.server.add_insecure_port(f"127.0.0.1:{port}") != port:
            pytest.fail(f"port {port} could not be bound again")
        self.server.start()

    def _echo(self, request: bytes, context: grpc.ServicerContext) -> bytes:
        self.calls += 1
        return b"impostor"

    def stop(self) -> None:
        self.server.stop(None).wait()


def wait_for_etcd(target: str, done, what: str, timeout: float = 15) -> None:
    """Follows `target` with a resolver of its own until `done(update)` holds."""
    deadline = time.monotonic() + timeout
    last = None
    with gnaming.Resolver(target) as watch:
        while time.monotonic() < deadline:
            try:
                last = watch.next(max(deadline - time.monotonic(), 0.01))
            except gnaming.TimeoutError:
                break
            if done(last):
                return
    pytest.fail(f"timed out after {timeout}s waiting for {what}; observed {last}")


# ---- the wrapper ---------------------------------------------------------------------------------

def test_a_bare_etcd_target_has_the_short_xds_form_and_others_keep_their_scheme():
    assert gnaming.xds_target("etcd:///echo") == "xds:///echo"
    other = gnaming.xds_target("dns:///localhost:443")
    assert other.startswith("xds:///") and other != "xds:///localhost:443", other
    with pytest.raises(gnaming.InvalidTargetError):
        gnaming.xds_target("etcd://")


def test_a_private_server_on_a_unix_socket_is_owner_only_and_its_bootstrap_names_it(tmp_path):
    with gnaming.XdsServer(listen="unix:") as server:
        assert server.address.startswith("unix:/"), server.address
        path = server.address[len("unix:"):]
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600, oct(os.stat(path).st_mode)
        assert stat.S_IMODE(os.stat(os.path.dirname(path)).st_mode) == 0o700
        boot = server.bootstrap
        assert boot["xds_servers"][0]["server_uri"] == server.address, boot
        assert boot["node"]["id"] and boot["node"]["locality"] == {}, boot
    assert server.closed
    server.close()
    with pytest.raises(gnaming.ClosedError):
        server.xds_target("etcd:///echo")


def test_a_non_loopback_listen_address_is_refused_unless_allowed():
    with pytest.raises(gnaming.GnamingError) as info:
        gnaming.XdsServer(listen="0.0.0.0:0")
    assert "loopback" in info.value.message, info.value.message


def test_a_private_server_feeds_a_channel_given_its_bootstrap_per_channel(xds, backends):
    # The test-only channel argument gives one channel a bootstrap of its own, so a private server
    # can be checked end to end in a process whose grpcio uses the default one (installed first:
    # the process's bootstrap must be in place before any xds: channel).
    (a,) = backends(1)
    with gnaming.XdsServer(default_scheme="pass") as server:
        target = server.xds_target(f"pass:///{a.address}")
        options = [("grpc.TEST_ONLY_DO_NOT_USE_IN_PROD.xds_bootstrap_config", server.bootstrap_json)]
        with grpc.insecure_channel(target, options) as ch:
            assert Echo(ch)(timeout=10, wait_for_ready=True) == "s0"


def test_with_the_node_id_check_only_a_client_with_the_servers_node_id_is_answered(xds, backends):
    (a,) = backends(1)
    with gnaming.XdsServer(node_id_check=True) as server:
        target = server.xds_target(f"pass:///{a.address}")
        stranger = server.bootstrap
        stranger["node"]["id"] = "someone-else"
        option = "grpc.TEST_ONLY_DO_NOT_USE_IN_PROD.xds_bootstrap_config"
        with grpc.insecure_channel(target, [(option, server.bootstrap_json)]) as ch:
            assert Echo(ch)(timeout=10, wait_for_ready=True) == "s0"
        with grpc.insecure_channel(target, [(option, json.dumps(stranger))]) as ch:
            with pytest.raises(grpc.RpcError) as info:
                Echo(ch)(timeout=2, wait_for_ready=True)
            assert info.value.code() in (grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.UNAVAILABLE), info.value
    assert a.calls == 1, f"only the client with the server's node id may reach s0, observed {a.calls} calls"


def test_resolver_options_reach_the_server_and_bad_ones_are_refused_before_it_starts():
    with gnaming.XdsServer(default_scheme="dns", dns_nameserver="127.0.0.1:53") as server:
        assert server.xds_target("dns:///localhost") == "xds:///localhost"
        assert server.xds_target("etcd:///echo") == "xds:///etcd:///echo"
    assert gnaming.xds_target("dns:///localhost") == "xds:///dns:///localhost"
    with pytest.raises(gnaming.InvalidArgumentError):
        gnaming.XdsServer(dns_nameserver="not an address")
    with pytest.raises(gnaming.GnamingError):
        gnaming.XdsServer(default_scheme="no-such-scheme")


def test_configuring_the_default_server_after_its_first_use_is_refused(xds):
    with pytest.raises(gnaming.BadStateError):
        gnaming.xds.configure_default(default_scheme="dns")
    assert json.loads(gnaming.xds.default_bootstrap_json()) == xds
    assert os.environ[gnaming.xds.BOOTSTRAP_ENV] == gnaming.xds.default_bootstrap_json()


# ---- grpcio following etcd through xDS ----------------------------------------------------------

def test_rpcs_follow_register_deregister_sigkill_and_add(xds, etcd, service, backends):
    a, b, c = backends(3)
    regs = register(service, [a, b])
    killable = KillableGreeter(etcd.endpoints, service, "k")
    try:
        with xds_channel(service) as ch:
            echo = Echo(ch)
            assert echo(timeout=10, wait_for_ready=True) in {"s0", "s1", "k"}
            echo.converge({"s0", "s1", "k"})

            regs[1].close()
            echo.converge({"s0", "k"})

            killable.kill()
            killed_at = time.monotonic()
            # Wait for the lease to expire in etcd, then put an unregistered server on the dead
            # port: a client still holding the address would reconnect to it within its backoff
            # (attempts about 1, 2.6 and 5.2 s after the connection broke, ±20 %).
            wait_for_etcd(f"etcd:///{service}", lambda u: [x.addr for x in u.addresses] == [a.address],
                          "the killed greeter's lease to expire")
            impostor = Impostor(killable.port)
            try:
                echo.converge({"s0"})
                replies, failures = echo.batch(0)
                deadline = max(killed_at + IMPOSTOR_WINDOW_S, time.monotonic() + 1.0)
                while time.monotonic() < deadline:
                    r, f = echo.batch(20)
                    replies.update(r)
                    failures.extend(f)
                assert failures == [] and set(replies) == {"s0"}, \
                    f"expected only s0 after the lease expired, observed {dict(replies)} {failures[:3]}"
                assert impostor.calls == 0, "the client still dialled the expired address"
            finally:
                impostor.stop()

            regs.append(gnaming.Registration(service, c.address))
            regs[-1].wait(10)
            echo.converge({"s0", "s2"})
    finally:
        killable.kill()
        for r in regs:
            r.close()


def test_across_50_changes_unchanged_backends_keep_one_connection_and_a_stream_runs_through(xds, service, backends):
    steady = backends(UNCHANGED_BACKENDS)
    (churn,) = backends(1)
    regs = register(service, steady)
    names = {b.name for b in steady}
    with xds_channel(service) as ch:
        echo = Echo(ch)
        echo(timeout=10, wait_for_ready=True)
        echo.converge(names)
        for b in steady:
            b.reset()
        # A server stream started before the changes (so on a steady backend), read in a thread:
        # it must deliver every message in order while the list changes under it.
        stream = ch.unary_stream(COUNT)(f"{STREAM_MESSAGES},{STREAM_PAUSE_MS}".encode(), timeout=300)
        received: list[str] = []
        ended: list = []

        def read() -> None:
            try:
                for message in stream:
                    received.append(message.decode())
                ended.append("completed")
            except grpc.RpcError as e:
                ended.append(e.code())

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        wait_until(lambda: len(received) > 0, 10, "the stream's first message", lambda: ended)
        for change in range(CHANGES):
            if change % 2 == 0:
                reg = gnaming.Registration(service, churn.address)
                reg.wait(10)
                echo.converge(names | {churn.name}, batch=120)
                assert churn.calls > 0, f"change {change}: the new backend got no RPC"
            else:
                reg.close()
                echo.converge(names, batch=120)
                churn.reset()
                echo.batch(120)
                assert churn.calls == 0, f"change {change}: the removed backend still got {churn.calls} RPCs"
        during_changes = len(received)
        wait_until(lambda: len(received) >= during_changes + 3, 10, "the stream to go on after the changes",
                   lambda: (len(received), ended))
        stream.cancel()
        reader.join(10)
    for r in regs:
        r.close()
    server_name = received[0].split(":")[0]
    assert received == [f"{server_name}:{i}" for i in range(len(received))], \
        f"the stream must deliver every message in order, observed {received[:5]}... ({len(received)})"
    assert ended == [grpc.StatusCode.CANCELLED], f"the stream must run until cancelled, it ended with {ended}"
    peers = {b.name: len(b.peers) for b in steady}
    calls = {b.name: b.calls for b in steady}
    assert all(n > 0 for n in calls.values()), f"every steady backend must serve RPCs, observed {calls}"
    assert peers == {name: 1 for name in names}, \
        f"expected one client connection per unchanged backend over {CHANGES} changes, observed {peers}"


def test_weights_1_3_6_share_1200_rpcs_10_30_60_percent(xds, service, backends):
    servers = backends(3)
    regs = [gnaming.Registration(service, b.address, metadata={"weight": w}) for b, w in zip(servers, (1, 3, 6))]
    for r in regs:
        r.wait(10)
    with xds_channel(service) as ch:
        echo = Echo(ch)
        echo(timeout=10, wait_for_ready=True)
        echo.converge({"s0", "s1", "s2"})
        replies, failures = echo.batch(1200)
    for r in regs:
        r.close()
    assert failures == [], failures[:3]
    shares = {name: replies[name] / 1200 for name in ("s0", "s1", "s2")}
    for name, want in (("s0", 0.10), ("s1", 0.30), ("s2", 0.60)):
        assert abs(shares[name] - want) <= 0.05, f"expected 10/30/60 % for weights 1:3:6, observed {dict(replies)}"


def test_an_etcd_outage_of_10_s_fails_no_rpc(xds, service, backends):
    from conftest import _harness

    servers = backends(2)
    with _harness().EtcdCluster(members=3) as cluster:
        gnaming.configure_cluster("xds-outage", endpoints=cluster.endpoints, dial_timeout=1.0, request_timeout=1.0)
        regs = register(service, servers, cluster="xds-outage", ttl=5)
        with xds_channel(service, cluster="xds-outage") as ch:
            echo = Echo(ch)
            echo(timeout=10, wait_for_ready=True)
            echo.converge({"s0", "s1"})
            replies: collections.Counter = collections.Counter()
            failures: list[str] = []
            stop = threading.Event()

            def traffic() -> None:
                while not stop.is_set():
                    r, f = echo.batch(10)
                    replies.update(r)
                    failures.extend(f)
                    time.sleep(0.005)

            t = threading.Thread(target=traffic, daemon=True)
            t.start()
            cluster.stop_all()
            wait_for_etcd(f"etcd://xds-outage/{service}", lambda u: not u.ok, "a resolver to see etcd down")
            at_outage = sum(replies.values())
            # The outage itself lasts 10 s: that length is what is being tested.
            time.sleep(10)
            during = sum(replies.values()) - at_outage
            cluster.start_all()
            stop.set()
            t.join(30)
        for r in regs:
            try:
                r.close(timeout=2)
            except gnaming.GnamingError:
                pass  # the cluster may not have a leader again yet; its lease ends with the cluster
    assert failures == [], f"expected 0 failed RPCs with etcd down, observed {len(failures)}: {failures[:3]}"
    assert during > 500, f"RPCs must keep flowing during the outage, observed {during}"
    assert set(replies) == {"s0", "s1"}, f"expected both servers to keep serving, observed {dict(replies)}"


def test_an_authoritatively_empty_service_fails_rpcs_fast_with_unavailable(xds, service, backends):
    (a,) = backends(1)
    with grpc.insecure_channel(gnaming.xds_target(f"etcd:///{service}-never")) as never:
        start = time.monotonic()
        with pytest.raises(grpc.RpcError) as info:
            Echo(never)(timeout=10)
        elapsed = time.monotonic() - start
        assert info.value.code() == grpc.StatusCode.UNAVAILABLE, info.value
        assert elapsed < 2, f"a service never registered must fail at once, not after {elapsed:.1f} s"

    (reg,) = register(service, [a])
    with xds_channel(service) as ch:
        echo = Echo(ch)
        assert echo(timeout=10, wait_for_ready=True) == "s0"
        reg.close()
        codes: list = []

        def failed_fast() -> bool:
            try:
                echo()
                return False
            except grpc.RpcError as e:
                codes.append(e.code())
                return e.code() == grpc.StatusCode.UNAVAILABLE

        wait_until(failed_fast, 10, "RPCs to fail after the last server left", lambda: codes[-3:])
        start = time.monotonic()
        with pytest.raises(grpc.RpcError) as info:
            echo(timeout=5)
        assert info.value.code() == grpc.StatusCode.UNAVAILABLE
        assert time.monotonic() - start < 0.5, "an empty service must fail RPCs fast"

        (reg,) = register(service, [a])
        assert echo(timeout=10, wait_for_ready=True) == "s0"
        reg.close()
    stats = gnaming.xds.stats()
    assert stats["xds_nacks"] == 0, stats


def test_a_call_waiting_for_ready_on_an_empty_service_completes_once_a_server_registers(xds, service, backends):
    (a,) = backends(1)
    with xds_channel(service) as ch:
        with pytest.raises(grpc.RpcError) as info:
            Echo(ch)(timeout=5)
        assert info.value.code() == grpc.StatusCode.UNAVAILABLE, info.value
        waiting = Echo(ch)
        result: list = []
        caller = threading.Thread(target=lambda: result.append(waiting(timeout=20, wait_for_ready=True)), daemon=True)
        caller.start()
        time.sleep(0.3)  # the call is queued; nothing it could be waiting on is observable from here
        assert result == [] and caller.is_alive(), f"the call must wait for a server, observed {result}"
        (reg,) = register(service, [a])
        caller.join(15)
        reg.close()
    assert result == ["s0"], f"the waiting call must reach the new server, observed {result}"


def test_copies_give_n_connections_per_address_and_keep_the_weights(xds, service, backends):
    servers = backends(2)
    regs = [gnaming.Registration(service, b.address, metadata={"weight": w}) for b, w in zip(servers, (1, 3))]
    for r in regs:
        r.wait(10)
    with gnaming.grpc.channel(f"etcd:///{service}#3") as ch:
        assert isinstance(ch, gnaming.grpc.CopiesChannel) and len(ch.channels) == 3, ch
        echo = Echo(ch)
        echo(timeout=10, wait_for_ready=True)
        echo.converge({"s0", "s1"})
        for b in servers:
            b.reset()
        replies, failures = echo.batch(800)
    for r in regs:
        r.close()
    assert failures == [], failures[:3]
    assert {b.name: len(b.peers) for b in servers} == {"s0": 3, "s1": 3}, \
        f"#3 must give 3 connections to each server, observed {[sorted(b.peers) for b in servers]}"
    assert abs(replies["s0"] / 800 - 0.25) <= 0.05, f"expected 25/75 % for weights 1:3, observed {dict(replies)}"


def test_copies_of_a_static_list_follow_each_entry_and_keep_its_share(xds, backends):
    a, b = backends(2)
    with gnaming.grpc.channel(f"pass:///{a.address}#3,{b.address}") as ch:
        assert ch._pick._order.count(0) == 2, "layer 0 holds two entries of four"
        echo = Echo(ch)
        echo.converge({"s0", "s1"})
        a.reset()
        b.reset()
        replies, failures = echo.batch(400)
        join = ch.stream_unary("/gnaming.test.Echo/Join")
        assert join(iter([b"x", b"y"]), timeout=5) == b"x,y", "a client stream through the copies"
    assert failures == [], failures[:3]
    assert (len(a.peers), len(b.peers)) == (3, 1), f"expected 3 + 1 connections, observed {a.peers} {b.peers}"
    assert abs(replies["s0"] / 400 - 0.75) <= 0.05, f"expected 3 of 4 picks on s0 (#3), observed {dict(replies)}"


def test_channel_options_and_credentials_reach_the_backends(xds, backends):
    (a,) = backends(1)
    # An option: the send limit is grpcio's, applied to this channel's calls.
    with gnaming.grpc.channel(f"pass:///{a.address}", options=[("grpc.max_send_message_length", 100)]) as ch:
        echo = ch.unary_unary(ECHO)
        assert echo(b"x" * 10, timeout=10, wait_for_ready=True) == b"s0"
        with pytest.raises(grpc.RpcError) as info:
            echo(b"x" * 1000, timeout=10)
        assert info.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, info.value
    # Credentials: local (loopback) channel credentials carrying a token, which the server echoes.
    secure = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    handler = grpc.unary_unary_rpc_method_handler(
        lambda request, context: dict(context.invocation_metadata()).get("authorization", "none").encode())
    secure.add_generic_rpc_handlers((grpc.method_handlers_generic_handler("gnaming.test.Echo", {"Echo": handler}),))
    port = secure.add_secure_port("127.0.0.1:0", grpc.local_server_credentials(grpc.LocalConnectionType.LOCAL_TCP))
    secure.start()
    try:
        creds = grpc.composite_channel_credentials(grpc.local_channel_credentials(grpc.LocalConnectionType.LOCAL_TCP),
                                                   grpc.access_token_call_credentials("t0ken"))
        with gnaming.grpc.channel(f"pass:///127.0.0.1:{port}", creds) as ch:
            seen = ch.unary_unary(ECHO)(b"", timeout=10, wait_for_ready=True)
        assert seen == b"Bearer t0ken", f"the channel's credentials must reach the backend, it saw {seen!r}"
    finally:
        secure.stop(None)
    with pytest.raises(gnaming.InvalidArgumentError) as refused:
        gnaming.grpc.channel(f"pass:///{a.address}", options=[("grpc.service_config", "{}")])
    assert "swapping=True" in refused.value.message, refused.value.message
    with pytest.raises(gnaming.InvalidTargetError):
        gnaming.grpc.channel("etcd:///echo#0")


def test_the_asyncio_channel_follows_changes_and_copies(xds, service, backends):
    import asyncio

    a, b = backends(2)
    (reg_a,) = register(service, [a])

    async def replies(echo, n: int) -> set[str]:
        return {(await echo(b"", timeout=5)).decode() for _ in range(n)}

    async def converge(echo, want: set[str]) -> None:
        seen: set[str] = set()
        for _ in range(100):
            seen = await replies(echo, CLEAN_BATCH)
            if seen == want:
                return
            await asyncio.sleep(0.05)
        pytest.fail(f"expected replies from {want}, observed {seen}")

    async def main() -> None:
        async with gnaming.grpc.aio_channel(f"etcd:///{service}") as ch:
            assert isinstance(ch, grpc.aio.Channel)
            echo = ch.unary_unary(ECHO)
            assert (await echo(b"", timeout=10, wait_for_ready=True)) == b"s0"
            (reg_b,) = register(service, [b])
            await converge(echo, {"s0", "s1"})
            reg_a.close()
            await converge(echo, {"s1"})
            reg_b.close()
        async with gnaming.grpc.aio_channel(f"pass:///{a.address}#2,{b.address}#2") as copies:
            assert isinstance(copies, gnaming.grpc.AioCopiesChannel) and len(copies.channels) == 2
            await copies.channel_ready()
            a.reset()
            b.reset()
            await converge(copies.unary_unary(ECHO), {"s0", "s1"})
            stream = copies.unary_stream(COUNT)(b"3,1", timeout=5)
            assert [m async for m in stream][-1].endswith(b":2")

    asyncio.run(main())
    assert (len(a.peers), len(b.peers)) == (2, 2), f"#2 must give 2 connections each: {a.peers} {b.peers}"
