"""The checks the grader reads from a submission's files: run evidence, notebooks, examples.

Each function reads the submission's copy (bytes and JSON only; nothing of the learner's is
imported or executed here) and returns what the rubric check needs:

- :func:`baseline_evidence` (``baseline-evidence``): the Phase 1 run folder verifies;
- :func:`benchmark_evidence` (``benchmark``): the Phase 4 before/after pair of run folders
  is there and both verify;
- :func:`missing_phases` (``baseline-executed``, ``notebooks-executed``): phase notebooks the
  course asks for and the submission lacks;
- :func:`usage_examples` (``usage-example``): the chosen tiers whose module a Python code
  block of ``ENHANCEMENT.md`` names.

Verification is :func:`coursekit.grading.evidence.verify_run` (manifest hashes, then the
first steps re-run in a fresh interpreter that never imports the learner's code).

Example:
    >>> missing_phases(["phase1_baseline.ipynb", "phase3_core.ipynb"])
    ['phase2', 'phase4']
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

from coursekit.errors import CoursekitError

PHASES = ("phase1", "phase2", "phase3", "phase4")
"""The course's phases: a submission holds at least one notebook ``notebooks/<phase>*.ipynb``
of each."""
BENCHMARK_PAIR = ("before", "after")
"""The folder names of the Phase 4 benchmark's two runs (``before_after``'s output)."""
EVIDENCE_STEPS = 3
"""How many first steps of a run the grader re-runs."""
_FENCE = re.compile(r"^(`{3,}|~{3,})[ \t]*python[^\n]*\n(.*?)^\1[ \t]*$", re.M | re.S)


def _verify(run_dir: Path) -> tuple[bool, str]:
    """Verify one run folder; (ok, the failed checks' messages joined)."""
    from coursekit.grading.evidence import verify_run

    try:
        report = verify_run(run_dir, steps=EVIDENCE_STEPS)
    except CoursekitError as error:
        return False, str(error)
    bad = [c["message"] for c in report["checks"] if c["status"] != "ok"]
    return bool(report["ok"]), "; ".join(bad)


def _manifests(copy: Path) -> list[Path]:
    return sorted((copy / "runs").glob("**/manifest.json"))


def _in_pair(path: Path, copy: Path) -> bool:
    return bool(set(path.relative_to(copy).parts) & set(BENCHMARK_PAIR))


def baseline_evidence(copy: Path) -> tuple[bool, str]:
    """Verify the baseline's run folder; (ok, message).

    The baseline is the first run folder (``manifest.json``) under ``runs/phase1*/``; failing
    that, the first under ``runs/`` outside a benchmark's ``before/`` or ``after/``.

    Example:
        >>> baseline_evidence(Path("/nonexistent"))
        (False, 'no run folder with a manifest.json under runs/')
    """
    found = _manifests(copy)
    phase1 = [p for p in found if p.relative_to(copy / "runs").parts[0].startswith("phase1")]
    others = [p for p in found if not _in_pair(p, copy)]
    chosen = (phase1 or others)[:1]
    if not chosen:
        return False, "no run folder with a manifest.json under runs/"
    return _verify(chosen[0].parent)


def benchmark_evidence(copy: Path) -> tuple[bool | None, str]:
    """Find the Phase 4 before/after runs and verify both; (ok, message).

    ``None`` means no pair was found (the benchmark is missing); ``False`` that it is present
    but a run does not verify (the message says which and why).

    Example:
        >>> benchmark_evidence(Path("/nonexistent"))
        (None, 'no Phase 4 benchmark: no run folders under runs/**/before/ and runs/**/after/')
    """
    runs = {side: [p.parent for p in _manifests(copy) if side in p.relative_to(copy).parts]
            for side in BENCHMARK_PAIR}  # fmt: skip
    if not all(runs.values()):
        return None, "no Phase 4 benchmark: no run folders under runs/**/before/ and runs/**/after/"
    problems = []
    for side in BENCHMARK_PAIR:
        ok, said = _verify(runs[side][0])
        if not ok:
            problems.append(f"{runs[side][0].relative_to(copy)}: {said}")
    return not problems, "; ".join(problems)


def missing_phases(names: Iterable[str]) -> list[str]:
    """Return the phases (``"phase4"``) no notebook name of ``names`` starts with.

    Example:
        >>> missing_phases(["phase1_baseline.ipynb", "phase2_analysis.ipynb"])
        ['phase3', 'phase4']
    """
    names = list(names)
    return [phase for phase in PHASES if not any(n.startswith(phase) for n in names)]


def python_blocks(markdown: str) -> list[str]:
    r"""Return the bodies of the fenced ```` ```python ```` code blocks of ``markdown``.

    Example:
        >>> python_blocks("text\n```python\nimport x\n```\n```\nnot python\n```\n")
        ['import x\n']
    """
    return [match.group(2) for match in _FENCE.finditer(markdown)]


def usage_examples(copy: Path, modules: dict[str, str]) -> tuple[float, str]:
    """Return (share of chosen tiers with a usage example, message naming those without).

    A tier has one when a Python code block of ``ENHANCEMENT.md`` names its module
    (``modules``: tier letter → module name, e.g. ``{"E": "e_dora"}``).

    Example:
        >>> usage_examples(Path("/nonexistent"), {"E": "e_dora"})
        (0.0, 'ENHANCEMENT.md: missing')
    """
    path = copy / "ENHANCEMENT.md"
    if not path.is_file():
        return 0.0, "ENHANCEMENT.md: missing"
    if not modules:
        return 0.0, "workspace.yaml chooses no tier"
    code = "\n".join(python_blocks(path.read_text(errors="replace")))
    lacking = [f"{t} ({m})" for t, m in sorted(modules.items()) if not re.search(rf"\b{m}\b", code)]
    share = 1 - len(lacking) / len(modules)
    said = "" if not lacking else "no ```python block names " + ", ".join(lacking)
    return share, said
