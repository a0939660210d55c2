"""Lazy loading of the ``soc`` sub-command groups, so that ``soc --help`` starts at once.

The packages behind some groups import heavy libraries at module level (scikit-learn and scipy
for ``soc anomaly``, pySigma for ``soc rules``, the Elasticsearch client nearly everywhere).
Importing them all to print a list of names took ~3 s. Here each group is known by its module
path and its one-line help; the module is imported only when the group itself is used (run, or
asked for its own ``--help``). The listing in ``soc --help`` comes from the static help below;
``tests/test_cli.py`` checks that it matches each group's own help.

This module must not import any sub-command package at module level.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any

import typer

# typer vendors click (typer._click); its Group, Command and Context are what TyperGroup uses.
from typer import _click as click
from typer.core import TyperGroup


@dataclass(frozen=True)
class LazyGroup:
    """One sub-command group: ``module:attribute`` of its ``typer.Typer``, and its short help."""

    target: str
    help: str

    def load(self) -> typer.Typer:
        module, _, attribute = self.target.partition(":")
        loaded = getattr(importlib.import_module(module), attribute)
        if not isinstance(loaded, typer.Typer):
            raise TypeError(f"{self.target} is not a typer.Typer")
        return loaded


# Order is the order of `soc --help`.
LAZY_GROUPS: dict[str, LazyGroup] = {
    "anomaly": LazyGroup("detectors.anomaly.cli:app",
                         "The anomaly model: train it, score past periods or any CSV series."),
    "simulate": LazyGroup("soc.simulate.cli:app",
                          "Simulated public-service traffic, scenarios and ground truth."),
    "notify": LazyGroup("soc.notify.cli:app",
                        "Incident emails: routes, previews, the outbox and the demo mail sink."),
    "rules": LazyGroup("detectors.cli:rules_app",
                       "Sigma rules: validate, test, convert, backtest, tune."),
    "detect": LazyGroup("detectors.cli:detect_app", "Run the Sigma rules on schedule."),
    "collect": LazyGroup("collectors.cli:app",
                         "Collectors: ship public-service logs into Elasticsearch."),
    "demo": LazyGroup("soc.demo.cli:app",
                      "The whole SOC on its embedded defaults (the README's main job)."),
    "api": LazyGroup("soc.serve:app", "The JSON API (/api/v1, OpenAPI at /api/v1/docs)."),
    "auth": LazyGroup("soc.auth.cli:app", "Users, password hashes and API tokens."),
    "incidents": LazyGroup("soc.pipeline:incidents_app",
                           "Incidents: group alerts into incidents."),
}  # fmt: skip


class _Placeholder(TyperGroup):
    """Stands for a group in the listing; loads the real one when it is parsed or invoked."""

    def __init__(self, name: str, spec: LazyGroup) -> None:
        super().__init__(name=name, help=spec.help, short_help=spec.help)
        self._spec = spec
        self._real: TyperGroup | None = None

    def real(self) -> TyperGroup:
        if self._real is None:
            self._real = typer.main.get_group(self._spec.load())
            self._real.name = self.name
        return self._real

    def make_context(
        self,
        info_name: str | None,
        args: list[str],
        parent: click.Context | None = None,
        **extra: Any,
    ) -> click.Context:
        return self.real().make_context(info_name, args, parent=parent, **extra)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        return self.real().get_command(ctx, cmd_name)

    def list_commands(self, ctx: click.Context) -> list[str]:
        return self.real().list_commands(ctx)


class LazyTyperGroup(TyperGroup):
    """The root group: its own commands, then the lazy groups, loaded on use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return [*super().list_commands(ctx), *LAZY_GROUPS]

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        spec = LAZY_GROUPS.get(cmd_name)
        if spec is None:
            return super().get_command(ctx, cmd_name)
        return _Placeholder(cmd_name, spec)
