"""ZooKeeper through the Python binding, against a real 3-server ensemble (GNAMING_TEST_ZK_SERVERS, from
tests/harness/zk_ensemble.py run): registrations are ephemeral Curator nodes that a `zk://` resolver
lists as they come and go, with their metadata; the ensemble's leader killed while registrations are
made loses none of them and pushes no empty list; a named ensemble with digest credentials keeps its
nodes from resolvers without them, or lets anyone read them, as its node ACL says."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading

import gnaming
import pytest

from conftest import wait_until

WAIT = 20.0
HARNESS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "tests", "harness",
                       "zk_ensemble.py")


def servers() -> str:
    found = os.environ.get("GNAMING_TEST_ZK_SERVERS", "")
    assert found, "GNAMING_TEST_ZK_SERVERS is not set: run under tests/harness/zk_ensemble.py run"
    return found


class Lists:
    """Every list a callback resolver delivered, as sorted addresses."""

    def __init__(self, target: str) -> None:
        self.seen: list[list[str]] = []
        self.errors: list[str] = []
        self.metadata: dict[str, object] = {}
        self._lock = threading.Lock()
        self.resolver = gnaming.Resolver(target, self._on_update)

    def _on_update(self, update: gnaming.Update) -> None:
        with self._lock:
            self.errors.append(update.error or "")
            self.seen.append(sorted(a.addr for a in update.addresses))
            for a in update.addresses:
                self.metadata[a.addr] = json.loads(a.metadata_json) if a.metadata_json else None

    def last(self) -> list[str]:
        with self._lock:
            return self.seen[-1] if self.seen else []

    def wait_for(self, want: list[str]) -> None:
        wait_until(lambda: self.last() == sorted(want), WAIT, f"the list {sorted(want)}", self.last)


def test_registrations_are_listed_as_they_come_and_go_with_their_metadata() -> None:
    service = f"zk://{servers()}/python/echo"
    lists = Lists(service)
    first = gnaming.Registration(service, "127.0.0.1:7401", metadata={"zone": "a", "weight": 3})
    first.wait(WAIT)
    lists.wait_for(["127.0.0.1:7401"])
    assert lists.metadata["127.0.0.1:7401"] == {"zone": "a", "weight": 3}
    with gnaming.Registration(service, "127.0.0.1:7402") as second:
        second.wait(WAIT)
        lists.wait_for(["127.0.0.1:7401", "127.0.0.1:7402"])
    lists.wait_for(["127.0.0.1:7401"])
    first.close()
    lists.wait_for([])
    lists.resolver.close()
    # Every list after the first registration's was a real one: never empty while a node was up.
    up = lists.seen.index(["127.0.0.1:7401"])
    assert all(lists.seen[up:-1]), f"an empty list while registered: {lists.seen}"


def ensemble(*args: str) -> str:
    """Runs the harness's CLI on this run's ensemble (GNAMING_TEST_ZK_DIR)."""
    state = os.environ.get("GNAMING_TEST_ZK_DIR", "")
    assert state, "GNAMING_TEST_ZK_DIR is not set: run under tests/harness/zk_ensemble.py run"
    out = subprocess.run([sys.executable, HARNESS, *args, "--dir", state], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, f"zk_ensemble.py {args}: {out.stderr}"
    return out.stdout.strip()


def test_killing_the_leader_loses_no_registration_and_pushes_no_empty_list() -> None:
    service = f"zk://{servers()}/python/leader"
    lists = Lists(service)
    first = gnaming.Registration(service, "127.0.0.1:7501")
    first.wait(WAIT)
    lists.wait_for(["127.0.0.1:7501"])
    leader = ensemble("leader").split()[-1]
    ensemble("signal", "--server", leader, "--signal", "KILL")
    # Two servers of three still make a quorum: registrations made now must reach the resolver.
    later = [gnaming.Registration(service, f"127.0.0.1:{port}") for port in (7502, 7503)]
    for reg in later:
        reg.wait(WAIT)
    lists.wait_for(["127.0.0.1:7501", "127.0.0.1:7502", "127.0.0.1:7503"])
    ensemble("restart", "--server", leader)
    first.wait(WAIT)
    assert first.state == gnaming.RegistrationState.REGISTERED
    for reg in [first, *later]:
        reg.close()
    lists.wait_for([])
    lists.resolver.close()
    up = lists.seen.index(["127.0.0.1:7501"])
    assert all(lists.seen[up:-1]), f"an empty list while registered: {lists.seen}"


def test_a_named_ensemble_with_digest_credentials_guards_its_nodes_as_its_acl_says() -> None:
    gnaming.configure_zk("py-private", servers=servers(), digest=("svc", "right"), node_acl="creator-all")
    gnaming.configure_zk("py-public", servers=servers(), digest=("svc", "right"), node_acl="creator-all-anyone-read")
    with gnaming.Registration("zk://py-private/python/private", "127.0.0.1:7421") as private, \
            gnaming.Registration("zk://py-public/python/public", "127.0.0.1:7422") as public:
        private.wait(WAIT)
        public.wait(WAIT)
        owner = Lists("zk://py-private/python/private")
        owner.wait_for(["127.0.0.1:7421"])
        stranger = Lists(f"zk://{servers()}/python/private")
        wait_until(lambda: any("not authorized" in e for e in stranger.errors), WAIT, "a 'not authorized' error",
                   lambda: stranger.errors[-1:])
        assert all(seen == [] for seen in stranger.seen), stranger.seen
        reader = Lists(f"zk://{servers()}/python/public")
        reader.wait_for(["127.0.0.1:7422"])
        for lists in (owner, stranger, reader):
            lists.resolver.close()
    with pytest.raises(gnaming.InvalidArgumentError, match="a creator ACL needs digest credentials"):
        gnaming.configure_zk("py-no-credentials", servers=servers(), node_acl="creator-all")
    with pytest.raises(gnaming.InvalidArgumentError, match="node ACL 'secret' is not one of"):
        gnaming.configure_zk("py-bad-acl", servers=servers(), digest=("svc", "right"), node_acl="secret")
    with pytest.raises(gnaming.InvalidArgumentError, match="is not host:port"):
        gnaming.configure_zk("py-bad-servers", servers="zk1")
