"""Warm-up and drain of a registration against a real 3-member etcd cluster: the address appears only
after the warm-up, a drain removes it before returning and returns after its period, and a drain
during the warm-up writes nothing and returns at once."""

from __future__ import annotations

import threading
import time

import pytest

import gnaming


def test_a_warm_up_delays_the_address_and_a_drain_removes_it_before_returning(etcd, service, backends):
    (a,) = backends(1)
    with gnaming.Resolver(f"etcd:///{service}") as r:
        start = time.monotonic()
        reg = gnaming.Registration(service, a.address, warmup=0.5)
        assert reg.state == gnaming.RegistrationState.WARMING_UP
        with pytest.raises(gnaming.TimeoutError):
            reg.wait(0.1)
        deadline = start + 10
        update = r.next(10)
        while [x.addr for x in update.addresses] != [a.address] and time.monotonic() < deadline:
            update = r.next(10)
        seen = time.monotonic() - start
        assert [x.addr for x in update.addresses] == [a.address], f"observed {update.addresses}"
        assert seen >= 0.5, f"listed {seen:.3f} s after the start, within the 0.5 s warm-up"
        reg.wait(10)

        took = []
        start = time.monotonic()
        drainer = threading.Thread(target=lambda: (reg.drain(0.6), took.append(time.monotonic() - start)))
        drainer.start()
        update = r.next(10)
        seen = time.monotonic() - start
        draining = drainer.is_alive()
        drainer.join(10)
        assert update.ok and update.addresses == (), f"expected [] once drain began, observed {update.addresses}"
        assert draining and seen < 0.3, f"the address went {seen:.3f} s after drain began, not at its start"
        assert took and took[0] >= 0.6, f"drain returned after {took} s, before its 0.6 s period"
        assert reg.state == gnaming.RegistrationState.CLOSED
        start = time.monotonic()
        reg.drain(1.0)
        assert time.monotonic() - start < 0.3, "a second drain waited"


def test_a_drain_during_the_warm_up_writes_nothing_and_returns_at_once(etcd, service, backends):
    (a,) = backends(1)
    reg = gnaming.Registration(service, a.address, warmup=0.3)
    start = time.monotonic()
    reg.drain(2.0)
    took = time.monotonic() - start
    assert took < 0.25, f"drain during the warm-up took {took:.3f} s"
    assert reg.state == gnaming.RegistrationState.CLOSED
    with gnaming.Resolver(f"etcd:///{service}") as r:
        end = time.monotonic() + 0.6
        while time.monotonic() < end:
            try:
                update = r.next(0.1)
            except gnaming.TimeoutError:
                continue
            assert a.address not in [x.addr for x in update.addresses], f"written after all: {update.addresses}"


def test_bad_warm_up_and_drain_values_are_refused():
    with pytest.raises(gnaming.InvalidArgumentError, match="warmup is out of range"):
        gnaming.Registration("svc", "127.0.0.1:1", warmup=-1)
