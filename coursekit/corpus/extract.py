r"""Pair each unit test of a crate with the focal function it exercises.

The heuristic, in order (see ``docs/corpus.md``):

1. **Find tests.** Every ``#[test]`` function inside a ``#[cfg(test)]`` module of ``src/``
   and every ``#[test]`` function of ``tests/*.rs``.
2. **Find definitions.** Free functions and inherent methods (``impl Type { fn m() }``,
   named ``Type::m``) of the crate, outside test modules; trait-impl methods are not focal
   candidates.
3. **Resolve calls by name.** The calls of a test are read from its text (``name(``,
   ``Type::name(``, ``.name(``), which also sees calls inside ``assert_eq!`` and other
   macros that tree-sitter leaves unparsed. A call is a candidate when the crate defines
   that name; ``Type::name`` narrows to that type.
4. **Pick one.** Each candidate scores 8 when its name is part of the test's name, 4 when it
   is defined in the file holding the test module, 2 more when also in the same inline
   module (the test module's parent), 1 when it is not a constructor-like name (``new``,
   ``default``...). The best candidate wins. A tie between different names goes to the
   one called most often, then the one called first; a tie between definitions of the
   same name (``A::len`` and ``B::len`` for ``.len()``) is ambiguous and the test is
   dropped.

Tests with the same focal function form one sample (at most :data:`MAX_TESTS` of them).

Example:
    >>> samples = extract_crate(crate_root, name="demo", version="0.1.0", license="MIT")
    ... # doctest: +SKIP
"""

from __future__ import annotations

import re
import textwrap
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import tree_sitter

from coursekit.corpus.context import (
    Definition,
    FileItems,
    build_context,
    collect_items,
    needed_uses,
)
from coursekit.data import rust_syntax as rs
from coursekit.data.corpus import Sample

MAX_TESTS = 4
"""Most reference tests kept per sample (the first ones in source order)."""
MAX_FUNCTION_LINES = 120
"""Longer focal functions are skipped (they make poor training pairs)."""
MAX_TEST_LINES = 160
"""Tests module longer than this is cut to fewer tests."""
_CONSTRUCTOR_LIKE = frozenset({"new", "default", "from", "clone", "fmt", "build", "with_capacity"})
_HELPER_TYPES = frozenset(
    {"function_item", "const_item", "static_item", "struct_item", "enum_item"}
)
_WORD = re.compile(r"[A-Za-z_]\w*")
_CALL = re.compile(r"(?:\b(\w+)\s*::\s*)?\b([A-Za-z_]\w*)\s*(?:::\s*<[^()]*?>\s*)?\(")


@dataclass(frozen=True)
class ReferenceTest:
    """One ``#[test]`` function, where it lives and its module's ``use`` lines."""

    name: str
    source: str
    path: str
    uses: tuple[str, ...]
    properties: tuple[str, ...]
    in_src: bool
    module: str = ""
    """Inline module holding the test module (``""``: the file's top level)."""
    helpers: tuple[tuple[str, str], ...] = ()
    """(name, source) of the test module's non-test items: helper fns, consts, types."""


def extract_crate(
    root: str | Path, *, name: str, version: str, license: str, wide_context: bool = False
) -> list[Sample]:
    """Return the (focal function, tests) samples of the crate whose source tree is ``root``.

    Args:
        root: the crate directory (holding ``src/`` and maybe ``tests/``).
        name: the crate name, recorded on each sample.
        version: the crate version.
        license: the crate's SPDX license expression.
        wide_context: also look for needed items in the crate's other files (see
            :func:`coursekit.corpus.context.build_context`); same samples and ids.

    Returns:
        One unverified sample per focal function with at least one test, ordered by
        path then function; ``features`` is empty (see :mod:`coursekit.corpus.features`).

    Example:
        >>> extract_crate(Path("tests/fixtures/crates/mini"), name="mini",
        ...     version="0.1.0", license="MIT")[0].crate  # doctest: +SKIP
        'mini'
    """
    root = Path(root)
    files = [collect_items(root, path) for path in _rust_files(root)]
    definitions = [d for f in files for d in f.definitions]
    by_name: dict[str, list[Definition]] = defaultdict(list)
    for definition in definitions:
        by_name[definition.name].append(definition)
    grouped: dict[Definition, list[ReferenceTest]] = defaultdict(list)
    for test in (t for f in files for t in _tests_of(f, name)):
        focal = pick_focal(test, by_name)
        if focal is not None and len(grouped[focal]) < MAX_TESTS:
            grouped[focal].append(test)
    file_of = {f.path: f for f in files}
    samples = [
        _sample(
            focal,
            tests,
            file_of[focal.path],
            files if wide_context else [],
            name=name,
            version=version,
            license=license,
        )
        for focal, tests in sorted(grouped.items(), key=lambda kv: (kv[0].path, kv[0].qualname))
        if focal.source.count("\n") < MAX_FUNCTION_LINES
    ]
    return _unique_ids(samples)


def pick_focal(test: ReferenceTest, by_name: dict[str, list[Definition]]) -> Definition | None:
    """Return the crate definition ``test`` exercises, or None when none or ambiguous.

    Example:
        >>> pick_focal(test, {"parse": [definition]})  # doctest: +SKIP
    """
    calls = _CALL.findall(_body(test.source))
    scores: dict[Definition, int] = {}
    for qualifier, called in calls:
        for definition in by_name.get(called, ()):
            if qualifier and definition.owner and qualifier not in (definition.owner, "Self"):
                continue
            same_file = test.in_src and definition.path == test.path
            score = 8 if len(called) >= 3 and called in test.name else 0
            score += 4 if same_file else 0
            score += 2 if same_file and definition.module == test.module else 0
            score += 0 if called in _CONSTRUCTOR_LIKE else 1
            scores[definition] = max(score, scores.get(definition, 0))
    if not scores:
        return None
    best = max(scores.values())
    winners = [d for d, s in scores.items() if s == best]
    names = [n for _, n in calls]
    if len({d.name for d in winners}) > 1:  # different functions: most calls, then first
        name = min({d.name for d in winners}, key=lambda n: (-names.count(n), names.index(n)))
        winners = [d for d in winners if d.name == name]
    return winners[0] if len(winners) == 1 else None


def _body(source: str) -> str:
    """Return the text after a function's signature, so its own name is not a call."""
    brace = source.find("{")
    return source[brace:] if brace >= 0 else source


def _rust_files(root: Path) -> list[Path]:
    """Return ``src/**/*.rs`` and ``tests/*.rs`` under ``root``, sorted."""
    found = sorted((root / "src").rglob("*.rs")) if (root / "src").is_dir() else []
    if (root / "tests").is_dir():
        found += sorted((root / "tests").glob("*.rs"))
    return [p for p in found if p.is_file()]


def _tests_of(items: FileItems, crate: str) -> list[ReferenceTest]:
    """Return the test functions of one file with their module's uses and property tests."""
    in_src = not items.path.startswith("tests/")
    found: list[ReferenceTest] = []
    modules = items.test_modules if in_src else [(items.tree.root_node, "")]
    for module, parent in modules:
        uses = tuple(_test_uses(module, crate))
        properties = tuple(rs.item_source(n) for n in _property_items(module))
        helpers = tuple(
            (rs.name_of(n), _indented_source(n))
            for n in _children(module)
            if n.type in _HELPER_TYPES and not rs.is_test_function(n) and not _is_property(n)
        )
        for node in _children(module):
            if rs.is_test_function(node) and not _is_property(node):
                found.append(
                    ReferenceTest(
                        name=rs.name_of(node),
                        source=_indented_source(node),
                        path=items.path,
                        uses=uses,
                        properties=properties,
                        in_src=in_src,
                        module=parent,
                        helpers=helpers,
                    )
                )
    return found


def _children(module: tree_sitter.Node) -> list[tree_sitter.Node]:
    """Return the items directly inside a module (or file)."""
    body = module.child_by_field_name("body") if module.type == "mod_item" else module
    return list(body.named_children) if body is not None else []


def _test_uses(module: tree_sitter.Node, crate: str) -> list[str]:
    """Return a test module's ``use`` lines, minus ``super::*`` and the crate's own paths."""
    own = (crate.replace("-", "_") + "::", "super::", "crate::", "self::")
    uses = []
    for node in _children(module):
        if node.type == "use_declaration":
            line = rs.text(node)
            path = line.removeprefix("pub ").removeprefix("use ").lstrip(":")
            if not path.startswith(own):
                uses.append(line)
    return uses


def _property_items(module: tree_sitter.Node) -> list[tree_sitter.Node]:
    """Return the proptest/quickcheck macro blocks and property functions of a module."""
    found = []
    for node in _children(module):
        if node.type in ("macro_invocation", "expression_statement"):
            name = rs.text(node).split("!", 1)[0].strip()
            if name in ("proptest", "quickcheck"):
                found.append(node)
        elif node.type == "function_item" and _is_property(node):
            found.append(node)
    return found


def _is_property(node: tree_sitter.Node) -> bool:
    """Return True for ``#[quickcheck]`` / ``#[proptest]`` functions."""
    return any(re.search(r"(quickcheck|proptest)", a) for a in rs.attributes(node))


def _indented_source(node: tree_sitter.Node) -> str:
    """Return an item's source, dedented as a whole (its first line keeps its column)."""
    return textwrap.dedent(" " * node.start_point.column + rs.item_source(node))


def _sample(
    focal: Definition,
    tests: list[ReferenceTest],
    items: FileItems,
    crate: list[FileItems],
    *,
    name: str,
    version: str,
    license: str,
) -> Sample:
    """Assemble one sample: the focal source, its context and a tests module."""
    kept = tests
    while len(kept) > 1 and sum(t.source.count("\n") + 1 for t in kept) > MAX_TEST_LINES:
        kept = kept[:-1]
    tests_text = _tests_module(kept)
    properties = [p for p in dict.fromkeys(tests[0].properties) if focal.name in p]
    return Sample(
        id=f"{name}/{focal.path}::{focal.qualname}",
        crate=name,
        version=version,
        license=license,
        path=focal.path,
        function=focal.source,
        context=build_context(focal, items, tests_text, crate),
        tests=tests_text,
        property_tests="\n\n".join(properties) or None,
    )


def _tests_module(tests: list[ReferenceTest]) -> str:
    """Wrap test functions in ``#[cfg(test)] mod tests { use super::*; ... }``."""
    sources = [t.source for t in tests]
    words = set(_WORD.findall("\n".join(sources)))
    for _ in range(2):  # helpers that helpers use
        needed = [h for name, h in tests[0].helpers if name in words and h not in sources]
        words |= set(_WORD.findall("\n".join(needed)))
    helpers = [h for name, h in tests[0].helpers if name in words]
    words |= set(_WORD.findall("\n".join(helpers)))
    uses = needed_uses(list(dict.fromkeys(u for t in tests for u in t.uses)), words)
    body = "\n".join(["use super::*;", *uses]) + "\n\n" + "\n\n".join([*helpers, *sources])
    return "#[cfg(test)]\nmod tests {\n" + textwrap.indent(body, "    ") + "\n}"


def _unique_ids(samples: list[Sample]) -> list[Sample]:
    """Suffix ``#2``, ``#3``... to ids that repeat (same name in two inline modules)."""
    seen: dict[str, int] = {}
    unique = []
    for sample in samples:
        count = seen.get(sample.id, 0) + 1
        seen[sample.id] = count
        if count > 1:
            sample = Sample(**{**sample.to_record(), "id": f"{sample.id}#{count}"})
        unique.append(sample)
    return unique
