#!/usr/bin/env python3
"""grpcio's two gnaming channels side by side on one real 3-member etcd cluster: the xDS channel
(`gnaming.grpc.channel(target)`, grpcio's own xDS client fed by the process's libgnaming xDS server)
and the swapping channel (`gnaming.grpc.channel(target, swapping=True)`, which replaces whole grpcio
channels on every list change). Measures registration → first RPC answered by the new backend, and
connections opened to unchanged backends per change. Prints one JSON object; bench/bench.py runs it as
part of its xds section.

    xds_python.py [--samples 100] [--unchanged 19] [--changes 40] [--idle 0.4] [--etcd HOST:PORT,...]

Needs grpcio and the gnaming package (`make python-install`, then build/venv/bin/python); without
--etcd (or $GNAMING_ETCD_ENDPOINTS) it starts a cluster with tests/harness/etcd_cluster.py.

Latency: a backend is registered while a client sends unary RPCs back to back from one thread; the
time runs from just before the Registration starts (lease grant and put) to the first reply from that
backend, and is split at the moment a separate libgnaming resolver on the same target delivers the new
list. Connections: `--unchanged` backends stay registered while one more is registered and removed
`--changes` times; after each change the client calls until every registered backend has answered,
and each server counts the distinct client addresses its RPCs come from (a connection that never
carries an RPC is not counted). Twice: "busy", with those RPCs right after every change, and "idle",
with none for `--idle` seconds after each change, which is longer than the swapping channel's grace
there (it is set to half of it). grpcio shares a connection between channels with equal arguments, so
the swapping channel's new channels reuse the old ones' connections only while those are still open.
"""

import argparse
import json
import os
import sys
import threading
import time
from concurrent import futures

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "harness"))
from etcd_cluster import EtcdCluster  # noqa: E402

import grpc  # noqa: E402

import gnaming  # noqa: E402
import gnaming.grpc  # noqa: E402
import gnaming.xds  # noqa: E402

ECHO = "/gnaming.bench.Echo/Echo"
# Bounds for every wait on a change to reach a client.
CHANGE_TIMEOUT_S = 15.0
# Back-to-back RPCs that must all avoid a removed backend before it counts as gone.
CLEAN_BATCH = 60


class Backend:
    """A grpcio server on 127.0.0.1 answering its name and counting its client connections."""

    def __init__(self, name):
        self.name = name
        self.peers = set()
        self._lock = threading.Lock()
        self.server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
        echo = grpc.unary_unary_rpc_method_handler(self._echo)
        self.server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler("gnaming.bench.Echo", {"Echo": echo}),))
        self.address = f"127.0.0.1:{self.server.add_insecure_port('127.0.0.1:0')}"
        self.server.start()

    def _echo(self, request, context):
        with self._lock:
            self.peers.add(context.peer())
        return self.name.encode()

    def connections(self):
        with self._lock:
            return len(self.peers)


def percentile(sorted_values, p):
    """Nearest rank: the smallest value with at least p % of the values at or below it."""
    if not sorted_values:
        return None
    k = max(0, min(len(sorted_values) - 1, -(-len(sorted_values) * p // 100) - 1))
    return sorted_values[int(k)]


def summary_ms(seconds):
    ms = sorted(s * 1000 for s in seconds)
    return {"samples": len(ms), "p50_ms": round(percentile(ms, 50), 2), "p90_ms": round(percentile(ms, 90), 2),
            "p99_ms": round(percentile(ms, 99), 2), "max_ms": round(ms[-1], 2)}


def first_reply_from(echo, name, deadline, sent=None):
    """RPCs back to back until `name` answers; returns the time of that reply. Appends the time each
    RPC was sent to `sent`, if given."""
    while time.monotonic() < deadline:
        if sent is not None:
            sent.append(time.monotonic())
        try:
            if echo(b"", timeout=5, wait_for_ready=True).decode() == name:
                return time.monotonic()
        except grpc.RpcError:
            pass
    raise RuntimeError(f"{name} never answered")


def until_all_answered(echo, names, deadline):
    """RPCs back to back until every one of `names` has answered."""
    waiting = set(names)
    while waiting and time.monotonic() < deadline:
        try:
            waiting.discard(echo(b"", timeout=5, wait_for_ready=True).decode())
        except grpc.RpcError:
            pass
    if waiting:
        raise RuntimeError(f"{sorted(waiting)} never answered")


def until_gone(echo, name, deadline):
    """RPCs until a full batch never reaches `name`."""
    while time.monotonic() < deadline:
        batch = {echo(b"", timeout=5, wait_for_ready=True).decode() for _ in range(CLEAN_BATCH)}
        if name not in batch:
            return
    raise RuntimeError(f"{name} still answers")


# The calls connect() makes, for the report.
CALLS = {"xds": "gnaming.grpc.channel(target)", "swapping": "gnaming.grpc.channel(target, swapping=True)"}


def connect(kind, target, grace):
    """The channel under test: "xds" or "swapping"; `grace` is the swapping channel's."""
    return gnaming.grpc.channel(target, swapping=kind == "swapping", grace=grace)


def run_path(kind, service, unchanged, samples, changes, idle, grace):
    """One channel ("xds" or "swapping") against fresh backends under `service`. After each change
    the client sends no RPC for `idle` seconds; `grace` is the swapping channel's (its retired
    channels close that long after a swap)."""
    steady = [Backend(f"{kind}-steady-{i}") for i in range(unchanged)]
    churn = Backend(f"{kind}-churn")
    regs = [gnaming.Registration(service, b.address) for b in steady]
    for r in regs:
        r.wait(10)
    channel = connect(kind, f"etcd:///{service}", grace)
    echo = channel.unary_unary(ECHO)
    reg = None
    try:
        until_all_answered(echo, [b.name for b in steady], time.monotonic() + CHANGE_TIMEOUT_S)

        latencies, seen_latencies, rpcs_after_list = [], [], []
        seen_at = {}

        def on_update(update):
            if any(a.addr == churn.address for a in update.addresses):
                seen_at.setdefault("t", time.monotonic())

        at_start = sum(b.connections() for b in steady)
        # A resolver of its own on the same target splits the time into etcd + libgnaming (put →
        # list delivered) and the client's part (list delivered → first RPC on the new backend).
        with gnaming.Resolver(f"etcd:///{service}", on_update):
            for _ in range(samples):
                seen_at.clear()
                start = time.monotonic()
                reg = gnaming.Registration(service, churn.address)
                sent = []
                answered = first_reply_from(echo, churn.name, start + CHANGE_TIMEOUT_S, sent)
                latencies.append(answered - start)
                seen_latencies.append(seen_at.get("t", answered) - start)
                # How many picks the channel made from the moment the list was delivered.
                rpcs_after_list.append(sum(1 for t in sent if t >= seen_at.get("t", answered)))
                reg.close()
                until_gone(echo, churn.name, time.monotonic() + CHANGE_TIMEOUT_S)

        before = sum(b.connections() for b in steady)
        for change in range(changes):
            if change % 2 == 0:
                reg = gnaming.Registration(service, churn.address)
                reg.wait(10)
                time.sleep(idle)
                first_reply_from(echo, churn.name, time.monotonic() + CHANGE_TIMEOUT_S)
            else:
                reg.close()
                time.sleep(idle)
                until_gone(echo, churn.name, time.monotonic() + CHANGE_TIMEOUT_S)
            # Every unchanged backend answers after each change, so a connection it opened is counted.
            until_all_answered(echo, [b.name for b in steady], time.monotonic() + CHANGE_TIMEOUT_S)
        opened = sum(b.connections() for b in steady) - before
    finally:
        if reg is not None:
            reg.close()
        channel.close()
        for r in regs:
            r.close()
        for b in steady + [churn]:
            b.server.stop(None)
    out = {"unchanged_backends": unchanged, "changes": changes, "idle_after_change_s": idle,
           "connections_before_changes": before, "connections_opened_to_unchanged": opened,
           "connections_per_change": round(opened / changes, 3) if changes else None}
    if kind == "swapping":
        out["grace_s"] = grace
    if samples:
        # Each sample is two changes in quick succession, with RPCs only until each change shows.
        out["connections_opened_during_samples"] = before - at_start
        out["put_to_first_rpc"] = summary_ms(latencies)
        out["put_to_list_delivered"] = summary_ms(seen_latencies)
        out["list_delivered_to_first_rpc"] = summary_ms([a - b for a, b in zip(latencies, seen_latencies)])
        rpcs = sorted(rpcs_after_list)
        out["rpcs_after_list_delivered"] = {"p50": percentile(rpcs, 50), "p90": percentile(rpcs, 90),
                                            "p99": percentile(rpcs, 99), "max": rpcs[-1]}
    return out


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--samples", type=int, default=100)
    p.add_argument("--unchanged", type=int, default=19)
    p.add_argument("--changes", type=int, default=40)
    p.add_argument("--idle", type=float, default=0.4, help="seconds without RPCs after each change (idle runs)")
    p.add_argument("--etcd", default=os.environ.get("GNAMING_ETCD_ENDPOINTS", ""))
    args = p.parse_args()

    cluster = None
    endpoints = args.etcd
    if not endpoints:
        cluster = EtcdCluster(members=3).start()
        endpoints = cluster.endpoints
    try:
        gnaming.configure_cluster("", endpoints=endpoints)
        tag = f"bench-xds-python-{os.getpid()}"
        # Other work on the machine shows in the tails: the load before and after is kept with them.
        result = {"grpcio": grpc.__version__, "gnaming": gnaming.version(), "cpus": os.cpu_count(),
                  "samples": args.samples, "changes": args.changes, "idle_s": args.idle,
                  "loadavg_before": os.getloadavg()}
        for kind in ("xds", "swapping"):
            result[kind] = {
                # RPCs flow right after every change; the swapping channel keeps its default grace.
                "busy": run_path(kind, f"{tag}-{kind}-busy", args.unchanged, args.samples, args.changes,
                                 idle=0.0, grace=gnaming.grpc.DEFAULT_GRACE),
                # The client is idle after each change for longer than the swapping channel's grace,
                # so its retired channel (and the connections it held) is gone before the next RPC.
                "idle": run_path(kind, f"{tag}-{kind}-idle", args.unchanged, 0, args.changes,
                                 idle=args.idle, grace=args.idle / 2),
                "call": CALLS[kind],
            }
        result["loadavg_after"] = os.getloadavg()
        result["xds_counters"] = gnaming.xds.stats()
    finally:
        if cluster is not None:
            cluster.stop()
    json.dump(result, sys.stdout, indent=2)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
