"""xDS bootstraps in processes of their own (grpcio reads one per process): installing the
process-wide one next to another xDS user's bootstrap is refused, after os.fork the child gets a
server of its own that its xDS channels use, and a plain grpcio process follows etcd through
`gnaming xds-agent`."""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys
import textwrap

import pytest

MESH_BOOTSTRAP = json.dumps({
    "xds_servers": [{"server_uri": "127.0.0.1:9", "channel_creds": [{"type": "insecure"}]}],
    "node": {"id": "a-service-mesh", "locality": {}},
})

INSTALL = textwrap.dedent("""
    import ctypes, json, os, sys
    import gnaming, gnaming.xds

    libc = ctypes.CDLL(None)
    libc.getenv.restype = ctypes.c_char_p

    def environment():
        c_value = libc.getenv(b"GRPC_XDS_BOOTSTRAP_CONFIG")
        return {"env": os.environ.get("GRPC_XDS_BOOTSTRAP_CONFIG"),
                "c_env": c_value.decode() if c_value is not None else None}

    try:
        for _ in range(int(sys.argv[1])):
            installed = gnaming.xds.install_bootstrap()
    except gnaming.BadStateError as e:
        print(json.dumps({"refused": e.message, **environment()}))
    else:
        print(json.dumps({"installed": installed, **environment()}))
""")


def run(script: str, env: dict, *args: str) -> dict:
    out = subprocess.run([sys.executable, "-c", script, *args], capture_output=True, text=True, timeout=60,
                         env=env)
    assert out.returncode == 0, f"exit code {out.returncode}\nstdout: {out.stdout}\nstderr: {out.stderr}"
    return json.loads(out.stdout.strip().splitlines()[-1])


def run_file(path, env: dict, *args: str) -> dict:
    out = subprocess.run([sys.executable, str(path), *args], capture_output=True, text=True, timeout=90, env=env)
    assert out.returncode == 0, f"exit code {out.returncode}\nstdout: {out.stdout}\nstderr: {out.stderr[-3000:]}"
    return json.loads(out.stdout.strip().splitlines()[-1])


def clean_env() -> dict:
    return {k: v for k, v in os.environ.items() if not k.startswith("GRPC_XDS_BOOTSTRAP")}


def test_install_bootstrap_is_refused_when_another_bootstrap_config_is_set():
    result = run(INSTALL, {**clean_env(), "GRPC_XDS_BOOTSTRAP_CONFIG": MESH_BOOTSTRAP}, "1")
    assert "refused" in result, f"expected a refusal, observed {result}"
    assert "GRPC_XDS_BOOTSTRAP_CONFIG" in result["refused"], result["refused"]
    assert result["env"] == MESH_BOOTSTRAP and result["c_env"] == MESH_BOOTSTRAP, \
        "the other bootstrap must stay in place"


def test_install_bootstrap_is_refused_when_a_bootstrap_file_is_set(tmp_path):
    path = tmp_path / "mesh.json"
    path.write_text(MESH_BOOTSTRAP)
    result = run(INSTALL, {**clean_env(), "GRPC_XDS_BOOTSTRAP": str(path)}, "1")
    assert "refused" in result, f"expected a refusal, observed {result}"
    assert "GRPC_XDS_BOOTSTRAP" in result["refused"], result["refused"]
    assert result["env"] is None and result["c_env"] is None, result


def test_install_bootstrap_sets_both_environments_to_the_default_server_and_may_be_repeated():
    result = run(INSTALL, clean_env(), "2")
    assert "installed" in result, f"expected the bootstrap installed, observed {result}"
    boot = json.loads(result["installed"])
    assert boot["xds_servers"][0]["server_uri"].startswith("127.0.0.1:"), boot
    assert result["env"] == result["c_env"] == result["installed"], result


# Parent and child each start a backend after the fork (grpcio must not be used before a fork)
# and call it through `xds:///` on their own bootstrap.
FORK = textwrap.dedent("""
    import json, os, sys
    import gnaming, gnaming.xds

    parent_boot = json.loads(gnaming.xds.install_bootstrap())

    def echo_through_xds(name):
        from concurrent import futures
        import grpc
        server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
        handler = grpc.unary_unary_rpc_method_handler(lambda request, context: name.encode())
        server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler("t.Echo", {"Echo": handler}),))
        port = server.add_insecure_port("127.0.0.1:0")
        server.start()
        target = gnaming.xds_target(f"pass:///127.0.0.1:{port}")
        with grpc.insecure_channel(target) as ch:
            reply = ch.unary_unary("/t.Echo/Echo")(b"", timeout=10, wait_for_ready=True).decode()
        server.stop(None)
        return reply

    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        try:
            first_use = json.loads(gnaming.xds.default_bootstrap_json())
            installed = json.loads(gnaming.xds.install_bootstrap())
            out = {"first_use": first_use, "installed": installed,
                   "env": json.loads(os.environ["GRPC_XDS_BOOTSTRAP_CONFIG"]),
                   "reply": echo_through_xds("child")}
        except BaseException as e:
            out = {"error": repr(e)}
        os.write(w, json.dumps(out).encode())
        os._exit(0)
    os.close(w)
    chunks = []
    while True:
        chunk = os.read(r, 65536)
        if not chunk:
            break
        chunks.append(chunk)
    _, status = os.waitpid(pid, 0)
    child = json.loads(b"".join(chunks) or b"{}")
    print(json.dumps({"parent": parent_boot, "child": child, "child_status": status,
                      "parent_reply": echo_through_xds("parent"),
                      "parent_env": json.loads(os.environ["GRPC_XDS_BOOTSTRAP_CONFIG"])}))
""")


def test_after_fork_the_child_gets_a_fresh_server_and_bootstrap_on_first_use():
    result = run(FORK, clean_env())
    child = result["child"]
    assert result["child_status"] == 0 and "error" not in child, result
    parent_uri = result["parent"]["xds_servers"][0]["server_uri"]
    child_uri = child["first_use"]["xds_servers"][0]["server_uri"]
    assert child_uri != parent_uri, f"the child must get its own server, both use {parent_uri}"
    assert child["installed"] == child["first_use"] == child["env"], child
    assert child["reply"] == "child", child
    assert result["parent_reply"] == "parent" and result["parent_env"] == result["parent"], result


# A client with no gnaming code at all: plain grpcio, pointed at the agent by GRPC_XDS_BOOTSTRAP.
# On each line from stdin ("NAME,NAME") it calls until a batch of 60 RPCs is answered by exactly
# those servers, then prints them.
PLAIN_CLIENT = textwrap.dedent("""
    import sys, time
    import grpc

    with grpc.insecure_channel("xds:///" + sys.argv[1]) as channel:
        echo = channel.unary_unary("/gnaming.test.Echo/Echo")
        for line in sys.stdin:
            want = set(line.strip().split(","))
            deadline = time.monotonic() + 15
            seen = set()
            while time.monotonic() < deadline:
                seen = {echo(b"", timeout=5, wait_for_ready=True).decode() for _ in range(60)}
                if seen == want:
                    break
            print(",".join(sorted(seen)), flush=True)
""")


def test_a_plain_grpcio_process_follows_etcd_through_the_agent(etcd, service, backends, tmp_path):
    import gnaming

    from conftest import REPO

    a, b = backends(2)
    bootstrap = tmp_path / "xds.json"
    agent = subprocess.Popen([str(REPO / "target" / "release" / "gnaming"), "xds-agent", "--bootstrap-out",
                              str(bootstrap), "--etcd", etcd.endpoints],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    client = None
    regs = [gnaming.Registration(service, a.address)]
    try:
        ready, _, _ = select.select([agent.stdout], [], [], 30)
        line = agent.stdout.readline() if ready else ""
        assert line.startswith("xds-agent listening on ") and str(bootstrap) in line, line
        regs[0].wait(10)
        env = {**clean_env(), "GRPC_XDS_BOOTSTRAP": str(bootstrap)}
        client = subprocess.Popen([sys.executable, "-c", PLAIN_CLIENT, service], stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)

        def expect(names: str) -> None:
            client.stdin.write(names + "\n")
            client.stdin.flush()
            got = client.stdout.readline().strip()
            assert got == names, f"expected RPCs answered by {names}, observed {got!r}"

        expect("s0")
        regs.append(gnaming.Registration(service, b.address))
        regs[1].wait(10)
        expect("s0,s1")
        regs[0].close()
        expect("s1")
    finally:
        if client is not None:
            client.stdin.close()
            client.wait(15)
        for r in regs:
            r.close()
        agent.terminate()
        code = agent.wait(15)
    assert code == 0, f"the agent must exit cleanly on SIGTERM, exit code {code}: {agent.stderr.read()[-500:]}"


# gnaming.grpc.channel in processes of their own. Backends live in the pytest process, so the
# script's only gRPC object before a fork is the channel under test.
CHANNEL_PROCESSES = textwrap.dedent("""
    import json, multiprocessing, os, sys
    import gnaming, gnaming.grpc, gnaming.xds

    ECHO = "/gnaming.test.Echo/Echo"

    def server_uri():
        boot = os.environ.get("GRPC_XDS_BOOTSTRAP_CONFIG")
        return json.loads(boot)["xds_servers"][0]["server_uri"] if boot else None

    def call(target, out):
        try:
            before = gnaming.xds.stats()["xds_streams_total"]
            with gnaming.grpc.channel(target) as ch:
                reply = ch.unary_unary(ECHO)(b"", timeout=10, wait_for_ready=True).decode()
            out.put({"reply": reply, "own_streams": gnaming.xds.stats()["xds_streams_total"] - before,
                     "server_uri": server_uri()})
        except BaseException as e:
            out.put({"error": repr(e)})

    if __name__ == "__main__":
        method, target = sys.argv[1:3]
        assert "GRPC_XDS_BOOTSTRAP_CONFIG" not in os.environ
        parent = gnaming.grpc.channel(target)   # installs the bootstrap itself
        echo = parent.unary_unary(ECHO)
        result = {"parent_reply": echo(b"", timeout=10, wait_for_ready=True).decode(),
                  "parent_uri": server_uri()}
        ctx = multiprocessing.get_context(method)
        queue = ctx.Queue()
        child = ctx.Process(target=call, args=(target, queue))
        child.start()
        result["child"] = queue.get(timeout=60)
        child.join(30)
        result["child_exit"] = child.exitcode
        result["parent_again"] = echo(b"", timeout=10).decode()
        print(json.dumps(result))
""")


@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_a_multiprocessing_child_calls_through_a_server_of_its_own(method, backends, tmp_path):
    (a,) = backends(1)
    script = tmp_path / "processes.py"
    script.write_text(CHANNEL_PROCESSES)
    result = run_file(script, clean_env(), method, f"pass:///{a.address}")
    child = result["child"]
    assert "error" not in child and result["child_exit"] == 0, result
    assert result["parent_reply"] == child["reply"] == result["parent_again"] == "s0", result
    assert result["parent_uri"] and child["server_uri"] and child["server_uri"] != result["parent_uri"], \
        f"the child must have a bootstrap naming its own server: {result}"
    assert child["own_streams"] >= 1, f"grpcio in the child must talk to the child's server: {result}"
    # One connection from the parent (kept across the child's start and close) and one from the child.
    assert len(a.peers) == 2, f"the parent's connection must survive the child, observed peers {a.peers}"


FOREIGN_BOOTSTRAP = textwrap.dedent("""
    import json, sys
    import gnaming, gnaming.grpc

    target = sys.argv[1]
    out = {}
    try:
        gnaming.grpc.channel(target)
    except gnaming.BadStateError as e:
        out["refused"] = e.message
    with gnaming.grpc.channel(target, swapping=True) as ch:
        out["swapping_reply"] = ch.unary_unary("/gnaming.test.Echo/Echo")(b"", timeout=10, wait_for_ready=True).decode()
    print(json.dumps(out))
""")


@pytest.mark.parametrize("variable", ["GRPC_XDS_BOOTSTRAP", "GRPC_XDS_BOOTSTRAP_CONFIG"])
def test_a_process_with_a_foreign_bootstrap_is_refused_the_xds_channel_but_may_swap(variable, backends, tmp_path):
    (a,) = backends(1)
    mesh = tmp_path / "mesh.json"
    mesh.write_text(MESH_BOOTSTRAP)
    value = str(mesh) if variable == "GRPC_XDS_BOOTSTRAP" else MESH_BOOTSTRAP
    result = run(FOREIGN_BOOTSTRAP, {**clean_env(), variable: value}, f"pass:///{a.address}")
    assert "refused" in result, f"expected a refusal, observed {result}"
    assert variable in result["refused"] and "swapping=True" in result["refused"], result
    assert result["swapping_reply"] == "s0", result


# A parent that keeps an xds: channel of its own (not the package's) open across a fork: the child's
# grpcio would keep the parent's xDS client, so the package refuses rather than follow the parent.
RAW_CHANNEL_ACROSS_FORK = textwrap.dedent("""
    import json, os, sys
    import grpc
    import gnaming, gnaming.grpc, gnaming.xds

    target = sys.argv[1]
    gnaming.xds.install_bootstrap()
    raw = grpc.insecure_channel(gnaming.xds_target(target))
    raw.unary_unary("/gnaming.test.Echo/Echo")(b"", timeout=10, wait_for_ready=True)
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            gnaming.grpc.channel(target)
            out = {"opened": True}
        except gnaming.BadStateError as e:
            out = {"refused": e.message}
        os.write(w, json.dumps(out).encode())
        os._exit(0)
    os.close(w)
    child = json.loads(os.read(r, 65536) or b"{}")
    os.waitpid(pid, 0)
    print(json.dumps(child))
""")


def test_a_child_whose_parent_keeps_its_own_xds_channel_is_refused_not_sent_to_the_parent(backends):
    (a,) = backends(1)
    result = run(RAW_CHANNEL_ACROSS_FORK, clean_env(), f"pass:///{a.address}")
    assert "refused" in result, f"expected a refusal, observed {result}"
    assert "close it before forking" in result["refused"], result


# The first channels of a process opened from several threads at once: one bootstrap, every channel
# on it (gn_xds_channels_json and the bootstrap's install run concurrently).
CONCURRENT_FIRST_CHANNELS = textwrap.dedent("""
    import json, os, sys, threading
    import gnaming, gnaming.grpc

    target = sys.argv[1]
    start = threading.Barrier(8)
    replies, errors = [], []

    def first_channel(i):
        start.wait()
        try:
            with gnaming.grpc.channel(target if i % 2 else target + "#2") as ch:
                replies.append(ch.unary_unary("/gnaming.test.Echo/Echo")(b"", timeout=10, wait_for_ready=True).decode())
        except BaseException as e:
            errors.append(repr(e))

    threads = [threading.Thread(target=first_channel, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    print(json.dumps({"replies": replies, "errors": errors,
                      "env": os.environ.get("GRPC_XDS_BOOTSTRAP_CONFIG"),
                      "default": gnaming.xds.default_bootstrap_json()}))
""")


def test_first_channels_opened_by_eight_threads_at_once_share_one_bootstrap(backends):
    (a,) = backends(1)
    result = run(CONCURRENT_FIRST_CHANNELS, clean_env(), f"pass:///{a.address}")
    assert result["errors"] == [] and result["replies"] == ["s0"] * 8, result
    assert result["env"] == result["default"], f"one bootstrap, the default server's: {result}"
