#!/usr/bin/env python3
"""The benchmark suite: propagation latency, failover, scale, footprint, large lists (100,000
endpoints; 1 KB of metadata each) and many prefixes in one process, measured side by side with etcd's
own Go naming resolver on one real 3-member etcd cluster (tests/harness), in one run, and each gRPC
stack's xDS client (fed by `gnaming xds-agent`) beside its native libgnaming path.

    bench.py [--smoke] [--only SECTION,...] [--md FILE] [--json FILE]

`make bench` runs it in full and writes BENCHMARKS.md and bench/results.json; `make test-bench-smoke`
runs it with tiny counts and checks only that every figure was produced and is sane. Targets are
recorded with how far they were missed, never enforced.

The programs it drives (built by mk/bench.mk into build/bench): gobench (bench/go: the writer, the
raw clientv3 watch, libgnaming's Go binding and etcd's client/v3/naming/resolver behind a recording
resolver.ClientConn), gn_bench (bench/gn_bench.c: the C API), bench/py_observe.py and, for the
prefixes section, bench/py_prefixes.py (the Python binding); for the xds section, grpcbench
(bench/go/grpcbench: the backends, grpc-go clients and a bare ADS observer), bench/py_grpc_client.py
(grpcio on the agent, from the venv given by --grpc-python), cpp_grpc_client_xds/_native
(bench/cpp_grpc_client.cc), the demo's Java and Node clients, and bench/xds_python.py (the Python
package's xDS channel beside its swapping channel, same venv). Every time is CLOCK_MONOTONIC, which
all processes on the machine share, so one change can be followed from the writer's put into every
observer. Standard library only.
"""

import argparse
import json
import math
import os
import platform
import queue
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "harness"))
from etcd_cluster import EtcdCluster  # noqa: E402

SECTIONS = ("latency", "failover", "scale", "footprint", "xds", "large", "prefixes")

FULL = dict(changes=2000, interval_ms=10, graceful=20, kills=3, ttl_ms=2000, endpoints=10000,
            resolvers=1000, registrations=10000, registration_ttl_ms=10000, steady_s=20,
            xds_samples=30, xds_stable=2, xds_workers=3, xds_pace_ms=2,
            py_channel_backends=20, py_channel_samples=100, py_channel_changes=40, py_channel_idle_s=0.4,
            large_endpoints=100000, large_meta_endpoints=10000, large_meta_bytes=1024, large_reps=3,
            large_changes=50, prefixes=1000)
SMOKE = dict(changes=50, interval_ms=5, graceful=2, kills=1, ttl_ms=2000, endpoints=100,
             resolvers=20, registrations=100, registration_ttl_ms=3000, steady_s=2,
             xds_samples=3, xds_stable=2, xds_workers=3, xds_pace_ms=2,
             py_channel_backends=20, py_channel_samples=3, py_channel_changes=2, py_channel_idle_s=0.4,
             large_endpoints=1000, large_meta_endpoints=200, large_meta_bytes=1024, large_reps=1,
             large_changes=4, prefixes=20)

# The targets. Each: figure key, bound, unit, how a value compares ("max": value ≤ bound).
TARGETS = [
    ("latency.overhead.c.p50_ms", 0.05, "ms", "libgnaming C callback: overhead above the raw watch, p50"),
    ("latency.c_p99_minus_go_etcd_p99_ms", 0, "ms",
     "libgnaming C callback: p99 overhead minus etcd Go resolver's p99 overhead"),
    ("latency.go_gnaming_minus_c.p50_ms", 0.05, "ms", "Go binding: overhead above the C callback's, p50"),
    ("latency.python_minus_c.p50_ms", 0.15, "ms", "Python binding: overhead above the C callback's, p50"),
    ("latency.ratio.c_vs_go_etcd.mean", 0.8, "×", "C overhead ÷ etcd Go resolver overhead, mean"),
    ("latency.ratio.c_vs_go_etcd.p50", 0.8, "×", "C overhead ÷ etcd Go resolver overhead, p50"),
    ("latency.ratio.c_vs_go_etcd.p99", 0.8, "×", "C overhead ÷ etcd Go resolver overhead, p99"),
    ("latency.ratio.go_gnaming_vs_go_etcd.mean", 0.8, "×", "Go binding overhead ÷ etcd Go resolver overhead, mean"),
    ("latency.ratio.go_gnaming_vs_go_etcd.p50", 0.8, "×", "Go binding overhead ÷ etcd Go resolver overhead, p50"),
    ("latency.ratio.go_gnaming_vs_go_etcd.p99", 0.8, "×", "Go binding overhead ÷ etcd Go resolver overhead, p99"),
    ("failover.graceful.p50_ms", 50, "ms", "graceful removal (close → removal seen), p50"),
    ("failover.graceful.max_ms", 50, "ms", "graceful removal (close → removal seen), max"),
    ("scale.first_list.c_ms", 200, "ms", "first full list of {endpoints:,} endpoints (C)"),
    ("scale.burst.c_ms", 1000, "ms", "burst of {endpoints:,} changes applied (C)"),
    ("footprint.stripped_so_mib", 4, "MiB", "stripped libgnaming.so"),
    ("footprint.idle_rss_mib", 10, "MiB", "idle RSS after start (C process, one resolver)"),
    ("footprint.rss_many_mib", 50, "MiB", "RSS with {resolvers:,} resolvers (C process)"),
    ("footprint.many_watches", 1, "watches", "etcd watches for {resolvers:,} resolvers on one target"),
    ("xds.conns_per_change.go_xds", 0, "connections", "Go xDS: connections opened to unchanged backends per change"),
    ("xds.python_channels.xds.busy.connections_per_change", 0, "connections",
     "Python `gnaming.grpc.channel`, xDS, {py_channel_backends} backends: connections opened to unchanged "
     "ones per change, RPCs right after each change"),
    ("xds.python_channels.xds.idle.connections_per_change", 0, "connections",
     "Python `gnaming.grpc.channel`, xDS, {py_channel_backends} backends: connections opened to unchanged "
     "ones per change, idle after each change"),
    ("xds.conns_per_change.py_xds_agent", 0, "connections",
     "Python xDS (agent): connections opened to unchanged backends per change"),
    ("xds.conns_per_change.cpp_xds", 0, "connections", "C++ xDS: connections opened to unchanged backends per change"),
    ("xds.conns_per_change.java_xds", 0, "connections", "Java xDS: connections opened to unchanged backends per change"),
    ("xds.conns_per_change.node_xds", 0, "connections", "Node xDS: connections opened to unchanged backends per change"),
    ("large.endpoints.c.median_ms", 1000, "ms", "first full list of {large_endpoints:,} endpoints (C), median"),
    ("large.endpoints.go_gnaming.median_ms", 1000, "ms",
     "first full list of {large_endpoints:,} endpoints (Go binding), median"),
    ("large.endpoints.c_vs_go_etcd", 1, "×",
     "first full list of {large_endpoints:,} endpoints: C median ÷ etcd Go resolver median"),
    ("large.endpoints.go_gnaming_vs_go_etcd", 1, "×",
     "first full list of {large_endpoints:,} endpoints: Go binding median ÷ etcd Go resolver median"),
    ("large.metadata.c.median_ms", 1000, "ms",
     "first full list of {large_meta_endpoints:,} endpoints with {large_meta_bytes:,} bytes of metadata (C), median"),
    ("large.metadata.go_gnaming.median_ms", 1000, "ms",
     "first full list of {large_meta_endpoints:,} endpoints with {large_meta_bytes:,} bytes of metadata (Go binding), "
     "median"),
    ("large.metadata.c_vs_go_etcd", 1, "×",
     "first full list of {large_meta_endpoints:,} endpoints with metadata: C median ÷ etcd Go resolver median"),
    ("large.metadata.go_gnaming_vs_go_etcd", 1, "×",
     "first full list of {large_meta_endpoints:,} endpoints with metadata: Go binding median ÷ etcd Go resolver "
     "median"),
    ("large.change.c.p50_ms", 20, "ms", "one change at {large_endpoints:,} endpoints → C callback, p50"),
]

SENTINEL = 0xFFFFFE  # an endpoint index the writer never uses

PATHS = [  # key, label
    ("raw", "(a) raw etcd watch, Go clientv3 (floor)"),
    ("c", "(b) libgnaming C callback"),
    ("go_gnaming", "(c) Go binding → ClientConn.UpdateState"),
    ("go_etcd", "(d) etcd client/v3/naming/resolver → ClientConn.UpdateState"),
    ("python", "(e) Python binding callback"),
]


# The "xDS vs native" paths: key, label, kind. Each is one client process calling the same service.
XDS_PATHS = [
    ("go_xds", "Go: grpc-go 1.85 xDS client, `xds:///`", "xds"),
    ("go_native", "Go: libgnaming's resolver.Builder, `etcd:///`", "native"),
    ("py_xds_agent", "Python: grpcio xDS client fed by the agent, `xds:///`", "xds"),
    ("cpp_xds", "C++: Debian libgrpc++ 1.51 xDS client, `xds:///`", "xds"),
    ("cpp_native", "C++: libgnaming_grpc plugin, `etcd:///`", "native"),
    ("java_xds", "Java: grpc-java 1.85 xDS client (demo/java), `xds:///`", "xds"),
    ("node_xds", "Node: @grpc/grpc-js-xds (demo/node), `xds:///`", "xds"),
]
# The demo's Java and Node clients: one caller each, and a JSON status line every 250 ms instead of a
# time per first answer, so they give connections and whether changes are followed, not latency.
STATUS_CLIENTS = ("java_xds", "node_xds")


def mono_ns():
    return time.clock_gettime_ns(time.CLOCK_MONOTONIC)


def pct(values, p):
    """Nearest-rank percentile of a non-empty list."""
    s = sorted(values)
    k = max(0, min(len(s) - 1, -(-len(s) * p // 100) - 1))
    return s[int(k)]


def spread(values):
    """Repetitions of one figure: how many, min, median, max (None when none succeeded)."""
    if not values:
        return None
    return {"n": len(values), "min": min(values), "median": pct(values, 50), "max": max(values)}


def summary_ms(values_ns):
    if not values_ns:
        return None
    ms = [v / 1e6 for v in values_ns]
    return {"n": len(ms), "mean_ms": round(sum(ms) / len(ms), 4), "p50_ms": round(pct(ms, 50), 4), "p90_ms": round(pct(ms, 90), 4),
            "p99_ms": round(pct(ms, 99), 4), "max_ms": round(max(ms), 4)}


class Proc:
    """A child process speaking a line protocol on stdout; stderr goes to a log file."""

    all = []

    def __init__(self, name, argv, env=None, log_dir=None):
        self.name = name
        self.log_path = os.path.join(log_dir, name.replace("/", "_") + ".log")
        self.log = open(self.log_path, "w")
        self.p = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.log,
                                  env=env, text=True, cwd=ROOT)
        self.lines = queue.Queue()
        Proc.all.append(self)
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.p.stdout:
            self.lines.put(line.rstrip("\n"))
        self.lines.put(None)

    def _next_line(self, deadline, what, timeout):
        """The next output line before `deadline`; raises when time runs out or the process exits."""
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise RuntimeError(f"{self.name}: no {what} within {timeout} s (log: {self.log_path})")
            try:
                line = self.lines.get(timeout=left)
            except queue.Empty:
                continue
            if line is None:
                raise RuntimeError(f"{self.name}: exited ({self.p.wait()}) before {what} (log: {self.log_path})")
            return line

    def expect(self, prefix, timeout):
        """The next line starting with `prefix` (other lines are skipped); raises on timeout or exit."""
        deadline = time.monotonic() + timeout
        while True:
            line = self._next_line(deadline, f"'{prefix}' line", timeout)
            if line.startswith(prefix):
                return line

    def send(self, line):
        self.p.stdin.write(line + "\n")
        self.p.stdin.flush()

    def close_stdin(self):
        try:
            self.p.stdin.close()
        except OSError:
            pass

    def collect(self, timeout):
        """Closes stdin and returns every line up to "end"."""
        self.close_stdin()
        out, deadline = [], time.monotonic() + timeout
        while True:
            line = self._next_line(deadline, "'end'", timeout)
            if line == "end":
                return out
            out.append(line)

    def finish(self, timeout=30):
        self.close_stdin()
        try:
            return self.p.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.p.kill()
            return self.p.wait()

    @classmethod
    def kill_all(cls):
        for proc in cls.all:
            if proc.p.poll() is None:
                proc.p.kill()
                proc.p.wait()
            proc.log.close()


class Answers:
    """The backends answering one client for the first time, read from its output: "new ADDR T" lines,
    or the demo clients' JSON status lines (no time: they come every 250 ms)."""

    def __init__(self, proc, status_lines):
        self.proc, self.status_lines = proc, status_lines
        self.seen, self.pending, self.last_status = set(), [], None

    def next(self, deadline, what):
        """(address, CLOCK_MONOTONIC ns or None) of the next first answer; raises at the deadline."""
        while not self.pending:
            line = self.proc._next_line(deadline, what, round(deadline - time.monotonic(), 1))
            if self.status_lines and line.startswith("{"):
                self.last_status = json.loads(line)
                fresh = sorted(set(self.last_status["counts"]) - self.seen)
                self.seen.update(fresh)
                self.pending += [(a, None) for a in fresh]
            elif not self.status_lines and line.startswith("new "):
                _, addr, t = line.split()
                self.pending.append((addr, int(t)))
        return self.pending.pop(0)

    def wait_for(self, addr, timeout):
        """When `addr` first answered (None: not timed), skipping other first answers."""
        deadline = time.monotonic() + timeout
        while True:
            a, t = self.next(deadline, f"an answer from {addr}")
            if a == addr:
                return t

    def finish(self, timeout=30):
        """Stops the client; its RPC counts {"ok", "failed", "last_error"}."""
        if not self.status_lines:
            lines = self.proc.collect(timeout)
            self.proc.finish()
            return json.loads(next(line for line in lines if line.startswith("rpcs "))[5:])
        self.proc.p.send_signal(signal.SIGTERM)  # the demo clients print a last status and exit
        deadline = time.monotonic() + timeout
        try:
            while True:
                line = self.proc._next_line(deadline, "exit", timeout)
                if line.startswith("{"):
                    self.last_status = json.loads(line)
        except RuntimeError:
            pass
        self.proc.finish()
        st = self.last_status or {}
        return {"ok": st.get("ok"), "failed": st.get("failed"), "last_error": st.get("last_error") or ""}


class Bench:
    def __init__(self, args, cluster):
        self.args = args
        self.cfg = dict(SMOKE if args.smoke else FULL)
        for key in ("xds_workers", "xds_pace_ms"):
            if getattr(args, key) is not None:
                self.cfg[key] = getattr(args, key)
        self.cluster = cluster
        self.endpoints = cluster.endpoints
        # Every observer reads from the same member, so overheads compare clients, not members.
        self.member0 = self.endpoints.split(",")[0]
        self.gobench = os.path.join(args.build_dir, "gobench")
        self.gn_bench = os.path.join(args.build_dir, "gn_bench")
        self.grpcbench = os.path.join(args.build_dir, "grpcbench")
        self.log_dir = os.path.join(args.build_dir, "logs")
        os.makedirs(self.log_dir, exist_ok=True)
        lib = os.path.join(ROOT, "target", "release", "libgnaming.so")
        self.env = dict(os.environ, GNAMING_ETCD_ENDPOINTS=self.member0, GNAMING_LIBRARY=lib,
                        PYTHONPATH=os.path.join(ROOT, "bindings", "python"))
        self.results = {}
        self.smoke_flag = " --smoke" if args.smoke else ""

    def command(self, section):
        extra = f"--only {section}{self.smoke_flag}"
        return f"make bench BENCH_ARGS='{extra}'"

    def proc(self, name, argv):
        return Proc(name, argv, env=self.env, log_dir=self.log_dir)

    def go(self, name, *argv):
        return self.proc(name, [self.gobench, *argv])

    def run_go(self, *argv, timeout=600):
        r = subprocess.run([self.gobench, *argv], capture_output=True, text=True, timeout=timeout, env=self.env)
        if r.returncode != 0:
            raise RuntimeError(f"gobench {argv[0]} failed: {r.stderr[-2000:]}")
        return r.stdout

    # ---- 1. propagation latency ----------------------------------------------------------------

    def latency(self):
        service = "bench/lat"
        # etcd's resolver delivers nothing for an empty prefix: one fixed entry gives every observer
        # a first list (the baseline its changes are diffed against).
        self.run_go("populate", "-endpoints", self.endpoints, "-prefix", service, "-from", str(SENTINEL),
                    "-to", str(SENTINEL + 1))
        observers = {
            "raw": self.go("raw", "raw", "-endpoints", self.member0, "-prefix", service),
            "c": self.proc("c", [self.gn_bench, "observe", service]),
            "go_gnaming": self.go("go_gnaming", "observe", "-impl", "gnaming", "-endpoints", self.member0,
                                  "-service", service),
            "go_etcd": self.go("go_etcd", "observe", "-impl", "etcd", "-endpoints", self.member0,
                               "-service", service),
            "python": self.proc("python", [sys.executable, os.path.join(ROOT, "bench", "py_observe.py"), service]),
        }
        for o in observers.values():
            o.expect("ready", 60)
        loadavg = open("/proc/loadavg").read().split()[:3]
        out = self.run_go("write", "-endpoints", self.endpoints, "-prefix", service,
                          "-changes", str(self.cfg["changes"]), "-interval", f"{self.cfg['interval_ms']}ms")
        changes = {}
        for line in out.splitlines():
            op, addr, start, done = line.split()
            changes[(op, addr)] = (int(start), int(done))
        time.sleep(1.0)  # let the last change reach every observer
        seen = {}
        for key, o in observers.items():
            seen[key] = {}
            for line in o.collect(60):
                op, addr, t = line.split()
                seen[key].setdefault((op, addr), int(t))
            o.finish()
        lat, over, missing = {}, {}, {}
        for key, _ in PATHS:
            lat[key] = [seen[key][c] - changes[c][0] for c in changes if c in seen[key]]
            missing[key] = sum(1 for c in changes if c not in seen[key])
            if key != "raw":
                over[key] = [seen[key][c] - seen["raw"][c] for c in changes if c in seen[key] and c in seen["raw"]]
        res = {
            "command": self.command("latency"),
            "changes": len(changes),
            "interval_ms": self.cfg["interval_ms"],
            "loadavg_at_start": loadavg,
            "put_response": summary_ms([d - s for s, d in changes.values()]),
            "latency": {k: summary_ms(v) for k, v in lat.items()},
            "overhead": {k: summary_ms(v) for k, v in over.items()},
            "missing": missing,
            "ratio": {},
        }
        res["vs_go_etcd"] = {}
        for k in ("c", "go_gnaming", "python"):
            ratios = {}
            for p in ("mean", "p50", "p99"):
                mine, theirs = res["overhead"][k], res["overhead"]["go_etcd"]
                # Undefined when etcd's resolver was, at that point, no later than the raw watch.
                if mine and theirs and theirs[p + "_ms"] > 0:
                    ratios[p] = round(mine[p + "_ms"] / theirs[p + "_ms"], 3)
                else:
                    ratios[p] = None
            res["ratio"][f"{k}_vs_go_etcd"] = ratios
            # Per change, this path's time minus etcd's Go resolver's: negative means earlier.
            res["vs_go_etcd"][k] = summary_ms([seen[k][c] - seen["go_etcd"][c] for c in changes
                                               if c in seen[k] and c in seen["go_etcd"]])
        self.results["latency"] = res

    # ---- 2. failover -----------------------------------------------------------------------------

    def failover(self):
        service = "bench/fail"
        ttl = self.cfg["ttl_ms"]
        watch = self.proc("fail_watch", [self.gn_bench, "watch", service])
        watch.expect("ready", 60)
        graceful, close_calls, killed = [], [], []
        for i in range(self.cfg["graceful"] + self.cfg["kills"]):
            addr = f"10.250.{i // 250}.{i % 250 + 1}:8000"
            reg = self.proc(f"fail_reg{i}", [self.gn_bench, "register", service, addr, str(ttl)])
            reg.expect("registered", 60)
            watch.expect(f"put {addr} ", 30)
            if i < self.cfg["graceful"]:
                reg.send("close")
                _, t0, t1 = reg.expect("closed", 30).split()
                t_seen = int(watch.expect(f"del {addr} ", 30).split()[2])
                graceful.append(t_seen - int(t0))
                close_calls.append(int(t1) - int(t0))
                reg.finish()
            else:
                t0 = mono_ns()
                reg.p.kill()
                reg.p.wait()
                t_seen = int(watch.expect(f"del {addr} ", 10 + 3 * ttl / 1000).split()[2])
                killed.append(t_seen - t0)
        watch.finish()
        self.results["failover"] = {
            "command": self.command("failover"),
            "ttl_ms": ttl,
            "graceful": summary_ms(graceful),
            "close_call": summary_ms(close_calls),
            "sigkill": summary_ms(killed),
        }

    # ---- 3. scale --------------------------------------------------------------------------------

    def metrics(self):
        """Sums of etcd's gRPC server counters and its watch stream and watcher gauges over all members."""
        total = {"handled": 0.0, "received": 0.0, "watchers": 0.0, "watch_streams": 0.0, "by_method": {}}
        for m in self.cluster.state["members"]:
            with urllib.request.urlopen(m["client_url"] + "/metrics", timeout=10) as r:
                text = r.read().decode()
            for line in text.splitlines():
                if line.startswith("grpc_server_handled_total{"):
                    total["handled"] += float(line.rsplit(" ", 1)[1])
                elif line.startswith("grpc_server_msg_received_total{"):
                    v = float(line.rsplit(" ", 1)[1])
                    total["received"] += v
                    method = re.search(r'grpc_method="([^"]+)"', line).group(1)
                    total["by_method"][method] = total["by_method"].get(method, 0) + v
                elif line.startswith("etcd_debugging_mvcc_watcher_total "):
                    total["watchers"] += float(line.rsplit(" ", 1)[1])
                elif line.startswith("etcd_debugging_mvcc_watch_stream_total "):
                    total["watch_streams"] += float(line.rsplit(" ", 1)[1])
        return total

    def settled_metrics(self, still_s=0.6, timeout=10):
        """metrics() once etcd's watch stream and watcher gauges stood still for still_s (or after
        timeout seconds)."""
        deadline, last, since = time.monotonic() + timeout, None, time.monotonic()
        while True:
            m, now = self.metrics(), time.monotonic()
            gauges = (m["watch_streams"], m["watchers"])
            if gauges == last and now - since >= still_s or now > deadline:
                return m
            if gauges != last:
                last, since = gauges, now
            time.sleep(0.15)

    def scale(self):
        n = self.cfg["endpoints"]
        service = "bench/scale"
        self.run_go("populate", "-endpoints", self.endpoints, "-prefix", service, "-from", "0", "-to", str(n))
        half = n // 2
        lo, hi = half, n + half
        observers, first = {}, {}
        # One at a time for the first list, so each has the machine to itself; then all watch the burst.
        for key, argv in (
            ("c", [self.gn_bench, "scale", service, str(n), str(lo), str(hi)]),
            ("go_gnaming", [self.gobench, "scale", "-impl", "gnaming", "-endpoints", self.member0, "-service", service,
                            "-initial", str(n), "-lo", str(lo), "-hi", str(hi)]),
            ("go_etcd", [self.gobench, "scale", "-impl", "etcd", "-endpoints", self.member0, "-service", service,
                         "-initial", str(n), "-lo", str(lo), "-hi", str(hi)]),
        ):
            o = self.proc(f"scale_{key}", argv)
            first[key] = int(o.expect("first", 120).split()[1])
            observers[key] = o
        for o in observers.values():
            o.send("arm")
            o.expect("armed", 30)
        out = self.run_go("burst", "-endpoints", self.endpoints, "-prefix", service,
                          "-del-from", "0", "-del-to", str(half), "-put-from", str(n), "-put-to", str(n + half))
        _, b_start, b_end, count = out.split()
        burst = {}
        for key, o in observers.items():
            line = o.expect(("converged", "timeout"), 330)
            if line.startswith("timeout"):
                burst[key] = {"ms": None, "cpu_ms": None, "updates": None, "not_converged": line}
            else:
                _, t, cpu, updates = line.split()
                burst[key] = {"ms": round((int(t) - int(b_start)) / 1e6, 2), "cpu_ms": round(int(cpu) / 1e6, 2),
                              "updates": int(updates)}
            o.finish()
        self.results["scale"] = {
            "command": self.command("scale"),
            "endpoints": n,
            "first_list_ms": {k: round(v / 1e6, 2) for k, v in first.items()},
            "burst_changes": 2 * half,
            "burst_write_ms": round((int(b_end) - int(b_start)) / 1e6, 2),
            "etcd_count_after": int(count),
            "burst": burst,
        }
        self.many()
        self.registrations()

    def many(self):
        r = self.cfg["resolvers"]
        service = "bench/many"
        self.run_go("populate", "-endpoints", self.endpoints, "-prefix", service, "-from", "0", "-to", "3")
        many = {}
        base = self.metrics()["watchers"]
        for key, argv in (
            ("c", [self.gn_bench, "many", service, str(r)]),
            ("go_gnaming", [self.gobench, "many", "-impl", "gnaming", "-endpoints", self.member0,
                            "-service", service, "-n", str(r)]),
            ("go_etcd", [self.gobench, "many", "-impl", "etcd", "-endpoints", self.member0,
                         "-service", service, "-n", str(r)]),
        ):
            o = self.proc(f"many_{key}", argv)
            data = json.loads(o.expect("{", 120))
            data["etcd_watchers"] = self.metrics()["watchers"] - base
            many[key] = data
            o.finish()
        self.results["many"] = {"command": self.command("scale"), "resolvers": r, "runs": many}

    def registrations(self):
        n, ttl = self.cfg["registrations"], self.cfg["registration_ttl_ms"]
        steady = self.cfg["steady_s"]
        m0, t0 = self.metrics(), time.monotonic()
        time.sleep(steady)
        m1, t1 = self.metrics(), time.monotonic()
        idle = (m1["received"] - m0["received"]) / (t1 - t0)
        o = self.proc("registrations", [self.gn_bench, "registrations", "bench/regs", str(n), str(ttl)])
        line = o.expect(("registered", "partial"), 330)
        registered = n
        if line.startswith("partial"):
            _, registered, took, stats = line.split(" ", 3)
        else:
            _, took, stats = line.split(" ", 2)
        time.sleep(min(3.0, steady))  # past the registration wave
        m0, t0 = self.metrics(), time.monotonic()
        time.sleep(steady)
        m1, t1 = self.metrics(), time.monotonic()
        o.send("stats")
        _, rss, threads, stats2 = o.expect("stats", 30).split(" ", 3)
        o.finish()
        dt = t1 - t0
        methods = {k: round((m1["by_method"].get(k, 0) - m0["by_method"].get(k, 0)) / dt, 2)
                   for k in m1["by_method"] if m1["by_method"].get(k, 0) != m0["by_method"].get(k, 0)}
        self.results["registrations"] = {
            "command": self.command("scale"),
            "registrations": n,
            "ttl_ms": ttl,
            "registered": int(registered),
            "register_all_ms": round(int(took) / 1e6, 1),
            "window_s": round(dt, 1),
            "etcd_msgs_per_s": round((m1["received"] - m0["received"]) / dt, 2),
            "etcd_msgs_per_s_idle": round(idle, 2),
            "etcd_rpcs_handled_per_s": round((m1["handled"] - m0["handled"]) / dt, 2),
            "etcd_msgs_per_s_by_method": methods,
            "keepalive_streams": json.loads(stats2)["keepalive_streams"],
            "stats": json.loads(stats2),
            "rss_kib": int(rss),
            "threads": int(threads),
        }

    # ---- 4. footprint ----------------------------------------------------------------------------

    def footprint(self):
        lib = os.path.join(ROOT, "target", "release", "libgnaming.so")
        stripped = os.path.join(self.args.build_dir, "libgnaming.stripped.so")
        subprocess.run(["strip", "-o", stripped, lib], check=True)
        res = {
            "command": self.command("footprint"),
            "so_bytes": os.path.getsize(lib),
            "stripped_so_bytes": os.path.getsize(stripped),
        }
        if "many" not in self.results:
            self.many()
        c = self.results["many"]["runs"]["c"]
        res.update({
            "runtime_threads": c["threads_one"] - c["threads_before"],
            "rss_kib_before_first_use": c["rss_kib_before"],
            "idle_rss_kib": c["rss_kib_one"],
            "rss_kib_many": c["rss_kib_all"],
            "many_resolvers": self.results["many"]["resolvers"],
            "many_watches": c["stats"]["watches_active"],
        })
        self.results["footprint"] = res

    # ---- 5. xDS vs native ------------------------------------------------------------------------

    def xds(self):
        cfg = self.cfg
        service = "bench-xds"  # a plain name, so the xDS target is the short form xds:///bench-xds
        stable, samples = cfg["xds_stable"], cfg["xds_samples"]
        bootstrap = os.path.join(self.log_dir, "xds-bootstrap.json")
        agent = self.proc("xds_agent", [os.path.join(ROOT, "target", "release", "gnaming"), "xds-agent",
                                        "--listen", self.args.xds_listen, "--bootstrap-out", bootstrap,
                                        "--etcd", self.member0])
        listening = agent.expect("xds-agent listening on ", 30)
        backends = self.proc("xds_backends", [self.grpcbench, "backends", "-n", str(stable + samples),
                                              "-endpoints", self.endpoints, "-prefix", service])
        addrs = backends.expect("backends ", 30).split()[1:]
        put_response = []

        def change(op, i):
            backends.send(f"{op} {i}")
            _, _, _, start, done = backends.expect(f"{op} {i} ", 30).split()
            put_response.append(int(done) - int(start))
            return int(start)

        def conns(path):
            backends.send("conns")
            return json.loads(backends.expect("conns ", 30)[6:]).get(path, {})

        for i in range(stable):
            change("put", i)
        env = dict(self.env, GRPC_XDS_BOOTSTRAP=bootstrap)
        pace, workers = str(cfg["xds_pace_ms"]), str(cfg["xds_workers"])
        xds_target, native_target = f"xds:///{service}", f"etcd:///{service}"
        py = [self.args.grpc_python, os.path.join(ROOT, "bench", "py_grpc_client.py")]
        argv = {
            "go_xds": [self.grpcbench, "client", "-target", xds_target],
            "go_native": [self.grpcbench, "client", "-target", native_target],
            "py_xds_agent": py + [xds_target],
            "cpp_xds": [os.path.join(self.args.build_dir, "cpp_grpc_client_xds"), xds_target],
            "cpp_native": [os.path.join(self.args.build_dir, "cpp_grpc_client_native"), native_target],
            "java_xds": ["java", "-jar", os.path.join(ROOT, "demo", "java", "target", "xds-echo-client.jar")],
            "node_xds": ["node", os.path.join(ROOT, "demo", "node", "client.js")],
        }
        res = {"command": self.command("xds"), "agent": listening.split()[3], "samples": samples,
               "changes": 2 * samples, "stable_backends": stable, "workers": cfg["xds_workers"],
               "pace_ms": cfg["xds_pace_ms"], "paths": {}}
        # One path at a time, each with the machine to itself: run together, the six clients' callers
        # share two cores and every path's latency grows with the others' load.
        for key, _, _ in XDS_PATHS:
            if key.startswith("go_"):
                a = argv[key] + ["-name", key, "-workers", workers, "-pace", pace + "ms"]
            elif key in STATUS_CLIENTS:
                a = argv[key] + [key, "--target", xds_target, "--interval", str(max(1, round(cfg["xds_pace_ms"])))]
            else:
                a = argv[key] + [key, workers, pace]
            raw = self.go(f"xds_raw_{key}", "raw", "-endpoints", self.member0, "-prefix", service)
            raw.expect("ready", 60)
            t_started = mono_ns()
            client = Proc(f"xds_{key}", a, env=env, log_dir=self.log_dir)
            # On xDS paths a bare ADS client of the agent records when each endpoint is pushed.
            ads = None
            if "_xds" in key:
                ads = Proc(f"xds_ads_{key}", [self.grpcbench, "ads", "-server", res["agent"], "-name", service],
                           env=self.env, log_dir=self.log_dir)
                ads.expect("ready", 30)
            answers = Answers(client, key in STATUS_CLIENTS)
            # Ready: the client has had an answer from every stable backend, in whatever order.
            waiting, deadline, first_rpc = set(addrs[:stable]), time.monotonic() + 60, None
            while waiting:
                addr, t = answers.next(deadline, f"answers from {sorted(waiting)}")
                first_rpc = first_rpc or (t or mono_ns()) - t_started
                waiting.discard(addr)
            conns_before = conns(key)
            lat, answered, put_starts, missed, still_called = [], {}, {}, 0, 0

            def remove(i):
                nonlocal still_called
                change("del", i)
                # A removed backend must go quiet: the client stops calling it.
                backends.send(f"quiet {i} 200ms")
                still_called += backends.expect(f"quiet {i} ", 30).split()[2] == "busy"

            for k in range(samples):
                i = stable + k
                start = put_starts[addrs[i]] = change("put", i)
                try:
                    t = answers.wait_for(addrs[i], 10)
                    if t is not None:
                        answered[addrs[i]] = t
                        lat.append(t - start)
                except RuntimeError:
                    missed += 1
                if k > 0:
                    remove(i - 1)
            remove(stable + samples - 1)
            conns_after = conns(key)
            pushed = {}
            if ads:
                for line in ads.collect(30):
                    _, addr, t = line.split()
                    pushed[addr] = int(t)
                ads.finish()
            rpcs = answers.finish()
            watched = {}
            for line in raw.collect(30):
                op, addr, t = line.split()
                if op == "put":
                    watched.setdefault(addr, int(t))
            raw.finish()
            opened = sum(conns_after.get(a, 0) - conns_before.get(a, 0) for a in addrs[:stable])
            res["paths"][key] = {
                "first_rpc_ms": round(first_rpc / 1e6, 2),
                "raw_watch": summary_ms([watched[a] - t for a, t in put_starts.items() if a in watched]),
                "latency": summary_ms(lat),
                "over_raw_watch": summary_ms([t - watched[a] for a, t in answered.items() if a in watched]),
                # xDS paths: from the raw watch to the agent's push, and from the push to the first reply.
                "push_over_raw_watch": summary_ms([pushed[a] - watched[a] for a in put_starts
                                                   if a in pushed and a in watched]),
                "client_after_push": summary_ms([t - pushed[a] for a, t in answered.items() if a in pushed]),
                "missed": missed,
                "removed_still_called": still_called,
                "conns_at_start": sum(conns_before.get(a, 0) for a in addrs[:stable]),
                "conns_opened_unchanged": opened,
                "conns_per_change": round(opened / (2 * samples), 3),
                "rpcs": rpcs,
            }
        backends.finish()
        agent.p.send_signal(signal.SIGTERM)
        res["agent_exit"] = agent.p.wait(timeout=30)
        res["put_response"] = summary_ms(put_response)
        self.results["xds"] = res  # kept if the run below fails
        res["python_channels"] = self.python_channels()

    def python_channels(self):
        """bench/xds_python.py: the Python package's two channels, each alone on the machine, on the
        same etcd member as the rest of the section."""
        cfg = self.cfg
        argv = [self.args.grpc_python, os.path.join(ROOT, "bench", "xds_python.py"),
                "--unchanged", str(cfg["py_channel_backends"] - 1), "--samples", str(cfg["py_channel_samples"]),
                "--changes", str(cfg["py_channel_changes"]), "--idle", str(cfg["py_channel_idle_s"]),
                "--etcd", self.member0]
        with open(os.path.join(self.log_dir, "xds_python.log"), "w") as log:
            r = subprocess.run(argv, stdout=subprocess.PIPE, stderr=log, text=True, env=self.env, cwd=ROOT,
                               timeout=600)
        if r.returncode != 0:
            raise RuntimeError(f"xds_python.py exited {r.returncode} (log: {log.name})")
        return dict(json.loads(r.stdout), backends=cfg["py_channel_backends"])

    # ---- 6. large lists --------------------------------------------------------------------------

    def populate(self, prefix, n, **flags):
        """Puts n endpoints under prefix in transactions of 100, 16 in flight; the seconds it took."""
        argv = ["populate", "-endpoints", self.endpoints, "-prefix", prefix, "-from", "0", "-to", str(n),
                "-batch", "100", "-conc", "16"]
        for k, v in flags.items():
            argv += [f"-{k}", str(v)]
        _, count, took = self.run_go(*argv).split()
        if int(count) != n:
            raise RuntimeError(f"populate {prefix}: etcd holds {count} keys, not {n}")
        return round(int(took) / 1e9, 2)

    def first_lists(self, service, n):
        """Each resolver's first full list of `service` (n entries), each alone on the machine, the
        three taking turns for large_reps rounds: per resolver the times, the process's CPU and RSS
        once it had the list, and the error of any run that failed."""
        runs = {k: {"ms": [], "cpu_ms": [], "rss_kib": [], "errors": []} for k in ("c", "go_gnaming", "go_etcd")}
        for rep in range(self.cfg["large_reps"]):
            for key, run in runs.items():
                if key == "c":
                    argv = [self.gn_bench, "large", service, str(n)]
                else:
                    argv = [self.gobench, "scale", "-impl", key.removeprefix("go_"), "-endpoints", self.member0,
                            "-service", service, "-initial", str(n), "-lo", "0", "-hi", str(n)]
                o = self.proc(f"large_{key}_{service.replace('/', '_')}_{rep}", argv)
                try:
                    f = o.expect("first", 120).split()
                except RuntimeError as e:
                    run["errors"].append(str(e))
                    o.finish(5)
                    continue
                o.finish()
                run["ms"].append(round(int(f[1]) / 1e6, 1))
                run["cpu_ms"].append(round(int(f[2]) / 1e6, 1))
                run["rss_kib"].append(int(f[3]))
        for run in runs.values():
            run["spread"] = {k: spread(run[k]) for k in ("ms", "cpu_ms", "rss_kib")}
        return runs

    def large(self):
        cfg = self.cfg
        n, m, meta = cfg["large_endpoints"], cfg["large_meta_endpoints"], cfg["large_meta_bytes"]
        res = {"command": self.command("large"), "reps": cfg["large_reps"]}
        big, withmeta = "bench/large", "bench/large-meta"
        res["endpoints"] = {"n": n, "populate_s": self.populate(big, n)}
        res["endpoints"]["runs"] = self.first_lists(big, n)
        res["metadata"] = {"n": m, "metadata_bytes": meta, "populate_s": self.populate(withmeta, m, meta=meta)}
        res["metadata"]["runs"] = self.first_lists(withmeta, m)
        self.results["large"] = res  # kept if the changes below fail
        res["change"] = self.large_changes(big, n)

    def large_changes(self, service, n):
        """One change at a time at n endpoints: a new endpoint put, then deleted, and so on, each
        made once the C callback saw the previous one; latency from just before the writer's call
        to the call of the C callback whose list shows it."""
        c = self.proc("large_changes_c", [self.gn_bench, "large", service, str(n)])
        first = c.expect("first", 120).split()
        writer = self.go("large_step", "step", "-endpoints", self.endpoints, "-prefix", service)
        writer.expect("ready", 30)
        c.send("stats")
        _, rss0, _, cpu0, search0 = c.expect("stats", 30).split()
        lat, put_response = [], []
        for k in range(self.cfg["large_changes"]):
            i, op = n + k // 2, ("put", "del")[k % 2]
            addr = f"10.{(i >> 16) & 255}.{(i >> 8) & 255}.{i & 255}:8000"
            c.send(f"{op} {addr}")
            c.expect("armed", 30)
            writer.send(f"{op} {i}")
            _, _, start, done = writer.expect(f"{op} {addr} ", 30).split()
            t = int(c.expect("seen", 90).split()[1])
            lat.append(t - int(start))
            put_response.append(int(done) - int(start))
        c.send("stats")
        _, rss1, hwm, cpu1, search1 = c.expect("stats", 30).split()
        writer.finish()
        c.finish()
        changes = len(lat)
        return {
            "endpoints": n,
            "changes": changes,
            "latency": summary_ms(lat),
            "write_response": summary_ms(put_response),
            "first_list_ms": round(int(first[1]) / 1e6, 1),
            "rss_kib_before": int(first[4]),
            "rss_kib_with_list": int(first[3]),
            "rss_kib_after_changes": int(rss1),
            "rss_kib_peak": int(hwm),
            "rss_kib_before_changes": int(rss0),
            "cpu_ms_first_list": round(int(first[2]) / 1e6, 1),
            "cpu_ms_per_change": round((int(cpu1) - int(cpu0)) / 1e6 / changes, 2),
            # The part of that CPU the callback spent searching each list for the changed address.
            "search_ms_per_change": round((int(search1) - int(search0)) / 1e6 / changes, 2),
        }

    # ---- 7. many prefixes ------------------------------------------------------------------------

    def prefixes(self):
        p = self.cfg["prefixes"]
        base = "bench/pfx"
        populate_s = self.populate(base, p, spread=p)
        py = self.args.grpc_python if os.path.exists(self.args.grpc_python) else sys.executable
        # Counted with nothing of this section running; each process's streams must be gone again
        # before the next one's "before" is read.
        idle = self.metrics()
        runs = {}
        for key, argv in (
            ("c", [self.gn_bench, "prefixes", base, str(p)]),
            ("go_gnaming", [self.gobench, "many", "-distinct", "-impl", "gnaming", "-endpoints", self.member0,
                            "-service", base, "-n", str(p)]),
            ("go_etcd", [self.gobench, "many", "-distinct", "-impl", "etcd", "-endpoints", self.member0,
                         "-service", base, "-n", str(p)]),
            ("python", [py, os.path.join(ROOT, "bench", "py_prefixes.py"), base, str(p)]),
        ):
            deadline = time.monotonic() + 15
            while True:
                before = self.metrics()
                if before["watch_streams"] <= idle["watch_streams"] and before["watchers"] <= idle["watchers"] \
                        or time.monotonic() > deadline:
                    break
                time.sleep(0.2)
            o = self.proc(f"prefixes_{key}", argv)
            data = json.loads(o.expect("{", 120))
            # A resolver may deliver its first list (from a get) before its watch exists.
            after = self.settled_metrics()
            o.finish()
            data["etcd_watch_streams"] = after["watch_streams"] - before["watch_streams"]
            data["etcd_watchers"] = after["watchers"] - before["watchers"]
            data["rss_growth_kib"] = data["rss_kib_all"] - data["rss_kib_before"]
            # Per prefix: from one resolver (runtime and connection made) to all of them.
            data["kib_per_prefix"] = round((data["rss_kib_all"] - data["rss_kib_one"]) / max(1, p - 1), 1)
            runs[key] = data
        self.results["prefixes"] = {"command": self.command("prefixes"), "prefixes": p, "populate_s": populate_s,
                                    "runs": runs}


# ---- derived figures, targets, sanity --------------------------------------------------------------

def flat(results):
    """The figures the targets refer to, by dotted name."""
    f = {}
    lat = results.get("latency")
    if lat:
        for k, s in lat["overhead"].items():
            if s:
                f[f"latency.overhead.{k}.p50_ms"] = s["p50_ms"]
                f[f"latency.overhead.{k}.p99_ms"] = s["p99_ms"]
        for k, r in lat["ratio"].items():
            for p, v in r.items():
                f[f"latency.ratio.{k}.{p}"] = v  # None: undefined
        ov = lat["overhead"]
        if ov.get("c") and ov.get("go_etcd"):
            f["latency.c_p99_minus_go_etcd_p99_ms"] = round(ov["c"]["p99_ms"] - ov["go_etcd"]["p99_ms"], 3)
        for k in ("go_gnaming", "python"):
            if ov.get("c") and ov.get(k):
                f[f"latency.{k}_minus_c.p50_ms"] = round(ov[k]["p50_ms"] - ov["c"]["p50_ms"], 3)
    fo = results.get("failover")
    if fo and fo["graceful"]:
        f["failover.graceful.p50_ms"] = fo["graceful"]["p50_ms"]
        f["failover.graceful.max_ms"] = fo["graceful"]["max_ms"]
    sc = results.get("scale")
    if sc:
        f["scale.first_list.c_ms"] = sc["first_list_ms"]["c"]
        f["scale.burst.c_ms"] = sc["burst"]["c"]["ms"]  # None: did not converge
    fp = results.get("footprint")
    if fp:
        f["footprint.stripped_so_mib"] = round(fp["stripped_so_bytes"] / 2**20, 2)
        f["footprint.idle_rss_mib"] = round(fp["idle_rss_kib"] / 1024, 2)
        f["footprint.rss_many_mib"] = round(fp["rss_kib_many"] / 1024, 2)
        f["footprint.many_watches"] = fp["many_watches"]
    xd = results.get("xds")
    if xd:
        for k, v in xd["paths"].items():
            f[f"xds.conns_per_change.{k}"] = v["conns_per_change"]
        for kind, runs in py_channel_runs(xd.get("python_channels")):
            for mode in ("busy", "idle"):
                f[f"xds.python_channels.{kind}.{mode}.connections_per_change"] = runs[mode]["connections_per_change"]
    lg = results.get("large")
    if lg:
        for kind in ("endpoints", "metadata"):
            med = {k: (run["spread"]["ms"] or {}).get("median") for k, run in lg[kind]["runs"].items()}
            for k in ("c", "go_gnaming"):
                f[f"large.{kind}.{k}.median_ms"] = med[k]  # None: every run failed
                f[f"large.{kind}.{k}_vs_go_etcd"] = \
                    round(med[k] / med["go_etcd"], 3) if med[k] is not None and med["go_etcd"] else None
        if lg.get("change"):
            f["large.change.c.p50_ms"] = lg["change"]["latency"]["p50_ms"]
    return f


def py_channel_runs(pc):
    """(kind, its busy and idle runs) of bench/xds_python.py's result, xDS channel first."""
    return [(k, pc[k]) for k in ("xds", "swapping")] if pc else []


def previous_figures(path, smoke):
    """The target figures of the run recorded at `path` (of the same kind), to show next to the new ones."""
    if not path or not os.path.exists(path):
        return None
    try:
        with open(path) as f:
            old = json.load(f)
        if old.get("config", {}).get("smoke") != smoke:
            return None
        return {"date": old.get("date"), "figures": flat(old.get("results", {}))}
    except (ValueError, KeyError, TypeError) as e:
        print(f"bench: the previous results in {path} cannot be read ({e}); no previous figures", flush=True)
        return None


def judge_targets(results, cfg):
    f = flat(results)
    out = []
    for key, bound, unit, label in TARGETS:
        if key not in f:
            continue
        v = f[key]
        met = None if v is None else v <= bound
        out.append({"figure": key, "label": label.format(**cfg), "value": v, "target": bound, "unit": unit,
                    "met": met, "missed_by": None if met in (None, True) else round(v - bound, 4),
                    "missed_by_factor": None if met in (None, True) or bound == 0 else round(v / bound, 2)})
    return out


def sanity(results, sections):
    """The smoke run's checks: every figure there, non-negative, lists converged."""
    problems = [f"{k} failed: {v}" for k, v in results.get("errors", {}).items()]

    def need(cond, what):
        if not cond:
            problems.append(what)

    sections = [s for s in sections if s not in results.get("errors", {})]
    if "latency" in sections:
        lat = results["latency"]
        for k, _ in PATHS:
            s = lat["latency"].get(k)
            need(s is not None and s["n"] == lat["changes"], f"latency {k}: saw {s and s['n']} of {lat['changes']}")
            need(s is None or s["p50_ms"] >= 0 and s["max_ms"] >= s["p99_ms"] >= s["p50_ms"], f"latency {k}: {s}")
        for k in ("c", "go_gnaming", "go_etcd", "python"):
            need(lat["overhead"].get(k) is not None, f"overhead {k} missing")
    if "failover" in sections:
        fo = results["failover"]
        need(fo["graceful"] and fo["graceful"]["p50_ms"] >= 0, f"graceful: {fo['graceful']}")
        need(fo["sigkill"] and fo["sigkill"]["p50_ms"] >= 0, f"sigkill: {fo['sigkill']}")
    if "scale" in sections:
        sc = results["scale"]
        need(sc["etcd_count_after"] == sc["endpoints"], f"etcd holds {sc['etcd_count_after']} after the burst")
        for k, b in sc["burst"].items():
            need(b["ms"] is not None and b["ms"] >= 0 and b["cpu_ms"] >= 0, f"burst {k}: {b}")
        for k, v in sc["first_list_ms"].items():
            need(v >= 0, f"first list {k}: {v}")
        reg = results["registrations"]
        need(reg["keepalive_streams"] >= 1, f"keep-alive streams: {reg['keepalive_streams']}")
        need(reg["etcd_msgs_per_s"] >= 0, f"etcd msgs/s: {reg['etcd_msgs_per_s']}")
    if "scale" in sections or "footprint" in sections:
        for k, run in results["many"]["runs"].items():
            need(run["rss_kib_all"] > 0 and run["threads_all"] > 0, f"many {k}: {run}")
    if "footprint" in sections:
        fp = results["footprint"]
        need(fp["stripped_so_bytes"] > 0 and fp["runtime_threads"] >= 1 and fp["idle_rss_kib"] > 0,
             f"footprint: {fp}")
        need(fp["many_watches"] >= 1, f"watches: {fp['many_watches']}")
    if "xds" in sections:
        xd = results["xds"]
        need(xd["agent_exit"] == 0, f"xds agent exited {xd['agent_exit']} on SIGTERM")
        for k, _, _ in XDS_PATHS:
            p = xd["paths"].get(k)
            if p is None:
                problems.append(f"xds {k}: not measured")
                continue
            s = p["latency"]
            need(p["missed"] == 0, f"xds {k}: {p['missed']} of {xd['samples']} new backends never answered")
            if k not in STATUS_CLIENTS:
                need(s is not None and s["n"] == xd["samples"], f"xds {k}: saw {s and s['n']} of {xd['samples']} new backends")
                need(s is None or s["p50_ms"] >= 0 and s["max_ms"] >= s["p99_ms"] >= s["p50_ms"], f"xds {k}: {s}")
                need(p["over_raw_watch"] is not None, f"xds {k}: no put seen by the raw watch")
            need(p["removed_still_called"] == 0, f"xds {k}: called {p['removed_still_called']} removed backends")
            need(p["rpcs"]["failed"] == 0, f"xds {k}: RPCs {p['rpcs']}")
            need(p["conns_at_start"] >= xd["stable_backends"], f"xds {k}: {p['conns_at_start']} connections at start")
            need(p["conns_opened_unchanged"] >= 0, f"xds {k}: {p['conns_opened_unchanged']} connections opened")
        pc = xd.get("python_channels")
        need(pc is not None, "xds: the Python channels were not measured")
        for kind, runs in py_channel_runs(pc):
            unchanged = pc["backends"] - 1
            for mode in ("busy", "idle"):
                run = runs[mode]
                need(run["unchanged_backends"] == unchanged, f"python {kind} {mode}: {run['unchanged_backends']} "
                     f"unchanged backends, not {unchanged}")
                # Every unchanged backend answered before the changes, so each counted a connection.
                need(run["connections_before_changes"] >= unchanged,
                     f"python {kind} {mode}: {run['connections_before_changes']} connections before the changes")
                need(run["changes"] > 0 and run["connections_opened_to_unchanged"] >= 0,
                     f"python {kind} {mode}: {run['connections_opened_to_unchanged']} opened over {run['changes']} changes")
            need(runs["busy"].get("connections_opened_during_samples", -1) >= 0,
                 f"python {kind}: connections during the samples {runs['busy'].get('connections_opened_during_samples')}")
            r = runs["busy"].get("rpcs_after_list_delivered")
            need(r is not None and r["max"] >= r["p99"] >= r["p50"] >= 0, f"python {kind}: RPCs after the list {r}")
            for key in ("put_to_first_rpc", "put_to_list_delivered", "list_delivered_to_first_rpc"):
                s = runs["busy"].get(key)
                need(s is not None and s["samples"] == pc["samples"], f"python {kind} {key}: {s}")
                need(s is None or s["p50_ms"] >= 0 and s["max_ms"] >= s["p99_ms"] >= s["p50_ms"],
                     f"python {kind} {key}: {s}")
    if "large" in sections:
        lg = results["large"]
        for kind in ("endpoints", "metadata"):
            for k, run in lg[kind]["runs"].items():
                need(not run["errors"] and len(run["ms"]) == lg["reps"], f"large {kind} {k}: {run['errors'] or run['ms']}")
                need(all(v >= 0 for v in run["ms"] + run["cpu_ms"]) and all(v > 0 for v in run["rss_kib"]),
                     f"large {kind} {k}: {run['spread']}")
        ch = lg.get("change")
        need(ch is not None and ch["latency"] is not None and ch["latency"]["p50_ms"] >= 0
             and ch["rss_kib_with_list"] > 0 and ch["cpu_ms_per_change"] >= 0, f"large changes: {ch}")
    if "prefixes" in sections:
        for k, run in results["prefixes"]["runs"].items():
            need(run["rss_kib_all"] > 0 and run["threads_all"] > 0, f"prefixes {k}: {run}")
            need(run["etcd_watch_streams"] >= 1 and run["etcd_watchers"] >= 1,
                 f"prefixes {k}: {run['etcd_watch_streams']} watch streams, {run['etcd_watchers']} watchers")
    return problems


# ---- reports ----------------------------------------------------------------------------------------

def machine():
    mem_kib = 0
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                mem_kib = int(line.split()[1])

    def version(argv):
        try:
            return subprocess.run(argv, capture_output=True, text=True, timeout=30).stdout.strip().splitlines()[0]
        except (OSError, IndexError, subprocess.TimeoutExpired):
            return "unknown"

    return {
        "cores": os.cpu_count(),
        "memory_gib": round(mem_kib / 2**20, 1),
        "kernel": platform.release(),
        "etcd": version(["etcd", "--version"]),
        "go": version(["go", "version"]),
        "python": platform.python_version(),
        "loadavg_at_end": open("/proc/loadavg").read().split()[:3],
    }


def fmt(v, digits=2):
    if v is None:
        return "—"
    if isinstance(v, float):
        return f"{v:.{digits}f}"
    return str(v)


def markdown(doc):
    r, cfg, m = doc["results"], doc["config"], doc["machine"]
    L = ["# Benchmarks", ""]
    L.append(f"Measured {doc['date']} on {m['cores']} cores and {m['memory_gib']} GiB "
             f"(Linux {m['kernel']}; {m['etcd']}; {m['go']}; Python {m['python']}; load average "
             f"{' '.join(m['loadavg_at_end'])} at the end, from other work on the machine), against a real "
             f"3-member etcd cluster on loopback started by `tests/harness/etcd_cluster.py`, with every path "
             f"measured side by side in one run. `make bench` reruns everything and rewrites this file and "
             f"`bench/results.json`; each section names the command that reruns only it. Absolute times on a "
             f"shared machine drift from run to run, so the ratios matter more than the milliseconds. "
             f"Targets are recorded, never enforced.")
    L.append("")
    prev = doc.get("previous") or {}
    prev_figures = prev.get("figures", {})
    L += ["## Targets", ""]
    if prev:
        L += [f"The previous run's figure ({prev.get('date')}) stands next to each new one.", ""]
    L += [f"| figure | value | previous | target | met | missed by |", "|---|---|---|---|---|---|"]
    for t in doc["targets"]:
        before = prev_figures.get(t["figure"])
        was = "—" if before is None else f"{fmt(before, 3)} {t['unit']}"
        if t["met"] is None and t["value"] is None and t["figure"].startswith("scale."):
            L.append(f"| {t['label']} | not converged in 300 s | {was} | ≤ {t['target']} {t['unit']} | no | more than "
                     f"{300000 - t['target']} ms |")
            continue
        if t["met"] is None and t["figure"].startswith("large."):
            L.append(f"| {t['label']} | not measured | {was} | ≤ {t['target']} {t['unit']} | — | the runs failed: see "
                     f"section 6 |")
            continue
        if t["met"] is None:
            L.append(f"| {t['label']} | undefined | {was} | ≤ {t['target']} {t['unit']} | — | etcd's resolver was not later "
                     f"than the raw watch there, so there is no overhead to divide by |")
            continue
        miss = "" if t["met"] else f"{fmt(t['missed_by'], 3)} {t['unit']}" + \
            ("" if t["missed_by_factor"] is None else f" ({fmt(t['missed_by_factor'])}× the target)")
        L.append(f"| {t['label']} | {fmt(t['value'], 3)} {t['unit']} | {was} | ≤ {t['target']} {t['unit']} | "
                 f"{'yes' if t['met'] else 'no'} | {miss} |")
    L.append("")
    for k, v in r.get("errors", {}).items():
        L += [f"**Section {k} failed:** {v}", ""]
    if "latency" in r:
        lat = r["latency"]
        L += ["## 1. Propagation latency", "",
              f"`{lat['command']}` — {lat['changes']} changes (puts and deletes alternating, one every "
              f"{lat['interval_ms']} ms after the previous one was acknowledged) by a Go clientv3 writer that "
              f"talks to all members. Latency is from just before the writer's call to the moment each path "
              f"sees the change; the overhead of a path is, per change, its time minus the raw watch's time "
              f"for the same change (changes are named by operation and key). Every observer is its own "
              f"process reading from the same member. The writer's own put → response: p50 "
              f"{fmt(lat['put_response']['p50_ms'], 3)} ms, p99 {fmt(lat['put_response']['p99_ms'], 3)} ms.", "",
              "| path | n | p50 ms | p90 ms | p99 ms | max ms | overhead p50 | p90 | p99 | max | missed |",
              "|---|---|---|---|---|---|---|---|---|---|---|"]
        for key, label in PATHS:
            s, o = lat["latency"].get(key), lat["overhead"].get(key)
            if s is None:
                L.append(f"| {label} | not measured | | | | | | | | | |")
                continue
            ov = ("—", "—", "—", "—") if o is None else tuple(fmt(o[p], 3) for p in ("p50_ms", "p90_ms", "p99_ms", "max_ms"))
            L.append(f"| {label} | {s['n']} | {fmt(s['p50_ms'], 3)} | {fmt(s['p90_ms'], 3)} | {fmt(s['p99_ms'], 3)} | "
                     f"{fmt(s['max_ms'], 3)} | {' | '.join(ov)} | {lat['missing'][key]} |")
        L += ["", "Overhead ratios against etcd's own Go resolver (below 1: less overhead than it; undefined where "
              "its overhead was not above zero):", ""]
        names = {"c": "libgnaming C callback", "go_gnaming": "Go binding", "python": "Python binding"}
        for k, v in lat["ratio"].items():
            path = k.removesuffix("_vs_go_etcd")
            L.append(f"- {names[path]} ÷ etcd Go resolver: mean {fmt(v.get('mean'), 3)}×, p50 {fmt(v.get('p50'), 3)}×, "
                     f"p99 {fmt(v.get('p99'), 3)}×")
        L += ["", "Directly against etcd's Go resolver, per change (this path's time minus its time; negative: "
              "earlier):", "", "| path | mean ms | p50 ms | p90 ms | p99 ms | max ms |", "|---|---|---|---|---|---|"]
        for k, d in lat["vs_go_etcd"].items():
            if d:
                L.append(f"| {names[k]} | {fmt(d['mean_ms'], 3)} | {fmt(d['p50_ms'], 3)} | {fmt(d['p90_ms'], 3)} | "
                         f"{fmt(d['p99_ms'], 3)} | {fmt(d['max_ms'], 3)} |")
        L += ["", "Where the C callback's overhead goes (profiled 2026-12-01: uprobes on an unstripped build and "
              "scheduler events, 1,740 changes, every step slowed by the probes; p50): the change reaches the "
              "watch stream's router task 0.054 ms after the process wakes (HTTP/2 and gRPC decoding), the watch "
              "task 0.023 ms later; applying and publishing take 0.019 ms; handing the thread's async work to "
              "another thread before the call (`block_in_place`) 0.034 ms (p90 0.23 ms: the thread woken for that "
              "work can preempt the caller); building the `gn_update` 0.015 ms. In 67% of the changes a thread of "
              "the process was preempted on the way: every change wakes nine processes (three etcd members, the "
              "writer, five observers) on two cores, where etcd's Go resolver hands the change from one goroutine "
              "to the next without the kernel. Before callbacks ran on the receiving thread, the hand-off to a "
              "blocking-pool thread alone took 0.139 ms (p50) in the same profile. The Python binding's part above "
              "C: turning the update into Python objects (`Update._from_c`: eight ctypes calls and frozen "
              "dataclasses) took 32 µs for a two-address update, timed in a loop on 2026-12-01; the rest is "
              "ctypes entering Python from a library thread (a Python thread state made and dropped per call, "
              "the GIL), not profiled further.", ""]
    if "failover" in r:
        fo = r["failover"]
        L += ["## 2. Failover", "",
              f"`{fo['command']}` — a C process registers one address (TTL {fo['ttl_ms']} ms) and a C resolver "
              f"in another process watches the service. Graceful: from just before `gn_registration_close` to "
              f"the update without the address. SIGKILL: from just before the kill to that update (bound by the "
              f"lease's TTL).", "",
              "| figure | n | p50 ms | p90 ms | p99 ms | max ms |", "|---|---|---|---|---|---|"]
        for key, label in (("graceful", "graceful: close → removal seen"),
                           ("close_call", "graceful: the close call itself (delete confirmed)"),
                           ("sigkill", "SIGKILL → removal seen (TTL-bound)")):
            s = fo[key]
            L.append(f"| {label} | {s['n']} | {fmt(s['p50_ms'], 1)} | {fmt(s['p90_ms'], 1)} | {fmt(s['p99_ms'], 1)} | "
                     f"{fmt(s['max_ms'], 1)} |")
        L.append("")
    if "scale" in r:
        sc = r["scale"]
        L += ["## 3. Scale", "",
              f"`{sc['command']}` — one prefix with {sc['endpoints']:,} endpoints. First list: from before the "
              f"client is created (connecting included) to the first complete list, each resolver alone on the "
              f"machine. Burst: {sc['burst_changes']:,} changes (half deletes, half puts, 32 in flight; etcd "
              f"took {fmt(sc['burst_write_ms'], 0)} ms to apply them all and holds {sc['etcd_count_after']:,} "
              f"keys afterwards), watched by all three at once: time from the burst's first request until the "
              f"resolver's list equals etcd's, and the observer process's CPU time meanwhile.", "",
              "| resolver | first full list ms | burst applied ms | CPU ms | updates delivered |",
              "|---|---|---|---|---|"]
        labels = {"c": "libgnaming C callback", "go_gnaming": "Go binding", "go_etcd": "etcd Go resolver"}
        for k in ("c", "go_gnaming", "go_etcd"):
            b = sc["burst"][k]
            if b["ms"] is None:
                L.append(f"| {labels[k]} | {fmt(sc['first_list_ms'][k], 1)} | not converged in 300 s | — | — |")
                continue
            L.append(f"| {labels[k]} | {fmt(sc['first_list_ms'][k], 1)} | {fmt(b['ms'], 1)} | {fmt(b['cpu_ms'], 1)} | "
                     f"{b['updates']} |")
        L.append("")
    if "many" in r:
        mn = r["many"]
        L += [f"{mn['resolvers']:,} resolvers on one target (3 endpoints) in one process (`{mn['command']}`); "
              f"etcd watchers counted on the server (`etcd_debugging_mvcc_watcher_total`, all members):", "",
              "| process | RSS before MiB | RSS with one MiB | RSS with all MiB | threads with all | etcd watchers | "
              "libgnaming watches_active |", "|---|---|---|---|---|---|---|"]
        labels = {"c": "C (libgnaming)", "go_gnaming": "Go binding", "go_etcd": "etcd Go resolver"}
        for k, run in mn["runs"].items():
            wa = run.get("stats", {}).get("watches_active", "—")
            L.append(f"| {labels[k]} | {fmt(run['rss_kib_before'] / 1024, 1)} | {fmt(run['rss_kib_one'] / 1024, 1)} | "
                     f"{fmt(run['rss_kib_all'] / 1024, 1)} | {run['threads_all']} | {fmt(run['etcd_watchers'], 0)} | {wa} |")
        L.append("")
    if "registrations" in r:
        rg = r["registrations"]
        who = "all" if rg["registered"] == rg["registrations"] else f"only {rg['registered']:,}"
        L += [f"{rg['registrations']:,} registrations in one C process, TTL {rg['ttl_ms']} ms (`{rg['command']}`): "
              f"{who} registered in {fmt(rg['register_all_ms'], 0)} ms; at steady state, over {rg['window_s']} s, "
              f"etcd received **{fmt(rg['etcd_msgs_per_s'])} gRPC messages/s** (all members, "
              f"`grpc_server_msg_received_total`; {fmt(rg['etcd_msgs_per_s_idle'])}/s with no registrations), "
              f"{fmt(rg['etcd_rpcs_handled_per_s'])} completed RPCs/s (`grpc_server_handled_total`), over "
              f"**{rg['keepalive_streams']} keep-alive stream(s)** (`keepalive_streams`). Process: "
              f"{fmt(rg['rss_kib'] / 1024, 1)} MiB RSS, {rg['threads']} threads. Messages/s by method: "
              f"{', '.join(f'{k} {v}' for k, v in sorted(rg['etcd_msgs_per_s_by_method'].items())) or 'none'}.", ""]
    if "footprint" in r:
        fp = r["footprint"]
        L += ["## 4. Footprint", "", f"`{fp['command']}` (the C process of the many-resolver run above):", "",
              "| figure | value |", "|---|---|",
              f"| libgnaming.so, stripped | {fmt(fp['stripped_so_bytes'] / 2**20)} MiB ({fp['stripped_so_bytes']:,} bytes; "
              f"{fmt(fp['so_bytes'] / 2**20)} MiB as built"
              f"{', which is already stripped' if fp['so_bytes'] == fp['stripped_so_bytes'] else ''}) |",
              f"| runtime threads (started by the first resolver) | {fp['runtime_threads']} |",
              f"| RSS before first use | {fmt(fp['rss_kib_before_first_use'] / 1024)} MiB |",
              f"| idle RSS after start (one etcd resolver) | {fmt(fp['idle_rss_kib'] / 1024)} MiB |",
              f"| RSS with {fp['many_resolvers']:,} resolvers | {fmt(fp['rss_kib_many'] / 1024)} MiB |",
              f"| etcd watches for {fp['many_resolvers']:,} resolvers (`watches_active`) | {fp['many_watches']} |", ""]
    if "xds" in r:
        L += markdown_xds(r["xds"])
    if "large" in r:
        L += markdown_large(r["large"])
    if "prefixes" in r:
        L += markdown_prefixes(r["prefixes"])
    return "\n".join(L)


RESOLVERS = {"c": "libgnaming C callback", "go_gnaming": "Go binding", "go_etcd": "etcd Go resolver",
             "python": "Python binding"}


def markdown_large(lg):
    e, m = lg["endpoints"], lg["metadata"]
    L = ["## 6. Large lists", "",
         f"`{lg['command']}` — one prefix with {e['n']:,} endpoints (put in {fmt(e['populate_s'], 2)} s, in "
         f"transactions of 100 puts, 16 in flight), and one with {m['n']:,} endpoints whose values carry "
         f"{m['metadata_bytes']:,} bytes of metadata each (put in {fmt(m['populate_s'], 2)} s). First full list: "
         f"from before the client is created (connecting included) to the call that delivers the complete list, "
         f"each resolver alone on the machine, the three taking turns, {lg['reps']} "
         f"round{'s' if lg['reps'] != 1 else ''}; the process's CPU time and RSS as it holds the list (medians).", "",
         "| resolver | list | runs | first full list min ms | median ms | max ms | CPU ms | RSS MiB | failed runs |",
         "|---|---|---|---|---|---|---|---|---|"]
    for kind, label in (("endpoints", f"{e['n']:,} endpoints"),
                        ("metadata", f"{m['n']:,} × {m['metadata_bytes']:,} B metadata")):
        for k, run in lg[kind]["runs"].items():
            t, cpu, rss = (run["spread"][x] for x in ("ms", "cpu_ms", "rss_kib"))
            times = "— | — | —" if t is None else f"{fmt(t['min'], 1)} | {fmt(t['median'], 1)} | {fmt(t['max'], 1)}"
            L.append(f"| {RESOLVERS[k]} | {label} | {len(run['ms'])} | {times} | "
                     f"{'—' if cpu is None else fmt(cpu['median'], 0)} | "
                     f"{'—' if rss is None else fmt(rss['median'] / 1024, 1)} | {len(run['errors'])} |")
    L.append("")
    errors = [(kind, k, err) for kind in ("endpoints", "metadata") for k, run in lg[kind]["runs"].items()
              for err in run["errors"][:1]]
    for kind, k, err in errors:
        L += [f"{RESOLVERS[k]}, {kind}: {err}", ""]
    ch = lg.get("change")
    if ch:
        s, w = ch["latency"], ch["write_response"]
        L += [f"One change at a time at {ch['endpoints']:,} endpoints: {ch['changes']} changes (a new endpoint put, "
              f"then deleted, in turn), each made by a Go clientv3 writer once the C callback had seen the previous "
              f"one; latency from just before the writer's call to the call of the C callback whose list shows the "
              f"change (the writer's own response: p50 {fmt(w['p50_ms'], 2)} ms, p99 {fmt(w['p99_ms'], 2)} ms).", "",
              "| path | n | p50 ms | p90 ms | p99 ms | max ms |", "|---|---|---|---|---|---|",
              f"| libgnaming C callback | {s['n']} | {fmt(s['p50_ms'], 2)} | {fmt(s['p90_ms'], 2)} | "
              f"{fmt(s['p99_ms'], 2)} | {fmt(s['max_ms'], 2)} |", "",
              f"The C process holding the {ch['endpoints']:,}-entry list (VmRSS): "
              f"{fmt(ch['rss_kib_before'] / 1024, 1)} MiB before the resolver started, "
              f"{fmt(ch['rss_kib_with_list'] / 1024, 1)} MiB with the first list (which took "
              f"{fmt(ch['first_list_ms'], 0)} ms and {fmt(ch['cpu_ms_first_list'], 0)} ms of CPU), "
              f"{fmt(ch['rss_kib_after_changes'] / 1024, 1)} MiB after the changes, peak (VmHWM) "
              f"{fmt(ch['rss_kib_peak'] / 1024, 1)} MiB; CPU {fmt(ch['cpu_ms_per_change'], 1)} ms per change, "
              f"of which the callback's own search of each list for the changed address took "
              f"{fmt(ch['search_ms_per_change'], 2)} ms (wall time).", "",
              "A change at 100,000 endpoints hands the callback the complete list again. In a perf profile "
              "(2026-12-01) a quarter of the process's CPU went to reading every address back for "
              "`gn_address.ip` (since read by hand), 12% to copying the entries into the new list, 10% to building "
              "the `gn_update` and 7% to dropping the previous list. This machine's speed drifts during a day: "
              "back to back on one etcd, the library as it was before 2026-12-01's changes took 22.5 to 24.1 ms of "
              "CPU per change (4 runs) and this code 20.0 to 30.3 ms (4 runs), and the writer's own responses in "
              "this run are slower than in the previous one.", ""]
    return L


def markdown_prefixes(pf):
    p = pf["prefixes"]
    L = ["## 7. Many prefixes", "",
         f"`{pf['command']}` — {p:,} services (`bench/pfx/s00000` …, one endpoint each, put in "
         f"{fmt(pf['populate_s'], 2)} s), each resolved by its own resolver, all in one process; one run per "
         f"process. RSS before the first resolver (the library loaded, nothing started), with one, with all "
         f"{p:,}; growth is all − before, per prefix (all − one) ÷ {p - 1:,}. etcd's watch streams and watchers "
         f"(`etcd_debugging_mvcc_watch_stream_total`, `etcd_debugging_mvcc_watcher_total`, summed over the members) "
         f"read just before the process started and while it held all {p:,}: the difference.", "",
         "| process | RSS before MiB | with one MiB | with all MiB | growth MiB | KiB per prefix | threads with all | "
         "etcd watch streams added | etcd watchers added | libgnaming watches_active |",
         "|---|---|---|---|---|---|---|---|---|---|"]
    for k, run in pf["runs"].items():
        wa = run.get("stats", {}).get("watches_active", "—")
        L.append(f"| {RESOLVERS[k]} | {fmt(run['rss_kib_before'] / 1024, 1)} | {fmt(run['rss_kib_one'] / 1024, 1)} | "
                 f"{fmt(run['rss_kib_all'] / 1024, 1)} | {fmt(run['rss_growth_kib'] / 1024, 1)} | "
                 f"{fmt(run['kib_per_prefix'], 1)} | {run['threads_all']} | {fmt(run['etcd_watch_streams'], 0)} | "
                 f"{fmt(run['etcd_watchers'], 0)} | {wa} |")
    L.append("")
    return L


def markdown_xds(xd):
    L = ["## 5. xDS vs native", "",
         f"`{xd['command']}` — one service in etcd, `bench-xds`, called by two clients per stack for Go and C++, "
         f"and one for Python, Java and Node: the stack's own xDS client on `xds:///bench-xds`, fed by `gnaming "
         f"xds-agent` (listening on {xd['agent']}, its bootstrap file in `GRPC_XDS_BOOTSTRAP`), and the stack's "
         f"native libgnaming path on `etcd:///bench-xds`; the Python package's own two channels follow in a table "
         f"of their own, with more backends. The agent, "
         f"every native resolver and a raw clientv3 watch (the floor) read the same member. One Go process serves "
         f"{xd['stable_backends']} unchanged backends and the fresh ones, all on 127.0.0.1, and counts the client "
         f"connections each gets from each path (distinct peer addresses). Each client process runs "
         f"{xd['workers']} callers that pause {xd['pace_ms']} ms after each reply, with round_robin; the clients "
         f"run one after another, each with the machine to itself. A sample: a clientv3 put of a fresh "
         f"backend's entry, then the client's first reply from that backend (latency from just before the put; "
         f"over the floor: minus the time the raw watch saw that put), then the previous sample's backend deleted "
         f"and waited on until the client stops calling it; {xd['samples']} samples, {xd['changes']} list changes "
         f"per path. The put's own response took p50 {fmt(xd['put_response']['p50_ms'], 1)} ms, p99 "
         f"{fmt(xd['put_response']['p99_ms'], 1)} ms. The callers' pause puts up to about {xd['pace_ms']} ms of "
         f"sampling delay into every path alike. Java and Node run the demo's clients (`demo/java`, `demo/node`): "
         f"one caller each with the same pause, reporting in status lines every 250 ms, so their rows say whether "
         f"each change was followed (missed) and what it cost in connections, not how fast; their first RPC after "
         f"start is read from those lines too (to 250 ms).", "",
         "| path | n | p50 ms | p90 ms | p99 ms | max ms | over the floor p50 | p90 | p99 | missed | "
         "first RPC after start ms | connections to unchanged backends at start | opened by the changes | "
         "per change | removed backend still called | RPCs ok / failed |",
         "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for key, label, _ in XDS_PATHS:
        p = xd["paths"].get(key)
        if p is None:
            L.append(f"| {label} | not measured |" + " |" * 15)
            continue
        s, o, rp = p["latency"], p["over_raw_watch"], p["rpcs"]
        lat = "— | — | — | — | —" if s is None else \
            f"{s['n']} | {fmt(s['p50_ms'], 1)} | {fmt(s['p90_ms'], 1)} | {fmt(s['p99_ms'], 1)} | {fmt(s['max_ms'], 1)}"
        ov = "— | — | —" if o is None else f"{fmt(o['p50_ms'], 1)} | {fmt(o['p90_ms'], 1)} | {fmt(o['p99_ms'], 1)}"
        L.append(f"| {label} | {lat} | {ov} | {p['missed']} | {fmt(p['first_rpc_ms'], 0)} | {p['conns_at_start']} | "
                 f"{p['conns_opened_unchanged']} | {fmt(p['conns_per_change'], 2)} | {p['removed_still_called']} | "
                 f"{rp['ok']} / {rp['failed']} |")
    L.append("")
    paths = xd["paths"]
    xds_keys = [k for k, _, kind in XDS_PATHS if kind == "xds" and k in paths]
    if xds_keys:
        L += ["Where an xDS path's time goes: a bare ADS client of the agent (`grpcbench ads`, subscribed to the "
              "same name during that path's run) records when each new endpoint is pushed.", "",
              "| xDS path | server's push over the floor p50 ms | p90 | max | client's own part after the push p50 ms | "
              "p90 | max |", "|---|---|---|---|---|---|---|"]
        for k in xds_keys:
            pu, cl = paths[k]["push_over_raw_watch"], paths[k]["client_after_push"]
            cells = [fmt(x[q], 1) if x else "—" for x in (pu, cl) for q in ("p50_ms", "p90_ms", "max_ms")]
            L.append(f"| {dict((a, b) for a, b, _ in XDS_PATHS)[k]} | {' | '.join(cells)} |")
        L += ["", "Why the xDS rows trail the native ones: not the xDS server, whose push follows the raw watch by well under a "
              "millisecond at p50, but the clients' pick. Every endpoint sits in a "
              "locality of its own, which is how weights reach round_robin in every stack, and both grpc-go and "
              "grpc-core choose the locality of each RPC *at random* by weight (grpc-go `balancer/weightedtarget`: "
              "`NewRandomWRR = wrr.NewRandom`; grpc-core 1.51 `weighted_target.cc`: `absl::Uniform`). With "
              f"{xd['stable_backends'] + 1} equal backends the new one is reached after a geometric number of picks "
              f"(each a 1 in {xd['stable_backends'] + 1} chance, no bound), where native round_robin reaches it "
              f"within {xd['stable_backends'] + 1} picks. So this figure, which waits for an RPC to land on the new "
              "backend, grows on xDS paths with the time between picks, most in the tail: rerun with `--xds-workers 8 "
              "--xds-pace-ms 0.2` and the gap shrinks, with `--xds-workers 1 --xds-pace-ms 10` it widens (on "
              "2026-11-30, over the floor p99, Go and C++: xDS 9.7 and 6.7 ms against native 4.0 and 3.8 ms at the "
              "first; xDS 116 and 267 ms against native 40 and 56 ms at the second, where round_robin's bound of "
              "three picks shows). Over many RPCs the shares are the same; only the order is random.", ""]
        L += ["The agent sets TCP_NODELAY on the ADS connections it accepts. Without it, Nagle's algorithm holding "
              "back the agent's second small write met the client's delayed ACK (40 ms minimum on Linux): "
              "grpc-core's own trace (`GRPC_TRACE=xds_client`) showed the first Listener response 48 ms after the "
              "request (5 ms with TCP_NODELAY), the first RPC after start took 87 ms in Go and 121 ms in C++ (33 and "
              "27 ms with it), and samples of 37–45 ms sat in every xDS path's tail (measured 2026-11-30, before "
              "the fix).", ""]
    node = paths.get("node_xds")
    if node and node["conns_opened_unchanged"] > 0:
        L += [f"Node opened {node['conns_opened_unchanged']} connections to the unchanged backends over "
              f"{xd['changes']} changes ({fmt(node['conns_per_change'], 2)} per change): @grpc/grpc-js connects "
              "again to every endpoint on each EDS update, because its subchannel pool compares channel arguments "
              "by object identity and each update brings a new config-selector object; the old connections close "
              "later. No server-side resource change avoids it (grpc-core fixed the same kind of bug in 2020, "
              "grpc/grpc#23073).", ""]
    if xd.get("python_channels"):
        L += markdown_python_channels(xd["python_channels"], xd["command"])
    return L


def markdown_python_channels(pc, command):
    """The Python package's xDS channel beside its swapping channel (bench/xds_python.py)."""
    x, sw = pc["xds"], pc["swapping"]
    n, unchanged = pc["backends"], pc["backends"] - 1
    L = [f"### Python: the xDS channel beside the swapping channel, {n} backends", "",
         f"`bench/xds_python.py`, run by the same command (`{command}`) on the same etcd member: one Python process "
         f"(grpcio {pc['grpcio']}) serves {n} grpcio backends on 127.0.0.1 ({unchanged} stay registered, one is "
         f"registered and removed) and calls them through each channel in turn: the **xDS channel**, "
         f"`{x['call']}`, fed by the process's own libgnaming xDS server, and the **swapping channel**, "
         f"`{sw['call']}`, which replaces its inner grpcio channel (the address list as an `ipv4:` target, "
         f"round_robin) on every list change and closes the old one after a grace period. One thread sends unary "
         f"RPCs back to back. A sample: from just before a `gnaming.Registration` of the new backend starts (lease "
         f"grant and put) to the first reply from it, split where a separate `gnaming.Resolver` in the same process "
         f"delivers the list with it; then the registration is closed and RPCs go on until a batch of 60 misses it. "
         f"{pc['samples']} samples per channel; load average {' '.join(f'{v:.2f}' for v in pc['loadavg_before'])} "
         f"before, {' '.join(f'{v:.2f}' for v in pc['loadavg_after'])} after.", "",
         "| channel | n | registration → first RPC on the new backend p50 ms | p90 | p99 | max | "
         "registration → list delivered p50 ms | p99 | list delivered → first RPC p50 ms | p99 | "
         "RPCs sent from the list's delivery to that first RPC p50 | p90 | p99 |",
         "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for label, runs in (("xDS", x), ("swapping", sw)):
        t, d, c = (runs["busy"][k] for k in ("put_to_first_rpc", "put_to_list_delivered", "list_delivered_to_first_rpc"))
        r = runs["busy"]["rpcs_after_list_delivered"]
        L.append(f"| {label} | {t['samples']} | {fmt(t['p50_ms'], 1)} | {fmt(t['p90_ms'], 1)} | {fmt(t['p99_ms'], 1)} | "
                 f"{fmt(t['max_ms'], 1)} | {fmt(d['p50_ms'], 1)} | {fmt(d['p99_ms'], 1)} | {fmt(c['p50_ms'], 1)} | "
                 f"{fmt(c['p99_ms'], 1)} | {r['p50']} | {r['p90']} | {r['p99']} |")
    idle = x["idle"]["idle_after_change_s"]
    L += ["", f"Connections: each backend counts the distinct client addresses its RPCs come from. After the samples, "
          f"{pc['changes']} changes (the new backend registered, then removed, in turn); after each, RPCs until the "
          f"change shows (the new backend answers, or a batch of 60 misses the removed one) and then until every "
          f"unchanged backend has answered, so a connection the change made a client open to one of them carries an "
          f"RPC and is counted (one that never does is not). **Busy**: those RPCs start at once; the swapping "
          f"channel keeps its default grace ({fmt(sw['busy']['grace_s'], 0)} s). **Idle**: the client sends nothing "
          f"for {fmt(idle, 1)} s after each change, longer than the swapping channel's grace in that run "
          f"({fmt(sw['idle']['grace_s'], 1)} s), as for a client whose calls are further apart than the grace. "
          f"The last columns count the same way over the latency samples before (busy run), where each change "
          f"follows the previous one within milliseconds and only the RPCs until it shows are sent, so a connection "
          f"that carried none is missed there.", "",
          f"| channel | busy: opened to the {unchanged} unchanged backends | per change | idle: opened | per change | "
          f"during the latency samples ({2 * pc['samples']} changes): opened | per change |",
          "|---|---|---|---|---|---|---|"]
    for label, runs in (("xDS", x), ("swapping", sw)):
        b, i = runs["busy"], runs["idle"]
        during = b["connections_opened_during_samples"]
        L.append(f"| {label} | {b['connections_opened_to_unchanged']} | {fmt(b['connections_per_change'], 2)} | "
                 f"{i['connections_opened_to_unchanged']} | {fmt(i['connections_per_change'], 2)} | {during} | "
                 f"{fmt(during / (2 * pc['samples']), 2)} |")
    L.append("")
    xo = sum(x[m]["connections_opened_to_unchanged"] for m in ("busy", "idle")) + \
        x["busy"]["connections_opened_during_samples"]
    sb, si = sw["busy"]["connections_per_change"], sw["idle"]["connections_per_change"]
    sd = sw["busy"]["connections_opened_during_samples"] / (2 * pc["samples"])
    L.append(("The xDS channel opened no connection to an unchanged backend anywhere: grpcio's xDS client keeps "
              "one subchannel per endpoint and updates the set in place." if xo == 0 else
              f"The xDS channel opened {xo} connections to unchanged backends over all three counts, against the "
              "goal of none.") +
             f" The swapping channel opened {fmt(sb, 2)} per change while busy, {fmt(sd, 2)} during the latency "
             f"samples and {fmt(si, 2)} when idle ({unchanged} would be every unchanged backend)" +
             ("" if si <= max(sb, sd) else
              ": grpcio pools subchannels process-wide by address and channel arguments, so a new inner channel "
              "can reuse the connections its predecessor still holds during the grace, and connects again once "
              "they are closed") + ".")
    L.append("")
    xd_, sd = x["busy"]["put_to_list_delivered"], sw["busy"]["put_to_list_delivered"]
    xc, sc = x["busy"]["list_delivered_to_first_rpc"], sw["busy"]["list_delivered_to_first_rpc"]
    xr, sr = x["busy"]["rpcs_after_list_delivered"], sw["busy"]["rpcs_after_list_delivered"]
    if xc["p50_ms"] > sc["p50_ms"] or xc["p99_ms"] > sc["p99_ms"]:
        L += [f"Registration → list delivered took p50 {fmt(xd_['p50_ms'], 1)} ms in the xDS channel's run and "
              f"{fmt(sd['p50_ms'], 1)} ms in the swapping channel's; after it the xDS channel took p50 "
              f"{fmt(xc['p50_ms'], 1)} against {fmt(sc['p50_ms'], 1)} ms, p99 {fmt(xc['p99_ms'], 1)} against "
              f"{fmt(sc['p99_ms'], 1)} ms, and sent p50 {xr['p50']} against {sr['p50']}, p99 {xr['p99']} against "
              f"{sr['p99']} RPCs up to and including the first one the new backend answered. grpcio's xDS client picks each RPC's locality at "
              f"random by weight (see above): with {n} equal backends the new one is reached after a geometric number "
              f"of picks, each a 1 in {n} chance (median {math.ceil(math.log(0.5) / math.log(1 - 1 / n))}, 99th "
              f"percentile {math.ceil(math.log(0.01) / math.log(1 - 1 / n))}), where the swapping channel's fresh "
              f"round_robin reaches it within {n} picks. A client with more RPCs in flight reaches it sooner; over "
              "many RPCs the shares are the same.", ""]
    return L


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--smoke", action="store_true", help="tiny counts; check the figures, not the speed")
    ap.add_argument("--only", default=",".join(SECTIONS), help="comma-separated sections: " + ", ".join(SECTIONS))
    ap.add_argument("--md", help="markdown table to write")
    ap.add_argument("--json", help="JSON results to write")
    ap.add_argument("--build-dir", default=os.path.join(ROOT, "build", "bench"))
    ap.add_argument("--xds-listen", default="127.0.0.1:0", help="where the xds section's agent listens")
    ap.add_argument("--xds-workers", type=int, help="callers per client in the xds section")
    ap.add_argument("--xds-pace-ms", type=float, help="pause after each reply, per caller, in the xds section")
    ap.add_argument("--grpc-python", default=os.path.join(ROOT, "build", "venv", "bin", "python"),
                    help="a Python with grpcio, for the xds section's Python clients")
    args = ap.parse_args()
    sections = [s for s in args.only.split(",") if s]
    for s in sections:
        if s not in SECTIONS:
            ap.error(f"unknown section {s!r}")

    def terminate(signum, _frame):
        raise KeyboardInterrupt(signum)

    signal.signal(signal.SIGTERM, terminate)
    started = time.monotonic()
    cluster = EtcdCluster(members=3)
    try:
        cluster.start()
        b = Bench(args, cluster)
        for s in SECTIONS:
            if s in sections:
                print(f"bench: {s}...", flush=True)
                try:
                    getattr(b, s)()
                except Exception as e:  # noqa: BLE001 - recorded, and the run goes on to the next section
                    print(f"bench: {s} failed: {e}", flush=True)
                    b.results.setdefault("errors", {})[s] = str(e)
                    Proc.kill_all()
    finally:
        Proc.kill_all()
        cluster.stop()
    results, dates = b.results, {k: time.strftime("%Y-%m-%d") for k in b.results}
    previous = previous_figures(args.json, args.smoke)
    # A rerun of some sections keeps the other sections' figures from the last run of the same kind.
    if args.json and set(sections) != set(SECTIONS) and os.path.exists(args.json):
        with open(args.json) as f:
            old = json.load(f)
        if old.get("config", {}).get("smoke") == args.smoke:
            results = dict(old.get("results", {}), **b.results)
            # A section rerun here replaces its recorded failure too.
            errors = {k: v for k, v in results.get("errors", {}).items() if k not in sections}
            errors.update(b.results.get("errors", {}))
            results.pop("errors", None)
            if errors:
                results["errors"] = errors
            dates = dict(old.get("dates", {}), **dates)
    cfg = b.cfg
    doc = {
        "date": time.strftime("%Y-%m-%d"),
        "machine": machine(),
        "config": dict(cfg, smoke=args.smoke),
        "dates": dates,
        "results": results,
        "targets": judge_targets(results, cfg),
        "previous": previous,
        "seconds": round(time.monotonic() - started, 1),
    }
    if args.json:
        os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
        with open(args.json, "w") as f:
            json.dump(doc, f, indent=2)
            f.write("\n")
    text = markdown(doc)
    if args.md:
        with open(args.md, "w") as f:
            f.write(text + "\n")
    print(text)
    problems = sanity(b.results, sections)
    if problems:
        print("bench: figures missing or not sane:\n  " + "\n  ".join(problems))
        # The smoke run guards the suite; a full run reports what it measured, whatever it was.
        sys.exit(1 if args.smoke else 0)
    print(f"bench: {len(sections)} sections in {doc['seconds']} s, every figure produced and sane")


if __name__ == "__main__":
    main()
