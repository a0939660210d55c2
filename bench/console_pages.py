"""Benchmark of the console's pages: p50/p95 server time of the national board, a province, the
alert queue, the incident list and an incident page, with M incidents in the index.

One command, one report (``bench/reports/console-pages.md``)::

    SOC_ES_URL=http://127.0.0.1:9250 .venv/bin/python bench/console_pages.py
    .venv/bin/python bench/console_pages.py --incidents 2000 --requests 20   # quicker

It serves ``create_app`` with uvicorn in a thread on a free port, signs in through the login form
like a browser, writes into a fresh index prefix (``dashbench-<time>``) and deletes it afterwards.
Incidents are generated like bench/api_incidents.py's (same shape, random provinces/communes).
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import socket
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx2
import uvicorn
import yaml

from soc.app import create_app
from soc.auth import service as auth
from soc.config import load_settings
from soc.es.client import make_client, wait_until_healthy
from soc.es.indices import Indices
from soc.es.templates import setup, teardown

ROOT = Path(__file__).resolve().parent.parent
REPORT = ROOT / "bench" / "reports" / "console-pages.md"
sys.path.insert(0, str(ROOT / "bench"))
from api_incidents import _pct, load  # noqa: E402  (same generated incidents, same percentiles)

PASSWORD = "bench-password-not-secret"  # noqa: S105 (a throwaway user of a throwaway prefix)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _sign_in(base: str) -> httpx2.Client:
    client = httpx2.Client(base_url=base, timeout=60)
    page = client.get("/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert token is not None
    done = client.post("/login", data={"csrf_token": token.group(1), "username": "bench",
                                       "password": PASSWORD, "next": "/"})  # fmt: skip
    assert done.status_code == 303, done.text
    return client


def _time(client: httpx2.Client, path: str, n: int) -> tuple[float, float]:
    took = []
    for _ in range(n):
        started = time.perf_counter()
        got = client.get(path)
        took.append(time.perf_counter() - started)
        assert got.status_code == 200, (path, got.status_code)
    return _pct(took)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--incidents", type=int, default=20_000)
    parser.add_argument("--requests", type=int, default=50)
    args = parser.parse_args()
    prefix = f"dashbench-{int(time.time())}"
    work = Path(tempfile.mkdtemp())
    users = work / "users.yaml"
    users.write_text(yaml.safe_dump({"users": [{"name": "bench", "role": "admin",
                     "password_hash": auth.hash_password(PASSWORD)}]}))  # fmt: skip
    settings = load_settings(index_prefix=prefix, var_dir=work, auth_users_file=users)
    es = make_client(settings).options(request_timeout=120)
    wait_until_healthy(es, timeout=60)
    indices = Indices(prefix)
    setup(es, indices, replicas=settings.replicas)
    server = uvicorn.Server(uvicorn.Config(create_app(settings, es), host="127.0.0.1",
                                           port=_free_port(), log_level="warning"))  # fmt: skip
    thread = threading.Thread(target=server.run, daemon=True)
    try:
        load_s = load(es, indices, args.incidents)
        thread.start()
        while not server.started:
            time.sleep(0.05)
        client = _sign_in(f"http://127.0.0.1:{server.config.port}")
        some = es.search(index=indices.incidents, size=1, source=False)["hits"]["hits"][0]["_id"]
        pages = {
            "national board `/`": "/",
            "board, one service `/?service=vneid`": "/?service=vneid",
            "province `/provinces/01`": "/provinces/01",
            "alert queue `/alerts`": "/alerts",
            "incident list `/incidents`": "/incidents",
            "incident page `/incidents/{id}`": f"/incidents/{some}",
        }
        results = {name: _time(client, path, args.requests) for name, path in pages.items()}
        write_report(args, load_s, results)
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        teardown(es, prefix)


def write_report(
    args: argparse.Namespace, load_s: float, results: dict[str, tuple[float, float]]
) -> None:
    lines = [
        "# Dashboards: page times",
        "",
        f"- when: {datetime.now(UTC).isoformat(timespec='seconds')}",
        f"- machine: {platform.machine()}, {platform.system()}, "
        f"Python {platform.python_version()},",
        f"  {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at the end of the run",
        f"- incidents in the index: {args.incidents} (bulk-loaded in {load_s:.1f} s)",
        f"- {args.requests} sequential requests per page, one signed-in admin (sees all 34",
        "  provinces), uvicorn in-process, one worker; time = full HTTP round trip",
        "",
        "| page | p50 ms | p95 ms |",
        "| --- | ---: | ---: |",
        *(f"| {name} | {p50:.1f} | {p95:.1f} |" for name, (p50, p95) in results.items()),
        "",
        "The board and province pages compute every province's and commune's colour per request",
        "(`soc.status.service.board`: two aggregations over incidents and probe events, 3,321",
        "communes, never cached) plus the open-incident counts; the other pages are one or two",
        "searches. The Elasticsearch node and this process share the machine.",
    ]
    REPORT.parent.mkdir(parents=True, exist_ok=True)
    REPORT.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
