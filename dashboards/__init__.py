"""The analyst console: server-rendered pages (Jinja2, autoescaped) served by ``soc api``.

:func:`dashboards.views.install` mounts the pages and ``/static`` into the FastAPI app. Pages reuse
soc's service layers (incidents, alerts, status, notify, the rules service); nothing in this package
queries Elasticsearch itself or decides who may see what beyond asking the user's scope.
"""
