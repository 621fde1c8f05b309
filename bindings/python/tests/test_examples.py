"""The examples under examples/python run: two echo servers register in etcd, the client reaches
both through etcd:///echo, and a stopped server deregisters."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import gnaming

from conftest import REPO

EXAMPLES = REPO / "examples" / "python"


def test_echo_client_reaches_both_registered_echo_servers(etcd):
    env = dict(os.environ, GNAMING_ETCD_ENDPOINTS=etcd.endpoints)
    servers = [subprocess.Popen([sys.executable, str(EXAMPLES / "echo_server.py")], env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    try:
        addresses = sorted(s.stdout.readline().split()[-1] for s in servers)
        client = subprocess.run([sys.executable, str(EXAMPLES / "echo_client.py"), "etcd:///echo", "10"],
                                env=env, capture_output=True, text=True, timeout=60)
        assert client.returncode == 0, client.stderr
        answered = sorted({line.split()[0] for line in client.stdout.splitlines()})
        assert answered == addresses, f"expected answers from {addresses}, observed {client.stdout!r}"
    finally:
        for s in servers:
            s.send_signal(signal.SIGTERM)
        codes = [s.wait(30) for s in servers]
    assert codes == [0, 0], f"servers exited with {codes}: {[s.stderr.read() for s in servers]}"
    with gnaming.Resolver("etcd:///echo") as r:
        update = r.next(5)
    assert update.addresses == (), f"expected no echo servers left, observed {update.addresses}"
