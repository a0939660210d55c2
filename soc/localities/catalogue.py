"""The official catalogue of Vietnam's 34 provinces and 3,321 communes/wards (since 1 July 2025).

Built once from the ``vietnam-provinces`` package, never from a hand-typed list. Codes are the
official ones as zero-padded strings (province ``"01"``, ward ``"00070"``), which is how soc stores
them in ``locality.province.code`` / ``locality.ward.code``.

Lookups accept a code (``"1"``, ``"01"``), the official name (``"Thành phố Hà Nội"``), the name
without its division type (``"Hà Nội"``), the package's codename (``"ha_noi"``), in any case and
with or without Vietnamese diacritics (``"Lai Chau"``, ``"lai châu"``). Commune names repeat across
provinces, so a ward looked up by name alone may be ambiguous: the error lists the candidates and
asks for the province. Nothing is ever guessed.
"""

from __future__ import annotations

import re
import unicodedata
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import lru_cache

from vietnam_provinces import Province as _PkgProvince
from vietnam_provinces import Ward as _PkgWard

from soc.errors import LocalityError, UnknownLocalityError

# Division-type words that open official names ("TP" is the usual short form of "Thành phố").
_DIVISION_PREFIXES = ("thanh pho", "dac khu", "phuong", "tinh", "xa", "tp")
_NON_ALNUM = re.compile(r"[^0-9a-z]+")


def fold(text: str) -> str:
    """Lowercase, strip Vietnamese diacritics (đ → d) and collapse punctuation to single spaces."""
    decomposed = unicodedata.normalize("NFD", text.replace("đ", "d").replace("Đ", "D"))
    stripped = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return _NON_ALNUM.sub(" ", stripped.lower()).strip()


def _short(folded_name: str) -> str:
    for prefix in _DIVISION_PREFIXES:
        if folded_name.startswith(prefix + " "):
            return folded_name[len(prefix) + 1 :]
    return folded_name


def _strip_division(name: str) -> str:
    folded = fold(name)
    for prefix in _DIVISION_PREFIXES:
        if folded.startswith(prefix + " "):
            return " ".join(name.split(" ")[len(prefix.split(" ")) :])
    return name


def _name_keys(name: str, codename: str) -> set[str]:
    full = fold(name)
    short = _short(full)
    keys = {full, short, fold(codename)}
    keys |= {k.replace(" ", "") for k in list(keys)}  # "Hanoi", "laichau"
    return keys


@dataclass(frozen=True, slots=True)
class Province:
    code: str
    name: str
    codename: str
    division_type: str

    @property
    def short_name(self) -> str:
        """The name without its division type: "Hà Nội" for "Thành phố Hà Nội"."""
        return _strip_division(self.name)


@dataclass(frozen=True, slots=True)
class Ward:
    code: str
    name: str
    codename: str
    division_type: str
    province_code: str

    @property
    def short_name(self) -> str:
        """The name without its division type: "Hoàn Kiếm" for "Phường Hoàn Kiếm"."""
        return _strip_division(self.name)


@dataclass(frozen=True, slots=True)
class Locality:
    """A province and, where known, one of its wards: carried by every event, alert, incident."""

    province: Province
    ward: Ward | None = None

    def __post_init__(self) -> None:
        if self.ward is not None and self.ward.province_code != self.province.code:
            raise LocalityError(
                f"ward {self.ward.code} ({self.ward.name}) is not in province "
                f"{self.province.code} ({self.province.name})"
            )

    def to_ecs(self) -> dict[str, dict[str, dict[str, str]]]:
        """The ``locality`` object of soc's event schema."""
        body: dict[str, dict[str, str]] = {
            "province": {"code": self.province.code, "name": self.province.name}
        }
        if self.ward is not None:
            body["ward"] = {"code": self.ward.code, "name": self.ward.name}
        return {"locality": body}


class Catalogue:
    """All provinces and wards with code and name lookups."""

    def __init__(self, provinces: Iterable[Province], wards: Iterable[Ward]) -> None:
        self._provinces = {p.code: p for p in provinces}
        self._wards = {w.code: w for w in wards}
        self._province_keys: dict[str, Province] = {}
        for p in self._provinces.values():
            for key in _name_keys(p.name, p.codename) | {p.code, str(int(p.code))}:
                self._province_keys[key] = p
        self._ward_keys: dict[str, list[Ward]] = defaultdict(list)
        self._wards_by_province: dict[str, list[Ward]] = defaultdict(list)
        for w in self._wards.values():
            self._wards_by_province[w.province_code].append(w)
            for key in _name_keys(w.name, w.codename):
                if w not in self._ward_keys[key]:
                    self._ward_keys[key].append(w)

    # -------------------------------------------------------------- provinces
    @property
    def provinces(self) -> list[Province]:
        return list(self._provinces.values())

    @property
    def wards(self) -> list[Ward]:
        return list(self._wards.values())

    def province(self, query: str | int) -> Province:
        """The province for a code or a name; :class:`UnknownLocalityError` if none."""
        keys = [_code_key(query, 2)] if _is_code(query) else _query_keys(str(query))
        found = next((self._province_keys[k] for k in keys if k in self._province_keys), None)
        if found is None:
            raise UnknownLocalityError(
                f"unknown province {str(query)!r}: no province has that code or name "
                "(see `soc localities list`)"
            )
        return found

    # -------------------------------------------------------------- wards
    def ward(self, query: str | int, province: str | int | Province | None = None) -> Ward:
        """The ward for a code, or a name (within ``province`` when given)."""
        scope = province if isinstance(province, Province) or province is None else (
            self.province(province)
        )  # fmt: skip
        if _is_code(query):
            found = self._wards.get(_code_key(query, 5))
            if found is None or (scope is not None and found.province_code != scope.code):
                where = f" in {scope.name}" if scope else ""
                raise UnknownLocalityError(f"unknown ward code {str(query)!r}{where}")
            return found
        matches = next(
            (self._ward_keys[k] for k in _query_keys(str(query)) if k in self._ward_keys), []
        )
        if scope is not None:
            matches = [w for w in matches if w.province_code == scope.code]
        if not matches:
            where = f" in {scope.name}" if scope else ""
            raise UnknownLocalityError(f"unknown ward {str(query)!r}{where}")
        if len(matches) > 1:
            listed = ", ".join(
                f"{w.name} ({w.code}, {self._provinces[w.province_code].name})"
                for w in matches[:10]
            )
            more = f" and {len(matches) - 10} more" if len(matches) > 10 else ""
            raise LocalityError(
                f"ward name {str(query)!r} is ambiguous: {len(matches)} wards match "
                f"({listed}{more}); give the province or the ward code"
            )
        return matches[0]

    def wards_of(self, province: str | int | Province) -> list[Ward]:
        p = province if isinstance(province, Province) else self.province(province)
        return list(self._wards_by_province[p.code])

    def province_of(self, ward: Ward) -> Province:
        return self._provinces[ward.province_code]

    def locality(
        self, province: str | int | None = None, ward: str | int | None = None
    ) -> Locality:
        """Resolve a province and/or ward into a :class:`Locality` (a ward implies its province)."""
        if ward is not None:
            w = self.ward(ward, province)
            return Locality(self._provinces[w.province_code], w)
        if province is None:
            raise LocalityError("a locality needs a province or a ward")
        return Locality(self.province(province))

    def __iter__(self) -> Iterator[Province]:
        return iter(self._provinces.values())


def _query_keys(query: str) -> list[str]:
    """Keys to try for a typed name: as given, without spaces, without a division word."""
    key = fold(query)
    return [key, key.replace(" ", ""), _short(key)]


def _is_code(query: str | int) -> bool:
    return isinstance(query, int) or str(query).strip().isdigit()


def _code_key(query: str | int, width: int) -> str:
    return f"{int(str(query).strip()):0{width}d}"


def _division(value: object) -> str:
    name = getattr(value, "name", None)
    return str(name if name is not None else value).lower()


@lru_cache(maxsize=1)
def catalogue() -> Catalogue:
    """The catalogue from the ``vietnam-provinces`` package (built once per process)."""
    provinces = [
        Province(
            code=f"{int(p.code):02d}",
            name=p.name,
            codename=p.codename,
            division_type=_division(p.division_type),
        )
        for p in _PkgProvince.iter_all()
    ]
    wards = [
        Ward(
            code=f"{int(w.code):05d}",
            name=w.name,
            codename=w.codename,
            division_type=_division(w.division_type),
            province_code=f"{int(w.province_code):02d}",
        )
        for w in _PkgWard.iter_all()
    ]
    return Catalogue(provinces, wards)
