"""The Sigma engine's searches: bodies for a rule over a window, the strategies that share one
search between rules, and the typed answers and findings read from Elasticsearch's replies.

- ``models``: tuning, findings, search parts, typed answers (places, sliding sub-windows);
- ``bodies``: request bodies (per-rule aggregations, composed, samples);
- ``named``, ``scan``, ``counting``: the scans of plain rules and of correlations;
- ``answers``: aggregations read into answers, and answers into findings;
- ``strategies``: the three ways of searching, one interface.
Nothing here sends a request (``detectors.sigma.runner`` does).
"""

from detectors.sigma.search.answers import findings, split
from detectors.sigma.search.bodies import (
    body,
    compose,
    needs_samples,
    parts,
    resolution,
    resolution_of,
    sample_body,
    with_samples,
)
from detectors.sigma.search.models import (
    SCAN_LIMIT,
    Answer,
    Exception_,
    Finding,
    Options,
    Parts,
    Tuning,
)

__all__ = [
    "SCAN_LIMIT",
    "Answer",
    "Exception_",
    "Finding",
    "Options",
    "Parts",
    "Tuning",
    "body",
    "compose",
    "findings",
    "needs_samples",
    "parts",
    "resolution",
    "resolution_of",
    "sample_body",
    "split",
    "with_samples",
]
