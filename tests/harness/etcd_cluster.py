#!/usr/bin/env python3
"""Real etcd clusters on loopback for the test suites: start, break, heal and tear down members.

Every member listens on 127.0.0.1 with ports picked by the kernel, keeps its data in a temporary
directory (on /dev/shm when there is one, so fsync-heavy tests stay fast) and is stopped by the PID
the harness recorded, never by name (members.py, shared with the ZooKeeper harness). Standard library
only, so every language's suite can use it.

CLI (members are numbered from 0, in the order of the endpoints list):
  etcd_cluster.py run [--members 3] [--tls-dir D] -- CMD ARGS...
      start a cluster, run CMD with GNAMING_TEST_ETCD_ENDPOINTS and GNAMING_TEST_ETCD_DIR set,
      tear the cluster down (also on failure, SIGINT and SIGTERM) and exit with CMD's status
  etcd_cluster.py start --dir DIR [--members 3] [--tls-dir D] [--watch-pid PID]
      start a cluster whose state lives in DIR (DIR/cluster.json) and print its endpoints;
      with --watch-pid the cluster is stopped when that process ends
  etcd_cluster.py stop --dir DIR
  etcd_cluster.py signal --dir DIR --member I --signal KILL|STOP|CONT|TERM
  etcd_cluster.py restart --dir DIR --member I     (kill if running, start again on the same ports)
  etcd_cluster.py stop-all --dir DIR / start-all --dir DIR   (keep data and ports)
  etcd_cluster.py compact --dir DIR                (compact to the current revision)
  etcd_cluster.py snapshot --dir DIR --file F      (etcdctl snapshot save F from a healthy member)
  etcd_cluster.py restore --dir DIR --file F       (stop every member, replace each one's data with
      `etcdctl snapshot restore F` under the same names, peer URLs and token, start them again on
      the same ports: the cluster is back at the snapshot's revision, as after a restore from backup)
  etcd_cluster.py endpoints --dir DIR

TLS: --tls-dir D must hold ca.pem, server.pem and server-key.pem; clients then connect with
https:// and must present a certificate signed by ca.pem. The endpoints list carries the scheme.

Module:
  with EtcdCluster(members=3) as c:
      c.endpoints; c.signal(0, "STOP"); c.restart(0); c.compact(); c.stop_all(); c.start_all()
"""

import argparse
import base64
import json
import os
import shutil
import ssl
import subprocess
import sys
import urllib.request

# Loaded by path from other suites too (spec_from_file_location): the shared part lies next to it.
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import members as base  # noqa: E402
from members import pid_state  # noqa: E402

ETCD = os.environ.get("GNAMING_TEST_ETCD_BIN", "etcd")
ETCDCTL = os.environ.get("GNAMING_TEST_ETCDCTL_BIN", "etcdctl")


class EtcdCluster(base.Cluster):
    """A cluster of etcd members on loopback. State is kept in `dir`/cluster.json so separate
    CLI invocations can act on the same cluster."""

    KIND = "etcd cluster"
    PREFIX = "gnaming-etcd-"

    def __init__(self, members=3, dir=None, tls_dir=None, netns=None):
        super().__init__(members=members, dir=dir)
        self.tls_dir = os.path.abspath(tls_dir) if tls_dir else None
        # [(namespace, address)] per member: each member runs in a network namespace the caller made
        # (tests/chaos/netns.py), on that address with etcd's own ports, and is reached from a
        # namespace that routes to it.
        self.netns = netns

    def _loaded(self):
        self.tls_dir = self.state.get("tls_dir")
        self.netns = self.state.get("netns")

    def _plan(self):
        ports = base.free_ports(2 * self.members)
        scheme = "https" if self.tls_dir else "http"
        planned = []
        for i in range(self.members):
            if self.netns:
                host, client_port, peer_port = self.netns[i][1], 2379, 2380
            else:
                host, client_port, peer_port = "127.0.0.1", ports[2 * i], ports[2 * i + 1]
            planned.append({
                "name": f"m{i}",
                "client_url": f"{scheme}://{host}:{client_port}",
                "peer_url": f"http://{host}:{peer_port}",
                "data_dir": os.path.join(self.dir, f"m{i}.data"),
                "log": os.path.join(self.dir, f"m{i}.log"),
                "pid": None,
            })
        self.state = {
            "members": planned,
            "token": f"gnaming-{os.getpid()}-{ports[0]}",
            "tls_dir": self.tls_dir,
            "netns": self.netns,
            "own_dir": self._own_dir,
        }
        self._save()

    def _command(self, m):
        initial = ",".join(f"{x['name']}={x['peer_url']}" for x in self.state["members"])
        cmd = [
            ETCD, "--name", m["name"], "--data-dir", m["data_dir"],
            "--listen-client-urls", m["client_url"], "--advertise-client-urls", m["client_url"],
            "--listen-peer-urls", m["peer_url"], "--initial-advertise-peer-urls", m["peer_url"],
            "--initial-cluster", initial, "--initial-cluster-state", "new",
            "--initial-cluster-token", self.state["token"],
            "--heartbeat-interval", "100", "--election-timeout", "1000",
            "--logger", "zap", "--log-level", "warn",
        ]
        if self.tls_dir:
            cmd += [
                "--cert-file", os.path.join(self.tls_dir, "server.pem"),
                "--key-file", os.path.join(self.tls_dir, "server-key.pem"),
                "--trusted-ca-file", os.path.join(self.tls_dir, "ca.pem"),
                "--client-cert-auth",
            ]
        if self.netns:
            # `ip netns exec` enters the namespace and execs etcd: the PID recorded is etcd's.
            cmd = ["ip", "netns", "exec", self.netns[int(m["name"][1:])][0], *cmd]
        return cmd

    def _ssl_context(self):
        if not self.tls_dir:
            return None
        ctx = ssl.create_default_context(cafile=os.path.join(self.tls_dir, "ca.pem"))
        client = os.path.join(self.tls_dir, "client.pem")
        if os.path.exists(client):
            ctx.load_cert_chain(client, os.path.join(self.tls_dir, "client-key.pem"))
        return ctx

    def _healthy(self, i):
        m = self.state["members"][i]
        try:
            with urllib.request.urlopen(m["client_url"] + "/health", timeout=1, context=self._ssl_context()) as r:
                return json.load(r).get("health") == "true"
        except Exception:
            return False

    @property
    def endpoints(self):
        return ",".join(m["client_url"].split("://", 1)[1] if not self.tls_dir else m["client_url"]
                        for m in self.state["members"])

    def _gateway(self, path, body):
        """Calls etcd's JSON gateway on the first healthy member."""
        last = None
        for i, m in enumerate(self.state["members"]):
            if not self._alive(i) or pid_state(m["pid"]) == "T":
                continue
            req = urllib.request.Request(m["client_url"] + path, data=json.dumps(body).encode(),
                                         headers={"Content-Type": "application/json"})
            try:
                with urllib.request.urlopen(req, timeout=5, context=self._ssl_context()) as r:
                    return json.load(r)
            except Exception as e:
                last = e
        raise RuntimeError(f"no member answered {path}: {last}")

    def revision(self):
        self._reload()
        key = base64.b64encode(b"\0").decode()
        r = self._gateway("/v3/kv/range", {"key": key, "keys_only": True, "limit": 1})
        return int(r["header"]["revision"])

    def compact(self):
        """Compacts the history up to the current revision; returns that revision."""
        rev = self.revision()
        self._gateway("/v3/kv/compaction", {"revision": rev, "physical": True})
        return rev

    def _etcdctl(self, *args):
        env = dict(os.environ, ETCDCTL_API="3")
        out = subprocess.run([ETCDCTL, *args], env=env, capture_output=True, text=True, timeout=60)
        if out.returncode != 0:
            raise RuntimeError(f"etcdctl {' '.join(args)}: {out.stderr.strip()}")
        return out.stdout

    def snapshot(self, path):
        """Saves a snapshot of the data from the first healthy member into `path`."""
        self._reload()
        if self.tls_dir:
            raise RuntimeError("snapshots of TLS clusters are not supported by the harness")
        for i, m in enumerate(self.state["members"]):
            if self._alive(i) and pid_state(m["pid"]) != "T" and self._healthy(i):
                self._etcdctl("--endpoints", m["client_url"], "snapshot", "save", path)
                return
        raise RuntimeError("no healthy member to take a snapshot from")

    def restore(self, path):
        """Stops every member and restarts the cluster from the snapshot at `path`, on the same ports."""
        self._reload()
        self._kill_all()
        initial = ",".join(f"{x['name']}={x['peer_url']}" for x in self.state["members"])
        for m in self.state["members"]:
            shutil.rmtree(m["data_dir"], ignore_errors=True)
            self._etcdctl("snapshot", "restore", path, "--name", m["name"], "--data-dir", m["data_dir"],
                          "--initial-cluster", initial, "--initial-cluster-token", self.state["token"],
                          "--initial-advertise-peer-urls", m["peer_url"])
        self.start_all()


def main(argv=None):
    p = argparse.ArgumentParser(description="Real etcd clusters on loopback for tests.")
    sub = p.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run")
    run.add_argument("--members", type=int, default=3)
    run.add_argument("--tls-dir")
    run.add_argument("cmd", nargs=argparse.REMAINDER)
    start = sub.add_parser("start")
    start.add_argument("--dir", required=True)
    start.add_argument("--members", type=int, default=3)
    start.add_argument("--tls-dir")
    start.add_argument("--watch-pid", type=int)
    base.add_member_commands(sub, "member", ("compact", "endpoints"))
    for name in ("snapshot", "restore"):
        snap = sub.add_parser(name)
        snap.add_argument("--dir", required=True)
        snap.add_argument("--file", required=True)
    args = p.parse_args(argv)

    if args.command == "run":
        cluster = EtcdCluster(members=args.members, tls_dir=args.tls_dir)
        return base.run_command(p, args, cluster, lambda c: {
            "GNAMING_TEST_ETCD_ENDPOINTS": c.endpoints, "GNAMING_TEST_ETCD_DIR": c.dir})
    if args.command == "start":
        return base.start_command(p, EtcdCluster(members=args.members, dir=args.dir, tls_dir=args.tls_dir),
                                  args.watch_pid)
    c = EtcdCluster.load(args.dir)
    if base.member_command(c, args, "member"):
        return 0
    if args.command == "endpoints":
        print(c.endpoints)
    elif args.command == "compact":
        print(c.compact())
    elif args.command == "snapshot":
        c.snapshot(os.path.abspath(args.file))
    elif args.command == "restore":
        c.restore(os.path.abspath(args.file))
    return 0


if __name__ == "__main__":
    sys.exit(main())
