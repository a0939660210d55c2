"""Every relative link of README.md, docs/*.md and bench/reports/README.md names an existing file.

Owns only that check (no network): documents are moved between the README, docs/ and
bench/reports/, and a moved section's relative links must still resolve from its new place.
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LINK = re.compile(r"\]\(([^)\s]+)\)")
FENCE = re.compile(r"^```.*?^```", re.DOTALL | re.MULTILINE)


def documents() -> list[Path]:
    docs = sorted((ROOT / "docs").glob("*.md"))
    return [ROOT / "README.md", *docs, ROOT / "bench/reports/README.md"]


def broken_links(document: Path) -> list[str]:
    text = FENCE.sub("", document.read_text(encoding="utf-8"))
    broken = []
    for target in LINK.findall(text):
        if re.match(r"[a-z][a-z0-9+.-]*:", target) or target.startswith("#"):
            continue
        path = target.split("#", 1)[0]
        if not (document.parent / path).exists():
            broken.append(target)
    return broken


def test_every_relative_link_resolves() -> None:
    found = {str(doc.relative_to(ROOT)): broken_links(doc) for doc in documents()}
    assert {name: links for name, links in found.items() if links} == {}


def test_the_check_sees_a_broken_link(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    (tmp_path / "there.md").write_text("x\n", encoding="utf-8")
    page.write_text(
        "[ok](there.md#part) [web](https://example.org) [gone](missing.md)\n"
        "```\n[code](nope.md)\n```\n",
        encoding="utf-8",
    )
    assert broken_links(page) == ["missing.md"]
