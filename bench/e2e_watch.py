"""What ``bench/e2e_drills.py`` watches while the demo runs: the memory of every process tree
(:class:`Footprint`) and, for each started scenario, when its alert, incident and sent email were
first seen (:class:`Observer`)."""

from __future__ import annotations

import threading
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from elasticsearch import Elasticsearch

from soc.demo.measure import Timing, timing
from soc.es.indices import Indices
from soc.simulate import labels as labels_file
from soc.simulate.models import Label


class Watched(Protocol):
    """What the observer needs of the benchmark's run."""

    @property
    def demo_dir(self) -> Path: ...
    @property
    def es(self) -> Elasticsearch: ...
    @property
    def indices(self) -> Indices: ...


def say(text: str) -> None:
    print(f"{datetime.now(UTC):%H:%M:%S} {text}", flush=True)


# ------------------------------------------------------------------ footprint
def _tree() -> dict[int, list[int]]:
    kids: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        kids.setdefault(ppid, []).append(int(entry.name))
    return kids


def rss_kib(pid: int, key: str = "VmRSS") -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


class Footprint(threading.Thread):
    """Samples the RSS of every process tree (a child and its descendants) every 2 s."""

    def __init__(self, roots: Any, es: Elasticsearch) -> None:
        super().__init__(daemon=True)
        self.roots = roots  # callable -> {name: pid}
        self.es = es
        self.peak: Counter[str] = Counter()
        self.peak_total = 0
        self.heap_peak = 0
        self.heap_max = 0
        self.stop_event = threading.Event()
        self.misses: list[str] = []

    def run(self) -> None:
        while not self.stop_event.wait(2.0):
            self.sample()

    def sample(self) -> None:
        tree = _tree()
        total = 0
        for name, pid in self.roots().items():
            # The supervisor's own memory only: its children are counted under their names.
            pids, todo = [], [pid]
            while todo:
                p = todo.pop()
                pids.append(p)
                if name != "supervisor":
                    todo.extend(tree.get(p, []))
            rss = sum(rss_kib(p) for p in pids)
            self.peak[name] = max(self.peak[name], rss)
            total += rss
        self.peak_total = max(self.peak_total, total)
        try:
            stats = self.es.nodes.stats(metric="jvm")["nodes"]
            for node in stats.values():
                mem = node["jvm"]["mem"]
                self.heap_peak = max(self.heap_peak, int(mem["heap_used_in_bytes"]))
                self.heap_max = int(mem["heap_max_in_bytes"])
        except Exception as exc:  # Elasticsearch stopped by a drill: no heap sample this round
            self.misses.append(type(exc).__name__)


# ------------------------------------------------------------------ observed latency
class Observer(threading.Thread):
    """Polls every 2 s, for each started scenario, whether its alert, incident and sent email
    exist yet, and keeps the wall-clock time each was first seen (stored timestamps such as an
    incident's ``created`` are the alert's own time, by design, so they cannot tell when the
    incident was written)."""

    def __init__(self, run: Watched) -> None:
        super().__init__(daemon=True)
        self.run_ = run
        self.seen: dict[str, dict[str, datetime]] = {}
        self.stop_event = threading.Event()

    def run(self) -> None:
        path = self.run_.demo_dir / "live-labels.jsonl"
        while not self.stop_event.wait(2.0):
            try:
                self.poll(labels_file.read(path))
            except Exception as exc:  # Elasticsearch stopped by a drill: try again next round
                say(f"  observer: {type(exc).__name__}")

    def poll(self, labels: list[Label]) -> None:
        now = datetime.now(UTC)
        for label in labels:
            seen = self.seen.setdefault(label.scenario_id, {})
            if label.start > now or len(seen) == 3:
                continue
            found = timing(self.run_.es, self.run_.indices, label)
            for stage in ("alert", "incident", "email"):
                if getattr(found, stage) is not None and stage not in seen:
                    seen[stage] = now

    def timings(self, labels: list[Label]) -> list[Timing]:
        out = []
        for label in labels:
            seen = self.seen.get(label.scenario_id, {})
            out.append(Timing(label.scenario_id, label.kind, label.start, seen.get("alert"),
                              seen.get("incident"), seen.get("email")))  # fmt: skip
        return out
