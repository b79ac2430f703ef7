"""Phase 3, Bonus tiers I–L: the experiments of ``notebooks/phase3_bonus.ipynb``.

One module per tier, each a small runner the notebook calls so that the notebook holds no
logic beyond the learner's exercises:

- I dashboard, :mod:`~coursekit.recipes.phase3_bonus.dashboard`: the learner's metrics
  callback beside ``MetricsLogger`` in one fine-tune, the two compared;
- J resume, :mod:`~coursekit.recipes.phase3_bonus.resume`: kill-and-resume for real, the
  learner's ``save_state``/``restore_state`` in child processes, and ``coursekit train``
  killed with SIGTERM and resumed;
- K own crate, :mod:`~coursekit.recipes.phase3_bonus.crate`: ``coursekit corpus build`` on
  the sample crate plus the learner's Rust module;
- L benchmarks, :mod:`~coursekit.recipes.phase3_bonus.bench`: ``coursekit bench`` with tiny
  parameters, read back into a table.

:func:`bonus_spec` is the short nano fine-tune every tier starts from.

Guide: docs/course.md (Phase 3, Bonus tiers).
"""

from coursekit.recipes.phase3_bonus.spec import bonus_spec, child_env, new_output, rows_table

__all__ = ["bonus_spec", "child_env", "new_output", "rows_table"]
