#!/usr/bin/env python3
"""Latency observer for the Python binding (bench/bench.py drives it).

    py_observe.py SERVICE

Resolves etcd:///SERVICE with gnaming.Resolver and a callback (the cluster comes from
GNAMING_ETCD_ENDPOINTS). Prints "ready" after the first list; after stdin closes, one line per change
seen ("put ADDR T" / "del ADDR T", T in CLOCK_MONOTONIC nanoseconds, taken as the callback is
entered) and "end".
"""

import sys
import threading
import time

import gnaming


def main():
    service = sys.argv[1]
    lock = threading.Lock()
    first = threading.Event()
    prev = set()
    events = []

    def on_update(update):
        t = time.clock_gettime_ns(time.CLOCK_MONOTONIC)
        cur = {a.addr for a in update.addresses}
        with lock:
            if first.is_set():
                events.extend(("put", a, t) for a in cur - prev)
                events.extend(("del", a, t) for a in prev - cur)
            prev.clear()
            prev.update(cur)
        first.set()

    with gnaming.Resolver(f"etcd:///{service}", on_update):
        if not first.wait(30):
            sys.exit("py_observe: no first update in 30 s")
        print("ready", flush=True)
        for _ in sys.stdin:
            pass
    with lock:
        out = [f"{op} {a} {t}" for op, a, t in events]
    sys.stdout.write("\n".join(out + ["end"]) + "\n")


if __name__ == "__main__":
    main()
