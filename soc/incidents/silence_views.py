"""``/api/v1/silences``: maintenance windows per locality x service (declare, list, end early).

Admins and analysts declare them for any province, provincial IT for its own provinces only (one
outside its scope is "not found"). Every declaration and early end is audited. Routes validate,
check scope and call ``soc.incidents.silences`` / ``soc.incidents.flows``.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field

from soc import problems
from soc.auth import audit
from soc.auth.models import User
from soc.deps import AnyUser, EsDep, IndicesDep, UtcDatetime, client_ip
from soc.errors import LocalityError, NotFound, RequestError
from soc.es.indices import Indices
from soc.incidents import flows, silences
from soc.incidents.models import utcnow
from soc.incidents.silences import Silence
from soc.localities import catalogue
from soc.services import Service

router = APIRouter(prefix="/silences", tags=["maintenance"], responses=problems.RESPONSES)

SilenceId = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]


class SilenceIn(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    province: str = Field(pattern=r"^[0-9]{2}$")
    ward: str | None = Field(default=None, pattern=r"^[0-9]{5}$")
    service: Service | None = None
    start: UtcDatetime
    end: UtcDatetime
    reason: str = Field(min_length=1, max_length=2000)


def _in_scope(user: User, province: str) -> None:
    if not user.can_see(province):
        raise NotFound(f"province {province!r} is not one of yours")


@router.post("", status_code=201, response_model=Silence)
def declare(body: SilenceIn, es: EsDep, indices: IndicesDep, user: AnyUser,
            request: Request) -> Silence:  # fmt: skip
    """Declare planned work: incidents it covers are marked and nobody is paged meanwhile."""
    _in_scope(user, body.province)
    try:
        if body.ward is not None:
            catalogue().ward(body.ward, body.province)
        silence = Silence(
            province_code=body.province, ward_code=body.ward,
            service=body.service.value if body.service else None, start=body.start,
            end=body.end, reason=body.reason, created_by=user.name, created=utcnow(),
        )  # fmt: skip
    except (LocalityError, ValueError) as exc:
        raise RequestError(str(exc)) from None
    silences.create(es, indices, silence)
    _audit(es, indices, user, request, "silence.create", silence)
    return silence


@router.get("", response_model=list[Silence])
def current(es: EsDep, indices: IndicesDep, user: AnyUser) -> list[Silence]:
    """Windows not yet over (active or planned), within the caller's provinces."""
    return silences.current(es, indices, utcnow(), provinces=user.province_scope())


@router.delete("/{silence_id}", response_model=Silence | None)
def end(silence_id: SilenceId, es: EsDep, indices: IndicesDep, user: AnyUser,
        request: Request) -> Silence | None:  # fmt: skip
    """End a window now (a planned one is withdrawn); its incidents are emailed as usual again."""
    silence = silences.get(es, indices, silence_id)
    if not user.can_see(silence.province_code):  # same answer as a missing id: nothing leaks
        raise NotFound(f"no maintenance window {silence_id!r}")
    ended = flows.end_maintenance(es, indices, silence, actor=user.name, now=utcnow())
    _audit(es, indices, user, request, "silence.end", silence)
    return ended


def _audit(es: EsDep, indices: Indices, user: User, request: Request, action: str,
           silence: Silence) -> None:  # fmt: skip
    audit.record(
        es, indices, actor=user, action=action, target_type="silence", target_id=silence.id,
        provinces=[silence.province_code], now=utcnow(), ip=client_ip(request),
        details={"ward": silence.ward_code, "service": silence.service,
                 "start": silence.start.isoformat(), "end": silence.end.isoformat(),
                 "reason": silence.reason},
    )  # fmt: skip
