r"""Read a model's answer: its first Rust code block, and the tests in it.

The course's answers are ChatML turns whose content is the tests in a fenced block,
```` ```rust\n...\n``` ```` (:func:`coursekit.data.prompts.assistant_message`). This module
takes the answer text apart into the facts the evaluation funnel
(:mod:`coursekit.evaluate.funnel`) counts, each decided from the text alone, before anything
is compiled:

- **well-formed**: the code block closes by itself (its closing fence was generated), rather
  than being cut off by the token budget;
- **parses**: tree-sitter finds no ``ERROR`` or ``MISSING`` node in the code;
- **test functions**: ``fn`` items marked ``#[test]`` (or ``#[<path>::test]``), at any depth
  (inside ``mod tests`` too);
- **asserts**: at least one test function checks something: it calls an ``assert*!`` or
  ``panic!``-family macro, is ``#[should_panic]``, or returns a ``Result`` (a test that returns
  ``Err`` fails). A test with none of these passes whatever the function does.

Example:
    >>> answer = "```rust\n#[test]\nfn adds() { assert_eq!(add(1, 2), 3); }\n```"
    >>> block = first_code_block(answer)
    >>> block.well_formed, parses(block.code), test_names(block.code), asserts(block.code)
    (True, True, ['adds'], True)
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import tree_sitter

from coursekit.data.rust_syntax import attributes, is_test_function, name_of, parse, text

_FENCE = re.compile(r"(?P<fence>`{3,})[ \t]*(?P<lang>[\w+-]*)[ \t]*\n")
_ASSERTING_MACROS = re.compile(r"^(?:assert\w*|debug_assert\w*|panic|unreachable|unimplemented)$")


@dataclass(frozen=True, kw_only=True)
class CodeBlock:
    """The first fenced code block of an answer."""

    code: str
    """The text between the fences (up to the end of the answer when it never closed)."""
    language: str
    """The fence's language tag, e.g. ``rust`` (``""`` when none)."""
    well_formed: bool
    """Whether the block has its closing fence: the model stopped by itself."""


def first_code_block(answer: str) -> CodeBlock | None:
    r"""Return the first fenced block of ``answer``, or None when it opens no block.

    Blocks tagged with another language than ``rust``/``rs`` (or untagged) count too: a small
    model often drops the tag, and the compiler is the judge of the content. As in
    CommonMark, the block closes at a line holding (after at most 3 spaces) a backtick fence
    at least as long as the opening one, so ```` ``` ```` indented inside a Rust string, or
    inside a block opened with four backticks, does not close it.

    Example:
        >>> first_code_block("```rust\nfn f() {}").well_formed
        False
    """
    opening = _FENCE.search(answer)
    if opening is None:
        return None
    rest = answer[opening.end() :]
    size = len(opening["fence"])
    closing = re.compile(rf"(?:^|\n) {{0,3}}`{{{size},}}[ \t]*(?=\n|$)").search(rest)
    code = rest if closing is None else rest[: closing.start()]
    return CodeBlock(code=code, language=opening["lang"], well_formed=closing is not None)


def _has_error(node: tree_sitter.Node) -> bool:
    return node.has_error or node.is_missing


def parses(code: str) -> bool:
    """Return True when ``code`` is non-empty Rust with no syntax error (tree-sitter).

    Example:
        >>> parses("fn f() { 1 + }"), parses("// only a comment"), parses("")
        (False, True, False)
    """
    return bool(code.strip()) and not _has_error(parse(code).root_node)


def test_functions(code: str) -> list[tree_sitter.Node]:
    """Return the ``#[test]`` functions of ``code`` at any depth, in source order."""
    found: list[tree_sitter.Node] = []
    stack = [parse(code).root_node]
    while stack:
        node = stack.pop()
        if is_test_function(node):
            found.append(node)
        stack.extend(reversed(node.named_children))
    return found


def test_names(code: str) -> list[str]:
    """Return the names of the ``#[test]`` functions of ``code``, in source order."""
    return [name_of(node) for node in test_functions(code)]


def _macro_names(node: tree_sitter.Node) -> set[str]:
    names: set[str] = set()
    stack = [node]
    while stack:
        current = stack.pop()
        if current.type == "macro_invocation":
            macro = current.child_by_field_name("macro")
            if macro is not None:
                names.add(text(macro).split("::")[-1])
        stack.extend(current.named_children)
    return names


def test_asserts(node: tree_sitter.Node) -> bool:
    """Return True when a ``#[test]`` function can fail on a wrong result (see module doc)."""
    if any("should_panic" in attribute for attribute in attributes(node)):
        return True
    returns = node.child_by_field_name("return_type")
    if returns is not None and re.search(r"\bResult\b", text(returns)):
        return True
    return any(_ASSERTING_MACROS.match(name) for name in _macro_names(node))


def asserts(code: str) -> bool:
    r"""Return True when at least one ``#[test]`` function of ``code`` asserts something.

    Example:
        >>> asserts("#[test]\nfn t() { f(); }"), asserts("#[test]\nfn t() { assert!(f()); }")
        (False, True)
    """
    return any(test_asserts(node) for node in test_functions(code))
