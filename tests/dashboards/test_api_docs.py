"""The API docs page works in a real browser, offline and under the console's CSP: Swagger UI's
files come from ``soc api`` itself (the ``fastapi-swagger`` wheel), never from a CDN."""

from __future__ import annotations

from typing import Any

from tests.dashboards.conftest import Console


def test_api_docs_render_offline_under_the_csp(console: Console, browser: Any) -> None:
    context = browser.new_context()
    outside: list[str] = []
    problems: list[str] = []

    def only_this_host(route: Any) -> None:
        if route.request.url.startswith(console.url):
            route.continue_()
        else:  # a province's network with no way out
            outside.append(route.request.url)
            route.abort()

    context.route("**/*", only_this_host)
    page = context.new_page()
    page.on("console", lambda msg: problems.append(msg.text) if msg.type == "error" else None)
    page.on("pageerror", lambda exc: problems.append(str(exc)))
    response = page.goto(f"{console.url}/api/v1/docs")
    assert response is not None
    assert response.status == 200
    assert "script-src 'self'" in response.headers["content-security-policy"]
    page.wait_for_selector(".opblock", timeout=20_000)
    assert page.locator(".opblock").count() > 20  # every route of the API is listed
    assert "soc API" in page.locator(".title").first.inner_text()
    page.locator(".opblock-summary-path", has_text="/api/v1/health").first.click()
    page.wait_for_selector(".try-out__btn", timeout=5_000)
    assert outside == []
    assert [p for p in problems if "Content Security Policy" in p or "Refused" in p] == []
    context.close()
