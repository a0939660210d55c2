"""The inventory: validated against services and the locality catalogue, errors with file:line."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from soc.errors import CollectorConfigError
from soc.inventory import load_inventory, loads_inventory
from soc.services import Service

GOOD = """\
systems:
  - id: hanoi-portal
    service: web-portal
    province: "01"
    ward: "00070"
    paths: ["/logs/hn/*.access.log"]
    hosts: ["Portal-HN-01"]
    token_sha256: "{digest}"
  - id: simulated
    paths: ["**/{{province}}/{{service}}/{{ward}}.access.log"]
"""


def test_attributes_by_path_host_token_and_placeholders() -> None:
    digest = hashlib.sha256(b"s3cret-token").hexdigest()
    inv = loads_inventory(GOOD.format(digest=digest))
    by_path = inv.by_path("/logs/hn/a.access.log")
    assert by_path is not None
    assert by_path.service is Service.WEB_PORTAL
    assert by_path.locality is not None
    assert by_path.locality.ward is not None
    assert by_path.locality.ward.code == "00070"
    host = inv.by_host("portal-hn-01")
    assert host is not None
    assert host.system == "hanoi-portal"
    assert inv.by_token("s3cret-token") is not None
    assert inv.by_token("wrong") is None
    sim = inv.by_path("/x/y/79/vneid/26506.access.log")
    assert sim is not None
    assert sim.service is Service.VNEID
    assert sim.locality is not None
    assert sim.locality.province.code == "79"
    # a path naming no real service or ward is not attributed
    assert inv.by_path("/x/79/nosuch/26734.access.log") is None
    assert inv.by_path("/elsewhere/a.log") is None


def test_unknown_province_names_file_line_and_key(tmp_path: Path) -> None:
    path = tmp_path / "inv.yaml"
    path.write_text(
        "systems:\n  - id: a\n    service: vneid\n    province: Atlantis\n    hosts: [h]\n"
    )
    with pytest.raises(CollectorConfigError) as caught:
        load_inventory(path)
    assert f"{path}:4:" in str(caught.value)
    assert "province" in str(caught.value)
    assert "Atlantis" in str(caught.value)


def test_unknown_service_and_extra_key_are_located() -> None:
    with pytest.raises(CollectorConfigError, match=r"<inventory>:3: systems\.0\.service"):
        loads_inventory("systems:\n  - id: a\n    service: mail\n    hosts: [h]\n")
    with pytest.raises(CollectorConfigError, match=r":4: systems\.0\.colour"):
        loads_inventory("systems:\n  - id: a\n    hosts: [h]\n    colour: red\n")


def test_ward_outside_its_province_is_refused() -> None:
    with pytest.raises(CollectorConfigError, match=r":3: ward"):
        loads_inventory(
            'systems:\n  - id: a\n    ward: "00070"\n    province: "79"\n    hosts: [h]\n'
        )


def test_duplicate_ids_and_syntax_errors_are_located() -> None:
    with pytest.raises(CollectorConfigError, match=r":3: systems.1.id: duplicate"):
        loads_inventory("systems:\n  - {id: a, hosts: [h]}\n  - {id: a, hosts: [g]}\n")
    with pytest.raises(CollectorConfigError, match=r":3: not valid YAML"):
        loads_inventory("systems:\n  - [unclosed\n")
