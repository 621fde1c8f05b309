#!/usr/bin/env python3
"""Real etcd clusters on loopback for the test suites: start, break, heal and tear down members.

Every member listens on 127.0.0.1 with ports picked by the kernel, keeps its data in a temporary
directory (on /dev/shm when there is one, so fsync-heavy tests stay fast) and is stopped by the PID
the harness recorded, never by name. Standard library only, so every language's suite can use it.

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
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.request

ETCD = os.environ.get("GNAMING_TEST_ETCD_BIN", "etcd")
HEALTH_TIMEOUT_S = 30.0
STATE_FILE = "cluster.json"


def _free_ports(n):
    """Ports the kernel considers free right now; held open together so they differ."""
    socks = []
    try:
        for _ in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def _temp_root():
    shm = "/dev/shm"
    if os.path.isdir(shm) and os.access(shm, os.W_OK):
        return shm
    return None


def _pid_is_member(pid, data_dir):
    """True when `pid` is still the etcd started on `data_dir` (PIDs get reused)."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            args = f.read().split(b"\0")
    except OSError:
        return False
    return data_dir.encode() in args


def _pid_state(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0]
    except OSError:
        return None


class EtcdCluster:
    """A cluster of etcd members on loopback. State is kept in `dir`/cluster.json so separate
    CLI invocations can act on the same cluster."""

    def __init__(self, members=3, dir=None, tls_dir=None):
        self.members = members
        self.tls_dir = os.path.abspath(tls_dir) if tls_dir else None
        self._own_dir = dir is None
        self.dir = os.path.abspath(dir) if dir else tempfile.mkdtemp(prefix="gnaming-etcd-", dir=_temp_root())
        self.state = None
        self._procs = {}

    # ---- lifecycle -------------------------------------------------------------------------

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.stop()
        return False

    @classmethod
    def load(cls, dir):
        c = cls(dir=dir)
        with open(os.path.join(c.dir, STATE_FILE)) as f:
            c.state = json.load(f)
        c.members = len(c.state["members"])
        c.tls_dir = c.state.get("tls_dir")
        c._own_dir = c.state.get("own_dir", False)
        return c

    def _save(self):
        tmp = os.path.join(self.dir, STATE_FILE + ".tmp")
        with open(tmp, "w") as f:
            json.dump(self.state, f, indent=2)
        os.replace(tmp, os.path.join(self.dir, STATE_FILE))

    def start(self):
        os.makedirs(self.dir, exist_ok=True)
        # A port picked free can be taken before etcd binds it; try a few fresh sets.
        last_error = None
        for _ in range(3):
            self._plan()
            try:
                for i in range(self.members):
                    self._spawn(i)
                self._wait_healthy(range(self.members))
                return self
            except Exception as e:
                last_error = e
                self._kill_all()
                for m in self.state["members"]:
                    shutil.rmtree(m["data_dir"], ignore_errors=True)
        raise RuntimeError(f"etcd cluster did not start: {last_error}")

    def _plan(self):
        ports = _free_ports(2 * self.members)
        scheme = "https" if self.tls_dir else "http"
        members = []
        for i in range(self.members):
            members.append({
                "name": f"m{i}",
                "client_url": f"{scheme}://127.0.0.1:{ports[2 * i]}",
                "peer_url": f"http://127.0.0.1:{ports[2 * i + 1]}",
                "data_dir": os.path.join(self.dir, f"m{i}.data"),
                "log": os.path.join(self.dir, f"m{i}.log"),
                "pid": None,
            })
        self.state = {
            "members": members,
            "token": f"gnaming-{os.getpid()}-{ports[0]}",
            "tls_dir": self.tls_dir,
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
        return cmd

    def _spawn(self, i):
        m = self.state["members"][i]
        with open(m["log"], "ab") as log:
            # Own session: members outlive a CLI `start` and do not get the terminal's signals.
            p = subprocess.Popen(self._command(m), stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                 start_new_session=True)
        m["pid"] = p.pid
        self._procs[p.pid] = p
        self._save()

    def _reload(self):
        """Other CLI invocations may have restarted members: the file has the current PIDs."""
        try:
            with open(os.path.join(self.dir, STATE_FILE)) as f:
                self.state = json.load(f)
        except FileNotFoundError:
            pass

    def _alive(self, i):
        m = self.state["members"][i]
        p = self._procs.get(m["pid"])
        if p is not None:
            # Right after fork /proc still shows the harness's command line, so ask the child.
            return p.poll() is None
        return m["pid"] is not None and _pid_is_member(m["pid"], m["data_dir"]) and _pid_state(m["pid"]) not in (None, "Z")

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

    def _wait_healthy(self, indexes):
        indexes = list(indexes)
        deadline = time.monotonic() + HEALTH_TIMEOUT_S
        while time.monotonic() < deadline:
            for i in indexes:
                if not self._alive(i):
                    raise RuntimeError(f"member {i} exited; see {self.state['members'][i]['log']}")
            if all(self._healthy(i) for i in indexes):
                return
            time.sleep(0.05)
        raise RuntimeError(f"members {indexes} not healthy after {HEALTH_TIMEOUT_S}s")

    def _kill(self, i):
        m = self.state["members"][i]
        pid = m["pid"]
        p = self._procs.pop(pid, None)
        if p is not None:
            p.kill()
            p.wait(timeout=10)
        elif pid is not None and _pid_is_member(pid, m["data_dir"]):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            # Not our child: wait until it is gone or a zombie for its own parent to reap.
            deadline = time.monotonic() + 10
            while _pid_is_member(pid, m["data_dir"]) and time.monotonic() < deadline:
                time.sleep(0.01)
        m["pid"] = None
        self._save()

    def _kill_all(self):
        if self.state:
            for i in range(len(self.state["members"])):
                self._kill(i)

    def stop(self):
        """Kills every member and removes the cluster's directory if the harness created it."""
        self._reload()
        self._kill_all()
        if self._own_dir:
            shutil.rmtree(self.dir, ignore_errors=True)
        else:
            for m in (self.state or {}).get("members", []):
                shutil.rmtree(m["data_dir"], ignore_errors=True)

    # ---- breaking and healing ----------------------------------------------------------------

    @property
    def endpoints(self):
        return ",".join(m["client_url"].split("://", 1)[1] if not self.tls_dir else m["client_url"]
                        for m in self.state["members"])

    def signal(self, i, sig):
        self._reload()
        m = self.state["members"][i]
        if not self._alive(i):
            raise RuntimeError(f"member {i} is not running")
        os.kill(m["pid"], getattr(signal, "SIG" + sig.upper().removeprefix("SIG")))
        if sig.upper().removeprefix("SIG") == "KILL":
            self._kill(i)

    def restart(self, i, wait=True):
        self._reload()
        self._kill(i)
        self._spawn(i)
        if wait:
            self._wait_healthy([i])

    def stop_all(self):
        self._reload()
        self._kill_all()

    def start_all(self, wait=True):
        self._reload()
        for i in range(self.members):
            if not self._alive(i):
                self._spawn(i)
        if wait:
            self._wait_healthy(range(self.members))

    def _gateway(self, path, body):
        """Calls etcd's JSON gateway on the first healthy member."""
        last = None
        for i, m in enumerate(self.state["members"]):
            if not self._alive(i) or _pid_state(m["pid"]) == "T":
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


def _watch_parent(dir, pid):
    """Runs in a detached child: stops the cluster once `pid` has exited or the cluster is gone."""
    if os.fork() != 0:
        return
    os.setsid()
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(devnull, fd)
    state = os.path.join(dir, STATE_FILE)
    try:
        while os.path.exists(state):
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                EtcdCluster.load(dir).stop()
                break
            time.sleep(0.5)
    finally:
        os._exit(0)


def _run(args):
    cluster = EtcdCluster(members=args.members, tls_dir=args.tls_dir)

    def terminate(signum, _frame):
        raise KeyboardInterrupt(signum)

    signal.signal(signal.SIGTERM, terminate)
    child = None
    code = 1
    try:
        cluster.start()
        env = dict(os.environ, GNAMING_TEST_ETCD_ENDPOINTS=cluster.endpoints, GNAMING_TEST_ETCD_DIR=cluster.dir)
        child = subprocess.Popen(args.cmd, env=env)
        code = child.wait()
    except KeyboardInterrupt:
        if child and child.poll() is None:
            child.terminate()
            try:
                child.wait(timeout=10)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()
        code = 130
    finally:
        cluster.stop()
    return code


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
    for name in ("stop", "compact", "endpoints", "stop-all", "start-all"):
        sub.add_parser(name).add_argument("--dir", required=True)
    sig = sub.add_parser("signal")
    sig.add_argument("--dir", required=True)
    sig.add_argument("--member", type=int, required=True)
    sig.add_argument("--signal", required=True, choices=["KILL", "STOP", "CONT", "TERM"])
    rst = sub.add_parser("restart")
    rst.add_argument("--dir", required=True)
    rst.add_argument("--member", type=int, required=True)
    args = p.parse_args(argv)

    if args.command == "run":
        if args.cmd and args.cmd[0] == "--":
            args.cmd = args.cmd[1:]
        if not args.cmd:
            p.error("run needs a command after --")
        return _run(args)
    if args.command == "start":
        if os.path.exists(os.path.join(args.dir, STATE_FILE)):
            p.error(f"{args.dir} already holds a cluster; stop it first")
        c = EtcdCluster(members=args.members, dir=args.dir, tls_dir=args.tls_dir)
        c.start()
        if args.watch_pid:
            _watch_parent(c.dir, args.watch_pid)
        print(c.endpoints, flush=True)
        return 0
    c = EtcdCluster.load(args.dir)
    if args.command == "stop":
        c.stop()
        try:
            os.remove(os.path.join(c.dir, STATE_FILE))
        except FileNotFoundError:
            pass
    elif args.command == "endpoints":
        print(c.endpoints)
    elif args.command == "compact":
        print(c.compact())
    elif args.command == "signal":
        c.signal(args.member, args.signal)
    elif args.command == "restart":
        c.restart(args.member)
    elif args.command == "stop-all":
        c.stop_all()
    elif args.command == "start-all":
        c.start_all()
    return 0


if __name__ == "__main__":
    sys.exit(main())
