"""Signing in, the one way: the API's ``POST /api/v1/auth/login`` and the console's login form
both call :func:`sign_in`, so throttling, the production password policy and the audit trail
cannot differ between them.

Order matters: a throttled attempt is refused before the password is checked (and is audited as
``throttled``); a wrong password counts against the account and the address; in production a
right but weak password is refused like a wrong one (the caller learns nothing) and audited as
``weak-password`` so an administrator sees why. This module must not create sessions or cookies.
"""

from __future__ import annotations

import logging
from datetime import datetime

from elasticsearch import Elasticsearch

from soc.auth import audit, policy, throttle
from soc.auth.models import User
from soc.auth.service import Directory
from soc.config import Settings
from soc.errors import NotAuthenticated, TooManyAttempts
from soc.es.indices import Indices

log = logging.getLogger(__name__)


def sign_in(
    es: Elasticsearch,
    indices: Indices,
    directory: Directory,
    settings: Settings,
    *,
    username: str,
    password: str,
    ip: str | None,
    now: datetime,
) -> User:
    """The user these credentials name; raises ``TooManyAttempts`` or ``NotAuthenticated``."""
    name = username[:128]
    keys = throttle.keys(settings, username=name, address=ip)

    def record(outcome: str, user: User | None = None, **details: object) -> None:
        audit.record(es, indices, actor=user, action="auth.login", target_type="user",
                     target_id=name, provinces=list(user.provinces) if user else [], now=now,
                     outcome=outcome, ip=ip, details=details or None)  # fmt: skip

    try:
        throttle.check(es, indices, keys, now)
    except TooManyAttempts as exc:
        record("throttled", retry_after=exc.retry_after)
        raise

    def refuse(outcome: str) -> NotAuthenticated:
        record(outcome, delay=throttle.failed(es, indices, keys, now))
        return NotAuthenticated("wrong user name or password")

    try:
        user = directory.check_password(name, password)
    except NotAuthenticated:
        raise refuse("failure") from None
    if settings.environment == "production" and policy.weakness(password, user=name):
        log.warning("sign-in of %r refused: its password is too weak for production", name)
        raise refuse("weak-password")
    throttle.succeeded(es, indices, keys)
    record("success", user)
    return user
