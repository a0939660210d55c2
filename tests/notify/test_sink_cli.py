"""The demo path: emails go to the local mail catcher and a person reads them with the CLI."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
from elasticsearch import Elasticsearch
from typer.testing import CliRunner

from soc.cli import app
from soc.config import Settings
from soc.es.indices import Indices
from soc.notify.flows import Notifier
from soc.notify.render import Renderer
from soc.notify.routing import Routes
from soc.notify.sink import read_inbox, start_sink
from soc.notify.smtp import SmtpSender
from tests.notify.conftest import Clock, _free_port
from tests.notify.notices import notice

runner = CliRunner()


def test_emails_sent_to_the_sink_can_be_read_back(
    es: Elasticsearch, fresh: Indices, notify_settings: Settings, routes: Routes, tmp_path: Path
) -> None:
    port = _free_port()
    maildir = tmp_path / "mail"
    controller = start_sink(maildir, "127.0.0.1", port)
    try:
        local = notify_settings.model_copy(update={"smtp_port": port, "var_dir": tmp_path})
        notifier = Notifier(es, fresh, local, routes, Renderer(), Clock())
        notifier.notify([notice("cb-1", "04"), notice("lc-1", "12")])
        with SmtpSender(local) as sender:
            assert notifier.send_pending(sender).sent == 2
    finally:
        controller.stop()

    mails = read_inbox(maildir)
    assert sorted(m.to for m in mails) == ["it@caobang.gov.vn", "it@laichau.gov.vn"]
    vi = next(m for m in mails if m.to == "it@caobang.gov.vn")
    assert "Sự cố mới" in vi.subject
    assert "Việc cần làm trước tiên" in vi.text()

    shown = runner.invoke(app, ["notify", "inbox", "--maildir", str(maildir), "--show", "1"])
    assert shown.exit_code == 0, shown.output
    assert "Subject: [SOC]" in shown.output

    mine = runner.invoke(app, ["notify", "inbox", "--maildir", str(maildir),
                               "--to", "IT@laichau.gov.vn"])  # fmt: skip
    assert mine.exit_code == 0, mine.output
    assert "it@laichau.gov.vn" in mine.output
    assert "it@caobang.gov.vn" not in mine.output
    assert "1 message(s)" in mine.output


def test_routes_validate_names_file_and_line(tmp_path: Path) -> None:
    bad = tmp_path / "routes.yaml"
    bad.write_text("routes:\n  - province: '04'\n    contacts: [nobody]\n", "utf-8")
    result = runner.invoke(app, ["notify", "routes", "validate", str(bad)])
    assert result.exit_code == 1
    assert f"{bad}:2" in result.output.replace("\n", "")


def test_a_server_that_never_answers_is_a_retry_not_a_hang(
    notifier: Notifier, notify_settings: Settings
) -> None:
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()  # accepts connections, never says hello
        slow = notify_settings.model_copy(
            update={"smtp_port": silent.getsockname()[1], "smtp_timeout": 0.5}
        )
        notifier.notify([notice("cb-1", "04"), notice("cb-2", "04"), notice("lc-1", "12")])
        with SmtpSender(slow) as sender:
            report = notifier.send_pending(sender)
    # One timeout, not one per email: the others are recorded with the same cause, untried.
    assert (report.sent, report.retrying) == (0, 3)
    assert "timed out" in report.errors[0]
    assert all("not tried: SMTP unavailable" in e for e in report.errors[1:])


@pytest.mark.parametrize("language", ["vi", "en"])
def test_preview_renders_the_sample_in_each_language(language: str) -> None:
    result = runner.invoke(app, ["notify", "preview", "--language", language, "--html"])
    assert result.exit_code == 0, result.output
    assert "&lt;script&gt;" in result.output
