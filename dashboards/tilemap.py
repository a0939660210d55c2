"""Where each province sits on the national board's tile map: a rough geography of Viet Nam.

One tile per province, on a grid of 5 columns and 17 rows: the north's provinces side by side at
the top, the narrow centre one or two per row down the coast, the south and the Mekong delta at
the bottom. The grid is data, placed by CSS classes (``r<row> c<col>``, the console's CSP allows no
inline styles); a test checks every province of the catalogue has one tile and no two overlap.
This module must not read statuses or incidents.
"""

from __future__ import annotations

COLUMNS = 5
ROWS = 17

#: province code -> (row, column), both from 1.
POSITIONS: dict[str, tuple[int, int]] = {
    # Lai Châu, Lào Cai, Tuyên Quang, Cao Bằng; Điện Biên, Sơn La, Thái Nguyên, Lạng Sơn
    "12": (1, 1), "15": (1, 2), "08": (1, 3), "04": (1, 4),
    "11": (2, 1), "14": (2, 2), "19": (2, 3), "20": (2, 4),
    "25": (3, 2), "01": (3, 3), "24": (3, 4), "22": (3, 5),  # Phú Thọ, Hà Nội, Bắc Ninh, Quảng Ninh
    "37": (4, 3), "33": (4, 4), "31": (4, 5),  # Ninh Bình, Hưng Yên, Hải Phòng
    "38": (5, 3),  # Thanh Hóa
    "40": (6, 3),  # Nghệ An
    "42": (7, 4),  # Hà Tĩnh
    "44": (8, 4),  # Quảng Trị
    "46": (9, 5),  # Huế
    "48": (10, 5),  # Đà Nẵng
    "52": (11, 4), "51": (11, 5),  # Gia Lai, Quảng Ngãi
    "66": (12, 4), "56": (12, 5),  # Đắk Lắk, Khánh Hòa
    "75": (13, 3), "68": (13, 4),  # Đồng Nai, Lâm Đồng
    "80": (14, 2), "79": (14, 3),  # Tây Ninh, Hồ Chí Minh City
    "91": (15, 1), "82": (15, 2), "86": (15, 3),  # An Giang, Đồng Tháp, Vĩnh Long
    "92": (16, 2),  # Cần Thơ
    "96": (17, 2),  # Cà Mau
}  # fmt: skip


def place(code: str) -> str:
    """The CSS classes that put a province's tile in its cell."""
    row, col = POSITIONS[code]
    return f"r{row} c{col}"


def short_name(name: str) -> str:
    """ "Thành phố Hà Nội" reads "Hà Nội" on a small tile; the full name stays in its title."""
    prefix = "Thành phố "
    return name[len(prefix) :] if name.startswith(prefix) else name
