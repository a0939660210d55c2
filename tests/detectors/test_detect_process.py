"""The gap drill with a real process: ``soc detect run`` as a subprocess on 2-second rules while
events arrive, SIGKILLed for several intervals, restarted; every window is evaluated exactly
once and the alerts are those of an uninterrupted evaluation of the same events."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from elasticsearch import Elasticsearch

from detectors.base import floor, iso
from detectors.sigma.compiler import load_rules
from detectors.sigma.runner import Engine
from detectors.sigma.search import Options
from detectors.sigma.state import Checkpoint, StateStore
from soc.config import PROJECT_ROOT
from soc.es.indices import Indices
from soc.es.templates import setup
from soc.events.service import index_events

STEP = timedelta(seconds=2)
RULES = {
    "scan.yml": """title: Drill scanner
id: 6b0f4a52-5d1e-4d53-9a3c-2f1d3c0e0a01
status: test
description: a scanner user agent, every 2 seconds
logsource:
  category: webserver
detection:
  sel:
    c-useragent|contains: sqlmap
  condition: sel
falsepositives: [drill]
level: high
interval: 2s
""",
    "fail.yml": """title: Drill OTP failure
id: 6b0f4a52-5d1e-4d53-9a3c-2f1d3c0e0a02
name: drill_otp_failure
status: test
description: an OTP verify failure
logsource:
  product: soc
  service: otp
detection:
  sel:
    event.action: otp-verify
    event.outcome: failure
  condition: sel
falsepositives: [drill]
level: low
interval: 2s
""",
    "burst.correlation.yaml": """title: Drill OTP burst
id: 6b0f4a52-5d1e-4d53-9a3c-2f1d3c0e0a03
status: test
description: three OTP failures of one account within 6 seconds
correlation:
  type: event_count
  rules: [drill_otp_failure]
  group-by: [user.name]
  timespan: 6s
  condition:
    gte: 3
falsepositives: [drill]
level: medium
interval: 2s
""",
}


def _docs(now: datetime, n: int) -> list[dict[str, Any]]:
    base: dict[str, Any] = {
        "@timestamp": iso(now),
        "locality": {"province": {"code": "01"}},
        "source": {"ip": f"198.51.100.{n % 200}"},
    }
    scanner = {**base, "service": {"name": "web-portal"}, "user_agent": {"original": "sqlmap/1.8"},
               "event": {"kind": "event", "category": ["web"], "ingested": iso(now)}}  # fmt: skip
    otp = {**base, "service": {"name": "otp-gateway"}, "user": {"name": f"citizen{n // 8 % 3}"},
           "event": {"kind": "event", "category": ["authentication"], "action": "otp-verify",
                     "outcome": "failure", "ingested": iso(now)}}  # fmt: skip
    return [scanner, otp] if n % 3 == 0 else [otp]


def _start(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    soc = str(PROJECT_ROOT / ".venv" / "bin" / "soc")
    with log.open("ab") as out:
        return subprocess.Popen([soc, "detect", "run"], env=env, stdout=out, stderr=out)


def _alerts(es: Elasticsearch, indices: Indices) -> dict[str, tuple[Any, ...]]:
    es.indices.refresh(index=indices.alerts)
    hits = es.search(index=indices.alerts, size=2000, query={"match_all": {}})["hits"]["hits"]
    return {h["_id"]: (h["_source"]["rule"]["id"], h["_source"]["window"]["start"],
                       h["_source"]["alert"]["count"]) for h in hits}  # fmt: skip


def test_soc_detect_killed_for_several_intervals_catches_up_every_window_once(
    es: Elasticsearch, es_url: str, prefix: str, tmp_path: Path
) -> None:
    folder = tmp_path / "rules"
    folder.mkdir()
    for name, text in RULES.items():
        (folder / name).write_text(text, encoding="utf-8")
    rules = list(load_rules(folder).runnable)
    assert len(rules) == 2
    live, reference = Indices(prefix), Indices(f"{prefix}-ref")
    setup(es, live)
    setup(es, reference)
    first = floor(datetime.now(UTC), STEP) + 2 * STEP
    StateStore(es, live).save_checkpoints([Checkpoint(r.id, done_until=first) for r in rules],
                                          datetime.now(UTC))  # fmt: skip
    env = {**os.environ, "SOC_ES_URL": es_url, "SOC_INDEX_PREFIX": prefix,
           "SOC_RULES_DIR": str(folder), "SOC_DETECT_TICK": "0.5", "SOC_DETECT_SETTLE": "1",
           "SOC_DETECT_LEASE_TTL": "3", "SOC_DETECT_CORRELATION_LOOKBACK": "4",
           "SOC_LOG_LEVEL": "INFO"}  # fmt: skip
    log = tmp_path / "detect.log"
    sent: list[dict[str, Any]] = []

    def feed(seconds: float) -> None:
        until = time.monotonic() + seconds
        while time.monotonic() < until:
            docs = _docs(datetime.now(UTC), len(sent))
            index_events(es, live, docs, refresh=True)
            sent.extend(docs)
            time.sleep(0.25)

    while datetime.now(UTC) < first:
        time.sleep(0.1)
    proc = _start(env, log)
    try:
        feed(8)
        proc.send_signal(signal.SIGKILL)  # no clean-up: the lease stays until it expires
        proc.wait(timeout=10)
        killed = datetime.now(UTC)
        feed(9)  # four or more 2-second windows pass with nobody evaluating them
        proc = _start(env, log)
        feed(6)
        last = floor(datetime.now(UTC), STEP) + STEP  # the window of the last event ends here
        store = StateStore(es, live)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            done = store.checkpoints([r.id for r in rules])
            if all(cp.done_until is not None and cp.done_until >= last for cp in done.values()):
                break
            time.sleep(0.5)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    output = log.read_text(encoding="utf-8", errors="replace")
    assert proc.returncode is not None
    checkpoints = StateStore(es, live).checkpoints([r.id for r in rules])
    for cp in checkpoints.values():
        assert cp.done_until is not None, output[-2000:]
        assert cp.done_until >= last, output[-2000:]
        expected = (cp.done_until - first) // STEP
        assert cp.windows == expected, "every 2-second window evaluated exactly once"
        assert not cp.error
    assert killed < last - 4 * STEP
    # The restarted process caught the gap up in one tick: 2 rules x at least 4 windows.
    ticks = [int(m) for m in re.findall(r"tick searches=\d+ windows=(\d+)", output)]
    assert max(ticks) >= 8, output[-2000:]

    # The same events evaluated without interruption, window by window, up to the same point.
    index_events(es, reference, sent, refresh=True)
    until = min(cp.done_until for cp in checkpoints.values() if cp.done_until)
    engine = Engine(es, reference, rules, start=first, settle=timedelta(seconds=1),
                    options=Options(correlation_lookback=timedelta(seconds=4)))  # fmt: skip
    at = first + STEP
    while at <= until:
        engine.tick(at + timedelta(seconds=1))
        at += STEP
    drilled = {k: v for k, v in _alerts(es, live).items() if v[1] < iso(until)}
    uninterrupted = _alerts(es, reference)
    assert len(uninterrupted) >= 10
    assert {v[0] for v in uninterrupted.values()} == {r.id for r in rules}
    assert drilled == uninterrupted
