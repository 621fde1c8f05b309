"""The swapping channel (`gnaming.grpc.channel(..., swapping=True)`, `gnaming._swapping`) against real
grpcio servers: traffic shares from `#N`, connection counts, the plan that maps lists onto grpcio
targets, and connectivity callbacks that call back into the channel."""

from __future__ import annotations

import collections
import json
import subprocess
import sys
import textwrap

import grpc
import pytest

import gnaming.grpc as ggrpc
from gnaming import Address, AddressFamily, AddressKind, Update
from gnaming._swapping import plan, service_config

from conftest import COUNT, ECHO, JOIN, SHOUT


def echo_split(ch, n: int) -> collections.Counter:
    echo = ch.unary_unary(ECHO)
    return collections.Counter(echo(b"", timeout=5, wait_for_ready=True).decode() for _ in range(n))


def test_copies_give_2_to_1_traffic_and_2_plus_1_connections(backends):
    # The channel picks layers by a fixed schedule and each layer round-robins: the share is exact
    # but for the calls made while connections come up, so a few hundred calls tell 2:1 from 1:1.
    rpcs = 900
    a, b = backends(2)
    with ggrpc.channel(f"pass:///{a.address}#2,{b.address}#1", swapping=True, grace=0.5) as ch:
        counts = echo_split(ch, rpcs)
    share = counts[a.name] / rpcs
    assert abs(share - 2 / 3) <= 0.1 * 2 / 3, f"expected a:b = 2:1 over {rpcs} RPCs, observed {dict(counts)}"
    observed = (len(a.peers), len(b.peers))
    assert observed == (2, 1), f"expected (2, 1) connections server-side, observed {observed}: {a.peers} {b.peers}"


def test_a_single_address_channel_serves_unary_and_streaming_calls(backends):
    (a,) = backends(1)
    with ggrpc.channel(f"pass:///{a.address}", swapping=True) as ch:
        assert ch.unary_unary(ECHO)(b"", timeout=5, wait_for_ready=True) == a.name.encode()
        assert ch.unary_unary(ECHO).future(b"", timeout=5).result() == a.name.encode()
        reply, call = ch.unary_unary(ECHO).with_call(b"", timeout=5)
        assert call.code() == grpc.StatusCode.OK
        got = [m.decode() for m in ch.unary_stream(COUNT)(b"3,1", timeout=5)]
        assert got == [f"{a.name}:{i}" for i in range(3)]


def test_client_streaming_and_bidi_calls_pass_through(backends):
    (a,) = backends(1)
    with ggrpc.channel(f"pass:///{a.address}", swapping=True) as ch:
        assert ch.stream_unary(JOIN)(iter([b"x", b"y"]), timeout=5, wait_for_ready=True) == b"x,y"
        assert ch.stream_unary(JOIN).future(iter([b"z"]), timeout=5).result() == b"z"
        assert list(ch.stream_stream(SHOUT)(iter([b"a", b"b"]), timeout=5)) == [b"A", b"B"]


def test_the_channel_works_with_grpc_channel_ready_future(backends):
    (a,) = backends(1)
    with ggrpc.channel(f"pass:///{a.address}", swapping=True) as ch:
        grpc.channel_ready_future(ch).result(timeout=5)


def test_calls_after_close_are_cancelled(backends):
    (a,) = backends(1)
    ch = ggrpc.channel(f"pass:///{a.address}", swapping=True)
    ch.close()
    with pytest.raises(grpc.RpcError) as info:
        ch.unary_unary(ECHO)(b"", timeout=1)
    assert info.value.code() == grpc.StatusCode.CANCELLED


def addr(a: str, family=AddressFamily.IPV4, weight=1, copy=0) -> Address:
    return Address(a, family, AddressKind.BACKEND, weight, copy, None)


def update(*addresses: Address, config=None) -> Update:
    return Update(1, True, None, tuple(addresses), config)


def test_plan_lists_an_address_once_per_unit_of_weight_after_dividing_by_the_gcd():
    layers = plan(update(addr("127.0.0.1:1", weight=20), addr("127.0.0.2:1", weight=10)))
    assert [(l.target, l.share) for l in layers] == [("ipv4:127.0.0.1:1,127.0.0.1:1,127.0.0.2:1", 3)]


def test_plan_writes_ipv4_as_mapped_ipv6_when_families_mix():
    layers = plan(update(addr("127.0.0.1:1"), addr("[::1]:2", AddressFamily.IPV6)))
    assert [l.target for l in layers] == ["ipv6:[::ffff:127.0.0.1]:1,[::1]:2"]


def test_plan_puts_each_copy_in_its_own_layer_and_names_in_their_own_channel():
    layers = plan(update(addr("127.0.0.1:1"), addr("127.0.0.1:1", copy=1), addr("127.0.0.2:1"),
                               addr("db.test:5", AddressFamily.NAME),
                               Address("127.9.9.9:1", AddressFamily.IPV4, AddressKind.BALANCER, 1, 0, None)))
    got = [(l.target, dict(l.args)["gnaming.copy_index"], l.share) for l in layers]
    assert got == [("ipv4:127.0.0.1:1,127.0.0.2:1", 0, 2), ("ipv4:127.0.0.1:1", 1, 1), ("db.test:5", 0, 1)]


def test_plan_caps_huge_weights():
    layers = plan(update(addr("127.0.0.1:1", weight=1_000_000), addr("127.0.0.2:1", weight=3)))
    assert layers[0].target.count(",") + 1 <= 1001


def test_service_config_adds_round_robin_unless_a_policy_is_chosen():
    assert json.loads(service_config(None, None)) == {"loadBalancingConfig": [{"round_robin": {}}]}
    mine = '{"loadBalancingConfig":[{"pick_first":{}}]}'
    assert json.loads(service_config(mine, None))["loadBalancingConfig"] == [{"pick_first": {}}]
    user = '{"methodConfig":[]}'
    assert json.loads(service_config(None, user)) == {"methodConfig": [], "loadBalancingConfig": [{"round_robin": {}}]}


def test_a_service_config_that_is_not_a_json_object_is_ignored():
    assert json.loads(service_config("{broken", "[1]")) == {"loadBalancingConfig": [{"round_robin": {}}]}


def test_a_dns_target_for_localhost_reaches_the_server_whatever_families_it_resolves_to(backends):
    # localhost resolves to 127.0.0.1 and often ::1: a mixed list goes to grpcio as ipv6: with the
    # IPv4 address v4-mapped, and round_robin skips ::1, where nothing listens.
    (a,) = backends(1)
    with ggrpc.channel(f"dns:///localhost:{a.port}", swapping=True) as ch:
        replies = {ch.unary_unary(ECHO)(b"", timeout=5, wait_for_ready=True) for _ in range(20)}
        families = sorted({x.family.name for x in ch.last_update.addresses})
    assert replies == {a.name.encode()}, f"observed {replies} with families {families}"


# A callback that calls back into the channel when the list changes: emptied, the channel calls it
# itself with TRANSIENT_FAILURE from inside its update (it used to do so holding its lock, and such a
# callback deadlocked); grown, grpcio calls it from its own thread for the new inner channel.
# Runs in a child process: a deadlocked callback holds a library thread for good, and the exit hooks
# that close the channel would wait for it, so only a separate process can fail instead of hanging.
# For each case it prints "<change> <action>: ok", or says what did not happen and exits at once.
CALLBACK_SCRIPT = textwrap.dedent("""
    import os, sys, threading, time
    import grpc, gnaming, gnaming.grpc

    endpoints, service, first, second, echo_method = sys.argv[1:]
    gnaming.configure_cluster("", endpoints=endpoints)
    # Far above the milliseconds each step takes; a deadlock never ends.
    BOUND = 5.0
    READY, FAILURE = grpc.ChannelConnectivity.READY, grpc.ChannelConnectivity.TRANSIENT_FAILURE

    def poll(condition, what):
        deadline = time.monotonic() + BOUND
        while not condition():
            if time.monotonic() > deadline:
                print(f"{what}: not within {BOUND} s", flush=True)
                os._exit(2)
            time.sleep(0.01)

    def listed(ch):
        return sorted(a.addr for a in ch.last_update.addresses) if ch.last_update else None

    def registered(svc, address):
        reg = gnaming.Registration(svc, address)
        reg.wait(BOUND)
        return reg

    def run(change, action):
        case = f"{change} {action}"
        svc = f"{service}-{change}-{action}"
        regs = {first: registered(svc, first)}
        ch = gnaming.grpc.channel(f"etcd:///{svc}", swapping=True, grace=0.1)
        poll(lambda: listed(ch) == [first], f"{case}: the list [{first}]")
        seen, after, other_seen = [], [], []
        armed, returned = threading.Event(), threading.Event()

        def other(state):
            other_seen.append(state)

        def callback(state):
            if after:
                after.append(state)
                return
            # With the list emptied the channel itself reports TRANSIENT_FAILURE, from inside its
            # update; the live backend never makes grpcio report it.
            if not armed.is_set() or change == "emptied" and state != FAILURE:
                seen.append(state)
                return
            after.append(state)
            if action == "unsubscribe":
                ch.unsubscribe(callback)
            elif action == "subscribe":
                ch.subscribe(other)
            else:
                ch.close()
            returned.set()

        ch.subscribe(callback, try_to_connect=True)
        poll(lambda: READY in seen, f"{case}: READY before the change")
        armed.set()
        if change == "emptied":
            regs.pop(first).close()
        else:
            regs[second] = registered(svc, second)
        if not returned.wait(BOUND):
            print(f"{case}: deadlock, the callback's {action} did not return within {BOUND} s", flush=True)
            os._exit(1)
        if action == "unsubscribe":
            # Change the list back: an unsubscribed callback must not follow the channel there.
            if change == "emptied":
                regs[first] = registered(svc, first)
            else:
                regs.pop(second).close()
            poll(lambda: listed(ch) == [first], f"{case}: the list back to [{first}]")
            probe = []
            ch.subscribe(probe.append, try_to_connect=True)
            poll(lambda: READY in probe, f"{case}: READY after the change back")
            assert after == [after[0]], f"{case}: called after unsubscribe: {after}"
        elif action == "subscribe":
            poll(lambda: other_seen, f"{case}: a state for the callback subscribed inside the callback")
        else:
            try:
                outcome = ch.unary_unary(echo_method)(b"", timeout=1)
            except grpc.RpcError as e:
                outcome = e.code()
            assert outcome == grpc.StatusCode.CANCELLED, f"{case}: a call after close gave {outcome}"
        ch.close()
        for reg in regs.values():
            reg.close()
        print(f"{case}: ok", flush=True)

    for change in ("emptied", "grown"):
        for action in ("unsubscribe", "subscribe", "close"):
            run(change, action)
""")


def test_a_connectivity_callback_may_unsubscribe_subscribe_or_close_when_the_list_changes(etcd, service, backends):
    a, b = backends(2)
    out = subprocess.run([sys.executable, "-c", CALLBACK_SCRIPT, etcd.endpoints, service, a.address, b.address, ECHO],
                         capture_output=True, text=True, timeout=60)
    expected = [f"{change} {action}: ok" for change in ("emptied", "grown")
                for action in ("unsubscribe", "subscribe", "close")]
    assert (out.returncode, out.stdout.splitlines()) == (0, expected), \
        f"exit code {out.returncode}\nstdout: {out.stdout}\nstderr: {out.stderr}"
