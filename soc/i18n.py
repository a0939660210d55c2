"""The one translation catalogue: Vietnamese and English wording, as gettext ``.po`` files.

``soc/locale/<lang>/LC_MESSAGES/<domain>.po`` holds every text people read in one language, one
domain per audience: ``console`` (the analyst console's labels), ``email`` (incident emails) and
``services`` (the watched systems' names). msgids are stable keys (``app``, ``event.new``,
``vneid``), so templates and administrators' email overrides name a text, not its English form.
Catalogues are read with Babel at first use: a fresh clone needs no compile step. A text missing
in Vietnamese falls back to English, then to its key, so a forgotten translation shows up as
readable text instead of an error. Jinja templates reach it through ``jinja2.ext.i18n``
(``_("key")``); this module must not format data.
"""

from __future__ import annotations

import gettext
from collections.abc import Iterator, Mapping
from functools import cache
from io import BytesIO
from pathlib import Path
from typing import Literal

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import Translations

LOCALE_DIR = Path(__file__).resolve().parent / "locale"
LANGUAGES = ("vi", "en")
DEFAULT = "vi"
Domain = Literal["console", "email", "services"]


@cache
def translations(domain: Domain, lang: str) -> gettext.NullTranslations:
    """The catalogue of ``domain`` in ``lang`` (``vi`` falls back to ``en``, ``en`` to the key)."""
    lang = lang if lang in LANGUAGES else DEFAULT
    path = LOCALE_DIR / lang / "LC_MESSAGES" / f"{domain}.po"
    with path.open("rb") as po:
        catalog = read_po(po, locale=lang, domain=domain)
    compiled = BytesIO()
    write_mo(compiled, catalog)
    compiled.seek(0)
    found = Translations(compiled, domain=domain)
    if lang != "en":
        found.add_fallback(translations(domain, "en"))
    return found


def text(domain: Domain, key: str, lang: str) -> str:
    """The text of ``key`` in ``lang``."""
    return translations(domain, lang).gettext(key)


class Texts(Mapping[str, str]):
    """A domain's texts in one language as a read-only mapping (``t.what``, ``t["event.new"]``
    in email templates, as administrators' overrides already write them)."""

    def __init__(self, domain: Domain, lang: str) -> None:
        self._gettext = translations(domain, lang).gettext
        self._keys = _keys(domain)

    def __getitem__(self, key: str) -> str:
        if key not in self._keys:
            raise KeyError(key)
        return self._gettext(key)

    def __iter__(self) -> Iterator[str]:
        return iter(self._keys)

    def __len__(self) -> int:
        return len(self._keys)


@cache
def _keys(domain: Domain) -> frozenset[str]:
    with (LOCALE_DIR / "en" / "LC_MESSAGES" / f"{domain}.po").open("rb") as po:
        return frozenset(m.id for m in read_po(po) if m.id and isinstance(m.id, str))
