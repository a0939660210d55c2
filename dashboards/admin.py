"""Administrators' pages: detection rules (health, enable/disable, upload, backtest) and the outbox.

Rules come from ``detectors.sigma.service`` (load, health checkpoints, tuning, enable/disable,
backtest) and uploads are validated by :mod:`detectors.sigma.uploads`; emails from
``soc.notify.service.listing``. Every route here is for the ``admin`` role only. Routes only
validate and call those services.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from dashboards.pages import Page, PageDep, form, render
from detectors.sigma import service as rules
from detectors.sigma import uploads
from detectors.sigma.models import Rule
from detectors.sigma.search import Exception_
from soc.alerts import service as alerts
from soc.errors import NotFound, RequestError, RuleError, UnknownLocalityError, UnknownRuleError
from soc.incidents.models import utcnow
from soc.notify import service as outbox
from soc.notify.models import OutboxStatus

router = APIRouter()

BACKTEST_SPAN = timedelta(hours=24)
#: "Alerts per day" on the rules page counts the last day.
STATS_SPAN = timedelta(days=1)


def _rules_context(page: Page) -> dict[str, Any]:
    loaded = rules.load(settings=page.settings)
    health = rules.health(es=page.es, settings=page.settings, rules=loaded)
    tuning = {r.id: rules.tuning(es=page.es, settings=page.settings, rule=r) for r in loaded.rules}
    stats = alerts.stats_by_rule(page.es, page.indices, since=utcnow() - STATS_SPAN)
    return {"rules": loaded.rules, "load_errors": loaded.errors, "health": health,
            "tuning": tuning, "stats": stats, "now": utcnow(), "upload": None, "text": "",
            "file_name": "", "backtest": None, "saved": "", "preview": None,
            "rules_root": f"{rules.rules_dir(page.settings)}/"}  # fmt: skip


@router.get("/rules", response_class=HTMLResponse)
def rules_page(page: PageDep, request: Request) -> HTMLResponse:
    page.require_admin()
    context = _rules_context(page)
    context["saved"] = request.query_params.get("saved", "")
    return render(page, "rules.html", **context)


@router.post("/rules/upload")
async def upload(request: Request, page: PageDep) -> Response:
    posted = await form(request, page)
    page.require_admin()
    name, text = posted.get("file_name").strip(), posted.get("text")
    result = uploads.validate(settings=page.settings, file_name=name, text=text)
    if not result.ok:
        context = _rules_context(page)
        context.update(upload=result, text=text, file_name=name)
        return render(page, "rules.html", 422, **context)
    uploads.save(es=page.es, settings=page.settings, upload=result, text=text, by=page.user.name)
    return RedirectResponse(f"/rules?saved={name}", status_code=303)


def _rule(page: Page, rule_id: str) -> Rule:
    try:
        return rules.load(settings=page.settings).get(rule_id)
    except UnknownRuleError:
        raise NotFound(f"no rule {rule_id[:80]!r}") from None


@router.post("/rules/{rule_id}/exception")
async def add_exception(request: Request, page: PageDep, rule_id: str) -> Response:
    """Suppress a rule's matches where a field has a value, until an expiry (a reason required)."""
    posted = await form(request, page)
    page.require_admin()
    rule = _rule(page, rule_id)
    try:
        days = float(posted.get("days", "7"))
    except ValueError:
        raise RequestError("exception: 'days' must be a number") from None
    if not 0 < days <= 365:
        raise RequestError("exception: between 0 and 365 days")
    exception = Exception_(
        field=posted.get("field").strip()[:200],
        value=posted.get("value")[:1000],
        reason=posted.get("reason")[:2000],
        author=page.user.name,
        expires=utcnow() + timedelta(days=days),
    )
    try:
        if posted.get("action") == "preview":  # backtest with the exception, store nothing
            current = rules.tuning(es=page.es, settings=page.settings, rule=rule)
            candidate = rules.with_exception(current, rule, exception)
            result = rules.backtest(es=page.es, settings=page.settings, rule=rule,
                                    since=BACKTEST_SPAN, tuning=candidate)  # fmt: skip
            context = _rules_context(page)
            context.update(backtest=result, preview_exception=exception, preview_days=days,
                           preview={"rule_id": rule.id, "kind": "exception"})  # fmt: skip
            return render(page, "rules.html", **context)
        rules.add_exception(es=page.es, settings=page.settings, rule=rule, exception=exception)
    except RuleError as exc:
        raise RequestError(f"exception not added: {exc.message}") from None
    return RedirectResponse("/rules", status_code=303)


@router.post("/rules/{rule_id}/threshold")
async def threshold(request: Request, page: PageDep, rule_id: str) -> Response:
    """A correlation's threshold for one province: ``preview`` backtests the change over the last
    24 h without saving it; ``save`` stores it (an empty count resets to the rule's own)."""
    posted = await form(request, page)
    page.require_admin()
    rule = _rule(page, rule_id)
    province, raw = posted.get("province").strip(), posted.get("count").strip()
    try:
        count = int(raw) if raw else None
    except ValueError:
        raise RequestError("threshold: the count must be a whole number") from None
    try:
        current = rules.tuning(es=page.es, settings=page.settings, rule=rule)
        candidate = rules.with_threshold(current, rule, province, count)
        if posted.get("action") == "save":
            rules.set_threshold(es=page.es, settings=page.settings, rule=rule, province=province,
                                count=count, by=page.user.name)  # fmt: skip
            return RedirectResponse(f"/rules?saved={rule.title[:80]}", status_code=303)
        result = rules.backtest(es=page.es, settings=page.settings, rule=rule,
                                since=BACKTEST_SPAN, tuning=candidate)  # fmt: skip
    except (RuleError, UnknownLocalityError) as exc:
        raise RequestError(f"threshold not changed: {exc}") from None
    context = _rules_context(page)
    context.update(backtest=result, preview={"rule_id": rule.id, "province": province,
                                             "count": raw})  # fmt: skip
    return render(page, "rules.html", **context)


@router.post("/rules/{rule_id}/{action}")
async def rule_action(request: Request, page: PageDep, rule_id: str, action: str) -> Response:
    await form(request, page)
    page.require_admin()
    rule = _rule(page, rule_id)
    if action == "backtest":
        try:
            result = rules.backtest(
                es=page.es, settings=page.settings, rule=rule, since=BACKTEST_SPAN
            )
        except RuleError as exc:
            raise RequestError(f"backtest failed: {exc}") from None
        context = _rules_context(page)
        context["backtest"] = result
        return render(page, "rules.html", **context)
    if action not in ("enable", "disable"):
        return render(page, "error.html", 400, status_code=400, detail="unknown rule action")
    rules.set_enabled(es=page.es, settings=page.settings, rule=rule, on=action == "enable",
                      by=page.user.name)  # fmt: skip
    return RedirectResponse("/rules", status_code=303)


@router.get("/outbox", response_class=HTMLResponse)
def outbox_page(page: PageDep, status: OutboxStatus | None = None) -> HTMLResponse:
    page.require_admin()
    found = outbox.listing(page.es, page.indices, status=status, limit=200)
    return render(page, "outbox.html", messages=[s.message for s in found], status=status,
                  statuses=list(OutboxStatus))  # fmt: skip
