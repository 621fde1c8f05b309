#!/usr/bin/env python3
"""Leader kill under churn, through each binding: puts and deletes under one prefix of a real 3-member
etcd cluster, with the leader SIGKILLed halfway and restarted a moment later, while three subscribers
follow the prefix: the Go binding's grpc-go resolver (tests/chaos/go), a C++ program on gnaming.h's
pull API (tests/chaos/cpp) and the Python binding in this process. Each must end with exactly etcd's
final list, never be handed an empty list (three anchor keys are never deleted) and never show a key
that was never written. Prints one JSON line with what each subscriber saw; exits non-zero when a
check fails.

  churn.py --go BIN --cpp BIN [--changes 1000] [--seed 7]
"""

import argparse
import base64
import json
import os
import random
import subprocess
import sys
import threading
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "harness"))
from etcd_cluster import EtcdCluster  # noqa: E402

PREFIX = "chaos/churn"
SETTLE_S = 30.0
WRITE_PATIENCE_S = 15.0


def b64(text):
    return base64.b64encode(text.encode()).decode()


def call(url, path, body, timeout=2):
    req = urllib.request.Request(url + path, data=json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=timeout) as r:
        return json.load(r)


class Etcd:
    """Writes and reads through whichever member answers, retrying (bounded) across an election."""

    def __init__(self, cluster):
        self.cluster = cluster

    def urls(self):
        self.cluster._reload()
        return [m["client_url"] for i, m in enumerate(self.cluster.state["members"]) if m["pid"]]

    def request(self, path, body):
        deadline = time.monotonic() + WRITE_PATIENCE_S
        last = None
        while time.monotonic() < deadline:
            for url in self.urls():
                try:
                    return call(url, path, body)
                except OSError as e:
                    last = e
            time.sleep(0.05)
        raise RuntimeError(f"no member answered {path} within {WRITE_PATIENCE_S} s: {last}")

    def put(self, addr):
        self.request("/v3/kv/put", {"key": b64(f"{PREFIX}/{addr}"), "value": b64(addr)})

    def delete(self, addr):
        self.request("/v3/kv/deleterange", {"key": b64(f"{PREFIX}/{addr}")})

    def listing(self):
        r = self.request("/v3/kv/range", {"key": b64(PREFIX + "/"), "range_end": b64(PREFIX + "0"),
                                          "keys_only": True})
        return sorted(base64.b64decode(k["key"]).decode()[len(PREFIX) + 1:] for k in r.get("kvs", []))

    def leader(self):
        """The index of the member that leads now."""
        for i, url in enumerate(self.urls()):
            try:
                status = call(url, "/v3/maintenance/status", {})
            except OSError:
                continue
            leader = status.get("leader")
            for j, m in enumerate(self.cluster.state["members"]):
                try:
                    if call(m["client_url"], "/v3/maintenance/status", {})["header"]["member_id"] == leader:
                        return j
                except OSError:
                    continue
        raise RuntimeError("no member knows a leader")


class Subscriber:
    """Every update one subscriber printed or delivered: (time, ok, addresses)."""

    def __init__(self, name):
        self.name = name
        self.seen = []
        self.lock = threading.Lock()
        self.proc = None

    def add(self, ok, addrs):
        with self.lock:
            self.seen.append((time.monotonic(), ok, sorted(addrs)))

    def last(self):
        with self.lock:
            ok = [s for s in self.seen if s[1]]
            return ok[-1][2] if ok else None

    def start_process(self, cmd, env):
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env, text=True)

        def read():
            for raw in self.proc.stdout:
                line = json.loads(raw)
                self.add(line["ok"], line.get("addrs") or [])

        threading.Thread(target=read, daemon=True).start()

    def stop(self):
        if self.proc:
            self.proc.stdin.close()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--go", required=True)
    p.add_argument("--cpp", required=True)
    p.add_argument("--changes", type=int, default=1000)
    p.add_argument("--seed", type=int, default=7)
    args = p.parse_args()
    import gnaming

    rng = random.Random(args.seed)
    pool = [f"10.55.{i // 50}.{i % 50 + 1}:{8000 + i}" for i in range(100)]
    anchors = ["10.54.0.1:7000", "10.54.0.2:7000", "10.54.0.3:7000"]
    target = f"etcd:///{PREFIX}"
    result = {"scenario": "leader kill under churn", "changes": args.changes}
    with EtcdCluster(members=3) as cluster:
        etcd = Etcd(cluster)
        for a in anchors:
            etcd.put(a)
        written = set(anchors)
        endpoints = cluster.endpoints
        env = dict(os.environ, GNAMING_TEST_ETCD_ENDPOINTS=endpoints, GNAMING_ETCD_ENDPOINTS=endpoints)
        subs = [Subscriber("go"), Subscriber("cpp"), Subscriber("python")]
        subs[0].start_process([args.go, target], env)
        subs[1].start_process([args.cpp, target], env)
        gnaming.configure_cluster("", endpoints=endpoints, dial_timeout=1.0, request_timeout=1.0)
        python = gnaming.Resolver(target, lambda u: subs[2].add(u.ok, [a.addr for a in u.addresses]))
        try:
            deadline = time.monotonic() + SETTLE_S
            while any(s.last() != sorted(anchors) for s in subs):
                if time.monotonic() > deadline:
                    raise AssertionError(f"subscribers never saw the anchors: {[(s.name, s.last()) for s in subs]}")
                time.sleep(0.05)
            killed = None
            started = time.monotonic()
            for i in range(args.changes):
                addr = rng.choice(pool)
                if rng.random() < 0.6:
                    etcd.put(addr)
                    written.add(addr)
                else:
                    etcd.delete(addr)
                if i == args.changes // 2:
                    killed = etcd.leader()
                    cluster.signal(killed, "KILL")
                    killed_at = time.monotonic()
                if killed is not None and i == args.changes // 2 + max(20, args.changes // 20):
                    cluster.restart(killed)
                    result["leader_down_s"] = round(time.monotonic() - killed_at, 3)
            result["churn_s"] = round(time.monotonic() - started, 3)
            final = etcd.listing()
            listed = time.monotonic()
            failures = []
            for s in subs:
                while s.last() != final and time.monotonic() < listed + SETTLE_S:
                    time.sleep(0.02)
                with s.lock:
                    seen = list(s.seen)
                oks = [x for x in seen if x[1]]
                report = {"updates": len(seen), "errors": len(seen) - len(oks)}
                if s.last() != final:
                    failures.append(f"{s.name} ends with {s.last()}, etcd with {final}")
                empties = [x for x in oks if not x[2]]
                if empties:
                    failures.append(f"{s.name} was handed {len(empties)} empty lists while etcd held keys")
                strangers = sorted({a for x in oks for a in x[2]} - written)
                if strangers:
                    failures.append(f"{s.name} showed keys never written: {strangers}")
                result[s.name] = report
            result["final_entries"] = len(final)
            result["killed_member"] = killed
        finally:
            python.close()
            for s in subs:
                s.stop()
    print(json.dumps(result))
    for f in failures:
        print("FAILED:", f, file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
