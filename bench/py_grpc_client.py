#!/usr/bin/env python3
"""Python client of the "xDS vs native" bench section (bench/bench.py drives it).

    py_grpc_client.py xds|gnaming-xds|native TARGET PATH [WORKERS] [PACE_MS]

xds: grpcio's own channel on TARGET (xds:///NAME; the bootstrap comes from GRPC_XDS_BOOTSTRAP).
gnaming-xds: the same channel fed by this process's own libgnaming xDS server
(gnaming.xds.install_bootstrap); prints "xds-server ADDR" first.
native: gnaming.grpc.Channel on TARGET (etcd:///NAME), which swaps grpcio channels on every change.
WORKERS threads each call the bench method (request: PATH, reply: the backend's address) and pause
PACE_MS after each reply. Prints "new ADDR T" the first time a backend answers (T in CLOCK_MONOTONIC
nanoseconds); after stdin closes, "rpcs {json}" and "end".
"""

import json
import sys
import threading
import time

import grpc

METHOD = "/bench.Who/Who"


def main():
    kind, target, path = sys.argv[1:4]
    workers = int(sys.argv[4]) if len(sys.argv) > 4 else 3
    pace = (float(sys.argv[5]) if len(sys.argv) > 5 else 2.0) / 1000
    if kind == "gnaming-xds":
        import gnaming.xds
        bootstrap = json.loads(gnaming.xds.install_bootstrap())
        print("xds-server " + bootstrap["xds_servers"][0]["server_uri"], flush=True)
    if kind in ("xds", "gnaming-xds"):
        channel = grpc.insecure_channel(target)
    else:
        import gnaming.grpc
        channel = gnaming.grpc.Channel(target)
    call = channel.unary_unary(METHOD)
    lock = threading.Lock()
    seen, counts = set(), {"ok": 0, "failed": 0, "last_error": ""}
    stop = threading.Event()
    request = path.encode()

    def work():
        while not stop.is_set():
            try:
                reply = call(request, timeout=5, wait_for_ready=True)
                t = time.clock_gettime_ns(time.CLOCK_MONOTONIC)
                addr = reply.decode()
                with lock:
                    counts["ok"] += 1
                    first = addr not in seen
                    seen.add(addr)
                    if first:
                        print(f"new {addr} {t}", flush=True)
            except grpc.RpcError as e:
                with lock:
                    counts["failed"] += 1
                    counts["last_error"] = f"{e.code()}: {e.details()}"
            time.sleep(pace)

    threads = [threading.Thread(target=work, daemon=True) for _ in range(workers)]
    for t in threads:
        t.start()
    sys.stdin.read()
    stop.set()
    for t in threads:
        t.join(10)
    with lock:
        print("rpcs " + json.dumps(counts), flush=True)
    print("end", flush=True)
    channel.close()


if __name__ == "__main__":
    main()
