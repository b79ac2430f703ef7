"""Grading: the course rubric as data, and evidence that a run's numbers are its own.

- :mod:`coursekit.grading.manifest`: the ``manifest.json`` every training run writes
  (settings, seed, code revision, data, examples and file digests, environment);
- :mod:`coursekit.grading.replay`: the short deterministic re-run, executed in a separate
  process (``python -m coursekit.grading.replay``);
- :mod:`coursekit.grading.evidence`: ``verify_run`` checks a run folder against its manifest
  and the re-run;
- :mod:`coursekit.grading.rubric`: ``rubric.yaml`` loaded as frozen dataclasses, and the
  pure functions ``total``, ``band`` and ``late_penalty``;
- :mod:`coursekit.grading.batch` (``coursekit grade``), with :mod:`~coursekit.grading.shard`
  and :mod:`~coursekit.grading.merge` (``--shard i/n``, ``coursekit grade merge``);
- :mod:`coursekit.grading.flags`: near-duplicate flags across a class (for a human);
- :mod:`coursekit.grading.feedback` and :mod:`coursekit.grading.report`: the feedback pages,
  ``grades.json`` and the cohort report.

Nothing is imported here, so the trainer can import the manifest without cycles.

Guide: docs/grading.md.
"""
