r"""Reading a learner's ``ENHANCEMENT.md``: its word count and its required sections.

Words are what a reader reads as prose: whitespace-separated tokens with at least one letter
or digit, outside fenced code blocks (```` ``` ```` or ``~~~``) and HTML comments (the
template's guidance is in comments). Headings count; table pipes do not.

A section is a level-2 heading (``## ...``) whose text starts with one of
:data:`SECTIONS`' titles, case-insensitively (``## Results: DoRA vs LoRA`` is Results). Its
body runs to the next level-1 or level-2 heading. A body is filled when it has at least
:data:`MIN_SECTION_WORDS` words; Results and Benchmarks must also hold a number, and Usage
example a fenced code block.

Guide: docs/course.md ("Your workspace"; Phase 4 asks for 500-1000 words).

Example:
    >>> count_words("## Results\n\nLoss fell by 3.2% <!-- not this -->\n```\nnot = this\n```")
    5
"""

from __future__ import annotations

import re
from dataclasses import dataclass

MIN_WORDS, MAX_WORDS = 500, 1000
"""The course's bounds on ``ENHANCEMENT.md`` (Phase 4)."""
MIN_SECTION_WORDS = 10
"""Words a section needs to count as filled in (a sentence or two)."""


@dataclass(frozen=True, kw_only=True)
class Section:
    """A required section of ``ENHANCEMENT.md`` and what its body must hold."""

    title: str
    """The start of its heading, e.g. ``"Results"``."""
    needs_number: bool = False
    """The body must contain a number (a digit)."""
    needs_code: bool = False
    """The body must contain a fenced code block."""


SECTIONS: tuple[Section, ...] = (
    Section(title="Summary"),
    Section(title="Enhancements"),
    Section(title="Method"),
    Section(title="Results", needs_number=True),
    Section(title="Falsification"),
    Section(title="Benchmarks", needs_number=True),
    Section(title="Lessons learned"),
    Section(title="Usage example", needs_code=True),
)
"""The sections the course asks for (docs/course.md, Phase 4; the grading rubric)."""

_COMMENT = re.compile(r"<!--.*?(-->|\Z)", re.DOTALL)
_FENCE = re.compile(r"^ {0,3}(```|~~~)")
_HEADING = re.compile(r"^ {0,3}(#{1,6})[ \t]+(.*?)[ \t#]*$")
_WORD = re.compile(r"\w")


def _split(text: str) -> tuple[list[str], list[str]]:
    """Return (prose lines, code lines) of Markdown ``text``, comments removed."""
    prose, code, fence = [], [], None
    for line in _COMMENT.sub(" ", text).splitlines():
        match = _FENCE.match(line)
        if fence is None and match:
            fence = match[1]
            code.append(line)
        elif fence is not None:
            code.append(line)
            if line.strip().startswith(fence):
                fence = None
        else:
            prose.append(line)
    return prose, code


def count_words(text: str) -> int:
    """Return the number of prose words of Markdown ``text`` (see the module docstring)."""
    prose, _ = _split(text)
    return sum(1 for line in prose for token in line.split() if _WORD.search(token))


def sections(text: str) -> dict[str, str]:
    r"""Return ``{level-2 heading text: body}`` of Markdown ``text`` (comments removed).

    Example:
        >>> sections("# T\n## Summary\nIt works.\n## Method\nLoRA.")
        {'Summary': 'It works.', 'Method': 'LoRA.'}
    """
    found: dict[str, list[str]] = {}
    current: list[str] | None = None
    fence = False
    for line in _COMMENT.sub(" ", text).splitlines():
        if _FENCE.match(line):
            fence = not fence
        heading = None if fence else _HEADING.match(line)
        if heading and len(heading[1]) <= 2:
            current = found.setdefault(heading[2], []) if len(heading[1]) == 2 else None
            continue
        if current is not None:
            current.append(line)
    return {title: "\n".join(lines).strip() for title, lines in found.items()}


def section_problems(text: str) -> list[str]:
    r"""Return what is missing from the required sections of ``text`` (empty: all fine).

    Example:
        >>> section_problems("## Summary\nShort.")[:2]
        ["section 'Summary': 1 of 10 words", "section 'Enhancements' is missing"]
    """
    bodies = sections(text)
    problems = []
    for section in SECTIONS:
        body = next(
            (b for title, b in bodies.items() if title.lower().startswith(section.title.lower())),
            None,
        )
        if body is None:
            problems.append(f"section {section.title!r} is missing")
            continue
        words = count_words(body)
        prose, code = _split(body)
        if words < MIN_SECTION_WORDS:
            problems.append(f"section {section.title!r}: {words} of {MIN_SECTION_WORDS} words")
        if section.needs_number and not any(re.search(r"\d", line) for line in prose):
            problems.append(f"section {section.title!r} has no number")
        if section.needs_code and not code:
            problems.append(f"section {section.title!r} has no fenced code block")
    return problems
