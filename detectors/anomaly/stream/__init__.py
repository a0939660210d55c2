"""One streaming anomaly engine for every series soc judges (live buckets and any CSV file).

Public surface: :class:`Engine` (many series as rows of a :class:`Block`, one array step per
observation; :meth:`Engine.replay` runs whole series), :class:`EngineConfig`, :class:`Scores`,
:class:`Verdict`, :class:`Calendar` (with :data:`PLAIN` and :data:`VIETNAM`). How it works:
``engine.py``.
"""

from detectors.anomaly.stream.config import EngineConfig
from detectors.anomaly.stream.engine import Engine, Verdict
from detectors.anomaly.stream.season import PLAIN, VIETNAM, Calendar
from detectors.anomaly.stream.vector import NOTES, Block, Scores

__all__ = [
    "NOTES",
    "PLAIN",
    "VIETNAM",
    "Block",
    "Calendar",
    "Engine",
    "EngineConfig",
    "Scores",
    "Verdict",
]
