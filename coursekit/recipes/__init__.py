"""Recipes: composed, tested workflows over coursekit's components.

Components (:mod:`coursekit.adapters`, :mod:`coursekit.train`, :mod:`coursekit.data`,
:mod:`coursekit.memory`, :mod:`coursekit.evaluate`, :mod:`coursekit.nano`, ...) are
reusable pieces; a recipe composes them into one workflow that the notebooks, the CLI and the
benchmark scripts call (torchtune's split). Components never import recipes
(``tests/recipes/test_layering.py``).

Modules:
    ``phase1_baseline``: the Phase 1 baseline LoRA fine-tune (``coursekit baseline``).
    ``finetune``: load, train and write a run folder from a ``RunSpec`` (``coursekit train``).
    ``lr_find``: the LR range test on a run's own data and loss (``coursekit lr-find``).
    ``nano_build``: the staged, resumable Qwen2.5-Coder-nano build (``coursekit nano build``).
    ``memory_validate``: estimate vs measured memory on a grid (``coursekit memory validate``).
    ``bench``: the measurement logic of ``benchmarks/*.py``.
"""
