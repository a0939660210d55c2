"""``POST /api/v1/alerts/{alert_id}/attach``: put an alert into an incident (admin, analyst).

The route sits under ``/alerts`` but runs an incidents flow (``soc.incidents.flows.attach_alert``),
so it lives here: ``soc.alerts`` is below ``soc.incidents`` and never imports it. It only
validates and calls the flow.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field

from soc import problems
from soc.alerts.views import AlertId
from soc.deps import Analyst, EsDep, IndicesDep, client_ip
from soc.incidents import flows
from soc.incidents.models import Incident

router = APIRouter(prefix="/alerts", tags=["alerts"], responses=problems.RESPONSES)


class AttachIn(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    incident_id: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")


@router.post("/{alert_id}/attach", response_model=Incident)
def attach(
    alert_id: AlertId,
    body: AttachIn,
    es: EsDep,
    indices: IndicesDep,
    user: Analyst,
    request: Request,
) -> Incident:
    caller = flows.Caller(user, client_ip(request))
    return flows.attach_alert(es, indices, alert_id, body.incident_id, caller=caller)
