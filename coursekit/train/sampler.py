"""The data order: which rows each optimizer step trains on, as a resumable stream.

Epoch e visits the examples in ``order(e)`` (a seeded shuffle by default, or a curriculum),
packs them into rows (``coursekit.data.batching.pack``) or keeps one example per row, and
hands out rows in that order; the stream runs on into the next epoch. Its whole state is
(epoch, position): every process rebuilds the same rows from the seed, so nothing else has
to be saved or communicated, and a resumed run sees exactly the rows it would have seen.

Guide: docs/training.md.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from coursekit.data.batching import pack
from coursekit.data.prompts import EncodedExample

if TYPE_CHECKING:  # the curriculum module is imported when a curriculum is used
    from coursekit.data.curriculum import Pacing, PacingFunction

Order = Callable[[int], list[int]]
"""Epoch → the example indices in the order that epoch visits them."""


def shuffled_order(n: int, seed: int) -> Order:
    """Return the order function of a seeded shuffle: a fresh permutation of range(n) per epoch.

    Example:
        >>> shuffled_order(4, seed=0)(0) == shuffled_order(4, seed=0)(0)
        True
    """

    def order(epoch: int) -> list[int]:
        indices = list(range(n))
        random.Random(f"coursekit-order:{seed}:{epoch}").shuffle(indices)
        return indices

    return order


class RowSampler:
    """A resumable stream of rows (lists of examples) over the training split.

    Args:
        examples: the encoded training examples.
        seq_len: s; with ``packing``, the length rows are packed to.
        packing: several examples per row, or one.
        order: epoch → visiting order (``shuffled_order`` when None).
        seed: seed of the default shuffle.
    """

    def __init__(
        self,
        examples: Sequence[EncodedExample],
        *,
        seq_len: int,
        packing: bool,
        seed: int,
        order: Order | None = None,
    ) -> None:
        if not examples:
            raise ValueError("RowSampler needs at least one training example")
        self.examples = list(examples)
        self.seq_len, self.packing = seq_len, packing
        self.order = order or shuffled_order(len(self.examples), seed)
        self.epoch, self.position = 0, 0
        self._rows: list[list[int]] | None = None

    def epoch_rows(self, epoch: int) -> list[list[int]]:
        """Return epoch ``epoch``'s rows as lists of example indices."""
        visit = self.order(epoch)
        if not self.packing:
            return [[i] for i in visit]
        rows = pack([len(self.examples[i].input_ids) for i in visit], self.seq_len)
        return [[visit[j] for j in row] for row in rows]

    def rows_per_epoch(self) -> int:
        """Return the number of rows of the first epoch (the estimate for ``epochs`` runs)."""
        return len(self.epoch_rows(0))

    def take(self, n: int) -> list[list[EncodedExample]]:
        """Return the next ``n`` rows, moving on to the next epoch when one runs out."""
        taken = []
        while len(taken) < n:
            if self._rows is None:
                self._rows = self.epoch_rows(self.epoch)
            if self.position == len(self._rows):
                self.epoch, self.position, self._rows = self.epoch + 1, 0, None
                continue
            taken.append([self.examples[i] for i in self._rows[self.position]])
            self.position += 1
        return taken

    def state_dict(self) -> dict[str, Any]:
        """Return the position and this epoch's visiting order (for the checkpoint)."""
        return {"epoch": self.epoch, "position": self.position, "order": self.order(self.epoch)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue from a saved position; the saved order must be the one rebuilt here."""
        if list(state["order"]) != self.order(state["epoch"]):
            raise ValueError(
                "the checkpoint's data order differs from the one this run rebuilds: resume "
                "with the same training data, seed and curriculum"
            )
        self.epoch, self.position, self._rows = state["epoch"], state["position"], None


class CurriculumRows:
    """Rows from a curriculum: step t trains on ``CurriculumSampler.batch(t)``, one example a row.

    The pacing (``coursekit.data.curriculum``) decides which examples step t may see, so the
    state is the step alone; the epoch is always 0 and ``position`` counts steps.

    Args:
        examples: the encoded training examples.
        difficulties: one score per example (higher is harder).
        pacing: ``"linear"``, ``"root"`` or ``"step"``, or a pacing function
            ``(step, total_steps, start_fraction) -> fraction`` (Phase 3, tier H).
        rows_per_step: examples per optimizer step over all processes.
        total_steps: T, the step from which the whole set is available.
        seed: seed of the draws.
    """

    def __init__(
        self,
        examples: Sequence[EncodedExample],
        *,
        difficulties: Sequence[float],
        pacing: Pacing | PacingFunction,
        rows_per_step: int,
        total_steps: int,
        seed: int,
    ) -> None:
        from coursekit.data.curriculum import CurriculumSampler

        if len(difficulties) != len(examples):
            raise ValueError(
                f"got {len(difficulties)} difficulties for {len(examples)} training examples; "
                "give one score per example"
            )
        self.examples = list(examples)
        self.curriculum = CurriculumSampler(
            difficulties=tuple(difficulties),
            pacing=pacing,
            total_steps=total_steps,
            batch_size=rows_per_step,
            seed=seed,
        )
        self.epoch, self.position = 0, 0

    def take(self, n: int) -> list[list[EncodedExample]]:
        """Return step ``position``'s ``n`` rows (``n`` must be ``rows_per_step``)."""
        assert n == self.curriculum.batch_size, "a curriculum step is rows_per_step rows"
        indices = self.curriculum.batch(self.position)
        self.position += 1
        return [[self.examples[i]] for i in indices]

    def state_dict(self) -> dict[str, Any]:
        """Return the curriculum position (the step) and its easiest-first order."""
        return {"epoch": 0, "position": self.position, "order": list(self.curriculum.order)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue from a saved step; the saved order must be the one rebuilt here."""
        if list(state["order"]) != list(self.curriculum.order):
            raise ValueError(
                "the checkpoint's curriculum order differs from the one this run rebuilds: "
                "resume with the same training data and curriculum"
            )
        self.position = state["position"]
