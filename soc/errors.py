"""The one exception tree of soc.

Every error soc raises on purpose derives from :class:`SocError` and carries the context a person
needs to act on it (which file, which index, which locality, what to do). Entry points (the CLI, the
API's problem-details handler) catch ``SocError`` and show ``str(error)``; anything else is a bug.

    SocError
    ├── ConfigError                 a setting or a configuration file is invalid
    ├── LocalityError               an unknown or ambiguous province / commune
    │   └── UnknownLocalityError
    ├── ElasticsearchError          the store cannot be used
    │   ├── ElasticsearchUnavailable    no answer / not healthy in time
    │   └── IncompatibleMappingError    an existing index disagrees with soc's mapping
    ├── SimulationError             the simulator cannot run as asked
    │   └── ScenarioError               a scenario file is invalid (names file and key)
    └── LauncherError               the managed local node cannot be installed / started / stopped
        ├── JavaNotFoundError
        ├── PortInUseError
        └── StartupFailedError          carries the tail of the node's log

This module must not import anything from the rest of soc.
"""

from __future__ import annotations


class SocError(Exception):
    """Root of every error soc raises deliberately."""


class ConfigError(SocError):
    """A setting or configuration file is invalid."""


class LocalityError(SocError):
    """A province or commune could not be resolved."""


class UnknownLocalityError(LocalityError):
    """No province or commune matches what was asked for."""


class ElasticsearchError(SocError):
    """Elasticsearch cannot be used as soc needs it."""


class ElasticsearchUnavailable(ElasticsearchError):
    """Elasticsearch did not answer, or did not become healthy in time."""


class IncompatibleMappingError(ElasticsearchError):
    """An existing index has a mapping that conflicts with the one soc installs."""

    def __init__(self, index: str, conflicts: list[str]) -> None:
        self.index = index
        self.conflicts = conflicts
        listed = "; ".join(conflicts)
        super().__init__(
            f"index {index!r} has a mapping incompatible with soc's: {listed}. "
            "Reindex it into a new index or delete it (its data is lost) and run `soc es setup`."
        )


class SimulationError(SocError):
    """The simulator cannot run as asked (bad period, unreadable labels, port in use ...)."""


class ScenarioError(SimulationError):
    """A scenario file is invalid; the message names the file and the key."""


class LauncherError(SocError):
    """The managed local Elasticsearch node cannot be installed, started or stopped."""


class JavaNotFoundError(LauncherError):
    """No Java runtime able to run the Elasticsearch server was found."""


class PortInUseError(LauncherError):
    """The port the managed node should listen on is taken by another process."""


class StartupFailedError(LauncherError):
    """The managed node exited or did not become healthy; carries the tail of its log."""

    def __init__(self, reason: str, log_path: str, log_tail: str) -> None:
        self.reason = reason
        self.log_path = log_path
        self.log_tail = log_tail
        super().__init__(
            f"Elasticsearch did not start: {reason}\n--- last lines of {log_path} ---\n{log_tail}"
        )
