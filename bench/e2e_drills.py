"""End-to-end benchmark of the main job: latency scenario → alert → incident → email under live
traffic, fault drills with verdicts, and the footprint of every process.

One command, one report (``bench/reports/e2e.md`` and ``e2e.json``)::

    .venv/bin/python bench/e2e_drills.py            # ~25 min: 8 min of injections + 4 drills
    .venv/bin/python bench/e2e_drills.py --quick    # ~8 min, shorter phases (a smoke run)

It starts its own Elasticsearch node (the managed launcher, own ports, heap 1g, data in a temp
dir) so that the "Elasticsearch stopped" drill stops nothing else, then runs ``soc demo`` as a
subprocess on it with the default detection intervals. Phases, in order:

1. **latency**: a scenario every ``--every`` seconds; for each, the time from its first event
   (its start in the simulator's labels) to the first alert, incident and sent email.
2. **drills**, each followed by a recovery period: ``soc detect`` SIGKILLed and held down,
   the SMTP sink SIGKILLed and held down, the collector SIGKILLed and held down, Elasticsearch
   stopped. The supervisor's hold files keep a child down (``var/demo/hold/<name>``).
3. **verdicts**: every line the simulator wrote is an event in Elasticsearch (no event lost, none
   doubled), every scenario that started during a drill still raised its alert (no window
   skipped), one alert per id, one caught email per outbox message and no Message-ID twice.
"""

from __future__ import annotations

import argparse
import json
import mailbox
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from e2e_watch import Footprint, Observer, rss_kib, say  # noqa: E402  # bench/ on sys.path
from elasticsearch import Elasticsearch  # noqa: E402

from soc.config import Settings, load_settings  # noqa: E402
from soc.demo.measure import Timing, percentile, scenario_mails, timing  # noqa: E402
from soc.es.client import make_client  # noqa: E402
from soc.es.indices import Indices  # noqa: E402
from soc.es.launcher import LocalNode  # noqa: E402
from soc.simulate import labels as labels_file  # noqa: E402

REPORTS = ROOT / "bench" / "reports"
PREFIX = "soc"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def free_range(count: int) -> int:
    for base in range(21000, 60000, 97):
        socks: list[socket.socket] = []
        try:
            for port in range(base, base + count):
                sock = socket.socket()
                socks.append(sock)
                sock.bind(("127.0.0.1", port))
            return base
        except OSError:
            continue
        finally:
            for sock in socks:
                sock.close()
    raise RuntimeError("no free port range")


# ------------------------------------------------------------------ the run
class Run:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.dir = Path(tempfile.mkdtemp(prefix="soc-bench-e2e-"))
        self.dir.chmod(0o755)  # Elasticsearch runs as its own user when we are root
        self.settings: Settings = load_settings(
            var_dir=self.dir, es_http_port=free_port(), es_transport_port=free_port(),
            es_heap=args.es_heap, es_install_dir=ROOT / "var" / "es" / "dist",
        )  # fmt: skip
        self.node = LocalNode(self.settings)
        self.es = make_client(self.settings)
        self.indices = Indices(PREFIX)
        self.demo_dir = self.dir / "demo"
        self.proc: subprocess.Popen[bytes] | None = None
        self.phases: dict[str, tuple[datetime, datetime]] = {}
        self.drills: list[dict[str, Any]] = []

    def pids(self) -> dict[str, int]:
        try:
            found = dict(json.loads((self.demo_dir / "children.json").read_text()))
        except (OSError, ValueError):
            found = {}
        es_pid = self.node.pid()
        if es_pid:
            found["elasticsearch"] = es_pid
        return found

    def start(self) -> None:
        say(f"Elasticsearch node on {self.node.url} (heap {self.args.es_heap}), data in {self.dir}")
        self.node.start()
        env = {**os.environ, "SOC_ES_URL": self.node.url, "SOC_INDEX_REPLICAS": "0",
               "SOC_VAR_DIR": str(self.dir), "SOC_API_PORT": str(free_port()),
               "SOC_SMTP_PORT": str(free_port()), "SOC_NOTIFY_RETRY_BASE": "5",
               "SOC_NOTIFY_RETRY_MAX": "30", "SOC_NOTIFY_RATE_LIMIT": "1000"}  # fmt: skip
        for key in ("SOC_INDEX_PREFIX", "SOC_DETECT_TICK", "SOC_DETECT_SETTLE",
                    "SOC_DEMO_PIPELINE_TICK"):  # fmt: skip
            env.pop(key, None)  # default intervals: that is what the goal is about
        argv = [sys.executable, "-m", "soc.cli", "demo", "--backfill-days", "0.02",
                "--scale", f"{self.args.scale:g}", "--no-train", "--no-anomaly",
                "--scenario-every", f"{self.args.every:g}", "--first-scenario", "20",
                "--fleet-port", str(free_range(34)), "--push-port", str(free_port())]  # fmt: skip
        self.out = (self.dir / "demo.out").open("wb")
        self.proc = subprocess.Popen(argv, env=env, cwd=ROOT, stdout=self.out,
                                     stderr=subprocess.STDOUT)  # fmt: skip
        deadline = time.monotonic() + 600
        while "simulate" not in self.pids():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"soc demo did not start; see {self.dir / 'demo.out'}")
            time.sleep(1)
        self.live_start = datetime.now(UTC)
        say("soc demo is up: " + ", ".join(f"{k}={v}" for k, v in self.pids().items()))

    def phase(self, name: str, seconds: float) -> None:
        began = datetime.now(UTC)
        say(f"phase {name}: {seconds:.0f} s")
        time.sleep(seconds)
        self.phases[name] = (began, datetime.now(UTC))

    def hold_kill(self, name: str, down: float) -> None:
        hold = self.demo_dir / "hold"
        hold.mkdir(exist_ok=True)
        (hold / name).touch()
        pid = self.pids()[name]
        began = datetime.now(UTC)
        say(f"drill: SIGKILL {name} (pid {pid}), down for {down:.0f} s")
        os.killpg(pid, signal.SIGKILL)
        time.sleep(down)
        (hold / name).unlink()
        self._recover(f"{name} SIGKILL, down {down:.0f} s", began)

    def es_down(self, down: float) -> None:
        began = datetime.now(UTC)
        say(f"drill: Elasticsearch stopped for {down:.0f} s")
        self.node.stop()
        time.sleep(down)
        self.node.start()
        self._recover(f"Elasticsearch stopped {down:.0f} s", began)

    def _recover(self, name: str, began: datetime) -> None:
        ended = datetime.now(UTC)
        say(f"  recovering for {self.args.recovery:.0f} s")
        time.sleep(self.args.recovery)
        self.drills.append({"drill": name, "start": began, "end": ended})

    def stop_traffic(self) -> None:
        """Stop the simulator (held down) so that lines written and events stored can be
        compared without new lines arriving in between."""
        hold = self.demo_dir / "hold"
        hold.mkdir(exist_ok=True)
        (hold / "simulate").touch()
        pid = self.pids()["simulate"]
        os.killpg(pid, signal.SIGINT)
        deadline = time.monotonic() + 30
        while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
            time.sleep(0.5)

    def stop(self) -> int:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGINT)
        code = self.proc.wait(180)
        self.out.close()
        return code


# ------------------------------------------------------------------ verdicts
def count(es: Elasticsearch, index: str, query: dict[str, Any] | None = None) -> int:
    es.indices.refresh(index=index, ignore_unavailable=True, allow_no_indices=True)
    return int(es.count(index=index, ignore_unavailable=True, allow_no_indices=True,
                        query=query or None)["count"])  # fmt: skip


def lines_written(root: Path) -> int:
    return sum(sum(1 for _ in p.open("rb")) for p in root.rglob("*.log"))


def events_verdict(run: Run) -> dict[str, Any]:
    """Wait for the collector to catch up, then compare lines written with events stored."""
    live = run.demo_dir / "live"
    files_q = {"term": {"soc.source.id": "files"}}
    deadline = time.monotonic() + 240
    while True:
        written, stored = lines_written(live), count(run.es, run.indices.events, files_q)
        if stored == written or time.monotonic() > deadline:
            break
        time.sleep(3)
    dead = count(run.es, run.indices.deadletter)
    ok = written == stored and dead == 0
    return {"lines_written": written, "events_stored": stored, "dead_letters": dead,
            "verdict": "PASS" if ok else "FAIL"}  # fmt: skip


def duplicates_verdict(run: Run) -> dict[str, Any]:
    es, ind = run.es, run.indices
    by_id = {"ids": {"terms": {"field": "alert.id", "min_doc_count": 2, "size": 5}}}
    twice = es.search(index=ind.alerts, size=0, aggs=by_id)["aggregations"]["ids"]["buckets"]
    box = mailbox.Maildir(run.dir / "mail", create=True)
    caught = Counter(str(msg["Message-ID"]) for msg in box)
    sent = count(es, ind.outbox, {"exists": {"field": "sent"}})
    unsent = count(es, ind.outbox, {"bool": {"must_not": {"exists": {"field": "sent"}}}})
    ok = not twice and max(caught.values(), default=1) == 1 and sent == sum(caught.values())
    return {"alerts": count(es, ind.alerts), "alert_ids_twice": len(twice),
            "incidents": count(es, ind.incidents), "emails_sent": sent,
            "emails_caught": sum(caught.values()), "message_ids_twice":
            sum(1 for n in caught.values() if n > 1), "outbox_not_sent": unsent,
            "verdict": "PASS" if ok else "FAIL"}  # fmt: skip


def drill_verdicts(run: Run, timings: list[Timing]) -> list[dict[str, Any]]:
    out = []
    for drill in run.drills:
        during = [t for t in timings if drill["start"] <= t.start <= drill["end"]]
        missed = [t.scenario_id for t in during if t.alert is None]
        no_mail = [t.scenario_id for t in during if t.alert is not None and t.email is None]
        out.append({**drill, "scenarios_during": len(during), "missed": missed,
                    "without_email": no_mail,
                    "verdict": "PASS" if during and not missed and not no_mail else
                    ("NO SCENARIO" if not during else "FAIL")})  # fmt: skip
    return out


def latency(timings: list[Timing]) -> dict[str, Any]:
    result: dict[str, Any] = {"injections": len(timings)}
    for stage in ("alert", "incident", "email"):
        values = [v for t in timings if (v := t.seconds(stage)) is not None]
        result[stage] = {"n": len(values), "p50": percentile(values, 50),
                         "p95": percentile(values, 95),
                         "max": max(values, default=None)}  # fmt: skip
    return result


# ------------------------------------------------------------------ main
def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main() -> None:
    args = _args()
    # Stop cleanly (demo, node) on Ctrl-C or SIGTERM, even when started as a background job.
    signal.signal(signal.SIGINT, _interrupt)
    signal.signal(signal.SIGTERM, _interrupt)
    run = Run(args)
    footprint = Footprint(run.pids, run.es)
    observer = Observer(run)
    began = time.monotonic()
    try:
        run.start()
        footprint.start()
        observer.start()
        run.phase("latency", args.latency)
        run.hold_kill("detect", args.detect_down)
        run.hold_kill("smtp-sink", args.smtp_down)
        run.hold_kill("collect", args.collector_down)
        run.es_down(args.es_down)
        footprint.sample()
        hwm = {name: rss_kib(pid, "VmHWM") for name, pid in run.pids().items()}
        footprint.stop_event.set()
        live_seconds = (datetime.now(UTC) - run.live_start).total_seconds()
        run.stop_traffic()
        events = events_verdict(run)
        observer.stop_event.set()
        labels = labels_file.read(run.demo_dir / "live-labels.jsonl")
        # Scenarios that started at least a minute before the end (every one had its chance).
        cutoff = datetime.now(UTC) - timedelta(seconds=60)
        stored = {lb.scenario_id: timing(run.es, run.indices, lb) for lb in labels}
        mails = [scenario_mails(run.es, run.indices, lb) for lb in labels
                 if lb.start < cutoff and lb.start >= run.phases["latency"][0]
                 and lb.start <= run.phases["latency"][1]]  # fmt: skip
        timings = [t for t in observer.timings(labels) if t.start < cutoff]
        code = run.stop()
        dups = duplicates_verdict(run)
    finally:
        if run.proc is not None and run.proc.poll() is None:
            run.proc.kill()
        run.node.stop()
    lat_start, lat_end = run.phases["latency"]
    in_latency = [t for t in timings if lat_start <= t.start and t.start <= lat_end]
    result = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.node()}, {os.cpu_count()} cores, "
                   f"{os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**30:.0f} GiB",
        "conditions": {
            "scale": args.scale, "events_per_s": events["lines_written"] / live_seconds,
            "scenario_every_s": args.every, "es_heap": args.es_heap,
            "intervals": _intervals(), "retry_base_s": 5, "wall_s": time.monotonic() - began,
        },
        "latency": latency(in_latency),
        "injections": [_injection(t, stored[t.scenario_id]) for t in in_latency],
        "mails": _mails(mails),
        "events": events, "duplicates": dups, "drills": drill_verdicts(run, timings),
        "footprint": {"peak_rss_mib": {k: v / 1024 for k, v in footprint.peak.items()},
                      "vmhwm_mib": {k: v / 1024 for k, v in hwm.items()},
                      "peak_total_mib": footprint.peak_total / 1024,
                      "es_heap_peak_mib": footprint.heap_peak / 2**20,
                      "es_heap_max_mib": footprint.heap_max / 2**20},
        "demo_exit_code": code,
    }  # fmt: skip
    write_report(result)
    if not args.keep:
        shutil.rmtree(run.dir, ignore_errors=True)


def _mails(found: list[Any]) -> dict[str, Any] | None:
    """Incidents per scenario and "new" emails per incident and recipient (goal 1 and 1.0)."""
    rated = [m for m in found if m.per_incident is not None]
    if not found:
        return None
    return {"scenarios": len(found),
            "incidents_per_scenario": sum(m.incidents for m in found) / len(found),
            "emails_per_incident": (sum(m.per_incident for m in rated) / len(rated)
                                    if rated else 0.0),
            "by_scenario": [{"scenario": m.scenario_id, "kind": m.kind,
                             "incidents": m.incidents, "new_emails": m.new_emails}
                            for m in found]}  # fmt: skip


def _injection(seen: Timing, stored: Timing) -> dict[str, Any]:
    return {"scenario": seen.scenario_id, "kind": seen.kind, "rule": stored.rule,
            "alert_created_s": stored.seconds("alert"), "alert_s": seen.seconds("alert"),
            "incident_s": seen.seconds("incident"), "email_s": seen.seconds("email"),
            "email_sent_s": stored.seconds("email")}  # fmt: skip


def _intervals() -> dict[str, float]:
    from soc.demo.models import DemoOptions

    s = load_settings()
    demo = DemoOptions.from_settings(s)
    return {"detect_tick_s": s.detect_tick, "detect_settle_s": s.detect_settle,
            "detect_early": s.detect_early, "rule_window_s": 60.0,
            "pipeline_tick_s": s.demo_pipeline_tick, "collector_flush_s": 0.5,
            "file_poll_s": 0.5, "probe_interval_s": demo.probe_interval,
            "probe_report_every_s": demo.probe_report_every}  # fmt: skip


def write_report(result: dict[str, Any]) -> None:
    from e2e_report import e2e_markdown  # bench/ is on sys.path when run as a script

    REPORTS.mkdir(parents=True, exist_ok=True)
    (REPORTS / "e2e.json").write_text(json.dumps(result, indent=1, default=str))
    (REPORTS / "e2e.md").write_text(e2e_markdown(result))
    say(f"report: {REPORTS / 'e2e.md'}")
    print((REPORTS / "e2e.md").read_text())


def _args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--scale", type=float, default=20.0, help="Live volume (1.0 ≈ 3.2/s).")
    parser.add_argument("--every", type=float, default=30.0, help="Seconds between scenarios.")
    parser.add_argument("--latency", type=float, default=480.0, help="Seconds of injections.")
    parser.add_argument("--detect-down", type=float, default=150.0)
    parser.add_argument("--smtp-down", type=float, default=150.0)
    parser.add_argument("--collector-down", type=float, default=60.0)
    parser.add_argument("--es-down", type=float, default=60.0)
    parser.add_argument("--recovery", type=float, default=90.0)
    parser.add_argument("--es-heap", default="1g")
    parser.add_argument("--keep", action="store_true", help="Keep the run directory.")
    parser.add_argument("--quick", action="store_true", help="Shorter phases (a smoke run).")
    args = parser.parse_args()
    if args.quick:
        args.latency, args.detect_down, args.smtp_down = 180.0, 60.0, 45.0
        args.collector_down, args.es_down, args.recovery = 20.0, 30.0, 90.0
    return args


if __name__ == "__main__":
    main()
