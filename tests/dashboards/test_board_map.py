"""The national board as a map: 34 provinces where they lie, coloured by status, a click (or a key)
to the province, and a legend for every colour and badge on it."""

from __future__ import annotations

import re

from playwright.sync_api import expect

from dashboards import tilemap
from soc.localities import catalogue
from tests.dashboards.conftest import Console, Login, shot


def test_every_province_has_its_own_cell() -> None:
    codes = {p.code for p in catalogue().provinces}
    assert set(tilemap.POSITIONS) == codes
    assert len(set(tilemap.POSITIONS.values())) == len(codes) == 34
    for row, col in tilemap.POSITIONS.values():
        assert 1 <= row <= tilemap.ROWS
        assert 1 <= col <= tilemap.COLUMNS


def test_the_map_runs_north_to_south_and_leads_to_the_province(
    console: Console, login: Login
) -> None:
    page = login("analyst", lang="vi")
    page.goto("/")
    tiles = page.locator("#provinces .tile")
    expect(tiles).to_have_count(34)

    def top(code: str) -> float:
        box = page.locator(f"#provinces .tile[data-code='{code}']").bounding_box()
        assert box is not None
        return float(box["y"])

    # Lào Cai above Hà Nội above Huế above Hồ Chí Minh City above Cà Mau.
    assert top("15") < top("01") < top("46") < top("79") < top("96")
    hanoi = page.locator("#provinces .tile[data-code='01']")
    expect(hanoi).to_have_class(re.compile(r"\bYELLOW\b"))
    expect(hanoi.locator(".status")).to_have_text("VÀNG")
    expect(hanoi).to_have_attribute("title", re.compile(r"^Thành phố Hà Nội: VÀNG"))
    # Every badge shown on a tile is explained in the legend.
    legend = page.locator("#board-legend").inner_text()
    for badge in page.locator("#provinces .tile .sev span").all_inner_texts():
        letter = badge.strip()[0]
        if letter.isalpha():
            assert f"{letter}: " in legend, badge
    for colour in ("XANH", "VÀNG", "ĐỎ"):
        assert colour in legend
    shot(page, "status-map")
    # Keyboard: focus the tile, Enter opens the province.
    hanoi.focus()
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(r"/provinces/01$"))


def test_provincial_it_map_has_only_its_province(console: Console, login: Login) -> None:
    page = login("hanoi-it")
    page.goto("/")
    expect(page.locator("#provinces .tile")).to_have_count(1)
    expect(page.locator("#provinces .tile[data-code='01']")).to_be_visible()
