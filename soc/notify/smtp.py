"""Hand one outbox message to an SMTP server, and say whether a failure is worth retrying.

:func:`build_email` makes the MIME message (text + HTML alternatives, the stable Message-ID);
every header value is folded to one line first and the ``SMTP`` policy refuses CR/LF in headers
anyway, so incident data cannot inject headers. :class:`SmtpSender` keeps one connection per batch
and raises :class:`TransientSmtpError` (4xx; its subclass :class:`SmtpUnavailable` when the
server is down, silent or refuses the login: retry later) or
:class:`PermanentSmtpError` (5xx for this recipient or this message: do not retry). It must not
touch the outbox; the flows record every outcome.
"""

from __future__ import annotations

import contextlib
import logging
import smtplib
import ssl
from email import policy
from email.header import Header
from email.message import EmailMessage
from email.utils import format_datetime, parseaddr

from soc.config import Settings
from soc.notify.models import OutboxMessage
from soc.notify.render import one_line

log = logging.getLogger(__name__)


class TransientSmtpError(Exception):
    """The server could not take the message now; a later attempt may succeed."""


class SmtpUnavailable(TransientSmtpError):
    """No usable session at all (down, silent, login refused): every email would fail alike."""


class PermanentSmtpError(Exception):
    """The server refused this message or recipient for good (a 5xx answer)."""


def set_text_header(email: EmailMessage, name: str, value: str) -> None:
    """Set an unstructured header so that every mail client shows its spaces.

    Python 3.11's policy folding may put the space between two words *between* two RFC 2047
    encoded-words, where decoders must drop it ("Cổngthông tin", "HàNội"). Non-ASCII text is
    therefore encoded with :class:`email.header.Header`, which keeps every space inside the
    encoded-words (split on character boundaries, lines under 78 characters), and stored with
    ``set_raw`` so that the policy does not fold it again. ASCII text keeps the policy's path.
    """
    text = one_line(value)
    if text.isascii():
        email[name] = text
        return
    encoded = Header(text, "utf-8", header_name=name).encode(linesep=email.policy.linesep)
    email.set_raw(name, encoded)


def build_email(msg: OutboxMessage, sender: str) -> EmailMessage:
    email = EmailMessage(policy=policy.SMTP)
    email["From"] = one_line(sender)
    recipient = msg.recipient
    if recipient.name and not one_line(recipient.name).isascii():
        name = Header(one_line(recipient.name), "utf-8", header_name="To").encode(
            linesep=email.policy.linesep
        )
        email.set_raw("To", f"{name} <{recipient.address}>")
    else:
        email["To"] = (
            f"{one_line(recipient.name)} <{recipient.address}>"
            if recipient.name
            else recipient.address
        )
    set_text_header(email, "Subject", msg.subject)
    email["Message-ID"] = msg.message_id
    email["Date"] = format_datetime(msg.created)
    email["Auto-Submitted"] = "auto-generated"
    email["X-SOC-Incident"] = one_line(" ".join(msg.incident_ids))
    email["X-SOC-Event"] = one_line(msg.event)
    email.set_content(msg.text, subtype="plain", charset="utf-8")
    email.add_alternative(msg.html, subtype="html", charset="utf-8")
    # After the parts: set_content() drops every Content-* header set before it.
    email["Content-Language"] = recipient.language.value
    return email


class SmtpSender:
    """One SMTP connection, opened lazily and reopened after a failure."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._conn: smtplib.SMTP | None = None
        self._from = parseaddr(settings.notify_from)[1] or settings.notify_from

    def __enter__(self) -> SmtpSender:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(smtplib.SMTPException, OSError):
                self._conn.quit()
            self._conn = None

    def _connect(self) -> smtplib.SMTP:
        s = self._settings
        conn: smtplib.SMTP
        if s.smtp_tls:
            conn = smtplib.SMTP_SSL(
                s.smtp_host, s.smtp_port, timeout=s.smtp_timeout,
                context=ssl.create_default_context(),
            )  # fmt: skip
        else:
            conn = smtplib.SMTP(s.smtp_host, s.smtp_port, timeout=s.smtp_timeout)
        try:
            if s.smtp_starttls and not s.smtp_tls:
                conn.starttls(context=ssl.create_default_context())
            if s.smtp_username and s.smtp_password is not None:
                conn.login(s.smtp_username, s.smtp_password.get_secret_value())
        except BaseException:
            conn.close()  # a refused STARTTLS or login must not leak the socket
            raise
        return conn

    def send(self, msg: OutboxMessage) -> None:
        """Deliver one message or raise Transient/PermanentSmtpError."""
        email = build_email(msg, self._settings.notify_from)
        try:
            if self._conn is None:
                self._conn = self._connect()
            self._conn.send_message(email, from_addr=self._from, to_addrs=[msg.recipient.address])
        except smtplib.SMTPRecipientsRefused as exc:
            self._reset()
            code, answer = next(iter(exc.recipients.values()))
            raise _classify(code, answer, "recipient refused") from None
        except smtplib.SMTPAuthenticationError as exc:
            self.close_quietly()
            raise SmtpUnavailable(f"authentication refused: {exc.smtp_code}") from None
        except smtplib.SMTPResponseException as exc:
            self._reset()
            raise _classify(exc.smtp_code, exc.smtp_error, "refused") from None
        except (smtplib.SMTPException, OSError) as exc:
            self.close_quietly()
            raise SmtpUnavailable(f"SMTP unavailable: {type(exc).__name__}: {exc}") from None

    def _reset(self) -> None:
        # After a refusal the session is still usable once RSET clears the transaction.
        try:
            if self._conn is not None:
                self._conn.rset()
        except (smtplib.SMTPException, OSError):
            self.close_quietly()

    def close_quietly(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(OSError):
                conn.close()


def _classify(code: int, answer: bytes | str, what: str) -> Exception:
    text = answer.decode("utf-8", "replace") if isinstance(answer, bytes) else str(answer)
    detail = f"{what}: {code} {one_line(text)}"
    if code >= 500:
        return PermanentSmtpError(detail)
    return TransientSmtpError(detail)
