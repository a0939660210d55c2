"""The watched public-service systems: the vocabulary of ``service.name`` across soc.

Collectors set ``service.name`` to one of these values, detectors group by it, emails and pages
show its label (the ``services`` domain of the catalogue, :mod:`soc.i18n`). Add a member here, its
labels to ``soc/locale/*/LC_MESSAGES/services.po`` (and to docs/schema.md) before a new kind of
system is watched.
"""

from __future__ import annotations

from enum import StrEnum

from soc.i18n import text


class Service(StrEnum):
    NATIONAL_PORTAL = "national-portal"
    ONE_STOP_SHOP = "one-stop-shop"
    VNEID = "vneid"
    OTP = "otp-gateway"
    NATIONAL_DB = "national-db"
    PORTAL_SYNC = "portal-sync"
    PAYMENT = "payment"
    WEB_PORTAL = "web-portal"

    @property
    def label_vi(self) -> str:
        return text("services", self.value, "vi")

    @property
    def label_en(self) -> str:
        return text("services", self.value, "en")
