"""The API docs page (``/api/v1/docs``): Swagger UI served from this process, never a CDN.

Swagger UI 5's files come from the ``fastapi-swagger`` wheel (only its files: Swagger UI 4, as in
``swagger-ui-bundle``, cannot read the OpenAPI 3.1 FastAPI writes) and are mounted under
``/api/v1/docs/assets``; the page itself and the script that starts Swagger UI are files of this
package, so the page holds no inline script and works under the console's CSP
(``script-src 'self'``) and on a network with no way out. It must not serve anything but these
files and the OpenAPI document FastAPI already makes.
"""

from __future__ import annotations

from importlib import resources

from fastapi import FastAPI
from fastapi.responses import HTMLResponse, Response
from fastapi.staticfiles import StaticFiles


def install(app: FastAPI, prefix: str) -> None:
    """Serve the docs page at ``<prefix>/docs`` for the app's OpenAPI document."""
    here = resources.files(__name__)
    page = here.joinpath("docs.html").read_text("utf-8")
    script = here.joinpath("docs-init.js").read_text("utf-8")
    assets = f"{prefix}/docs/assets"
    html = page.replace("{assets}", assets).replace("{prefix}", prefix)
    init = script.replace("{openapi}", str(app.openapi_url))
    files = resources.files("fastapi_swagger").joinpath("resources")
    app.mount(assets, StaticFiles(directory=str(files)), name="apidocs-assets")

    @app.get(f"{prefix}/docs", include_in_schema=False)
    def docs() -> HTMLResponse:
        return HTMLResponse(html)

    @app.get(f"{prefix}/docs/init.js", include_in_schema=False)
    def docs_init() -> Response:
        return Response(init, media_type="text/javascript")
