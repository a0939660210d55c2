"""Loss drill of the collectors: ship a known number of lines while Elasticsearch is stopped for
at least 30 s and the collector is killed with SIGKILL and restarted; the index must end with
exactly that number of events, none twice.

One command, one report (``bench/reports/collectors-drill.md``)::

    .venv/bin/python bench/collectors_drill.py                 # 30 s outage, 20,000 lines
    .venv/bin/python bench/collectors_drill.py --outage 60 --lines 50000

It starts an Elasticsearch node of its own (same launcher as ``soc es start``, free ports, data in
``var/test-runs/``, removed afterwards) and runs ``soc collect run`` as a real child process.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import yaml

from soc.config import load_settings
from soc.es.client import make_client, wait_until_healthy
from soc.es.launcher import LocalNode

ROOT = Path(__file__).resolve().parent.parent
REPORT = ROOT / "bench" / "reports" / "collectors-drill.md"
sys.path.insert(0, str(ROOT))

from collectors_ingest import machine, write_logs  # noqa: E402

from tests.conftest import new_run_dir, node_settings  # noqa: E402


def _collector(cfg: Path, url: str) -> subprocess.Popen[bytes]:
    env = dict(os.environ, SOC_ES_URL=url, SOC_INDEX_PREFIX="drill", SOC_LOG_LEVEL="ERROR")
    return subprocess.Popen(
        [sys.executable, "-m", "soc.cli", "collect", "run", "-c", str(cfg)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def _count(url: str) -> int:
    es = make_client(load_settings(es_url=url, es_request_timeout=10))
    try:
        es.indices.refresh(index="drill-events-*", allow_no_indices=True)
        return int(es.count(index="drill-events-*", allow_no_indices=True)["count"])
    finally:
        es.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--lines", type=int, default=20_000)
    parser.add_argument("--outage", type=float, default=30.0)
    args = parser.parse_args()
    run_dir = new_run_dir("collect-drill")
    node = LocalNode(node_settings(run_dir))
    node.start()
    steps: list[str] = []
    t0 = time.monotonic()

    def note(text: str) -> None:
        steps.append(f"| {time.monotonic() - t0:6.1f} s | {text} |")
        print(steps[-1])

    try:
        with tempfile.TemporaryDirectory(prefix="colldrill-") as tmp:
            work = Path(tmp)
            half = args.lines // 2
            write_logs(work / "logs", half)
            cfg = work / "collector.yaml"
            cfg.write_text(
                yaml.safe_dump(
                    {
                        "collector": {
                            "id": "drill",
                            "state_dir": str(work / "state"),
                            "batch_size": 1000,
                            "flush_interval": 0.2,
                            "retry_max": 2,
                        },
                        "inventory": {
                            "systems": [
                                {
                                    "id": "sim",
                                    "paths": [
                                        "**/{province}/{service}.access.log",
                                        "**/{province}/{service}.app.log",
                                    ],
                                }
                            ]
                        },
                        "sources": [
                            {
                                "id": "files",
                                "type": "file",
                                "format": "auto",
                                "paths": [str(work / "logs" / "**" / "*.log")],
                            }
                        ],
                    }
                ),
                "utf-8",
            )
            proc = _collector(cfg, node.url)
            note(f"collector started; {half} lines in 34 files")
            while _count(node.url) < half // 4:
                time.sleep(0.2)
            node.stop()
            note(f"Elasticsearch stopped with {half // 4}+ events indexed")
            write_logs(work / "more", args.lines - half)
            for path in (work / "more").rglob("*.log"):
                target = work / "logs" / path.relative_to(work / "more")
                with target.open("ab") as fh:
                    fh.write(
                        path.read_bytes()
                        .replace(b"req-", b"req2-")
                        .replace(b'"GET /dich-vu-cong/ho-so/', b'"GET /dich-vu-cong/ho-so2/')
                    )
            note(f"{args.lines - half} more lines appended while it is down")
            time.sleep(args.outage / 2)
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            note("collector killed with SIGKILL (Elasticsearch still down)")
            proc = _collector(cfg, node.url)
            note("collector restarted")
            time.sleep(args.outage / 2)
            node.start()
            wait_until_healthy(make_client(load_settings(es_url=node.url)), timeout=120)
            note(f"Elasticsearch started again after {args.outage:.0f}+ s down")
            deadline = time.monotonic() + 300
            while _count(node.url) < args.lines and time.monotonic() < deadline:
                time.sleep(0.5)
            time.sleep(3)  # anything more (a double) would show up now
            final = _count(node.url)
            note(f"index holds {final} events")
            proc.send_signal(signal.SIGTERM)
            proc.wait(60)
    finally:
        node.stop()
        shutil.rmtree(run_dir, ignore_errors=True)
    verdict = "PASS" if final == args.lines else "FAIL"
    lines = [
        "# Collectors: loss drill",
        "",
        f"Run {datetime.now(UTC):%Y-%m-%d %H:%M} UTC on {machine()}; load average "
        f"{os.getloadavg()[0]:.1f}. Command: `.venv/bin/python bench/collectors_drill.py "
        f"--lines {args.lines} --outage {args.outage:.0f}`",
        "",
        "| time | step |",
        "| ---: | --- |",
        *steps,
        "",
        f"**{verdict}: {args.lines} lines written, {final} events in the index** (exact count; "
        "ids are deterministic and writes `op_type=create`, so a copy cannot hide in the count).",
    ]
    REPORT.write_text("\n".join(lines) + "\n", "utf-8")
    print("\n".join(lines))
    if final != args.lines:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
