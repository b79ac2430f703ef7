"""coursekit: the Python workbook of the capstone "Enhance a Qwen2.5-Coder fine-tuning pipeline".

The notebooks under ``notebooks/`` are thin recipes; this package does the work: Qwen2.5-Coder
model presets (:mod:`coursekit.presets`) and loading (:mod:`coursekit.loading`), the offline
Qwen2.5 tokenizer (:mod:`coursekit.tokenizer`), the environment check (:mod:`coursekit.doctor`),
the Rust test-generation data (:mod:`coursekit.data`, built offline by :mod:`coursekit.corpus`),
Rust compilation of generated tests (:mod:`coursekit.evaluate`), notebook metric records
(:func:`record`, :func:`read_records`) and the recipes that compose these components into
workflows, the Phase 1 baseline fine-tune first (:mod:`coursekit.recipes`).
"""

from coursekit.exercises.runner import check
from coursekit.record import read_records, record

__all__ = ["__version__", "check", "read_records", "record"]
__version__ = "0.1.0"
