"""One run of ``coursekit bench`` in a fresh Python process, so that its peak RSS is its own.

``run_child`` starts ``python -m coursekit.recipes.bench.child <job JSON>`` and reads the
result line the child prints (``train_throughput.result_line``); ``child_main`` is the child:
it sets the torch threads and runs one engine (``measure_engine``), or profiles coursekit's
steps when the job asks for ``profile_steps`` (``coursekit.recipes.bench.profile``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import coursekit
from coursekit.errors import CoursekitError
from coursekit.recipes.bench.train_throughput import (
    ENGINES,
    measure_engine,
    parse_result,
    result_line,
)
from coursekit.recipes.bench.trl_peer import TRL_VERSION, run_trl

SUITE_ENGINES: dict[str, Callable[..., dict[str, Any]]] = {**ENGINES, "trl": run_trl}
"""Engine name → its run function (``coursekit``, ``hf``, ``trl``)."""
PEER_PACKAGES: dict[str, str] = {"trl": f"trl=={TRL_VERSION}"}
"""Engines whose package is optional (a dev pin), checked before anything runs → the pin."""


def run_child(
    job: dict[str, Any], *, module: str = "coursekit.recipes.bench.child"
) -> dict[str, Any]:
    """Run one job in a fresh Python process and return its result line as a dict.

    Args:
        job: the JSON-ready job (an engine's: ``engine``, ``method`` and settings; or any
            job with a ``name`` that ``module``'s ``__main__`` reads from ``argv[1]``).
        module: the module run with ``python -m`` (this one: ``child_main``).

    Raises:
        CoursekitError: the child exited without a result (the message ends with its stderr).
    """
    root = str(Path(coursekit.__file__).resolve().parents[1])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        p for p in (root, os.environ.get("PYTHONPATH", "")) if p)}  # fmt: skip
    command = [sys.executable, "-m", module, json.dumps(job)]
    output = subprocess.run(command, capture_output=True, text=True, check=False, env=env)
    result = parse_result(output.stdout)
    if result is None:
        tail = " | ".join(output.stderr.strip().splitlines()[-5:])
        label = job.get("name") or f"{job['engine']} ({job['method']})"
        raise CoursekitError(f"bench: {label} failed: {tail}")
    return result


def child_main(argv: Sequence[str]) -> None:
    """The child process: set the threads, run one engine, print its result line."""
    import torch

    job = json.loads(argv[0])
    torch.set_num_threads(job.pop("threads"))
    engine = job.pop("engine")
    if "profile_steps" in job:
        from coursekit.recipes.bench.profile import profile_coursekit

        result = profile_coursekit(**job)
    else:
        result = measure_engine(engine, engines=SUITE_ENGINES, **job)
    print(result_line(result), flush=True)


if __name__ == "__main__":  # pragma: no cover - the child process of run_child
    child_main(sys.argv[1:])
