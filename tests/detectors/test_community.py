"""Community (SigmaHQ-shaped) rules through the file and CLI paths: they load unchanged with
their file names, ``soc rules test`` tests what has tests and lists what has none, and a
backtest reports matched events as well as alerts.

The fixtures in ``tests/fixtures/sigmahq`` are written for these tests in SigmaHQ's shape
(underscored names, ``category: webserver`` fields, keyword searches, a Windows rule)."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from elasticsearch import Elasticsearch
from typer.testing import CliRunner

from detectors.base import iso
from detectors.sigma.pipeline import RULES_DIR
from detectors.sigma.state import StateStore
from soc.cli import app
from soc.es.indices import Indices
from soc.es.templates import setup
from soc.events.service import index_events

runner = CliRunner()
SIGMAHQ = Path(__file__).resolve().parents[1] / "fixtures" / "sigmahq"
RUNNABLE = ("web_sqli_keywords_in_uri_query.yml", "web_etc_passwd_keyword.yml")


def _env(es_url: str, prefix: str, rules: Path) -> dict[str, str]:
    return {"SOC_ES_URL": es_url, "SOC_INDEX_PREFIX": prefix, "SOC_LOG_LEVEL": "WARNING",
            "SOC_RULES_DIR": str(rules), "COLUMNS": "400"}  # fmt: skip


def _web_rules_with_community(tmp_path: Path) -> Path:
    """soc's scanner rule (its LOW and HIGH volume cases are ~6,000 events: tests/rules runs every
    shipped rule's) plus the runnable community rules, dropped in as files."""
    root = tmp_path / "rules"
    (root / "web").mkdir(parents=True)
    for name in ("scanner.yml", "scanner.tests.yaml"):
        shutil.copy(RULES_DIR / "web" / name, root / "web" / name)
    (root / "community").mkdir()
    for name in RUNNABLE:
        shutil.copy(SIGMAHQ / name, root / "community" / name)
    return root


def test_sigmahq_files_load_unchanged_with_their_names(
    es_url: str, prefix: str, tmp_path: Path
) -> None:
    env = _env(es_url, prefix, _web_rules_with_community(tmp_path))
    validated = runner.invoke(app, ["rules", "validate"], env=env)
    assert validated.exit_code == 0, validated.output
    assert "0 with errors" in validated.output
    listed = runner.invoke(app, ["rules", "list"], env=env).output
    for name in RUNNABLE:
        assert f"community/{name}:1" in listed
    converted = runner.invoke(app, ["rules", "convert", "4d0e6b8a-2f1c-4c55-9a7e-5b1f0f3c2a11"],
                              env=env)  # fmt: skip
    assert "url.query:(*union\\+select*" in converted.output


def test_rules_test_runs_what_has_tests_and_lists_the_rest(
    es_url: str, prefix: str, tmp_path: Path
) -> None:
    root = _web_rules_with_community(tmp_path)
    env = _env(es_url, prefix, root)
    done = runner.invoke(app, ["rules", "test"], env=env)
    assert done.exit_code == 0, done.output
    assert "FAIL" not in done.output
    ran = [line for line in done.output.splitlines() if line.startswith("ok ")]
    assert sum("web_scanner_user_agent" in line for line in ran) >= 4, "the shipped rule's ran"
    for name in RUNNABLE:
        assert f"community/{name}:1" in done.output
    assert done.output.count("no tests  ") == 2
    assert "2 without tests" in done.output
    # A failing case still fails the run, after every other rule was tested.
    tests = root / "web" / "scanner.tests.yaml"
    tests.write_text(tests.read_text().replace("quiet:", "fire:\n  - name: planted failure\n"
                     "    events:\n      - {service.name: web-portal}\nquiet:", 1))  # fmt: skip
    failed = runner.invoke(app, ["rules", "test"], env=env)
    assert failed.exit_code == 1, failed.output
    assert "FAIL web_scanner_user_agent  fire: planted failure" in failed.output
    assert "2 without tests" in failed.output


def _access(at: datetime, query: str, ip: str, status: int = 200) -> dict[str, Any]:
    return {
        "@timestamp": iso(at), "message": f'GET /tra-cuu?{query} HTTP/1.1" {status}',
        "event": {"kind": "event", "category": ["web"], "dataset": "nginx.access",
                  "ingested": iso(at + timedelta(seconds=1))},
        "service": {"name": "web-portal"}, "source": {"ip": ip},
        "http": {"request": {"method": "GET"}, "response": {"status_code": status}},
        "url": {"original": f"/tra-cuu?{query}", "path": "/tra-cuu", "query": query},
        "locality": {"province": {"code": "01", "name": "Thành phố Hà Nội"}},
    }  # fmt: skip


def test_backtest_reports_matched_events_and_a_sample(
    es: Elasticsearch, es_url: str, prefix: str, tmp_path: Path
) -> None:
    indices = Indices(prefix)
    setup(es, indices)
    start = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=30)
    attack = [_access(start + timedelta(seconds=i), f"id=1+UNION+SELECT+{i}", "198.51.100.7")
              for i in range(40)]  # fmt: skip
    missing = [_access(start, "id=1+union+select+x", "198.51.100.8", status=404)]
    plain = [_access(start, "q=giay+khai+sinh", "198.51.100.9")]
    assert not index_events(es, indices, attack + missing + plain, refresh=True).errors
    env = _env(es_url, prefix, _web_rules_with_community(tmp_path))
    done = runner.invoke(app, ["rules", "backtest", "4d0e6b8a-2f1c-4c55-9a7e-5b1f0f3c2a11",
                               "--since", "2h"], env=env)  # fmt: skip
    assert done.exit_code == 0, done.output
    assert ": 1 alerts over" in done.output, "40 lines in one window are one alert"
    assert "40 matched events; the first 5:" in done.output
    assert "source.ip=198.51.100.7" in done.output
    assert "union+select+0" in done.output.lower()
    assert "198.51.100.8" not in done.output, "the 404 is filtered out, as the rule says"


COOKIE_RULE = """title: Suspicious Cookie Value
id: 5e6f7a8b-1c2d-4e3f-9a0b-1c2d3e4f5a6b
status: test
description: A cookie field soc's access events do not carry.
author: soc tests
date: 2026-12-04
logsource:
    category: webserver
detection:
    selection:
        cs-cookie|contains: 'admin=true'
    condition: selection
falsepositives:
    - Unknown
level: low
"""


def test_import_reports_what_cannot_run_and_enables_nothing(
    es: Elasticsearch, es_url: str, prefix: str, tmp_path: Path
) -> None:
    folder = tmp_path / "community"
    for sub, name in (("web", RUNNABLE[0]), ("web", RUNNABLE[1]),
                      ("windows", "proc_creation_win_whoami_all.yml")):  # fmt: skip
        (folder / sub).mkdir(parents=True, exist_ok=True)
        shutil.copy(SIGMAHQ / name, folder / sub / name)
    (folder / "web" / "web_cookie_admin_flag.yml").write_text(COOKIE_RULE)
    root = tmp_path / "rules"
    shutil.copytree(RULES_DIR / "web", root / "web")
    env = _env(es_url, prefix, root)
    dry = runner.invoke(app, ["rules", "import", str(folder), "--dry-run"], env=env)
    assert dry.exit_code == 0, dry.output
    assert "2 files would be imported; 2 cannot run on soc's events; 0 with errors" in dry.output
    assert not (root / "imported").exists()
    done = runner.invoke(app, ["rules", "import", str(folder)], env=env)
    assert done.exit_code == 0, done.output
    assert ("cannot run  windows/proc_creation_win_whoami_all.yml:10: log source "
            "category=process_creation, product=windows is not mapped") in done.output  # fmt: skip
    assert ("cannot run  web/web_cookie_admin_flag.yml:11: fields not in soc's events: "
            "cs-cookie") in done.output  # fmt: skip
    for name in RUNNABLE:
        assert (root / "imported" / "web" / name).read_bytes() == (SIGMAHQ / name).read_bytes()
    assert not (root / "imported" / "windows").exists()
    listed = runner.invoke(app, ["rules", "health"], env=env)
    assert listed.exit_code == 0, listed.output
    store = StateStore(es, Indices(prefix))
    ids = ["4d0e6b8a-2f1c-4c55-9a7e-5b1f0f3c2a11", "9c7a3e51-6b0d-4e8f-8a2c-0d4e5f6a7b81"]
    assert [store.tuning(i).enabled for i in ids] == [False, False]
    enabled = runner.invoke(app, ["rules", "enable", *ids], env=env)
    assert enabled.exit_code == 0, enabled.output
    assert [store.tuning(i).enabled for i in ids] == [True, True]
    again = runner.invoke(app, ["rules", "import", str(folder)], env=env)
    assert again.exit_code == 0, again.output
    assert [store.tuning(i).enabled for i in ids] == [True, True], "re-import keeps the choice"


def test_import_names_a_broken_file_and_line(es_url: str, prefix: str, tmp_path: Path) -> None:
    folder = tmp_path / "community"
    folder.mkdir()
    (folder / "web_broken_rule.yml").write_text("title: Broken\nid: [\n")
    root = tmp_path / "rules"
    shutil.copytree(RULES_DIR / "web", root / "web")
    done = runner.invoke(app, ["rules", "import", str(folder)], env=_env(es_url, prefix, root))
    assert done.exit_code == 1
    assert "error       web_broken_rule.yml:3: broken YAML" in done.output
    assert "0 files imported" in done.output


def test_import_into_a_rule_set_folder(es_url: str, prefix: str, tmp_path: Path) -> None:
    folder = tmp_path / "community"
    folder.mkdir()
    shutil.copy(SIGMAHQ / RUNNABLE[0], folder / RUNNABLE[0])
    root = tmp_path / "rules"
    shutil.copytree(RULES_DIR / "web", root / "web")
    env = _env(es_url, prefix, root)
    done = runner.invoke(app, ["rules", "import", str(folder), "--into", "ecs"], env=env)
    assert done.exit_code == 0, done.output
    assert (root / "ecs" / RUNNABLE[0]).exists()
    escape = runner.invoke(app, ["rules", "import", str(folder), "--into", "../out"], env=env)
    assert escape.exit_code != 0
    assert "a folder name under the rules directory" in escape.output
    assert not (tmp_path / "out").exists()
