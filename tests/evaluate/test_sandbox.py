"""Tests of coursekit.evaluate.sandbox's API: runs, limits, readable paths, honest results.

The attacks themselves are in test_hostile.py; the self-test in test_selftest.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from coursekit.corpus.verify import verify_samples
from coursekit.data.corpus import Sample
from coursekit.evaluate import pids_cgroup, sandbox
from coursekit.evaluate.rust import RustNotFoundError, find_rustc
from coursekit.evaluate.sandbox import SandboxLimits, isolation, run_sandboxed
from coursekit.evaluate.selftest import LAYERS, Isolation, Layer
from tests.evaluate.layers import REQUIRED


def run(command: str, tmp_path: Path, **limits: object) -> sandbox.SandboxResult:
    return run_sandboxed(["sh", "-c", command], directory=tmp_path, limits=SandboxLimits(**limits))


def test_plain_command_runs_in_its_directory(tmp_path: Path) -> None:
    result = run('pwd; echo "$HOME"; echo made > here.txt', tmp_path)
    assert result.exit_code == 0 and result.limits_hit == ()
    assert result.output.split() == [str(tmp_path.resolve())] * 2
    assert (tmp_path / "here.txt").read_text() == "made\n"
    assert list(tmp_path.parent.glob(f".{tmp_path.name}.*.log")) == []
    assert result.backend == isolation().backend


def test_environment_is_scrubbed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COURSEKIT_SECRET", "leak")
    result = run_sandboxed(["env"], directory=tmp_path, env={"EXTRA": "1"})
    assert "COURSEKIT_SECRET" not in result.output and "EXTRA=1" in result.output


def test_cpu_limit(tmp_path: Path) -> None:
    result = run("while :; do :; done", tmp_path, wall_seconds=8, cpu_seconds=1)
    assert not result.timed_out and "cpu" in result.limits_hit
    assert result.wall_seconds < 6


def test_wall_limit_kills_the_group(tmp_path: Path) -> None:
    result = run("sleep 30 & while :; do :; done", tmp_path, wall_seconds=1.0)
    assert result.timed_out and result.exit_code is None and "wall" in result.limits_hit
    assert 1.0 <= result.wall_seconds < 5


def test_output_flood_is_capped(tmp_path: Path) -> None:
    result = run("yes flood", tmp_path, output_bytes=64 * 1024)
    assert "output" in result.limits_hit
    assert result.output_bytes <= 64 * 1024
    assert "bytes of output truncated" in result.output


def test_readable_paths_are_read_only_and_the_rest_is_hidden(tmp_path: Path) -> None:
    if isolation().backend != "bubblewrap":
        message = f"only bubblewrap hides paths ({isolation().backend} here): " + (
            isolation().fix or "apt-get install bubblewrap"
        )
        if REQUIRED:
            pytest.fail(message)
        pytest.skip(message)
    shown, hidden, work = tmp_path / "shown", tmp_path / "hidden", tmp_path / "work"
    for directory in (shown, hidden, work):
        directory.mkdir()
        (directory / "note.txt").write_text(f"{directory.name}\n")
    result = run_sandboxed(
        ["sh", "-c", f"cat {shown}/note.txt {hidden}/note.txt; ls {Path.home()}"],
        directory=work,
        readable=[shown],
    )
    assert "shown\n" in result.output and "hidden\n" not in result.output
    assert f"{hidden}/note.txt: No such file or directory" in result.output
    if not tmp_path.is_relative_to(Path.home()):  # else its parents must exist inside
        assert f"{Path.home()}': No such file or directory" in result.output


def fake_isolation(enforced: bool, cgroup: Path | None) -> Isolation:
    layers = tuple(Layer(name=name, enforced=enforced, detail="fake") for name in LAYERS)
    return Isolation(
        backend="none", version="none", layers=layers, fix="", pids_cgroup=cgroup, seconds=0.0
    )


def test_result_claims_only_what_the_self_test_saw(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sandbox, "isolation", lambda: fake_isolation(False, None))
    result = run("echo plain", tmp_path)
    assert result.output == "plain\n" and result.backend == "none"
    claims = (result.network_isolated, result.filesystem_isolated, result.processes_limited)
    assert (*claims, result.unprivileged) == (False, False, False, False)


def test_no_cgroup_means_no_process_claim(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sandbox, "isolation", lambda: fake_isolation(True, None))
    result = run("echo plain", tmp_path)
    assert result.network_isolated and result.filesystem_isolated and result.unprivileged
    assert not result.processes_limited


def test_build_goes_on_after_an_attack() -> None:
    try:
        find_rustc()
    except RustNotFoundError as error:
        pytest.skip(str(error))
    good = Sample(
        id="ok/f",
        crate="ok",
        version="1",
        license="MIT",
        path="src/lib.rs",
        function="pub fn f() -> u8 { 1 }",
        tests="#[cfg(test)]\nmod tests {\n    use super::*;\n"
        "    #[test]\n    fn t() { assert_eq!(f(), 1); }\n}",
    )
    bad = Sample(
        id="bad/f",
        crate="bad",
        version="1",
        license="MIT",
        path="src/lib.rs",
        function="pub fn f() {}",
        tests="#[test]\nfn spin() { loop { std::hint::spin_loop(); } }",
    )
    verified = verify_samples([bad, good], jobs=2, timeout_s=1.5)
    assert [s.verified for s in verified] == [False, True]


def test_pids_cgroup_helpers_on_a_plain_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(pids_cgroup, "ROOTS", (tmp_path / "missing", tmp_path))
    assert pids_cgroup.find_root() is None  # a child can be made but has no pids.max
    assert list(tmp_path.iterdir()) == []
    pids_cgroup.remove(None)
    pids_cgroup.remove(tmp_path / "gone")
    fake = tmp_path / "group"
    fake.mkdir()
    (fake / "cgroup.procs").write_text("")
    assert pids_cgroup.kill_all(fake) == 0 and pids_cgroup.kill_all(None) == 0
    (fake / "pids.events").write_text("max 3\n")
    assert pids_cgroup.refused_forks(fake) == 3
