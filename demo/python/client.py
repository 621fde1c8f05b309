"""Demo greeter client in Python: calls SayHello on etcd:///echo round robin, counting answers by
server, and prints a JSON status line every quarter second for the demo driver.

    client.py NAME [--target etcd:///echo]

The channel is grpcio's own xDS channel, fed by the process's libgnaming xDS server
(gnaming.grpc.channel); a second, shared-watch resolver shows the address list the client sees.
SIGTERM prints a last status and exits.
"""

import argparse
import collections
import json
import signal
import sys
import threading
import time

import grpc

import gnaming
import gnaming.grpc
import helloworld_pb2
import helloworld_pb2_grpc


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("name")
    parser.add_argument("--target", default="etcd:///echo")
    parser.add_argument("--interval", type=float, default=0.01, help="pause between RPCs, seconds")
    args = parser.parse_args()

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())

    addresses: list[str] = []
    lock = threading.Lock()

    def on_update(update: gnaming.Update) -> None:
        with lock:
            addresses[:] = sorted(a.addr for a in update.addresses)

    resolver = gnaming.Resolver(args.target, on_update)
    channel = gnaming.grpc.channel(args.target)
    stub = helloworld_pb2_grpc.GreeterStub(channel)
    counts: collections.Counter = collections.Counter()
    ok = failed = 0
    failures: list[int] = []
    last_error = None

    def status() -> None:
        with lock:
            shown = list(addresses)
        line = {"event": "status", "client": args.name, "lang": "python", "addresses": shown,
                "counts": dict(counts), "ok": ok, "failed": failed, "failures": failures[:],
                "last_error": last_error}
        failures.clear()
        print(json.dumps(line), flush=True)

    next_status = time.monotonic()
    waiting_for_first = True  # only the first call waits for addresses; later ones fail fast
    while not stop.is_set():
        try:
            reply = stub.SayHello(helloworld_pb2.HelloRequest(name=args.name), timeout=2,
                                  wait_for_ready=waiting_for_first)
            waiting_for_first = False
            counts[reply.message] += 1
            ok += 1
        except grpc.RpcError as e:
            failed += 1
            failures.append(int(time.time() * 1000))
            last_error = f"{e.code().name}: {e.details()}"
        if time.monotonic() >= next_status:
            status()
            next_status += 0.25
        stop.wait(args.interval)
    status()
    channel.close()
    resolver.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
