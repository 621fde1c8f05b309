"""An echo server that announces itself in etcd under "echo" while it runs.

    GNAMING_ETCD_ENDPOINTS=127.0.0.1:2379 python3 echo_server.py [PORT]

Stops on SIGTERM or Ctrl-C: deregisters first, so clients move away before the server goes.
"""

import signal
import sys
from concurrent import futures

import grpc

import gnaming
import gnaming.grpc

port_arg = int(sys.argv[1]) if len(sys.argv) > 1 else 0
server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
port = server.add_insecure_port(f"127.0.0.1:{port_arg}")
address = f"127.0.0.1:{port}"


def echo(request: bytes, context: grpc.ServicerContext) -> bytes:
    return f"{address} says: ".encode() + request


server.add_generic_rpc_handlers([grpc.method_handlers_generic_handler(
    "demo.Echo", {"Echo": grpc.unary_unary_rpc_method_handler(echo)})])
server.start()
registration = gnaming.Registration("echo", address, ttl=5)
registration.wait(10)
print(f"serving echo on {address}", flush=True)

signal.signal(signal.SIGTERM, lambda *_: gnaming.grpc.stop_server(server, [registration], drain=0.5))
try:
    server.wait_for_termination()
except KeyboardInterrupt:
    gnaming.grpc.stop_server(server, [registration], drain=0.5)
