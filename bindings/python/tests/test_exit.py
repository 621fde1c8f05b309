"""Interpreter exit with live handles: resolvers with callbacks in flight, pull resolvers with
updates nobody took, a thread blocked in next(), channels in their grace period. The process must
exit cleanly (code 0, no traceback, no crash) every time."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

SCRIPT = textwrap.dedent("""
    import logging, sys, threading, time
    import gnaming, gnaming.grpc

    # A log sink into Python must be removed before the interpreter finalizes, too.
    logging.basicConfig(level=logging.CRITICAL)
    gnaming.log_to_python(logging.DEBUG)

    started = threading.Event()

    def slow(update):
        started.set()
        time.sleep(0.2)

    callbacks = [gnaming.Resolver(f"pass:///127.0.0.1:{1000 + i}#3", slow) for i in range(20)]
    pending = [gnaming.Resolver(f"pass:///127.0.0.1:{2000 + i}") for i in range(10)]
    blocked = gnaming.Resolver("pass:///127.0.0.1:3000")
    blocked.next(5)
    threading.Thread(target=lambda: list(blocked), daemon=True).start()
    channel = gnaming.grpc.channel("pass:///127.0.0.1:1,127.0.0.1:2", grace=60)
    extra = sys.argv[1:]
    if extra:
        gnaming.configure_cluster("", endpoints=extra[0])
        registration = gnaming.Registration(extra[1], "127.0.0.1:9", ttl=5)
        watched = gnaming.Resolver(f"etcd:///{extra[1]}", slow)
    started.wait(5)
    print("exiting with live handles", flush=True)
""")


def run_script(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", SCRIPT, *args], capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("attempt", range(5))
def test_exit_with_live_resolvers_and_pending_updates_is_clean(attempt):
    out = run_script()
    assert out.returncode == 0, f"exit code {out.returncode}\nstdout: {out.stdout}\nstderr: {out.stderr}"
    assert "exiting with live handles" in out.stdout
    assert "Traceback" not in out.stderr and "Fatal" not in out.stderr, out.stderr
