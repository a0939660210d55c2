"""``/api/v1/localities``: the official catalogue and the status board of provinces and communes.

The catalogue is public reference data, so every signed-in user may read all of it; the status
board and its history are scoped: a ``provincial_it`` user sees its own provinces only, and another
province's board answers 404 like any other out-of-scope item.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from soc import problems
from soc.deps import AnyUser, EsDep, IndicesDep, SettingsDep
from soc.errors import NotFound
from soc.incidents.models import utcnow
from soc.localities import catalogue
from soc.status import service
from soc.status.service import Colour

router = APIRouter(prefix="/localities", tags=["localities"], responses=problems.RESPONSES)

ProvinceCode = Annotated[str, Field(pattern=r"^[0-9]{2}$")]


class LocalityRead(BaseModel):
    code: str
    name: str


class ProvinceStatusRead(BaseModel):
    code: str
    name: str
    status: Colour
    open_incidents: int
    communes: int
    communes_green: int
    communes_yellow: int
    communes_red: int
    green_ratio: float
    maintenance: bool = False


class CommuneStatusRead(BaseModel):
    code: str
    name: str
    status: Colour
    open_incidents: int
    probes_down: int
    maintenance: bool = False


class ProvinceBoardRead(BaseModel):
    province: ProvinceStatusRead
    communes: list[CommuneStatusRead]


class StatusChange(BaseModel):
    level: str
    code: str
    province: str
    from_: str = Field(alias="from")
    to: str
    at: str


@router.get("/provinces", response_model=list[LocalityRead])
def provinces(user: AnyUser) -> list[LocalityRead]:
    return [LocalityRead(code=p.code, name=p.name) for p in catalogue().provinces]


@router.get("/provinces/{code}/wards", response_model=list[LocalityRead])
def wards(code: ProvinceCode, user: AnyUser) -> list[LocalityRead]:
    return [LocalityRead(code=w.code, name=w.name) for w in catalogue().wards_of(code)]


def _province_read(p: service.ProvinceStatus) -> ProvinceStatusRead:
    return ProvinceStatusRead(
        code=p.code,
        name=p.name,
        status=p.status,
        open_incidents=p.open_incidents,
        communes=p.communes,
        communes_green=p.communes_green,
        communes_yellow=p.communes_yellow,
        communes_red=p.communes_red,
        green_ratio=round(p.green_ratio, 4),
        maintenance=p.maintenance,
    )


@router.get("/status", response_model=list[ProvinceStatusRead])
def status(
    es: EsDep, indices: IndicesDep, settings: SettingsDep, user: AnyUser
) -> list[ProvinceStatusRead]:
    """GREEN/YELLOW/RED of every province the caller may see (rule: docs/api.md)."""
    board = service.board(
        es, indices, user=user, now=utcnow(), probe_window=settings.status_probe_window
    )
    return [_province_read(p) for p in board.provinces]


@router.get("/status/history", response_model=list[StatusChange])
def status_history(
    es: EsDep,
    indices: IndicesDep,
    user: AnyUser,
    province: Annotated[str | None, Query(pattern=r"^[0-9]{2}$")] = None,
    size: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[dict[str, Any]]:
    return service.history(es, indices, user=user, province=province, size=size)


@router.get("/status/{code}", response_model=ProvinceBoardRead)
def province_status(
    code: ProvinceCode, es: EsDep, indices: IndicesDep, settings: SettingsDep, user: AnyUser
) -> ProvinceBoardRead:
    """One province and the colour of each of its communes."""
    if not user.can_see(code):
        raise NotFound(f"no province status {code!r}")
    catalogue().province(code)  # an unknown code is a 404 naming it
    board = service.board(
        es, indices, user=user, now=utcnow(), probe_window=settings.status_probe_window
    )
    found = next(p for p in board.provinces if p.code == code)
    communes = [
        CommuneStatusRead(
            code=c.code,
            name=c.name,
            status=c.status,
            open_incidents=c.open_incidents,
            probes_down=c.probes_down,
            maintenance=c.maintenance,
        )
        for c in board.communes[code]
    ]
    return ProvinceBoardRead(province=_province_read(found), communes=communes)
