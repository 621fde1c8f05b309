"""`python -m gnaming watch TARGET`: prints every address list a target resolves to, for operators
checking what clients see. `python -m gnaming version` prints the package's and library's versions."""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time

from . import GnamingError, Resolver, Update, library_path, log_to_python, version


def _print(update: Update, as_json: bool) -> None:
    if as_json:
        print(json.dumps({
            "sequence": update.sequence, "ok": update.ok, "error": update.error,
            "service_config": update.service_config,
            "addresses": [{"addr": a.addr, "family": a.family.name.lower(), "kind": a.kind.name.lower(),
                           "weight": a.weight, "copy_index": a.copy_index, "metadata": a.metadata}
                          for a in update.addresses],
        }), flush=True)
        return
    stamp = time.strftime("%H:%M:%S")
    state = "ok" if update.ok else f"error: {update.error}"
    print(f"{stamp} #{update.sequence} {len(update.addresses)} address(es), {state}")
    for a in update.addresses:
        extra = []
        if a.weight != 1:
            extra.append(f"weight={a.weight}")
        if a.copy_index:
            extra.append(f"copy={a.copy_index}")
        if a.kind.name != "BACKEND":
            extra.append(a.kind.name.lower())
        if a.metadata_json is not None:
            extra.append(f"metadata={a.metadata_json}")
        print(f"  {a.addr}" + ("  " + " ".join(extra) if extra else ""))
    if update.service_config:
        print(f"  service config: {update.service_config}")
    sys.stdout.flush()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m gnaming", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)
    w = sub.add_parser("watch", help="print every update of TARGET until interrupted")
    w.add_argument("target", metavar="TARGET", help="etcd:///svc, dns:///host:port, pass:///a:1#2,b:2 ...")
    w.add_argument("--json", action="store_true", help="one JSON object per update")
    w.add_argument("--count", type=int, default=0, help="stop after this many updates")
    w.add_argument("--timeout", type=float, default=None, help="give up after this many seconds without an update")
    w.add_argument("-v", "--verbose", action="count", default=0, help="log the library's events to stderr (-vv: debug)")
    sub.add_parser("version", help="print versions")
    args = p.parse_args(argv)

    if args.command == "version":
        print(f"libgnaming {version()} ({library_path})")
        return 0
    if args.verbose:
        level = logging.INFO if args.verbose == 1 else logging.DEBUG
        logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
        log_to_python(level)
    try:
        with Resolver(args.target) as resolver:
            seen = 0
            while args.count <= 0 or seen < args.count:
                _print(resolver.next(args.timeout), args.json)
                seen += 1
    except GnamingError as e:
        print(f"gnaming: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
