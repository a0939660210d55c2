"""The demo's local mail catcher: an aiosmtpd server on 127.0.0.1 that keeps every message in a
Maildir (``<var_dir>/mail``), and the reader that lists and shows them.

It exists so that a user of the demo can read the emails soc sends without a real mail server
(``soc notify sink`` in one terminal, ``soc notify inbox`` in another). It must never relay mail
anywhere, and it only listens on the loopback address it is given.
"""

from __future__ import annotations

import email
import logging
import mailbox
from dataclasses import dataclass
from email.message import EmailMessage
from email.policy import default as default_policy
from email.utils import parsedate_to_datetime
from pathlib import Path

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

log = logging.getLogger(__name__)


class MaildirHandler:
    """Stores each accepted message, with its envelope recipients, in a Maildir."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.maildir = mailbox.Maildir(path, create=True)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        content = envelope.original_content or b""
        rcpt = ", ".join(str(a) for a in envelope.rcpt_tos)
        self.maildir.add(b"X-Sink-Rcpt-To: " + rcpt.encode("ascii", "replace") + b"\r\n" + content)
        log.info("sink: stored a message for %s", rcpt)
        return "250 Message accepted for delivery"


def start_sink(path: Path, host: str = "127.0.0.1", port: int = 8025) -> Controller:
    """Start the catcher in a background thread; the caller stops it."""
    controller = Controller(
        MaildirHandler(path), hostname=host, port=port, server_hostname="localhost"
    )
    controller.start()
    return controller


@dataclass(frozen=True)
class CaughtMail:
    key: str
    to: str
    subject: str
    date: str
    message: EmailMessage

    def text(self) -> str:
        part = self.message.get_body(preferencelist=("plain",))
        return str(part.get_content()) if part is not None else ""


def read_inbox(path: Path) -> list[CaughtMail]:
    """Every caught message, oldest first."""
    if not path.is_dir():
        return []
    found: list[CaughtMail] = []
    box = mailbox.Maildir(path, create=False)
    for key, raw in _raw_messages(box):
        parsed = email.message_from_bytes(raw, policy=default_policy)
        assert isinstance(parsed, EmailMessage)
        found.append(
            CaughtMail(
                key=key,
                to=str(parsed.get("X-Sink-Rcpt-To", parsed.get("To", ""))),
                subject=str(parsed.get("Subject", "")),
                date=str(parsed.get("Date", "")),
                message=parsed,
            )
        )
    return sorted(found, key=lambda m: (_when(m.message), m.key))


def _raw_messages(box: mailbox.Maildir) -> list[tuple[str, bytes]]:
    return [(key, box.get_bytes(key)) for key in list(box.iterkeys())]


def _when(message: EmailMessage) -> float:
    header = message.get("Date")
    try:
        return parsedate_to_datetime(str(header)).timestamp() if header else 0.0
    except (TypeError, ValueError):
        return 0.0
