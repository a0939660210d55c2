"""``soc auth``: make password hashes for the users file, and create or revoke API tokens.

Commands only parse arguments and call ``soc.auth.service``; a token is printed once, never logged.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from soc.commands import lazy_module
from soc.errors import SocError

if TYPE_CHECKING:
    from soc.auth import policy
    from soc.auth import service as auth
    from soc.config import Settings
else:  # the Elasticsearch client and pydantic-settings load when a command runs, not for --help
    policy = lazy_module("soc.auth.policy")
    auth = lazy_module("soc.auth.service")

app = typer.Typer(help="Users, password hashes and API tokens.", no_args_is_help=True)


def _token_settings() -> Settings:
    """The settings, with the running demo's users when ``SOC_AUTH_DEMO_PASSWORD`` is unset.

    ``soc demo`` gives its children the demo password in their environment only, so a token
    command typed in another terminal knew no ``analyst``. In development the demo's password
    file (``<var_dir>/demo/demo-password``) stands in for the variable; production never reads it.
    """
    from pydantic import SecretStr

    from soc.config import load_settings

    settings = load_settings()
    if settings.auth_demo_password is not None or settings.environment != "development":
        return settings
    path = settings.demo_password_file
    try:
        password = path.read_text(encoding="utf-8").strip()
    except OSError:
        return settings
    if not password:
        return settings
    return settings.model_copy(update={"auth_demo_password": SecretStr(password)})


def _fail(exc: SocError) -> typer.Exit:
    typer.echo(f"error: {exc}", err=True)
    return typer.Exit(1)


@app.command("hash-password")
def hash_password(
    password: Annotated[str, typer.Option(prompt=True, hide_input=True, confirmation_prompt=True)],
) -> None:
    """Print a scrypt hash for a user's ``password_hash`` in SOC_AUTH_USERS_FILE.

    With SOC_ENVIRONMENT=production a weak password (placeholder, under 12 characters) is refused.
    """
    from soc.config import load_settings

    try:
        policy.refuse_weak(password, load_settings())
    except SocError as exc:
        raise _fail(exc) from None
    typer.echo(auth.hash_password(password))


@app.command("init")
def init(
    password_file: Annotated[Path, typer.Option(
        help="File holding the admin's password (a Docker secret, e.g. /run/secrets/...).")],
    user: Annotated[str, typer.Option(help="Name of the admin.")] = "admin",
) -> None:  # fmt: skip
    """Create (or update) the first admin in SOC_AUTH_USERS_FILE from a secret file; safe to
    run at every deployment (unchanged when the password is)."""
    from soc.auth import bootstrap
    from soc.config import load_settings

    settings = load_settings()
    try:
        if settings.auth_users_file is None:
            raise SocError("set SOC_AUTH_USERS_FILE: the users file `soc auth init` writes")
        password = bootstrap.read_secret(password_file)
        policy.refuse_weak(password, settings, user=user)
        outcome = bootstrap.init_admin(settings.auth_users_file, user, password)
    except SocError as exc:
        raise _fail(exc) from None
    typer.echo(f"admin {user} {outcome} in {settings.auth_users_file}")


@app.command("token")
def create_token(
    user: Annotated[str, typer.Option(help="A user of SOC_AUTH_USERS_FILE.")],
    label: Annotated[str, typer.Option(help="What the token is for.")] = "cli",
) -> None:
    """Create an API token for a user and print it (shown once).

    During `soc demo` the demo users (admin, analyst, hanoi-it) are known without any setting.
    """
    from soc.es.client import make_client, wait_until_healthy
    from soc.es.indices import Indices
    from soc.es.templates import Layout, setup

    settings = _token_settings()
    try:
        directory = auth.load_directory(settings)
        found = directory.user(user)
        if found is None:
            raise SocError(
                f"no user {user!r} in SOC_AUTH_USERS_FILE or the demo users (they exist while "
                "`soc demo` has written var/demo/demo-password, or with SOC_AUTH_DEMO_PASSWORD)"
            )
        es = make_client(settings)
        wait_until_healthy(es, timeout=settings.es_wait_timeout, settings=settings)
        indices = Indices(settings.index_prefix)
        setup(es, indices, layout=Layout.of(settings))
        secret, info = auth.create_token(es, indices, found, label, auth.utcnow())
    except SocError as exc:
        raise _fail(exc) from None
    typer.echo(f"token id {info.id} for {info.user} ({found.role.value}); store it now:")
    typer.echo(secret)
