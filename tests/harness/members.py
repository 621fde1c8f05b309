"""What the real-server harnesses share: member processes on loopback started, watched and killed by PID.

A cluster's state lives in DIR/cluster.json (ports, data directories, PIDs), so separate CLI
invocations act on the same cluster. Each member listens on 127.0.0.1 with ports picked by the
kernel and keeps its data in a temporary directory (on /dev/shm when there is one, so fsync-heavy
tests stay fast). A member is only ever killed by the PID the harness recorded, after checking that
the PID still runs that member's command line (PIDs get reused), never by name. Standard library
only, so every language's suite can use it.

A harness subclasses Cluster with `_plan` (ports and paths into self.state), `_command(m)`,
`_healthy(i)` and `endpoints`, and gets the lifecycle, the breaking and healing, `watch_parent`
(stop the cluster when a process ends) and `run` (a command inside a fresh cluster).
"""

import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time

STATE_FILE = "cluster.json"


def free_ports(n):
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


def temp_root():
    shm = "/dev/shm"
    if os.path.isdir(shm) and os.access(shm, os.W_OK):
        return shm
    return None


def pid_runs(pid, marker):
    """True when `pid` still runs a command line with the argument `marker` (PIDs get reused)."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            args = f.read().split(b"\0")
    except OSError:
        return False
    return marker.encode() in args


def pid_state(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0]
    except OSError:
        return None


class Cluster:
    """Members on loopback; subclasses say how to plan, start and probe one."""

    KIND = "cluster"
    PREFIX = "gnaming-cluster-"
    HEALTH_TIMEOUT_S = 30.0

    def __init__(self, members=3, dir=None):
        self.members = members
        self._own_dir = dir is None
        self.dir = os.path.abspath(dir) if dir else tempfile.mkdtemp(prefix=self.PREFIX, dir=temp_root())
        self.state = None
        self._procs = {}

    # ---- what a subclass provides -------------------------------------------------------------

    def _plan(self):
        """Fills self.state: {"members": [{"data_dir", "log", "pid", ...}], "own_dir", ...} and saves it."""
        raise NotImplementedError

    def _command(self, m):
        raise NotImplementedError

    def _healthy(self, i):
        raise NotImplementedError

    def _marker(self, m):
        """An argument of the member's command line that no other process has."""
        return m["data_dir"]

    def _prepare(self, m):
        """Runs before each start of a member (files its command reads)."""

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
        c._own_dir = c.state.get("own_dir", False)
        c._loaded()
        return c

    def _loaded(self):
        """Reads a subclass's own settings back from self.state."""

    def _save(self):
        tmp = os.path.join(self.dir, STATE_FILE + ".tmp")
        with open(tmp, "w") as f:
            json.dump(self.state, f, indent=2)
        os.replace(tmp, os.path.join(self.dir, STATE_FILE))

    def start(self):
        os.makedirs(self.dir, exist_ok=True)
        # A port picked free can be taken before a member binds it; try a few fresh sets.
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
        raise RuntimeError(f"{self.KIND} did not start: {last_error}")

    def _spawn(self, i):
        m = self.state["members"][i]
        self._prepare(m)
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
        return m["pid"] is not None and pid_runs(m["pid"], self._marker(m)) and pid_state(m["pid"]) not in (None, "Z")

    def _wait_healthy(self, indexes):
        indexes = list(indexes)
        deadline = time.monotonic() + self.HEALTH_TIMEOUT_S
        while time.monotonic() < deadline:
            for i in indexes:
                if not self._alive(i):
                    raise RuntimeError(f"member {i} exited; see {self.state['members'][i]['log']}")
            if all(self._healthy(i) for i in indexes):
                return
            time.sleep(0.05)
        raise RuntimeError(f"members {indexes} not healthy after {self.HEALTH_TIMEOUT_S}s")

    def _kill(self, i):
        m = self.state["members"][i]
        pid = m["pid"]
        p = self._procs.pop(pid, None)
        if p is not None:
            p.kill()
            p.wait(timeout=10)
        elif pid is not None and pid_runs(pid, self._marker(m)):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            # Not our child: wait until it is gone or a zombie for its own parent to reap.
            deadline = time.monotonic() + 10
            while pid_runs(pid, self._marker(m)) and time.monotonic() < deadline:
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


def watch_parent(cls, dir, pid):
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
                cls.load(dir).stop()
                break
            time.sleep(0.5)
    finally:
        os._exit(0)


def run(cluster, cmd, env_for):
    """Starts `cluster`, runs `cmd` with the environment `env_for(cluster)` adds, tears the cluster down
    (also on failure, SIGINT and SIGTERM) and returns the command's status."""

    def terminate(signum, _frame):
        raise KeyboardInterrupt(signum)

    signal.signal(signal.SIGTERM, terminate)
    child = None
    code = 1
    try:
        cluster.start()
        child = subprocess.Popen(cmd, env=dict(os.environ, **env_for(cluster)))
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


# ---- the command line every harness shares -------------------------------------------------------

def add_member_commands(sub, flag, names=()):
    """Adds the commands that act on a running cluster found by --dir: stop, stop-all, start-all,
    signal and restart (the member picked with --FLAG), and `names`, which take --dir only."""
    for name in ("stop", "stop-all", "start-all", *names):
        sub.add_parser(name).add_argument("--dir", required=True)
    sig = sub.add_parser("signal")
    sig.add_argument("--dir", required=True)
    sig.add_argument(f"--{flag}", type=int, required=True)
    sig.add_argument("--signal", required=True, choices=["KILL", "STOP", "CONT", "TERM"])
    rst = sub.add_parser("restart")
    rst.add_argument("--dir", required=True)
    rst.add_argument(f"--{flag}", type=int, required=True)


def member_command(cluster, args, flag):
    """Runs a command add_member_commands added on the loaded `cluster`; False for any other command."""
    if args.command == "stop":
        cluster.stop()
        try:
            os.remove(os.path.join(cluster.dir, STATE_FILE))
        except FileNotFoundError:
            pass
    elif args.command == "signal":
        cluster.signal(getattr(args, flag), args.signal)
    elif args.command == "restart":
        cluster.restart(getattr(args, flag))
    elif args.command == "stop-all":
        cluster.stop_all()
    elif args.command == "start-all":
        cluster.start_all()
    else:
        return False
    return True


def run_command(parser, args, cluster, env_for):
    """`run -- CMD ARGS...`: CMD inside `cluster` (see run)."""
    cmd = args.cmd[1:] if args.cmd and args.cmd[0] == "--" else args.cmd
    if not cmd:
        parser.error("run needs a command after --")
    return run(cluster, cmd, env_for)


def start_command(parser, cluster, watch_pid):
    """`start --dir DIR [--watch-pid PID]`: starts `cluster` there and prints its endpoints."""
    if os.path.exists(os.path.join(cluster.dir, STATE_FILE)):
        parser.error(f"{cluster.dir} already holds a cluster; stop it first")
    cluster.start()
    if watch_pid:
        watch_parent(type(cluster), cluster.dir, watch_pid)
    print(cluster.endpoints, flush=True)
    return 0
