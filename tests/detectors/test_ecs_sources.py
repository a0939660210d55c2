"""Detection over indices soc does not own: documents in the shapes Filebeat's nginx, apache and
system modules and Elastic Agent's nginx integration write, in the real Elasticsearch (mapped as
Filebeat's template maps them: strings as keywords), searched by the rule set that
``rules/sources.yaml`` points at them, each alert placed by the inventory (host name, host IP,
service name), while soc's own rules keep to soc's own events."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from elasticsearch import Elasticsearch

from detectors.base import iso
from detectors.sigma import service
from detectors.sigma.pipeline import RULES_DIR
from detectors.sigma.sources import LocatingEngine, load_sources
from soc.config import Settings
from soc.errors import ConfigError
from soc.es.indices import Indices
from soc.events.service import index_events

ECS_RULES = Path(__file__).resolve().parents[1] / "fixtures" / "ecs"
NOW = datetime.now(UTC).replace(second=0, microsecond=0)
SCANNER, TRAVERSAL, SSH = (
    "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d",
    "1b2c3d4e-5f6a-4b7c-9d8e-0f1a2b3c4d5e",
    "2c3d4e5f-6a7b-4c8d-8e9f-1a2b3c4d5e6f",
)
ECS_IDS = (SCANNER, TRAVERSAL, SSH)
#: What Filebeat's index template does with fields it does not list: strings become keywords.
FILEBEAT_LIKE = {
    "dynamic_templates": [{"strings_as_keyword": {
        "match_mapping_type": "string", "mapping": {"type": "keyword", "ignore_above": 1024}}}],
    "properties": {
        "@timestamp": {"type": "date"}, "event": {"properties": {"ingested": {"type": "date"}}},
        "source": {"properties": {"ip": {"type": "ip"}}}, "host": {"properties": {
            "ip": {"type": "ip"}}},
        "http": {"properties": {"response": {"properties": {"status_code": {"type": "long"}}}}},
        "message": {"type": "text"},  # match_only_text on a full cluster
    },
}  # fmt: skip
INVENTORY = """systems:
  - id: hn-portal
    service: web-portal
    province: "Hà Nội"
    hosts: ["web-hn-01", "bastion-hn"]
  - id: cb-portal
    service: web-portal
    province: "Cao Bằng"
    hosts: ["10.4.0.7"]
  - id: dn-portal
    service: web-portal
    province: "Đà Nẵng"
    paths: ["/var/log/dn/*.log"]
"""


def _web(at: datetime, dataset: str, host: dict[str, Any], agent: str, query: str,
         user_agent: str) -> dict[str, Any]:  # fmt: skip
    return {
        "@timestamp": iso(at), "message": f"198.51.100.7 - - \"GET /thu-tuc?{query} HTTP/1.1\" 200",
        "event": {"dataset": dataset, "module": dataset.split(".")[0], "category": ["web"],
                  "type": ["access"], "kind": "event", "outcome": "success",
                  "ingested": iso(at + timedelta(seconds=2))},
        "fileset": {"name": "access"}, "service": {"type": dataset.split(".")[0]},
        "host": host, "agent": {"type": agent, "version": "8.15.0"}, "ecs": {"version": "8.11.0"},
        "source": {"address": "198.51.100.7", "ip": "198.51.100.7"},
        "http": {"version": "1.1", "request": {"method": "GET"},
                 "response": {"status_code": 200, "body": {"bytes": 512}}},
        "url": {"original": f"/thu-tuc?{query}", "path": "/thu-tuc", "query": query},
        "user_agent": {"original": user_agent, "name": "Other"},
        "log": {"file": {"path": f"/var/log/{dataset.split('.')[0]}/access.log"}, "offset": 0},
    }  # fmt: skip


def _ssh(at: datetime) -> dict[str, Any]:
    return {
        "@timestamp": iso(at),
        "message": "Failed password for root from 203.0.113.9 port 50122 ssh2",
        "event": {"dataset": "system.auth", "module": "system", "kind": "event",
                  "category": ["authentication"], "type": ["info"], "action": "ssh_login",
                  "outcome": "failure", "ingested": iso(at + timedelta(seconds=2))},
        "system": {"auth": {"ssh": {"event": "Failed", "method": "password"}}},
        "process": {"name": "sshd", "pid": 4242}, "user": {"name": "root"},
        "source": {"ip": "203.0.113.9", "port": 50122},
        "host": {"name": "bastion-hn", "hostname": "bastion-hn"},
        "agent": {"type": "filebeat", "version": "8.15.0"},
    }  # fmt: skip


def _rules(tmp_path: Path, prefix: str) -> Path:
    root = tmp_path / "rules"
    shutil.copytree(RULES_DIR / "web", root / "web")
    shutil.copytree(ECS_RULES, root / "ecs")
    (root / "inventory.yaml").write_text(INVENTORY, encoding="utf-8")
    (root / "sources.yaml").write_text(
        f'sources:\n  - folder: ecs\n    indices: ["{prefix}-filebeat-*", "{prefix}-logs-*"]\n'
        "inventory: inventory.yaml\n", encoding="utf-8")  # fmt: skip
    return root


def _index(es: Elasticsearch, index: str, docs: list[dict[str, Any]]) -> None:
    es.indices.create(index=index, mappings=FILEBEAT_LIKE)
    for n, doc in enumerate(docs):
        es.index(index=index, id=str(n), document=doc)
    es.indices.refresh(index=index)


@pytest.fixture
def foreign(es: Elasticsearch, prefix: str) -> Any:
    names = [f"{prefix}-filebeat-8.15.0-2026.12.04", f"{prefix}-logs-nginx.access-default"]
    yield names
    es.indices.delete(index=",".join(names), ignore_unavailable=True)


def test_rules_over_filebeat_and_agent_indices_placed_by_the_inventory(
    es: Elasticsearch, settings: Settings, ready: Indices, tmp_path: Path, foreign: list[str],
) -> None:  # fmt: skip
    filebeat, agent = foreign
    settings = settings.model_copy(update={"rules_dir": _rules(tmp_path, settings.index_prefix)})
    t = NOW - timedelta(minutes=12)
    _index(es, filebeat, [
        # nginx module, Hà Nội by host.name
        _web(t, "nginx.access", {"name": "web-hn-01", "hostname": "web-hn-01"}, "filebeat",
             "id=7", "sqlmap/1.8#stable"),
        # apache module, Cao Bằng by host.ip (its name is not in the inventory)
        _web(t + timedelta(minutes=3), "apache.access",
             {"name": "apache-7f3c", "ip": ["10.4.0.7", "fe80::1"]}, "filebeat",
             "file=../../etc/passwd", "Mozilla/5.0"),
        _ssh(t + timedelta(minutes=5)),  # system module, Hà Nội by host.name
        _web(t + timedelta(minutes=5), "nginx.access", {"name": "nowhere-01"}, "filebeat",
             "q=giay+khai+sinh", "Mozilla/5.0"),  # matches nothing
    ])  # fmt: skip
    agent_doc = _web(t + timedelta(minutes=7), "nginx.access", {"name": "ea-9a1b"}, "filebeat",
                     "id=1", "Nuclei - Open-source project (nuclei)")  # fmt: skip
    stream = {"type": "logs", "dataset": "nginx.access", "namespace": "default"}
    agent_doc |= {"data_stream": stream, "service": {"name": "dn-portal"}}
    _index(es, agent, [agent_doc])
    # soc's own event for soc's own scanner rule: the ECS rule set must not see it.
    own = _web(t, "nginx.access", {"name": "web-hn-01"}, "soc", "id=9", "sqlmap/1.8")
    own |= {"service": {"name": "web-portal"},
            "locality": {"province": {"code": "01", "name": "Thành phố Hà Nội"}}}  # fmt: skip
    assert not index_events(es, ready, [own], refresh=True).errors

    loaded = service.load(settings=settings)
    assert not loaded.errors, loaded.errors
    engines = service.engines(es=es, settings=settings, rules=list(loaded.runnable))
    assert [type(e) for e in engines] == [type(engines[0]), LocatingEngine]
    mine = settings.index_prefix
    assert engines[1].indices.events == f"{mine}-filebeat-*,{mine}-logs-*"
    for engine in engines:
        engine.start, engine.early = NOW - timedelta(minutes=20), False
        report = engine.tick(NOW + timedelta(seconds=30))
        assert not report.errors, report.errors
    es.indices.refresh(index=ready.alerts)
    hits = es.search(index=ready.alerts, size=50)["hits"]["hits"]
    found = {(h["_source"]["rule"]["id"], h["_source"].get("locality", {}).get("province", {})
              .get("name")) for h in hits}  # fmt: skip
    assert (SCANNER, "Thành phố Hà Nội") in found
    assert (SCANNER, "Thành phố Đà Nẵng") in found, "Elastic Agent document, by service.name"
    assert (TRAVERSAL, "Cao Bằng") in found, "apache document, by host.ip"
    assert (SSH, "Thành phố Hà Nội") in found, "system auth document, by host.name"
    ecs_alerts = [h["_source"] for h in hits if h["_source"]["rule"]["id"] in ECS_IDS]
    assert len(ecs_alerts) == 4, [a["alert"]["title"] for a in ecs_alerts]
    assert all(a["evidence"]["index_pattern"].endswith("-logs-*") for a in ecs_alerts)
    soc_own = [h["_source"] for h in hits if h["_source"]["rule"]["id"] not in ECS_IDS]
    assert len(soc_own) == 1, "soc's scanner rule saw soc's own event only"
    assert soc_own[0]["evidence"]["index_pattern"] == ready.events


def test_a_bad_sources_file_names_file_and_line(tmp_path: Path) -> None:
    (tmp_path / "sources.yaml").write_text(
        "sources:\n  - folder: ecs\n    indices: ['filebeat-*', 'bad pattern!']\n"
    )
    with pytest.raises(ConfigError, match=r"sources.yaml:3"):
        load_sources(tmp_path)
