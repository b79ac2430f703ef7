from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from coursekit.workspace.report import (
    MIN_SECTION_WORDS,
    SECTIONS,
    count_words,
    section_problems,
    sections,
)
from tests.workspace.complete import report

WORD = st.text(alphabet="abcxyz0123", min_size=1, max_size=8)


def test_words_skip_comments_code_blocks_and_punctuation_only_tokens():
    text = (
        "# Title here\n<!-- a long\nguidance comment -->\nOne two | three |\n"
        "```python\nnot counted = 1\n```\n~~~\nnor this\n~~~\n- four five\n"
    )
    assert count_words(text) == 7  # Title here One two three four five


def test_an_unclosed_comment_hides_the_rest():
    assert count_words("one <!-- two\nthree") == 1


@settings(deadline=None, derandomize=True)
@given(st.lists(WORD, max_size=40), st.text(alphabet="ab \n-", max_size=30))
def test_comments_never_change_the_count(words, comment):
    text = " ".join(words)
    assert count_words(text) == len(words)
    assert count_words(f"{text} <!--{comment}-->") == len(words)


def test_sections_are_level_two_headings_and_end_at_the_next_one():
    text = (
        "# T\nintro\n## Summary\nA.\n### Detail\nB.\n## Method ##\nC.\n```\n## not a heading\n```"
    )
    assert sections(text) == {
        "Summary": "A.\n### Detail\nB.",
        "Method": "C.\n```\n## not a heading\n```",
    }


def test_the_completed_report_has_no_problem():
    assert section_problems(report()) == []
    assert 500 <= count_words(report()) <= 1000


def test_the_template_headings_fail_as_empty_sections(fresh):
    problems = section_problems((fresh / "ENHANCEMENT.md").read_text())
    assert len(problems) == len(SECTIONS) + 3  # each empty; no number x2, no code block
    assert f"section 'Summary': 0 of {MIN_SECTION_WORDS} words" in problems


def test_missing_section_numbers_and_code_are_named():
    text = report().replace("## Lessons learned", "## Afterthoughts")
    text = text.replace("2.59 to 2.41 over 3", "a lot over several").replace("```python", "")
    text = text.replace("```", "")
    assert section_problems(text) == [
        "section 'Results' has no number",
        "section 'Lessons learned' is missing",
        "section 'Usage example' has no fenced code block",
    ]


def test_a_heading_is_matched_by_its_start_case_insensitively():
    text = report().replace("## Results", "## RESULTS: DoRA against LoRA")
    assert section_problems(text) == []
