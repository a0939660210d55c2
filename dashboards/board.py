"""The national status board, a province's communes and services, and MTTA/MTTR per province.

Colours come from ``soc.status.service.board`` (the one rule for GREEN/YELLOW/RED); counts of open
incidents by severity, commune and service from ``soc.incidents.service.open_counts``. Both take
the user's scope, so a provincial user's board simply has no other province, and another
province's page is "not found". Routes only validate and call those services.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query
from fastapi.responses import HTMLResponse

from dashboards import tilemap
from dashboards.pages import PageDep, render
from soc.alerts.models import Severity
from soc.errors import NotFound
from soc.incidents import service as incidents
from soc.incidents.models import utcnow
from soc.localities import catalogue
from soc.services import Service
from soc.status import service as status

router = APIRouter()

SEVERITIES = [s.value for s in reversed(Severity)]


@router.get("/", response_class=HTMLResponse)
def national(page: PageDep, service: Annotated[Service | None, Query()] = None) -> HTMLResponse:
    board = status.board(
        page.es,
        page.indices,
        user=page.user,
        now=utcnow(),
        probe_window=page.settings.status_probe_window,
    )
    counts = incidents.open_counts(
        page.es, page.indices, user=page.user, service=service.value if service else None
    )
    return render(
        page,
        "board.html",
        provinces=board.provinces,
        counts=counts.by_province,
        severities=SEVERITIES,
        service=service.value if service else "",
        place=tilemap.place,
        short_name=tilemap.short_name,
    )


@router.get("/provinces/{code}", response_class=HTMLResponse)
def province(
    page: PageDep,
    code: Annotated[str, Path(pattern=r"^[0-9]{2}$")],
    service: Annotated[Service | None, Query()] = None,
) -> HTMLResponse:
    if not page.user.can_see(code):
        raise NotFound(f"no province {code!r}")  # the same answer as an unknown code
    catalogue().province(code)
    board = status.board(
        page.es,
        page.indices,
        user=page.user,
        now=utcnow(),
        probe_window=page.settings.status_probe_window,
    )
    found = next(p for p in board.provinces if p.code == code)
    counts = incidents.open_counts(
        page.es,
        page.indices,
        user=page.user,
        province=code,
        service=service.value if service else None,
    )
    all_services = incidents.open_counts(page.es, page.indices, user=page.user, province=code)
    communes = board.communes[code]
    if service is not None:
        # With a service filter, list the communes that service has open incidents in first.
        communes = sorted(communes, key=lambda c: -counts.by_ward.get(c.code, 0))
    return render(
        page,
        "province.html",
        province=found,
        communes=communes,
        ward_counts=counts.by_ward,
        severity_counts=counts.by_province.get(code, {}),
        service_counts=all_services.by_service,
        severities=SEVERITIES,
        service=service.value if service else "",
    )


@router.get("/durations", response_class=HTMLResponse)
def durations(page: PageDep) -> HTMLResponse:
    rows = incidents.durations_by_province(page.es, page.indices, user=page.user)
    names = {p.code: p.name for p in catalogue().provinces}
    return render(page, "durations.html", rows=rows, names=names)
