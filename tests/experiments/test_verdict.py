"""A verdict always carries its numbers, says FALSIFIED when it is, and round-trips as data."""

from __future__ import annotations

import json

import pytest

from coursekit.errors import CoursekitError
from coursekit.experiments.verdict import EvidenceError, Verdict, finite, text_table


def make(**changes):
    fields = {
        "claim": "the loss is below 2",
        "holds": False,
        "rule": "falsified when x > θ",
        "evidence": ({"measured": 2.5, "threshold": 2.0, "name": "run-a|b", "df": None},),
        "explanation": "2.5 exceeds 2 by 0.5.",
    }
    return Verdict(**(fields | changes))


def test_a_falsified_verdict_says_so_with_its_numbers():
    verdict = make()
    text, markdown = str(verdict), verdict.to_markdown()
    assert verdict.status == "FALSIFIED"
    assert text.startswith("FALSIFIED: the loss is below 2\nrule: falsified when x > θ\n")
    assert markdown.startswith("**FALSIFIED**: the loss is below 2")
    for shown in (text, markdown):
        assert "2.5" in shown and "2.5 exceeds 2 by 0.5." in shown
    assert "run-a\\|b" in markdown  # a pipe in a cell does not break the table
    assert verdict._repr_markdown_() == markdown


def test_a_verdict_that_holds_is_not_falsified():
    verdict = make(holds=True)
    assert verdict.status == "NOT FALSIFIED"
    assert str(verdict).startswith("NOT FALSIFIED: ")


@pytest.mark.parametrize(
    ("changes", "named"),
    [
        ({"evidence": ()}, "at least one row"),
        ({"evidence": {"measured": 1.0}}, "at least one row"),
        ({"evidence": ({},)}, "evidence[0]"),
        ({"evidence": ({"measured": float("nan")},)}, "'measured'"),
        ({"evidence": ({"measured": [1.0]},)}, "not plain data"),
        ({"claim": " "}, "Verdict.claim"),
        ({"rule": ""}, "Verdict.rule"),
        ({"explanation": None}, "Verdict.explanation"),
        ({"holds": 1}, "Verdict.holds"),
    ],
)
def test_a_verdict_without_its_numbers_or_words_is_refused(changes, named):
    with pytest.raises(EvidenceError, match="Verdict") as raised:
        make(**changes)
    assert named in str(raised.value) and "\n" not in str(raised.value)


def test_the_evidence_is_read_only_and_a_copy():
    row = {"measured": 2.5}
    verdict = make(evidence=[row])
    row["measured"] = 0.0
    assert verdict.evidence[0]["measured"] == 2.5
    with pytest.raises(TypeError):
        verdict.evidence[0]["measured"] = 1.0  # type: ignore[index]


def test_to_dict_is_json_and_from_dict_reads_it_back(tmp_path):
    verdict = make()
    path = verdict.save(tmp_path / "verdict.json")
    data = json.loads(path.read_text(encoding="utf-8"))
    assert data["status"] == "FALSIFIED" and data["evidence"][0]["measured"] == 2.5
    assert Verdict.from_dict(data) == verdict
    with pytest.raises(EvidenceError, match=r"\['holds'\]"):
        Verdict.from_dict({key: value for key, value in data.items() if key != "holds"})


def test_a_verdict_that_cannot_be_saved_says_where_and_why(tmp_path):
    with pytest.raises(
        CoursekitError, match=r"no-such-folder/verdict\.json: cannot write the verdict"
    ):
        make().save(tmp_path / "no-such-folder" / "verdict.json")
    assert list(tmp_path.iterdir()) == []


def test_text_table_aligns_numbers_right_and_text_left():
    rows = [{"name": "a", "n": 3, "ok": True, "s": None}, {"name": "bbb", "n": 12, "ok": False}]
    assert text_table(rows).splitlines() == [
        "name   n   ok  s",
        "a      3  yes  –",
        "bbb   12   no  –",
    ]


def test_evidence_errors_are_coursekit_errors_and_value_errors():
    assert issubclass(EvidenceError, CoursekitError) and issubclass(EvidenceError, ValueError)


@pytest.mark.parametrize(
    ("value", "named"),
    [
        (float("nan"), "got nan"),
        (float("-inf"), "got -inf"),
        ("1.5", "got '1.5': str"),
        (True, "got True: bool"),
        (None, "got None: NoneType"),
    ],
)
def test_finite_refuses_what_is_not_a_finite_number(value, named):
    with pytest.raises(EvidenceError, match="x must be a finite number") as raised:
        finite(value, "x")
    assert named in str(raised.value)


def test_finite_suggests_item_for_a_tensor():
    torch = pytest.importorskip("torch")
    with pytest.raises(EvidenceError, match=r"call \.item\(\) on a tensor"):
        finite(torch.tensor([0.5, 0.25]), "x")
    assert finite(torch.tensor(0.5).item(), "x") == 0.5
