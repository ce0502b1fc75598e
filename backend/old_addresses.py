"""Addresses written in the units before 1 July 2025 (63 provinces, districts, wards),
converted to the 2025 units (34 provinces, 3,321 communes, no districts).

Where the data comes from:
- the old units (names, official GSO codes, the spellings people use: "Q.1", "P12",
  "TP HCM") and which new commune(s) each old ward went to, from the
  `vietnamadminunits` package (its SQLite `dataset.db` and `converter_2025.json`,
  read as files: the package's own modules are never imported, they pull in
  shapely and geopy and call an online geocoder to guess inside a split ward);
- the new units and their codes from `vietnam-provinces`, the 2025 units the rest of
  the project serves. `vietnamadminunits` says its new-unit codes are borrowed from a
  map site; 114 of them differ from Decision 19/2025/QĐ-TTg as `vietnam-provinces`
  has it, so its targets are joined to `vietnam-provinces` by province and name, never
  by its codes. `tests/backend/test_old_addresses_data.py` fails on any target that
  does not resolve to exactly one `vietnam-provinces` commune, and on any commune that
  no old ward reaches.

Nothing is decided for the citizen: when an old ward was split among several new
communes, or the text names a unit that exists in several places, every candidate is
returned. The tables are built on first use (see `load()`), not at import.
"""

from __future__ import annotations

import difflib
import functools
import importlib.util
import json
import re
import sqlite3
import threading
import unicodedata
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from django.conf import settings
from vietnam_provinces import Province, Ward

from backend.text import fold

_NOT_ALNUM = re.compile(r"[^a-z0-9]")
_WORDS = re.compile(r"[^\s.,;:/()\-–]+")
_PARTS = re.compile(r"[,;\n]+")

# Type words people put before a name ("TP.", "Q.", "P.", "Xã", ...), tried when the
# words as written are not a known spelling.
_PROVINCE_PREFIXES = ("thanhpho", "tinh", "tp")
_DISTRICT_PREFIXES = ("thanhpho", "thixa", "quan", "huyen", "tp", "tx", "q", "h")
_WARD_PREFIXES = ("thitran", "phuong", "xa", "tt", "p", "x", "f")

_COUNTRY = {"vietnam", "vn", "vietnamese"}

Status = Literal["converted", "choose", "province_only"]


def key(text: str) -> str:
    """Letters and digits only, folded: "TP. Hồ Chí Minh" -> "tphochiminh"."""
    return _NOT_ALNUM.sub("", fold(text))


# --- The tables ----------------------------------------------------------------------


@dataclass(frozen=True)
class OldUnit:
    code: str
    name: str


@dataclass(frozen=True)
class OldWard:
    code: str
    name: str
    district: OldUnit
    province: OldUnit


@dataclass(frozen=True)
class NewUnit:
    code: str
    name: str


@dataclass(frozen=True)
class Target:
    """A new commune an old ward (or island district) went to, wholly or in part."""

    commune: NewUnit
    province: NewUnit
    main: bool  # the package's "default new ward" of a split ward (a hint, not a choice)


@dataclass
class Tables:
    old_provinces: dict[str, OldUnit] = field(default_factory=dict)
    old_districts: dict[str, OldUnit] = field(default_factory=dict)
    district_province: dict[str, str] = field(default_factory=dict)
    old_wards: dict[str, OldWard] = field(default_factory=dict)
    # old province code -> new province; old ward or ward-less district code -> targets
    province_target: dict[str, NewUnit] = field(default_factory=dict)
    ward_targets: dict[str, tuple[Target, ...]] = field(default_factory=dict)
    island_targets: dict[str, tuple[Target, ...]] = field(default_factory=dict)
    # spellings: keyword -> codes
    province_words: dict[str, set[str]] = field(default_factory=dict)
    district_words: dict[str, dict[str, set[str]]] = field(default_factory=dict)  # by province
    ward_words: dict[str, dict[str, set[str]]] = field(default_factory=dict)  # by district
    wards_of_district: dict[str, list[str]] = field(default_factory=dict)
    # what the cross-check test reads: (problem, detail)
    problems: list[tuple[str, str]] = field(default_factory=list)
    new_communes_reached: set[str] = field(default_factory=set)


def package_data_dir() -> Path:
    """`vietnamadminunits/data` located without importing the package."""
    spec = importlib.util.find_spec("vietnamadminunits")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the vietnamadminunits package is not installed")
    return Path(next(iter(spec.submodule_search_locations))) / "data"


def exact_key(text: str) -> str:
    """Letters (marks kept) and digits only: "Xã Cẩm Giàng" -> "xãcẩmgiàng"."""
    return "".join(ch for ch in unicodedata.normalize("NFC", text.lower()) if ch.isalnum())


_COLLISION = NewUnit("", "")


def _new_units() -> tuple[dict[str, NewUnit], dict[str, dict[str, NewUnit]]]:
    """vietnam-provinces: provinces by name key; communes by province code, then by name
    key folded ("xacamgiang") and with its marks ("xãcẩmgiàng"). Two communes of one
    province may fold alike (Xã Cẩm Giang, Xã Cẩm Giàng): the folded key then names
    neither, and the package spells those with marks."""
    provinces: dict[str, NewUnit] = {}
    for p in Province.iter_all():
        unit = NewUnit(f"{int(p.code):02d}", p.name)
        provinces[_strip_prefix(key(p.name), _PROVINCE_PREFIXES)] = unit
    communes: dict[str, dict[str, NewUnit]] = defaultdict(dict)
    for w in Ward.iter_all():
        unit = NewUnit(f"{int(w.code):05d}", w.name)
        by_name = communes[f"{int(w.province_code):02d}"]
        folded = key(w.name)
        by_name[folded] = _COLLISION if folded in by_name else unit
        by_name[exact_key(w.name)] = unit
    return provinces, communes


def _strip_prefix(word: str, prefixes: tuple[str, ...]) -> str:
    for prefix in prefixes:
        if word.startswith(prefix) and len(word) > len(prefix):
            return word[len(prefix) :]
    return word


def _words(raw: str | None) -> list[str]:
    # The package's keywords are already folded ("phuongbennghe", "q1", "hcm").
    return json.loads(raw) if raw else []


def _build() -> Tables:
    data_dir = package_data_dir()
    tables = Tables()
    new_provinces, new_communes = _new_units()
    with (data_dir / "converter_2025.json").open(encoding="utf-8") as handle:
        converter = json.load(handle)
    connection = sqlite3.connect(f"file:{data_dir / 'dataset.db'}?mode=ro", uri=True)
    try:
        legacy = connection.execute(
            "SELECT provinceCode, province, provinceKey, provinceShortKey, provinceKeywords,"
            " districtCode, district, districtKey, districtShortKey, districtKeywords,"
            " wardCode, ward, wardKey, wardShortKey, wardKeywords FROM admin_units_legacy"
        ).fetchall()
        new_short = dict(
            connection.execute("SELECT DISTINCT provinceKey, provinceShortKey FROM admin_units")
        )
    finally:
        connection.close()

    # New province key (package) -> vietnam-provinces province, by name.
    new_province_of_key: dict[str, NewUnit] = {}
    for package_key, short in new_short.items():
        unit = new_provinces.get(short)
        if unit is None:
            tables.problems.append(("unknown_new_province", package_key))
        else:
            new_province_of_key[package_key] = unit

    def target(package_province: str, package_ward: str, main: bool) -> Target | None:
        province = new_province_of_key.get(package_province)
        wanted = package_ward if package_ward.isascii() else exact_key(package_ward)
        commune = new_communes[province.code].get(wanted) if province else None
        if province is None or commune is None or commune is _COLLISION:
            tables.problems.append(("unknown_new_commune", f"{package_province}/{package_ward}"))
            return None
        tables.new_communes_reached.add(commune.code)
        return Target(commune=commune, province=province, main=main)

    targets_by_old_key: dict[str, list[Target]] = defaultdict(list)
    old_province_to_new: dict[str, str] = {}
    for new_key, old_keys in converter["DICT_PROVINCE"].items():
        for old_key in old_keys:
            old_province_to_new[old_key] = new_key
    for new_key, wards in converter["DICT_PROVINCE_WARD_NO_DIVIDED"].items():
        for new_ward, old_paths in wards.items():
            found = target(new_key, new_ward, True)
            for path in old_paths:
                if found:
                    targets_by_old_key[path].append(found)
    for new_key, splits in converter["DICT_PROVINCE_WARD_DIVIDED"].items():
        for path, pieces in splits.items():
            for piece in pieces:
                found = target(new_key, piece["newWardKey"], bool(piece["isDefaultNewWard"]))
                if found:
                    targets_by_old_key[path].append(found)

    for row in legacy:
        (p_code, p_name, p_key, p_short, p_words) = row[0:5]
        (d_code, d_name, d_key, d_short, d_words) = row[5:10]
        (w_code, w_name, w_key, w_short, w_words) = row[10:15]
        if p_code not in tables.old_provinces:
            tables.old_provinces[p_code] = OldUnit(p_code, p_name)
            new_key = old_province_to_new.get(p_key)
            unit = new_province_of_key.get(new_key) if new_key else None
            if unit is None:
                tables.problems.append(("old_province_not_mapped", p_code))
            else:
                tables.province_target[p_code] = unit
            for word in {p_key, p_short, *_words(p_words)}:
                tables.province_words.setdefault(word, set()).add(p_code)
        province = tables.old_provinces[p_code]
        if d_code not in tables.old_districts:
            tables.old_districts[d_code] = OldUnit(d_code, d_name)
            tables.district_province[d_code] = p_code
            by_province = tables.district_words.setdefault(p_code, {})
            for word in {d_key, d_short, *_words(d_words)}:
                by_province.setdefault(word, set()).add(d_code)
        district = tables.old_districts[d_code]
        path = f"{p_key}_{d_key}_{w_key or ''}"
        reached = tuple(targets_by_old_key.get(path, ()))
        if not reached:
            tables.problems.append(("old_ward_not_mapped", w_code or d_code))
        if w_code is None:  # an island district without wards, now a special zone
            tables.island_targets[d_code] = reached
            continue
        ward = OldWard(w_code, w_name, district, province)
        tables.old_wards[w_code] = ward
        tables.ward_targets[w_code] = reached
        tables.wards_of_district.setdefault(d_code, []).append(w_code)
        by_district = tables.ward_words.setdefault(d_code, {})
        for word in {w_key, w_short, *_words(w_words)}:
            by_district.setdefault(word, set()).add(w_code)
    return tables


_lock = threading.Lock()


@functools.cache
def _cached() -> Tables:
    return _build()


def load() -> Tables:
    """The tables, built once per process on first use (about 0.3 s, see the guide)."""
    with _lock:  # two first requests at once build them once
        return _cached()


# --- Conversion ---------------------------------------------------------------------


@dataclass(frozen=True)
class Candidate:
    province: NewUnit
    commune: NewUnit | None
    confidence: float  # 0..1; the candidates of one answer add up to at most 1
    main: bool  # the default commune of a split old ward in the data (shown first)
    old_province: OldUnit
    old_district: OldUnit | None
    old_wards: tuple[OldWard, ...]


@dataclass(frozen=True)
class Conversion:
    status: Status
    street: str
    candidates: tuple[Candidate, ...]
    split: bool  # an old ward named here was divided among several new communes


class NotRecognised(Exception):
    """An old unit that does not exist (where, what was read, and close names)."""

    def __init__(self, level: str, written: str, suggestions: list[str]) -> None:
        super().__init__(level)
        self.level = level
        self.written = written
        self.suggestions = suggestions


class BadCodes(Exception):
    """Codes that do not exist or do not fit together (a ward outside its district)."""

    def __init__(self, field_name: str) -> None:
        super().__init__(field_name)
        self.field = field_name


def _answer(tables: Tables, ward_codes: list[str], quality: float, street: str) -> Conversion:
    """Every new commune the given old wards went to, most likely first.

    Each old ward weighs the same; a split ward gives 0.6 of its weight to its main
    new commune and shares the rest among the others. `quality` is how sure the reading
    of the old units is (1.0 when province, district and ward were all named).
    """
    weights: dict[str, float] = {}
    first: dict[str, Candidate] = {}
    wards_of: dict[str, list[OldWard]] = defaultdict(list)
    split = False
    for code in sorted(ward_codes):
        ward = tables.old_wards[code]
        targets = tables.ward_targets[code]
        split = split or len(targets) > 1
        for target in targets:
            share = 1.0 if len(targets) == 1 else (0.6 if target.main else 0.4 / (len(targets) - 1))
            commune = target.commune.code
            weights[commune] = weights.get(commune, 0.0) + share * quality / len(ward_codes)
            wards_of[commune].append(ward)
            if commune not in first or (target.main and len(targets) > 1):
                first[commune] = Candidate(
                    province=target.province,
                    commune=target.commune,
                    confidence=0.0,
                    main=target.main and len(targets) > 1,
                    old_province=ward.province,
                    old_district=ward.district,
                    old_wards=(),
                )
    candidates = [
        Candidate(
            province=c.province,
            commune=c.commune,
            confidence=round(min(weights[code], 1.0), 2),
            main=c.main,
            old_province=c.old_province,
            old_district=c.old_district,
            old_wards=tuple(wards_of[code]),
        )
        for code, c in first.items()
    ]
    candidates.sort(key=lambda c: (-c.confidence, not c.main, c.commune.code if c.commune else ""))
    status: Status = "converted" if len(candidates) == 1 else "choose"
    return Conversion(status, street, tuple(candidates), split)


def _island(tables: Tables, district_code: str, street: str) -> Conversion:
    """An island district that had no wards and is now a special zone (đặc khu)."""
    province = tables.old_provinces[tables.district_province[district_code]]
    district = tables.old_districts[district_code]
    candidates = tuple(
        Candidate(t.province, t.commune, 1.0, False, province, district, ())
        for t in tables.island_targets[district_code]
    )
    return Conversion("converted", street, candidates, False)


def _province_only(tables: Tables, province_code: str, street: str) -> Conversion:
    """A province named alone: the one it became part of, no commune."""
    candidate = Candidate(
        province=tables.province_target[province_code],
        commune=None,
        confidence=1.0,
        main=False,
        old_province=tables.old_provinces[province_code],
        old_district=None,
        old_wards=(),
    )
    return Conversion("province_only", street, (candidate,), False)


def _districts(tables: Tables, district_codes: set[str], street: str) -> Conversion:
    """A district named without a ward: every commune its wards went to."""
    if all(code in tables.island_targets for code in district_codes):
        return _island(tables, sorted(district_codes)[0], street)
    wards = [w for d in sorted(district_codes) for w in tables.wards_of_district.get(d, [])]
    return _answer(tables, wards, 1.0, street)


def convert_codes(
    province_code: str, district_code: str | None = None, ward_code: str | None = None
) -> Conversion:
    """Old official codes (province "79", district "760", ward "26734") -> new units."""
    tables = load()
    province = province_code.strip().zfill(2)
    if province not in tables.old_provinces:
        raise BadCodes("province_code")
    if ward_code:
        ward = tables.old_wards.get(ward_code.strip().zfill(5))
        if ward is None:
            raise BadCodes("ward_code")
        if ward.province.code != province or (
            district_code and ward.district.code != district_code.strip().zfill(3)
        ):
            raise BadCodes("ward_code")
        return _answer(tables, [ward.code], 1.0, "")
    if district_code:
        district = district_code.strip().zfill(3)
        if tables.district_province.get(district) != province:
            raise BadCodes("district_code")
        return _districts(tables, {district}, "")
    return _province_only(tables, province, "")


# --- Reading text -----------------------------------------------------------------------


def _match(
    words: list[str], vocabulary: dict[str, set[str]], prefixes: tuple[str, ...]
) -> tuple[int, set[str]] | None:
    """The longest tail of `words` that is a known spelling: (where it starts, codes)."""
    for start in range(len(words)):
        joined = "".join(words[start:])
        for candidate in (joined, _strip_prefix(joined, prefixes)):
            if candidate in vocabulary:
                return start, vocabulary[candidate]
    return None


class _Reader:
    """Consumes the text from its end: province, then district, then ward."""

    def __init__(self, text: str) -> None:
        self.parts = [
            [(m.group(0), key(m.group(0))) for m in _WORDS.finditer(part)]
            for part in _PARTS.split(text)
        ]
        self.parts = [[w for w in part if w[1]] for part in self.parts]
        self.parts = [part for part in self.parts if part]
        # A trailing country or postcode ("..., Việt Nam", "700000") names no unit.
        while self.parts and (
            "".join(k for _, k in self.parts[-1]) in _COUNTRY
            or all(k.isdigit() for _, k in self.parts[-1])
        ):
            self.parts.pop()

    def take(self, vocabulary: dict[str, set[str]], prefixes: tuple[str, ...]) -> set[str] | None:
        if not self.parts:
            return None
        last = self.parts[-1]
        found = _match([k for _, k in last], vocabulary, prefixes)
        if found is None:
            return None
        start, codes = found
        if start:
            self.parts[-1] = last[:start]
        else:
            self.parts.pop()
        return codes

    def last_written(self) -> str:
        return " ".join(w for w, _ in self.parts[-1]) if self.parts else ""

    def street(self) -> str:
        return ", ".join(" ".join(w for w, _ in part) for part in self.parts)


def _suggest(written: str, units: Mapping[str, OldUnit | OldWard]) -> list[str]:
    """Names of old units close to what was written (ADDRESS_SUGGESTIONS_MAX at most)."""
    names = {key(unit.name): unit.name for unit in units.values()}
    limit = settings.ADDRESS_SUGGESTIONS_MAX
    return [names[m] for m in difflib.get_close_matches(key(written), list(names), limit, 0.6)]


def _below_province(tables: Tables, reader: _Reader, provinces: list[str]) -> Conversion | None:
    """District and ward read within `provinces`; None when neither is found there."""
    district_words: dict[str, set[str]] = {}
    for province in provinces:
        for word, codes in tables.district_words.get(province, {}).items():
            district_words.setdefault(word, set()).update(codes)
    district_codes = reader.take(district_words, _DISTRICT_PREFIXES)
    if district_codes is not None:
        if not reader.parts:  # "Quận 1, TP HCM"
            return _districts(tables, district_codes, "")
        vocabulary: dict[str, set[str]] = {}
        for district in district_codes:
            for word, codes in tables.ward_words.get(district, {}).items():
                vocabulary.setdefault(word, set()).update(codes)
        ward_codes = reader.take(vocabulary, _WARD_PREFIXES)
        if ward_codes is not None:
            return _answer(tables, sorted(ward_codes), 1.0, reader.street())
        if all(d in tables.island_targets for d in district_codes):  # "thôn X, H. Côn Đảo"
            return _districts(tables, district_codes, reader.street())
        written = reader.last_written()
        wards = {
            code: tables.old_wards[code]
            for d in district_codes
            for code in tables.wards_of_district.get(d, [])
        }
        raise NotRecognised("ward", written, _suggest(written, wards))
    # No district written: the ward looked up in the whole province.
    vocabulary = {}
    for district, words in tables.ward_words.items():
        if tables.district_province[district] in provinces:
            for word, codes in words.items():
                vocabulary.setdefault(word, set()).update(codes)
    ward_codes = reader.take(vocabulary, _WARD_PREFIXES)
    if ward_codes is None:
        return None
    return _answer(tables, sorted(ward_codes), 0.9, reader.street())


def convert_text(text: str) -> Conversion:
    """An old address as written ("Số 1, P. Bến Nghé, Q.1, TP HCM") -> new units.

    People now often write the new province after old district and ward ("Xã Điện
    Thắng Bắc, TX Điện Bàn, Đà Nẵng": Quảng Nam joined Đà Nẵng): what is not found in
    the named province is looked for in the provinces merged with it.
    """
    tables = load()
    reader = _Reader(text)
    province_codes = reader.take(tables.province_words, _PROVINCE_PREFIXES)
    if not province_codes:
        written = reader.last_written()
        raise NotRecognised("province", written, _suggest(written, tables.old_provinces))
    province = sorted(province_codes)[0]  # no spelling names two provinces (tested)
    if not reader.parts:
        return _province_only(tables, province, "")
    found = _below_province(tables, reader, [province])
    if found is not None:
        return found
    new_province = tables.province_target[province]
    merged = [
        code
        for code, target in sorted(tables.province_target.items())
        if target == new_province and code != province
    ]
    found = _below_province(tables, reader, merged) if merged else None
    if found is not None:
        return found
    written = reader.last_written()
    districts = {
        code: unit
        for code, unit in tables.old_districts.items()
        if tables.district_province[code] == province
    }
    raise NotRecognised("district", written, _suggest(written, districts))
