"""``/api/v1/rules``: list detection rules with their tuning, enable or disable one.

A thin layer over the detection service (``detectors.sigma.service``), which owns loading,
compiling and tuning; the rule set is compiled once per process, on first use. Reading is for
``admin`` and ``analyst`` (rules are national, not per province); changing is for ``admin``.
Upload, test, backtest and exceptions are on the command line (``soc rules``) until they get
routes here.
"""

from __future__ import annotations

import threading
from typing import Annotated

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from detectors.sigma import service as rules
from detectors.sigma.compiler import RuleSet
from detectors.sigma.models import Rule
from soc import problems
from soc.auth import audit
from soc.deps import Admin, Analyst, EsDep, IndicesDep, SettingsDep, client_ip
from soc.errors import NotFound, UnknownRuleError
from soc.incidents.models import utcnow

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
    audit.record(
        es,
        indices,
        actor=user,
        action="rule.enable" if on else "rule.disable",
        target_type="rule",
        target_id=rule.id,
        provinces=[],
        now=utcnow(),
        ip=client_ip(request),
    )
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
