#!/usr/bin/env bash
# Runs the example end to end: two servers register in etcd as "echo" with weights 2 and 1, the
# client spreads 30 RPCs over them by weight (about 20:10), then the servers deregister and stop. etcd endpoints come
# from GNAMING_TEST_ETCD_ENDPOINTS (set by tests/harness/etcd_cluster.py run), else 127.0.0.1:2379.
set -euo pipefail
cd "$(dirname "$0")"
etcd=${GNAMING_TEST_ETCD_ENDPOINTS:-127.0.0.1:2379}
work=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

${GO:-go} build -o "$work/" ./server ./client
for weight in 2 1; do
  "$work/server" -etcd "$etcd" -weight "$weight" 2>"$work/server-$weight.log" &
  pids+=($!)
done
for _ in $(seq 100); do
  [ "$(cat "$work"/server-*.log | grep -c 'registered as echo')" -eq 2 ] && break
  sleep 0.1
done
cat "$work"/server-*.log

"$work/client" -etcd "$etcd" -n 30

for pid in "${pids[@]}"; do kill -TERM "$pid"; done
for pid in "${pids[@]}"; do wait "$pid"; done
pids=()
cat "$work"/server-*.log | grep 'deregistered'
