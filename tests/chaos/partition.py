#!/usr/bin/env python3
"""The partition scenario: a 3-member etcd cluster with each member in a network namespace of its
own and the client (this process, through the Python binding) in another (tests/chaos/netns.py).

1. The member the client's watch and registrations use first (member 0: the first endpoint) is cut
   off from its two peers while it keeps answering the client; changes are made through the others.
2. Healed; then the client is cut off from member 1, and changes are made through member 2.

Each time the resolver must end with exactly etcd's list (read through a member of the majority),
never be handed an empty list while etcd holds keys, and the registrations' keys must be in etcd.
Prints one JSON line with what happened and how long each phase took to settle; exits non-zero when
a check fails. Without root or network namespaces it says why and exits 0 after writing the reason to
$GNAMING_SUITE_SKIPPED (counted as skipped, never as passed).

  partition.py [--changes N]        (as root; runs itself again inside the client namespace)
"""

import argparse
import base64
import json
import os
import subprocess
import sys
import threading
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "harness"))
import netns  # noqa: E402
from etcd_cluster import EtcdCluster  # noqa: E402

PREFIX = "chaos/partition"
SETTLE_S = 30.0


def skip(why):
    print(f"partition: skipped: {why}")
    path = os.environ.get("GNAMING_SUITE_SKIPPED")
    if path:
        with open(path, "a") as f:
            f.write(f"partition: {why}\n")
    return 0


def kv(member_url, path, body, patience=15.0):
    """One request through `member_url`, retried (bounded) while the cluster elects a leader: a member
    healed from a partition may start an election (etcd 3.4 runs without pre-vote by default)."""
    deadline = time.monotonic() + patience
    while True:
        req = urllib.request.Request(member_url + path, data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=2) as r:
                return json.load(r)
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def b64(text):
    return base64.b64encode(text.encode()).decode()


def etcd_list(member_url):
    """The addresses under PREFIX/ as etcd holds them (a linearizable read through `member_url`)."""
    start = PREFIX + "/"
    end = PREFIX + "0"  # '/' + 1
    r = kv(member_url, "/v3/kv/range", {"key": b64(start), "range_end": b64(end), "keys_only": True})
    return sorted(base64.b64decode(k["key"]).decode()[len(start):] for k in r.get("kvs", []))


class Lists:
    """Every update a callback resolver delivered: (time, ok, sorted addresses)."""

    def __init__(self, gnaming, target):
        self.seen = []
        self._lock = threading.Lock()
        self.resolver = gnaming.Resolver(target, self._on_update)

    def _on_update(self, update):
        with self._lock:
            self.seen.append((time.monotonic(), update.ok, sorted(a.addr for a in update.addresses)))

    def last(self):
        with self._lock:
            ok = [s for s in self.seen if s[1]]
            return ok[-1][2] if ok else None

    def empties(self):
        with self._lock:
            return [s for s in self.seen if s[1] and not s[2]]


def settle(lists, member_url, since):
    """Seconds from `since` until the resolver's list equals etcd's; raises after SETTLE_S."""
    deadline = since + SETTLE_S
    while time.monotonic() < deadline:
        try:
            want = etcd_list(member_url)
        except OSError:
            want = None
        if want is not None and lists.last() == want:
            return round(time.monotonic() - since, 3), want
        time.sleep(0.05)
    raise AssertionError(f"the resolver's list {lists.last()} never equalled etcd's {etcd_list(member_url)} "
                         f"within {SETTLE_S} s")


def connected_members(addresses):
    """Indexes of the members this process holds established TCP connections to (port 2379), from
    /proc/self/net/tcp: each member's client is one HTTP/2 connection carrying watches, reads and
    keep-alives, so before any failure only the member in use has one."""
    found = set()
    with open("/proc/self/net/tcp") as f:
        for line in f.readlines()[1:]:
            fields = line.split()
            remote, state = fields[2], fields[3]
            host_hex, port_hex = remote.split(":")
            if state != "01" or int(port_hex, 16) != 2379:
                continue
            ip = ".".join(str(int(host_hex[i:i + 2], 16)) for i in (6, 4, 2, 0))
            if ip in addresses:
                found.add(addresses.index(ip))
    return sorted(found)


def churn(member_url, changes, round_no):
    """`changes` puts and deletes under PREFIX through one member; keys of this round only."""
    for i in range(changes):
        key = f"{PREFIX}/10.99.{round_no}.{i % 50}:{7000 + i % 50}"
        if i % 3 == 2:
            kv(member_url, "/v3/kv/deleterange", {"key": b64(key)})
        else:
            kv(member_url, "/v3/kv/put", {"key": b64(key), "value": b64(key.rsplit("/", 1)[1])})


def inside(args, net_state):
    import gnaming

    members = net_state["members"]
    nodes = net_state["nodes"]
    addresses = net_state["addresses"]
    net = netns.Network.__new__(netns.Network)
    net.nodes, net.addresses, net.cuts, net.created = nodes, addresses, set(), []
    result = {"scenario": "partition", "changes_per_phase": args.changes}
    with EtcdCluster(members=3, netns=members) as cluster:
        urls = [m["client_url"] for m in cluster.state["members"]]
        gnaming.configure_cluster("", endpoints=",".join(u.split("://")[1] for u in urls),
                                  dial_timeout=0.5, request_timeout=1.0)
        regs = [gnaming.Registration(PREFIX, f"10.98.0.{i}:9000", ttl=5.0) for i in range(1, 4)]
        for r in regs:
            r.wait(15.0)
        registered = sorted(f"10.98.0.{i}:9000" for i in range(1, 4))
        lists = Lists(gnaming, f"etcd:///{PREFIX}")
        settle(lists, urls[1], time.monotonic())
        try:
            def phase(name, cuts, writer):
                """Cuts `cuts`, makes the changes through member `writer`, waits for the lists to agree."""
                for a, b in cuts:
                    net.cut(a, b)
                cut_at = time.monotonic()
                churn(urls[writer], args.changes, len(result))
                took, final = settle(lists, urls[writer], cut_at)
                missing = [a for a in registered if a not in final]
                assert not missing, f"{name}: registrations lost: {missing}"
                result[name] = {"settled_s": took, "final_entries": len(final)}
                net.heal_all()

            # 1. Member 0, the first endpoint, cut off from its peers; it still answers the client.
            in_use = connected_members(addresses[:3])
            assert in_use == [0], f"before the cut the client should use member 0 only; it is connected to {in_use}"
            result["members_in_use_before_the_cut"] = in_use
            phase("member_cut_from_peers", [(0, 1), (0, 2)], writer=1)
            # 2. The client cut off from member 1 (where the watch went when member 0 was cut off).
            result["members_in_use_before_the_client_cut"] = connected_members(addresses[:3])
            phase("client_cut_from_member", [(3, 1)], writer=2)
            assert not lists.empties(), f"an empty list was pushed while etcd held keys: {lists.empties()}"
            states = [r.state.name for r in regs]
            assert all(s == "REGISTERED" for s in states), f"registration states at the end: {states}"
            result["updates"] = len(lists.seen)
            result["stats"] = {k: v for k, v in gnaming.stats().items()
                               if k in ("watch_restarts", "relists", "lease_losses", "reregistrations")}
        finally:
            net.heal_all()
            lists.resolver.close()
            for r in regs:
                r.close(2.0)
    print(json.dumps(result))
    return 0


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--changes", type=int, default=30)
    p.add_argument("--inside", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.inside:
        return inside(args, json.loads(args.inside))
    ok, why = netns.Network.available()
    if not ok:
        return skip(why)
    net = netns.Network(3).create()
    try:
        state = {"members": net.members, "nodes": net.nodes, "addresses": net.addresses}
        cmd = ["ip", "netns", "exec", net.client, sys.executable, os.path.abspath(__file__),
               "--changes", str(args.changes), "--inside", json.dumps(state)]
        return subprocess.run(cmd, timeout=600).returncode
    finally:
        net.destroy()


if __name__ == "__main__":
    sys.exit(main())
