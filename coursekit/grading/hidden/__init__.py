"""The grader's hidden checks: one module per tier, ``tier_<letter>.py``.

Each module exposes three names (the format an instructor's own ``hidden_dir`` follows too):

- ``ID``: the id prefix of its checks, e.g. ``"E.dora_forward"``; a check's id is
  ``"<ID>/<name>"``;
- ``EXPORTS``: the names the learner's module ``enhancements/<letter>_<slug>.py`` must
  define, in the order each check receives them (``("dora_forward",)``);
- ``CHECKS``: the ordered ``(name, function)`` pairs; ``function(*exports)`` returns when
  the check passes and raises ``coursekit.exercises.result.CheckFailed`` (or anything else)
  naming what differs when it does not.

The built-in modules of C, D, E, F, H, I and J reuse the sub-checks of ``coursekit.exercises``
(the tiers' exercises); B's and G's (``tier_b.py``, ``tier_g.py``) are their own, against
coursekit's counts and ``MultiLoRALinear``; tiers A, K and L have no module, hence no hidden
checks. This folder is hidden from
every sandboxed run but the hidden-check run itself (``coursekit.evaluate.sandbox``,
``default_hidden``). Guide: docs/grading.md ("Hidden checks").
"""
