"""docs/schema.md lists every field of every mapping, so the documentation cannot drift."""

from __future__ import annotations

import re

import pytest

from soc.config import PROJECT_ROOT
from soc.es.indices import Kind
from soc.es.templates import expected_properties

DOC = (PROJECT_ROOT / "docs" / "schema.md").read_text(encoding="utf-8")
DOCUMENTED = set(re.findall(r"`([@a-z_][\w.@]*)`", DOC))


def _fields(props: dict[str, object], prefix: str = "") -> list[str]:
    names = []
    for name, spec in props.items():
        assert isinstance(spec, dict)
        path = f"{prefix}{name}"
        if "properties" in spec:
            names.extend(_fields(spec["properties"], f"{path}."))
            continue
        names.append(path)
        names.extend(f"{path}.{sub}" for sub in spec.get("fields", {}))
    return names


@pytest.mark.parametrize("kind", list(Kind))
def test_every_mapped_field_is_documented(kind: Kind) -> None:
    missing = [f for f in _fields(expected_properties(kind)) if f not in DOCUMENTED]
    assert missing == [], f"add these {kind} fields to docs/schema.md: {missing}"
