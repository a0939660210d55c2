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
    handler.addFilter(_one_line_transport_retries)
    root.addHandler(handler)
    root.setLevel(level.upper())
    for noisy in ("elastic_transport", "urllib3"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    configure._done = True  # type: ignore[attr-defined]


def _one_line_transport_retries(record: logging.LogRecord) -> bool:
    """The client logs each retry on another node with a full stack trace; one line with the
    error says the same (which node, what failed) without burying the log."""
    if record.name.startswith("elastic_transport") and record.exc_info:
        error = record.exc_info[1]
        record.msg = f"{record.getMessage()}: {type(error).__name__}: {error}"
        record.args = None
        record.exc_info = None
        record.exc_text = None
    return True
