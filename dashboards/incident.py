"""Incidents: the list, and one incident's page with its evidence, chart, emails and actions.

Reads go through ``soc.incidents.service`` (scoped: another province's incident is "not found"),
its alerts through ``soc.alerts.service``, sample raw events through ``soc.events.service.by_ids``
and its emails through ``soc.notify.service.listing``. Changes go through
``soc.incidents.flows.change`` with the version the page was rendered at, so a change made by
someone else in between is refused instead of overwritten. Routes only validate and call those.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from dashboards import charts, evidence
from dashboards.pages import Page, PageDep, form, render
from detectors.sigma.service import rules_dir
from soc import problems
from soc.alerts import service as alerts
from soc.alerts.models import Detector
from soc.deps import client_ip
from soc.errors import PreconditionRequired, RequestError
from soc.events import service as events
from soc.incidents import flows, lifecycle
from soc.incidents import service as incidents
from soc.incidents.models import OPEN_STATUSES, TRANSITIONS, Incident, IncidentStatus, utcnow
from soc.notify import service as outbox

router = APIRouter()

IncidentId = Annotated[str, Path(pattern=r"^[A-Za-z0-9_-]{1,64}$")]
_ASSIGNEE = r"^[A-Za-z0-9_.@-]{1,128}$"
#: Raw events shown as a sample; the full set stays one query away in Elasticsearch.
SAMPLE_EVENTS = 10
#: An anomaly incident's traffic chart: bucket when its alerts do not say, days of history.
SERIES_BUCKET = timedelta(minutes=5)
SERIES_DAYS = 7


@router.get("/incidents", response_class=HTMLResponse)
def listing(
    page: PageDep,
    status: IncidentStatus | None = None,
    open_only: Annotated[bool, Query(alias="open")] = True,
    q: Annotated[str | None, Query(max_length=256)] = None,
    done: Annotated[int | None, Query(ge=0)] = None,
) -> HTMLResponse:
    flt = incidents.IncidentFilter(
        status=status.value if status else None, open_only=open_only and status is None,
        q=q or None, size=100,
    )  # fmt: skip
    found = incidents.search(page.es, page.indices, flt, user=page.user)
    return render(page, "incidents.html", found=found, status=status, open_only=open_only, q=q,
                  done=done, statuses=list(IncidentStatus))  # fmt: skip


@router.post("/incidents/bulk")
async def bulk(request: Request, page: PageDep) -> Response:
    """Move or assign many incidents at once; each applies on its own, failures are listed."""
    posted = await form(request, page)
    page.require_triage()
    ids = [i for i in posted.all("ids") if re.fullmatch(r"[A-Za-z0-9_-]{1,64}", i)]
    if not ids or len(ids) > 100:
        raise RequestError("select 1 to 100 incidents")
    now, name = utcnow(), page.user.name
    if posted.get("action") == "assign":
        assignee = posted.get("assignee").strip() or None
        if assignee is not None and not _valid_assignee(assignee):
            raise RequestError("assignee: letters, digits and . _ @ - only, at most 128")
        apply: flows.Change = lambda i: lifecycle.assign(i, assignee, actor=name, now=now)  # noqa: E731
        action = "assign"
    else:
        try:
            to = IncidentStatus(posted.get("to"))
        except ValueError:
            raise RequestError("choose the status to move to") from None
        apply = lambda i: lifecycle.transition(i, to, actor=name, now=now)  # noqa: E731
        action = "transition"
    results = flows.bulk(page.es, page.indices, ids, caller=flows.Caller(page.user,
                         client_ip(request)), action=action, apply=apply,
                         status_of=problems.status_of)  # fmt: skip
    failed = [f"{r.id}: {r.detail}" for r in results if not r.ok]
    ok = len(results) - len(failed)
    if failed:
        return render(page, "bulk_result.html", 409, ok=ok, failed=failed, back="/incidents")
    return RedirectResponse(f"/incidents?done={ok}", status_code=303)


@router.get("/incidents/{incident_id}", response_class=HTMLResponse)
def show(page: PageDep, incident_id: IncidentId) -> HTMLResponse:
    incident = incidents.get(page.es, page.indices, incident_id, user=page.user)
    return render(page, "incident.html", **_evidence(page, incident))


def _evidence(page: Page, incident: Incident) -> dict[str, Any]:
    flt = alerts.AlertFilter(incident_id=incident.id, size=200)
    found, total = alerts.search(page.es, page.indices, flt, user=page.user)
    event_ids = [e for s in found for e in s.alert.event_ids]
    anomaly = [(s.alert.window.start, s.alert.explanation) for s in found
               if s.alert.detector is Detector.ANOMALY and s.alert.explanation]  # fmt: skip
    feature, unit, pts = charts.points(anomaly)
    emails = (
        [s.message for s in outbox.listing(page.es, page.indices, incident_id=incident.id)]
        if page.can_triage
        else []
    )
    sample = events.by_ids(page.es, page.indices, event_ids, limit=SAMPLE_EVENTS)
    kind = evidence.kind_of(found, sample)
    return {
        "incident": incident,
        "alerts": found,
        "alert_total": total,
        "events": sample,
        "kind": kind,
        "now_summary": evidence.summary(incident, found, total),
        "probe": _probe(page, incident) if kind == "probe" else None,
        "fields": evidence.rule_fields(found, rules_dir(page.settings)) if kind == "rule" else (),
        "matched": evidence.matched,
        "chart": charts.chart(feature, unit, pts),
        "series": _series(page, incident, found) if kind == "anomaly" else None,
        "emails": emails,
        "next_statuses": sorted(TRANSITIONS[incident.status], key=list(IncidentStatus).index),
    }


def _series(page: Page, incident: Incident, found: list[alerts.StoredAlert]) -> charts.Chart | None:
    """The incident's traffic over a useful window (3 h before it to 1 h after its last alert),
    the band of the same hours on the 7 days before, and its anomalous buckets marked."""
    windows = [s.alert.window for s in found]
    bucket = min((w.end - w.start for w in windows), default=SERIES_BUCKET) or SERIES_BUCKET
    start = incident.first_seen - timedelta(hours=3)
    end = min(incident.last_seen + timedelta(hours=1), utcnow())
    volume = events.volume(page.es, page.indices, province=incident.province_code,
                           ward=incident.ward_code, service=incident.service,
                           start=start - timedelta(days=SERIES_DAYS), end=end,
                           bucket=bucket)  # fmt: skip
    pts = charts.seasonal(volume, start, SERIES_DAYS)
    return charts.chart("events", str(int(bucket.total_seconds() // 60)), pts,
                        marked=[w.start for w in windows])  # fmt: skip


def _probe(page: Page, incident: Incident) -> evidence.ProbeEvidence:
    # An open incident: the checks up to now; a closed one: up to an hour after its last alert.
    until = (
        utcnow() if incident.status in OPEN_STATUSES else incident.last_seen + timedelta(hours=1)
    )
    checks = events.probe_checks(page.es, page.indices, province=incident.province_code,
                                 ward=incident.ward_code, service=incident.service,
                                 until=until)  # fmt: skip
    return evidence.probe(checks)


@router.post("/incidents/{incident_id}/{action}")
async def act(request: Request, page: PageDep, incident_id: IncidentId, action: str) -> Response:
    posted = await form(request, page)
    etag = posted.get("etag")
    if not etag:
        raise PreconditionRequired("the form lacks the version it was read at; reload the page")
    now, name = utcnow(), page.user.name
    details: dict[str, object] | None = None
    if action == "transition":
        try:
            to = IncidentStatus(posted.get("to"))
        except ValueError:
            raise RequestError("choose the status to move to") from None
        reason = posted.get("reason")[:2000]
        apply: flows.Change = lambda i: lifecycle.transition(  # noqa: E731
            i, to, actor=name, now=now, reason=reason
        )
        details = {"to": to.value}
    elif action == "assign":
        page.require_triage()
        assignee = posted.get("assignee").strip() or None
        if assignee is not None and not _valid_assignee(assignee):
            raise RequestError("assignee: letters, digits and . _ @ - only, at most 128")
        apply = lambda i: lifecycle.assign(i, assignee, actor=name, now=now)  # noqa: E731
        details = {"assignee": assignee}
    elif action == "comment":
        text = posted.get("text")
        if not text.strip() or len(text) > 10_000:
            raise RequestError("a comment needs 1 to 10000 characters")
        apply = lambda i: lifecycle.comment(i, text, actor=name, now=now)  # noqa: E731
    else:
        raise RequestError(f"unknown incident action {action[:40]!r}")
    flows.change(page.es, page.indices, incident_id, caller=flows.Caller(page.user,
                 client_ip(request)), if_match=etag, action=action,
                 apply=apply, details=details)  # fmt: skip
    return RedirectResponse(f"/incidents/{incident_id}", status_code=303)


def _valid_assignee(value: str) -> bool:
    return re.fullmatch(_ASSIGNEE, value) is not None
