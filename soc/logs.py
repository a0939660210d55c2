"""Logging configuration, done once at an entry point (the CLI, the test session).

Modules log with ``logging.getLogger(__name__)`` and never configure handlers themselves. Records
are one line each, ``key=value`` after the message, so they can be grepped and parsed. Never log
OTP codes, tokens, passwords or national ID numbers.
"""

from __future__ import annotations

import logging
import sys

_FORMAT = "%(asctime)s level=%(levelname)s logger=%(name)s %(message)s"


def configure(level: str = "INFO") -> None:
    """Send soc's logs to stderr at ``level``; quieten chatty libraries."""
    root = logging.getLogger()
    if getattr(configure, "_done", False):
        root.setLevel(level.upper())
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(_FORMAT, datefmt="%Y-%m-%dT%H:%M:%S%z"))
    root.addHandler(handler)
    root.setLevel(level.upper())
    for noisy in ("elastic_transport", "urllib3"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    configure._done = True  # type: ignore[attr-defined]
