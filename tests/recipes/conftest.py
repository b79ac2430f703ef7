"""Fixtures of the recipe tests: one torch thread, the micro nano build."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from tests.nano import conftest as nano

MICRO = nano.MICRO
fixture_corpus = nano.fixture_corpus  # the fixture crates' corpus, shared with tests/nano


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Train on one intra-op thread (as tests/train does): on a shared 2-core machine thread
    hand-offs make tiny matmuls far slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="package")
def micro_build(fixture_corpus: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple:
    """Run the whole build once with ``MICRO``: (model directory, report, work directory)."""
    from coursekit.recipes.nano_build import build_nano

    root = tmp_path_factory.mktemp("nano-build")
    lines: list[str] = []
    report = build_nano(fixture_corpus, root / "nano", config=MICRO, log=lines.append)
    return root / "nano", report, root / ".nano.work", lines
