"""Fixtures of the recipe tests."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Train on one intra-op thread (as tests/train does): on a shared 2-core machine thread
    hand-offs make tiny matmuls far slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
