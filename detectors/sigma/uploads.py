"""Rule uploads (rules page and ``POST /api/v1/rules``): validate Sigma YAML as the engine would
load it, then save.

Validation copies the rules directory to a scratch directory with the uploaded file added and loads
it with ``detectors.sigma.service``'s loader, so references between rules (correlations) resolve
exactly as they will in production, and any error names the uploaded file and line. A valid upload
is written under ``<rules dir>/uploaded/`` and disabled until an administrator enables it (after a
backtest). This module must not render anything or know about HTTP.
"""

from __future__ import annotations

import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from elasticsearch import Elasticsearch

from detectors.sigma import service as rules
from detectors.sigma.compiler import load_rules
from detectors.sigma.models import Rule
from soc.config import Settings
from soc.errors import RuleError

UPLOAD_DIR = "uploaded"
#: The one rule that names an uploaded file; the API's schema publishes this same pattern.
#: SigmaHQ's names (``web_sql_injection_in_access_logs.yml``) are kept as they are: letters,
#: digits, '_' and '-', ending in .yml; never a path, never a hidden file.
FILE_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_-]{0,120}\.yml$"
FILE_NAME_RULE = "letters, digits, '_' and '-' (at most 121), ending in .yml"
_NAME = re.compile(FILE_NAME_PATTERN)
MAX_RULE_BYTES = 64 * 1024


@dataclass(frozen=True)
class Upload:
    """The outcome of validating one uploaded rule file."""

    file_name: str
    errors: tuple[RuleError, ...]
    rules: tuple[Rule, ...]

    @property
    def ok(self) -> bool:
        return not self.errors and bool(self.rules)


def validate(*, settings: Settings, file_name: str, text: str) -> Upload:
    """Load the rules directory plus the uploaded file; report the uploaded file's errors only."""
    if not _NAME.fullmatch(file_name):
        error = RuleError(f"file name {file_name[:130]!r}: {FILE_NAME_RULE}")
        return Upload(file_name, (error,), ())
    if len(text.encode()) > MAX_RULE_BYTES:
        return Upload(file_name, (RuleError(f"at most {MAX_RULE_BYTES} bytes", file_name),), ())
    source = rules.rules_dir(settings)
    with tempfile.TemporaryDirectory(prefix="soc-rule-upload-") as scratch:
        root = Path(scratch) / "rules"
        shutil.copytree(source, root)
        target = root / UPLOAD_DIR / file_name
        target.parent.mkdir(exist_ok=True)
        target.write_text(text, encoding="utf-8")
        loaded = load_rules(root)
    mine = f"{UPLOAD_DIR}/{file_name}"
    scratch_paths = (f"{root.resolve()}/", f"{root}/")
    errors = tuple(
        RuleError(_unscratched(e.message, scratch_paths), file_name, e.line)
        for e in loaded.errors
        if _is(e.path, mine)
    )
    found = tuple(r for r in loaded.rules if _is(r.path, mine))
    if not errors and not found:
        errors = (RuleError("no Sigma rule in this file", file_name, 1),)
    return Upload(file_name, errors, found)


def _unscratched(message: str, scratch_paths: tuple[str, ...]) -> str:
    # Errors naming another rule ("duplicate id, also ...") name it as in the rules directory,
    # never by the server's scratch path.
    for prefix in scratch_paths:
        message = message.replace(prefix, "")
    return message


def _is(path: str | None, suffix: str) -> bool:
    return path is not None and path.replace("\\", "/").endswith(suffix)


def save(*, es: Elasticsearch, settings: Settings, upload: Upload, text: str, by: str) -> Path:
    """Write a valid upload into the rules directory, each of its rules disabled for now."""
    if not upload.ok:
        raise RuleError("refusing to save a rule file that does not validate", upload.file_name)
    target = rules.rules_dir(settings) / UPLOAD_DIR / upload.file_name
    target.parent.mkdir(parents=True, exist_ok=True)
    # Disable first: a detector reloading rules between the two steps must not run it unreviewed.
    for rule in upload.rules:
        rules.set_enabled(es=es, settings=settings, rule=rule, on=False, by=by)
    partial = target.with_suffix(".yml.part")
    partial.write_text(text, encoding="utf-8")
    partial.replace(target)
    return target
