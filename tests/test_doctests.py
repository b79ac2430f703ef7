"""Every docstring example of the ``coursekit`` package runs, as ``doctest`` runs it.

One test per module (``pkgutil.walk_packages`` over the package), with ``ELLIPSIS`` and
``NORMALIZE_WHITESPACE``; ``# doctest: +SKIP`` is respected (examples that need a model, a
GPU or a ``tmp_path`` are skipped in the docstring itself). A failing example is a stale
docstring: fix the docstring, not this file. No module is skipped: every one imports on
the course's environment (optional pieces such as bitsandbytes or rustc are imported
lazily inside functions).
"""

from __future__ import annotations

import doctest
import importlib
import pkgutil
import types

import pytest

import coursekit

FLAGS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE
SUBMODULES = pkgutil.walk_packages(coursekit.__path__, prefix="coursekit.")
MODULES = ["coursekit", *sorted(info.name for info in SUBMODULES)]


def run_examples(module: types.ModuleType) -> tuple[doctest.TestResults, str]:
    """Run ``module``'s docstring examples; return (failed, attempted) and the failure report."""
    report: list[str] = []
    runner = doctest.DocTestRunner(optionflags=FLAGS)
    for test in doctest.DocTestFinder().find(module):
        runner.run(test, out=report.append)
    return runner.summarize(verbose=False), "".join(report)


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_run(name: str) -> None:
    results, report = run_examples(importlib.import_module(name))
    assert results.failed == 0, f"stale docstring example(s) in {name}:\n{report}"


def test_the_package_has_examples_to_run() -> None:
    """Guards the collection: a finder that found nothing would pass every test above."""
    assert len(MODULES) > 50
    attempted = sum(run_examples(importlib.import_module(n))[0].attempted for n in MODULES[:30])
    assert attempted > 20


def test_a_stale_example_fails_and_a_skipped_one_does_not() -> None:
    module = types.ModuleType("stale")
    module.__doc__ = """
    >>> 1 + 1
    3
    >>> raise RuntimeError("never run")  # doctest: +SKIP
    >>> list(range(30))
    [0, 1, ..., 29]
    """
    results, report = run_examples(module)
    assert results == doctest.TestResults(failed=1, attempted=2)
    assert "Expected:\n    3\nGot:\n    2" in report
