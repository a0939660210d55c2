"""The console's language: Vietnamese by default, English on request (a cookie).

The labels themselves are the ``console`` domain of the translation catalogue
(``soc/locale/<lang>/LC_MESSAGES/console.po``, read by :mod:`soc.i18n`); templates write
``_("key")`` through Jinja's i18n extension. This module must not format data (templates do).
"""

from __future__ import annotations

from soc.i18n import DEFAULT, LANGUAGES, text

__all__ = ["DEFAULT", "LANGUAGES", "label", "pick"]


def label(key: str, lang: str) -> str:
    """The label of ``key`` in ``lang`` (``vi`` or ``en``); English, then the key, if missing."""
    return text("console", key, lang)


def pick(lang: str | None) -> str:
    return lang if lang in LANGUAGES else DEFAULT
