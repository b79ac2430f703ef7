r"""Index one Rust file's items and gather the context a focal function needs.

:func:`collect_items` reads a file once: its functions and inherent methods (the focal
candidates, as :class:`Definition`), its ``#[cfg(test)]`` modules, its top-level ``use``
lines, type definitions (struct, enum, type alias, const, static, trait, ``macro_rules!``)
and trait impls. :func:`build_context` then keeps, from the same file, the ``use`` lines,
the types whose names the function or its tests mention, the helper functions and methods
they call, and the trait impls of the kept types, in source order. Three rounds follow
names through the items added, so a helper's own types come along.

Example:
    >>> items = collect_items(Path("tests/fixtures/crates/mini"), Path(
    ...     "tests/fixtures/crates/mini/src/lib.rs"))  # doctest: +SKIP
    >>> [d.qualname for d in items.definitions][:2]  # doctest: +SKIP
    ['add', 'Stack::push']
"""

from __future__ import annotations

import dataclasses
import re
import textwrap
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import tree_sitter

from coursekit.data import rust_syntax as rs

_TYPE_ITEMS = frozenset(
    {
        "struct_item",
        "enum_item",
        "type_item",
        "union_item",
        "const_item",
        "static_item",
        "trait_item",
        "macro_definition",
    }
)
_WORD = re.compile(r"[A-Za-z_]\w*")
_ROUNDS = 3
_FILE_STRIDE = 1 << 32
_USE_ROOT = re.compile(r"\s*(?:pub(?:\([^)]*\))?\s+)?use\s+:*\s*\{?\s*(\w+)")
_USE_NAME = re.compile(r"(\w+)(?:\s+as\s+(\w+))?\s*(?=[,};])")
_USE_SELF = re.compile(r"(\w+)::\{[^}]*\bself\b")
_LOCAL_ROOTS = frozenset({"crate", "super", "self"})
_STD_ROOTS = frozenset({"std", "core", "alloc"})
MAX_TRAIT_IMPL_LINES = 40
"""Trait impls of kept types longer than this are left out of the context."""


@dataclass(frozen=True)
class Definition:
    """A focal candidate: a free function, or an inherent method named ``Type::method``."""

    name: str
    """The bare name, as called."""
    qualname: str
    """``name`` or ``Type::name``."""
    owner: str
    """The type of an inherent method, else ``""``."""
    path: str
    """File path relative to the crate root (POSIX)."""
    source: str
    """The function's text; a method comes inside its ``impl`` header."""
    method: str = field(default="", compare=False)
    """A method's own text (no header); empty for free functions."""
    header: str = field(default="", compare=False)
    """A method's ``impl ... {`` line; empty for free functions."""
    start: int = field(default=0, compare=False)
    """Byte offset in the file, for source order."""
    module: str = ""
    """Path of the inline module holding it inside its file (``""`` at the top)."""


@dataclass
class FileItems:
    """What :func:`collect_items` found in one file."""

    path: str
    tree: tree_sitter.Tree
    definitions: list[Definition] = field(default_factory=list)
    test_modules: list[tuple[tree_sitter.Node, str]] = field(default_factory=list)
    """(``#[cfg(test)]`` module, path of the inline module holding it)."""
    uses: list[str] = field(default_factory=list)
    types: list[tuple[int, str, str]] = field(default_factory=list)
    """(start byte, name, source) of each type-like item."""
    trait_impls: list[tuple[int, str, str]] = field(default_factory=list)
    """(start byte, type name, source) of each ``impl Trait for Type`` block."""


def collect_items(root: Path, path: Path) -> FileItems:
    """Parse ``path`` (inside crate ``root``) and index its items.

    Example:
        >>> collect_items(root, root / "src/lib.rs").path  # doctest: +SKIP
        'src/lib.rs'
    """
    source = path.read_bytes().decode("utf-8", errors="replace")
    items = FileItems(path=path.relative_to(root).as_posix(), tree=rs.parse(source))
    _walk(items.tree.root_node, items, module="")
    return items


def _walk(node: tree_sitter.Node, items: FileItems, *, module: str) -> None:
    """Index the items under ``node``; inline non-test modules are walked too."""
    for child in node.named_children:
        kind = child.type
        if kind == "function_item":
            items.definitions.append(_function(child, items.path, module))
        elif kind == "impl_item":
            _impl(child, items, module)
        elif kind == "mod_item":
            body = child.child_by_field_name("body")
            if rs.is_test_module(child):
                items.test_modules.append((child, module))
            elif body is not None:
                _walk(body, items, module=f"{module}::{rs.name_of(child)}".lstrip(":"))
        elif kind == "use_declaration" and not module:
            items.uses.append(rs.text(child))
        elif kind in _TYPE_ITEMS:
            items.types.append((child.start_byte, rs.name_of(child), _dedented(child)))


def _function(node: tree_sitter.Node, path: str, module: str) -> Definition:
    """Return the definition of a free function."""
    name = rs.name_of(node)
    return Definition(name, name, "", path, _dedented(node), start=node.start_byte, module=module)


def _impl(node: tree_sitter.Node, items: FileItems, module: str) -> None:
    """Index an impl block: its methods when inherent, the whole block when a trait impl."""
    owner = rs.impl_type_name(node)
    if node.child_by_field_name("trait") is not None:
        items.trait_impls.append((node.start_byte, owner, _dedented(node)))
        return
    header = textwrap.dedent(rs.impl_header(node))
    body = node.child_by_field_name("body")
    for child in body.named_children if body is not None else []:
        if child.type == "function_item":
            method = _dedented(child)
            name = rs.name_of(child)
            items.definitions.append(
                Definition(
                    name=name,
                    qualname=f"{owner}::{name}",
                    owner=owner,
                    path=items.path,
                    source=f"{header}\n{textwrap.indent(method, '    ')}\n}}",
                    method=method,
                    header=header,
                    start=child.start_byte,
                    module=module,
                )
            )


def _dedented(node: tree_sitter.Node) -> str:
    """Return an item's source with doc comments and attributes, dedented."""
    return textwrap.dedent(" " * node.start_point.column + rs.item_source(node))


def build_context(
    focal: Definition, items: FileItems, tests: str, crate: Sequence[FileItems] = ()
) -> str:
    r"""Return the ``use`` lines and items that ``focal`` and ``tests`` need.

    Args:
        focal: the focal function.
        items: the index of its file, searched first.
        tests: the tests' text, whose names count as needed too.
        crate: other files of the crate (the wide variant): a type or function named
            directly by the focal function or its tests and defined in none of ``items``
            is taken from the one other file that defines it; later rounds stay local.

    Example:
        >>> build_context(focal, items, tests_text)  # doctest: +SKIP
        'use std::fmt;\n\npub struct Stack ...'
    """
    pool = _pool(items, crate)
    words = set(_WORD.findall(focal.source + "\n" + tests))
    kept_types: dict[int, str] = {}
    kept_defs: dict[int, Definition] = {}
    for round_ in range(_ROUNDS):
        added = ""
        reach = _FILE_STRIDE * (len(crate) + 1) if round_ == 0 else _FILE_STRIDE
        for start, name, source in pool.types:
            if name in words and start not in kept_types and start < reach:
                kept_types[start] = source
                added += source
        for definition in pool.definitions:
            if (
                _needed(definition, focal, words)
                and definition.start not in kept_defs
                and definition.start < reach
            ):
                kept_defs[definition.start] = definition
                added += definition.source
        words |= set(_WORD.findall(added))
    owners = {n for _, n, _ in pool.types if n in words}
    pieces = dict(kept_types)
    pieces.update(_grouped_methods(kept_defs))
    for start, owner, source in pool.trait_impls:
        if owner in owners and source.count("\n") < MAX_TRAIT_IMPL_LINES:
            pieces[start] = source
    body = [pieces[start] for start in sorted(pieces)]
    uses = needed_uses(pool.uses, words)
    return "\n\n".join([*(["\n".join(uses)] if uses else []), *body])


def _pool(items: FileItems, crate: Sequence[FileItems]) -> FileItems:
    """Merge a file's index with the crate's other files (unique names only), file first.

    Offsets of other files are shifted by :data:`_FILE_STRIDE` per file, keeping source
    order file by file.
    """
    others = [f for f in crate if f.path != items.path and not f.path.startswith("tests/")]
    local = {n for _, n, _ in items.types} | {d.name for d in items.definitions}
    type_count = Counter(n for f in others for _, n, _ in f.types)
    fn_count = Counter(d.name for f in others for d in f.definitions if not d.owner)
    pool = dataclasses.replace(
        items,
        definitions=list(items.definitions),
        types=list(items.types),
        trait_impls=list(items.trait_impls),
        uses=list(items.uses),
    )
    for index, other in enumerate(others, start=1):
        shift = index * _FILE_STRIDE
        pool.types += [
            (start + shift, n, src)
            for start, n, src in other.types
            if n not in local and type_count[n] == 1
        ]
        pool.definitions += [
            dataclasses.replace(d, start=d.start + shift)
            for d in other.definitions
            if not d.owner and d.name not in local and fn_count[d.name] == 1
        ]
        pool.trait_impls += [(start + shift, o, src) for start, o, src in other.trait_impls]
        pool.uses += [u for u in other.uses if _use_root(u) in _STD_ROOTS]
    return pool


def _needed(definition: Definition, focal: Definition, words: set[str]) -> bool:
    """Whether a definition is a helper to keep: its name is used and it is not the focal."""
    return definition.name in words and definition != focal and definition.source != focal.source


def needed_uses(uses: list[str], words: set[str]) -> list[str]:
    """Keep std/core/alloc ``use`` lines and other crates' when a name they import is used.

    Crate-local paths (``crate::``, ``super::``, ``self::``) are dropped: in the one-file
    sample the items they name are either included above or absent either way. A kept
    ``alloc`` path needs ``extern crate alloc;``, which is added.
    """
    kept: list[str] = []
    bound: set[str] = set()
    for line in uses:
        first = _use_root(line)
        if first in _LOCAL_ROOTS:
            continue
        names = _imported(line)
        if (first in _STD_ROOTS or names & words) and not names & bound and line not in kept:
            kept.append(line)
            bound |= names
    if any(_use_root(line) == "alloc" for line in kept):
        kept.insert(0, "extern crate alloc;")
    return kept


def _use_root(line: str) -> str:
    """Return the first path segment of a ``use`` line (``std`` in ``use std::fmt;``)."""
    found = _USE_ROOT.match(line)
    return found.group(1) if found else ""


def _imported(line: str) -> set[str]:
    """Return the names a ``use`` line brings into scope (aliases and ``self`` resolved)."""
    names = {alias or name for name, alias in _USE_NAME.findall(line)}
    names |= set(_USE_SELF.findall(line))
    return names - {"self"}


def _grouped_methods(kept: dict[int, Definition]) -> dict[int, str]:
    """Return free functions as they are and methods regrouped under their impl headers."""
    pieces: dict[int, str] = {}
    by_header: dict[str, list[Definition]] = defaultdict(list)
    for start, definition in kept.items():
        if definition.owner:
            by_header[definition.header].append(definition)
        else:
            pieces[start] = definition.source
    for header, methods in by_header.items():
        inner = "\n\n".join(textwrap.indent(m.method, "    ") for m in methods)
        pieces[min(m.start for m in methods)] = f"{header}\n{inner}\n}}"
    return pieces
