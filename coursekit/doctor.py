"""Check the course's Phase 1.1 prerequisites: Python, torch, CUDA, packages, Rust, sandbox, RAM.

`run_checks` returns one `Check` row per prerequisite; `format_table`, `format_html`, `as_dicts`
and `to_json` render them; `doctor` wraps them in a `DoctorReport` that prints as a text table
and shows as an HTML table in Jupyter. Every look at the machine goes through a `Probes` field,
so tests simulate a missing rustc, a GPU, low RAM or a version mismatch with plain functions.

Used by `coursekit doctor [--json]` and the Phase 1 notebook (phase1_baseline).
"""

from __future__ import annotations

import html
import importlib.metadata
import json
import platform
import shutil
import subprocess
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path
from types import ModuleType
from typing import Literal

Status = Literal["OK", "WARN", "FAIL"]

GIB = 1024**3
REPO_ROOT = Path(__file__).resolve().parent.parent
PINNED_PACKAGES = ("transformers", "peft", "bitsandbytes", "accelerate")
MIN_RAM_GIB = 8.0
MIN_DISK_GIB = 5.0
NO_CUDA = "no CUDA GPU: training runs on CPU (slower); the course's defaults are sized for CPU"
NO_MODEL_FIX = (
    "restore it with `git checkout -- data/models`, rebuild it with `coursekit nano build` "
    "(about 40 minutes on 2 cores), or use --model tiny (random weights)"
)
REINSTALL = "`make baseline` reinstalls the pinned dependencies"
_SEVERITY: dict[str, int] = {"OK": 0, "WARN": 1, "FAIL": 2}
_COLORS: dict[str, str] = {"OK": "#1a7f37", "WARN": "#9a6700", "FAIL": "#cf222e"}


@dataclass(frozen=True, kw_only=True)
class Check:
    """One row of the doctor's table: a prerequisite, its status, what was found, how to fix it."""

    name: str
    """Short name of the prerequisite, e.g. ``"rustc"``."""
    status: Status
    """``"OK"``, ``"WARN"`` (works, but degraded) or ``"FAIL"`` (the course cannot run)."""
    detail: str
    """What was found: a version, a GPU name, a size."""
    fix: str = ""
    """What to do about a WARN or FAIL; empty when OK."""


def _package_version(name: str) -> str | None:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def _import_torch() -> ModuleType | None:
    try:
        import torch
    except ImportError:
        return None
    return torch


def _torch_version() -> str | None:
    torch = _import_torch()
    return None if torch is None else str(torch.__version__)


def _cuda_device() -> tuple[str, int] | None:
    torch = _import_torch()
    if torch is None or not torch.cuda.is_available():
        return None
    props = torch.cuda.get_device_properties(0)  # pragma: no cover - needs a GPU
    return props.name, int(props.total_memory)  # pragma: no cover - needs a GPU


def _coursekit_pins() -> dict[str, str]:
    try:
        requirements = importlib.metadata.requires("coursekit") or []
    except importlib.metadata.PackageNotFoundError:
        return {}
    return parse_pins(requirements)


def _run_version(executable: str) -> str | None:
    try:
        done = subprocess.run(
            [executable, "--version"], capture_output=True, text=True, timeout=10, check=True
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() or None


def _sandbox() -> tuple[Status, str, str]:
    from coursekit.evaluate.selftest import doctor_row  # runs the escape self-test, cached

    status, detail, fix = doctor_row()
    return ("OK" if status == "OK" else "WARN"), detail, fix


def _coverage() -> tuple[Status, str, str]:
    from coursekit.evaluate.coverage import doctor_row  # finds llvm-profdata/llvm-cov, cached

    return doctor_row()


def _memory() -> tuple[int, int]:
    import psutil

    memory = psutil.virtual_memory()
    return int(memory.total), int(memory.available)


def _disk_free(path: Path) -> int:
    existing = next((p for p in (path, *path.parents) if p.exists()), path.anchor or "/")
    return shutil.disk_usage(existing).free


@dataclass(frozen=True, kw_only=True)
class Probes:
    """The functions `run_checks` uses to look at the machine; replace any of them in tests."""

    python_version: Callable[[], str] = platform.python_version
    """Returns the running Python's version, e.g. ``"3.11.7"``."""
    torch_version: Callable[[], str | None] = _torch_version
    """Imports torch and returns its version, or None when it cannot be imported."""
    cuda_device: Callable[[], tuple[str, int] | None] = _cuda_device
    """Returns (name, total memory in bytes) of GPU 0, or None without CUDA."""
    package_version: Callable[[str], str | None] = _package_version
    """Returns an installed distribution's version, or None when it is missing."""
    pins: Callable[[], dict[str, str]] = _coursekit_pins
    """Returns coursekit's exact pins, {distribution name: version}."""
    which: Callable[[str], str | None] = shutil.which
    """Finds an executable on PATH, like `shutil.which`."""
    run_version: Callable[[str], str | None] = _run_version
    """Runs ``<executable> --version`` and returns its first output, or None on failure."""
    sandbox: Callable[[], tuple[Status, str, str]] = _sandbox
    """Runs the sandbox's escape self-test: (status, which layers hold or why not, fix)."""
    coverage: Callable[[], tuple[Status, str, str]] = _coverage
    """Finds LLVM tools for line coverage: (status, the tools or what is missing, fix)."""
    memory: Callable[[], tuple[int, int]] = _memory
    """Returns (total, available) RAM in bytes."""
    disk_free: Callable[[Path], int] = _disk_free
    """Returns the free bytes on the file system holding a path."""
    cargo_home: Path = field(default_factory=lambda: Path.home() / ".cargo" / "bin")
    """Where rustup installs rustc and cargo, searched after PATH."""
    models_dir: Path = REPO_ROOT / "data" / "models"
    """Where bundled pretrained models live, one directory each with a config.json."""


def parse_pins(requirements: Sequence[str]) -> dict[str, str]:
    """Computes {name: version} from ``name==version`` requirements, skipping extras and ranges.

    Example:
        >>> parse_pins(["peft==0.21.2", 'ruff==0.17.5; extra == "dev"', "numpy>=2"])
        {'peft': '0.21.2'}
    """
    pins = {}
    for requirement in requirements:
        spec, _, marker = requirement.partition(";")
        name, separator, version = spec.partition("==")
        if separator and "extra" not in marker:
            pins[name.strip().lower()] = version.strip()
    return pins


def _check_python(probes: Probes, disk_path: Path) -> Check:
    version = probes.python_version()
    if version.startswith("3.11."):
        return Check(name="Python", status="OK", detail=version)
    fix = "use the course env: `make baseline`, then `conda activate coursekit` (Python 3.11)"
    return Check(name="Python", status="FAIL", detail=f"{version} (3.11 required)", fix=fix)


def _check_version(name: str, version: str | None, probes: Probes) -> Check:
    if version is None:
        return Check(name=name, status="FAIL", detail="not installed", fix=REINSTALL)
    pin = probes.pins().get(name)
    if pin is not None and version.split("+")[0] != pin:  # 2.13.0+cpu matches the pin 2.13.0
        detail = f"{version} (coursekit pins {pin})"
        return Check(name=name, status="WARN", detail=detail, fix=REINSTALL)
    return Check(name=name, status="OK", detail=version)


def _check_torch(probes: Probes, disk_path: Path) -> Check:
    return _check_version("torch", probes.torch_version(), probes)


def _check_cuda(probes: Probes, disk_path: Path) -> Check:
    device = probes.cuda_device()
    if device is None:
        fix = "optional: a CUDA GPU and the CUDA build of torch make training faster"
        return Check(name="CUDA", status="WARN", detail=NO_CUDA, fix=fix)
    name, total = device
    return Check(name="CUDA", status="OK", detail=f"{name}, {total / GIB:.1f} GiB")


def _check_package(name: str, probes: Probes, disk_path: Path) -> Check:
    return _check_version(name, probes.package_version(name), probes)


def _find_tool(tool: str, probes: Probes) -> str | None:
    found = probes.which(tool)
    candidate = probes.cargo_home / tool
    return found if found is not None else str(candidate) if candidate.is_file() else None


def _check_rust_tool(
    tool: str, missing: Status, why: str, probes: Probes, disk_path: Path
) -> Check:
    executable = _find_tool(tool, probes)
    version = probes.run_version(executable) if executable is not None else None
    if version is not None:
        return Check(name=tool, status="OK", detail=f"{version} ({executable})")
    fix = f"install Rust with rustup (https://rustup.rs); {why}"
    where = "not found on PATH or in ~/.cargo/bin"
    detail = where if executable is None else f"`{executable} --version` failed"
    return Check(name=tool, status=missing, detail=detail, fix=fix)


def _check_probe(name: Literal["sandbox", "coverage"], probes: Probes, disk_path: Path) -> Check:
    status, detail, fix = getattr(probes, name)()
    return Check(name=name, status=status, detail=detail, fix=fix)


def _check_ram(probes: Probes, disk_path: Path) -> Check:
    total, available = probes.memory()
    detail = f"{total / GIB:.1f} GiB total, {available / GIB:.1f} GiB available"
    if total < MIN_RAM_GIB * GIB:
        fix = f"below {MIN_RAM_GIB:.0f} GiB: keep the defaults (tiny model, small batches)"
        return Check(name="RAM", status="WARN", detail=detail, fix=fix)
    return Check(name="RAM", status="OK", detail=detail)


def _check_disk(probes: Probes, disk_path: Path) -> Check:
    free = probes.disk_free(disk_path)
    detail = f"{free / GIB:.1f} GiB free at {disk_path}"
    if free < MIN_DISK_GIB * GIB:
        fix = f"free at least {MIN_DISK_GIB:.0f} GiB: models, checkpoints and runs/ need room"
        return Check(name="disk", status="WARN", detail=detail, fix=fix)
    return Check(name="disk", status="OK", detail=detail)


def _check_models(probes: Probes, disk_path: Path) -> Check:
    root = probes.models_dir
    configs = sorted(root.glob("*/config.json")) if root.is_dir() else []
    models = [config.parent.name for config in configs if config.is_file()]
    if not models:
        detail = f"the default model qwen2.5-coder-nano is missing from {root}"
        return Check(name="bundled models", status="WARN", detail=detail, fix=NO_MODEL_FIX)
    return Check(name="bundled models", status="OK", detail=", ".join(models))


CheckFunction = Callable[[Probes, Path], Check]
_CHECKS: tuple[CheckFunction, ...] = (
    _check_python,
    _check_torch,
    _check_cuda,
    *(partial(_check_package, name) for name in PINNED_PACKAGES),
    partial(_check_rust_tool, "rustc", "FAIL", "evaluation compiles the generated Rust tests"),
    partial(_check_rust_tool, "cargo", "WARN", "cargo is optional: rustc alone compiles the tests"),
    partial(_check_probe, "sandbox"),
    partial(_check_probe, "coverage"),
    _check_ram,
    _check_disk,
    _check_models,
)


def run_checks(*, disk_path: Path | None = None, probes: Probes | None = None) -> list[Check]:
    """Computes one `Check` per Phase 1.1 prerequisite, in the order the course lists them.

    Rows: Python, torch, CUDA, transformers, peft, bitsandbytes, accelerate, rustc, cargo,
    sandbox (the escape self-test of :mod:`coursekit.evaluate.selftest`), coverage (LLVM's
    tools for line coverage, :mod:`coursekit.evaluate.coverage`), RAM, disk and bundled models.

    Args:
        disk_path: Where free disk space is measured; defaults to the repository root.
        probes: How the machine is inspected; defaults to the real machine (`Probes()`).

    Example:
        >>> no_rust = Probes(which=lambda tool: None, cargo_home=Path("/nonexistent"))
        >>> [c.status for c in run_checks(probes=no_rust) if c.name == "rustc"]
        ['FAIL']
    """
    probes = probes if probes is not None else Probes()
    disk_path = disk_path if disk_path is not None else REPO_ROOT
    return [check(probes, disk_path) for check in _CHECKS]


def worst_status(checks: Sequence[Check]) -> Status:
    """Computes the most severe status among the checks (FAIL > WARN > OK; OK when empty).

    Example:
        >>> worst_status([Check(name="a", status="OK", detail=""),
        ...               Check(name="b", status="WARN", detail="", fix="f")])
        'WARN'
    """
    return max((c.status for c in checks), key=_SEVERITY.__getitem__, default="OK")


def as_dicts(checks: Sequence[Check]) -> list[dict[str, str]]:
    """Converts the checks into plain dicts with keys name, status, detail and fix.

    Example:
        >>> as_dicts([Check(name="torch", status="OK", detail="2.13.0")])
        [{'name': 'torch', 'status': 'OK', 'detail': '2.13.0', 'fix': ''}]
    """
    return [asdict(check) for check in checks]


def to_json(checks: Sequence[Check]) -> str:
    """Serializes the checks and their worst status as a JSON object (what ``--json`` prints).

    Example:
        >>> to_json([])
        '{"status": "OK", "checks": []}'
    """
    return json.dumps({"status": worst_status(checks), "checks": as_dicts(checks)})


def format_table(checks: Sequence[Check]) -> str:
    """Formats the checks as a fixed-width text table with columns check, status, detail, fix.

    Example:
        >>> print(format_table([Check(name="torch", status="OK", detail="2.13.0")]))
        check  status  detail  fix
        -----  ------  ------  ---
        torch  OK      2.13.0
    """
    header = ("check", "status", "detail", "fix")
    rows = [header, *((c.name, c.status, c.detail, c.fix) for c in checks)]
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    rows.insert(1, tuple("-" * width for width in widths))
    lines = ("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)) for row in rows)
    return "\n".join(line.rstrip() for line in lines)


def format_html(checks: Sequence[Check]) -> str:
    """Formats the checks as an HTML table whose status cells are colored green, amber or red.

    Example:
        >>> "color:#1a7f37" in format_html([Check(name="torch", status="OK", detail="2.13.0")])
        True
    """
    body = ["<tr>", *(f"<th>{title}</th>" for title in ("check", "status", "detail", "fix"))]
    body.append("</tr>")
    for c in checks:
        status = f"<td style='color:{_COLORS[c.status]};font-weight:bold'>{c.status}</td>"
        name, detail, fix = (html.escape(text) for text in (c.name, c.detail, c.fix))
        body.append(f"<tr><td>{name}</td>{status}<td>{detail}</td><td>{fix}</td></tr>")
    return "<table style='text-align:left'>" + "".join(body) + "</table>"


@dataclass(frozen=True, kw_only=True)
class DoctorReport:
    """The doctor's result: the checks, shown as a text table by `print` and as HTML in Jupyter."""

    checks: tuple[Check, ...]
    """The rows, in `run_checks` order."""

    @property
    def status(self) -> Status:
        """The most severe status among the checks."""
        return worst_status(self.checks)

    @property
    def ok(self) -> bool:
        """Whether no check failed (warnings allowed): the course can run."""
        return self.status != "FAIL"

    def __iter__(self) -> Iterator[Check]:
        return iter(self.checks)

    def __str__(self) -> str:
        return format_table(self.checks)

    def _repr_html_(self) -> str:
        return format_html(self.checks)


def doctor(print_table: bool = True, *, disk_path: Path | None = None) -> DoctorReport:
    """Computes the prerequisite checks for a notebook, printing the text table unless told not to.

    In Jupyter, ``doctor(print_table=False)`` as a cell's last line shows the HTML table instead.

    Args:
        print_table: Whether to print the text table.
        disk_path: Where free disk space is measured; defaults to the repository root.

    Example:
        >>> report = doctor(print_table=False)
        >>> report.checks[0].name
        'Python'
    """
    report = DoctorReport(checks=tuple(run_checks(disk_path=disk_path)))
    if print_table:
        print(report)
    return report
