"""Every console page as every role, in Chromium: each opens with its heading, or is refused.

The other tests walk what each page does; this one guards the page x role grid as a whole (an
admin-only page is 403 for the others, every other page opens for all three roles, within their
provinces: the incident is Hà Nội's, the provincial user's own).
"""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.dashboards.conftest import Console

ADMIN_ONLY = {"/rules", "/outbox"}


@pytest.mark.parametrize("who", ["admin", "analyst", "hanoi-it"])
def test_every_page_opens_or_is_refused_as_the_role_says(
    console: Console, login: object, who: str
) -> None:
    page = login(who)  # type: ignore[operator]
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    incident = f"/incidents/{console.data.xss_incident}"
    paths = ["/", "/provinces/01", "/alerts", "/incidents", incident, "/durations", *ADMIN_ONLY]
    for path in paths:
        response = page.goto(path)
        assert response is not None
        refused = path in ADMIN_ONLY and who != "admin"
        assert response.status == (403 if refused else 200), (who, path)
        expect(page.locator("h1").first).to_be_visible()
        if refused:
            expect(page.locator("h1").first).to_contain_text("403")
        else:
            expect(page.locator("#who")).to_contain_text(who)
    assert errors == []
