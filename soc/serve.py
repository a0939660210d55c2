"""The ``soc api`` command: serve :func:`soc.app.create_app` with uvicorn.

Only parses options and starts the server; configuration comes from the one ``Settings``.
"""

from __future__ import annotations

from typing import Annotated

import typer

from soc import logs
from soc.config import load_settings

app = typer.Typer(
    help="The JSON API (/api/v1, OpenAPI at /api/v1/docs).", invoke_without_command=True
)


@app.callback()
def serve(
    host: Annotated[str | None, typer.Option(help="Default SOC_API_HOST.")] = None,
    port: Annotated[int | None, typer.Option(help="Default SOC_API_PORT.")] = None,
    workers: Annotated[int, typer.Option(min=1, help="Processes (the app is stateless).")] = 1,
) -> None:
    """Serve the API until interrupted."""
    import uvicorn

    settings = load_settings()
    logs.configure(settings.log_level)
    uvicorn.run(
        "soc.app:create_app",
        factory=True,
        host=host or settings.api_host,
        port=port or settings.api_port,
        workers=workers,
        log_level=settings.log_level.lower(),
    )
