"""One streaming anomaly engine for every series soc judges (live buckets and any CSV file).

Public surface: :class:`Engine`, :class:`EngineConfig`, :class:`SeriesState`, :class:`Verdict`,
:class:`Calendar` (with :data:`PLAIN` and :data:`VIETNAM`). How it works: ``engine.py``.
"""

from detectors.anomaly.stream.config import EngineConfig
from detectors.anomaly.stream.engine import Engine, Verdict
from detectors.anomaly.stream.season import PLAIN, VIETNAM, Calendar
from detectors.anomaly.stream.state import SeriesState

__all__ = ["PLAIN", "VIETNAM", "Calendar", "Engine", "EngineConfig", "SeriesState", "Verdict"]
