r"""Difficulty features of a sample for curriculum ordering, read from its syntax tree.

For the focal function (the first ``fn`` in ``Sample.function``):

- ``lines``: source lines; ``tokens``: Qwen2.5 tokens (when a counter is given);
- ``cyclomatic``: McCabe complexity, 1 + branch points (``if``, ``while``, ``for``,
  ``loop``, each ``match`` arm after the first, ``&&``, ``||``, ``?``);
- ``nesting``: deepest nesting of blocks inside the body (a flat body is 1);
- ``parameters`` (``self`` included), ``generics`` (type and const parameters),
  ``lifetimes`` (distinct lifetime names in the signature, ``'static`` included);
- ``unsafe`` and ``async`` flags, ``closures``: closure expressions;

and for the reference tests: ``tests`` (count of ``#[test]``) and ``assertions``
(``assert*!`` / ``debug_assert*!`` invocations).

Example:
    >>> f = function_features("fn f(x: i32) -> i32 { if x > 0 { x } else { -x } }")
    >>> (f["cyclomatic"], f["nesting"], f["parameters"])
    (2, 2, 1)
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Any

import tree_sitter

from coursekit.data import rust_syntax as rs
from coursekit.data.corpus import Sample

_BRANCHES = frozenset(
    {"if_expression", "while_expression", "for_expression", "loop_expression", "try_expression"}
)
_ASSERT = re.compile(r"\b(?:debug_)?assert\w*!")
_TEST = re.compile(r"#\[\s*(?:[\w:]+::)?test\s*\]")


def function_features(source: str) -> dict[str, Any]:
    """Return the syntax features of the first function in ``source`` (see module doc).

    Example:
        >>> function_features("async fn f<'a, T>(x: &'a T) {}")["lifetimes"]
        1
    """
    root = rs.parse(source).root_node
    function = next((n for n in _walk(root) if n.type == "function_item"), root)
    body = function.child_by_field_name("body")
    nodes = list(_walk(body)) if body is not None else []
    signature = rs.text(function)[: (body.start_byte - function.start_byte) if body else None]
    parameters = function.child_by_field_name("parameters")
    generics = function.child_by_field_name("type_parameters")
    modifiers = [rs.text(n) for n in function.children if n.type == "function_modifiers"]
    return {
        "lines": source.count("\n") + 1,
        "cyclomatic": 1 + _branches(nodes),
        "nesting": _depth(body) if body is not None else 0,
        "parameters": len(parameters.named_children) if parameters is not None else 0,
        "generics": sum(
            n.type in ("type_parameter", "const_parameter")
            for n in (generics.named_children if generics is not None else [])
        ),
        "lifetimes": len(set(re.findall(r"'\w+\b(?!')", signature))),
        "unsafe": "unsafe" in modifiers[0] if modifiers else False,
        "async": "async" in modifiers[0] if modifiers else False,
        "closures": sum(n.type == "closure_expression" for n in nodes),
    }


def sample_features(sample: Sample, count_tokens: Callable[[str], int] | None = None) -> dict:
    """Return all features of a sample: function features, token count, test counts.

    Args:
        sample: the sample.
        count_tokens: maps text to a token count (e.g. the Qwen2.5 tokenizer); without
            one ``tokens`` is left out.

    Example:
        >>> sample_features(sample, lambda text: len(text.split()))["tests"]  # doctest: +SKIP
        2
    """
    features = function_features(sample.function)
    features["unsafe"] = features["unsafe"] or "unsafe " in sample.function
    if count_tokens is not None:
        features["tokens"] = count_tokens(sample.function)
    features["tests"] = len(_TEST.findall(sample.tests))
    features["assertions"] = len(_ASSERT.findall(sample.tests))
    return features


def qwen_token_counter() -> Callable[[str], int]:
    """Return a function counting Qwen2.5 tokens of a text (offline tokenizer).

    Example:
        >>> count = qwen_token_counter()  # doctest: +SKIP
        >>> count("fn main() {}")  # doctest: +SKIP
        5
    """
    from coursekit.tokenizer import load_qwen25_tokenizer

    tokenizer = load_qwen25_tokenizer()
    return lambda text: len(tokenizer(text, add_special_tokens=False)["input_ids"])


def _walk(node: tree_sitter.Node) -> Iterator[tree_sitter.Node]:
    """Yield ``node`` and all its descendants, depth first."""
    stack = [node]
    while stack:
        current = stack.pop()
        yield current
        stack.extend(reversed(current.children))


def _branches(nodes: list[tree_sitter.Node]) -> int:
    """Count branch points among ``nodes``."""
    count = 0
    for node in nodes:
        if node.type in _BRANCHES:
            count += 1
        elif node.type == "match_block":
            count += max(sum(c.type == "match_arm" for c in node.named_children) - 1, 0)
        elif node.type == "binary_expression":
            operator = node.child_by_field_name("operator")
            count += operator is not None and rs.text(operator) in ("&&", "||")
    return count


def _depth(node: tree_sitter.Node) -> int:
    """Return the deepest nesting of ``block`` nodes under and including ``node``."""
    best = 0
    stack = [(node, 0)]
    while stack:
        current, depth = stack.pop()
        depth += current.type == "block"
        best = max(best, depth)
        stack.extend((child, depth) for child in current.named_children)
    return best
