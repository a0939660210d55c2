"""The watched public-service systems: the vocabulary of ``service.name`` across soc.

Collectors set ``service.name`` to one of these values, detectors group by it, emails and pages
show its label. Add a member here (and to docs/schema.md) before a new kind of system is watched.
"""

from __future__ import annotations

from enum import StrEnum


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
        return _LABELS[self][0]

    @property
    def label_en(self) -> str:
        return _LABELS[self][1]


_LABELS: dict[Service, tuple[str, str]] = {
    Service.NATIONAL_PORTAL: ("Cổng Dịch vụ công quốc gia", "National Public Service Portal"),
    Service.ONE_STOP_SHOP: (
        "Hệ thống thông tin giải quyết thủ tục hành chính (một cửa điện tử)",
        "Provincial one-stop-shop system",
    ),
    Service.VNEID: ("Đăng nhập VNeID", "VNeID login"),
    Service.OTP: ("Cổng SMS OTP", "SMS OTP gateway"),
    Service.NATIONAL_DB: ("Cơ sở dữ liệu quốc gia", "National database look-ups"),
    Service.PORTAL_SYNC: (
        "Đồng bộ với Cổng Dịch vụ công quốc gia",
        "Synchronisation to the national portal",
    ),
    Service.PAYMENT: ("Thanh toán trực tuyến", "Online payment"),
    Service.WEB_PORTAL: ("Cổng thông tin điện tử", "Public web portal"),
}
