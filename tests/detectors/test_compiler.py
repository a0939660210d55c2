"""Rule compilation: soc runs exactly what sigma-cli prints, and bad rules fail with file:line
while the other rules keep loading."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from detectors.sigma.compiler import load_rules
from detectors.sigma.pipeline import PIPELINE_FILE, RULES_DIR

SIGMA = Path(sys.executable).parent / "sigma"


def test_sigma_cli_prints_the_queries_soc_runs() -> None:
    assert SIGMA.exists(), "sigma-cli is a dependency of soc"
    done = subprocess.run(
        [str(SIGMA), "convert", "-t", "lucene", "-p", str(PIPELINE_FILE), str(RULES_DIR)],
        capture_output=True, text=True, check=True, timeout=120,
    )  # fmt: skip
    printed = sorted(line for line in done.stdout.splitlines() if line.strip())
    ours = sorted(r.query for r in load_rules().rules if r.query)
    assert printed == ours
    assert len(ours) >= 11


def _rules_dir(tmp_path: Path, **files: str) -> Path:
    shutil.copytree(RULES_DIR / "web", tmp_path / "web")
    for name, text in files.items():
        (tmp_path / "web" / name).write_text(text, encoding="utf-8")
    return tmp_path


GOOD = """title: Fine
id: 6a0e5d8c-1c1f-4a8e-9a43-6f2f3f0f6b11
status: test
description: ok
logsource:
  category: webserver
detection:
  sel:
    cs-method: POST
  condition: sel
level: low
"""


@pytest.mark.parametrize(
    ("text", "line", "words"),
    [
        ("title: x\nlevel: low\n  id: [a\n", 3, "broken YAML"),
        (GOOD.replace("cs-method: POST", "no_such.field: 1"), 9, "unknown field 'no_such.field'"),
        (GOOD.replace("cs-method: POST", "cs-method|explode: POST"), 9, "modifier 'explode'"),
        (GOOD.replace("cs-method: POST", "cs-uri-query|re: '(a+)+b'"), 9, "could explode"),
    ],
    ids=["yaml", "unknown-field", "unknown-modifier", "regex"],
)
def test_a_bad_rule_is_reported_with_file_and_line_and_others_still_load(
    tmp_path: Path, text: str, line: int, words: str
) -> None:
    root = _rules_dir(tmp_path, **{"bad.yml": text})
    loaded = load_rules(root)
    assert len(loaded.errors) == 1
    error = loaded.errors[0]
    assert error.path is not None
    assert error.path.endswith("web/bad.yml")
    assert error.line == line
    assert words in str(error)
    assert len(loaded.rules) == len(load_rules(RULES_DIR).rules) - len(
        [r for r in load_rules(RULES_DIR).rules if not r.path.startswith("rules/web")]
    )


def test_webserver_fields_map_to_ecs_and_values_are_lowercased() -> None:
    rules = load_rules()
    scanner = rules.get("web_scanner_user_agent").query
    assert scanner.startswith("event.category:web AND ")
    assert "user_agent.original:(*sqlmap*" in scanner
    traversal = rules.get("web_path_traversal").query
    assert "url.query:" in traversal
    assert "url.path:" in traversal
    assert rules.get("otp_verify_failure").query == (
        "service.name:otp\\-gateway AND (event.action:otp\\-verify AND event.outcome:failure)"
    )


def test_a_correlation_names_its_base_rules_and_the_base_rules_do_not_alert_alone() -> None:
    rules = load_rules()
    stuffing = rules.get("otp_credential_stuffing")
    assert stuffing.kind.value == "value_count"
    assert stuffing.value_field == "user.name"
    assert stuffing.group_by == ("source.ip", "service.name")
    assert [rid for rid, _ in stuffing.base] == [rules.get("otp_verify_failure").id]
    assert rules.get("otp_verify_failure").alerts is False
    assert rules.get("web_scanner_user_agent").alerts is True


def test_the_pipeline_comes_from_the_rules_directory(tmp_path: Path) -> None:
    """SOC_RULES_DIR's own pipeline/soc-ecs.yaml maps the fields, not the checkout's file."""
    root = _rules_dir(tmp_path, **{"fine.yml": GOOD})
    shipped = next(r for r in load_rules(root).rules if r.title == "Fine")
    assert "http.request.method:" in shipped.query
    own = (RULES_DIR / "pipeline" / "soc-ecs.yaml").read_text(encoding="utf-8")
    (root / "pipeline").mkdir()
    (root / "pipeline" / "soc-ecs.yaml").write_text(
        own.replace("cs-method: http.request.method", "cs-method: http.version"), encoding="utf-8"
    )
    mine = next(r for r in load_rules(root).rules if r.title == "Fine")
    assert "http.version:" in mine.query
    assert "http.request.method" not in mine.query
