"""The console in a real browser: uvicorn serving ``create_app`` against the session's
Elasticsearch, and Debian's Chromium driven by Playwright (never a downloaded browser).

One app, one index prefix, one browser for the whole package (browser start-up is the slow part);
each test opens fresh browser contexts (own cookies) and logs in through the login form.
"""

from __future__ import annotations

import shutil
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import pytest
import uvicorn
import yaml
from elasticsearch import Elasticsearch
from playwright.sync_api import Browser, Page, expect

from soc.app import create_app
from soc.auth import service as auth
from soc.config import PROJECT_ROOT, Settings, load_settings
from soc.es.indices import Indices
from soc.es.templates import teardown
from tests.conftest import free_port
from tests.dashboards.seed import Seeded, seed

CHROMIUM = Path("/usr/bin/chromium")
SCREENSHOTS = PROJECT_ROOT / "docs" / "screenshots"
PASSWORD = "correct horse battery staple"
USERS: dict[str, dict[str, str | list[str]]] = {
    "admin": {"role": "admin"},
    "analyst": {"role": "analyst"},
    "hanoi-it": {"role": "provincial_it", "provinces": ["01"]},
    "hcm-it": {"role": "provincial_it", "provinces": ["79"]},
}
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@dataclass(frozen=True)
class Console:
    url: str
    settings: Settings
    indices: Indices
    es: Elasticsearch
    data: Seeded


def _users_file(directory: Path) -> Path:
    hashed = auth.hash_password(PASSWORD)
    path = directory / "users.yaml"
    entries = [{"name": n, "password_hash": hashed, **spec} for n, spec in USERS.items()]
    path.write_text(yaml.safe_dump({"users": entries}), encoding="utf-8")
    return path


@pytest.fixture(scope="package")
def console(es: Elasticsearch, es_url: str) -> Iterator[Console]:
    """uvicorn on a free port of 127.0.0.1 serving the real app, with seeded data."""
    prefix = f"t{uuid.uuid4().hex[:10]}"
    work = Path(tempfile.mkdtemp(prefix="soc-dashboards-"))
    rules = work / "rules"
    shutil.copytree(PROJECT_ROOT / "rules", rules)
    settings = load_settings(
        es_url=es_url,
        index_prefix=prefix,
        var_dir=work,
        auth_users_file=_users_file(work),
        rules_dir=rules,
        dashboards_poll_seconds=0.5,
    )
    app = create_app(settings, es)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while not server.started:
            if time.monotonic() > deadline or not thread.is_alive():
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.05)
        indices = Indices(prefix)
        yield Console(
            f"http://127.0.0.1:{port}", settings, indices, es, seed(es, indices, settings)
        )
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        teardown(es, prefix)
        shutil.rmtree(work, ignore_errors=True)


@pytest.fixture(scope="package")
def browser() -> Iterator[object]:
    if not CHROMIUM.exists():
        pytest.skip("no /usr/bin/chromium (scripts/ensure-chromium.sh installs Debian's)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        # launch() gives the browser a fresh temporary profile, removed when it closes.
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=ARGS)
        try:
            yield browser
        finally:
            browser.close()


def shot(page: Page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=False)


class Login(Protocol):
    """The ``login`` fixture: sign ``name`` in, in a fresh browser context."""

    def __call__(self, name: str, lang: str = "en", bypass_csp: bool = False) -> Page: ...


@pytest.fixture
def login(browser: Browser, console: Console) -> Iterator[Login]:
    """``login(name)`` opens a fresh context (own cookies) and signs in through the form."""
    contexts = []

    def sign_in(name: str, lang: str = "en", bypass_csp: bool = False) -> Page:
        context = browser.new_context(
            base_url=console.url,
            viewport={"width": 1280, "height": 860},
            locale="vi-VN",
            bypass_csp=bypass_csp,
        )
        contexts.append(context)
        page = context.new_page()
        page.on("dialog", lambda d: d.dismiss())
        page.goto(f"/lang/{lang}?next=/login")
        page.fill("input[name=username]", name)
        page.fill("input[name=password]", PASSWORD)
        page.click("form[action='/login'] button[type=submit]")
        expect(page.locator("#who")).to_contain_text(name)
        return page

    yield sign_in
    for context in contexts:
        context.close()
