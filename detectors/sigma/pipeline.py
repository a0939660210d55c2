"""soc's pySigma processing pipeline and the set of fields a rule may use.

The pipeline itself is data: ``pipeline/soc-ecs.yaml`` in the rules directory (``SOC_RULES_DIR``,
default ``rules/``), the same file rule authors pass to ``sigma convert -p``; a rules directory
without one uses the shipped file. This module loads it and derives the known ECS fields from the
events mapping (read through :mod:`soc.es.templates`, the one reader of the mapping files) so a
rule naming a field soc never stores is refused at load instead of silently never matching. It
must not convert rules (that is the compiler's job).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any

from sigma.processing.pipeline import ProcessingPipeline

from soc.config import PROJECT_ROOT
from soc.es.indices import Kind
from soc.es.templates import expected_properties

RULES_DIR = PROJECT_ROOT / "rules"
PIPELINE_NAME = Path("pipeline") / "soc-ecs.yaml"
PIPELINE_FILE = RULES_DIR / PIPELINE_NAME
#: Object fields whose sub-fields are dynamic (mapped on first use).
_DYNAMIC_PREFIXES = ("labels.",)


def pipeline_file(rules_dir: Path) -> Path:
    """A rules directory's own ``pipeline/soc-ecs.yaml``, else the shipped one."""
    own = rules_dir / PIPELINE_NAME
    return own if own.is_file() else PIPELINE_FILE


def load_pipeline(path: Path = PIPELINE_FILE) -> ProcessingPipeline:
    return ProcessingPipeline.from_yaml(path.read_text(encoding="utf-8"))


@lru_cache(maxsize=1)
def known_fields() -> frozenset[str]:
    """Every field path mapped in the events indices (ECS + soc), multi-fields included."""
    return frozenset(_walk(expected_properties(Kind.EVENTS), ""))


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
