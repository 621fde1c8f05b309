#!/usr/bin/env python3
"""Real ZooKeeper ensembles on loopback for the test suites: start, break, heal and tear down servers.

Each server is Debian's ZooKeeper started with `java` directly (the packaged zkServer.sh mishandles
--config), from a zoo.cfg of its own: client port on 127.0.0.1 picked by the kernel, quorum and
election ports on loopback, the AdminServer off, data in a temporary directory. Servers are stopped
by the PID the harness recorded (members.py, shared with the etcd harness). Standard library only.

CLI (servers are numbered from 0, in the order of the servers list):
  zk_ensemble.py run [--servers 3] -- CMD ARGS...
      start an ensemble, run CMD with GNAMING_TEST_ZK_SERVERS (host:port,...) and GNAMING_TEST_ZK_DIR
      set, tear the ensemble down (also on failure, SIGINT and SIGTERM) and exit with CMD's status
  zk_ensemble.py start --dir DIR [--servers 3] [--watch-pid PID]
      start an ensemble whose state lives in DIR (DIR/cluster.json) and print its servers;
      with --watch-pid the ensemble is stopped when that process ends
  zk_ensemble.py stop --dir DIR
  zk_ensemble.py signal --dir DIR --server I --signal KILL|STOP|CONT|TERM
  zk_ensemble.py restart --dir DIR --server I     (kill if running, start again on the same ports)
  zk_ensemble.py stop-all --dir DIR / start-all --dir DIR   (keep data and ports)
  zk_ensemble.py leader --dir DIR                 (the index of the server that leads now)
  zk_ensemble.py servers --dir DIR

Module:
  with ZkEnsemble(servers=3) as z:
      z.servers; z.leader(); z.signal(z.leader(), "KILL"); z.restart(0); z.stop_all(); z.start_all()
"""

import argparse
import os
import socket
import sys

# Loaded by path from other suites too (spec_from_file_location): the shared part lies next to it.
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import members as base  # noqa: E402

JAVA = os.environ.get("GNAMING_TEST_JAVA_BIN", "java")
ZOOKEEPER_JAR = os.environ.get("GNAMING_TEST_ZOOKEEPER_JAR", "/usr/share/java/zookeeper.jar")
# A short tick keeps elections and session timeouts (2 to 20 ticks) in the seconds tests can wait.
TICK_MS = 500
# Three JVMs share two cores with other suites: a small heap, the quick JIT tier, the serial GC.
JVM_FLAGS = ["-Xms32m", "-Xmx160m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1", "-Xss512k"]

# Warnings and errors to the server's log file (slf4j-simple writes to stderr); without a binding on
# the class path ZooKeeper logs nothing at all.
SLF4J_SIMPLE_JAR = "/usr/share/java/slf4j-simple.jar"
LOG_FLAGS = ["-Dorg.slf4j.simpleLogger.defaultLogLevel=warn", "-Dorg.slf4j.simpleLogger.showDateTime=true"]


class ZkEnsemble(base.Cluster):
    """A ZooKeeper ensemble on loopback (one server: standalone)."""

    KIND = "ZooKeeper ensemble"
    PREFIX = "gnaming-zk-"
    HEALTH_TIMEOUT_S = 60.0

    def __init__(self, servers=3, dir=None):
        super().__init__(members=servers, dir=dir)

    def _plan(self):
        ports = base.free_ports(3 * self.members)
        planned = []
        for i in range(self.members):
            home = os.path.join(self.dir, f"z{i}")
            planned.append({
                "name": f"z{i}",
                "client_port": ports[3 * i],
                "quorum_port": ports[3 * i + 1],
                "election_port": ports[3 * i + 2],
                "conf_dir": home,
                "config": os.path.join(home, "zoo.cfg"),
                "data_dir": os.path.join(home, "data"),
                "log": os.path.join(self.dir, f"z{i}.log"),
                "pid": None,
            })
        self.state = {"members": planned, "own_dir": self._own_dir}
        self._save()

    def _marker(self, m):
        return m["config"]

    def _prepare(self, m):
        i = self.state["members"].index(m)
        os.makedirs(m["data_dir"], exist_ok=True)
        lines = [
            f"tickTime={TICK_MS}",
            "initLimit=20",
            "syncLimit=5",
            f"dataDir={m['data_dir']}",
            f"clientPort={m['client_port']}",
            "clientPortAddress=127.0.0.1",
            "admin.enableServer=false",
            "4lw.commands.whitelist=srvr,ruok",
            # Tests need no durability across machine crashes; fsync and 64 MB log preallocation cost.
            "forceSync=no",
            "preAllocSize=4096",
            "maxClientCnxns=0",
        ]
        if self.members > 1:
            lines.append("standaloneEnabled=false")
            for j, x in enumerate(self.state["members"]):
                lines.append(f"server.{j + 1}=127.0.0.1:{x['quorum_port']}:{x['election_port']}")
            with open(os.path.join(m["data_dir"], "myid"), "w") as f:
                f.write(f"{i + 1}\n")
        with open(m["config"], "w") as f:
            f.write("\n".join(lines) + "\n")

    def _command(self, m):
        return [JAVA, *JVM_FLAGS, "-Dzookeeper.admin.enableServer=false", *LOG_FLAGS,
                "-cp", f"{m['conf_dir']}:{ZOOKEEPER_JAR}:{SLF4J_SIMPLE_JAR}",
                "org.apache.zookeeper.server.quorum.QuorumPeerMain", m["config"]]

    def _srvr(self, i):
        """The server's answer to the `srvr` four-letter word, or "" when it gives none."""
        m = self.state["members"][i]
        try:
            with socket.create_connection(("127.0.0.1", m["client_port"]), timeout=1) as s:
                s.sendall(b"srvr")
                chunks = []
                while True:
                    data = s.recv(4096)
                    if not data:
                        break
                    chunks.append(data)
                return b"".join(chunks).decode(errors="replace")
        except OSError:
            return ""

    def _mode(self, i):
        for line in self._srvr(i).splitlines():
            if line.startswith("Mode: "):
                return line[len("Mode: "):].strip()
        return None

    def _healthy(self, i):
        # A server serves clients once it leads, follows, or runs alone.
        return self._mode(i) in ("leader", "follower", "standalone")

    @property
    def servers(self):
        return ",".join(f"127.0.0.1:{m['client_port']}" for m in self.state["members"])

    endpoints = servers

    def leader(self):
        self._reload()
        for i in range(self.members):
            if self._alive(i) and self._mode(i) in ("leader", "standalone"):
                return i
        raise RuntimeError("no server leads now")


def main(argv=None):
    p = argparse.ArgumentParser(description="Real ZooKeeper ensembles on loopback for tests.")
    sub = p.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run")
    run.add_argument("--servers", type=int, default=3)
    run.add_argument("cmd", nargs=argparse.REMAINDER)
    start = sub.add_parser("start")
    start.add_argument("--dir", required=True)
    start.add_argument("--servers", type=int, default=3)
    start.add_argument("--watch-pid", type=int)
    base.add_member_commands(sub, "server", ("servers", "leader"))
    args = p.parse_args(argv)

    if args.command == "run":
        return base.run_command(p, args, ZkEnsemble(servers=args.servers), lambda z: {
            "GNAMING_TEST_ZK_SERVERS": z.servers, "GNAMING_TEST_ZK_DIR": z.dir})
    if args.command == "start":
        return base.start_command(p, ZkEnsemble(servers=args.servers, dir=args.dir), args.watch_pid)
    z = ZkEnsemble.load(args.dir)
    if base.member_command(z, args, "server"):
        return 0
    if args.command == "servers":
        print(z.servers)
    elif args.command == "leader":
        print(z.leader())
    return 0


if __name__ == "__main__":
    sys.exit(main())
