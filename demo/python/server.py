"""Demo greeter server in Python: answers SayHello with its name and registers in etcd as "echo".

    server.py NAME [--ttl SECONDS]

Prints JSON lines for the demo driver: {"event": "ready", ...} once registered, and
{"event": "stopped"} after SIGTERM, which deregisters first so that no client RPC fails.
"""

import argparse
import json
import signal
import sys
import threading
from concurrent import futures

import grpc

import gnaming
import gnaming.grpc
import helloworld_pb2
import helloworld_pb2_grpc


def say(event: str, **fields) -> None:
    print(json.dumps({"event": event, **fields}), flush=True)


class Greeter(helloworld_pb2_grpc.GreeterServicer):
    def __init__(self, name: str) -> None:
        self.name = name

    def SayHello(self, request, context):
        return helloworld_pb2.HelloReply(message=self.name)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("name")
    parser.add_argument("--ttl", type=float, default=2.0)
    args = parser.parse_args()

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
    helloworld_pb2_grpc.add_GreeterServicer_to_server(Greeter(args.name), server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    address = f"127.0.0.1:{port}"
    registration = gnaming.Registration("echo", address, ttl=args.ttl)
    registration.wait(10)
    say("ready", name=args.name, addr=address, lang="python")
    # Wake up now and then: a process-wide signal may land on a grpc or library thread, and Python
    # runs handlers only when the main thread runs.
    while not stop.wait(0.1):
        pass
    gnaming.grpc.stop_server(server, [registration], drain=0.5, grace=5)
    say("stopped", name=args.name)
    return 0


if __name__ == "__main__":
    sys.exit(main())
