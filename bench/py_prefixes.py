#!/usr/bin/env python3
"""Many services in one Python process (bench/bench.py's prefixes section drives it).

    py_prefixes.py BASE N

Resolves etcd:///BASE/s00000 ... etcd:///BASE/sNNNNN, one gnaming.Resolver with a callback each (the
cluster comes from GNAMING_ETCD_ENDPOINTS), and prints one JSON line, as gn_bench and gobench `many`
do: RSS and threads before the first resolver (the library loaded), once the first delivered a list,
once all N did, and the library's stats; then holds them until stdin closes.
"""

import json
import sys
import threading

import gnaming

WAIT_S = 60


def proc_status():
    """(VmRSS in KiB, threads) of this process."""
    rss = threads = -1
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1])
            elif line.startswith("Threads:"):
                threads = int(line.split()[1])
    return rss, threads


def main():
    base, n = sys.argv[1], int(sys.argv[2])
    cv = threading.Condition()
    delivered = set()

    def callback(k):
        def on_update(_update):
            with cv:
                delivered.add(k)
                cv.notify_all()
        return on_update

    def wait(count):
        with cv:
            if not cv.wait_for(lambda: len(delivered) >= count, WAIT_S):
                sys.exit(f"py_prefixes: only {len(delivered)} of {count} resolvers had a first list in {WAIT_S} s")

    out = {}
    out["rss_kib_before"], out["threads_before"] = proc_status()
    resolvers = [gnaming.Resolver(f"etcd:///{base}/s{0:05d}", callback(0))]
    wait(1)
    out["rss_kib_one"], out["threads_one"] = proc_status()
    resolvers += [gnaming.Resolver(f"etcd:///{base}/s{k:05d}", callback(k)) for k in range(1, n)]
    wait(n)
    out["rss_kib_all"], out["threads_all"] = proc_status()
    out["stats"] = gnaming.stats()
    print(json.dumps(out), flush=True)
    for _ in sys.stdin:
        pass
    for r in resolvers:
        r.close()


if __name__ == "__main__":
    main()
