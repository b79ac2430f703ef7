"""The learner workspace: its layout, its config (``workspace.yaml``) and ``workspace new``.

``coursekit workspace new DIR --name NAME --tiers A,E`` writes the submission layout that
``coursekit workspace check`` and the grader read::

    DIR/
      workspace.yaml        name, chosen tiers, coursekit version (WorkspaceConfig)
      notebooks/            the phase notebooks, student versions (release.py)
      enhancements/         the learner's package: __init__.py + one module per chosen tier,
                            <letter>_<slug>.py (e_dora.py)
      tests/                test_<letter>_<slug>.py per tier, skipped until written
      ENHANCEMENT.md        the report's template: the required sections, 500-1000 words
      pyproject.toml        the package, pytest and coverage settings
      ruff.toml             the course's lint and format rules
      Makefile              make check = coursekit workspace check .
      .gitignore

Guide: docs/course.md ("Your workspace").

Example:
    >>> config = WorkspaceConfig(name="ada", tiers=("A", "E"), coursekit_version="0.1.0")
    >>> print(codec.to_yaml(config), end="")
    name: ada
    tiers:
    - A
    - E
    coursekit_version: 0.1.0
    >>> WorkspaceConfig(name="Ada L", tiers=("A", "E"), coursekit_version="0.1.0")
    Traceback (most recent call last):
    ValueError: WorkspaceConfig.name must be 1-64 lowercase letters, ... (got 'Ada L')
"""

from __future__ import annotations

import os
import re
import textwrap
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from coursekit import __version__, codec
from coursekit.errors import CoursekitError
from coursekit.io import atomic_directory
from coursekit.workspace.release import release
from coursekit.workspace.tiers import TIERS, Tier

CONFIG_FILE = "workspace.yaml"
NOTEBOOKS_DIR = "notebooks"
PACKAGE = "enhancements"
TESTS_DIR = "tests"
REPORT_FILE = "ENHANCEMENT.md"
NOTEBOOK_PATTERN = "phase[1-4]*.ipynb"
"""The phase notebooks a workspace gets: whichever of Phases 1-4 the source directory has."""
DEFAULT_TIERS = ("A", "E")
"""The tiers of ``workspace new`` without ``--tiers``: the first Core and Advanced ones."""
NAME = re.compile(r"^[a-z][a-z0-9_-]{0,63}$")


@dataclass(frozen=True, kw_only=True)
class WorkspaceConfig:
    """What ``workspace.yaml`` holds: who the workspace is for and what they chose."""

    name: str
    """The learner's name as an identifier (``ada-lovelace``); names the package project."""
    tiers: tuple[str, ...]
    """The chosen tiers' letters, sorted: at least one Core (A-D) and one Advanced (E-H)."""
    coursekit_version: str
    """The coursekit version that wrote the workspace."""

    def __post_init__(self) -> None:
        """Check the name's shape, the tier letters and the Core + Advanced rule."""
        codec.check_types(self)
        levels = {TIERS[t].level for t in self.tiers if t in TIERS}
        codec.check_rules(self, [
            ("name", bool(NAME.match(self.name)), "must be 1-64 lowercase letters, digits, "
             "'-' or '_', starting with a letter, e.g. 'ada-lovelace'"),
            ("tiers", all(t in TIERS for t in self.tiers), "must be letters A-L"),
            ("tiers", list(self.tiers) == sorted(set(self.tiers)), "must be sorted, each once"),
            ("tiers", "core" in levels, "must include a Core tier (A-D)"),
            ("tiers", "advanced" in levels, "must include an Advanced tier (E-H)"),
            ("coursekit_version", bool(self.coursekit_version.strip()), "must not be empty"),
        ])  # fmt: skip

    @property
    def chosen(self) -> tuple[Tier, ...]:
        """The chosen tiers as :class:`Tier` entries."""
        return tuple(TIERS[letter] for letter in self.tiers)


def load_config(directory: str | os.PathLike[str]) -> WorkspaceConfig:
    """Read ``DIR/workspace.yaml``.

    Raises:
        CoursekitError: no such file (the message says how to make a workspace), or a bad
            value (``file:line`` and the field).

    Example:
        >>> load_config("no-such-workspace")
        Traceback (most recent call last):
        coursekit.errors.CoursekitError: no-such-workspace/workspace.yaml: not found; ...
    """
    path = Path(directory) / CONFIG_FILE
    if not path.is_file():
        raise CoursekitError(
            f"{path}: not found; is {directory} a workspace? Create one with: "
            "coursekit workspace new DIR --name NAME"
        )
    return codec.from_yaml(WorkspaceConfig, path)


def default_notebooks() -> Path:
    """Return the directory of coursekit's phase notebooks (``notebooks/`` beside the package)."""
    return Path(__file__).resolve().parents[2] / "notebooks"


def new_workspace(
    directory: str | os.PathLike[str],
    *,
    name: str,
    tiers: tuple[str, ...] = DEFAULT_TIERS,
    notebooks: str | os.PathLike[str] | None = None,
) -> Path:
    """Create a learner workspace in ``directory`` (which must be new or empty).

    The workspace appears whole or not at all (it is built beside ``directory`` and renamed).

    Args:
        directory: where to create it.
        name: the learner's name (see :class:`WorkspaceConfig`).
        tiers: the chosen tier letters (at least one Core and one Advanced).
        notebooks: the solution notebooks to release (default :func:`default_notebooks`);
            those named ``phase1*`` … ``phase4*`` are released.

    Returns:
        The workspace's path.

    Raises:
        CoursekitError: ``directory`` exists and is not an empty directory, the notebooks
            folder is missing, or it has no phase notebook.
        ValueError: a bad name or tier choice.

    Example:
        >>> new_workspace(tmp_path / "ws", name="ada", tiers=("A", "E"))  # doctest: +SKIP
        PosixPath('.../ws')
    """
    config = WorkspaceConfig(
        name=name, tiers=tuple(sorted(set(tiers))), coursekit_version=__version__
    )
    target = Path(directory)
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise CoursekitError(
            f"{target}: already exists and is not empty; workspace new never overwrites, "
            "choose a new directory"
        )
    source = Path(notebooks) if notebooks is not None else default_notebooks()
    if not source.is_dir():
        raise CoursekitError(
            f"{source}: no notebooks folder there; pass --notebooks DIR (the notebooks/ folder "
            "of a coursekit clone)"
        )
    with atomic_directory(target) as staging:
        release(source, staging / NOTEBOOKS_DIR, pattern=NOTEBOOK_PATTERN)
        _write_files(staging, config)
    return target


def _write_files(root: Path, config: WorkspaceConfig) -> None:
    """Write everything but the notebooks: config, package, tests, report, settings."""
    values = {
        "name": config.name,
        "version": config.coursekit_version,
        "tier_list": ", ".join(f"{t.letter} ({t.title})" for t in config.chosen),
        "tier_bullets": "\n".join(
            f"- {t.module}: Tier {t.letter}, {t.title}" for t in config.chosen
        ),
    }
    (root / CONFIG_FILE).write_text(
        "# coursekit workspace: read by `coursekit workspace check` and the grader.\n"
        + codec.to_yaml(config),
        encoding="utf-8",
    )
    (root / PACKAGE).mkdir()
    (root / TESTS_DIR).mkdir()
    files = {
        f"{PACKAGE}/__init__.py": "enhancements_init.py.tmpl",
        REPORT_FILE: "ENHANCEMENT.md.tmpl",
        "pyproject.toml": "pyproject.toml.tmpl",
        "ruff.toml": "ruff.toml",
        "Makefile": "Makefile.tmpl",
        ".gitignore": "gitignore.tmpl",
    }
    for path, template in files.items():
        (root / path).write_text(render(template, values), encoding="utf-8")
    for tier in config.chosen:
        tier_values = values | tier_fields(tier)
        (root / PACKAGE / f"{tier.module}.py").write_text(
            render("tier_module.py.tmpl", tier_values), encoding="utf-8"
        )
        (root / TESTS_DIR / tier_values["test_file"]).write_text(
            render("tier_test.py.tmpl", tier_values), encoding="utf-8"
        )


def tier_fields(tier: Tier) -> dict[str, str]:
    """Return the template fields of one tier (``{{letter}}``, ``{{module}}`` ...).

    Example:
        >>> tier_fields(TIERS["E"])["test_file"]
        'test_e_dora.py'
    """
    return {
        "letter": tier.letter,
        "level": tier.level.title(),
        "title": tier.title,
        "task": tier.task,
        "guide": tier.guide,
        "reference": tier.reference,
        "module": tier.module,
        "test_prefix": tier.test_prefix,
        "test_file": f"test_{tier.module}.py",
        "contract": "\n".join(
            textwrap.wrap(
                f"- {tier.contract[0].upper()}{tier.contract[1:]}.",
                width=90,
                subsequent_indent="  ",
                break_on_hyphens=False,
            )
        ),
    }


def template_path(name: str) -> Path:
    """Return the path of one of the workspace's template files (package data)."""
    return Path(str(resources.files("coursekit.workspace") / "templates" / name))


def render(template: str, values: dict[str, str]) -> str:
    """Return template file ``template`` with each ``{{key}}`` replaced by ``values[key]``.

    Raises:
        KeyError: the template names a key ``values`` lacks (a bug in coursekit).

    Example:
        >>> render("gitignore.tmpl", {}).splitlines()[0]
        '__pycache__/'
    """
    text = template_path(template).read_text(encoding="utf-8")
    return re.sub(r"\{\{(\w+)\}\}", lambda match: values[match[1]], text)
