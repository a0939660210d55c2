"""The one exception tree of soc.

Every error soc raises on purpose derives from :class:`SocError` and carries the context a person
needs to act on it (which file, which index, which locality, what to do). Entry points (the CLI, the
API's problem-details handler) catch ``SocError`` and show ``str(error)``; anything else is a bug.

    SocError
    ├── ConfigError                 a setting or a configuration file is invalid
    │   ├── RouteError                  the email routes file is invalid (names file:line)
    │   ├── TemplateError               an email template override cannot be used
    │   └── CollectorConfigError        a collector or inventory YAML file is invalid (file:line)
    ├── NotifyError                 an email cannot be built or queued
    ├── CollectorError              a collector cannot read, parse or ship as asked
    │   └── ParseError                  one input line cannot become an event (it is dead-lettered)
    ├── LocalityError               an unknown or ambiguous province / commune
    │   └── UnknownLocalityError
    ├── ElasticsearchError          the store cannot be used
    │   ├── ElasticsearchUnavailable    no answer / not healthy in time
    │   ├── ElasticsearchAccessError    credentials refused (401) or privileges missing (403)
    │   ├── ElasticsearchTlsError       the cluster's certificate cannot be verified
    │   ├── IncompatibleMappingError    an existing index disagrees with soc's mapping
    │   └── AlertWriteError             Elasticsearch refused to store an alert (names its id)
    ├── SimulationError             the simulator cannot run as asked
    │   └── ScenarioError               a scenario file is invalid (names file and key)
    ├── LauncherError               the managed local node cannot be installed / started / stopped
    │   ├── JavaNotFoundError
    │   ├── PortInUseError
    │   └── StartupFailedError          carries the tail of the node's log
    ├── RuleError                   a detection rule cannot be loaded or compiled (file:line)
    │   └── UnknownRuleError        no rule has the id or name asked for
    └── AnomalyError                the anomaly model cannot train, load or score as asked
        ├── ModelNotFoundError      no trained model where one is expected
        ├── ModelVersionError       a persisted model was written by another model version
        └── CsvInputError           a CSV series to score is malformed (names file:line)

    SocError (continued: the API's errors, each mapped to one HTTP status by soc.problems)
    ├── AuthError                   who is asking cannot be established or may not do this
    │   ├── NotAuthenticated            no or invalid credentials (401)
    │   │   └── LoginRequired               a dashboard page without a session (redirect)
    │   └── Forbidden                   a known user lacks the role for the action (403)
    └── RequestError                an API request cannot be carried out as asked
        ├── NotFound                    no such item visible to the caller (404)
        ├── InvalidTransition           a lifecycle step the incident lifecycle forbids (409)
        ├── StaleVersion                If-Match names an older version (412)
        ├── PreconditionRequired        a versioned write without If-Match (428)
        └── TooManyAttempts             sign-in attempts throttled; carries retry_after (429)

This module must not import anything from the rest of soc.
"""

from __future__ import annotations


class SocError(Exception):
    """Root of every error soc raises deliberately."""


class ConfigError(SocError):
    """A setting or configuration file is invalid."""


class RouteError(ConfigError):
    """The email routes file is invalid; the message names the file and line."""

    def __init__(self, message: str, path: str | None = None, line: int | None = None) -> None:
        self.message = message
        self.path = path
        self.line = line
        where = f"{path}:{line}: " if path and line else f"{path}: " if path else ""
        super().__init__(f"{where}{message}")


class TemplateError(ConfigError):
    """An email template (an admin's override) cannot be parsed or rendered."""


class CollectorConfigError(ConfigError):
    """A collector configuration or inventory file is invalid; names the file, line and key."""

    def __init__(self, message: str, path: str | None = None, line: int | None = None) -> None:
        self.message = message
        self.path = path
        self.line = line
        where = f"{path}:{line}: " if path and line else f"{path}: " if path else ""
        super().__init__(f"{where}{message}")


class CollectorError(SocError):
    """A collector cannot read, parse or ship as asked (port in use, unreadable spool ...)."""


class ParseError(CollectorError):
    """One input line cannot become an event; the reason goes into its dead letter."""


class NotifyError(SocError):
    """An email cannot be built or handed over (outside the retried SMTP failures)."""


class LocalityError(SocError):
    """A province or commune could not be resolved."""


class UnknownLocalityError(LocalityError):
    """No province or commune matches what was asked for."""


class ElasticsearchError(SocError):
    """Elasticsearch cannot be used as soc needs it."""


class ElasticsearchUnavailable(ElasticsearchError):
    """Elasticsearch did not answer, or did not become healthy in time."""


class ElasticsearchAccessError(ElasticsearchError):
    """The cluster refused soc's credentials (401) or its user lacks a privilege (403): a
    configuration mistake to fix, not an outage to wait out."""


class ElasticsearchTlsError(ElasticsearchError):
    """The TLS handshake with the cluster failed (unknown CA, wrong host name, no CA file)."""


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


class AlertWriteError(ElasticsearchError):
    """Elasticsearch refused to store an alert (other than "already there"); names the alert."""

    def __init__(self, alert_id: str, reason: str) -> None:
        self.alert_id = alert_id
        self.reason = reason
        super().__init__(f"alert {alert_id} not stored: {reason}")


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


class RuleError(SocError):
    """A detection rule cannot be loaded, compiled or run; names the rule file and line."""

    def __init__(self, message: str, path: str | None = None, line: int | None = None) -> None:
        self.message = message
        self.path = path
        self.line = line
        where = f"{path}:{line}: " if path and line else f"{path}: " if path else ""
        super().__init__(f"{where}{message}")


class UnknownRuleError(RuleError):
    """No loaded rule has the id or name asked for."""


class AnomalyError(SocError):
    """The anomaly model cannot train, load or score as asked."""


class ModelNotFoundError(AnomalyError):
    """No trained anomaly model exists where one is expected (train one first)."""


class ModelVersionError(AnomalyError):
    """A persisted anomaly model has another format version than this soc reads."""


class CsvInputError(AnomalyError):
    """A CSV time series to score is malformed; the message names the file and line."""


class AuthError(SocError):
    """Who is asking cannot be established, or may not do what they ask."""


class NotAuthenticated(AuthError):
    """No credentials, or credentials that match no user (never says which part failed)."""


class LoginRequired(NotAuthenticated):
    """A dashboard page asked for without a valid session: the console sends people to log in."""


class Forbidden(AuthError):
    """A known user whose role does not allow the action."""


class RequestError(SocError):
    """An API request cannot be carried out as asked; the message names what and why."""


class NotFound(RequestError):
    """No item with that id is visible to the caller (another province's item is "not found")."""


class InvalidTransition(RequestError):
    """An incident lifecycle transition that the lifecycle does not allow."""


class StaleVersion(RequestError):
    """The ``If-Match`` version is not the current one: someone else changed the item first."""


class PreconditionRequired(RequestError):
    """A write to a versioned item without ``If-Match``."""


class TooManyAttempts(RequestError):
    """Too many failed sign-ins for this account or from this address: wait ``retry_after``
    seconds (the API answers 429 with ``Retry-After``)."""

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after
