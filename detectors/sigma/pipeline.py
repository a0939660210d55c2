"""soc's pySigma processing pipeline and the set of fields a rule may use.

The pipeline itself is data: ``rules/pipeline/soc-ecs.yaml``, the same file rule authors pass to
``sigma convert -p``. This module loads it and derives the known ECS fields from the index
mappings (``soc/es/mappings``) so a rule naming a field soc never stores is refused at load
instead of silently never matching. It must not convert rules (that is the compiler's job).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any

from sigma.processing.pipeline import ProcessingPipeline

from soc.config import PROJECT_ROOT

RULES_DIR = PROJECT_ROOT / "rules"
PIPELINE_FILE = RULES_DIR / "pipeline" / "soc-ecs.yaml"
_MAPPINGS = Path(__file__).resolve().parents[2] / "soc" / "es" / "mappings"
#: Object fields whose sub-fields are dynamic (mapped on first use).
_DYNAMIC_PREFIXES = ("labels.",)


def load_pipeline(path: Path = PIPELINE_FILE) -> ProcessingPipeline:
    return ProcessingPipeline.from_yaml(path.read_text(encoding="utf-8"))


@lru_cache(maxsize=1)
def known_fields() -> frozenset[str]:
    """Every field path mapped in the events indices (ECS + soc), multi-fields included."""
    found: set[str] = set()
    for name in ("ecs.json", "events.json"):
        body = json.loads((_MAPPINGS / name).read_text(encoding="utf-8"))
        found.update(_walk(body["mappings"].get("properties", {}), ""))
    return frozenset(found)


def is_known(field_name: str) -> bool:
    return field_name in known_fields() or field_name.startswith(_DYNAMIC_PREFIXES)


def _walk(properties: Mapping[str, Any], prefix: str) -> Iterator[str]:
    for key, spec in properties.items():
        path = f"{prefix}{key}"
        if "properties" in spec:
            yield from _walk(spec["properties"], path + ".")
            continue
        yield path
        for sub in spec.get("fields", {}):
            yield f"{path}.{sub}"
