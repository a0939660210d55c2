"""Run compiled rules over their due windows and write one alert per finding, exactly once.

A tick plans, for every enabled rule, the interval-aligned windows between its checkpoint and
``now - settle`` (at most ``max_catchup`` of them: a long outage is caught up over several ticks
and reported as ``behind``), sends every (rule, window) search in one ``_msearch`` per chunk,
writes alerts under their deterministic id, then advances checkpoints.
A failing search stops only its rule, at that window, with the error kept in the rule's health.

**Early firing** (``early=True``, what ``soc detect`` runs): the same tick also searches each
caught-up rule's *open* windows (from the last settled window up to ``now``) on the events
ingested so far. What they find is written at once under the id of the whole window, with
``op_type=create``; when the window is later evaluated for good, the same id is upserted with the
final count and samples, so an alert appears seconds after its events instead of after the window
closes, and still exists once. Open windows never move a checkpoint and their errors are only
logged: the final evaluation is the one that counts.
Must not: schedule itself (see ``detectors.scheduling``), or read rule files.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from elasticsearch import Elasticsearch

from detectors.base import Window, aligned_windows, floor
from detectors.sigma.alerting import to_alert
from detectors.sigma.models import Rule
from detectors.sigma.ratio import Judge
from detectors.sigma.search import Finding, Options, Tuning, findings, sample_body, with_samples
from detectors.sigma.search.bodies import parts
from detectors.sigma.search.models import SCAN_LIMIT, Parts
from detectors.sigma.search.strategies import Composed, Item, Search, composed
from detectors.sigma.search.strategies import plan as plan_searches
from detectors.sigma.state import Checkpoint, StateStore
from soc.alerts import store
from soc.alerts.models import Alert
from soc.es.indices import Indices

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Outcome:
    rule: Rule
    window: Window
    findings: tuple[Finding, ...] = ()
    error: str | None = None


@dataclass
class TickReport:
    """What one tick did (printed by ``soc detect``, kept in the rules' health)."""

    searches: int = 0
    windows: int = 0
    alerts_created: int = 0
    alerts_existing: int = 0
    errors: dict[str, str] = field(default_factory=dict)
    behind: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0


class Engine:
    """Evaluates rules against ``<prefix>-events-*`` and writes ``<prefix>-alerts``."""

    def __init__(
        self,
        es: Elasticsearch,
        indices: Indices,
        rules: Sequence[Rule],
        *,
        options: Options | None = None,
        settle: timedelta = timedelta(seconds=5),
        max_catchup: int = 60,
        chunk: int = 200,
        batch: int = 50,
        start: datetime | None = None,
        early: bool = False,
    ) -> None:
        self.es = es
        self.indices = indices
        self.rules = list(rules)
        self.options = options or Options()
        self.settle = settle
        self.max_catchup = max_catchup
        self.chunk = chunk
        #: Rules per composed search: bounds the aggregation buckets of one search.
        self.batch = batch
        #: Plain rules over a window are evaluated from its matching events when there are at
        #: most this many (0: always aggregations); ``scan_batch`` rules share one scan.
        self.scan_limit = SCAN_LIMIT
        self.scan_batch = 1000
        self.start = start
        #: Also search open windows every tick and alert early (see the module's docstring).
        self.early = early
        self.state = StateStore(es, indices)
        #: None: Elasticsearch decides; the benchmark turns the shard request cache off.
        self.request_cache: bool | None = None
        #: Test seam: called after alerts are written and before checkpoints move.
        self.after_alerts: Callable[[], None] = lambda: None
        #: Judges the findings of ratio rules against their baselines (detectors/sigma/ratio.py).
        self.judge = Judge(self._msearch)

    # ------------------------------------------------------------------ one tick
    def tick(self, now: datetime | None = None) -> TickReport:
        began = time.monotonic()
        now = now or datetime.now(UTC)
        horizon = now - self.settle
        ids = [r.id for r in self.rules]
        checkpoints = self.state.checkpoints(ids)
        tunings = self.state.tunings(ids)
        plan: list[tuple[Rule, Window, Tuning]] = []
        opened: list[tuple[Rule, Window, Tuning]] = []
        report = TickReport()
        for rule in self.rules:
            tuning = tunings.get(rule.id, Tuning())
            if not tuning.enabled:
                continue
            due = self._due(rule, checkpoints[rule.id], horizon)
            report.behind[rule.id] = max(0, len(due) - self.max_catchup)
            plan.extend((rule, w, tuning) for w in due[: self.max_catchup])
            if self.early and report.behind[rule.id] == 0:
                opened.extend((rule, w, tuning) for w in open_windows(rule, horizon, now))
        outcomes = self.evaluate(plan + opened)
        final, early = outcomes[: len(plan)], outcomes[len(plan) :]
        report.searches = len(plan) + len(opened)
        for outcome in early:
            if outcome.error:
                log.info("open window not searched rule=%s error=%s", outcome.rule.id,
                         outcome.error)  # fmt: skip
        created, existing = self.write(self.alerts(final, now), final=True)
        report.alerts_created, report.alerts_existing = created, existing
        created, existing = self.write(self.alerts(map(_whole, early), now))
        report.alerts_created += created
        report.alerts_existing += existing
        self.after_alerts()
        report.seconds = time.monotonic() - began
        self._advance(checkpoints, final, report, now)
        return report

    def _due(self, rule: Rule, checkpoint: Checkpoint, horizon: datetime) -> list[Window]:
        since = checkpoint.done_until
        if since is None:
            since = self.start or floor(horizon, rule.interval) - rule.interval
        return list(aligned_windows(since, horizon, rule.interval))

    # ------------------------------------------------------------------ searching
    def evaluate(self, plan: Sequence[tuple[Rule, Window, Tuning]]) -> list[Outcome]:
        """Run every planned search, shared as :mod:`detectors.sigma.search.strategies` groups
        them, ``chunk`` searches per ``_msearch``. A scan that meets more than ``scan_limit``
        events is searched again with composed aggregations; a shared search that fails is
        re-run rule by rule, so only the faulty rule reports the error."""
        items = [Item(rule, window, tuning, parts(rule, window, tuning, self.options))
                 for rule, window, tuning in plan]  # fmt: skip
        outcomes: dict[int, Outcome] = {}
        searches = plan_searches(items, scan_limit=self.scan_limit, scan_batch=self.scan_batch,
                                 batch=self.batch)  # fmt: skip
        while searches:
            searches = self._run(searches, items, outcomes)
        self._read_samples(outcomes, [item.parts for item in items])
        self._judge_ratios(outcomes)
        return [outcomes[n] for n in range(len(plan))]

    def _run(self, searches: Sequence[Search], items: Sequence[Item],
             outcomes: dict[int, Outcome]) -> list[Search]:  # fmt: skip
        """Send ``searches``, keep the outcomes they give, and return those to send again."""
        again: list[Search] = []
        for search, answer in zip(searches, self._msearch([s.body for s in searches]),
                                  strict=True):  # fmt: skip
            members = search.members
            if _failed(answer) and len(members) == 1 and isinstance(search, Composed):
                item = items[members[0]]
                outcomes[members[0]] = Outcome(item.rule, item.window,
                                               error=_error(item.rule, answer))  # fmt: skip
                continue
            read = None if _failed(answer) else search.read(answer)
            if read is None:  # failed: rule by rule; a busy window: per-rule aggregations
                alone = 1 if _failed(answer) else self.batch
                again += composed(items, members, alone)
                continue
            for n, answered in zip(members, read, strict=True):
                item = items[n]
                found = findings(item.rule, item.window, item.tuning, answered)
                outcomes[n] = Outcome(item.rule, item.window, tuple(found))
        return again

    def _judge_ratios(self, outcomes: dict[int, Outcome]) -> None:
        """Keep only the findings of ratio rules that their baseline test confirms."""
        order = [n for n in sorted(outcomes) if outcomes[n].rule.ratio is not None]
        items = [(o.rule, o.window.start, o.window.end, o.findings)
                 for o in (outcomes[n] for n in order)]  # fmt: skip
        for n, (found, error) in zip(order, self.judge(items), strict=True):
            if outcomes[n].error is None:
                outcomes[n] = replace(outcomes[n], findings=found, error=error)

    def _read_samples(self, outcomes: dict[int, Outcome], prepared: Sequence[Parts]) -> None:
        """Fill in the samples of the correlation findings that do not have them yet: one
        search per ``batch`` findings sharing a scope. A failure is the rule's error: its
        alerts are not written without samples, and the window is searched again."""
        wanted: dict[tuple[Any, ...], list[tuple[int, int]]] = {}
        for n, outcome in outcomes.items():
            for k, finding in enumerate(outcome.findings):
                if finding.span is not None:
                    wanted.setdefault(prepared[n].key, []).append((n, k))
        batches = [items[i : i + self.batch] for items in wanted.values()
                   for i in range(0, len(items), self.batch)]  # fmt: skip
        if not batches:
            return
        bodies = [sample_body([(prepared[n], outcomes[n].findings[k]) for n, k in batch])
                  for batch in batches]  # fmt: skip
        filled: dict[int, dict[int, Finding]] = {}
        failed: dict[int, Mapping[str, Any]] = {}
        for batch, answer in zip(batches, self._msearch(bodies), strict=True):
            for i, (n, k) in enumerate(batch):
                if _failed(answer):
                    failed[n] = answer
                else:
                    finding = with_samples(outcomes[n].findings[k], answer, i)
                    filled.setdefault(n, {})[k] = finding
        for n, by_index in filled.items():
            outcome = outcomes[n]
            found = tuple(by_index.get(k, f) for k, f in enumerate(outcome.findings))
            outcomes[n] = replace(outcome, findings=found)
        for n, answer in failed.items():
            outcome = outcomes[n]
            outcomes[n] = Outcome(outcome.rule, outcome.window, error=_error(outcome.rule, answer))

    def _msearch(self, bodies: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
        header: dict[str, Any] = {"index": self.indices.events, "ignore_unavailable": True,
                                  "allow_no_indices": True}  # fmt: skip
        if self.request_cache is not None:
            header["request_cache"] = self.request_cache
        answers: list[Mapping[str, Any]] = []
        for offset in range(0, len(bodies), self.chunk):
            searches: list[Mapping[str, Any]] = []
            for body in bodies[offset : offset + self.chunk]:
                searches += [header, body]
            # pre_filter_shard_size=1: daily indices outside the window's @timestamp range are
            # skipped before the query runs (by default only from 128 shards on).
            answer = self.es.msearch(searches=searches, pre_filter_shard_size=1)
            answers.extend(answer["responses"])
        return answers

    # ------------------------------------------------------------------ alerts
    def alerts(self, outcomes: Iterable[Outcome], now: datetime) -> list[Alert]:
        unique: dict[str, Alert] = {}
        for outcome in outcomes:
            for finding in outcome.findings:
                alert = to_alert(outcome.rule, finding, self.indices, now)
                # The correlation look-back meets the same slot in consecutive windows.
                unique.setdefault(alert.id, alert)
        return list(unique.values())

    def write(self, alerts: Sequence[Alert], *, final: bool = False) -> tuple[int, int]:
        """Write each alert once (see :mod:`soc.alerts.store`): an early alert is only created (a
        later, larger early count never overwrites it); a final one is settled, brought to the
        window's final count, summary and samples."""
        return (store.settle if final else store.create)(self.es, self.indices, alerts)

    # ------------------------------------------------------------------ checkpoints
    def _advance(self, checkpoints: Mapping[str, Checkpoint], outcomes: Sequence[Outcome],
                 report: TickReport, now: datetime) -> None:  # fmt: skip
        by_rule: dict[str, list[Outcome]] = {}
        for outcome in outcomes:
            by_rule.setdefault(outcome.rule.id, []).append(outcome)
        changed: list[Checkpoint] = []
        for rule_id, done in by_rule.items():
            cp = checkpoints[rule_id]
            ok = [o for o in sorted(done, key=lambda o: o.window.start)]
            first_error = next((o for o in ok if o.error), None)
            good = ok if first_error is None else ok[: ok.index(first_error)]
            if first_error is not None:
                report.errors[rule_id] = first_error.error or ""
            changed.append(replace(
                cp, done_until=good[-1].window.end if good else cp.done_until, last_run=now,
                duration_ms=report.seconds * 1000, error=first_error.error if first_error else None,
                windows=cp.windows + len(good), behind=report.behind.get(rule_id, 0),
                alerts=cp.alerts + sum(len(o.findings) for o in good),
            ))  # fmt: skip
            report.windows += len(good)
        self.state.save_checkpoints(changed, now)


def open_windows(rule: Rule, horizon: datetime, now: datetime) -> list[Window]:
    """The rule's windows not yet settled at ``horizon``, cut at ``now``: what early firing
    searches (``[]`` when the window that holds ``now`` just began)."""
    out = []
    start = floor(horizon, rule.interval)
    while start < now - _MIN_OPEN:
        out.append(Window(start, min(start + rule.interval, now)))
        start += rule.interval
    return out


#: An open window younger than this holds too few events to be worth a search.
_MIN_OPEN = timedelta(milliseconds=500)


def _whole(outcome: Outcome) -> Outcome:
    """An open window's findings under the whole window: the id the final evaluation gives."""
    rule, window = outcome.rule, outcome.window
    whole = Window(window.start, window.start + rule.interval)
    if rule.kind.is_correlation or window == whole:
        return outcome  # correlation findings are already slots of the whole windows
    return replace(outcome, window=whole,
                   findings=tuple(replace(f, window=whole) for f in outcome.findings))  # fmt: skip


def _error(rule: Rule, answer: Mapping[str, Any]) -> str:
    """Why a search of ``rule`` failed: refused, or shards failed (partial results would advance
    the checkpoint over events never searched)."""
    if "error" in answer:
        reason = _reason(answer["error"])
        error = f"{rule.where}: Elasticsearch refused the search: {reason or answer['error']}"
        log.warning("rule search failed rule=%s error=%s", rule.id, error)
        return error
    failures = answer["_shards"].get("failures", [])
    reasons = [f.get("reason", {}).get("reason") for f in failures]
    error = f"{rule.where}: {answer['_shards']['failed']} shard(s) failed: {reasons[:1]}"
    log.warning("rule search partially failed rule=%s error=%s", rule.id, error)
    return error


def _failed(answer: Mapping[str, Any]) -> bool:
    return "error" in answer or bool(answer.get("_shards", {}).get("failed"))


def _reason(error: Any) -> str:
    """The most specific reason Elasticsearch gives (the root cause, not "all shards failed")."""
    if not isinstance(error, Mapping):
        return str(error)
    causes = error.get("root_cause") or []
    if causes and isinstance(causes[0], Mapping) and causes[0].get("reason"):
        return str(causes[0]["reason"])
    return str(error.get("reason", error))
