"""The two packages agree: every conversion target is a 2025 unit that vietnam-provinces
serves, and every such unit is reached by some old ward. Run after updating either
package (README, "Old addresses"): a failure names the unit one package knows and the
other does not."""

from __future__ import annotations

import re
import tomllib
from importlib import metadata
from pathlib import Path

from vietnam_provinces import Province, Ward

from backend import old_addresses

ROOT = Path(__file__).resolve().parents[2]


def served_communes() -> dict[str, tuple[str, str]]:
    return {f"{int(w.code):05d}": (w.name, f"{int(w.province_code):02d}") for w in Ward.iter_all()}


def test_both_packages_are_pinned_to_the_installed_versions() -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    pins = dict(
        re.fullmatch(r"([A-Za-z0-9_.-]+)==(\S+)", dep).groups()  # type: ignore[union-attr]
        for dep in pyproject["project"]["dependencies"]
        if dep.startswith(("vietnam-provinces", "vietnamadminunits"))
    )
    assert pins == {
        "vietnam-provinces": metadata.version("vietnam-provinces"),
        "vietnamadminunits": metadata.version("vietnamadminunits"),
    }
    lock = (ROOT / "requirements.lock").read_text().splitlines()
    for name, version in pins.items():
        assert f"{name}=={version}" in lock


def test_every_target_and_old_unit_resolves_without_problems() -> None:
    tables = old_addresses.load()
    assert tables.problems == []


def test_every_conversion_target_is_a_served_commune_with_its_name_and_province() -> None:
    tables = old_addresses.load()
    served = served_communes()
    provinces = {f"{int(p.code):02d}": p.name for p in Province.iter_all()}
    targets = [t for ts in tables.ward_targets.values() for t in ts]
    targets += [t for ts in tables.island_targets.values() for t in ts]
    unknown = sorted(
        (t.commune.code, t.commune.name)
        for t in targets
        if served.get(t.commune.code) != (t.commune.name, t.province.code)
    )
    assert unknown == []
    assert {t.province.code for t in targets} == set(provinces)
    assert all(provinces[t.province.code] == t.province.name for t in targets)


def test_every_served_commune_is_reached_by_an_old_ward() -> None:
    tables = old_addresses.load()
    reached = {t.commune.code for ts in tables.ward_targets.values() for t in ts}
    reached |= {t.commune.code for ts in tables.island_targets.values() for t in ts}
    missing = sorted(
        (code, name) for code, (name, _) in served_communes().items() if code not in reached
    )
    assert missing == []
    assert len(reached) == 3321


def test_every_old_ward_and_province_has_a_target() -> None:
    tables = old_addresses.load()
    assert len(tables.old_provinces) == 63
    assert set(tables.province_target) == set(tables.old_provinces)
    assert len({u.code for u in tables.province_target.values()}) == 34
    assert [code for code, targets in tables.ward_targets.items() if not targets] == []
    assert sorted(tables.island_targets) == ["318", "471", "498", "536", "755"]
    assert all(len(ts) == 1 for ts in tables.island_targets.values())


def test_a_split_ward_has_exactly_one_main_commune() -> None:
    tables = old_addresses.load()
    splits = {code: ts for code, ts in tables.ward_targets.items() if len(ts) > 1}
    assert len(splits) > 400  # the package lists 471 split wards
    assert all(sum(t.main for t in ts) == 1 for ts in splits.values())


def test_no_spelling_names_two_old_provinces() -> None:
    tables = old_addresses.load()
    assert {w: codes for w, codes in tables.province_words.items() if len(codes) > 1} == {}
