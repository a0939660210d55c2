"""Benchmark of the incident-email path: queueing rate (route + render + outbox create) and sending
rate (claim + SMTP + record) for one notice per commune of N provinces, into a local aiosmtpd
server; and the drain time of the same backlog after an SMTP outage.

One command, one report (``bench/reports/notify.md``)::

    SOC_ES_URL=http://127.0.0.1:9250 .venv/bin/python bench/notify.py
    .venv/bin/python bench/notify.py --notices 300        # quicker

It writes into a fresh index prefix (``notifybench-<time>``) and deletes it afterwards.
"""

from __future__ import annotations

import argparse
import platform
import socket
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from soc.alerts.models import Severity
from soc.config import load_settings
from soc.es.client import ensure_elasticsearch, make_client
from soc.es.indices import Indices
from soc.es.templates import setup, teardown
from soc.localities import catalogue
from soc.notify.flows import Notifier
from soc.notify.models import IncidentNotice, NoticeEvent, SampleEvent, WardRef
from soc.notify.render import Renderer
from soc.notify.routing import parse_routes
from soc.notify.sink import read_inbox, start_sink
from soc.notify.smtp import SmtpSender

ROOT = Path(__file__).resolve().parent.parent
REPORT = ROOT / "bench" / "reports" / "notify.md"


def _port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _notices(count: int) -> list[IncidentNotice]:
    cat = catalogue()
    now = datetime.now(UTC)
    found: list[IncidentNotice] = []
    for ward in cat.wards[:count]:
        province = cat.province_of(ward)
        found.append(
            IncidentNotice(
                incident_id=f"bench-{ward.code}",
                event=NoticeEvent.NEW,
                title="OTP failures",
                severity=Severity.HIGH,
                province_code=province.code,
                province_name=province.name,
                wards=(WardRef(code=ward.code, name=ward.name),),
                service="otp-gateway",
                first_seen=now,
                alert_count=3,
                event_count=120,
                first_steps="otp",
                samples=(SampleEvent(timestamp=now, message="otp verify failed <b>x</b>"),),
            )
        )
    return found


def _routes_yaml() -> str:
    lines = ["routes:"]
    for province in catalogue().provinces:
        lines += [f"  - province: '{province.code}'", "    min_severity: low",
                  f"    contacts: [it-{province.code}@bench.example.vn]"]  # fmt: skip
    return "\n".join(lines) + "\n"


def _load() -> str:
    try:
        return Path("/proc/loadavg").read_text("ascii").split()[0]
    except OSError:
        return "unknown"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--notices", type=int, default=1000)
    args = parser.parse_args()
    settings = load_settings()
    ensure_elasticsearch(settings)
    es = make_client(settings)
    prefix = f"notifybench-{int(time.time())}"
    indices = Indices(prefix)
    port = _port()
    tuned = settings.model_copy(update={"index_prefix": prefix, "smtp_port": port,
                                        "notify_rate_limit": 10_000})  # fmt: skip
    routes = parse_routes(_routes_yaml(), tuned.notify_national_soc)
    notifier = Notifier(es, indices, tuned, routes, Renderer())
    notices = _notices(args.notices)
    try:
        setup(es, indices)
        with tempfile.TemporaryDirectory() as tmp:
            # Queued while SMTP is down: the outage backlog.
            started = time.perf_counter()
            report = notifier.notify(notices)
            queue_s = time.perf_counter() - started
            sink = start_sink(Path(tmp) / "mail", "127.0.0.1", port)
            try:
                started = time.perf_counter()
                sent = 0
                with SmtpSender(tuned) as sender:
                    while True:
                        batch = notifier.send_pending(sender, limit=500)
                        sent += batch.sent
                        if batch.sent + batch.retrying + batch.failed == 0:
                            break
                drain_s = time.perf_counter() - started
            finally:
                sink.stop()
            received = len(read_inbox(Path(tmp) / "mail"))
    finally:
        teardown(es, prefix)
    n = len(notices)
    text = f"""# Incident emails: queue and send rates

Run {datetime.now(UTC):%Y-%m-%d %H:%M} UTC on {platform.node()} ({platform.machine()},
Python {platform.python_version()}), Elasticsearch at {settings.effective_es_url}, aiosmtpd on
127.0.0.1 (Maildir on local disk). One notice per commune for the first {n} communes, one route
per province, rate limit off. Command: `.venv/bin/python bench/notify.py --notices {n}`.

| step | emails | seconds | per second |
| --- | ---: | ---: | ---: |
| queue (route, render vi, outbox create) while SMTP is down | {report.queued} | {queue_s:.1f} | {report.queued / queue_s:.1f} |
| drain the backlog once SMTP is back (claim, send, record) | {sent} | {drain_s:.1f} | {sent / drain_s:.1f} |

Emails received by the server: {received} (expected {report.queued}: each exactly once).
Each email costs one outbox create to queue and two compare-and-set updates to send (claim,
then sent); the outbox is refreshed once per batch. Load average at the end: {_load()}.
"""  # noqa: E501 - a Markdown table row
    REPORT.parent.mkdir(parents=True, exist_ok=True)
    REPORT.write_text(text, "utf-8")
    print(text)


if __name__ == "__main__":
    main()
