"""``coursekit memory estimate|measure|validate`` and ``coursekit plan``."""

from __future__ import annotations

import json

import pytest
import torch

from coursekit.cli import main
from coursekit.recipes import memory_validate as validate_module
from coursekit.recipes.memory_validate import ValidationRow


@pytest.fixture(autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def run(capsys, *argv):
    code = main(list(argv))
    return code, capsys.readouterr().out


def test_estimate_json_reports_total_and_breakdown(capsys):
    code, out = run(
        capsys,
        "memory",
        "estimate",
        "--model",
        "qwen2.5-coder-0.5b",
        "--method",
        "lora",
        "--rank",
        "16",
        "--targets",
        "qv",
        "--json",
    )
    data = json.loads(out)
    assert code == 0
    assert data["trainable_parameters"] == 1_081_344
    assert data["base_weights"] == 988_065_536
    assert data["total_bytes"] == data["peak_bytes"] + data["overhead"]


def test_estimate_table_for_each_method(capsys):
    for method in ("full", "dora", "qlora"):
        code, out = run(
            capsys,
            "memory",
            "estimate",
            "--model",
            "tiny",
            "--method",
            method,
            "--targets",
            "q_proj,v_proj",
            "--grad-checkpointing",
            "--grad-accum",
            "2",
        )
        assert code == 0 and "total" in out and "GiB" in out


def test_measure_json_reports_peak_bytes(capsys):
    code, out = run(
        capsys,
        "memory",
        "measure",
        "--model",
        "tiny",
        "--batch-size",
        "1",
        "--seq-len",
        "16",
        "--steps",
        "1",
        "--json",
    )
    data = json.loads(out)
    assert code == 0 and data["peak_bytes"] > 0 and data["device"] == "cpu"
    code, out = run(
        capsys,
        "memory",
        "measure",
        "--model",
        "tiny",
        "--method",
        "full",
        "--batch-size",
        "1",
        "--seq-len",
        "16",
        "--steps",
        "1",
    )
    assert code == 0 and out.startswith("peak")


ROWS = [ValidationRow(name="x", estimated_bytes=101, measured_bytes=100, peak_phase="head")]


def test_validate_prints_the_table_and_worst_error(capsys, monkeypatch):
    monkeypatch.setattr(validate_module, "validate", lambda grid: ROWS)
    code, out = run(capsys, "memory", "validate")
    assert code == 0 and "worst |error| 1.0%" in out
    code, out = run(capsys, "memory", "validate", "--fast", "--json")
    assert code == 0 and json.loads(out)["worst_error"] == pytest.approx(0.01)
    bad = [ValidationRow(name="x", estimated_bytes=200, measured_bytes=100, peak_phase="head")]
    monkeypatch.setattr(validate_module, "validate", lambda grid: bad)
    assert run(capsys, "memory", "validate")[0] == 1


def test_plan_fits_and_does_not_fit(capsys):
    code, out = run(capsys, "plan", "--model", "qwen2.5-coder-7b", "--vram", "24", "--json")
    data = json.loads(out)
    assert code == 0 and data["fits"] and data["estimate"]["total_bytes"] <= 24 * 2**30
    code, out = run(capsys, "plan", "--model", "qwen2.5-coder-7b", "--vram", "16")
    assert code == 0 and "qlora" in out
    code, out = run(capsys, "plan", "--model", "qwen2.5-coder-32b", "--vram", "8", "--json")
    data = json.loads(out)
    assert code == 1 and not data["fits"] and data["dominant_term"] == "base_weights"
    code, out = run(capsys, "plan", "--model", "qwen2.5-coder-32b", "--vram", "8")
    assert code == 1 and "does not fit" in out


def test_model_directory_and_bad_model(capsys, tmp_path):
    from coursekit.tiny import tiny_qwen2_config

    tiny_qwen2_config().save_pretrained(tmp_path)
    code, out = run(capsys, "memory", "estimate", "--model", str(tmp_path), "--json")
    assert code == 0 and json.loads(out)["trainable_parameters"] > 0
    assert main(["plan", "--model", "nope", "--vram", "8"]) == 2
    assert "neither a preset nor a directory" in capsys.readouterr().err
