"""The periodic job: incidents stored by soc.incidents become emails, once, tick after tick."""

from __future__ import annotations

from apscheduler.schedulers.background import BackgroundScheduler
from elasticsearch import Elasticsearch

from soc.incidents import service as incidents
from soc.incidents.models import Incident, IncidentStatus
from soc.notify import scheduled
from soc.notify.flows import Notifier
from tests.notify.conftest import Clock, Mailbox
from tests.notify.test_incidents_adapter import incident


def test_ticks_turn_stored_incidents_into_emails_once(
    es: Elasticsearch, notifier: Notifier, mailbox: Mailbox, clock: Clock
) -> None:
    stored = incidents.create(es, notifier.indices, incident(clock))
    assert stored is not None
    other = incidents.create(es, notifier.indices, incident(clock, id="inc-lc", province_code="12",
                                                           province_name="Lai Châu"))  # fmt: skip
    assert other is not None

    def source() -> list[Incident]:
        return scheduled.incidents_to_check(es, notifier.indices)

    scheduled.tick(notifier, source)
    scheduled.tick(notifier, source)
    assert [m["X-SOC-Incident"] for m in mailbox.to("it@caobang.gov.vn")] == ["inc-cb-otp"]
    assert [m["X-SOC-Incident"] for m in mailbox.to("it@laichau.gov.vn")] == ["inc-lc"]

    incidents.replace(es, notifier.indices, stored.model_copy(
        update={"status": IncidentStatus.RESOLVED, "resolved": clock.now}))  # fmt: skip
    scheduled.tick(notifier, source)
    scheduled.tick(notifier, source)
    subjects = [str(m["Subject"]) for m in mailbox.to("it@caobang.gov.vn")]
    assert len(subjects) == 2
    assert "Đã khắc phục" in subjects[1]


def test_a_tick_with_smtp_down_loses_nothing(
    es: Elasticsearch, notifier: Notifier, mailbox: Mailbox, clock: Clock
) -> None:
    mailbox.stop()
    incidents.create(es, notifier.indices, incident(clock))

    def source() -> list[Incident]:
        return scheduled.incidents_to_check(es, notifier.indices)

    scheduled.tick(notifier, source)
    mailbox.start()
    clock.advance(minutes=5)
    scheduled.tick(notifier, source)
    assert len(mailbox.to("it@caobang.gov.vn")) == 1


def test_the_job_runs_one_at_a_time(notifier: Notifier) -> None:
    scheduler = BackgroundScheduler()
    scheduled.register(scheduler, notifier, every_seconds=10)
    (job,) = scheduler.get_jobs()
    assert job.max_instances == 1
    assert job.coalesce is True
