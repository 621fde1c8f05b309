"""The stats in the Prometheus text format, read by Prometheus' own Python parser
(prometheus_client.parser): gn_stats_prometheus in this process and `gnaming xds-agent --metrics`
over HTTP both carry every stat of gn_stats_json, with its value, type and help."""

from __future__ import annotations

import ctypes
import subprocess
import time
import urllib.error
import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families

import gnaming

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def prometheus_text() -> str:
    """gn_stats_prometheus through ctypes: the package has no wrapper for it."""
    lib = ctypes.CDLL(gnaming.library_path)
    lib.gn_stats_prometheus.restype = ctypes.c_int
    lib.gn_stats_prometheus.argtypes = [ctypes.POINTER(ctypes.c_void_p), ctypes.c_void_p]
    lib.gn_string_free.restype = None
    lib.gn_string_free.argtypes = [ctypes.c_void_p]
    out = ctypes.c_void_p()
    assert lib.gn_stats_prometheus(ctypes.byref(out), None) == 0
    try:
        return ctypes.string_at(out.value).decode("utf-8")
    finally:
        lib.gn_string_free(out.value)


def families(text: str) -> dict:
    """Metric families by name; the parser names a counter family without its `_total`."""
    return {f.name: f for f in text_string_to_metric_families(text)}


def check_every_stat(stats: dict, text: str) -> dict:
    """Every JSON stat is one family of one unlabelled sample named gnaming_<key> (a gauge) or
    gnaming_<key>_total (a counter) with a help sentence and an integer value; nothing else is
    there. Returns the samples' values by JSON key."""
    found = families(text)
    values = {}
    for key, value in stats.items():
        assert isinstance(value, int) and value >= 0, f"{key}: JSON value {value!r}"
        base = "gnaming_" + key.removesuffix("_total")
        family = found.get(base)
        assert family is not None, f"{key}: no family {base} among {sorted(found)}"
        assert family.type in ("counter", "gauge"), f"{key}: type {family.type}"
        name = base + "_total" if family.type == "counter" else "gnaming_" + key
        assert not (family.type == "gauge" and key.endswith("_total")), f"{key} is a gauge named *_total"
        assert family.documentation.endswith(".") and len(family.documentation) > 10, \
            f"{key}: help {family.documentation!r}"
        assert [(s.name, s.labels) for s in family.samples] == [(name, {})], f"{key}: {family.samples}"
        sample = family.samples[0].value
        assert sample == int(sample), f"{key}: value {sample} is not an integer"
        values[key] = int(sample)
    extra = set(found) - {"gnaming_" + k.removesuffix("_total") for k in stats}
    assert not extra, f"families that the JSON lacks: {sorted(extra)}"
    return values


def test_gn_stats_prometheus_has_every_stat_of_the_json_with_the_same_values():
    resolver = gnaming.Resolver("pass:///127.0.0.1:1")
    try:
        assert resolver.next(10) is not None
    finally:
        resolver.close()
    # One quiet moment: the JSON read before and after the text agree (bounded retries).
    for _ in range(20):
        before = gnaming.stats()
        text = prometheus_text()
        after = gnaming.stats()
        if before == after:
            break
        time.sleep(0.05)
    assert before == after, f"the stats kept moving: {before} vs {after}"
    assert before["updates_delivered"] >= 1
    values = check_every_stat(before, text)
    assert values == before


def test_the_xds_agent_serves_the_same_stats_at_metrics(tmp_path):
    from conftest import REPO

    log = tmp_path / "agent.log"
    with open(log, "w") as stderr:
        agent = subprocess.Popen([str(REPO / "target" / "release" / "gnaming"), "xds-agent", "--listen",
                                  "127.0.0.1:0", "--bootstrap-out", str(tmp_path / "xds.json"),
                                  "--metrics", "127.0.0.1:0"],
                                 stdout=subprocess.DEVNULL, stderr=stderr, text=True)
    try:
        url = None
        deadline = time.monotonic() + 20
        while url is None and time.monotonic() < deadline and agent.poll() is None:
            for line in log.read_text().splitlines():
                if "metrics on http://" in line:
                    url = line.split("metrics on ", 1)[1].strip()
            time.sleep(0.05)
        assert url and url.startswith("http://127.0.0.1:"), f"no metrics URL; stderr:\n{log.read_text()}"

        with urllib.request.urlopen(url, timeout=10) as answer:
            assert answer.status == 200
            assert answer.headers["Content-Type"] == CONTENT_TYPE
            text = answer.read().decode("utf-8")
        values = check_every_stat(gnaming.stats(), text)
        assert values["xds_servers_active"] == 1, text
        with pytest.raises(urllib.error.HTTPError) as not_found:
            urllib.request.urlopen(url.removesuffix("metrics") + "stats", timeout=10)
        assert not_found.value.code == 404
    finally:
        agent.terminate()
        assert agent.wait(10) == 0, log.read_text()


def test_a_non_loopback_metrics_address_is_refused_with_exit_code_2():
    from conftest import REPO

    done = subprocess.run([str(REPO / "target" / "release" / "gnaming"), "xds-agent", "--metrics", "0.0.0.0:0"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2, done.stderr
    assert "not a loopback address" in done.stderr and "--metrics-allow-remote" in done.stderr, done.stderr
