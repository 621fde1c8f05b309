#!/usr/bin/env python3
"""Plots the soak's samples (the CSV tests/chaos_soak.rs writes) as a PNG: RSS, file descriptors and
threads over the run, with minute 5, where growth starts being judged, marked.

  plot_soak.py SOAK.csv OUT.png
"""

import csv
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def main(path, out):
    with open(path) as f:
        rows = list(csv.DictReader(f))
    if not rows:
        raise SystemExit(f"{path} holds no samples")
    minutes = [float(r["seconds"]) / 60 for r in rows]
    series = [
        ("RSS (MiB)", [int(r["rss_kb"]) / 1024 for r in rows]),
        ("file descriptors", [int(r["fds"]) for r in rows]),
        ("threads", [int(r["threads"]) for r in rows]),
    ]
    fig, axes = plt.subplots(len(series), 1, figsize=(8, 7), sharex=True)
    for ax, (label, values) in zip(axes, series):
        ax.plot(minutes, values, linewidth=1.2)
        ax.set_ylabel(label)
        ax.set_ylim(0, max(values) * 1.15 + 1)
        ax.axvline(5, color="grey", linestyle=":", linewidth=1)
        ax.grid(True, alpha=0.3)
    axes[-1].set_xlabel("minutes")
    changes = int(rows[-1]["changes"])
    fig.suptitle(f"soak: 100 resolvers, 100 registrations, {changes} changes in {minutes[-1]:.0f} min")
    fig.tight_layout()
    fig.savefig(out, dpi=90)
    print(f"wrote {out}")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        raise SystemExit(__doc__)
    main(sys.argv[1], sys.argv[2])
