"""Send a learner's function or class to the checking subprocess as source, never as a pickle.

A function defined in a notebook cannot be pickled by reference (its module is
``__main__``), and cloudpickle is not among coursekit's dependencies. So the parent sends
the source text (``inspect.getsource``) with what it needs from its globals, and the child
rebuilds it by ``exec`` in a fresh namespace:

- a module (``import torch as T``) is re-imported under the same name;
- an object imported from a module (``from torch import nn``) is re-imported by its
  module and qualified name;
- a number, string, bool or None is sent as JSON;
- a function or class defined next to it (a helper in the same notebook) is sent as
  source too, recursively.

Anything else (a tensor, a list, a lambda held in a variable) is not sent; if the function
uses it, the child's ``NameError`` says to define it inside the function. Closures are
refused: their free variables cannot be rebuilt from source.

Guide: docs/exercises.md ("How your code is run").
"""

from __future__ import annotations
import __future__

import ast
import importlib
import inspect
import linecache
import re
import sys
import textwrap
import types
from collections.abc import Iterator
from typing import Any

from coursekit.errors import CoursekitError

SCALARS = (int, float, str, bool, type(None))
ANNOTATIONS = __future__.annotations.compiler_flag


def source_of(obj: Any) -> str:
    """Return the dedented source of a function or class, also for classes in a notebook.

    Python 3.11's ``inspect.getsource`` cannot find a class defined in a notebook (its module
    ``__main__`` has no file); its methods' code objects still name the cell, so the class is
    found there by its ``class Name`` line.

    Raises:
        CoursekitError: the source is not available (defined at an interactive prompt).

    Example:
        >>> print(source_of(number_of_names).splitlines()[0])
        def number_of_names(code: types.CodeType) -> int:
    """
    try:
        return textwrap.dedent(inspect.getsource(obj))
    except (OSError, TypeError):
        found = _class_source(obj) if inspect.isclass(obj) else None
        if found is None:
            raise CoursekitError(
                f"cannot read the source of {getattr(obj, '__qualname__', obj)!r}: define it "
                "in a notebook cell or a .py file, not at an interactive prompt"
            ) from None
        return found


def _class_source(cls: type) -> str | None:
    for member in vars(cls).values():
        function = getattr(member, "fget", None) or getattr(member, "__func__", member)
        code = getattr(function, "__code__", None)
        if code is None:
            continue
        lines = linecache.getlines(code.co_filename)
        header = re.compile(rf"^\s*class\s+{re.escape(cls.__name__)}\b")
        for start in range(min(code.co_firstlineno, len(lines)) - 1, -1, -1):
            if header.match(lines[start]):
                return textwrap.dedent("".join(inspect.getblock(lines[start:])))
    return None


def _code_names(code: types.CodeType) -> Iterator[str]:
    yield from code.co_names
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            yield from _code_names(const)


def number_of_names(code: types.CodeType) -> int:
    """Return how many global or attribute names ``code`` and its nested code objects use.

    Example:
        >>> number_of_names((lambda: math.pi).__code__)
        2
    """
    return len(set(_code_names(code)))


def _names_and_globals(obj: Any, source: str) -> tuple[set[str], dict[str, Any]]:
    """Names ``obj`` may read from its module, and that module's globals."""
    names = {n.id for n in ast.walk(ast.parse(source)) if isinstance(n, ast.Name)}
    if inspect.isclass(obj):
        module = sys.modules.get(obj.__module__)
        scope = vars(module) if module is not None else {}
        for member in vars(obj).values():
            function = getattr(member, "fget", None) or getattr(member, "__func__", member)
            if hasattr(function, "__code__"):
                names |= set(_code_names(function.__code__))
                scope = function.__globals__  # where the class was defined, even if exec'd
        return names, scope
    return names | set(_code_names(obj.__code__)), obj.__globals__


def _entry(name: str, value: Any, home: str | None) -> dict[str, Any] | None:
    """How to rebuild global ``name`` in the child, or None when it cannot be sent."""
    if isinstance(value, types.ModuleType):
        return {"kind": "module", "name": name, "module": value.__name__}
    if isinstance(value, SCALARS) and not isinstance(value, type):
        return {"kind": "value", "name": name, "value": value}
    module, qualname = getattr(value, "__module__", None), getattr(value, "__qualname__", None)
    if not (isinstance(module, str) and isinstance(qualname, str)):
        return None
    if module == home and (inspect.isfunction(value) or inspect.isclass(value)):
        return {"kind": "source", "name": name, "source": source_of(value)}
    try:
        if _resolve(module, qualname) is value:
            return {"kind": "attr", "name": name, "module": module, "qualname": qualname}
    except (ImportError, AttributeError):
        return None
    return None


def _resolve(module: str, qualname: str) -> Any:
    found: Any = importlib.import_module(module)
    for part in qualname.split("."):
        found = getattr(found, part)
    return found


def package(obj: Any) -> dict[str, Any]:
    """Return the JSON payload that rebuilds ``obj`` (a named function or a class).

    Raises:
        CoursekitError: ``obj`` is a lambda, a closure, or has no readable source.

    Example:
        >>> payload = package(number_of_names)
        >>> payload["name"], sorted(e["name"] for e in payload["globals"])
        ('number_of_names', ['Iterator', '_code_names', 'types'])
    """
    name = getattr(obj, "__name__", "")
    if not (inspect.isfunction(obj) or inspect.isclass(obj)) or name == "<lambda>":
        raise CoursekitError(
            f"{obj!r} is not a named function or class: define it with def (or class) and "
            "pass it by name"
        )
    if getattr(obj, "__closure__", None):
        raise CoursekitError(
            f"{name} uses variables of an enclosing function "
            f"({', '.join(obj.__code__.co_freevars)}): "
            "define it at the top level of a cell"
        )
    entries: dict[str, dict[str, Any]] = {}
    source = source_of(obj)
    _collect(obj, source, entries, seen={id(obj)})
    return {"name": name, "source": source, "globals": list(entries.values())}


def _collect(obj: Any, source: str, entries: dict, seen: set[int]) -> None:
    names, scope = _names_and_globals(obj, source)
    home = getattr(obj, "__module__", None)
    for name in sorted(names):
        if name in entries or name not in scope or id(scope[name]) in seen:
            continue
        entry = _entry(name, scope[name], home)
        if entry is None:
            continue
        if entry["kind"] == "source":
            seen.add(id(scope[name]))
            _collect(scope[name], entry["source"], entries, seen)
        entries[name] = entry


def rebuild(payload: dict[str, Any]) -> Any:
    """Return the function or class that ``package`` described, built in a fresh namespace.

    Example:
        >>> rebuild(package(number_of_names))((lambda: math.pi).__code__)
        2
    """
    namespace: dict[str, Any] = {"__name__": "__learner__"}
    helpers = []
    for entry in payload["globals"]:
        kind, name = entry["kind"], entry["name"]
        if kind == "module":
            namespace[name] = importlib.import_module(entry["module"])
        elif kind == "attr":
            namespace[name] = _resolve(entry["module"], entry["qualname"])
        elif kind == "value":
            namespace[name] = entry["value"]
        else:
            helpers.append(entry["source"])
    for source in [*helpers, payload["source"]]:
        # annotations stay strings, as under ``from __future__ import annotations``
        code = compile(source, f"<{payload['name']}>", "exec", flags=ANNOTATIONS, dont_inherit=True)
        exec(code, namespace)
    return namespace[payload["name"]]
