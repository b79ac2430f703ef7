"""A learner's completed workspace for tiers A and E: trivial code, but every gate met.

``fill(root)`` writes two small enhancement modules, five tests per tier (one a hypothesis
property, one a falsification test through ``coursekit.experiments.falsify``) and a
600-word ENHANCEMENT.md. The gate tests then break one thing at a time.
"""

from __future__ import annotations

from pathlib import Path

RANKS = '''"""Tier A: the ranks of a rank ablation."""


def ranks(start: int = 4, stop: int = 64) -> list[int]:
    """Return the powers of two from ``start`` to ``stop``, both included.

    Example:
        >>> ranks(4, 16)
        [4, 8, 16]
    """
    if start < 1 or stop < start:
        raise ValueError(f"need 1 <= start <= stop (got {start}, {stop})")
    found = []
    rank = start
    while rank <= stop:
        found.append(rank)
        rank *= 2
    return found
'''

NORMS = '''"""Tier E: the magnitude vector of DoRA, m = ||W||_c (column norms)."""

import math


def column_norms(rows: list[list[float]]) -> list[float]:
    """Return the Euclidean norm of each column of a matrix given by rows.

    Example:
        >>> column_norms([[3.0, 0.0], [4.0, 1.0]])
        [5.0, 1.0]
    """
    if not rows:
        raise ValueError("need at least one row")
    return [math.sqrt(sum(row[j] ** 2 for row in rows)) for j in range(len(rows[0]))]
'''

TESTS_A = """import pytest
from coursekit.experiments.falsify import falsify

from enhancements.a_rank_ablation import ranks


def test_default_ranks_are_the_course_grid():
    assert ranks() == [4, 8, 16, 32, 64]


def test_one_rank():
    assert ranks(8, 8) == [8]


def test_stop_between_powers():
    assert ranks(4, 20) == [4, 8, 16]


@pytest.mark.parametrize(("start", "stop"), [(0, 4), (8, 4)])
def test_bad_bounds_are_refused(start, stop):
    with pytest.raises(ValueError, match="start <= stop"):
        ranks(start, stop)


def test_falsify_the_grid_has_at_most_five_ranks():
    verdict = falsify("the default grid has at most 5 ranks", len(ranks()), 5)
    assert verdict.holds
"""

TESTS_E = """import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from enhancements.e_dora import column_norms


def test_pythagoras():
    assert column_norms([[3.0], [4.0]]) == [5.0]


def test_one_value_per_column():
    assert len(column_norms([[1.0, 2.0, 3.0]])) == 3


def test_zero_column():
    assert column_norms([[0.0, 1.0], [0.0, 1.0]])[0] == 0.0


def test_empty_matrix_is_refused():
    with pytest.raises(ValueError, match="at least one row"):
        column_norms([])


@settings(deadline=None)
@given(st.lists(st.floats(-1e3, 1e3), min_size=1, max_size=8), st.floats(0, 10))
def test_norm_scales_with_the_matrix(column, factor):
    rows = [[value] for value in column]
    scaled = [[factor * value] for value in column]
    assert math.isclose(column_norms(scaled)[0], factor * column_norms(rows)[0], abs_tol=1e-6)
"""

PARAGRAPH = (
    "This paragraph explains the work in plain words, so that a reader who skipped the "
    "notebooks can follow what was built, why it was built and how it was checked. "
)


def report(words_per_section: int = 75) -> str:
    """An ENHANCEMENT.md with every section, numbers where needed, ~600 words in all."""
    base = PARAGRAPH.split()
    body = " ".join((base * (words_per_section // len(base) + 1))[:words_per_section])
    sections = {
        "Summary": body,
        "Enhancements and justification": body,
        "Method": body,
        "Results": f"Validation loss fell from 2.59 to 2.41 over 3 seeds. {body}",
        "Falsification tests": body,
        "Benchmarks before and after": f"Tokens per second: 1480 before, 1395 after. {body}",
        "Lessons learned": body,
        "Usage example": f"{body}\n\n```python\nfrom enhancements.a_rank_ablation import ranks\n"
        "print(ranks())\n```",
    }
    text = "# ada: enhancements\n\n<!-- the template's guidance stays in comments -->\n"
    return text + "".join(f"\n## {title}\n\n{content}\n" for title, content in sections.items())


def fill(root: Path) -> None:
    """Write the completed enhancement modules, tests and report into workspace ``root``."""
    (root / "enhancements" / "a_rank_ablation.py").write_text(RANKS)
    (root / "enhancements" / "e_dora.py").write_text(NORMS)
    (root / "tests" / "test_a_rank_ablation.py").write_text(TESTS_A)
    (root / "tests" / "test_e_dora.py").write_text(TESTS_E)
    (root / "ENHANCEMENT.md").write_text(report())
