"""Tests for coursekit.doctor: every row's OK/WARN/FAIL branch through injected probes."""

from __future__ import annotations

import json
import stat
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from coursekit import doctor as doctor_module
from coursekit.doctor import (
    GIB,
    NO_CUDA,
    Check,
    DoctorReport,
    Probes,
    as_dicts,
    doctor,
    format_html,
    format_table,
    parse_pins,
    run_checks,
    to_json,
    worst_status,
)

ROW_NAMES = [
    "Python",
    "torch",
    "CUDA",
    "transformers",
    "peft",
    "bitsandbytes",
    "accelerate",
    "rustc",
    "cargo",
    "sandbox",
    "coverage",
    "RAM",
    "disk",
    "bundled models",
]
PINS = {"torch": "2.13.0", "transformers": "5.23.0", "peft": "0.21.2", "accelerate": "1.15.0"}
INSTALLED = {**PINS, "bitsandbytes": "0.50.2"}


@pytest.fixture
def healthy(tmp_path: Path) -> Probes:
    """A machine where every check passes: a GPU, Rust on PATH, plenty of RAM and disk."""
    models = tmp_path / "models"
    (models / "nano").mkdir(parents=True)
    (models / "nano" / "config.json").write_text("{}")
    return Probes(
        python_version=lambda: "3.11.7",
        torch_version=lambda: "2.13.0+cu126",
        cuda_device=lambda: ("NVIDIA H100", 80 * GIB),
        package_version=INSTALLED.get,
        pins=lambda: PINS,
        which=lambda tool: f"/usr/bin/{tool}",
        run_version=lambda exe: f"{Path(exe).name} 1.95.0",
        sandbox=lambda: ("OK", "bubblewrap 0.8.0: every layer holds", ""),
        coverage=lambda: ("OK", "line coverage: LLVM 22 tools /usr/bin/llvm-cov-22", ""),
        memory=lambda: (32 * GIB, 20 * GIB),
        disk_free=lambda path: 100 * GIB,
        cargo_home=tmp_path / "no-cargo",
        models_dir=models,
    )


def row(probes: Probes, name: str, disk_path: Path | None = None) -> Check:
    return {c.name: c for c in run_checks(probes=probes, disk_path=disk_path)}[name]


def test_healthy_machine_is_all_ok(healthy: Probes) -> None:
    checks = run_checks(probes=healthy)
    assert [c.name for c in checks] == ROW_NAMES
    assert {c.status for c in checks} == {"OK"}
    assert all(c.fix == "" for c in checks)
    assert worst_status(checks) == "OK"


@pytest.mark.parametrize(("version", "status"), [("3.11.0", "OK"), ("3.12.1", "FAIL")])
def test_python_needs_311(healthy: Probes, version: str, status: str) -> None:
    check = row(replace(healthy, python_version=lambda: version), "Python")
    assert (check.status, check.detail.split()[0]) == (status, version)
    if status == "FAIL":
        assert "make baseline" in check.fix and "conda" in check.fix


def test_torch_missing_fails_and_local_version_matches_pin(healthy: Probes) -> None:
    assert row(healthy, "torch").detail == "2.13.0+cu126"
    check = row(replace(healthy, torch_version=lambda: None), "torch")
    assert check.status == "FAIL" and "make baseline" in check.fix
    check = row(replace(healthy, torch_version=lambda: "2.12.0"), "torch")
    assert check.status == "WARN" and "2.13.0" in check.detail


def test_cuda_reports_gpu_or_warns_on_cpu(healthy: Probes) -> None:
    check = row(healthy, "CUDA")
    assert check.status == "OK" and check.detail == "NVIDIA H100, 80.0 GiB"
    check = row(replace(healthy, cuda_device=lambda: None), "CUDA")
    assert check.status == "WARN" and check.detail == NO_CUDA and check.fix


@pytest.mark.parametrize("package", ["transformers", "peft", "bitsandbytes", "accelerate"])
def test_missing_package_fails(healthy: Probes, package: str) -> None:
    installed = {k: v for k, v in INSTALLED.items() if k != package}
    check = row(replace(healthy, package_version=installed.get), package)
    assert check.status == "FAIL" and "make baseline" in check.fix


def test_version_mismatch_warns_and_unpinned_is_ok(healthy: Probes) -> None:
    probes = replace(healthy, package_version={**INSTALLED, "peft": "0.20.0"}.get)
    check = row(probes, "peft")
    assert check.status == "WARN"
    assert check.detail == "0.20.0 (coursekit pins 0.21.2)" and "make baseline" in check.fix
    assert row(healthy, "bitsandbytes").status == "OK"  # not in PINS: nothing to compare


def test_rust_missing_fails_rustc_but_only_warns_cargo(healthy: Probes) -> None:
    probes = replace(healthy, which=lambda tool: None)
    rustc, cargo = row(probes, "rustc"), row(probes, "cargo")
    assert (rustc.status, cargo.status) == ("FAIL", "WARN")
    assert "rustup" in rustc.fix and "compiles" in rustc.fix
    assert "~/.cargo/bin" in rustc.detail


def test_rust_found_in_cargo_home_when_not_on_path(healthy: Probes, tmp_path: Path) -> None:
    cargo_home = tmp_path / "cargo-bin"
    cargo_home.mkdir()
    (cargo_home / "rustc").write_text("")
    probes = replace(healthy, which=lambda tool: None, cargo_home=cargo_home)
    check = row(probes, "rustc")
    assert check.status == "OK" and str(cargo_home / "rustc") in check.detail
    assert row(probes, "cargo").status == "WARN"


def test_rust_that_cannot_report_its_version_fails(healthy: Probes) -> None:
    check = row(replace(healthy, run_version=lambda exe: None), "rustc")
    assert check.status == "FAIL" and "/usr/bin/rustc --version" in check.detail


def test_sandbox_row_names_the_missing_layer_and_the_fix(healthy: Probes) -> None:
    warn = (
        "WARN",
        "unshare: not enforced: unprivileged (host uid 0)",
        "apt-get install bubblewrap",
    )
    check = row(replace(healthy, sandbox=lambda: warn), "sandbox")
    assert (check.status, check.detail, check.fix) == warn
    assert row(healthy, "sandbox").status == "OK"


def test_real_sandbox_probe_is_one_row() -> None:
    status, detail, fix = Probes().sandbox()
    assert status in {"OK", "WARN"} and detail
    assert (fix == "") == (status == "OK")
    if status == "WARN":
        assert "not enforced" in detail or "COURSEKIT_SANDBOX" in detail


def test_coverage_row_says_which_llvm_to_install(healthy: Probes) -> None:
    hint = "install llvm-22 (rustc 1.95.0 uses LLVM 22): Debian package llvm-22, or ..."
    warn = ("WARN", "line coverage unavailable: LLVM 14 tools at /usr/bin/llvm-cov", hint)
    check = row(replace(healthy, coverage=lambda: warn), "coverage")
    assert (check.status, check.detail, check.fix) == warn
    assert row(healthy, "coverage").status == "OK"


def test_real_coverage_probe_is_one_row() -> None:
    status, detail, fix = Probes().coverage()
    assert status in {"OK", "WARN"} and detail.startswith("line coverage")
    assert (fix == "") == (status == "OK")
    if status == "WARN":
        assert fix.startswith(("install llvm-", "install Rust"))


@pytest.mark.parametrize(("total", "status"), [(4 * GIB, "WARN"), (8 * GIB, "OK")])
def test_low_ram_warns(healthy: Probes, total: int, status: str) -> None:
    check = row(replace(healthy, memory=lambda: (total, GIB)), "RAM")
    assert check.status == status and "1.0 GiB available" in check.detail
    assert bool(check.fix) == (status == "WARN")


@pytest.mark.parametrize(("free", "status"), [(GIB, "WARN"), (5 * GIB, "OK")])
def test_low_disk_warns(healthy: Probes, tmp_path: Path, free: int, status: str) -> None:
    seen = []
    probes = replace(healthy, disk_free=lambda path: seen.append(path) or free)
    check = row(probes, "disk", disk_path=tmp_path)
    assert check.status == status and str(tmp_path) in check.detail and seen == [tmp_path]


def test_disk_defaults_to_repo_root(healthy: Probes) -> None:
    repo_root = Path(doctor_module.__file__).resolve().parent.parent
    assert row(healthy, "disk").detail.endswith(str(repo_root))


def test_bundled_models_listed_or_warned(healthy: Probes, tmp_path: Path) -> None:
    (healthy.models_dir / "aaa").mkdir()  # no config.json: not a model
    (healthy.models_dir / "aaa" / "weights.bin").write_text("")
    assert row(healthy, "bundled models").detail == "nano"
    for models_dir in (tmp_path / "missing", tmp_path / "no-cargo"):
        check = row(replace(healthy, models_dir=models_dir), "bundled models")
        assert check.status == "WARN" and "--model tiny" in check.fix
    (healthy.models_dir / "aaa" / "config.json").write_text("{}")
    assert row(healthy, "bundled models").detail == "aaa, nano"


def test_default_models_dir_is_data_models_at_repo_root() -> None:
    repo_root = Path(doctor_module.__file__).resolve().parent.parent
    assert Probes().models_dir == repo_root / "data" / "models"


def test_parse_pins_keeps_exact_runtime_pins() -> None:
    requirements = ["Peft == 0.21.2", 'ruff==0.17.5; extra == "dev"', "numpy>=2", "x==1; os_name"]
    assert parse_pins(requirements) == {"peft": "0.21.2", "x": "1"}


def test_worst_status_orders_fail_over_warn_over_ok() -> None:
    ok, warn, fail = (Check(name=s, status=s, detail="") for s in ("OK", "WARN", "FAIL"))
    assert worst_status([]) == "OK"
    assert worst_status([ok, warn, ok]) == "WARN"
    assert worst_status([warn, fail, ok]) == "FAIL"


def test_json_and_dicts_round_trip(healthy: Probes) -> None:
    checks = run_checks(probes=replace(healthy, which=lambda tool: None))
    payload = json.loads(to_json(checks))
    assert payload["status"] == "FAIL"
    assert payload["checks"] == as_dicts(checks)
    assert [Check(**d) for d in payload["checks"]] == checks


def test_format_table_aligns_columns(healthy: Probes) -> None:
    checks = run_checks(probes=replace(healthy, cuda_device=lambda: None))
    lines = format_table(checks).splitlines()
    assert lines[0].split() == ["check", "status", "detail", "fix"]
    assert set(lines[1].replace(" ", "")) == {"-"}
    assert len(lines) == len(checks) + 2
    status_column = lines[0].index("status")
    for line, check in zip(lines[2:], checks, strict=True):
        assert line.startswith(check.name)
        assert line[status_column:].startswith(check.status)
        assert line.rstrip() == line
    assert NO_CUDA in format_table(checks)


def test_format_html_escapes_and_colors() -> None:
    checks = [
        Check(name="<b>", status="FAIL", detail="a & b", fix="fix it"),
        Check(name="ok", status="OK", detail="fine"),
    ]
    page = format_html(checks)
    assert "&lt;b&gt;" in page and "a &amp; b" in page and "<b>" not in page
    assert page.count("<tr>") == 3 and "#cf222e" in page and "#1a7f37" in page


def test_report_wraps_checks_for_print_and_jupyter() -> None:
    warn = Check(name="CUDA", status="WARN", detail=NO_CUDA, fix="optional")
    report = DoctorReport(checks=(warn,))
    assert report.ok and report.status == "WARN" and list(report) == [warn]
    assert str(report) == format_table([warn])
    assert report._repr_html_() == format_html([warn])
    failed = DoctorReport(checks=(warn, Check(name="rustc", status="FAIL", detail="", fix="x")))
    assert not failed.ok


def test_real_machine_gives_a_row_per_check(capsys: pytest.CaptureFixture[str]) -> None:
    report = doctor()
    printed = capsys.readouterr().out
    assert [c.name for c in report] == ROW_NAMES
    assert all(c.status in {"OK", "WARN", "FAIL"} for c in report)
    assert all(c.fix == "" for c in report if c.status == "OK")
    assert all(c.fix for c in report if c.status != "OK")
    assert report.checks[0].status == "OK"  # the suite itself runs on the course's Python
    assert report.checks[1].status in {"OK", "WARN"}  # torch imports (a dev build may differ)
    assert printed.strip() == str(report)
    doctor(print_table=False, disk_path=Path(sys.prefix))
    assert capsys.readouterr().out == ""


def test_real_probes_handle_missing_things(tmp_path: Path) -> None:
    probes = Probes()
    assert probes.package_version("surely-not-installed-xyz") is None
    assert probes.pins()["transformers"]
    assert probes.run_version(str(tmp_path / "missing")) is None
    failing = tmp_path / "failing"
    failing.write_text("#!/bin/sh\nexit 3\n")
    failing.chmod(failing.stat().st_mode | stat.S_IXUSR)
    assert probes.run_version(str(failing)) is None
    assert probes.run_version(sys.executable).startswith("Python 3.")
    assert probes.disk_free(tmp_path / "not" / "yet") > 0
    total, available = probes.memory()
    assert total >= available > 0


def test_real_probes_without_torch(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "torch", None)  # makes `import torch` raise ImportError
    assert Probes().torch_version() is None
    assert Probes().cuda_device() is None


def test_real_cuda_probe_matches_torch() -> None:
    import torch

    device = Probes().cuda_device()
    assert (device is not None) == torch.cuda.is_available()


def test_pins_empty_when_coursekit_metadata_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    def missing(name: str) -> list[str]:
        raise doctor_module.importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(doctor_module.importlib.metadata, "requires", missing)
    assert Probes().pins() == {}
