"""Benchmark of ``soc.es.templates.setup`` + ``teardown`` (what every test's scratch prefix, every
bench and every start pays): the stages' requests sent at once, as the code does, against the same
requests sent one at a time (the code before), alternated in the same run so the ratio holds on a
busy machine.

One command, one report (``bench/reports/es-setup.md``)::

    SOC_ES_URL=http://127.0.0.1:9250 .venv/bin/python bench/es_setup.py --rounds 8
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from elasticsearch import Elasticsearch

from soc.config import load_settings
from soc.es import templates
from soc.es.client import make_client, wait_until_healthy
from soc.es.indices import Indices, Kind

ROOT = Path(__file__).resolve().parent.parent
REPORT = ROOT / "bench" / "reports" / "es-setup.md"


def serial_setup(es: Elasticsearch, indices: Indices) -> None:
    """The same requests as :func:`templates.setup`, one at a time (the code before)."""
    report = templates.SetupReport()
    layout = templates.Layout()
    for name, body in templates.component_bodies(indices, 0, layout.shards).items():
        templates._put_if_changed(es, name, body, report, component=True)
    for kind in Kind:
        body = templates.template_body(indices, kind, layout)
        templates._put_if_changed(es, indices.template(kind), body, report, component=False)
    for kind in Kind:
        if kind is not Kind.EVENTS:
            templates._create_if_missing(es, indices.name(kind), report)
    for kind in Kind:
        templates._check_existing(es, indices.pattern(kind), kind, report)


def serial_teardown(es: Elasticsearch, prefix: str) -> None:
    """The teardown before: indices, index templates, then each component template by name."""
    quiet = es.options(ignore_status=404)
    names = list(es.indices.get(index=f"{prefix}-*", allow_no_indices=True, expand_wildcards="all"))
    if names:
        quiet.indices.delete(index=",".join(names), ignore_unavailable=True)
    quiet.indices.delete_index_template(name=f"{prefix}-*")
    found = quiet.cluster.get_component_template(name=f"{prefix}-*")
    for item in found.get("component_templates", []):
        quiet.cluster.delete_component_template(name=item["name"])


def _timed(
    es: Elasticsearch,
    set_up: Callable[[Elasticsearch, Indices], object],
    tear: Callable[[Elasticsearch, str], None],
) -> tuple[float, float]:
    prefix = f"esbench{uuid.uuid4().hex[:8]}"
    started = time.perf_counter()
    set_up(es, Indices(prefix))
    middle = time.perf_counter()
    tear(es, prefix)
    return middle - started, time.perf_counter() - middle


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=8)
    args = parser.parse_args()
    es = make_client(load_settings())
    wait_until_healthy(es, timeout=60)
    sides: dict[str, tuple[Callable[[Elasticsearch, Indices], object],
                           Callable[[Elasticsearch, str], None]]] = {
        "at once (now)": (templates.setup, templates.teardown),
        "one at a time (before)": (serial_setup, serial_teardown),
    }  # fmt: skip
    got: dict[str, list[tuple[float, float]]] = {name: [] for name in sides}
    loads: list[float] = []
    began = datetime.now(UTC)
    for r in range(args.rounds):
        loads.append(os.getloadavg()[0])
        for name in list(sides) if r % 2 == 0 else list(sides)[::-1]:
            got[name].append(_timed(es, *sides[name]))
        print(f"round {r + 1} load {loads[-1]:.1f}: "
              + ", ".join(f"{n} {got[n][-1][0]:.2f}+{got[n][-1][1]:.2f} s" for n in sides),
              flush=True)  # fmt: skip
    write_report(args, began, got, loads)


def write_report(
    args: argparse.Namespace,
    began: datetime,
    got: dict[str, list[tuple[float, float]]],
    loads: list[float],
) -> None:
    now, before = got["at once (now)"], got["one at a time (before)"]
    ratios = [(a[0] + a[1]) / (b[0] + b[1]) for a, b in zip(now, before, strict=True)]
    lines = [
        "# Scratch-prefix setup and teardown: cluster-state updates at once",
        "",
        f"Run {began:%Y-%m-%d %H:%M}-{datetime.now(UTC):%H:%M} UTC on {platform.node()} "
        f"({os.cpu_count()} cores), the shared dev node. `bench/es_setup.py --rounds "
        f"{args.rounds}`, the two sides alternated each round.",
        "Load average (1 min) per round: " + ", ".join(f"{x:.1f}" for x in loads),
        "",
        "| side | setup median s (min-max) | teardown median s (min-max) |",
        "| --- | --- | --- |",
    ]
    for name, values in got.items():
        s, t = [v[0] for v in values], [v[1] for v in values]
        lines.append(f"| {name} | {statistics.median(s):.2f} ({min(s):.2f}-{max(s):.2f}) | "
                     f"{statistics.median(t):.2f} ({min(t):.2f}-{max(t):.2f}) |")  # fmt: skip
    lines += [
        "",
        f"setup + teardown, now / before, per round: median **{statistics.median(ratios):.2f}**"
        f" ({min(ratios):.2f}-{max(ratios):.2f}).",
        "",
        "Each template put and index creation is a cluster-state update; the master publishes",
        "concurrent ones as one batch, so the stages sent at once wait for three publications",
        "instead of fifteen. The teardown deletes the indices and index templates at once and",
        "the component templates by pattern.",
    ]
    REPORT.parent.mkdir(parents=True, exist_ok=True)
    REPORT.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f"wrote {REPORT.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
