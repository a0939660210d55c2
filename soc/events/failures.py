"""The failure class of an event: what kind of failure it is, whatever code its source used.

Detection groups failures by *class*, not by one source's error code: a VNeID outage made of
timeouts and 502s is one outage of two classes, not a dozen codes each below its own threshold.
Every event that failed gets ``error.type`` set to one of :class:`FailureClass` by the
normaliser (``collectors/normalise.py``) and by the simulator's backfill, which writes the same
events (``soc/simulate/formats.py``). Events that did not fail get none.

The mapping reads, in order: the HTTP status, the source's error code, the error message. Its
vocabulary (``*TIMEOUT*``, ``*-503``, ``invalid_grant`` …) is documented in docs/schema.md;
add a code here when a new source names a failure differently. This module must not do I/O.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from enum import StrEnum
from typing import Any


class FailureClass(StrEnum):
    """``error.type`` of a failed event."""

    #: No answer in time (gateway timeout, read timeout, SMS timeout).
    TIMEOUT = "timeout"
    #: The connection was refused or the host could not be reached.
    REFUSED = "refused"
    #: The service answered with a server error (HTTP 5xx, ``*-500``, ``OSS-500``).
    SERVER_ERROR = "server_error"
    #: The service is misconfigured (client secret, redirect URI, certificate, procedure setup).
    CONFIG = "config"
    #: The caller's credentials were refused (wrong password or OTP, 401/403).
    AUTH_REJECTED = "auth_rejected"
    #: A message could not be delivered downstream (an SMS through a carrier).
    DELIVERY = "delivery"
    #: What was asked for does not exist (404, a look-up of an unknown identifier).
    NOT_FOUND = "not_found"
    #: Another refusal of the request itself (4xx).
    CLIENT_ERROR = "client_error"
    #: A failure whose kind the source does not say.
    OTHER = "other"


_AUTH = (
    r"(^|\D)40[13]($|\D)|invalid_grant|access_denied|otp_invalid|invalid[ _]credential"
    r"|wrong[ _]password|unauthori[sz]ed|forbidden|login_failed|auth"
)
#: Error codes and messages, matched lowercase, first match wins.
_PATTERNS: tuple[tuple[re.Pattern[str], FailureClass], ...] = tuple(
    (re.compile(pattern), cls)
    for pattern, cls in (
        (r"timeout|timed[ _-]?out|deadline", FailureClass.TIMEOUT),
        (r"refused|unreachable|econn|connection reset|no route", FailureClass.REFUSED),
        (r"invalid_client|redirect|certificate|cert_|ssl|tls|config", FailureClass.CONFIG),
        (_AUTH, FailureClass.AUTH_REJECTED),
        (r"delivery|undeliver", FailureClass.DELIVERY),
        (r"not[ _]?found|(^|\D)404($|\D)", FailureClass.NOT_FOUND),
        (
            r"(^|\D)5\d\d($|\D)|unavailable|internal|server|bad[ _]gateway",
            FailureClass.SERVER_ERROR,
        ),
    )
)


def failure_class(doc: Mapping[str, Any]) -> FailureClass | None:
    """The class of an ECS event (nested dicts), or None when it did not fail."""
    status = _int((doc.get("http") or {}).get("response", {}).get("status_code"))
    event = doc.get("event") or {}
    failed = event.get("outcome") == "failure" or (status is not None and status >= 400)
    if not failed:
        return None
    if status is not None and status >= 400:
        return _from_status(status)
    error = doc.get("error") or {}
    for text in (error.get("code"), error.get("message"), doc.get("message")):
        if isinstance(text, str) and text:
            found = _from_text(text.lower())
            if found is not None:
                return found
    return FailureClass.OTHER


def classify(doc: dict[str, Any]) -> dict[str, Any]:
    """Set ``error.type`` of ``doc`` (in place) to its failure class, if it failed; ``doc``."""
    found = failure_class(doc)
    if found is not None:
        error = doc.get("error")
        if not isinstance(error, dict):
            error = doc["error"] = {}
        error["type"] = found.value
    return doc


def _from_status(status: int) -> FailureClass:
    if status in (408, 504):
        return FailureClass.TIMEOUT
    if status >= 500:
        return FailureClass.SERVER_ERROR
    if status in (401, 403):
        return FailureClass.AUTH_REJECTED
    if status in (404, 410):
        return FailureClass.NOT_FOUND
    return FailureClass.CLIENT_ERROR


def _from_text(text: str) -> FailureClass | None:
    for pattern, cls in _PATTERNS:
        if pattern.search(text):
            return cls
    return None


def _int(value: Any) -> int | None:
    try:
        return int(value) if value is not None else None
    except (TypeError, ValueError):
        return None
