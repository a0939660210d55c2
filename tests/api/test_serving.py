"""How each API worker runs: its thread pool's size and its garbage collector after start-up."""

from __future__ import annotations

import gc

import anyio
import anyio.to_thread

from soc.app import _tune_worker
from soc.config import load_settings
from tests.api.conftest import Api


def test_a_started_app_runs_its_sync_routes_on_the_configured_threads(shared_api: Api) -> None:
    async def tokens() -> float:
        return anyio.to_thread.current_default_thread_limiter().total_tokens

    assert shared_api.client.portal is not None
    assert shared_api.client.portal.call(tokens) == shared_api.settings.api_threads
    assert gc.get_freeze_count() > 0  # SOC_API_GC_FREEZE is on by default


def test_tuning_sets_the_event_loops_thread_limit_and_freezes_once_asked() -> None:
    async def tuned(threads: int, freeze: bool) -> tuple[float, int]:
        gc.unfreeze()
        _tune_worker(load_settings(api_threads=threads, api_gc_freeze=freeze))
        limit = anyio.to_thread.current_default_thread_limiter().total_tokens
        return limit, gc.get_freeze_count()

    try:
        assert anyio.run(tuned, 3, False) == (3, 0)
        limit, frozen = anyio.run(tuned, 5, True)
        assert limit == 5
        assert frozen > 0
    finally:
        gc.freeze()  # as the shared app left it
