"""Old addresses (before July 2025) converted to the 2025 units: real addresses from
several provinces, with and without diacritics, a split ward, merged provinces."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from backend import old_addresses
from backend.old_addresses import BadCodes, NotRecognised, convert_codes, convert_text

ROOT = Path(__file__).resolve().parents[2]


def only(text: str) -> tuple[str, str, str, str]:
    conversion = convert_text(text)
    assert conversion.status == "converted", conversion
    (candidate,) = conversion.candidates
    assert candidate.commune is not None
    return (
        candidate.province.code,
        candidate.province.name,
        candidate.commune.code,
        candidate.commune.name,
    )


@pytest.mark.parametrize(
    "text",
    [
        "Phường Bến Nghé, Quận 1, Thành phố Hồ Chí Minh",
        "Phuong Ben Nghe, Quan 1, TP HCM",
        "P. Bến Nghé, Q.1, TP.HCM",
        "phuong ben nghe quan 1 ho chi minh",
    ],
)
def test_ben_nghe_with_and_without_diacritics_is_sai_gon_ward(text: str) -> None:
    assert only(text) == ("79", "Thành phố Hồ Chí Minh", "26740", "Phường Sài Gòn")


def test_street_part_is_kept_as_written() -> None:
    conversion = convert_text("Số 12 Nguyễn Huệ, P. Bến Nghé, Q.1, TP.HCM")
    assert conversion.street == "Số 12 Nguyễn Huệ"
    conversion = convert_text("12 Nguyen Hue Phuong Ben Nghe Quan 1 Ho Chi Minh")
    assert conversion.street == "12 Nguyen Hue"


def test_ha_noi_ward_without_its_district() -> None:
    conversion = convert_text("ngõ 5 Trấn Vũ, Trúc Bạch, Hà Nội")
    assert conversion.status == "converted"
    (candidate,) = conversion.candidates
    assert candidate.commune is not None
    assert (candidate.commune.code, candidate.commune.name) == ("00004", "Phường Ba Đình")
    assert candidate.confidence == 0.9  # no district written: a little less sure
    assert [w.name for w in candidate.old_wards] == ["Phường Trúc Bạch"]
    assert conversion.street == "ngõ 5 Trấn Vũ"


def test_da_nang_and_a_quang_nam_commune_now_in_da_nang() -> None:
    assert only("Phường Thuận Phước, Quận Hải Châu, Đà Nẵng") == (
        "48",
        "Thành phố Đà Nẵng",
        "20242",
        "Phường Hải Châu",
    )
    assert only("Phuong Dien Thang Bac, Thi xa Dien Ban, Quang Nam")[0:3] == (
        "48",
        "Thành phố Đà Nẵng",
        "20557",
    )


def test_dak_lak_commune_keeps_the_village() -> None:
    conversion = convert_text("thôn 3, xã Ea Tu, TP Buôn Ma Thuột, Đắk Lắk")
    assert conversion.street == "thôn 3"
    assert [(c.province.code, c.commune.code) for c in conversion.candidates if c.commune] == [
        ("66", "24163")
    ]


def test_a_split_ward_answers_every_commune_and_picks_none() -> None:
    # Phường 14, Quận 10 was divided between Diên Hồng and Hòa Hưng.
    conversion = convert_text("Phường 14, Quận 10, TP Hồ Chí Minh")
    assert conversion.status == "choose"
    assert conversion.split is True
    got = [
        (c.commune.code, c.commune.name, c.main, c.confidence)
        for c in conversion.candidates
        if c.commune
    ]
    assert got == [
        ("27169", "Phường Diên Hồng", True, 0.6),
        ("27163", "Phường Hòa Hưng", False, 0.4),
    ]


def test_an_ambiguous_ward_name_answers_every_place_it_existed() -> None:
    conversion = convert_text("Phường 1, TP HCM")  # thirteen districts had a Phường 1
    assert conversion.status == "choose"
    districts = {c.old_district.name for c in conversion.candidates if c.old_district}
    assert {"Quận 3", "Quận 4", "Quận 5"} <= districts
    assert len(conversion.candidates) > 5


@pytest.mark.parametrize(
    ("text", "old", "new"),
    [
        ("Tỉnh Hà Giang", "Tỉnh Hà Giang", ("08", "Tuyên Quang")),
        ("ha giang", "Tỉnh Hà Giang", ("08", "Tuyên Quang")),
        ("Bình Dương", "Tỉnh Bình Dương", ("79", "Thành phố Hồ Chí Minh")),
        ("Tinh Quang Nam", "Tỉnh Quảng Nam", ("48", "Thành phố Đà Nẵng")),
    ],
)
def test_a_merged_province_named_alone_answers_the_province_it_joined(
    text: str, old: str, new: tuple[str, str]
) -> None:
    conversion = convert_text(text)
    assert conversion.status == "province_only"
    (candidate,) = conversion.candidates
    assert candidate.commune is None
    assert (candidate.province.code, candidate.province.name) == new
    assert candidate.old_province.name == old


def test_an_island_district_is_its_special_zone() -> None:
    assert only("Huyện Côn Đảo, Bà Rịa - Vũng Tàu") == (
        "79",
        "Thành phố Hồ Chí Minh",
        "26732",
        "Đặc khu Côn Đảo",
    )


def test_a_district_without_a_ward_lists_its_communes() -> None:
    conversion = convert_text("Quận 1, TP HCM")
    assert conversion.status == "choose"
    assert {c.commune.code for c in conversion.candidates if c.commune} == {
        "26737",
        "26740",
        "26743",
        "26758",
    }
    assert sum(c.confidence for c in conversion.candidates) == pytest.approx(1.0, abs=0.02)


def test_codes_convert_like_text() -> None:
    conversion = convert_codes("79", "760", "26740")  # Bến Nghé
    assert [(c.commune.code, c.confidence) for c in conversion.candidates if c.commune] == [
        ("26740", 1.0)
    ]
    assert convert_codes("2").candidates[0].province.code == "08"  # Hà Giang -> Tuyên Quang
    split = convert_codes("79", "771", "27169")  # Phường 14, Quận 10
    assert split.status == "choose"


@pytest.mark.parametrize(
    ("codes", "field"),
    [
        (("99", None, None), "province_code"),
        (("79", "761", "26740"), "ward_code"),  # Bến Nghé is not in Quận 12
        (("01", None, "26740"), "ward_code"),  # nor in Hà Nội
        (("79", "001", None), "district_code"),  # Ba Đình is in Hà Nội
        (("79", None, "99999"), "ward_code"),
    ],
)
def test_codes_that_do_not_exist_or_fit_are_refused(
    codes: tuple[str, str | None, str | None], field: str
) -> None:
    with pytest.raises(BadCodes) as caught:
        convert_codes(*codes)
    assert caught.value.field == field


def test_unknown_ward_suggests_close_names() -> None:
    with pytest.raises(NotRecognised) as caught:
        convert_text("Phường Bến Ngé, Quận 1, TP HCM")
    assert caught.value.level == "ward"
    assert caught.value.written == "Phường Bến Ngé"
    assert caught.value.suggestions[0] == "Phường Bến Nghé"


def test_unknown_province_suggests_close_names(settings) -> None:
    settings.ADDRESS_SUGGESTIONS_MAX = 2
    with pytest.raises(NotRecognised) as caught:
        convert_text("abc, Tinh Ha Gian")
    assert caught.value.level == "province"
    assert caught.value.suggestions == ["Tỉnh Hà Giang", "Tỉnh Hậu Giang"]


def test_nothing_recognisable_is_an_unknown_province() -> None:
    with pytest.raises(NotRecognised) as caught:
        convert_text("!!! ...")
    assert (caught.value.level, caught.value.written, caught.value.suggestions) == (
        "province",
        "",
        [],
    )


def test_the_tables_load_on_first_use_not_at_import() -> None:
    script = (
        "import sys, django, os;"
        "os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'backend.settings');"
        "django.setup(); import backend.urls;"
        "from backend import old_addresses;"
        "print(old_addresses._cached.cache_info().currsize,"
        " [m for m in ('vietnamadminunits', 'shapely', 'geopy') if m in sys.modules])"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert result.stdout.split("\n")[-2] == "0 []"
    assert old_addresses.load() is old_addresses.load()


def test_old_units_under_the_new_province_they_joined() -> None:
    # Điện Bàn was in Quảng Nam, which joined Đà Nẵng.
    assert only("Xã Điện Thắng Bắc, Thị xã Điện Bàn, TP Đà Nẵng")[2] == "20557"
    # Thuận An was in Bình Dương, now part of Hồ Chí Minh City; no district written.
    conversion = convert_text("Phường Lái Thiêu, Thành phố Hồ Chí Minh")
    assert {c.old_province.name for c in conversion.candidates} == {"Tỉnh Bình Dương"}


def test_a_trailing_country_or_postcode_is_ignored() -> None:
    assert only("Phường Bến Nghé, Quận 1, TP HCM, Việt Nam")[2] == "26740"
    assert only("Phuong Ben Nghe, Quan 1, Ho Chi Minh, 700000, Vietnam")[2] == "26740"
