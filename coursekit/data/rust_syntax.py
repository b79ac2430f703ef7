r"""Parse Rust with tree-sitter and read items (functions, impls, modules) out of the tree.

A thin layer over ``tree-sitter-rust`` shared by extraction and features: :func:`parse`
returns the syntax tree of a source text, :func:`item_source` the text of an item with the
doc comments and attributes written above it, :func:`attributes` those attributes.

Example:
    >>> root = parse("/// One.\n#[inline]\nfn one() -> i32 { 1 }\n").root_node
    >>> item_source(root.named_children[-1])
    '/// One.\n#[inline]\nfn one() -> i32 { 1 }'
"""

from __future__ import annotations

import functools
import re

import tree_sitter
import tree_sitter_rust

_PREFIX_TYPES = ("line_comment", "block_comment", "attribute_item")
_TEST_ATTRIBUTE = re.compile(r"#\[\s*(?:[\w:]+::)?test\s*(?:\(|\])")
_CFG_TEST = re.compile(r"#\[\s*cfg\s*\(\s*test\s*\)\s*\]")


@functools.cache
def _parser() -> tree_sitter.Parser:
    """Return the process's one Rust parser (built on first use)."""
    return tree_sitter.Parser(tree_sitter.Language(tree_sitter_rust.language()))


def parse(source: str) -> tree_sitter.Tree:
    """Return the tree-sitter syntax tree of a Rust source text.

    Example:
        >>> parse("fn f() {}").root_node.type
        'source_file'
    """
    return _parser().parse(source.encode("utf-8"))


def text(node: tree_sitter.Node) -> str:
    """Return the source text of ``node``, decoded as UTF-8.

    Example:
        >>> text(parse("fn f() {}").root_node)
        'fn f() {}'
    """
    return (node.text or b"").decode("utf-8", errors="replace")


def prefix_nodes(node: tree_sitter.Node) -> list[tree_sitter.Node]:
    r"""Return the comments and attributes directly above ``node``, top first.

    Non-doc line comments count too, so the item's explanatory comment stays with it.

    Example:
        >>> root = parse("#[test]\nfn t() {}").root_node
        >>> [n.type for n in prefix_nodes(root.named_children[1])]
        ['attribute_item']
    """
    found: list[tree_sitter.Node] = []
    sibling = node.prev_named_sibling
    while sibling is not None and sibling.type in _PREFIX_TYPES:
        if text(sibling).startswith(("//!", "/*!")):
            break  # an inner doc comment belongs to the module, not the item
        found.append(sibling)
        sibling = sibling.prev_named_sibling
    return found[::-1]


def attributes(node: tree_sitter.Node) -> list[str]:
    r"""Return the text of the attributes written above ``node`` (e.g. ``#[test]``).

    Example:
        >>> root = parse("#[test]\nfn t() {}").root_node
        >>> attributes(root.named_children[1])
        ['#[test]']
    """
    return [text(n) for n in prefix_nodes(node) if n.type == "attribute_item"]


def item_source(node: tree_sitter.Node) -> str:
    r"""Return the text of an item with its doc comments and attributes, as written.

    Example:
        >>> root = parse("#[test]\nfn t() {}").root_node
        >>> item_source(root.named_children[1])
        '#[test]\nfn t() {}'
    """
    prefix = prefix_nodes(node)
    start = prefix[0].start_byte if prefix else node.start_byte
    return _source_between(node, start, node.end_byte)


def _source_between(node: tree_sitter.Node, start: int, end: int) -> str:
    """Return the file's text from byte ``start`` to ``end`` (absolute offsets).

    The root node's text begins at the file's first token, not at byte 0, so a file that
    starts with blank lines or comments shifts it: offsets are taken relative to the root.
    """
    root = node
    while root.parent is not None:
        root = root.parent
    whole = root.text or b""
    return whole[start - root.start_byte : end - root.start_byte].decode("utf-8", "replace")


def name_of(node: tree_sitter.Node) -> str:
    """Return the ``name`` field of an item (function, struct, mod, ...), or ``""``.

    Example:
        >>> name_of(parse("fn f() {}").root_node.named_children[0])
        'f'
    """
    name = node.child_by_field_name("name")
    return text(name) if name is not None else ""


def is_test_function(node: tree_sitter.Node) -> bool:
    r"""Return True when ``node`` is a function marked ``#[test]`` (or ``#[tokio::test]``...).

    Example:
        >>> is_test_function(parse("#[test]\nfn t() {}").root_node.named_children[1])
        True
    """
    return node.type == "function_item" and any(_TEST_ATTRIBUTE.match(a) for a in attributes(node))


def is_test_module(node: tree_sitter.Node) -> bool:
    r"""Return True when ``node`` is a ``mod`` marked ``#[cfg(test)]``.

    Example:
        >>> is_test_module(parse("#[cfg(test)]\nmod tests {}").root_node.named_children[1])
        True
    """
    return node.type == "mod_item" and any(_CFG_TEST.match(a) for a in attributes(node))


def impl_type_name(node: tree_sitter.Node) -> str:
    """Return the bare type name an ``impl`` block is for (``Foo`` in ``impl<T> Foo<T>``).

    Example:
        >>> impl_type_name(parse("impl<T> Foo<T> {}").root_node.named_children[0])
        'Foo'
    """
    target = node.child_by_field_name("type")
    if target is None:  # pragma: no cover - the grammar always gives impl a type
        return ""
    if target.type == "generic_type":
        target = target.child_by_field_name("type") or target
    return text(target).split("::")[-1]


def impl_header(node: tree_sitter.Node) -> str:
    """Return an ``impl`` block's text up to and including its opening brace.

    Example:
        >>> impl_header(parse("impl<T> Foo<T> { fn f() {} }").root_node.named_children[0])
        'impl<T> Foo<T> {'
    """
    body = node.child_by_field_name("body")
    end = body.start_byte + 1 if body is not None else node.end_byte
    return _source_between(node, node.start_byte, end)
