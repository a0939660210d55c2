"""``/api/v1/incidents``: list, search, read, move through the lifecycle, assign, comment.

Routes only validate, resolve the caller and call ``soc.incidents.service`` or ``flows``. Who may
do what: every signed-in user reads within their provinces; ``provincial_it`` may also comment and
transition its own province's incidents; assigning, changing severity and bulk actions are for
``admin`` and ``analyst``. Single writes need ``If-Match`` with the ETag of the version read.
"""

from __future__ import annotations

from typing import Annotated, Literal

import orjson
from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from soc import problems
from soc.alerts.models import Severity
from soc.deps import Analyst, AnyUser, EsDep, IfMatch, IndicesDep, UtcDatetime, client_ip
from soc.errors import RequestError
from soc.incidents import flows, lifecycle, service
from soc.incidents.models import Incident, IncidentStatus, IncidentSummary, utcnow
from soc.services import Service

router = APIRouter(prefix="/incidents", tags=["incidents"], responses=problems.RESPONSES)

ProvinceCode = Annotated[str, Field(pattern=r"^[0-9]{2}$")]
IncidentId = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TransitionIn(Body):
    to: IncidentStatus
    reason: str = Field(default="", max_length=2000)


class AssignIn(Body):
    assignee: str | None = Field(max_length=128, pattern=r"^[A-Za-z0-9_.@-]+$")


class CommentIn(Body):
    text: str = Field(min_length=1, max_length=10_000)


class SeverityIn(Body):
    severity: Severity
    reason: str = Field(min_length=1, max_length=2000)


class BulkIn(Body):
    ids: list[IncidentId] = Field(min_length=1, max_length=100)
    action: Literal["transition", "assign"]
    to: IncidentStatus | None = None
    assignee: str | None = Field(default=None, max_length=128, pattern=r"^[A-Za-z0-9_.@-]+$")
    reason: str = Field(default="", max_length=2000)


class IncidentList(BaseModel):
    """A page of incidents without their history; ``GET /incidents/{id}`` has all of it."""

    items: list[IncidentSummary]
    total: int
    page: int
    size: int


class BulkItem(BaseModel):
    id: str
    ok: bool
    status: int
    detail: str = ""
    etag: str | None = None


class ProvinceDurations(BaseModel):
    province_code: str
    incidents: int
    open: int
    mtta_seconds: float | None
    mttr_seconds: float | None


@router.get("", response_model=IncidentList)
def list_incidents(
    es: EsDep,
    indices: IndicesDep,
    user: AnyUser,
    province: Annotated[str | None, Query(pattern=r"^[0-9]{2}$")] = None,
    ward: Annotated[str | None, Query(pattern=r"^[0-9]{5}$")] = None,
    service_name: Annotated[Service | None, Query(alias="service")] = None,
    severity: Severity | None = None,
    status: IncidentStatus | None = None,
    assignee: Annotated[str | None, Query(max_length=128)] = None,
    parent_id: Annotated[str | None, Query(max_length=64)] = None,
    open_only: Annotated[bool, Query(alias="open")] = False,
    since: UtcDatetime | None = None,
    until: UtcDatetime | None = None,
    q: Annotated[str | None, Query(max_length=256, description="Full-text search")] = None,
    page: Annotated[int, Query(ge=1, le=10_000)] = 1,
    size: Annotated[int, Query(ge=1, le=200)] = 50,
) -> Response:
    """Items are summaries (no alert ids, timeline or comments): the list is the API's busiest
    route, and its answer is written from the stored documents by orjson, not by a model."""
    if page * size > service.MAX_WINDOW:
        raise RequestError(f"page * size must stay within {service.MAX_WINDOW}: narrow the filter")
    flt = service.IncidentFilter(
        province=province,
        ward=ward,
        service=service_name.value if service_name else None,
        severity=severity.value if severity else None,
        status=status.value if status else None,
        assignee=assignee,
        parent_id=parent_id,
        open_only=open_only,
        since=since,
        until=until,
        q=q,
        page=page,
        size=size,
    )
    rows, total = service.search_rows(es, indices, flt, user=user)
    body = {"items": rows, "total": total, "page": page, "size": size}
    return Response(orjson.dumps(body), media_type="application/json")


@router.get("/metrics", response_model=list[ProvinceDurations])
def durations(es: EsDep, indices: IndicesDep, user: AnyUser) -> list[ProvinceDurations]:
    """MTTA and MTTR per province (seconds), within the caller's provinces."""
    rows = service.durations_by_province(es, indices, user=user)
    return [ProvinceDurations.model_validate(r) for r in rows]


@router.get("/{incident_id}", response_model=Incident)
def get_incident(
    incident_id: IncidentId, es: EsDep, indices: IndicesDep, user: AnyUser, response: Response
) -> Incident:
    incident = service.get(es, indices, incident_id, user=user)
    response.headers["ETag"] = incident.etag
    return incident


def _done(incident: Incident, response: Response) -> Incident:
    response.headers["ETag"] = incident.etag
    return incident


@router.post("/{incident_id}/transition", response_model=Incident)
def transition(
    incident_id: IncidentId,
    body: TransitionIn,
    es: EsDep,
    indices: IndicesDep,
    user: AnyUser,
    if_match: IfMatch,
    request: Request,
    response: Response,
) -> Incident:
    caller = flows.Caller(user, client_ip(request))
    now = utcnow()
    stored = flows.change(
        es,
        indices,
        incident_id,
        caller=caller,
        if_match=if_match,
        action="transition",
        apply=lambda i: lifecycle.transition(
            i, body.to, actor=user.name, now=now, reason=body.reason
        ),
        details={"to": body.to.value},
    )
    return _done(stored, response)


@router.post("/{incident_id}/assign", response_model=Incident)
def assign(
    incident_id: IncidentId,
    body: AssignIn,
    es: EsDep,
    indices: IndicesDep,
    user: Analyst,
    if_match: IfMatch,
    request: Request,
    response: Response,
) -> Incident:
    now = utcnow()
    stored = flows.change(
        es,
        indices,
        incident_id,
        caller=flows.Caller(user, client_ip(request)),
        if_match=if_match,
        action="assign",
        apply=lambda i: lifecycle.assign(i, body.assignee, actor=user.name, now=now),
        details={"assignee": body.assignee},
    )
    return _done(stored, response)


@router.post("/{incident_id}/comments", response_model=Incident)
def add_comment(
    incident_id: IncidentId,
    body: CommentIn,
    es: EsDep,
    indices: IndicesDep,
    user: AnyUser,
    if_match: IfMatch,
    request: Request,
    response: Response,
) -> Incident:
    now = utcnow()
    stored = flows.change(
        es,
        indices,
        incident_id,
        caller=flows.Caller(user, client_ip(request)),
        if_match=if_match,
        action="comment",
        apply=lambda i: lifecycle.comment(i, body.text, actor=user.name, now=now),
    )
    return _done(stored, response)


@router.post("/{incident_id}/severity", response_model=Incident)
def set_severity(
    incident_id: IncidentId,
    body: SeverityIn,
    es: EsDep,
    indices: IndicesDep,
    user: Analyst,
    if_match: IfMatch,
    request: Request,
    response: Response,
) -> Incident:
    now = utcnow()
    stored = flows.change(
        es,
        indices,
        incident_id,
        caller=flows.Caller(user, client_ip(request)),
        if_match=if_match,
        action="severity",
        apply=lambda i: lifecycle.set_severity(
            i, body.severity, reason=body.reason, actor=user.name, now=now
        ),
        details={"severity": body.severity.value, "reason": body.reason},
    )
    return _done(stored, response)


@router.post("/bulk", response_model=list[BulkItem])
def bulk(
    body: BulkIn, es: EsDep, indices: IndicesDep, user: Analyst, request: Request
) -> list[BulkItem]:
    """Transition or assign many incidents at once; each result says whether it applied."""
    now = utcnow()
    to = body.to
    if body.action == "transition":
        if to is None:
            raise RequestError("bulk transition needs 'to'")
        apply: flows.Change = lambda i: lifecycle.transition(  # noqa: E731
            i, to, actor=user.name, now=now, reason=body.reason
        )
    else:
        apply = lambda i: lifecycle.assign(i, body.assignee, actor=user.name, now=now)  # noqa: E731
    results = flows.bulk(
        es,
        indices,
        list(body.ids),
        caller=flows.Caller(user, client_ip(request)),
        action=body.action,
        apply=apply,
        status_of=problems.status_of,
    )
    return [
        BulkItem(id=r.id, ok=r.ok, status=r.status, detail=r.detail, etag=r.etag) for r in results
    ]
