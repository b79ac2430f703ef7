"""verify_run: a genuine run verifies; edits, a swapped adapter and copied metrics fail, named.

The re-runs start a fresh interpreter each (about 10 s on an idle 2-core machine, mostly
importing torch and transformers), so only two tests spawn one; the others check the parts.
"""

from __future__ import annotations

import json
import shutil

import pytest
from hypothesis import given
from hypothesis import strategies as st

from coursekit.data.corpus import seed_dir
from coursekit.errors import CoursekitError
from coursekit.grading.evidence import (
    Tolerance,
    check_files,
    compare_losses,
    find_data,
    recorded_losses,
    verify_run,
)
from coursekit.grading.manifest import MANIFEST, line_digests, read_manifest, sha256_file
from coursekit.train.callbacks import read_metrics


def rehash(run) -> None:
    """What a careful forger does after editing: recompute the manifest's digests."""
    manifest = read_manifest(run)
    manifest["files"] = {name: sha256_file(run / name) for name in manifest["files"]}
    manifest["metrics_lines"] = line_digests(run / "metrics.jsonl")
    (run / MANIFEST).write_text(json.dumps(manifest))


def edit_loss(run, step: int, delta: float) -> None:
    rows = read_metrics(run / "metrics.jsonl")
    for row in rows:
        if row["step"] == step and "loss" in row:
            row["loss"] += delta
    (run / "metrics.jsonl").write_text("".join(json.dumps(r, sort_keys=True) + "\n" for r in rows))


def statuses(report) -> dict[str, str]:
    return {check["check"]: check["status"] for check in report["checks"]}


@pytest.fixture(scope="module")
def genuine_report(nano_runs):
    return verify_run(nano_runs[0], steps=3)


@pytest.mark.slow
def test_a_genuine_run_verifies(genuine_report) -> None:
    assert statuses(genuine_report) == {"files": "ok", "data": "ok", "metrics": "ok", "rerun": "ok"}
    assert genuine_report["ok"] is True
    rerun = next(c for c in genuine_report["checks"] if c["check"] == "rerun")
    assert len(rerun["numbers"]["rerun"]) == 3
    assert rerun["numbers"]["max_abs_diff"] == 0.0  # same machine, same threads: bitwise
    assert json.loads(json.dumps(genuine_report)) == genuine_report


@pytest.mark.slow
def test_metrics_from_a_run_with_another_seed_fail_at_step_one(run_copy, nano_runs) -> None:
    run = run_copy(0)
    shutil.copy(nano_runs[1] / "metrics.jsonl", run / "metrics.jsonl")
    rehash(run)  # the hashes now agree: only the re-run can tell
    report = verify_run(run, steps=3)
    assert statuses(report) == {"files": "ok", "data": "ok", "metrics": "ok", "rerun": "failed"}
    message = next(c["message"] for c in report["checks"] if c["check"] == "rerun")
    assert message.startswith("metrics.jsonl: the losses do not reproduce at step 1 (recorded")
    assert "not this run's" in message and report["ok"] is False


@pytest.mark.slow
def test_an_edited_and_rehashed_loss_fails_the_rerun_at_its_step(run_copy, genuine_report) -> None:
    run = run_copy(0)
    edit_loss(run, 2, -0.05)
    rehash(run)
    assert check_files(run, read_manifest(run))["status"] == "ok"
    losses, problem = recorded_losses(run, 3)
    # the re-run depends only on the manifest and the data, which the edit left as they were
    rerun = next(c for c in genuine_report["checks"] if c["check"] == "rerun")
    check = compare_losses(losses, rerun["numbers"]["rerun"], Tolerance())
    assert problem is None and check["status"] == "failed"
    assert "do not reproduce at step 2 " in check["message"]


def test_an_edited_loss_is_named_by_line_and_step(run_copy) -> None:
    run = run_copy(0)
    edit_loss(run, 2, 1e-9)  # far below any tolerance: the hash still sees it
    check = check_files(run, read_manifest(run))
    assert check["status"] == "failed"
    assert check["message"].startswith("metrics.jsonl: SHA-256 differs from manifest.json (")
    # line 1 is the validation row of step 0, line 2 step 1's
    assert check["message"].endswith("line 3 (step 2) was edited after the run")


def test_removed_metrics_lines_are_named(run_copy) -> None:
    run = run_copy(0)
    lines = (run / "metrics.jsonl").read_text().splitlines(keepends=True)
    (run / "metrics.jsonl").write_text("".join(lines[:2]))
    message = check_files(run, read_manifest(run))["message"]
    assert message.endswith("lines 3… recorded by the run were removed"), message


def test_a_swapped_adapter_fails(run_copy, nano_runs) -> None:
    run = run_copy(0)
    name = "adapter/adapter_model.safetensors"
    shutil.copy(nano_runs[1] / name, run / name)
    check = check_files(run, read_manifest(run))
    assert check["status"] == "failed"
    assert check["message"].startswith(f"{name}: SHA-256 differs from manifest.json (")
    assert check["message"].endswith("; the adapter is not the one this run trained")
    (run / name).unlink()
    assert check_files(run, read_manifest(run))["message"] == (
        f"{name}: missing, but manifest.json recorded it"
    )


def test_an_edited_config_and_a_path_outside_the_run_fail(run_copy) -> None:
    run = run_copy(0)
    with (run / "config.yaml").open("a") as handle:
        handle.write("# edited\n")
    assert check_files(run, read_manifest(run))["message"].endswith(
        "the file was edited after the run"
    )
    manifest = read_manifest(run)
    manifest["files"] = {"../../etc/passwd": "0" * 64}
    assert "outside the run" in check_files(run, manifest)["message"]


def test_data_that_cannot_be_found_fails_without_a_rerun(run_copy, tmp_path) -> None:
    run = run_copy(0)
    manifest = read_manifest(run)
    assert find_data(manifest) == seed_dir().resolve()
    manifest["data"] = {**manifest["data"], "dir": str(tmp_path / "gone"), "sha256": "f" * 64}
    (run / MANIFEST).write_text(json.dumps(manifest))
    report = verify_run(run, steps=2)  # no re-run is started: this returns at once
    assert statuses(report)["data"] == "failed" and statuses(report)["rerun"] == "failed"
    assert "pass their folder in data_dirs" in report["checks"][1]["message"]


def test_missing_losses_and_a_missing_manifest(run_copy, tmp_path) -> None:
    run = run_copy(0)
    assert recorded_losses(run, 9) == ([], "metrics.jsonl has no loss for step 5")
    (run / "metrics.jsonl").write_text('{"step": 1, "loss": 2.0}\nnot json\n')
    assert recorded_losses(run, 1)[1] == "metrics.jsonl:2: not a metrics row with step and loss"
    (run / MANIFEST).unlink()
    with pytest.raises(CoursekitError, match=r"manifest\.json: missing; the run was not written"):
        verify_run(run)
    with pytest.raises(ValueError, match="steps must be >= 1"):
        verify_run(run, steps=0)


def test_tolerance_is_validated() -> None:
    with pytest.raises(ValueError, match=r"Tolerance\.rtol must be >= 0"):
        Tolerance(rtol=-1)
    with pytest.raises(ValueError, match=r"Tolerance\.atol"):
        Tolerance(atol=float("nan"))


finite = st.floats(0, 20, allow_nan=False)


@given(st.lists(st.tuples(finite, finite), min_size=1, max_size=6), finite.map(lambda x: x / 100))
def test_compare_losses_fails_at_the_first_step_out_of_tolerance(pairs, rtol) -> None:
    tolerance = Tolerance(rtol=rtol, atol=1e-4)
    recorded, rerun = [a for a, _ in pairs], [b for _, b in pairs]
    check = compare_losses(recorded, rerun, tolerance)
    bad = [k for k, (a, b) in enumerate(pairs, 1) if abs(a - b) > 1e-4 + rtol * abs(b)]
    assert (check["status"] == "ok") == (not bad)
    if bad:
        assert f"do not reproduce at step {bad[0]} " in check["message"]


def test_a_shorter_rerun_fails_at_the_first_missing_step() -> None:
    check = compare_losses([2.0, 1.9], [2.0], Tolerance())
    assert "at step 2 " in check["message"] and check["numbers"]["rerun"] == [2.0, None]
