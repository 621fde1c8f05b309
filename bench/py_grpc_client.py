#!/usr/bin/env python3
"""Python client of the "xDS vs native" bench section (bench/bench.py drives it): grpcio's own
channel on an xds:/// target, fed by the agent whose bootstrap is in GRPC_XDS_BOOTSTRAP, with no
libgnaming in the process. (The Python package's own channels are measured by bench/xds_python.py.)

    py_grpc_client.py TARGET PATH [WORKERS] [PACE_MS]

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
    target, path = sys.argv[1:3]
    workers = int(sys.argv[3]) if len(sys.argv) > 3 else 3
    pace = (float(sys.argv[4]) if len(sys.argv) > 4 else 2.0) / 1000
    channel = grpc.insecure_channel(target)
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
