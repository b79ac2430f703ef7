"""Presentation: what notebooks and terminals show of models, runs and plans.

- :mod:`coursekit.display.tables`: HTML tables of metrics, generations and presets.
- :mod:`coursekit.display.plots`: static figures of a finished run (no pyplot state).
- :mod:`coursekit.display.widgets`: the Phase 2 rank/memory explorer (ipywidgets).
- :mod:`coursekit.display.dashboard`: the live training dashboard and ``metrics.jsonl`` plots.
- :mod:`coursekit.display.progress`: the training progress bar with ETA.

Nothing is imported here: each module pulls in only what it draws with (matplotlib, tqdm,
ipywidgets, the memory planner), so ``import coursekit.train`` stays fast and acyclic.
"""
