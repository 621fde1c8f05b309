"""Calls every "echo" server registered in etcd, round robin, following servers as they come and go.

    GNAMING_ETCD_ENDPOINTS=127.0.0.1:2379 python3 echo_client.py [TARGET] [COUNT]

TARGET defaults to etcd:///echo; any libgnaming target works (pass:///127.0.0.1:50051,...). The
channel is grpcio's own, on the target's xds:/// form, fed by this process's libgnaming xDS server.
"""

import sys
import time

import gnaming.grpc

target = sys.argv[1] if len(sys.argv) > 1 else "etcd:///echo"
count = int(sys.argv[2]) if len(sys.argv) > 2 else 10

with gnaming.grpc.channel(target) as channel:
    echo = channel.unary_unary("/demo.Echo/Echo")
    for i in range(count):
        print(echo(f"hello {i}".encode(), timeout=10, wait_for_ready=True).decode(), flush=True)
        time.sleep(0.1)
