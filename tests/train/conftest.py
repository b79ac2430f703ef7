"""Fixtures shared by the training tests."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Train on one intra-op thread: on a shared 2-core machine, thread hand-offs made tiny
    matmuls about 100x slower (the accumulation test took 57 s instead of 2 s)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
