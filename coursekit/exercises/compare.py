"""How checks compare a learner's answer with coursekit's reference, and word the difference.

Every helper raises ``CheckFailed`` with one line naming what differs and ends with the
check's name in parentheses: ``output differs at index (0, 3): yours 0.1234, expected
0.5678 (check: bias untouched)``. Property checks search for a counterexample with
hypothesis (``counterexample``), derandomised so that the same answer gets the same message.

Guide: docs/exercises.md.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from coursekit.exercises.result import CheckFailed

if TYPE_CHECKING:
    import torch


def number(value: float) -> str:
    """Format a number for a message: ≤ 4 decimals, or 4 significant digits when tiny or huge.

    Example:
        >>> number(0.123456), number(1.5e-7), number(3.0)
        ('0.1235', '1.5e-07', '3.0')
    """
    value = float(value)
    if value == int(value) and abs(value) < 1e6:
        return str(value)
    if value != 0 and not 1e-3 <= abs(value) < 1e5:
        return f"{value:.4g}"
    return f"{value:.4f}".rstrip("0")


def fail(message: str, check: str) -> CheckFailed:
    """Return the ``CheckFailed`` for ``message``, with ``(check: name)`` appended.

    Example:
        >>> str(fail("returns 1.2 > 1", "stays in [start_fraction, 1]"))
        'returns 1.2 > 1 (check: stays in [start_fraction, 1])'
    """
    return CheckFailed(f"{message} (check: {check})")


def compare_tensors(
    yours: Any,
    expected: torch.Tensor,
    check: str,
    *,
    what: str = "output",
    atol: float = 1e-5,
    rtol: float = 1e-4,
) -> None:
    """Raise ``CheckFailed`` unless ``yours`` is a tensor of ``expected``'s shape and values.

    Values match when |yours − expected| ≤ atol + rtol·|expected| element-wise; the message
    names the first index that does not, with both values.

    Example:
        >>> import torch
        >>> compare_tensors(torch.tensor([[1.0, 2.0]]), torch.tensor([[1.0, 2.5]]), "demo")
        Traceback (most recent call last):
        ...
        coursekit.exercises.result.CheckFailed: output differs at index (0, 1): yours 2.0, \
expected 2.5 (check: demo)
    """
    import torch  # here: the pacing check runs without torch

    if not isinstance(yours, torch.Tensor):
        raise fail(f"{what} is a {type(yours).__name__}, expected a torch.Tensor", check)
    if yours.shape != expected.shape:
        raise fail(
            f"{what} has shape {tuple(yours.shape)}, expected {tuple(expected.shape)}", check
        )
    got, want = yours.detach().double().cpu(), expected.detach().double().cpu()
    bad = ~torch.isclose(got, want, rtol=rtol, atol=atol, equal_nan=False)
    if bad.any():
        index = tuple(int(i) for i in bad.nonzero()[0])
        raise fail(
            f"{what} differs at index {index}: yours {number(got[index])}, "
            f"expected {number(want[index])}",
            check,
        )


def counterexample(strategy: Any, fails: Callable[[Any], bool], *, examples: int = 200) -> Any:
    """Return the simplest value drawn from ``strategy`` for which ``fails`` is true, or None.

    Hypothesis shrinks what it finds, so the counterexample in a message is a small one.
    Exceptions raised by ``fails`` (the learner's function raising) propagate.

    Example:
        >>> from hypothesis import strategies as st
        >>> counterexample(st.integers(0, 100), lambda n: n * n > 50)
        8
    """
    from hypothesis import HealthCheck, find, settings
    from hypothesis.errors import NoSuchExample

    quiet = settings(
        max_examples=examples,
        deadline=None,
        database=None,
        derandomize=True,
        suppress_health_check=list(HealthCheck),
    )
    try:
        return find(strategy, fails, settings=quiet)
    except NoSuchExample:
        return None
