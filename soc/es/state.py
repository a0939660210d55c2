"""The one owner of ``<prefix>-state``: soc's small documents of its own state, one per id.

Every writer (detection checkpoints, tuning and lease; API tokens, sessions and sign-in
throttles; incident pointers and maintenance windows; locality status) goes through
:class:`StateIndex`, so the index has one id scheme, ``<kind>:<name>``, and one document shape
(see ``soc/es/mappings/state.json``)::

    {"kind": <StateKind>, "key": <searchable key>, "owner": ..., "updated": <time>,
     "expires": <time>, "data": {... not indexed ...}}

``name`` is what makes the id unique within its kind (a rule id, a token digest); ``key`` is
what searches filter on (a province code, a token's public id) and defaults to ``name``. The
shape of ``data`` belongs to the module that owns the kind; this module never looks inside it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from elasticsearch import ConflictError, Elasticsearch, NotFoundError

from soc import timeutil
from soc.errors import ElasticsearchError
from soc.es.indices import Indices

Json = dict[str, Any]


class StateKind(StrEnum):
    """Every kind of document in the state index, with the module that owns its ``data``."""

    DETECT_CHECKPOINT = "detect.checkpoint"  # detectors.sigma.state
    DETECT_TUNING = "detect.tuning"  # detectors.sigma.state
    DETECT_LEASE = "detect.lease"  # detectors.sigma.state
    ANOMALY_CHECKPOINT = "anomaly.checkpoint"  # detectors.anomaly.flows
    ANOMALY_STREAM = "anomaly.stream-bank"  # detectors.anomaly.live (one per province)
    API_TOKEN = "api-token"  # noqa: S105 (a document kind, not a secret) soc.auth.service
    SESSION = "session"  # soc.auth.service
    LOGIN_THROTTLE = "login-throttle"  # soc.auth.throttle
    INCIDENT_CAUSE = "incident-cause"  # soc.incidents.pointers
    INCIDENT_PLACE = "incident-place"  # soc.incidents.pointers
    INCIDENT_PARENT = "incident-parent"  # soc.incidents.pointers
    SILENCE = "incident-silence"  # soc.incidents.silences
    STATUS_CURRENT = "status-current"  # soc.status.service
    STATUS_CHANGE = "status-change"  # soc.status.service


def doc_id(kind: StateKind, name: str) -> str:
    """The one id scheme: ``<kind>:<name>``."""
    return f"{kind.value}:{name}"


@dataclass(frozen=True, slots=True)
class Version:
    """Where a read document stood, for a compare-and-set write."""

    seq_no: int
    primary_term: int


@dataclass(frozen=True, slots=True)
class Entry:
    """One state document. ``version`` is set on entries read back, None on new ones."""

    kind: StateKind
    name: str
    data: Json
    updated: datetime
    key: str | None = None
    owner: str | None = None
    expires: datetime | None = None
    version: Version | None = field(default=None, compare=False)

    @property
    def id(self) -> str:
        return doc_id(self.kind, self.name)

    def to_doc(self) -> Json:
        doc: Json = {"kind": self.kind.value, "key": self.name if self.key is None else self.key}
        if self.owner is not None:
            doc["owner"] = self.owner
        doc["updated"] = timeutil.iso(self.updated)
        if self.expires is not None:
            doc["expires"] = timeutil.iso(self.expires)
        doc["data"] = self.data
        return doc

    @classmethod
    def from_hit(cls, hit: Mapping[str, Any]) -> Entry:
        src = hit["_source"]
        kind = StateKind(src["kind"])
        version = None
        if "_seq_no" in hit and "_primary_term" in hit:
            version = Version(int(hit["_seq_no"]), int(hit["_primary_term"]))
        return cls(
            kind=kind,
            name=str(hit["_id"]).split(":", 1)[1],
            data=src.get("data") or {},
            updated=timeutil.parse(src["updated"]),
            key=src.get("key"),
            owner=src.get("owner"),
            expires=timeutil.parse_optional(src.get("expires")),
            version=version,
        )


class StateIndex:
    """Reads and writes ``<prefix>-state``; nothing else touches the index."""

    def __init__(self, es: Elasticsearch, indices: Indices) -> None:
        self.es = es
        self.index = indices.state

    # ------------------------------------------------------------------ reads
    def get(self, kind: StateKind, name: str) -> Entry | None:
        """A real-time GET: sees the latest write without a refresh."""
        try:
            return Entry.from_hit(self.es.get(index=self.index, id=doc_id(kind, name)).body)
        except NotFoundError:
            return None

    def get_many(self, kind: StateKind, names: Iterable[str]) -> dict[str, Entry]:
        """The entries that exist among ``names``, by name (real-time)."""
        ids = [doc_id(kind, n) for n in names]
        if not ids:
            return {}
        answer = self.es.mget(index=self.index, ids=ids)
        found = (Entry.from_hit(d) for d in answer["docs"] if d.get("found"))
        return {e.name: e for e in found}

    def find(
        self,
        kind: StateKind,
        *filters: Json,
        sort: list[Json] | None = None,
        size: int = 1000,
        refresh: bool = False,
    ) -> list[Entry]:
        """Entries of ``kind`` matching Elasticsearch ``filters`` on the indexed fields
        (``key``, ``owner``, ``updated``, ``expires``); ``refresh`` first makes the latest writes
        searchable."""
        if refresh:
            self.es.indices.refresh(index=self.index)
        query = {"bool": {"filter": [{"term": {"kind": kind.value}}, *filters]}}
        answer = self.es.search(
            index=self.index, query=query, sort=sort, size=size, seq_no_primary_term=True
        )
        return [Entry.from_hit(h) for h in answer["hits"]["hits"]]

    # ------------------------------------------------------------------ writes
    def put(self, entry: Entry, *, refresh: bool = False) -> None:
        """Write ``entry`` whatever stands at its id."""
        self.es.index(index=self.index, id=entry.id, document=entry.to_doc(), refresh=refresh)

    def create(self, entry: Entry, *, refresh: bool = False) -> bool:
        """Write ``entry`` only if nothing stands at its id; False if something does."""
        try:
            self.es.create(index=self.index, id=entry.id, document=entry.to_doc(), refresh=refresh)
        except ConflictError:
            return False
        return True

    def replace(self, entry: Entry, read: Version, *, refresh: bool = False) -> bool:
        """Write ``entry`` only if its id still holds the version read; False if it moved."""
        try:
            self.es.index(
                index=self.index,
                id=entry.id,
                document=entry.to_doc(),
                refresh=refresh,
                if_seq_no=read.seq_no,
                if_primary_term=read.primary_term,
            )
        except ConflictError:
            return False
        return True

    def put_many(self, entries: Iterable[Entry], *, refresh: bool = False) -> int:
        """Write every entry in one bulk request; raises if any was not stored."""
        operations: list[Json] = []
        for entry in entries:
            operations += [{"index": {"_index": self.index, "_id": entry.id}}, entry.to_doc()]
        if not operations:
            return 0
        result = self.es.bulk(operations=operations, refresh=refresh)
        if result["errors"]:
            failed = next(i for i in result["items"] if "error" in next(iter(i.values())))
            raise ElasticsearchError(f"writing state documents failed: {failed}")
        return len(operations) // 2

    def delete(
        self, kind: StateKind, name: str, *, read: Version | None = None, refresh: bool = False
    ) -> None:
        """Remove an entry (if still at the version ``read``); gone already is fine."""
        self.es.options(ignore_status=(404, 409)).delete(
            index=self.index,
            id=doc_id(kind, name),
            refresh=refresh,
            if_seq_no=None if read is None else read.seq_no,
            if_primary_term=None if read is None else read.primary_term,
        )
