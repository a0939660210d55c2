"""The demo's email routes: every province's IT team receives its own province's incidents.

Generated from the official catalogue (never a hand-typed list) into ``config/demo-routes.yaml``
with ``soc notify routes demo``; ``soc demo`` points ``SOC_NOTIFY_ROUTES_FILE`` at that file.
Hà Nội's team address is the demo user ``hanoi-it``'s, so the provincial user of the demo reads
its own province's emails with ``soc notify inbox --to hanoi-it@soc.local``. The national SOC
gets what no route covers, the last escalation and a copy of high and critical notices.
"""

from __future__ import annotations

import unicodedata

from soc.localities import catalogue

#: Where the demo's routes live, relative to the repository (the demo runs from it).
DEMO_ROUTES_FILE = "config/demo-routes.yaml"
#: The demo's provincial IT user (soc.auth's demo users) and the province it serves.
DEMO_PROVINCIAL_USER = ("hanoi-it", "01")
DOMAIN = "soc.local"


def slug(name: str) -> str:
    """``Thành phố Hà Nội`` → ``thanh-pho-ha-noi``: an address-safe form of a locality name."""
    folded = unicodedata.normalize("NFKD", name.replace("Đ", "D").replace("đ", "d"))
    ascii_only = folded.encode("ascii", "ignore").decode().lower()
    return "-".join("".join(c if c.isalnum() else " " for c in ascii_only).split())


def demo_routes_yaml(national: str = f"national-soc@{DOMAIN}") -> str:
    """The demo routes file's text: one route per province, team and lead, in Vietnamese."""
    user, user_province = DEMO_PROVINCIAL_USER
    lines = [
        "# Demo email routes, generated from the catalogue by `soc notify routes demo`.",
        "# Do not edit by hand: regenerate. Every province's IT team gets its own incidents;",
        "# the national SOC gets a copy of high and critical ones.",
        "national_soc:",
        f"  address: {national}",
        "  language: vi",
        "national_copy: high",
        "routes:",
    ]
    for province in catalogue().provinces:
        team = f"{user}@{DOMAIN}" if province.code == user_province else None
        name = slug(province.name)
        lines += [
            f'  - province: "{province.code}"    # {province.name}',
            "    min_severity: medium",
            "    contacts:",
            f"      - address: {team or f'it.{name}@{DOMAIN}'}",
            "        language: vi",
            f"      - address: lead.{name}@{DOMAIN}",
            "        language: vi",
            "        role: lead",
        ]
    return "\n".join(lines) + "\n"
