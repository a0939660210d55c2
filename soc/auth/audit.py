"""The audit trail: one append-only document in ``<prefix>-audit`` per write made through the API.

Written after the change it records, with the actor, the target, the provinces it touched and the
outcome, so "who changed this incident, when, from where" has one answer. Documents are created
with ``op_type=create`` under a fresh id and never updated. This module must not record secrets:
callers pass ids and field names, never passwords or tokens.
"""

from __future__ import annotations

import ipaddress
import uuid
from datetime import datetime
from typing import Any

from elasticsearch import Elasticsearch

from soc.auth.models import User
from soc.es.indices import Indices


def record(
    es: Elasticsearch,
    indices: Indices,
    *,
    actor: User | None,
    action: str,
    target_type: str,
    target_id: str,
    provinces: list[str],
    now: datetime,
    outcome: str = "success",
    ip: str | None = None,
    details: dict[str, Any] | None = None,
) -> None:
    doc: dict[str, Any] = {
        "@timestamp": now.isoformat(),
        "actor": {
            "name": actor.name if actor else "anonymous",
            "role": actor.role.value if actor else None,
        },
        "action": action,
        "target": {"type": target_type, "id": target_id},
        "province_codes": provinces,
        "outcome": outcome,
        "details": details or {},
    }
    if ip is not None and _is_ip(ip):
        doc["source"] = {"ip": ip}
    es.create(index=indices.audit, id=uuid.uuid4().hex, document=doc)


def _is_ip(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True
