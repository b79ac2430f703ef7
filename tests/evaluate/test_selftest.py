"""Tests of coursekit.evaluate.selftest: the probe sees escapes where they happen, and says so."""

from __future__ import annotations

import os
import stat
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import SimpleNamespace

import pytest

from coursekit.evaluate import jail, runner, selftest
from coursekit.evaluate.runner import SandboxInputError
from coursekit.evaluate.selftest import LAYERS, Isolation, Layer, doctor_row, isolation, probe
from tests.evaluate.layers import REQUIRED


def test_isolation_is_probed_once_per_process() -> None:
    with ThreadPoolExecutor(max_workers=4) as pool:  # as compile_and_test_many's threads do
        reports = list(pool.map(lambda _: isolation(), range(4)))
    assert all(report is isolation() for report in reports)
    report = isolation()
    assert tuple(layer.name for layer in report.layers) == LAYERS
    assert all(layer.detail for layer in report.layers)
    assert bool(report.missing) == bool(report.fix)
    assert report.backend in jail.BACKENDS and report.seconds > 0


def test_bubblewrap_as_root_holds_every_layer() -> None:
    if isolation().backend != "bubblewrap" or not jail.is_root():
        reason = (
            f"needs bubblewrap run by root; here: {isolation().version}, uid {os.geteuid()}"
            f" ({isolation().fix or jail.INSTALL_BWRAP})"
        )
        if REQUIRED:
            pytest.fail(reason)
        pytest.skip(reason)
    report = isolation()
    assert report.missing == () and report.fix == ""
    assert "host uid 65534" in report.why("unprivileged")


def test_without_a_sandbox_every_escape_is_seen() -> None:
    report = probe("none")
    assert report.backend == "none"
    assert {"unprivileged", "filesystem", "network", "processes"} <= set(report.missing)
    assert "forced by COURSEKIT_SANDBOX=none" in report.fix
    status, detail, fix = doctor_row(report)
    assert status == "WARN" and "filesystem (" in detail and "network (" in detail
    assert fix == report.fix


def test_unshare_fallback() -> None:
    reason = jail.available("unshare")
    if reason:
        pytest.skip(reason)
    report = probe("unshare")
    assert report.holds("filesystem") and report.holds("network") and report.holds("cleanup")
    if jail.is_root():  # root stays uid 0 (without capabilities) under unshare
        assert not report.holds("unprivileged") and "host uid 0" in report.why("unprivileged")


def test_missing_bubblewrap_is_named_with_its_package(monkeypatch: pytest.MonkeyPatch) -> None:
    real_which = jail.shutil.which
    monkeypatch.setattr(
        jail.shutil, "which", lambda name: None if name == "bwrap" else real_which(name)
    )
    monkeypatch.delenv(selftest.ENV_BACKEND, raising=False)
    assert jail.available("bubblewrap") == "bwrap missing: apt-get install bubblewrap"
    report = probe()
    assert report.backend in {"unshare", "none"}
    if jail.is_root():  # uid 0 stays: the unprivileged layer is missing, and the fix says why
        assert "unprivileged" in report.missing
    if report.missing:
        assert "bwrap missing: apt-get install bubblewrap" in report.fix
        assert "apt-get install bubblewrap" in doctor_row(report)[2]


def test_a_bwrap_that_cannot_start_is_reported(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    fake = tmp_path / "bwrap"
    fake.write_text("#!/bin/sh\necho 'bwrap: No permissions to create new namespace' >&2\nexit 1\n")
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{tmp_path}:{os.environ['PATH']}")
    reason = jail.available("bubblewrap")
    assert reason.startswith("bwrap cannot make its namespaces here")
    assert "No permissions to create new namespace" in reason


def test_an_unknown_forced_backend_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(selftest.ENV_BACKEND, "docker")
    with pytest.raises(SandboxInputError, match="COURSEKIT_SANDBOX='docker' is not a sandbox"):
        probe()


def test_doctor_row_ok_and_warn(monkeypatch: pytest.MonkeyPatch) -> None:
    held = tuple(Layer(name=name, enforced=True, detail=f"{name} ok") for name in LAYERS)
    report = Isolation(
        backend="bubblewrap",
        version="bubblewrap 0.8.0",
        layers=held,
        fix="",
        pids_cgroup=None,
        seconds=0.3,
    )
    assert doctor_row(report) == (
        "OK",
        "bubblewrap 0.8.0: unprivileged, filesystem, network, processes, limits, cleanup hold "
        "(unprivileged ok; self-test 0.3 s)",
        "",
    )

    def broken() -> Isolation:
        raise SandboxInputError("COURSEKIT_SANDBOX='x' is not a sandbox backend")

    monkeypatch.setattr(selftest, "isolation", broken)
    assert doctor_row() == (
        "WARN",
        "COURSEKIT_SANDBOX='x' is not a sandbox backend",
        "unset COURSEKIT_SANDBOX",
    )


def test_jail_wrappers() -> None:
    work = Path("/tmp/coursekit-work")
    assert jail.wrap("none", ["true"], work=work, readable=()) == ["true"]
    wrapped = jail.wrap("unshare", ["true"], work=work, readable=())
    assert wrapped[0] == "unshare" and wrapped[-2:] == [str(work), "true"]
    toolchain = Path("/opt/toolchain/rust")
    bwrap = jail.wrap("bubblewrap", ["true"], work=work, readable=[toolchain, Path("/usr/lib")])
    assert bwrap[-1] == "true" and "--unshare-net" in bwrap and "--die-with-parent" in bwrap
    assert ["--ro-bind", str(toolchain), str(toolchain)] == bwrap[
        bwrap.index(str(toolchain)) - 1 : bwrap.index(str(toolchain)) + 2
    ]
    assert ["--bind", str(work), str(work)] == bwrap[
        bwrap.index("--bind") : bwrap.index("--bind") + 3
    ]
    assert bwrap.count("/usr/lib") == 0  # under /usr: bound already
    assert jail.version("none") == "none"


def test_the_audited_escapes_are_seen_when_root_keeps_its_capabilities(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The sandbox before this module: namespaces and read-only remounts, but the command ran
    # as root with every capability. The audit remounted / read-write and raised pids.max;
    # the self-test must see both (the remounts stay inside the run's mount namespace).
    if not jail.is_root() or jail.available("unshare"):
        pytest.skip("needs root and a working unshare")
    drop = "setpriv --inh-caps=-all --bounding-set=-all --no-new-privs -- "
    assert drop in jail._READ_ONLY
    monkeypatch.setattr(jail, "_READ_ONLY", jail._READ_ONLY.replace(drop, ""))
    report = probe("unshare")
    assert {"unprivileged", "filesystem", "processes"} <= set(report.missing), report.layers
    assert "processes started under max_processes=8" in report.why("processes")


def test_a_limit_left_liftable_is_seen(monkeypatch: pytest.MonkeyPatch) -> None:
    # Hard limits left at infinity (soft ones set): raising them needs no privilege, and the
    # self-test must notice. (The fork inherits the patched module.)
    real = runner.resource

    def soft_only(kind: int, limits: tuple[int, int]) -> None:
        real.setrlimit(kind, (limits[0], real.RLIM_INFINITY))

    shim = SimpleNamespace(**{name: getattr(real, name) for name in dir(real) if name.isupper()})
    shim.setrlimit = soft_only
    monkeypatch.setattr(runner, "resource", shim)
    report = probe()
    assert "limits" in report.missing
    assert "a hard rlimit was raised from inside" in report.why("limits")
