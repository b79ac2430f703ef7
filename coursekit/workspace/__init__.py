"""The learner workspace: the submission layout, student notebooks and the course's gates.

- :mod:`coursekit.workspace.tiers`: the enhancement tiers A-L as data;
- :mod:`coursekit.workspace.layout`: ``workspace.yaml`` (``WorkspaceConfig``) and
  ``new_workspace``, the layout the grader reads;
- :mod:`coursekit.workspace.release`: solution regions → student notebooks with stubs;
- :mod:`coursekit.workspace.report`: ``ENHANCEMENT.md``'s words and sections;
- :mod:`coursekit.workspace.gates`, :mod:`coursekit.workspace.testrun`,
  :mod:`coursekit.workspace.check`: the quality gates and ``check_workspace``;
- :mod:`coursekit.workspace.pytest_plugin`: what the child test run records;
- :mod:`coursekit.workspace.cli`: ``coursekit workspace new | check | release``.

Guide: docs/course.md ("Your workspace").

Example:
    >>> from coursekit.workspace import TIERS
    >>> [t.letter for t in TIERS.values() if t.level == "advanced"]
    ['E', 'F', 'G', 'H']
"""

from coursekit.workspace.check import CheckReport, check_workspace
from coursekit.workspace.layout import WorkspaceConfig, load_config, new_workspace
from coursekit.workspace.release import release, release_notebook, stub_cells
from coursekit.workspace.tiers import TIERS, Tier

__all__ = [
    "TIERS",
    "CheckReport",
    "Tier",
    "WorkspaceConfig",
    "check_workspace",
    "load_config",
    "new_workspace",
    "release",
    "release_notebook",
    "stub_cells",
]
