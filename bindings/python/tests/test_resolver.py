"""The Resolver in its three forms (callback, pull iterator, asyncio) on static targets, and the
error mapping from C statuses to exceptions."""

from __future__ import annotations

import asyncio
import json
import logging
import subprocess
import sys
import threading
import time

import pytest

import gnaming
from gnaming import AddressFamily

TARGET = "pass:///127.0.0.1:50051#2,[::1]:50052,name.test:7"
EXPECTED = [
    ("127.0.0.1:50051", AddressFamily.IPV4, 0),
    ("127.0.0.1:50051", AddressFamily.IPV4, 1),
    ("[::1]:50052", AddressFamily.IPV6, 0),
    ("name.test:7", AddressFamily.NAME, 0),
]


def entries(update: gnaming.Update) -> list[tuple]:
    return [(a.addr, a.family, a.copy_index) for a in update.addresses]


def test_the_library_loaded_has_the_abi_version_the_package_expects():
    assert gnaming.library_path.endswith("libgnaming.so")
    assert gnaming.version().count(".") == 2


def test_callback_resolver_delivers_the_static_list_with_copies_on_a_library_thread():
    got: list[gnaming.Update] = []
    threads: list[int] = []
    arrived = threading.Event()

    def on_update(update: gnaming.Update) -> None:
        got.append(update)
        threads.append(threading.get_ident())
        arrived.set()

    with gnaming.Resolver(TARGET, on_update) as r:
        assert arrived.wait(5), "no update within 5 s"
    assert r.closed
    assert got[0].ok and got[0].error is None and got[0].sequence == 1
    assert entries(got[0]) == EXPECTED, f"expected {EXPECTED}, observed {entries(got[0])}"
    assert threads[0] != threading.get_ident()


def test_pull_resolver_returns_the_list_then_times_out_then_reports_closed():
    with gnaming.Resolver(TARGET) as r:
        first = r.next(5)
        assert entries(first) == EXPECTED, f"expected {EXPECTED}, observed {entries(first)}"
        start = time.monotonic()
        with pytest.raises(gnaming.TimeoutError):
            r.next(0.2)
        assert 0.15 <= time.monotonic() - start < 2
    with pytest.raises(gnaming.ClosedError):
        r.next(0)


def test_closing_from_another_thread_ends_iteration():
    r = gnaming.Resolver("pass:///127.0.0.1:1")
    seen = []
    t = threading.Thread(target=lambda: seen.extend(u.sequence for u in r))
    t.start()
    time.sleep(0.3)
    r.close()
    t.join(5)
    assert not t.is_alive(), "iteration did not end after close()"
    assert seen == [1], f"expected [1], observed {seen}"


def test_close_racing_a_blocked_next_never_frees_the_handle_under_it():
    # gn_resolver_close wakes waiting next() calls before it returns; the handle must outlive both.
    for i in range(60):
        r = gnaming.Resolver("pass:///127.0.0.1:1")
        r.next(5)
        t = threading.Thread(target=lambda r=r: list(r))
        t.start()
        time.sleep((i % 12) * 0.02)
        r.close()
        t.join(5)
        assert not t.is_alive(), f"round {i}: iteration did not end after close()"


def test_a_callback_may_close_its_own_resolver():
    constructed = threading.Event()
    closed_inside = threading.Event()
    box: list[gnaming.Resolver] = []

    def on_update(update: gnaming.Update) -> None:
        # The first call may come before the constructor has returned.
        constructed.wait(5)
        box[0].close()
        closed_inside.set()

    box.append(gnaming.Resolver("pass:///127.0.0.1:1", on_update))
    constructed.set()
    assert closed_inside.wait(5)
    assert box[0].closed


def test_a_close_racing_the_callbacks_own_close_returns_only_after_the_callback_ended():
    for round_ in range(20):
        constructed = threading.Event()
        closing_inside = threading.Event()
        callback_ended = threading.Event()
        box: list[gnaming.Resolver] = []

        def on_update(update: gnaming.Update) -> None:
            constructed.wait(5)
            closing_inside.set()
            box[0].close()
            # Still running after its own close: an outside close must wait for this.
            time.sleep(0.02)
            callback_ended.set()

        box.append(gnaming.Resolver("pass:///127.0.0.1:1", on_update))
        constructed.set()
        assert closing_inside.wait(5), f"round {round_}: no callback"
        outcome: list[bool] = []
        closer = threading.Thread(target=lambda: (box[0].close(), outcome.append(callback_ended.is_set())))
        closer.start()
        closer.join(10)
        assert not closer.is_alive(), f"round {round_}: close() from another thread did not return in 10 s"
        assert outcome == [True], f"round {round_}: close() returned while the callback was still running"


def test_an_exception_in_the_callback_is_logged_and_does_not_stop_the_library(caplog):
    with caplog.at_level("ERROR", logger="gnaming"):
        done = threading.Event()

        def boom(update):
            done.set()
            raise RuntimeError("callback bug")

        with gnaming.Resolver("pass:///127.0.0.1:1", boom):
            assert done.wait(5)
            deadline = time.monotonic() + 5
            while "callback bug" not in caplog.text and time.monotonic() < deadline:
                time.sleep(0.01)
    assert "callback bug" in caplog.text


def test_library_logs_reach_python_logging_until_stopped(caplog):
    with caplog.at_level("DEBUG", logger="gnaming.lib"):
        gnaming.log_to_python(logging.DEBUG)
        try:
            with gnaming.Resolver("pass:///127.0.0.1:1") as r:
                r.next(5)
            deadline = time.monotonic() + 5
            while "resolver started" not in caplog.text and time.monotonic() < deadline:
                time.sleep(0.01)
        finally:
            gnaming.stop_logging_to_python()
        assert "resolver started" in caplog.text, caplog.text
        assert any(rec.name.startswith("gnaming.lib.") for rec in caplog.records)
        caplog.clear()
        with gnaming.Resolver("pass:///127.0.0.1:1") as r:
            r.next(5)
    assert "resolver started" not in caplog.text, caplog.text


def test_async_resolver_yields_updates_in_the_event_loop():
    async def main():
        async with gnaming.AsyncResolver(TARGET) as r:
            first = await r.next(5)
            with pytest.raises(gnaming.TimeoutError):
                await r.next(0.1)
        with pytest.raises(gnaming.ClosedError):
            await r.next(0)
        return first

    first = asyncio.run(main())
    assert entries(first) == EXPECTED, f"expected {EXPECTED}, observed {entries(first)}"


def test_async_iteration_stops_when_closed():
    async def main():
        r = gnaming.AsyncResolver("pass:///127.0.0.1:1")
        seqs = []
        asyncio.get_running_loop().call_later(0.3, r.close)
        async for update in r:
            seqs.append(update.sequence)
        return seqs

    assert asyncio.run(main()) == [1]


@pytest.mark.parametrize("target, error, words", [
    ("pass:///", gnaming.InvalidTargetError, "invalid target"),
    ("pass:///127.0.0.1:1 2", gnaming.InvalidTargetError, "space"),
    ("nosuch:///x", gnaming.UnsupportedSchemeError, "nosuch"),
])
def test_bad_targets_raise_the_status_exception_with_the_library_message(target, error, words):
    with pytest.raises(error) as info:
        gnaming.Resolver(target, lambda u: None)
    assert isinstance(info.value, gnaming.GnamingError)
    assert words in str(info.value), str(info.value)


def test_a_nul_in_the_target_is_rejected_before_reaching_c():
    with pytest.raises(gnaming.InvalidArgumentError):
        gnaming.Resolver("pass:///a\0b")


def test_watch_command_prints_the_list():
    out = subprocess.run([sys.executable, "-m", "gnaming", "watch", "--count", "1", "--json", TARGET],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    got = [(a["addr"], a["copy_index"]) for a in doc["addresses"]]
    assert got == [(a, c) for a, _, c in EXPECTED], f"observed {got}"


def test_watch_command_reports_a_bad_target_with_exit_code_1():
    out = subprocess.run([sys.executable, "-m", "gnaming", "watch", "pass:///"],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 1
    assert "invalid target" in out.stderr
