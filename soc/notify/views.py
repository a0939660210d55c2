"""``/api/v1/notify``: the outbox (failures visible, not swallowed) and the email routes.

Routes only validate, resolve the caller and call ``soc.notify.service`` or ``routing``. Who may
do what: every signed-in user reads the outbox within their provinces (a provincial IT team sees
the emails about its own province, and why one failed); only ``admin`` reads, checks and replaces
the routes. A replaced routes file is validated first (errors name the line) and written whole,
so the notifier never reads half a file; the change is recorded in the audit trail.
"""

from __future__ import annotations

import os
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Query, Request
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from soc import problems
from soc.auth import audit
from soc.deps import Admin, AnyUser, EsDep, IndicesDep, SettingsDep, client_ip
from soc.errors import RequestError, RouteError
from soc.notify import service
from soc.notify.models import OutboxStatus
from soc.notify.routing import Routes, default_routes, load_routes, parse_routes

router = APIRouter(prefix="/notify", tags=["notify"], responses=problems.RESPONSES)


class Out(BaseModel):
    model_config = ConfigDict(frozen=True)


class OutboxItem(Out):
    message_id: str
    created: AwareDatetime
    event: str
    incident_ids: tuple[str, ...]
    province_codes: tuple[str, ...]
    recipient: str
    language: str
    subject: str
    status: OutboxStatus
    attempts: int
    next_attempt: AwareDatetime
    sent: AwareDatetime | None
    last_error: str | None


class ContactOut(Out):
    address: str
    language: str
    role: str


class RouteOut(Out):
    line: int
    province_code: str
    province_name: str
    ward_code: str | None
    service: str | None
    min_severity: str
    contacts: list[ContactOut]


class RoutesOut(Out):
    source: str
    national_soc: str
    routes: list[RouteOut]


class RoutesIn(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    yaml: str = Field(max_length=1_000_000, description="The whole routes file, as YAML.")


class Check(Out):
    valid: bool
    error: str | None = None
    line: int | None = None
    routes: int = 0


@router.get("/outbox", response_model=list[OutboxItem])
def outbox(
    es: EsDep,
    indices: IndicesDep,
    user: AnyUser,
    status: OutboxStatus | None = None,
    incident: Annotated[str | None, Query(max_length=200)] = None,
    size: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[OutboxItem]:
    """Emails in the outbox, newest attempt last; ``status=failed`` lists permanent failures."""
    found = service.listing(es, indices, status=status, incident_id=incident, limit=size,
                            provinces=user.province_scope())  # fmt: skip
    return [
        OutboxItem(
            recipient=s.message.recipient.address,
            language=s.message.recipient.language.value,
            **s.message.model_dump(
                include={
                    "message_id",
                    "created",
                    "event",
                    "incident_ids",
                    "province_codes",
                    "subject",
                    "status",
                    "attempts",
                    "next_attempt",
                    "sent",
                    "last_error",
                }
            ),
        )
        for s in found
    ]


def _routes_out(routes: Routes, source: str) -> RoutesOut:
    return RoutesOut(
        source=source,
        national_soc=routes.national.address,
        routes=[
            RouteOut(
                line=r.line,
                province_code=r.province_code,
                province_name=r.province_name,
                ward_code=r.ward_code,
                service=r.service,
                min_severity=r.min_severity.value,
                contacts=[
                    ContactOut(address=c.address, language=c.language.value, role=c.role.value)
                    for c in r.contacts
                ],
            )
            for r in routes.routes
        ],
    )


@router.get("/routes", response_model=RoutesOut)
def get_routes(settings: SettingsDep, user: Admin) -> RoutesOut:
    path = settings.notify_routes_file
    if path is None or not path.exists():
        return _routes_out(default_routes(settings.notify_national_soc), "<defaults>")
    return _routes_out(load_routes(path, settings.notify_national_soc), str(path))


@router.post("/routes/check", response_model=Check)
def check_routes(body: RoutesIn, settings: SettingsDep, user: Admin) -> Check:
    """Validate a routes file without saving it."""
    try:
        routes = parse_routes(body.yaml, settings.notify_national_soc, source="routes.yaml")
    except RouteError as exc:
        return Check(valid=False, error=exc.message, line=exc.line)
    return Check(valid=True, routes=len(routes.routes))


@router.put("/routes", response_model=RoutesOut)
def put_routes(
    body: RoutesIn, request: Request, es: EsDep, indices: IndicesDep, settings: SettingsDep,
    user: Admin,
) -> RoutesOut:  # fmt: skip
    """Replace the routes file (validated first; the notifier picks it up on its next tick)."""
    path = settings.notify_routes_file
    if path is None:
        raise RequestError("no routes file is configured: set SOC_NOTIFY_ROUTES_FILE")
    try:
        routes = parse_routes(body.yaml, settings.notify_national_soc, source=str(path))
    except RouteError as exc:
        raise RequestError(f"routes refused, nothing saved: {exc}") from None
    _write_whole(path, body.yaml)
    audit.record(
        es, indices, actor=user, action="notify.routes.replace", target_type="routes",
        target_id=str(path), provinces=sorted({r.province_code for r in routes.routes}),
        now=datetime.now(UTC), ip=client_ip(request), details={"routes": len(routes.routes)},
    )  # fmt: skip
    return _routes_out(routes, str(path))


def _write_whole(path: Path, text: str) -> None:
    # Write beside it and rename: a reader sees the old file or the new one, never a mix.
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
