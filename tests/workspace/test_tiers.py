from __future__ import annotations

from pathlib import Path

import pytest

from coursekit.workspace.tiers import TIERS, check_choice, parse_tiers

ROOT = Path(__file__).resolve().parents[2]


def test_twelve_tiers_four_per_level_in_course_order():
    assert "".join(TIERS) == "ABCDEFGHIJKL"
    levels = [tier.level for tier in TIERS.values()]
    assert levels == ["core"] * 4 + ["advanced"] * 4 + ["bonus"] * 4


@pytest.mark.parametrize("letter", list(TIERS))
def test_each_tier_names_a_module_and_files_that_exist(letter):
    tier = TIERS[letter]
    assert tier.module.isidentifier() and tier.module.startswith(letter.lower() + "_")
    assert tier.test_prefix == f"test_{letter.lower()}_"
    assert (ROOT / tier.guide).is_file() and (ROOT / tier.reference).is_file()


def test_parse_tiers_normalises_case_order_and_repeats():
    assert parse_tiers(" e,A ,a,L") == ("A", "E", "L")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("A,M", "tier 'M' is not one of A-L"),
        ("A,B", "have no Advanced tier: add one of E, F, G, H"),
        ("E,I", "have no Core tier: add one of A, B, C, D"),
        ("", "have no Core tier"),
    ],
)
def test_bad_choices_are_refused_with_the_fix(text, message):
    with pytest.raises(ValueError, match=message):
        parse_tiers(text)


def test_check_choice_accepts_a_bonus_on_top():
    check_choice(("D", "H", "L"))
