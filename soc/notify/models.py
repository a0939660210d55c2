"""The notifier's value objects: what it is told (an :class:`IncidentNotice`), who it writes to
(:class:`Recipient`), and the email it keeps in the outbox (:class:`OutboxMessage`).

``IncidentNotice`` is soc.notify's own input contract, so that the notifier does not depend on the
shape of ``soc.incidents``: a small adapter in :mod:`soc.notify.flows` turns an incident into a
notice. Every text field of a notice may carry attacker-controlled log content; this module keeps
it as data and never formats it (the templates escape it, the headers strip control characters).
"""

from __future__ import annotations

import hashlib
from email.headerregistry import Address
from enum import StrEnum

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator

from soc.alerts.models import Severity


class Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class NoticeEvent(StrEnum):
    """What happened to the incident that deserves an email."""

    NEW = "new"
    SEVERITY_RAISED = "severity_raised"
    #: Communes joined a province-wide (parent) incident since its last email.
    COMMUNES_ADDED = "communes_added"
    #: Resolved by hand while the failure went on; the next alert of the episode reopened it.
    REOPENED = "reopened"
    ESCALATION = "escalation"
    RESOLVED = "resolved"


class Channel(StrEnum):
    """How an outbox message travels: an email, or a JSON POST to a webhook
    (:mod:`soc.notify.webhooks`)."""

    EMAIL = "email"
    WEBHOOK = "webhook"


class Language(StrEnum):
    VI = "vi"
    EN = "en"


class Role(StrEnum):
    """A contact's place in the escalation ladder: team first, then the province lead."""

    TEAM = "team"
    LEAD = "lead"


class OutboxStatus(StrEnum):
    PENDING = "pending"  # waiting for (another) SMTP attempt
    SENDING = "sending"  # claimed by a sender; re-sent only after the claim expires
    SENT = "sent"
    FAILED = "failed"  # permanent: refused recipient, 5xx, or out of attempts
    HELD = "held"  # over the recipient's rate limit: goes out in the next digest
    DIGESTED = "digested"  # delivered inside a digest email


def check_address(value: str) -> str:
    """A bare ``local@domain`` address, or ValueError naming what is wrong."""
    text = value.strip()
    if any(ch in text for ch in "\r\n\t<>, ") or "@" not in text:
        raise ValueError(f"{value!r} is not a plain email address (local@domain)")
    try:
        parsed = Address(addr_spec=text)
    except (ValueError, IndexError) as exc:
        raise ValueError(f"{value!r} is not a valid email address: {exc}") from None
    if not parsed.username or ("." not in parsed.domain and parsed.domain != "localhost"):
        raise ValueError(f"{value!r} has no usable domain")
    return parsed.addr_spec


class Recipient(Frozen):
    """One person or mailbox, with the language its emails are written in."""

    address: str
    language: Language = Language.VI
    name: str = ""
    role: Role = Role.TEAM

    @field_validator("address")
    @classmethod
    def _valid(cls, value: str) -> str:
        return check_address(value)


class WardRef(Frozen):
    code: str
    name: str


class ErrorCount(Frozen):
    code: str
    count: int = Field(ge=0)


class SampleEvent(Frozen):
    """One raw event shown as evidence. ``message`` is attacker-controlled text."""

    timestamp: AwareDatetime
    message: str
    source_ip: str | None = None


class IncidentNotice(Frozen):
    """Something an incident did that people should learn of by email.

    ``wards`` lists every commune of a parent incident, so one email covers them all.
    ``level`` is the escalation step (0 for non-escalations; 1 province lead; 2 national SOC).
    """

    incident_id: str = Field(min_length=1, max_length=200)
    event: NoticeEvent
    title: str
    severity: Severity
    province_code: str
    province_name: str
    wards: tuple[WardRef, ...] = ()
    service: str | None = None
    status: str = "new"
    first_seen: AwareDatetime
    last_seen: AwareDatetime | None = None
    alert_count: int = Field(default=0, ge=0)
    event_count: int = Field(default=0, ge=0)
    top_error_codes: tuple[ErrorCount, ...] = ()
    samples: tuple[SampleEvent, ...] = ()
    first_steps: str = "generic"
    level: int = Field(default=0, ge=0, le=2)
    reopened: int = Field(default=0, ge=0)
    dashboard_url: str | None = None

    @property
    def event_key(self) -> str:
        """What makes this notice distinct for the same incident: one email per key per person."""
        if self.event is NoticeEvent.ESCALATION:
            return f"escalation-{self.level}"
        if self.event is NoticeEvent.SEVERITY_RAISED:
            return f"severity_raised-{self.severity.value}"
        if self.event is NoticeEvent.COMMUNES_ADDED:
            return f"communes_added-{len(self.wards)}"
        if self.event is NoticeEvent.REOPENED:
            return f"reopened-{self.reopened}"
        return self.event.value

    @property
    def urgent(self) -> bool:
        """High and critical notices are never held by a rate limit nor put in a digest."""
        return self.severity.rank >= Severity.HIGH.rank


def message_id(incident_id: str, event_key: str, address: str, domain: str) -> str:
    """The stable ``Message-ID`` (and outbox ``_id``) of one email: retries never double it."""
    raw = f"{incident_id}\x1f{event_key}\x1f{address.lower()}".encode()
    return f"<{hashlib.blake2b(raw, digest_size=16).hexdigest()}@{domain}>"


class OutboxMessage(Frozen):
    """One email to one recipient, as stored in ``<prefix>-outbox`` (``_id`` = ``message_id``)."""

    message_id: str
    created: AwareDatetime
    event: str
    incident_ids: tuple[str, ...]
    province_codes: tuple[str, ...]
    recipient: Recipient
    subject: str
    text: str
    html: str
    status: OutboxStatus = OutboxStatus.PENDING
    attempts: int = 0
    next_attempt: AwareDatetime
    sent: AwareDatetime | None = None
    last_error: str | None = None
    digest_id: str | None = None
    notices: tuple[IncidentNotice, ...] = ()
    channel: Channel = Channel.EMAIL
    #: A webhook's name (``channel=webhook``); its JSON payload is ``text``.
    webhook: str | None = None
