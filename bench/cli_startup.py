"""Benchmark of the command line's start-up: wall time of ``soc --help`` (and a few groups'
help) against ``python -c pass`` measured in the same run, so the ratio holds on a busy machine.

One command, one report (``bench/reports/cli-startup.md``)::

    .venv/bin/python bench/cli_startup.py            # 15 runs of each
    .venv/bin/python bench/cli_startup.py --runs 5

Goal (issue 23): ``soc --help`` at most 0.5 s, and the same for a group's or a command's own
``--help``. The sub-command groups load lazily (``soc/subcommands.py``); a group's ``--help``
imports that group only, and the groups name their heavy modules (pySigma, scikit-learn, scipy,
the Elasticsearch client) through ``soc.commands.lazy_module`` or import them inside commands.
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
REPORT = ROOT / "bench" / "reports" / "cli-startup.md"
SOC = [sys.executable, "-m", "soc.cli"]
CASES: dict[str, list[str]] = {
    "python -c pass (baseline)": [sys.executable, "-c", "pass"],
    "soc --help": [*SOC, "--help"],
    "soc auth --help": [*SOC, "auth", "--help"],
    "soc rules --help (pySigma)": [*SOC, "rules", "--help"],
    "soc anomaly --help (scikit-learn)": [*SOC, "anomaly", "--help"],
    "soc rules backtest --help": [*SOC, "rules", "backtest", "--help"],
}
GOAL_S = 0.5


def timed(argv: list[str]) -> tuple[float, float]:
    """Wall and CPU (user + system) seconds of one run of ``argv``."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    began = time.perf_counter()
    subprocess.run(argv, cwd=ROOT, capture_output=True, check=True)
    wall = time.perf_counter() - began
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime


def measure(runs: int) -> dict[str, tuple[list[float], list[float]]]:
    """Round-robin over the cases, so a burst of load on the machine hits them all alike."""
    results: dict[str, tuple[list[float], list[float]]] = {n: ([], []) for n in CASES}
    for _ in range(runs):
        for name, argv in CASES.items():
            wall, cpu = timed(argv)
            results[name][0].append(wall)
            results[name][1].append(cpu)
    return results


def load() -> str:
    one, five, _ = os.getloadavg()
    return f"load average {one:.1f} (1 min), {five:.1f} (5 min)"


def report(results: dict[str, tuple[list[float], list[float]]], runs: int, before: str) -> str:
    base = statistics.median(results["python -c pass (baseline)"][0])
    lines = [
        "# CLI start-up",
        "",
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC · {platform.node()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()} · {runs} runs each · {before} before, {load()} after",
        "",
        "| command | wall median s | wall p90 s | CPU median s | wall median - baseline s |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for name, (wall, cpu) in results.items():
        wall = sorted(wall)
        p90 = wall[min(len(wall) - 1, int(0.9 * len(wall)))]
        med = statistics.median(wall)
        lines.append(f"| `{name}` | {med:.3f} | {p90:.3f} | {statistics.median(cpu):.3f} "
                     f"| {med - base:.3f} |")  # fmt: skip
    head = statistics.median(results["soc --help"][0])
    cpu_s = statistics.median(results["soc --help"][1])
    lines += ["", f"`soc --help`: wall median {head:.3f} s = {head / base:.1f} times the bare "
              f"interpreter ({base:.3f} s), CPU median {cpu_s:.3f} s. Goal ≤ {GOAL_S} s for every "
              "help above (wall, or CPU when the machine is loaded):"]  # fmt: skip
    for name, met in _verdicts(results).items():
        lines.append(f"- `{name}`: **{'met' if met else 'NOT met'}**")
    lines += ["", "Before issue 23 `soc --help` imported every group (scikit-learn, scipy, "
              "pySigma, elasticsearch): ~3 s; `soc rules --help` and `soc anomaly --help` still "
              "took ~2 s until their groups named those modules lazily.", ""]  # fmt: skip
    return "\n".join(lines)


def _verdicts(results: dict[str, tuple[list[float], list[float]]]) -> dict[str, bool]:
    return {
        name: min(statistics.median(wall), statistics.median(cpu)) <= GOAL_S
        for name, (wall, cpu) in results.items()
        if name != "python -c pass (baseline)"
    }


def _met(results: dict[str, tuple[list[float], list[float]]]) -> bool:
    return all(_verdicts(results).values())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    before = load()
    results = measure(args.runs)
    text = report(results, args.runs, before)
    REPORT.write_text(text, encoding="utf-8")
    print(text)
    return 0 if _met(results) else 1


if __name__ == "__main__":
    sys.exit(main())
