"""Feature extraction: exact counts per (locality, service, bucket) from known events."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from elasticsearch import Elasticsearch

from detectors.anomaly.features import Key, Level, extract
from soc.es.indices import Indices
from soc.events.service import index_events
from tests.detectors.anomaly.history import Series, event, heartbeats, wards

T0 = datetime(2026, 11, 16, 3, 0, tzinfo=UTC)
BUCKET = timedelta(minutes=15)


def test_exact_counts_per_commune_and_province(es: Elasticsearch, ready: Indices) -> None:
    ward, other = wards("01", 2)
    web = Series(ward, "one-stop-shop", "col-a", 0, 0)
    otp = Series(ward, "otp-gateway", "col-a", 0, 0)
    web2 = Series(other, "one-stop-shop", "col-b", 0, 0)
    at = T0 + timedelta(minutes=1)
    statuses = [200] * 4 + [500, 502, 503] + [401, 403, 403]
    events = [
        event(web, at + timedelta(seconds=i), i, status=st, duration_ms=100.0 * (i + 1))
        for i, st in enumerate(statuses)
    ]
    # OTP: n odd -> otp-verify, even -> otp-send; fail verify 1 and 3, send 0.
    events += [event(otp, at, n, failed=n in (0, 1, 3)) for n in range(6)]
    events += [event(web2, at, 100 + n) for n in range(2)]
    events.append(event(web, T0 + BUCKET + timedelta(minutes=1), 999))  # next bucket
    province_only = event(web, at, 500)
    del province_only["locality"]["ward"]
    events.append(province_only)
    events += list(heartbeats("col-a", "01", T0, T0 + BUCKET))  # not traffic
    result = index_events(es, ready, events, refresh=True)
    assert result.created == len(events)
    assert not result.errors

    rows = {r.key: r for r in extract(es, ready, T0, T0 + BUCKET, BUCKET, Level.COMMUNE)}
    assert set(rows) == {
        Key(Level.COMMUNE, "01", ward.code, "one-stop-shop"),
        Key(Level.COMMUNE, "01", ward.code, "otp-gateway"),
        Key(Level.COMMUNE, "01", other.code, "one-stop-shop"),
    }
    w = rows[Key(Level.COMMUNE, "01", ward.code, "one-stop-shop")]
    assert w.bucket == T0
    assert w.count == 10
    assert w.ratio("error_5xx") == (3, 10)
    assert w.ratio("access_denied") == (3, 10)
    assert w.ratio("failure") == (6, 10)
    assert w.users == 10
    assert w.ips == 10
    assert w.p50_ms is not None
    assert 450 <= w.p50_ms <= 650
    assert w.p95_ms is not None
    assert 900 <= w.p95_ms <= 1000
    o = rows[Key(Level.COMMUNE, "01", ward.code, "otp-gateway")]
    assert o.count == 6
    assert o.ratio("otp_verify_failure") == (2, 3)
    assert o.ratio("otp_send_failure") == (1, 3)
    assert o.ratio("error_5xx") == (0, 0)

    prov = {r.key: r for r in extract(es, ready, T0, T0 + BUCKET, BUCKET, Level.PROVINCE)}
    p = prov[Key(Level.PROVINCE, "01", None, "one-stop-shop")]
    assert p.count == 10 + 2 + 1  # both communes and the province-level event
    assert prov[Key(Level.PROVINCE, "01", None, "otp-gateway")].count == 6
    later = list(extract(es, ready, T0 + BUCKET, T0 + 2 * BUCKET, BUCKET, Level.COMMUNE))
    assert [(r.key.ward, r.count) for r in later] == [(ward.code, 1)]


def test_collectors_are_reported_for_training(es: Elasticsearch, ready: Indices) -> None:
    (ward,) = wards("04", 1)
    s = Series(ward, "one-stop-shop", "col-x", 0, 0)
    index_events(es, ready, [event(s, T0, n) for n in range(3)], refresh=True)
    (row,) = extract(es, ready, T0, T0 + BUCKET, BUCKET, Level.COMMUNE, training=True)
    assert row.collectors == ("col-x",)
    assert row.count == 3
    assert row.users == 0  # distinct people are context for alerts, not part of the baseline
