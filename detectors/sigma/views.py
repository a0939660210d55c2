"""``/api/v1/rules``: list detection rules with their tuning; enable, disable, upload, test,
backtest them and add exceptions.

A thin layer over the detection service (``detectors.sigma.service``, ``.uploads``), which owns
loading, compiling, testing and tuning; the rule set is compiled once per process, on first use,
and again after an upload. Reading is for ``admin`` and ``analyst`` (rules are national, not per
province); changing, uploading and backtesting are for ``admin``. Every change is audited.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from detectors.sigma import service as rules
from detectors.sigma import uploads
from detectors.sigma.compiler import RuleSet
from detectors.sigma.models import Rule
from detectors.sigma.search import Exception_
from soc import problems
from soc.auth import audit
from soc.deps import Admin, Analyst, EsDep, IndicesDep, SettingsDep, client_ip
from soc.errors import NotFound, RuleError, UnknownRuleError

router = APIRouter(prefix="/rules", tags=["rules"], responses=problems.RESPONSES)
_lock = threading.Lock()

RuleKey = Annotated[str, Field(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9_.:-]+$")]


class RuleRead(BaseModel):
    id: str
    name: str | None
    title: str
    level: str
    kind: str
    path: str
    line: int
    enabled: bool
    exceptions: int


def _ruleset(request: Request) -> RuleSet:
    with _lock:
        found: RuleSet | None = getattr(request.app.state, "rules", None)
        if found is None:
            found = rules.load(settings=request.app.state.settings)
            request.app.state.rules = found
        return found


def _rule(request: Request, key: str) -> Rule:
    try:
        return _ruleset(request).get(key)
    except UnknownRuleError:
        raise NotFound(f"no rule {key!r}") from None


def _read(rule: Rule, es: EsDep, settings: SettingsDep) -> RuleRead:
    tuning = rules.tuning(es=es, settings=settings, rule=rule)
    return RuleRead(
        id=rule.id,
        name=rule.name,
        title=rule.title,
        level=str(rule.level),
        kind=str(rule.kind),
        path=rule.path,
        line=rule.line,
        enabled=tuning.enabled,
        exceptions=len(tuning.exceptions),
    )


@router.get("", response_model=list[RuleRead])
def list_rules(request: Request, es: EsDep, settings: SettingsDep, user: Analyst) -> list[RuleRead]:
    return [_read(r, es, settings) for r in _ruleset(request).runnable]


@router.get("/{key}", response_model=RuleRead)
def get_rule(
    key: RuleKey, request: Request, es: EsDep, settings: SettingsDep, user: Analyst
) -> RuleRead:
    return _read(_rule(request, key), es, settings)


def _audit(request: Request, es: EsDep, indices: IndicesDep, user: Admin, action: str,
           rule_id: str) -> None:  # fmt: skip
    audit.record(es, indices, actor=user, action=action, target_type="rule", target_id=rule_id,
                 provinces=[], now=datetime.now(UTC), ip=client_ip(request))  # fmt: skip


def _switch(
    key: str,
    on: bool,
    request: Request,
    es: EsDep,
    indices: IndicesDep,
    settings: SettingsDep,
    user: Admin,
) -> RuleRead:
    rule = _rule(request, key)
    rules.set_enabled(es=es, settings=settings, rule=rule, on=on, by=user.name)
    _audit(request, es, indices, user, "rule.enable" if on else "rule.disable", rule.id)
    return _read(rule, es, settings)


@router.post("/{key}/enable", response_model=RuleRead)
def enable(
    key: RuleKey,
    request: Request,
    es: EsDep,
    indices: IndicesDep,
    settings: SettingsDep,
    user: Admin,
) -> RuleRead:
    return _switch(key, True, request, es, indices, settings, user)


@router.post("/{key}/disable", response_model=RuleRead)
def disable(
    key: RuleKey,
    request: Request,
    es: EsDep,
    indices: IndicesDep,
    settings: SettingsDep,
    user: Admin,
) -> RuleRead:
    return _switch(key, False, request, es, indices, settings, user)


# ------------------------------------------------------------------ upload, test, backtest
class RuleUpload(BaseModel):
    file_name: str = Field(
        min_length=1,
        max_length=125,
        pattern=uploads.FILE_NAME_PATTERN,
        examples=["otp-flood.yml", "web_sql_injection_in_access_logs.yml"],
    )
    text: str = Field(min_length=1, max_length=uploads.MAX_RULE_BYTES)


class Uploaded(BaseModel):
    file_name: str
    rules: list[RuleRead]


@router.post("", response_model=Uploaded, status_code=201)
def upload(
    body: RuleUpload,
    request: Request,
    es: EsDep,
    indices: IndicesDep,
    settings: SettingsDep,
    user: Admin,
) -> Uploaded:
    """Validate a Sigma rule file with every other rule, then save it, disabled until enabled.

    An invalid file answers 422 naming the file and line of each error; nothing is saved.
    """
    result = uploads.validate(settings=settings, file_name=body.file_name, text=body.text)
    if not result.ok:
        raise RuleError("; ".join(str(e) for e in result.errors))  # each names file:line
    uploads.save(es=es, settings=settings, upload=result, text=body.text, by=user.name)
    with _lock:
        request.app.state.rules = None  # the next read compiles the new file too
    for rule in result.rules:
        _audit(request, es, indices, user, "rule.upload", rule.id)
    return Uploaded(file_name=body.file_name,
                    rules=[_read(r, es, settings) for r in result.rules])  # fmt: skip


class CaseRead(BaseModel):
    name: str
    expect: str
    findings: int
    passed: bool


@router.post("/{key}/test", response_model=list[CaseRead])
def run_rule_tests(key: RuleKey, request: Request, es: EsDep, settings: SettingsDep,
         user: Admin) -> list[CaseRead]:  # fmt: skip
    """Run the rule's must-fire and must-not-fire events in a scratch index (deleted after)."""
    results = rules.test_rule(es=es, settings=settings, rule=_rule(request, key))
    return [CaseRead(name=r.name, expect=r.expect, findings=r.findings, passed=r.passed)
            for r in results]  # fmt: skip


class BacktestRequest(BaseModel):
    hours: int = Field(default=24, ge=1, le=7 * 24)


class BacktestRead(BaseModel):
    rule_id: str
    hours: int
    windows: int
    alerts: int
    by_locality: dict[str, int]
    #: Events the rule's query matched (one alert may stand for hundreds of them), and a sample.
    events: int
    sample: list[dict[str, Any]]


@router.post("/{key}/backtest", response_model=BacktestRead)
def backtest(key: RuleKey, body: BacktestRequest, request: Request, es: EsDep,
             settings: SettingsDep, user: Admin) -> BacktestRead:  # fmt: skip
    """How many alerts the rule would have raised over the past hours, per province. Writes
    nothing."""
    found = rules.backtest(es=es, settings=settings, rule=_rule(request, key),
                           since=timedelta(hours=body.hours))  # fmt: skip
    return BacktestRead(rule_id=found.rule_id, hours=body.hours, windows=found.windows,
                        alerts=found.alerts, by_locality=dict(found.by_locality),
                        events=found.events, sample=list(found.sample))  # fmt: skip


# ------------------------------------------------------------------ exceptions
class ExceptionWrite(BaseModel):
    field: str = Field(min_length=1, max_length=200, examples=["source.ip"])
    value: str = Field(min_length=1, max_length=1024)
    reason: str = Field(min_length=1, max_length=2000)
    expires_in_hours: int = Field(ge=1, le=90 * 24)


class ExceptionRead(BaseModel):
    field: str
    value: str
    reason: str
    author: str
    expires: datetime


@router.get("/{key}/exceptions", response_model=list[ExceptionRead])
def list_exceptions(key: RuleKey, request: Request, es: EsDep, settings: SettingsDep,
                    user: Analyst) -> list[ExceptionRead]:  # fmt: skip
    tuned = rules.tuning(es=es, settings=settings, rule=_rule(request, key))
    return [_exception(e) for e in tuned.exceptions]


@router.post("/{key}/exceptions", response_model=list[ExceptionRead], status_code=201)
def add_exception(
    key: RuleKey,
    body: ExceptionWrite,
    request: Request,
    es: EsDep,
    indices: IndicesDep,
    settings: SettingsDep,
    user: Admin,
) -> list[ExceptionRead]:
    """Suppress the rule's matches where ``field`` equals ``value``, with a reason and an expiry."""
    rule = _rule(request, key)
    expires = datetime.now(UTC) + timedelta(hours=body.expires_in_hours)
    made = Exception_(field=body.field, value=body.value, reason=body.reason,
                      author=user.name, expires=expires)  # fmt: skip
    rules.add_exception(es=es, settings=settings, rule=rule, exception=made)
    _audit(request, es, indices, user, "rule.exception", rule.id)
    return [_exception(e) for e in rules.tuning(es=es, settings=settings, rule=rule).exceptions]


def _exception(e: Exception_) -> ExceptionRead:
    return ExceptionRead(field=e.field, value=e.value, reason=e.reason, author=e.author,
                         expires=e.expires)  # fmt: skip
