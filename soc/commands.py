"""The plumbing every ``soc`` sub-command shares: settings and logging once, plain errors.

Each package's typer app (``soc collect``, ``soc rules``, ``soc notify`` …) imports these two
helpers instead of ``soc.cli``, which imports the packages' apps (the other way round would be a
cycle). Nothing here knows any command.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import TYPE_CHECKING, ParamSpec, TypeVar

import typer
from rich.console import Console
from rich.markup import escape

from soc import logs
from soc.errors import SocError

if TYPE_CHECKING:
    from soc.config import Settings

P = ParamSpec("P")
R = TypeVar("R")

_err = Console(stderr=True, highlight=False)


def command_settings() -> Settings:
    """The settings of this command, with logging configured from them.

    pydantic-settings is imported here, not at module level, to keep ``soc --help`` fast.
    """
    from soc.config import load_settings

    settings = load_settings()
    logs.configure(settings.log_level)
    return settings


def handles_errors(fn: Callable[P, R]) -> Callable[P, R]:
    """Print a :class:`SocError` plainly and exit 1 instead of a traceback.

    Messages quote file names and values from users and logs: they are escaped, never read as
    markup.
    """

    @wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return fn(*args, **kwargs)
        except SocError as exc:
            _err.print(f"[bold red]error:[/] {escape(str(exc))}", soft_wrap=True)
            raise typer.Exit(1) from None

    return wrapper
