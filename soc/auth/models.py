"""Users, roles and what each role may see: the vocabulary of soc's access control.

Roles: ``admin`` (everything, including other people's tokens), ``analyst`` (every province, all
triage), ``provincial_it`` (read, comment and move incidents of its own provinces only). This module
holds shapes only; it must not read files or Elasticsearch (that is ``soc.auth.service``).
"""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field


class Role(StrEnum):
    ADMIN = "admin"
    ANALYST = "analyst"
    PROVINCIAL_IT = "provincial_it"


class User(BaseModel):
    """A signed-in person; ``provinces`` only matters for ``provincial_it``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(min_length=1, max_length=128)
    role: Role
    provinces: tuple[str, ...] = ()

    @property
    def sees_all(self) -> bool:
        return self.role is not Role.PROVINCIAL_IT

    def can_see(self, province_code: str | None) -> bool:
        return self.sees_all or (province_code is not None and province_code in self.provinces)

    def province_scope(self) -> list[str] | None:
        """Province codes to filter every query by, or None when the user sees all."""
        return None if self.sees_all else list(self.provinces)


class UserRecord(BaseModel):
    """A user as configured in the users YAML: the password only as a scrypt hash."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.@-]+$")
    role: Role
    provinces: tuple[str, ...] = ()
    password_hash: str | None = None

    def user(self) -> User:
        return User(name=self.name, role=self.role, provinces=self.provinces)


class TokenInfo(BaseModel):
    """An API token as listed: never the token itself, which is only shown once at creation."""

    model_config = ConfigDict(frozen=True)

    id: str
    user: str
    label: str
    created: str
    revoked: bool = False
