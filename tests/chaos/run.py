#!/usr/bin/env python3
"""`make chaos`: every chaos scenario in its full form, one after the other, each against a real
3-member etcd cluster of its own; their results go to OUT/results.json and, with --report, into a
markdown report (CHAOS.md) with the soak's plot (--plot). A scenario that fails is reported as failed
with its output's tail, and the run exits non-zero; one that cannot run here (no network namespaces)
is reported as skipped, never as passed.

  run.py --out DIR --go BIN --cpp BIN [--soak-seconds 1800] [--only NAME] [--report CHAOS.md --plot PNG]
  run.py --out DIR --go BIN --cpp BIN --from-results --report CHAOS.md --plot PNG   (the report again)
"""

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", ".."))


def run(name, cmd, env=None, timeout=7200):
    """Runs one scenario; returns its record: status, seconds, the JSON line it printed, its tail."""
    print(f"=== chaos: {name}: {' '.join(cmd)}", flush=True)
    skipped = os.path.join(os.environ.get("TMPDIR", "/tmp"), f"gnaming-chaos-skipped-{os.getpid()}")
    if os.path.exists(skipped):
        os.remove(skipped)
    started = time.monotonic()
    proc = subprocess.run(cmd, cwd=REPO, env=dict(env or os.environ, GNAMING_SUITE_SKIPPED=skipped),
                          capture_output=True, text=True, timeout=timeout)
    took = round(time.monotonic() - started, 1)
    output = proc.stdout + proc.stderr
    sys.stdout.write(output)
    figures = None
    for line in proc.stdout.splitlines():
        if line.startswith("{"):
            try:
                figures = json.loads(line)
            except ValueError:
                pass
    if proc.returncode != 0:
        status = "failed"
    elif os.path.exists(skipped):
        status = "skipped: " + open(skipped).read().strip()
        os.remove(skipped)
    else:
        status = "passed"
    print(f"=== chaos: {name}: {status} in {took} s", flush=True)
    return {"status": status, "seconds": took, "figures": figures,
            "tail": output.strip().splitlines()[-30:]}


def soak_lines(record):
    return [line for line in record["tail"] if line.startswith("soak:")]


def report(results, args):
    r = results["scenarios"]
    out = [
        "# Chaos runs",
        "",
        f"`make chaos` on {results['date']}, on {results['machine']}: each scenario in its full form against a",
        "real 3-member etcd cluster of its own (Debian's etcd 3.4), faults made with real processes and the",
        "kernel (signals, network namespaces, `etcdctl snapshot restore`). This file is written by",
        "`tests/chaos/run.py`; the figures are that run's.",
        "",
        "| scenario | result | time |",
        "|---|---|---|",
    ]
    for name, rec in r.items():
        out.append(f"| {name} | {rec['status']} | {rec['seconds']} s |")
    part = r.get("partition", {}).get("figures") or {}
    if part:
        m, c = part.get("member_cut_from_peers", {}), part.get("client_cut_from_member", {})
        out += ["", "## Partition", "",
                f"Each member in a network namespace of its own, the client (the Python binding) in another; "
                f"{part.get('changes_per_phase')} changes per phase made through the majority.",
                "",
                f"- The watch's member cut off from its two peers (still answering the client): the resolver's list "
                f"equalled etcd's {m.get('settled_s')} s after the cut ({m.get('final_entries')} entries).",
                f"- The client cut off from a member: equal {c.get('settled_s')} s after the cut "
                f"({c.get('final_entries')} entries).",
                f"- Updates delivered to the resolver: {part.get('updates')} (a phase's changes are made while the "
                f"watch moves to another member, and arrive together once it has); no empty list; registrations "
                f"kept their keys and ended REGISTERED. Library counters: `{json.dumps(part.get('stats'))}`."]
    churn = r.get("leader kill under churn", {}).get("figures") or {}
    if churn:
        out += ["", "## Leader kill under churn", "",
                f"{churn.get('changes')} puts and deletes over 100 keys (and 3 anchors never deleted) in "
                f"{churn.get('churn_s')} s; member {churn.get('killed_member')}, the leader, SIGKILLed halfway and "
                f"restarted {churn.get('leader_down_s')} s later. Final list: {churn.get('final_entries')} entries.",
                "",
                "| subscriber | updates | error updates |",
                "|---|---|---|"]
        for who in ("go", "cpp", "python"):
            s = churn.get(who, {})
            out.append(f"| {who} | {s.get('updates')} | {s.get('errors')} |")
        out += ["", "Every subscriber ended with etcd's list, was never handed an empty list and never showed a",
                "key that was never written (the run fails otherwise)."]
    restore = r.get("restored cluster")
    if restore:
        out += ["", "## Restored cluster", "",
                "`tests/etcd_lifecycle.rs::a_cluster_restored_from_an_older_snapshot_...` (also in `make test`):",
                "a snapshot taken, then a key deleted, one added, a registration made and 50 more revisions",
                "written; every member restarted from the snapshot on the same ports. The resolver notices",
                "that the cluster answers behind the revision it had seen, lists again, and ends equal to",
                "etcd's list, with the later registration's key put back."]
    soak = r.get("soak")
    if soak:
        out += ["", "## Soak", "",
                f"{args.soak_seconds // 60} minutes in one process: 100 resolvers on 10 prefixes, 100 registrations, "
                "50 changes a second (a registration closed and a new address registered). Every resolver ended "
                "with exactly its prefix's registered addresses, none was handed an empty list, no lease was lost.",
                ""]
        out += [f"    {line}" for line in soak_lines(soak)]
        if args.plot:
            out += ["", f"![RSS, file descriptors and threads over the soak]({os.path.basename(args.plot)})"]
    failed = [n for n, rec in r.items() if rec["status"] == "failed"]
    if failed:
        out += ["", "## Failures", ""]
        for n in failed:
            out += [f"### {n}", "", "```", *r[n]["tail"], "```", ""]
    return "\n".join(out) + "\n"


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", required=True)
    p.add_argument("--go", required=True)
    p.add_argument("--cpp", required=True)
    p.add_argument("--soak-seconds", type=int, default=1800)
    p.add_argument("--only")
    p.add_argument("--report")
    p.add_argument("--plot")
    p.add_argument("--from-results", action="store_true",
                   help="write the report from OUT/results.json without running anything")
    args = p.parse_args()
    if args.from_results:
        with open(os.path.join(args.out, "results.json")) as f:
            results = json.load(f)
        with open(os.path.join(REPO, args.report), "w") as f:
            f.write(report(results, args))
        return 0
    os.makedirs(args.out, exist_ok=True)
    py = sys.executable
    soak_csv = os.path.join(os.path.abspath(args.out), "soak.csv")
    scenarios = {
        "partition": [py, os.path.join(HERE, "partition.py"), "--changes", "200"],
        "leader kill under churn": [py, os.path.join(HERE, "churn.py"), "--go", args.go, "--cpp", args.cpp,
                                    "--changes", "1000"],
        "restored cluster": ["cargo", "test", "--release", "--test", "etcd_lifecycle",
                             "a_cluster_restored_from_an_older_snapshot", "--", "--nocapture"],
        "soak": ["cargo", "test", "--release", "--test", "chaos_soak", "--", "--nocapture"],
    }
    env = {"soak": dict(os.environ, GNAMING_SOAK_SECONDS=str(args.soak_seconds), GNAMING_SOAK_CSV=soak_csv)}
    results = {"date": datetime.date.today().isoformat(),
               "machine": f"{os.cpu_count()} cores, {platform.system()}",
               "scenarios": {}}
    for name, cmd in scenarios.items():
        if args.only and args.only != name:
            continue
        results["scenarios"][name] = run(name, cmd, env.get(name))
    if "soak" in results["scenarios"] and args.plot and os.path.exists(soak_csv):
        subprocess.run([py, os.path.join(HERE, "plot_soak.py"), soak_csv, os.path.join(REPO, args.plot)],
                       check=True)
    with open(os.path.join(args.out, "results.json"), "w") as f:
        json.dump(results, f, indent=2)
    if args.report:
        with open(os.path.join(REPO, args.report), "w") as f:
            f.write(report(results, args))
    failed = [n for n, rec in results["scenarios"].items() if rec["status"] == "failed"]
    print(f"chaos: {len(results['scenarios']) - len(failed)} passed or skipped, {len(failed)} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
