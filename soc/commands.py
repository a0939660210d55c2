"""The plumbing every ``soc`` sub-command shares: settings and logging once, plain errors.

Each package's typer app (``soc collect``, ``soc rules``, ``soc notify`` …) imports these two
helpers instead of ``soc.cli``, which imports the packages' apps (the other way round would be a
cycle). Nothing here knows any command. :func:`lazy_module` lets a group's module name a heavy
module (pySigma, scikit-learn, scipy) at the top yet import it only when a command uses it, so that
``soc rules --help`` costs no more than ``soc --help``.
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Callable
from functools import wraps
from types import ModuleType
from typing import TYPE_CHECKING, ParamSpec, TypeVar

import typer
from rich.console import Console
from rich.markup import escape

from soc import logs
from soc.errors import SocError

if TYPE_CHECKING:
    from soc.config import Settings


def lazy_module(name: str) -> ModuleType:
    """``name`` as a module object that runs its code on first attribute access (the standard
    library's ``importlib.util.LazyLoader``); its parent packages are imported now."""
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.find_spec(name)
    if spec is None or spec.loader is None:
        raise ImportError(f"no module named {name!r}")
    loader = importlib.util.LazyLoader(spec.loader)
    spec.loader = loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    loader.exec_module(module)
    return module


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
