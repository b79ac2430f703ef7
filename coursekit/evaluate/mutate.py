r"""Mutants of the function under test, after cargo-mutants' operators, with tree-sitter.

A mutant is the function with one small change; a test suite that still passes against it
has *missed* it. The operators follow cargo-mutants' book (``mutants.md``), applied to the
function under test only, never to test code:

- **FnValue**: replace the whole body with a value of the return type (:func:`body_values`):
  ``()``; ``0, 1, -1`` for signed and ``0, 1`` for unsigned integers; ``0.0, 1.0, -1.0``;
  ``true``/``false``; ``String::new()``/``"xyzzy".into()``; ``""``/``"xyzzy"`` for ``&str``;
  ``None``/``Some(v)``, ``Ok(v)``, ``vec![]``/``vec![v]``, ``Box::new(v)`` recursively;
  ``Default::default()`` otherwise (which may not compile: *unviable*).
- **BinaryOperator**: ``==``↔``!=``, ``&&``↔``||``, ``<``→``==``/``>``, ``>``→``==``/``<``,
  ``<=``→``>``, ``>=``→``<``, ``+``→``-``/``*``, ``-``→``+``/``/``, ``*``→``+``/``/``,
  ``/``→``%``/``*``, ``%``→``/``/``+``, ``<<``↔``>>``, ``&``→``|``/``^``, ``|``→``&``/``^``,
  ``^``→``&``/``|``, and the same for compound assignments (``+=``→``-=``/``*=`` ...).
- **UnaryOperator**: delete ``!`` or ``-``.
- **MatchArm**: delete an arm (without a guard) of a ``match`` that has a ``_`` arm to fall
  back on.

Each mutant is a byte span of the function's text and its replacement (:func:`apply`).
:func:`schema` writes all of them into one function (mutant schemata, as mutagen does): every
site becomes a switch on ``__ck_mutant(id)``, which reads the ``COURSEKIT_MUTANT`` environment
variable once, so one compile serves every mutant of a function.

Example:
    >>> found = mutants("fn max(a: i32, b: i32) -> i32 { if a > b { a } else { b } }")
    >>> [(m.genre, m.replacement) for m in found]  # doctest: +NORMALIZE_WHITESPACE
    [('FnValue', '{ 0 }'), ('FnValue', '{ 1 }'), ('FnValue', '{ -1 }'),
     ('BinaryOperator', '=='), ('BinaryOperator', '<')]
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from types import MappingProxyType

import tree_sitter

from coursekit.data.rust_syntax import is_test_function, is_test_module, parse, text

ENV_VAR = "COURSEKIT_MUTANT"
"""The environment variable that selects the active mutant of a schema (0 or unset: none)."""

BINARY_REPLACEMENTS: MappingProxyType[str, tuple[str, ...]] = MappingProxyType(
    {
        "==": ("!=",), "!=": ("==",), "&&": ("||",), "||": ("&&",),
        "<": ("==", ">"), ">": ("==", "<"), "<=": (">",), ">=": ("<",),
        "+": ("-", "*"), "-": ("+", "/"), "*": ("+", "/"), "/": ("%", "*"), "%": ("/", "+"),
        "<<": (">>",), ">>": ("<<",), "&": ("|", "^"), "|": ("&", "^"), "^": ("&", "|"),
    }
)  # fmt: skip
"""Binary operator → its replacements (compound assignments use the same table)."""

_SIGNED = re.compile(r"^(?:i8|i16|i32|i64|i128|isize)$")
_UNSIGNED = re.compile(r"^(?:u8|u16|u32|u64|u128|usize)$")
_FLOAT = re.compile(r"^(?:f32|f64)$")
_WRAPPERS = (
    (re.compile(r"^Option<(.+)>$"), lambda v: ["None", *(f"Some({x})" for x in v)]),
    (re.compile(r"^Result<(.+?)(?:,.*)?>$"), lambda v: [f"Ok({x})" for x in v]),
    (re.compile(r"^Vec<(.+)>$"), lambda v: ["vec![]", *(f"vec![{x}]" for x in v)]),
    (re.compile(r"^Box<(.+)>$"), lambda v: [f"Box::new({x})" for x in v]),
)


@dataclass(frozen=True, kw_only=True)
class Mutant:
    """One change to the function under test: replace bytes [start, end) by ``replacement``."""

    id: int
    """1-based, in source order of the sites; selects the mutant in a schema."""
    genre: str
    """``FnValue``, ``BinaryOperator``, ``UnaryOperator`` or ``MatchArm``."""
    start: int
    """First byte replaced, in the UTF-8 encoding of the function's text."""
    end: int
    """One past the last byte replaced."""
    original: str
    """The text replaced."""
    replacement: str
    """The text put in its place."""
    line: int
    """1-based line of ``start`` in the function's text."""

    def describe(self) -> str:
        """One line, as cargo-mutants prints it: ``line 3: replace > with ==``."""
        original = " ".join(self.original.split())[:40]
        return f"line {self.line}: replace {original} with {self.replacement}"


def body_values(return_type: str) -> list[str]:
    """Return cargo-mutants' FnValue replacements for a return type (see the module doc).

    Example:
        >>> body_values("Option<u8>"), body_values("&str"), body_values("HashMap<K, V>")
        (['None', 'Some(0)', 'Some(1)'], ['""', '"xyzzy"'], ['Default::default()'])
    """
    kind = " ".join(return_type.split())
    if kind in ("", "()"):
        return ["()"]
    for pattern, wrap in _WRAPPERS:
        if found := pattern.match(kind):
            return wrap(body_values(found.group(1).strip()))
    simple = {
        "bool": ["true", "false"],
        "String": ["String::new()", '"xyzzy".into()'],
        "&str": ['""', '"xyzzy"'],
        "&'static str": ['""', '"xyzzy"'],
    }
    if kind in simple:
        return simple[kind]
    if _SIGNED.match(kind):
        return ["0", "1", "-1"]
    if _UNSIGNED.match(kind):
        return ["0", "1"]
    if _FLOAT.match(kind):
        return ["0.0", "1.0", "-1.0"]
    return ["Default::default()"]


def _functions(root: tree_sitter.Node) -> list[tree_sitter.Node]:
    """Return the non-test ``fn`` items under ``root`` (test modules skipped), in order."""
    found, stack = [], [root]
    while stack:
        node = stack.pop()
        if is_test_module(node) or is_test_function(node):
            continue
        if node.type == "function_item" and node.child_by_field_name("body") is not None:
            found.append(node)
        stack.extend(reversed(node.named_children))
    return found


def _sites(function: tree_sitter.Node) -> list[tuple[str, tree_sitter.Node, list[str]]]:
    """Return (genre, node replaced, replacements) for every mutation site of a function."""
    body = function.child_by_field_name("body")
    returns = function.child_by_field_name("return_type")
    values = body_values(text(returns) if returns is not None else "")
    sites = [("FnValue", body, [f"{{ {v} }}" if v != "()" else "{}" for v in values])]
    stack = [body]
    while stack:
        node = stack.pop()
        if node.type in ("function_item", "macro_invocation") and node is not body:
            continue  # nested items are mutated as their own function; macros are opaque
        sites.extend(_node_sites(node))
        stack.extend(reversed(node.named_children))
    return sorted(sites, key=lambda site: (site[1].start_byte, -site[1].end_byte))


def _node_sites(node: tree_sitter.Node) -> list[tuple[str, tree_sitter.Node, list[str]]]:
    if node.type in ("binary_expression", "compound_assignment_expr"):
        operator = node.child_by_field_name("operator")
        if operator is not None:
            symbol = text(operator)
            suffix = "=" if node.type == "compound_assignment_expr" else ""
            base = symbol.removesuffix("=") if suffix else symbol
            options = [r + suffix for r in BINARY_REPLACEMENTS.get(base, ())]
            return [("BinaryOperator", operator, options)] if options else []
    if node.type == "unary_expression" and node.child_count and text(node.child(0)) in "!-":
        return [("UnaryOperator", node.child(0), [""])]
    if node.type == "match_block":
        arms = [child for child in node.named_children if child.type == "match_arm"]
        patterns = [arm.child_by_field_name("pattern") for arm in arms]
        if any(p is not None and text(p).strip() == "_" for p in patterns):
            return [
                ("MatchArm", arm, [""])
                for arm, pattern in zip(arms, patterns, strict=True)
                if pattern is not None
                and text(pattern).strip() != "_"
                and pattern.child_by_field_name("condition") is None  # guarded arms: left alone
            ]
    return []


def mutants(function_source: str) -> list[Mutant]:
    """Return every mutant of the (non-test) functions in ``function_source``, ids from 1.

    ``function_source`` is a sample's ``function``: a free ``fn``, or a method inside its
    ``impl`` block. Code inside macro invocations is left alone (it is not parsed as Rust).
    """
    encoded = function_source.encode("utf-8")
    found: list[Mutant] = []
    for function in _functions(parse(function_source).root_node):
        for genre, node, options in _sites(function):
            original = encoded[node.start_byte : node.end_byte].decode("utf-8")
            for replacement in options:
                found.append(
                    Mutant(
                        id=len(found) + 1, genre=genre, start=node.start_byte,
                        end=node.end_byte, original=original, replacement=replacement,
                        line=node.start_point[0] + 1,
                    )
                )  # fmt: skip
    return found


def apply(function_source: str, mutant: Mutant) -> str:
    """Return ``function_source`` with ``mutant`` applied (one mutant, one change).

    Example:
        >>> source = "fn f(a: i32) -> i32 { a + 1 }"
        >>> apply(source, mutants(source)[3])
        'fn f(a: i32) -> i32 { a - 1 }'
    """
    encoded = function_source.encode("utf-8")
    changed = encoded[: mutant.start] + mutant.replacement.encode("utf-8") + encoded[mutant.end :]
    return changed.decode("utf-8")


SWITCH = f"""
#[allow(dead_code)]
fn __ck_mutant(id: u32) -> bool {{
    static ACTIVE: std::sync::OnceLock<u32> = std::sync::OnceLock::new();
    *ACTIVE.get_or_init(|| {{
        std::env::var("{ENV_VAR}").ok().and_then(|v| v.parse().ok()).unwrap_or(0)
    }}) == id
}}
"""
"""The switch a schema calls; put it once in the file (``schema`` returns it with the code)."""


def schema(function_source: str, chosen: Sequence[Mutant]) -> str:
    """Return the function with every mutant in ``chosen`` behind a run-time switch, + ``SWITCH``.

    With ``COURSEKIT_MUTANT`` unset (or 0) the code behaves as the original; set to a mutant's
    id, as ``apply(function_source, mutant)``. Sites are rewritten innermost first, so nested
    sites (an operator inside a replaced body) keep their own switches:

    - FnValue: ``if __ck_mutant(id) { return V; }`` at the top of the body;
    - operators: ``(if __ck_mutant(id) { mutated } else { original })`` around the expression;
    - a match arm: an extra guard, ``pattern if !__ck_mutant(id) => ...``.

    Raises:
        ValueError: a mutant does not belong to ``function_source`` (its span's text differs).
    """
    encoded = function_source.encode("utf-8")
    for mutant in chosen:
        if encoded[mutant.start : mutant.end].decode("utf-8", "replace") != mutant.original:
            raise ValueError(f"mutant {mutant.id} ({mutant.describe()}) is not from this source")
    root = parse(function_source).root_node
    return _render(root, encoded, list(chosen)) + SWITCH


def _render(node: tree_sitter.Node, encoded: bytes, chosen: list[Mutant]) -> str:
    """Return ``node``'s text with the switches of the mutants inside it written in."""
    gaps, parts, cursor = [], [], node.start_byte
    for child in node.children:
        gaps.append(encoded[cursor : child.start_byte].decode("utf-8"))
        parts.append(_render(child, encoded, chosen))
        cursor = child.end_byte
    tail = encoded[cursor : node.end_byte].decode("utf-8")

    def joined(replace: int | None = None, by: str = "") -> str:
        texts = [by if i == replace else part for i, part in enumerate(parts)]
        return "".join(g + t for g, t in zip(gaps, texts, strict=True)) + tail

    rendered = joined()
    for mutant in chosen:
        flag = f"__ck_mutant({mutant.id})"
        span = (mutant.start, mutant.end)
        if mutant.genre in ("BinaryOperator", "UnaryOperator"):
            at = [i for i, c in enumerate(node.children) if (c.start_byte, c.end_byte) == span]
            operator_child = node.type in ("binary_expression", "compound_assignment_expr",
                                           "unary_expression")  # fmt: skip
            if at and operator_child:
                mutated = joined(at[0], mutant.replacement)
                rendered = f"(if {flag} {{ {mutated} }} else {{ {rendered} }})"
        elif (node.start_byte, node.end_byte) != span:
            continue
        elif mutant.genre == "FnValue" and node.type == "block":
            value = mutant.replacement[1:-1].strip() or "()"
            rendered = f"{{ if {flag} {{ return {value}; }} {rendered[1:]}"
        elif mutant.genre == "MatchArm" and node.type == "match_arm":
            arrow = next(i for i, c in enumerate(node.children) if c.type == "=>")
            rendered = joined(arrow, f"if !{flag} =>")
    return rendered
