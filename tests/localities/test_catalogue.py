"""The official catalogue: exact counts, codes, and lookups insensitive to case and diacritics."""

from __future__ import annotations

import pytest

from soc.errors import LocalityError, UnknownLocalityError
from soc.localities import Locality, catalogue, fold


def test_catalogue_has_exactly_34_provinces_and_3321_wards() -> None:
    cat = catalogue()
    assert len(cat.provinces) == 34
    assert len(cat.wards) == 3321
    assert sum(len(cat.wards_of(p)) for p in cat.provinces) == 3321


def test_codes_are_zero_padded_official_codes() -> None:
    cat = catalogue()
    assert cat.province("1").code == "01"
    assert all(len(p.code) == 2 for p in cat.provinces)
    assert all(len(w.code) == 5 for w in cat.wards)
    assert cat.ward("70").code == "00070"


@pytest.mark.parametrize(
    "query", ["Lai Chau", "lai châu", "Lai Châu", "LAI CHAU", "Tỉnh Lai Châu", "lai_chau", "12"]
)
def test_province_lookup_ignores_case_diacritics_and_division_word(query: str) -> None:
    province = catalogue().province(query)
    assert (province.code, province.name) == ("12", "Lai Châu")


@pytest.mark.parametrize(
    "query", ["Hà Nội", "ha noi", "Hanoi", "Thành phố Hà Nội", "TP. Hà Nội", "01"]
)
def test_city_lookup(query: str) -> None:
    assert catalogue().province(query).code == "01"


def test_unknown_province_is_an_error_not_a_guess() -> None:
    with pytest.raises(UnknownLocalityError, match="unknown province 'Lai Cha'"):
        catalogue().province("Lai Cha")
    with pytest.raises(UnknownLocalityError):
        catalogue().province("99")


def test_ward_knows_its_province() -> None:
    cat = catalogue()
    ward = cat.ward("Phường Hoàn Kiếm")
    assert ward.province_code == "01"
    assert cat.province_of(ward).name == "Thành phố Hà Nội"
    assert ward.short_name == "Hoàn Kiếm"


def test_ambiguous_ward_name_lists_candidates_and_asks_for_province() -> None:
    cat = catalogue()
    with pytest.raises(LocalityError, match="ambiguous") as caught:
        cat.ward("tan phu")
    assert "Đồng Nai" in str(caught.value)
    assert cat.ward("Tân Phú", "dong nai").code == "26116"


def test_ward_code_outside_the_given_province_is_refused() -> None:
    with pytest.raises(UnknownLocalityError, match="Lai Châu"):
        catalogue().ward("00070", "Lai Châu")


def test_locality_to_ecs_and_consistency() -> None:
    cat = catalogue()
    place = cat.locality(ward="00070")
    assert place.to_ecs() == {
        "locality": {
            "province": {"code": "01", "name": "Thành phố Hà Nội"},
            "ward": {"code": "00070", "name": "Phường Hoàn Kiếm"},
        }
    }
    with pytest.raises(LocalityError, match="not in province"):
        Locality(cat.province("12"), cat.ward("00070"))


def test_fold_strips_vietnamese_diacritics() -> None:
    assert fold("Đắk Lắk") == "dak lak"
    assert fold("  Thừa-Thiên  Huế ") == "thua thien hue"
