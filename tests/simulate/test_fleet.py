"""The mock fleet answers on real sockets and can be made slow, failing or down, by hand or by
the scenarios active at a moment."""

from __future__ import annotations

import http.client
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from soc.localities import catalogue
from soc.services import Service
from soc.simulate import scenarios
from soc.simulate.fleet import KEYWORD, Fleet, Mode
from tests.simulate.test_scenarios import ORIGIN

DEMO = Path(__file__).resolve().parents[2] / "scenarios" / "demo.yaml"


@pytest.fixture(scope="module")
def fleet() -> Iterator[Fleet]:
    with Fleet(("01", "12")) as running:
        yield running


def get(url: str) -> tuple[int, str, float]:
    began = time.monotonic()
    try:
        with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 - our own URL
            return response.status, response.read().decode(), time.monotonic() - began
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode(), time.monotonic() - began


def test_every_endpoint_is_up_and_shows_the_keyword(fleet: Fleet) -> None:
    targets = fleet.targets()
    wards = len(catalogue().wards_of("01")) + len(catalogue().wards_of("12"))
    assert len(targets) == 2 * 7 + wards
    for target in targets[:9] + targets[-3:]:
        status, body, _ = get(target["url"])
        assert status == 200
        assert KEYWORD in body
    assert get(f"http://127.0.0.1:{fleet.port('01')}/web-portal/99999/")[0] == 404


def test_an_endpoint_can_be_slow_failing_or_down(fleet: Fleet) -> None:
    url = fleet.url("01", Service.VNEID)
    fleet.set("01", Service.VNEID, Mode.SLOW, delay=0.3)
    assert get(url)[2] >= 0.3
    fleet.set("01", Service.VNEID, Mode.ERROR)
    assert get(url)[0] == 503
    fleet.set("01", Service.VNEID, Mode.DOWN)
    with pytest.raises((http.client.RemoteDisconnected, ConnectionError, urllib.error.URLError)):
        get(url)
    assert get(fleet.url("01", Service.OTP))[0] == 200  # its neighbours are untouched
    fleet.set("01", Service.VNEID, Mode.UP)
    assert get(url)[0] == 200


def test_scenarios_steer_the_fleet(fleet: Fleet) -> None:
    found = {s.id: s for s in scenarios.load(DEMO, catalogue(), ORIGIN)}
    outage, silent = found["vneid-outage-hanoi"], found["silent-laichau"]
    assert silent.where.ward is not None
    during = outage.start + timedelta(minutes=5)
    fleet.apply((outage, silent), during)
    with pytest.raises((http.client.RemoteDisconnected, ConnectionError, urllib.error.URLError)):
        get(fleet.url("01", Service.VNEID))
    assert get(fleet.url("12", Service.WEB_PORTAL, silent.where.ward.code))[0] == 200
    fleet.apply((outage, silent), silent.start + timedelta(minutes=1))
    assert get(fleet.url("01", Service.VNEID))[0] == 200  # the outage is over
    with pytest.raises((http.client.RemoteDisconnected, ConnectionError, urllib.error.URLError)):
        get(fleet.url("12", Service.WEB_PORTAL, silent.where.ward.code))
    fleet.apply((), silent.start)
