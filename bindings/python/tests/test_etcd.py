"""Discovery through a real 3-member etcd cluster: registrations and their metadata, exit with a live
registration, and the swapping channel (`gnaming.grpc.channel(..., swapping=True)`) on
`etcd:///service` following the servers while RPCs are running. The xDS channel's etcd tests are in
test_xds.py."""

from __future__ import annotations

import collections
import os
import threading
import time

import grpc
import pytest

import gnaming
import gnaming.grpc as ggrpc
from gnaming._swapping import Channel

from conftest import COUNT, ECHO, channel_addresses, wait_until
from test_exit import run_script

GRACE = 2.0


class Traffic:
    """Sequential unary RPCs on a thread until stopped or `limit` calls; records every outcome."""

    def __init__(self, ch: Channel, limit: int = 1_000_000, pause: float = 0.0) -> None:
        self.replies: list[str] = []
        self.failures: list[str] = []
        self._stop = threading.Event()
        self._echo = ch.unary_unary(ECHO)
        self._limit, self._pause = limit, pause
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set() and len(self.replies) + len(self.failures) < self._limit:
            try:
                self.replies.append(self._echo(b"", timeout=5).decode())
            except grpc.RpcError as e:
                self.failures.append(f"{e.code()}: {e.details()}")
            if self._pause:
                time.sleep(self._pause)

    @property
    def done(self) -> int:
        return len(self.replies) + len(self.failures)

    def wait_for(self, n: int, timeout: float = 30) -> None:
        wait_until(lambda: self.done >= n or not self._thread.is_alive(), timeout, f"{n} RPCs", lambda: self.done)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(30)
        assert not self._thread.is_alive(), "traffic thread did not stop"


def register(service: str, backends, **kw) -> list[gnaming.Registration]:
    regs = [gnaming.Registration(service, b.address, **kw) for b in backends]
    for r in regs:
        r.wait(10)
    return regs


def wait_for_list(ch, expected: list[str], timeout: float = 10) -> None:
    expected = sorted(expected)
    wait_until(lambda: channel_addresses(ch) == expected, timeout, f"address list {expected}",
               lambda: channel_addresses(ch))


def test_registration_is_seen_with_its_metadata_and_removed_on_close(etcd, service, backends):
    (a,) = backends(1)
    with gnaming.Resolver(f"etcd:///{service}") as r:
        reg = gnaming.Registration(service, a.address, metadata={"zone": "z1"})
        reg.wait(10)
        assert reg.state == gnaming.RegistrationState.REGISTERED
        deadline = time.monotonic() + 10
        update = r.next(10)
        while [x.addr for x in update.addresses] != [a.address] and time.monotonic() < deadline:
            update = r.next(10)
        assert [x.addr for x in update.addresses] == [a.address], f"observed {update.addresses}"
        assert update.addresses[0].metadata == {"zone": "z1"}
        reg.close()
        assert reg.state == gnaming.RegistrationState.CLOSED
        update = r.next(10)
        assert update.ok and update.addresses == (), f"expected [], observed {update.addresses}"
    assert isinstance(gnaming.stats(), dict)


def test_a_kratos_format_registration_resolves_under_kratos_layout_and_unknown_formats_are_refused(
        etcd, service, backends):
    (a,) = backends(1)
    with gnaming.Resolver(f"etcd:////microservices/{service}") as r:
        with gnaming.Registration(service, a.address, metadata={"version": "v2"}, format="kratos") as reg:
            reg.wait(10)
            deadline = time.monotonic() + 10
            update = r.next(10)
            while [x.addr for x in update.addresses] != [a.address] and time.monotonic() < deadline:
                update = r.next(10)
            assert [x.addr for x in update.addresses] == [a.address], f"observed {update.addresses}"
            metadata = update.addresses[0].metadata
            assert (metadata["version"], metadata["isSecure"]) == ("v2", False), f"observed {metadata}"
    with pytest.raises(gnaming.InvalidArgumentError, match="etcd, kratos, go-micro"):
        gnaming.Registration(service, a.address, format="micro")


def test_three_servers_share_traffic_and_removing_one_mid_traffic_loses_no_rpc(etcd, service, backends):
    servers = backends(3)
    regs = register(service, servers)
    with ggrpc.channel(f"etcd:///{service}", swapping=True, grace=GRACE) as ch:
        wait_for_list(ch, [b.address for b in servers])
        traffic = Traffic(ch)
        traffic.wait_for(300)
        before = collections.Counter(traffic.replies)
        # Streams started before the swap, at least one of them on the server about to go. Round
        # robin shares its turns with the traffic, so a stream lands on s0 with odds of about 1 in 3:
        # 30 tries miss it once in 200,000 runs (12 missed it once in 100).
        streams, first = [], []
        while "s0" not in {f.split(":")[0] for f in first} and len(streams) < 30:
            streams.append(ch.unary_stream(COUNT)(b"20,50", timeout=20))
            first.append(next(streams[-1]).decode())
        ggrpc.stop_server(servers[0].server, [regs[0]], drain=0.5, grace=5)
        calls_at_removal = traffic.done
        wait_for_list(ch, [b.address for b in servers[1:]])
        traffic.wait_for(calls_at_removal + 300)
        traffic.stop()
        rest = [[m.decode() for m in s] for s in streams]
        after = collections.Counter(traffic.replies[calls_at_removal:])
    for r in regs[1:]:
        r.close()
    assert traffic.failures == [], f"expected no failed RPC, observed {traffic.failures[:5]} ({len(traffic.failures)})"
    assert set(before) == {"s0", "s1", "s2"}, f"expected all three servers before, observed {dict(before)}"
    assert set(after) == {"s1", "s2"}, f"expected s1 and s2 after the removal, observed {dict(after)}"
    assert "s0:0" in first, f"no stream reached the removed server: {first}"
    assert [len(r) for r in rest] == [19] * len(streams), f"streams were cut: {rest}"


def _counts() -> tuple[int, int, int]:
    return threading.active_count(), len(os.listdir("/proc/self/task")), len(os.listdir("/proc/self/fd"))


def test_200_rapid_updates_during_1000_rpcs_fail_none_and_leak_no_threads_or_fds(etcd, service, backends):
    servers = backends(3)
    steady = register(service, servers[:2])
    target = f"etcd:///{service}"
    # Warm up grpcio's and the library's process-wide threads, and each test server's worker
    # threads, before taking the baseline.
    with ggrpc.channel(target, swapping=True, grace=0.1) as warm:
        wait_for_list(warm, [b.address for b in servers[:2]])
        warm.unary_unary(ECHO)(b"", timeout=5)
    with ggrpc.channel("pass:///" + ",".join(b.address for b in servers), swapping=True, grace=0.1) as warm:
        for _ in range(30):
            warm.unary_unary(ECHO)(b"", timeout=5, wait_for_ready=True)
    time.sleep(0.5)
    baseline = _counts()

    with ggrpc.channel(target, swapping=True, grace=0.2) as ch:
        wait_for_list(ch, [b.address for b in servers[:2]])
        traffic = Traffic(ch, limit=1000, pause=0.002)
        for _ in range(100):
            reg = gnaming.Registration(service, servers[2].address)
            reg.wait(10)
            time.sleep(0.005)
            reg.close()
            time.sleep(0.005)
        traffic.wait_for(1000, timeout=60)
        traffic.stop()
        seq = ch.last_update.sequence
    for r in steady:
        r.close()

    assert traffic.failures == [], f"expected 0 failed RPCs of 1000, observed {len(traffic.failures)}: {traffic.failures[:5]}"
    assert len(traffic.replies) == 1000
    assert seq >= 50, f"expected most of the 200 updates to reach the channel, observed sequence {seq}"
    observed = baseline
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        observed = _counts()
        if all(o <= b for o, b in zip(observed, baseline)):
            break
        time.sleep(0.1)
    assert all(o <= b for o, b in zip(observed, baseline)), \
        f"(python threads, OS threads, fds): baseline {baseline}, after {observed}"


def test_an_empty_list_fails_new_calls_fast_but_keeps_in_flight_ones_and_waits_for_ready(etcd, service, backends):
    (a,) = backends(1)
    (reg,) = register(service, [a])
    with ggrpc.channel(f"etcd:///{service}", swapping=True, grace=GRACE) as ch:
        wait_for_list(ch, [a.address])
        stream = ch.unary_stream(COUNT)(b"10,50", timeout=20)
        assert next(stream) == b"s0:0"
        reg.close()
        wait_for_list(ch, [])
        start = time.monotonic()
        with pytest.raises(grpc.RpcError) as info:
            ch.unary_unary(ECHO)(b"", timeout=5)
        assert info.value.code() == grpc.StatusCode.UNAVAILABLE, info.value
        assert time.monotonic() - start < 0.5, "an empty list must fail calls fast"
        assert "empty" in info.value.details()
        result: list = []
        t = threading.Thread(target=lambda: result.append(ch.unary_unary(ECHO)(b"", timeout=10, wait_for_ready=True)))
        t.start()
        time.sleep(0.3)
        assert t.is_alive(), "a wait_for_ready call must wait for addresses"
        (reg2,) = register(service, [a])
        t.join(10)
        assert result == [b"s0"], f"observed {result}"
        assert ch.unary_unary(ECHO).future(b"", timeout=5).result() == b"s0"
        assert [m.decode() for m in stream] == [f"s0:{i}" for i in range(1, 10)]
        reg2.close()


def test_an_etcd_outage_keeps_rpcs_flowing_to_the_last_known_servers(backends, service):
    from conftest import _harness

    servers = backends(2)
    with _harness().EtcdCluster(members=3) as cluster:
        gnaming.configure_cluster("outage", endpoints=cluster.endpoints, dial_timeout=1.0, request_timeout=1.0)
        regs = register(service, servers, cluster="outage", ttl=5)
        with ggrpc.channel(f"etcd://outage/{service}", swapping=True, grace=GRACE) as ch:
            wait_for_list(ch, [b.address for b in servers])
            traffic = Traffic(ch, pause=0.005)
            traffic.wait_for(100)
            cluster.stop_all()
            outage_start = traffic.done
            wait_until(lambda: not ch.last_update.ok, 20, "the resolver to report the outage",
                       lambda: ch.last_update)
            traffic.wait_for(outage_start + 100)
            during = collections.Counter(traffic.replies[outage_start:])
            assert channel_addresses(ch) == sorted(b.address for b in servers)
            traffic.stop()
        assert traffic.failures == [], f"observed {traffic.failures[:5]}"
        assert set(during) == {"s0", "s1"}, f"expected both servers during the outage, observed {dict(during)}"
        for r in regs:
            try:
                r.close(timeout=0.5)
            except gnaming.GnamingError:
                pass  # etcd is down: the key cannot be deleted, and the cluster is discarded


def test_exit_with_a_live_registration_and_etcd_watch_is_clean_and_deregisters(etcd, service):
    out = run_script(etcd.endpoints, service)
    assert out.returncode == 0, f"exit code {out.returncode}\nstdout: {out.stdout}\nstderr: {out.stderr}"
    assert "Traceback" not in out.stderr and "Fatal" not in out.stderr, out.stderr
    # The exit hook deleted the key rather than leaving it to the 5 s lease.
    with gnaming.Resolver(f"etcd:///{service}") as r:
        update = r.next(5)
    assert update.ok and update.addresses == (), f"expected no addresses, observed {update.addresses}"


def test_weights_1_3_6_from_registration_metadata_share_the_picks(etcd, service, backends):
    servers = backends(3)
    weights = (1, 3, 6)
    regs = [gnaming.Registration(service, s.address, metadata={"weight": w}) for s, w in zip(servers, weights)]
    for r in regs:
        r.wait(10)
    with ggrpc.channel(f"etcd:///{service}", swapping=True, grace=GRACE) as ch:
        wait_for_list(ch, [s.address for s in servers])
        observed = sorted((x.addr, x.weight) for x in ch.last_update.addresses)
        assert observed == sorted((s.address, w) for s, w in zip(servers, weights)), f"observed {observed}"
        echo = ch.unary_unary(ECHO)
        # Each weight unit is one entry of the round robin list: the share is exact but for the
        # first calls, while connections come up.
        counts = collections.Counter(echo(b"", timeout=5, wait_for_ready=True).decode() for _ in range(1000))
    for r in regs:
        r.close()
    for s, w in zip(servers, weights):
        assert abs(counts[s.name] - 100 * w) <= 40, f"expected 1:3:6 over 1,000 RPCs, observed {dict(counts)}"


def test_an_unreachable_etcd_fails_new_calls_fast_with_the_resolver_error(etcd, service):
    with ggrpc.channel(f"etcd://127.0.0.1:1/{service}", swapping=True, grace=GRACE) as ch:
        wait_until(lambda: ch.last_update is not None and not ch.last_update.ok, 20,
                   "a transient error from the resolver", lambda: ch.last_update)
        start = time.monotonic()
        with pytest.raises(grpc.RpcError) as info:
            ch.unary_unary(ECHO)(b"", timeout=5)
        assert time.monotonic() - start < 0.5
        assert info.value.code() == grpc.StatusCode.UNAVAILABLE
        assert ch.last_update.error in info.value.details(), info.value.details()
