"""Benchmark of ``make typecheck`` since tests/ and bench/ joined it (issue 24): mypy over the
product packages only (the baseline, as before) and over everything pyproject.toml lists, cold
(empty cache) and warm (unchanged tree), interleaved in the same run so the ratios hold on a busy
machine. Each run has its own cache directory, so neither invalidates the other's.

One command, one report (``bench/reports/typecheck.md``)::

    .venv/bin/python bench/typecheck.py              # 3 rounds
    .venv/bin/python bench/typecheck.py --rounds 1
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
REPORT = ROOT / "bench" / "reports" / "typecheck.md"
MYPY = [sys.executable, "-m", "mypy"]
#: The baseline: what mypy checked before issue 24 (the four product packages).
BEFORE = ["-p", "soc", "-p", "detectors", "-p", "collectors", "-p", "dashboards"]


def _run(args: list[str], cache: Path) -> tuple[float, float]:
    """Wall and CPU seconds (children's user + system) of one mypy run, which must pass."""
    used = resource.getrusage(resource.RUSAGE_CHILDREN)
    began = time.perf_counter()
    subprocess.run([*MYPY, *args, "--cache-dir", str(cache)], cwd=ROOT, check=True,
                   stdout=subprocess.DEVNULL)  # fmt: skip
    wall = time.perf_counter() - began
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - used.ru_utime) + (after.ru_stime - used.ru_stime)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    times: dict[str, list[tuple[float, float]]] = {}
    with tempfile.TemporaryDirectory(prefix="typecheck-") as tmp:
        for _ in range(args.rounds):
            for name, extra in (("before", BEFORE), ("after", [])):
                cache = Path(tmp) / name
                shutil.rmtree(cache, ignore_errors=True)
                times.setdefault(f"{name} cold", []).append(_run(extra, cache))
                times.setdefault(f"{name} warm", []).append(_run(extra, cache))
    med = {k: (statistics.median(w for w, _ in v), statistics.median(c for _, c in v))
           for k, v in times.items()}  # fmt: skip
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    lines = [
        "# Type checking with tests/ and bench/ included (`bench/typecheck.py`)", "",
        f"Run {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {os.cpu_count()} cores, load average "
        f"{load} (shared machine); {args.rounds} interleaved rounds, medians. Before: the four "
        "product packages only; after: everything `[tool.mypy]` lists (tests/, bench/ and "
        "bench/run too).", "",
        "| run | wall s | CPU s | wall / before | CPU / before |",
        "| --- | --- | --- | --- | --- |",
    ]  # fmt: skip
    for kind in ("cold", "warm"):
        base_wall, base_cpu = med[f"before {kind}"]
        for name in ("before", "after"):
            wall, cpu = med[f"{name} {kind}"]
            lines.append(f"| {name}, {kind} cache | {wall:.2f} | {cpu:.2f} "
                         f"| {wall / base_wall:.2f} | {cpu / base_cpu:.2f} |")  # fmt: skip
    REPORT.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f"report: {REPORT}")


if __name__ == "__main__":
    main()
