"""Experiments of Phase 4: falsification tests of claims that could be false.

- :mod:`coursekit.experiments.falsify`: the helpers in one place (``falsify`` for any claim
  x ≤ θ or x ≥ θ, and the course's two claims below);
- :mod:`coursekit.experiments.rank`: "a higher rank does not decrease quality";
- :mod:`coursekit.experiments.memory_bound`: "the memory estimate bounds actual use";
- :mod:`coursekit.experiments.verdict`: the ``Verdict`` they return, with its numbers;
- :mod:`coursekit.experiments.runs`: final losses from run folders (``losses_from_runs``);
- :mod:`coursekit.experiments.stats`: seed means, spreads and Student's t quantile.

The function ``falsify`` is imported from its module (``from coursekit.experiments.falsify
import falsify``): the package's attribute ``falsify`` is that module, which a re-exported
function of the same name would shadow.

Guide: docs/experiments.md. Used in Phase 4 (validation) and by the learner workspace's tests.

Example:
    >>> from coursekit.experiments import rank_does_not_decrease_quality
    >>> rank_does_not_decrease_quality({4: [2.31, 2.35], 8: [2.28, 2.30]}).status
    'NOT FALSIFIED'
"""

from coursekit.experiments.falsify import memory_estimate_bounds_use, rank_does_not_decrease_quality
from coursekit.experiments.runs import losses_from_runs
from coursekit.experiments.verdict import EvidenceError, Verdict

__all__ = [
    "EvidenceError",
    "Verdict",
    "losses_from_runs",
    "memory_estimate_bounds_use",
    "rank_does_not_decrease_quality",
]
