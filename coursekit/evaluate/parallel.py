r"""Run many Rust compile-and-test jobs at once, as many as cores *and* memory allow.

Each job of :func:`compile_and_test_many` is a :func:`coursekit.evaluate.rust.compile_and_test`
whose compiler may use up to its memory cap; :func:`parallel_runs` starts only as many as the
available memory (``MemAvailable``) holds at their limits, so that two macro bombs cannot
exhaust the machine.

Example:
    >>> parallel_runs(4, 1 << 62)
    1
"""

from __future__ import annotations

import os
import resource
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from coursekit.evaluate.checks import check_count, check_text
from coursekit.evaluate.rust import (
    COMPILE_MEMORY_BYTES,
    MEMORY_LIMIT_BYTES,
    MIN_COMPILE_MEMORY_BYTES,
    RustTestResult,
    compile_and_test,
    find_rustc,
)
from coursekit.evaluate.sandbox import SandboxInputError


def compile_and_test_many(
    sources: Sequence[str],
    *,
    jobs: int | None = None,
    timeout_s: float = 10.0,
    compile_timeout_s: float = 60.0,
    workdir: str | os.PathLike[str] | None = None,
    compile_memory_bytes: int = COMPILE_MEMORY_BYTES,
) -> list[RustTestResult]:
    """Run :func:`compile_and_test` on many sources in parallel threads.

    Args:
        sources: the Rust files, one string each.
        jobs: at most this many compile-and-test runs at once (default: ``os.cpu_count()``);
            fewer where the available memory does not hold that many at their limits
            (:func:`parallel_runs`).
        timeout_s: as for :func:`compile_and_test`.
        compile_timeout_s: as for :func:`compile_and_test`.
        workdir: as for :func:`compile_and_test`.
        compile_memory_bytes: as for :func:`compile_and_test`.

    Returns:
        One result per source, in the order of ``sources``.

    Raises:
        RustNotFoundError: no compiler is found.
        SandboxInputError: an argument is invalid (a ``ValueError``; the message names it).

    Example:
        >>> results = compile_and_test_many([a, b], jobs=2)  # doctest: +SKIP
        >>> [r.passed for r in results]  # doctest: +SKIP
        [True, False]
    """
    if isinstance(sources, str | bytes) or not isinstance(sources, Sequence):
        raise SandboxInputError(
            f"compile_and_test_many sources must be a list of str (got {type(sources).__name__})"
            "; wrap a single source in a list"
        )
    for index, source in enumerate(sources):
        check_text(f"compile_and_test_many sources[{index}]", source)
    wanted = (os.cpu_count() or 1) if jobs is None else check_count("jobs", jobs, 1)
    check_count("compile_memory_bytes", compile_memory_bytes, MIN_COMPILE_MEMORY_BYTES)
    workers = parallel_runs(wanted, max(compile_memory_bytes, MEMORY_LIMIT_BYTES))
    if not sources:
        return []
    compiler = find_rustc()
    with ThreadPoolExecutor(max_workers=workers) as pool:
        futures = [
            pool.submit(
                compile_and_test,
                source,
                timeout_s=timeout_s,
                compile_timeout_s=compile_timeout_s,
                workdir=workdir,
                rustc=compiler,
                compile_memory_bytes=compile_memory_bytes,
            )
            for source in sources
        ]
        return [future.result() for future in futures]


def parallel_runs(jobs: int, bytes_each: int) -> int:
    """Return how many runs of ``bytes_each`` to start at once: ``jobs``, memory allowing.

    At least one; at most ``jobs`` and the available memory (``MemAvailable``) divided by
    ``bytes_each``, so that every run at its limit at once still fits.

    Example:
        >>> parallel_runs(4, 1 << 62)
        1
    """
    return max(1, min(jobs, available_memory() // bytes_each))


def available_memory() -> int:
    """Return the memory available to new processes, in bytes (``MemAvailable``).

    Example:
        >>> available_memory() > 0
        True
    """
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):  # pragma: no cover - not Linux
        pass
    pages = os.sysconf("SC_AVPHYS_PAGES") if hasattr(os, "sysconf") else 0  # pragma: no cover
    return max(pages * resource.getpagesize(), 1)  # pragma: no cover
