#!/usr/bin/env python3
"""The libgnaming demo: greeter servers in C++, Go and Python register in a local 3-member etcd,
clients in all three languages call etcd:///echo with round robin, Java and Node clients call
xds:///echo through `gnaming xds-agent` with gRPC's own xDS clients, and a script changes the
world under them — a graceful stop, a kill -9, a new server, an etcd member killed and restarted —
while a live view shows each client's address list and who answered how often.

    python3 demo/run.py [--short] [--no-live]

The programs are found in the build tree that `make demo` fills (see mk/demo.mk). They speak the
classic greeter (examples/cpp/helloworld.proto); a reply's message is the answering server's name. Everything
started here is stopped at the end and on Ctrl-C. With --short (CI) the script runs faster, prints
no live view, and the exit code says whether the summary holds: every client reached every live
server, no RPC failed outside the window after the kill -9, every removal was seen by every client.
An xDS client shows no address list through public API: for Java and Node the view shows the servers
that answered in the last second, and a removal counts as seen at the client's last RPC to that server.
"""

import argparse
import importlib.util
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

ROOT = Path(__file__).resolve().parent.parent
BUILD = ROOT / "build" / "demo"
TTL = 2.0  # registration lease TTL, seconds: how long a killed server stays listed at most
AGENT = Path(os.environ.get("GNAMING_BIN", ROOT / "target" / "release" / "gnaming"))  # runs xds-agent

_spec = importlib.util.spec_from_file_location("etcd_cluster", ROOT / "tests" / "harness" / "etcd_cluster.py")
etcd_cluster = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(etcd_cluster)


def programs(lang: str, role: str) -> list[str]:
    """The command line of a demo program."""
    if lang == "c++":
        return [str(BUILD / "cpp" / f"demo_{role}")]
    if lang == "go":
        return [str(BUILD / "go" / role)]
    if lang == "java":
        return ["java", "-jar", str(ROOT / "demo" / "java" / "target" / "xds-echo-client.jar")]
    if lang == "node":
        return ["node", str(ROOT / "demo" / "node" / "client.js")]
    return [str(ROOT / "build" / "venv" / "bin" / "python"), str(ROOT / "demo" / "python" / f"{role}.py")]


def server_ttl_args(lang: str, role: str) -> list[str]:
    """The lease TTL option, in each program's own syntax (C++ takes it after the name)."""
    if role != "server" or lang == "c++":
        return []
    return ["--ttl", f"{TTL}s" if lang == "go" else str(TTL)]


@dataclass
class Proc:
    name: str
    lang: str
    role: str
    popen: subprocess.Popen
    addr: Optional[str] = None
    state: str = "starting"
    ready: threading.Event = field(default_factory=threading.Event)
    status: dict = field(default_factory=dict)
    failures: list = field(default_factory=list)  # epoch ms of every failed RPC


class Demo:
    def __init__(self, short: bool, live: bool) -> None:
        self.short = short
        self.live = live
        self.procs: dict[str, Proc] = {}
        self.events: list[tuple[float, str]] = []
        self.marks: dict[str, float] = {}  # event name -> epoch seconds
        self.removals: dict[str, dict[str, float]] = {}  # server -> client -> seconds until gone
        self.lock = threading.Lock()
        self.t0 = time.time()
        self.cluster = None
        self.cluster_state = "starting"
        self.agent: Optional[subprocess.Popen] = None
        self.agent_addr: Optional[str] = None
        self.env = dict(os.environ)
        (BUILD / "logs").mkdir(parents=True, exist_ok=True)

    # -- processes --

    def start(self, name: str, lang: str, role: str) -> Proc:
        args = programs(lang, role) + server_ttl_args(lang, role) + [name]
        env = dict(self.env)
        if lang == "python":
            env["PYTHONPATH"] = str(BUILD / "py")
        if lang in ("python", "c++"):
            # gnaming.grpc.channel and gnaming::CreateChannel serve grpc from the process's own xDS
            # server; the agent's bootstrap is for the stacks without libgnaming (Java, Node).
            env.pop("GRPC_XDS_BOOTSTRAP", None)
        if lang == "c++" and role == "server":
            args.append(str(int(TTL * 1000)))
        log = open(BUILD / "logs" / f"{name}.log", "w")
        popen = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=log, env=env, text=True,
                                 start_new_session=True)
        proc = Proc(name, lang, role, popen)
        with self.lock:
            self.procs[name] = proc
        threading.Thread(target=self._read, args=(proc,), daemon=True).start()
        return proc

    def _read(self, proc: Proc) -> None:
        for line in proc.popen.stdout:
            try:
                msg = json.loads(line)
            except ValueError:
                continue
            with self.lock:
                if msg.get("event") == "ready":
                    proc.addr = msg["addr"]
                    proc.state = "up"
                    proc.ready.set()
                elif msg.get("event") == "status":
                    proc.status = msg
                    proc.failures.extend(msg.get("failures") or [])
                    proc.state = "running"
                    self._note_removals(proc)
                elif msg.get("event") == "stopped":
                    proc.state = "stopped gracefully"

    def _note_removals(self, client: Proc) -> None:
        """Records when a stopped or killed server's address left this client's list (for an xDS
        client: when it last called that server after the removal, 0 if never)."""
        listed = self.seen_by(client)
        for server in self.procs.values():
            mark = self.marks.get(f"gone:{server.name}")
            if server.role != "server" or mark is None or server.name in listed:
                continue
            seen = self.removals.setdefault(server.name, {})
            if "last_answer" in client.status:
                last = client.status["last_answer"].get(server.name, 0) / 1000
                seen.setdefault(client.name, max(0.0, last - mark))
            else:
                seen.setdefault(client.name, time.time() - mark)

    def seen_by(self, client: Proc) -> set[str]:
        """The server names in a client's list: its resolver's addresses, or for an xDS client the
        servers that answered it in the last second."""
        if "answering" in client.status:
            return set(client.status["answering"])
        by_addr = self.names()
        return {by_addr.get(a, a) for a in client.status.get("addresses", [])}

    def event(self, text: str) -> None:
        with self.lock:
            self.events.append((time.time() - self.t0, text))
        if not self.live:
            print(f"[{time.time() - self.t0:5.1f}s] {text}", flush=True)

    def signal(self, name: str, sig: int) -> None:
        proc = self.procs[name]
        if proc.popen.poll() is None:
            proc.popen.send_signal(sig)

    def stop_all(self) -> None:
        popens = [p.popen for p in self.procs.values()] + ([self.agent] if self.agent else [])
        for popen in popens:
            if popen.poll() is None:
                popen.send_signal(signal.SIGTERM)
        deadline = time.time() + 10
        for popen in popens:
            try:
                popen.wait(max(0.1, deadline - time.time()))
            except subprocess.TimeoutExpired:
                popen.kill()
                popen.wait()
        if self.cluster is not None:
            self.cluster.__exit__(None, None, None)
            self.cluster = None

    # -- the live view --

    def names(self) -> dict[str, str]:
        return {p.addr: p.name for p in self.procs.values() if p.role == "server" and p.addr}

    def render(self) -> str:
        out = [f"libgnaming demo   t={time.time() - self.t0:5.1f}s   etcd: {self.cluster_state}", ""]
        out.append("servers: " + "  ".join(f"{p.name}({p.lang}) {p.state}" for p in self.procs.values()
                                           if p.role == "server"))
        out.append("")
        out.append(f"{'client':8} {'sees (resolver; xDS: answered in 1 s)':44} {'ok':>7} {'failed':>6}  answered by")
        for p in self.procs.values():
            if p.role != "client":
                continue
            st = p.status
            seen = " ".join(sorted(self.seen_by(p)))
            counts = " ".join(f"{k}:{v}" for k, v in sorted(st.get("counts", {}).items()))
            out.append(f"{p.name:8} {seen:44} {st.get('ok', 0):>7} {st.get('failed', 0):>6}  {counts}")
        out.append("")
        out.append("events:")
        out += [f"  {t:5.1f}s  {text}" for t, text in self.events[-10:]]
        return "\n".join(out)

    def show(self) -> None:
        if self.live:
            with self.lock:
                screen = self.render()
            sys.stdout.write("\x1b[H\x1b[2J" + screen + "\n")
            sys.stdout.flush()

    def wait(self, seconds: float) -> None:
        end = time.time() + seconds
        while time.time() < end:
            self.show()
            time.sleep(min(0.5, max(0.0, end - time.time())))

    def start_agent(self) -> None:
        """Starts `gnaming xds-agent` on the demo's etcd; Java and Node find it through its bootstrap file."""
        bootstrap = BUILD / "xds-bootstrap.json"
        log = open(BUILD / "logs" / "xds-agent.log", "w")
        self.agent = subprocess.Popen([str(AGENT), "xds-agent", "--listen", "127.0.0.1:0", "--bootstrap-out",
                                       str(bootstrap)], stdout=subprocess.PIPE, stderr=log, env=self.env,
                                      text=True, start_new_session=True)
        first: list[str] = []  # the agent's first line says it is ready
        reader = threading.Thread(target=lambda: first.append(self.agent.stdout.readline()), daemon=True)
        reader.start()
        reader.join(15)
        line = first[0] if first else ""
        if not line.startswith("xds-agent listening on "):
            raise RuntimeError(f"gnaming xds-agent did not start (see {BUILD / 'logs' / 'xds-agent.log'})")
        self.agent_addr = line.split()[3]
        self.env["GRPC_XDS_BOOTSTRAP"] = str(bootstrap)
        self.event(f"xds-agent on {self.agent_addr}, bootstrap in {bootstrap.name}")

    # -- the script --

    def run(self) -> int:
        scale = 0.6 if self.short else 1.0
        self.cluster = etcd_cluster.EtcdCluster(members=3)
        self.cluster.__enter__()
        self.env["GNAMING_ETCD_ENDPOINTS"] = self.cluster.endpoints
        self.cluster_state = "3 members up"
        self.event(f"etcd: 3 members on {self.cluster.endpoints}")

        for name, lang in [("cpp-1", "c++"), ("go-1", "go"), ("py-1", "python"), ("go-2", "go")]:
            self.start(name, lang, "server")
        for proc in list(self.procs.values()):
            if not proc.ready.wait(30):
                raise RuntimeError(f"server {proc.name} did not become ready (see {BUILD / 'logs'})")
        self.event("servers cpp-1, go-1, py-1, go-2 registered as 'echo'")
        self.start_agent()
        for name, lang in [("cpp", "c++"), ("go", "go"), ("py", "python"), ("java", "java"), ("node", "node")]:
            self.start(name, lang, "client")
        self.event("clients go calling etcd:///echo natively, cpp and py through grpc's xDS client and "
                   "their in-process server; java, node calling xds:///echo through the agent")
        self.wait_for_clients()
        self.wait(4 * scale)

        self.marks["gone:py-1"] = time.time()
        self.signal("py-1", signal.SIGTERM)
        self.event("py-1: graceful stop (deregisters first)")
        self.wait(4 * scale)

        self.marks["gone:go-2"] = self.marks["kill"] = time.time()
        self.signal("go-2", signal.SIGKILL)
        self.procs["go-2"].state = "killed -9"
        self.event(f"go-2: kill -9 (its lease expires within {TTL:.0f} s)")
        self.wait(max(5 * scale, TTL + 2))

        self.start("py-2", "python", "server")
        self.procs["py-2"].ready.wait(30)
        self.event("py-2: new server registered")
        self.wait(4 * scale)

        self.cluster.signal(0, "KILL")
        self.cluster_state = "member 0 killed"
        self.event("etcd member 0: kill -9")
        self.wait(4 * scale)
        self.cluster.restart(0)
        self.cluster_state = "3 members up (member 0 restarted)"
        self.event("etcd member 0: restarted")
        self.wait(4 * scale)

        self.event("stopping clients")
        for p in self.procs.values():
            if p.role == "client":
                p.popen.send_signal(signal.SIGTERM)
        for p in self.procs.values():
            if p.role == "client":
                p.popen.wait(10)
        time.sleep(0.2)
        self.show()
        return self.summary()

    def wait_for_clients(self, timeout: float = 30) -> None:
        """Waits until every client has answers from every server: a JVM takes a second or two to start."""
        servers = {p.name for p in self.procs.values() if p.role == "server"}
        deadline = time.time() + timeout
        while time.time() < deadline:
            with self.lock:
                waiting = [p.name for p in self.procs.values()
                           if p.role == "client" and not servers <= set(p.status.get("counts", {}))]
            if not waiting:
                return
            self.wait(0.2)
        raise RuntimeError(f"client(s) {', '.join(waiting)} did not reach every server in {timeout:.0f} s "
                           f"(see {BUILD / 'logs'})")

    def summary(self) -> int:
        live = [p for p in self.procs.values() if p.role == "server" and p.popen.poll() is None]
        clients = [p for p in self.procs.values() if p.role == "client"]
        servers = [p.name for p in self.procs.values() if p.role == "server"]
        print()
        print(f"{'client':8} {'RPCs':>7} {'failed':>6}  " + " ".join(f"{s:>7}" for s in servers))
        for c in clients:
            counts = c.status.get("counts", {})
            print(f"{c.name:8} {c.status.get('ok', 0) + c.status.get('failed', 0):>7} {c.status.get('failed', 0):>6}  "
                  + " ".join(f"{counts.get(s, 0):>7}" for s in servers))
        problems = []
        kill_window = (self.marks["kill"] * 1000, (self.marks["kill"] + TTL + 1.5) * 1000)
        for c in clients:
            counts = c.status.get("counts", {})
            if not c.status:
                problems.append(f"client {c.name} reported nothing (see {BUILD / 'logs' / (c.name + '.log')})")
                continue
            missing = [s.name for s in live if counts.get(s.name, 0) == 0]
            if missing:
                problems.append(f"client {c.name} never reached live server(s) {', '.join(missing)}")
            outside = [t for t in c.failures if not kill_window[0] <= t <= kill_window[1]]
            if outside:
                problems.append(f"client {c.name}: {len(outside)} RPC(s) failed outside the kill -9 window "
                                f"(last error: {c.status.get('last_error')})")
            seen = sorted(self.seen_by(c))
            if seen != sorted(s.name for s in live):
                problems.append(f"client {c.name} ended seeing {seen}, expected {sorted(s.name for s in live)}")
        for server, limit in (("py-1", 1.0), ("go-2", TTL + 1.5)):
            seen = self.removals.get(server, {})
            for c in clients:
                if c.name not in seen:
                    problems.append(f"client {c.name} never saw {server} removed")
                elif seen[c.name] > limit:
                    problems.append(f"client {c.name} saw {server} removed after {seen[c.name]:.1f} s (limit {limit:.1f} s)")
            if seen:
                print(f"{server} removed from every client's list within {max(seen.values()):.2f} s")
        total = sum(c.status.get("ok", 0) + c.status.get("failed", 0) for c in clients)
        failed = sum(c.status.get("failed", 0) for c in clients)
        print(f"{total} RPCs, {failed} failed" + (f", all within {TTL + 1.5:.1f} s of the kill -9" if failed else ""))
        if problems:
            print("\nthe demo's summary does not hold:")
            for p in problems:
                print(f"  - {p}")
            return 1
        print("every client reached every live server; no RPC failed during graceful changes")
        return 0


def listening(addr: str) -> bool:
    host, port = addr.rsplit(":", 1)
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex((host, int(port))) == 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--short", action="store_true", help="faster script, no live view, for CI")
    parser.add_argument("--no-live", action="store_true", help="print events instead of a live view")
    args = parser.parse_args()
    live = sys.stdout.isatty() and not args.short and not args.no_live
    demo = Demo(short=args.short, live=live)
    # Ctrl-C and SIGTERM both end in the cleanup below, even where SIGINT was inherited ignored.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        code = demo.run()
    except KeyboardInterrupt:
        print("\ninterrupted: stopping everything")
        code = 130
    except Exception as e:  # a program that did not start: say where its log is
        print(f"\ndemo failed: {e}")
        code = 1
    finally:
        addrs = [p.addr for p in demo.procs.values() if p.addr] + ([demo.agent_addr] if demo.agent_addr else [])
        endpoints = demo.cluster.endpoints.split(",") if demo.cluster else []
        demo.stop_all()
    left = [a for a in addrs + endpoints if listening(a)]
    if left:
        print(f"still listening after the demo: {', '.join(left)}")
        return code or 1
    print("everything the demo started is stopped; nothing is left listening")
    return code


if __name__ == "__main__":
    sys.exit(main())
