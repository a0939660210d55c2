"""A server that refuses our credentials: the emails wait and go once the password is fixed."""

from __future__ import annotations

from typing import Any

import pytest
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session
from pydantic import SecretStr

from soc.config import Settings
from soc.notify import service
from soc.notify.flows import Notifier
from soc.notify.models import OutboxStatus
from soc.notify.smtp import SmtpSender
from tests.notify.conftest import Clock, Mailbox
from tests.notify.notices import notice

PASSWORD = "correct horse battery"


def authenticator(
    server: SMTP, session: Session, envelope: Envelope, mechanism: str, auth_data: Any
) -> AuthResult:
    ok = (
        isinstance(auth_data, LoginPassword)
        and auth_data.login == b"soc"
        and (auth_data.password == PASSWORD.encode())
    )
    return AuthResult(success=ok, handled=False)


# aiosmtpd warns that AUTH without TLS is unsafe: true, and irrelevant on 127.0.0.1 in a test.
@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
def test_refused_login_is_retried_and_the_password_never_recorded(
    notifier: Notifier, notify_settings: Settings, mailbox: Mailbox, clock: Clock
) -> None:
    mailbox.stop()
    mailbox.options = {
        "authenticator": authenticator,
        "auth_required": True,
        "auth_require_tls": False,
    }
    mailbox.start()
    notifier.notify([notice("cb-1", "04"), notice("lc-1", "12")])

    wrong = notify_settings.model_copy(
        update={"smtp_username": "soc", "smtp_password": SecretStr("wrong secret")}
    )
    with SmtpSender(wrong) as sender:
        report = notifier.send_pending(sender)
    assert (report.sent, report.retrying) == (0, 2)
    pending = service.listing(notifier.es, notifier.indices, status=OutboxStatus.PENDING)
    for stored in pending:
        assert stored.message.last_error is not None
        assert "authentication refused" in stored.message.last_error
        assert "wrong secret" not in stored.message.last_error

    right = wrong.model_copy(update={"smtp_password": SecretStr(PASSWORD)})
    clock.advance(minutes=5)
    with SmtpSender(right) as sender:
        assert notifier.send_pending(sender).sent == 2
    assert len(mailbox.received) == 2
