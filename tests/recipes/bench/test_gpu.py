"""``coursekit bench --gpu``'s logic on the CPU: preset shape, config, plan, fit, report, skip.

No GPU runs here (CI has none). The dry run goes through the real code end to end on the
tiny model, with the children run in this process (``in_process``) to keep it fast; the
child entry points are exercised on their own. The overhead fit is tested on synthetic
measurements, as a test of the least-squares arithmetic only: it says nothing about what a
GPU's context or fragmentation is.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from coursekit.cli import build_parser
from coursekit.cli import main as cli_main
from coursekit.loading import load_model
from coursekit.presets import count_parameters, meta_model, preset_config
from coursekit.recipes.bench import gpu, gpu_memory
from coursekit.recipes.bench.gpu import (
    ENGINE_MODULE,
    SKIPPED,
    GpuBenchConfig,
    config_from_args,
    dry_run_config,
    main,
    nominal_peak,
    plan_runs,
    qlora_skip_reason,
    random_checkpoint,
    run_gpu_bench,
)
from coursekit.recipes.bench.gpu_memory import (
    check_memory,
    fit_overhead,
    memory_job,
    memory_points,
)
from coursekit.recipes.bench.gpu_report import format_markdown, memory_lines
from coursekit.recipes.bench.suite import SUITE_ENGINES
from coursekit.recipes.bench.train_throughput import measure_engine, parse_result
from coursekit.tiny import tiny_qwen2_config

GIB = 2**30


def in_process(job: dict, *, module: str) -> dict:
    """Run a job as its child would (``child.child_main`` / ``gpu_memory.measure_point``)."""
    job = dict(job)
    if module == ENGINE_MODULE:
        job.pop("threads")
        return measure_engine(job.pop("engine"), engines=SUITE_ENGINES, **job)
    return gpu_memory.measure_point(job)


def test_the_preset_builds_the_real_0_5b_shape():
    # Qwen2.5-Coder-0.5B-Instruct has 494,032,768 parameters (its model card: 0.49B)
    model = meta_model(preset_config(GpuBenchConfig().model))
    assert count_parameters(model) == 494_032_768
    assert model.config.num_hidden_layers == 24 and model.config.hidden_size == 896


def test_random_checkpoint_writes_the_preset_shape_in_the_run_precision(tmp_path, monkeypatch):
    # the 0.5B checkpoint is 1 GB: the test swaps the preset's config for the tiny one
    monkeypatch.setattr("coursekit.presets.preset_config", lambda name: tiny_qwen2_config())
    path = random_checkpoint("qwen2.5-coder-0.5b", tmp_path / "m", seed=0, precision="bf16")
    model = load_model(path, dtype=torch.bfloat16)
    assert model.config.hidden_size == 64 and next(model.parameters()).dtype == torch.bfloat16
    assert random_checkpoint("tiny", tmp_path / "t", seed=0, precision="fp32") == "tiny"
    assert not (tmp_path / "t").exists()


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("model", "gpt2", "GpuBenchConfig.model must be 'tiny' or a preset of"),
        ("device", "tpu", "GpuBenchConfig.device must be 'cuda', 'cuda:N' or 'cpu'"),
        ("engines", ("jax",), "GpuBenchConfig.engines must be distinct values of"),
        ("engines", ("hf", "hf"), "GpuBenchConfig.engines must be distinct values of"),
        ("targets", "everything", "GpuBenchConfig.targets must be one of"),
        ("steps", 0, "GpuBenchConfig.steps must be >= 1 (got 0)"),
        ("lr", 0.0, "GpuBenchConfig.lr must be > 0 (got 0.0)"),
        ("precision", "fp16", "GpuBenchConfig.precision"),
    ],
)
def test_config_errors_name_the_field_and_the_value(field, value, message):
    with pytest.raises(ValueError) as error:
        GpuBenchConfig(**{field: value})
    assert str(error.value).startswith(message) and "\n" not in str(error.value)


def test_the_default_config_is_the_issue_s_gpu_run():
    config = GpuBenchConfig()
    settings_ = config.settings("/ckpt", "lora")
    assert (config.device, config.precision, config.rank, config.targets) == (
        "cuda", "bf16", 16, "all-linear")  # fmt: skip
    assert settings_["seq_len"] == 1024 and settings_["model"] == "/ckpt"
    assert set(config.engines) == {"coursekit", "hf", "trl"}


@pytest.mark.parametrize(
    ("name", "matched", "tflops"),
    [
        ("NVIDIA H200", "H200", 989.5),
        ("NVIDIA H200 NVL", "H200 NVL", 835.5),
        ("NVIDIA H100 80GB HBM3", "H100", 989.5),
        ("NVIDIA H100 PCIe", "H100 PCIe", 756.5),
        ("NVIDIA A100-SXM4-80GB", "A100", 312.0),
        ("NVIDIA L40S", "L40S", 362.05),
        ("NVIDIA L4", "L4", 121.0),
    ],
)
def test_nominal_peak_matches_the_longest_name_first(name, matched, tflops):
    peak = nominal_peak(name)
    assert peak["matched"] == matched and peak["peak_flops"] == pytest.approx(tflops * 1e12)


def test_an_unknown_device_has_no_nominal_peak():
    assert nominal_peak("NVIDIA GeForce GTX 1080") is None and nominal_peak("") is None


def test_qlora_peer_is_skipped_with_a_reason_without_cuda_or_bitsandbytes(monkeypatch):
    assert "CUDA" in qlora_skip_reason("cpu")
    monkeypatch.setattr(gpu, "find_spec", lambda name: None)
    assert "bitsandbytes is not installed" in qlora_skip_reason("cuda")
    monkeypatch.setattr(gpu, "find_spec", lambda name: object())
    assert qlora_skip_reason("cuda") is None


def test_plan_runs_lora_on_every_engine_then_qlora(monkeypatch):
    monkeypatch.setattr(gpu, "find_spec", lambda name: object())
    runs, skipped = plan_runs(GpuBenchConfig())
    assert runs == [("lora", "coursekit"), ("lora", "hf"), ("lora", "trl"),
                    ("qlora", "coursekit"), ("qlora", "hf")]  # fmt: skip
    assert skipped == []
    assert plan_runs(GpuBenchConfig(qlora=False, engines=("hf",))) == ([("lora", "hf")], [])
    runs, skipped = plan_runs(dry_run_config())
    assert ("qlora", "hf") not in runs and skipped[0]["engine"] == "hf"


def test_memory_points_are_five_distinct_configurations():
    points = memory_points(dry_run=False)
    assert len(points) == 5 and len({name for name, _, _ in points}) == 5
    methods = {(a.base_quantization if a else "full") for _, a, _ in points}
    assert methods == {"none", "nf4", "full"}
    assert all(t.seq_len == gpu_memory.DRY_RUN_SEQ_LEN for _, _, t in memory_points(dry_run=True))
    job = memory_job(*points[3], model="tiny", device="cpu")
    assert json.loads(json.dumps(job))["adapter"]["base_quantization"] == "nf4"


# --- the overhead fit: synthetic measurements test the arithmetic only ----------------------


@settings(max_examples=50, deadline=None)
@given(
    context=st.floats(0, 4 * GIB),
    fragmentation=st.floats(0, 0.5),
    peaks=st.lists(st.floats(0.1 * GIB, 100 * GIB), min_size=2, max_size=8, unique=True),
)
def test_fit_recovers_exact_constants_from_noiseless_points(context, fragmentation, peaks):
    used = [context + (1 + fragmentation) * a for a in peaks]
    fit = fit_overhead(peaks, used)
    assert fit["context_bytes"] == pytest.approx(context, abs=1e-3 * GIB)
    assert fit["fragmentation"] == pytest.approx(fragmentation, abs=1e-6)
    assert max(abs(r) for r in fit["residual_bytes"]) < 1e-3 * GIB


def test_fit_residuals_are_orthogonal_to_the_design():
    # least squares' normal equations: Σ r = 0 and Σ r·A = 0, whatever the noise
    allocated = [2e9, 5e9, 9e9, 14e9, 30e9]
    used = [2.7e9, 5.9e9, 9.8e9, 15.4e9, 32.1e9]
    residuals = fit_overhead(allocated, used)["residual_bytes"]
    assert sum(residuals) == pytest.approx(0, abs=1.0)
    assert sum(r * a for r, a in zip(residuals, allocated, strict=True)) == pytest.approx(
        0, abs=1e-6 * 30e9 * 1e9
    )


@pytest.mark.parametrize(
    ("allocated", "used", "message"),
    [([1e9], [2e9], ">= 2 points"), ([1e9, 2e9], [2e9], ">= 2 points"),
     ([1e9, 1e9], [2e9, 2e9], "different allocated peaks")],
)  # fmt: skip
def test_fit_refuses_what_cannot_identify_two_constants(allocated, used, message):
    with pytest.raises(ValueError, match=message):
        fit_overhead(allocated, used)


def test_check_memory_fits_the_synthetic_used_memory_it_is_given():
    # synthetic runner: A = 1, 2, ... GiB, U = 700 MiB + 1.08 · A; only the arithmetic is tested
    seen = []

    def synthetic(job):
        seen.append(job["name"])
        allocated = len(seen) * GIB
        used = 700 * 2**20 + 1.08 * allocated
        return {"allocated_bytes": allocated, "method": "synthetic", "reserved_bytes": None,
                "used_bytes": used, "context_probe_bytes": 500 * 2**20}  # fmt: skip

    memory = check_memory("tiny", "cpu", dry_run=True, runner=synthetic, log=lambda line: None)
    fit = memory["fit"]
    assert fit["context_bytes"] == pytest.approx(700 * 2**20) and fit["points"] == 5
    assert fit["fragmentation"] == pytest.approx(0.08)
    assert len(fit["total_error"]) == 5 and memory["assumed"]["context_bytes"] == 512 * 2**20
    assert memory["context_probe_bytes"] == 500 * 2**20
    lines = "\n".join(memory_lines(memory))
    assert "Fitted overhead (least squares" in lines and "Bare context" in lines


# --- the dry run: the real code path, end to end on the CPU ---------------------------------


def test_a_minimal_dry_run_measures_the_peak_runs_coursekit_and_writes_the_report(tmp_path):
    # the fast cover of run_gpu_bench's CPU path (the full dry run below is marked slow)
    config = dry_run_config(engines=("coursekit",), steps=1, memory=False)
    jobs: list[dict] = []

    def runner(job, *, module):
        jobs.append(dict(job))
        return in_process(job, module=module)

    report = run_gpu_bench(config, tmp_path, runner=runner, log=lambda line: None)
    assert [(j["method"], j["engine"]) for j in jobs] == [("lora", "coursekit"),
                                                           ("qlora", "coursekit")]  # fmt: skip
    assert {j["device"] for j in jobs} == {"cpu"} and jobs[0]["targets"] == "all-linear"
    run = report["runs"]["lora"]["coursekit"]
    assert run["steps"] == 1 and run["tokens_per_s"] > 0
    assert run["step_seconds"] == pytest.approx(run["train_seconds"])
    assert run["flop_fraction"] == pytest.approx(
        run["achieved_flops"] / report["matmul_peak"]["peak_flops"]
    )
    assert report["matmul_peak"]["precision"] == "bf16" and report["memory"] is None
    assert sorted(p.name for p in tmp_path.iterdir()) == ["gpu.json", "gpu.md"]


DRY_RUN_IS_SLOW = pytest.mark.slow  # every engine, QLoRA and five memory points: 20-70 s


@pytest.fixture(scope="module")
def dry_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("gpu")
    lines: list[str] = []
    config = dry_run_config(engines=("coursekit", "hf"))
    return run_gpu_bench(config, out, runner=in_process, log=lines.append), out, lines


@DRY_RUN_IS_SLOW
def test_dry_run_times_every_engine_and_counts_its_flops(dry_run):
    report, _, lines = dry_run
    assert set(report["runs"]) == {"lora", "qlora"}
    assert set(report["runs"]["lora"]) == {"coursekit", "hf"}
    for result in [*report["runs"]["lora"].values(), report["runs"]["qlora"]["coursekit"]]:
        assert result["tokens_per_s"] > 0 and result["model_flops"] > 0
        assert result["flop_fraction"] == pytest.approx(
            result["achieved_flops"] / report["matmul_peak"]["peak_flops"]
        )
        assert result["nominal_fraction"] is None  # a CPU has no datasheet peak here
        assert result["val_loss"] == pytest.approx(result["val_loss"])  # finite
    assert report["skipped"][0]["reason"].startswith("bitsandbytes' 4-bit kernels need")
    assert any("lora coursekit" in line for line in lines)


@DRY_RUN_IS_SLOW
def test_dry_run_memory_estimate_is_within_15_percent_of_the_cpu_trace(dry_run):
    # a claim that could fail: the estimate against torch's CPU allocator trace (the tolerance
    # of coursekit memory validate); on a CPU there is no used memory, so no fit
    memory = dry_run[0]["memory"]
    assert len(memory["rows"]) == 5
    assert all(abs(row["peak_error"]) <= 0.15 for row in memory["rows"]), memory["rows"]
    assert memory["fit"] is None and "only observable on CUDA" in memory["fit_note"]


@DRY_RUN_IS_SLOW
def test_dry_run_writes_json_and_markdown_and_removes_the_checkpoint(dry_run):
    report, out, _ = dry_run
    written = json.loads((out / "gpu.json").read_text())
    assert (
        written["runs"]["lora"]["hf"]["tokens_per_s"]
        == report["runs"]["lora"]["hf"]["tokens_per_s"]
    )
    assert written["machine"]["gpu_name"] is None and written["config"]["device"] == "cpu"
    markdown = (out / "gpu.md").read_text()
    assert markdown == format_markdown(report)
    for part in ("## lora", "## qlora", "| coursekit |", "Skipped: qlora hf", "Fitted overhead"):
        assert part in markdown
    assert sorted(p.name for p in out.iterdir()) == ["gpu.json", "gpu.md"]


def test_the_memory_child_prints_one_result_line(capsys):
    name, adapter, train = memory_points(dry_run=True)[1]
    gpu_memory.child_main([json.dumps(memory_job(name, adapter, train, model="tiny",
                                                 device="cpu"))])  # fmt: skip
    result = parse_result(capsys.readouterr().out)
    assert result["allocated_bytes"] > 0 and result["used_bytes"] is None


# --- entry points ---------------------------------------------------------------------------


def test_without_cuda_main_skips_in_one_line_and_writes_nothing(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert main(["--output", str(tmp_path / "out")]) == SKIPPED
    captured = capsys.readouterr()
    assert captured.out == "" and len(captured.err.strip().splitlines()) == 1
    assert "skipped" in captured.err and "--dry-run" in captured.err
    assert not (tmp_path / "out").exists()


def test_main_reports_a_bad_flag_value_in_one_line(tmp_path, capsys):
    assert main(["--output", str(tmp_path), "--dry-run", "--targets", "everything"]) == 2
    error = capsys.readouterr().err
    assert error.startswith("gpu bench: error: GpuBenchConfig.targets") and error.count("\n") == 1


def test_coursekit_bench_gpu_reads_the_shared_and_the_gpu_flags():
    parser = build_parser()
    args = parser.parse_args(["bench", "--output", "o", "--gpu", "--dry-run", "--steps", "3",
                              "--engines", "coursekit,trl", "--no-memory"])  # fmt: skip
    config = config_from_args(args)
    assert args.gpu and config == dry_run_config(steps=3, engines=("coursekit", "trl"),
                                                 memory=False)  # fmt: skip
    args = parser.parse_args(["bench", "--output", "o", "--gpu", "--precision", "fp32"])
    assert config_from_args(args) == GpuBenchConfig(precision="fp32")


def test_coursekit_bench_gpu_refuses_the_cpu_suites_flags_in_one_line(tmp_path, capsys):
    out = str(tmp_path / "out")
    assert cli_main(["bench", "--gpu", "--output", out, "--methods", "dora", "--repeats", "2"]) == 2
    error = capsys.readouterr().err
    assert "--methods, --repeats only apply to the CPU suite" in error and error.count("\n") == 1
    assert not (tmp_path / "out").exists()


def test_coursekit_bench_gpu_skips_without_cuda(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert cli_main(["bench", "--gpu", "--output", str(tmp_path / "out")]) == SKIPPED
    assert capsys.readouterr().err.startswith("gpu bench: skipped")
    assert not (tmp_path / "out").exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="with CUDA the script runs for minutes")
def test_the_shell_entry_skips_in_one_line_without_cuda(tmp_path):
    script = Path(__file__).resolve().parents[3] / "benchmarks" / "gpu.sh"
    done = subprocess.run(
        ["bash", str(script), "--output", str(tmp_path / "out")],
        capture_output=True, text=True, check=False, timeout=120,
        env={**os.environ, "PYTHON": sys.executable},
    )  # fmt: skip
    assert done.returncode == SKIPPED and done.stdout == ""
    assert done.stderr.strip().startswith("gpu bench: skipped") and done.stderr.count("\n") == 1
    assert not (tmp_path / "out").exists()
