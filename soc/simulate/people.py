"""Who uses the services: citizens, officers, their IP addresses and browsers (all made up).

User names are opaque account ids, never national ID numbers; IPs come from Vietnamese ISP
ranges so they look like real client addresses. Draws use the caller's seeded ``random.Random``.
"""

from __future__ import annotations

import random

from soc.localities import Ward

# First two octets of ranges held by VNPT, Viettel, FPT and MobiFone.
_IP_PREFIXES = (
    (113, 160), (113, 185), (14, 160), (14, 191), (171, 224), (171, 250), (27, 72),
    (42, 113), (116, 96), (123, 20), (1, 52), (115, 73), (183, 80), (58, 186),
)  # fmt: skip
AGENTS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/130.0.0.0 Safari/537.36 Edg/130.0.0.0",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like "
    "Gecko) Version/18.1 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Linux; Android 14; SM-A546E) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/130.0.0.0 Mobile Safari/537.36",
    "Mozilla/5.0 (Linux; Android 13; Redmi Note 12) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/129.0.0.0 Mobile Safari/537.36 Zalo/24.10",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:132.0) Gecko/20100101 Firefox/132.0",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/18.1 Safari/605.1.15",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "coc_coc_browser/136.0.182 Chrome/130.0.0.0 Safari/537.36",
)
SCANNER_AGENTS = (
    "sqlmap/1.8.11#stable (https://sqlmap.org)",
    "Mozilla/5.0 (compatible; Nmap Scripting Engine; https://nmap.org/book/nse.html)",
    "Nikto/2.5.0",
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120 "
    "Safari/537.36 zgrab/0.x",
)
CARRIERS = ("viettel", "vinaphone", "mobifone", "itelecom", "vietnamobile")
CARRIER_SHARE = (52, 24, 18, 3, 3)


def ip(rng: random.Random) -> str:
    first, second = rng.choice(_IP_PREFIXES)
    return f"{first}.{second}.{rng.randint(0, 255)}.{rng.randint(1, 254)}"


def citizen(rng: random.Random, ward: Ward, weight: float) -> str:
    # A pool proportional to the ward's size, so busy wards have more distinct users.
    return f"cd{ward.code}{rng.randrange(int(400 * weight)):05d}"


def officer(rng: random.Random, ward: Ward) -> str:
    return f"cb{ward.code}{rng.randrange(12):02d}"


def agent(rng: random.Random) -> str:
    return rng.choice(AGENTS)


def carrier(rng: random.Random) -> str:
    return rng.choices(CARRIERS, CARRIER_SHARE)[0]
