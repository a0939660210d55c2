"""Install soc's index templates and fixed indices, idempotently, and refuse incompatible indices.

The mappings are data: one JSON file per index kind in ``soc/es/mappings`` plus two component
templates (``settings.json``: shards and the lowercase normalizer; ``ecs.json``: the ECS and
``locality.*`` fields shared by events, alerts, incidents and dead letters). ``MAPPING_VERSION`` is
written to every template's and index's ``_meta``; bump it whenever a mapping file changes.

:func:`setup` may run at every start-up: a template already at this version with the same body is
left alone, fixed indices are created once, and every existing index is checked field by field.
An index whose field has another type or normalizer than soc's raises
:class:`IncompatibleMappingError` naming the index and fields; one that merely lacks new fields gets
them added.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from importlib import resources
from typing import Any

from elasticsearch import ApiError, BadRequestError, Elasticsearch, NotFoundError

from soc.config import Settings
from soc.errors import ElasticsearchError, IncompatibleMappingError
from soc.es.indices import Indices, Kind

log = logging.getLogger(__name__)

#: Version of the mapping files; written to ``_meta.soc_mapping_version``.
MAPPING_VERSION = 2
TEMPLATE_PRIORITY = 200
#: Kinds whose documents carry the shared ECS/locality fields.
_ECS_KINDS = frozenset({Kind.EVENTS, Kind.ALERTS, Kind.INCIDENTS, Kind.DEADLETTER})
# Mapping parameters that cannot change on an existing field.
_FIXED_PARAMS = ("type", "normalizer", "index", "doc_values", "enabled")

Json = dict[str, Any]


def _load(name: str) -> Json:
    text = resources.files("soc.es").joinpath("mappings", f"{name}.json").read_text("utf-8")
    body: Json = json.loads(text)
    body.pop("_comment", None)
    return body


def _meta() -> Json:
    return {"soc_mapping_version": MAPPING_VERSION, "managed_by": "soc"}


@dataclass
class SetupReport:
    """What :func:`setup` did, for the CLI and the logs."""

    templates_written: list[str] = field(default_factory=list)
    templates_unchanged: list[str] = field(default_factory=list)
    indices_created: list[str] = field(default_factory=list)
    indices_updated: list[str] = field(default_factory=list)
    indices_checked: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        def show(items: list[str]) -> str:
            return ", ".join(items) or "-"

        return [
            f"templates written:   {show(self.templates_written)}",
            f"templates unchanged: {show(self.templates_unchanged)}",
            f"indices created:     {show(self.indices_created)}",
            f"indices updated:     {show(self.indices_updated)}",
            f"indices checked:     {len(self.indices_checked)}",
        ]


@dataclass(frozen=True)
class Layout:
    """Shards and replicas of soc's indices: the daily event indices carry nearly all the volume,
    so their primary shards are set apart (docs/deploy.md sizes them by events a day)."""

    replicas: int = 0
    shards: int = 1
    event_shards: int = 1

    @classmethod
    def of(cls, settings: Settings) -> Layout:
        return cls(settings.replicas, settings.index_shards, settings.index_event_shards)


def component_bodies(indices: Indices, replicas: int, shards: int = 1) -> dict[str, Json]:
    settings = _load("settings")
    settings["settings"]["index"]["number_of_replicas"] = replicas
    settings["settings"]["index"]["number_of_shards"] = shards
    ecs = _load("ecs")
    ecs["mappings"]["_meta"] = _meta()
    # A component template is validated on its own: it must define the normalizer it uses.
    ecs["settings"] = {"index": {"analysis": settings["settings"]["index"]["analysis"]}}
    return {
        indices.settings_component: {"template": settings, "_meta": _meta()},
        indices.ecs_component: {"template": ecs, "_meta": _meta()},
    }


def template_body(indices: Indices, kind: Kind, layout: Layout | None = None) -> Json:
    composed = [indices.settings_component]
    if kind in _ECS_KINDS:
        composed.append(indices.ecs_component)
    own = _load(kind.value)
    own["mappings"]["_meta"] = _meta()
    if kind is Kind.EVENTS and layout is not None and layout.event_shards != layout.shards:
        # The index template's own settings win over its component's.
        own.setdefault("settings", {}).setdefault("index", {})["number_of_shards"] = (
            layout.event_shards
        )
    return {
        "index_patterns": [indices.pattern(kind)],
        "composed_of": composed,
        "priority": TEMPLATE_PRIORITY,
        "template": own,
        "_meta": _meta(),
    }


def expected_properties(kind: Kind) -> Json:
    """The merged ``properties`` soc expects in an index of ``kind``."""
    props: Json = {}
    if kind in _ECS_KINDS:
        _deep_merge(props, _load("ecs")["mappings"]["properties"])
    _deep_merge(props, _load(kind.value)["mappings"]["properties"])
    return props


def lowercase_keywords(kind: Kind) -> frozenset[str]:
    """The fields of ``kind`` indexed as lowercase-normalised keywords with doc values: what a
    search reads back from doc values is exactly what a query on them matches against."""
    return frozenset(
        path
        for path, spec in _leaves(expected_properties(kind)).items()
        if spec.get("type") == "keyword"
        and spec.get("normalizer") == "soc_lowercase"
        and spec.get("doc_values", True)
        and spec.get("index", True)
    )


def setup(
    es: Elasticsearch, indices: Indices, *, replicas: int = 0, layout: Layout | None = None
) -> SetupReport:
    """Install templates and fixed indices; check existing ones. Safe to run at every start.

    ``layout`` (``Layout.of(settings)``) wins over ``replicas``. Shard counts apply to indices
    created from now on (tomorrow's event index); existing indices keep theirs.
    """
    layout = layout or Layout(replicas=replicas)
    report = SetupReport()
    components = component_bodies(indices, layout.replicas, layout.shards)
    try:
        # Three stages, each one's requests at once (see _at_once); each stage needs the last.
        _at_once(report, [partial(_put_if_changed, es, name, body, component=True)
                          for name, body in components.items()])  # fmt: skip
        _at_once(report, [partial(_put_if_changed, es, indices.template(kind),
                                  template_body(indices, kind, layout), component=False)
                          for kind in Kind])  # fmt: skip
        _at_once(report, [partial(_create_if_missing, es, indices.name(kind))
                          for kind in Kind if kind is not Kind.EVENTS])  # fmt: skip
        for kind in Kind:
            _check_existing(es, indices.pattern(kind), kind, report)
    except (IncompatibleMappingError, ElasticsearchError):
        raise
    except ApiError as exc:
        raise ElasticsearchError(f"installing soc's index templates failed: {exc}") from exc
    return report


def _at_once(report: SetupReport, jobs: list[Callable[[SetupReport], object]]) -> None:
    """Run ``jobs`` concurrently, merging their reports in order; the first failure is raised.

    Each template put and index creation is a cluster-state update, and the master publishes
    concurrent ones as one batch: a setup waits for three publications instead of fifteen (at
    load 10 on 2 cores, ~2.5 s instead of ~9 s; every test's scratch prefix pays it)."""
    parts = [SetupReport() for _ in jobs]
    with ThreadPoolExecutor(max_workers=max(1, len(jobs))) as pool:
        futures = [pool.submit(job, part) for job, part in zip(jobs, parts, strict=True)]
    for future in futures:
        future.result()
    for part in parts:
        for name, items in vars(part).items():
            getattr(report, name).extend(items)


def teardown(es: Elasticsearch, prefix: str) -> None:
    """The inverse of :func:`setup` for a whole prefix: delete every index, index template and
    component template named ``<prefix>-*`` (scratch prefixes of tests, benchmarks and
    ``soc rules test``). Whatever is already gone is skipped."""
    quiet = es.options(ignore_status=404)
    names = list(es.indices.get(index=f"{prefix}-*", allow_no_indices=True, expand_wildcards="all"))
    jobs: list[Callable[[SetupReport], object]] = [
        lambda _: quiet.indices.delete_index_template(name=f"{prefix}-*")
    ]
    if names:
        jobs.append(lambda _: quiet.indices.delete(index=",".join(names), ignore_unavailable=True))
    _at_once(SetupReport(), jobs)
    # Only once no index template composes them.
    quiet.cluster.delete_component_template(name=f"{prefix}-*")


def _put_if_changed(
    es: Elasticsearch, name: str, body: Json, report: SetupReport, *, component: bool
) -> None:
    current = _get_template(es, name, component=component)
    if current is not None:
        version = (current.get("_meta") or {}).get("soc_mapping_version", 0)
        if version > MAPPING_VERSION:
            raise ElasticsearchError(
                f"template {name!r} was written by a newer soc (mapping version {version}, this "
                f"soc knows {MAPPING_VERSION}); upgrade soc instead of downgrading the templates"
            )
        if version == MAPPING_VERSION and _same_template(current, body):
            report.templates_unchanged.append(name)
            return
    if component:
        es.cluster.put_component_template(name=name, template=body["template"], meta=body["_meta"])
    else:
        es.indices.put_index_template(name=name, **body)
    report.templates_written.append(name)


def _get_template(es: Elasticsearch, name: str, *, component: bool) -> Json | None:
    try:
        if component:
            found = es.cluster.get_component_template(name=name)
            return dict(found["component_templates"][0]["component_template"])
        found = es.indices.get_index_template(name=name)
        return dict(found["index_templates"][0]["index_template"])
    except NotFoundError:
        return None


def _same_template(current: Json, wanted: Json) -> bool:
    """Compare what soc sets; Elasticsearch normalises settings to strings, so compare loosely."""
    return (
        _normalise(current.get("template", {}).get("mappings"))
        == _normalise(wanted["template"].get("mappings"))
        and current.get("composed_of", []) == wanted.get("composed_of", [])
        and current.get("index_patterns", []) == wanted.get("index_patterns", [])
        and _flat_settings(current.get("template", {}).get("settings", {}))
        == _flat_settings(wanted["template"].get("settings", {}))
    )


def _normalise(value: Any) -> Any:
    return json.loads(json.dumps(value, sort_keys=True, default=str)) if value else {}


def _flat_settings(settings: Json, prefix: str = "") -> dict[str, str]:
    flat: dict[str, str] = {}
    for key, value in settings.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(_flat_settings(value, f"{path}."))
        else:
            flat[path] = str(value).lower()
    return flat


def _create_if_missing(es: Elasticsearch, name: str, report: SetupReport) -> None:
    if es.indices.exists(index=name):
        return
    try:
        es.indices.create(index=name)
    except BadRequestError as exc:
        if exc.error != "resource_already_exists_exception":  # created meanwhile by another soc
            raise
        return
    report.indices_created.append(name)


def _check_existing(es: Elasticsearch, pattern: str, kind: Kind, report: SetupReport) -> None:
    try:
        mappings = es.indices.get_mapping(index=pattern, allow_no_indices=True)
    except NotFoundError:
        return
    wanted = expected_properties(kind)
    for index, body in mappings.body.items():
        mapping = body.get("mappings", {})
        version = (mapping.get("_meta") or {}).get("soc_mapping_version", 0)
        if version > MAPPING_VERSION:
            raise IncompatibleMappingError(
                index, [f"written by a newer soc (mapping version {version})"]
            )
        conflicts = _conflicts(wanted, mapping.get("properties", {}))
        if conflicts:
            raise IncompatibleMappingError(index, conflicts)
        report.indices_checked.append(index)
        if version < MAPPING_VERSION or _missing(wanted, mapping.get("properties", {})):
            try:
                es.indices.put_mapping(index=index, properties=wanted, meta=_meta())
            except BadRequestError as exc:
                raise IncompatibleMappingError(index, [str(exc.message)]) from exc
            report.indices_updated.append(index)


def _leaves(props: Json, prefix: str = "") -> dict[str, Json]:
    """Map of dotted field path to its definition: objects, their fields and multi-fields."""
    out: dict[str, Json] = {}
    for name, spec in props.items():
        path = f"{prefix}{name}"
        out[path] = spec
        if "properties" in spec:
            out.update(_leaves(spec["properties"], f"{path}."))
            continue
        for sub, sub_spec in (spec.get("fields") or {}).items():
            out[f"{path}.{sub}"] = sub_spec
    return out


def _conflicts(wanted: Json, actual: Json) -> list[str]:
    have = _leaves(actual)
    problems = []
    for path, spec in _leaves(wanted).items():
        existing = have.get(path)
        if existing is None:
            continue
        for param in _FIXED_PARAMS:
            # A field without a type is an object, whichever side left it out.
            want = spec.get(param, "object" if param == "type" else None)
            got = existing.get(param, "object" if param == "type" else None)
            if want is None:
                continue
            if str(want).lower() != str(got).lower():
                problems.append(f"{path}: {param} is {got!r}, soc needs {want!r}")
    return problems


def _missing(wanted: Json, actual: Json) -> bool:
    have = _leaves(actual)
    return any(path not in have for path in _leaves(wanted))


def _deep_merge(into: Json, extra: Json) -> None:
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(into.get(key), dict):
            _deep_merge(into[key], value)
        else:
            into[key] = value
