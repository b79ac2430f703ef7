"""Components never import recipes: the import graph of ``coursekit``, built with ``ast``.

Every module under ``coursekit/`` is parsed (not imported) and each of its imports of
``coursekit.*`` becomes an edge, wherever it sits: at the top, inside functions or classes,
under ``if TYPE_CHECKING:``. Counted: ``import a.b``, ``from a.b import c`` (an edge to
``a.b`` and to ``a.b.c``, which may be a module), relative imports resolved against the
module's package, and ``importlib.import_module("a.b")`` / ``__import__("a.b")`` with a
literal name (a name held in a variable, as in ``coursekit.cli``'s ``COMMAND_MODULES`` loop,
is not seen; that loop is in an entry point).

Components are every module except:

- ``coursekit/recipes/**``: the recipes themselves (a recipe may use another);
- entry points: the CLI modules, every ``cli.py`` (those listed in
  ``coursekit.cli.COMMAND_MODULES``). They turn flags into a recipe call, so they sit above
  the recipes;
- ``coursekit/__init__.py``: the package root may re-export a recipe's public API (it
  re-exports none today).

Anything else that imports ``coursekit.recipes`` fails the test, by name.
"""

from __future__ import annotations

import ast
from pathlib import Path

import coursekit

ROOT = Path(coursekit.__file__).resolve().parent
RECIPES = "coursekit.recipes"
ENTRY_POINTS = {"coursekit"}
"""Modules besides ``*.cli`` that may import recipes (see the module docstring)."""


def module_name(path: Path, root: Path = ROOT) -> str:
    """``coursekit/train/run.py`` → ``coursekit.train.run``; a package's ``__init__`` → it."""
    parts = [root.name, *path.relative_to(root).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _literal_import(node: ast.Call) -> str | None:
    """The module of ``importlib.import_module("x")`` or ``__import__("x")``, else None."""
    func = node.func
    name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
    if name not in ("import_module", "__import__") or not node.args:
        return None
    first = node.args[0]
    return first.value if isinstance(first, ast.Constant) and isinstance(first.value, str) else None


def imports_of(source: str, module: str, *, is_package: bool = False) -> set[str]:
    """Return the ``coursekit`` modules (and imported names) ``source`` imports, at any depth.

    Args:
        source: the module's Python source.
        module: its dotted name (to resolve relative imports).
        is_package: whether it is a package's ``__init__`` (relative imports start there).
    """
    package = module.split(".") if is_package else module.split(".")[:-1]
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base_parts = package[: len(package) - node.level + 1] if node.level else []
            base = ".".join([*base_parts, *([node.module] if node.module else [])])
            found.add(base)
            found |= {f"{base}.{alias.name}" for alias in node.names if alias.name != "*"}
        elif isinstance(node, ast.Call) and (name := _literal_import(node)):
            found.add(name)
    return {name for name in found if name == "coursekit" or name.startswith("coursekit.")}


def import_graph(root: Path = ROOT) -> dict[str, set[str]]:
    """Return {module: the coursekit names it imports} for every module under ``root``."""
    return {
        module_name(path, root): imports_of(
            path.read_text(encoding="utf-8"),
            module_name(path, root),
            is_package=path.name == "__init__.py",
        )
        for path in sorted(root.rglob("*.py"))
    }


def is_recipe(module: str) -> bool:
    """Whether ``module`` is ``coursekit.recipes`` or inside it."""
    return module == RECIPES or module.startswith(RECIPES + ".")


def is_component(module: str) -> bool:
    """Everything but the recipes, the CLI entry points and the package root."""
    entry = module.endswith(".cli") or module in ENTRY_POINTS
    return not is_recipe(module) and not entry


def violations(graph: dict[str, set[str]]) -> dict[str, set[str]]:
    """Return {component: the recipe modules it imports} (empty when the layering holds)."""
    found = {m: {n for n in names if is_recipe(n)} for m, names in graph.items() if is_component(m)}
    return {m: names for m, names in found.items() if names}


def test_the_graph_sees_the_whole_package_and_its_edges():
    graph = import_graph()
    assert len(graph) > 80 and "coursekit.train.run" in graph
    assert {"coursekit.recipes.phase1_baseline", "coursekit.recipes.bench.adapter_step"} <= set(
        graph
    )
    # Recipes compose components, entry points call recipes (edges inside functions count).
    assert "coursekit.train.run" in graph["coursekit.recipes.phase1_baseline"]
    assert "coursekit.recipes.finetune" in graph["coursekit.train.cli"]
    assert "coursekit.recipes.phase1_baseline" in graph["coursekit.cli"]
    assert not is_component("coursekit.recipes.lr_find") and not is_component("coursekit.cli")
    assert is_component("coursekit.train.run") and is_component("coursekit.nano")


def test_components_never_import_recipes():
    assert violations(import_graph()) == {}


def test_an_offending_component_is_caught_however_it_imports():
    offending = {
        "coursekit.train.fake_late": "def f():\n    from coursekit.recipes import finetune\n",
        "coursekit.train.fake_plain": "import coursekit.recipes.lr_find\n",
        "coursekit.nano.fake_parent": "from coursekit import recipes\n",
        "coursekit.memory.fake_relative": "from ..recipes import memory_validate\n",
        "coursekit.evaluate.fake_dynamic": (
            "import importlib\nimportlib.import_module('coursekit.recipes.bench')\n"
        ),
        "coursekit.fake_typing": "if TYPE_CHECKING:\n    from .recipes.nano_build import x\n",
    }
    allowed = {
        "coursekit.train.cli": "from coursekit.recipes.finetune import finetune\n",
        "coursekit.recipes.fake": "from coursekit.recipes.phase1_baseline import run_baseline\n",
        "coursekit.train.fake_clean": "from coursekit.train.run import train_run\n",
    }
    graph = import_graph()
    graph |= {m: imports_of(source, m) for m, source in (offending | allowed).items()}
    assert set(violations(graph)) == set(offending)
    assert violations(graph)["coursekit.memory.fake_relative"] == {
        "coursekit.recipes",
        "coursekit.recipes.memory_validate",
    }


def test_relative_imports_resolve_from_a_package_init():
    assert imports_of("from .run import train_run\n", "coursekit.train", is_package=True) == {
        "coursekit.train.run",
        "coursekit.train.run.train_run",
    }
    assert "coursekit.train" in imports_of("from . import run\n", "coursekit.train.cli")
