"""``coursekit bench``'s logic: config, round-robin jobs, medians, ratios, FLOPs, the report.

No timing assertions: the numbers a run produces are checked for shape and consistency only.
"""

from __future__ import annotations

import json
import statistics

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from transformers import Qwen2Config

from coursekit.cli import build_parser, main
from coursekit.data.corpus import seed_dir
from coursekit.errors import CoursekitError
from coursekit.presets import meta_model
from coursekit.recipes.bench.flops import (
    count_model_flops,
    matmul_parameters,
    matmul_peak,
    matmul_shapes,
    train_flops_per_token,
)
from coursekit.recipes.bench.profile import GROUPS
from coursekit.recipes.bench.suite import (
    BenchConfig,
    config_from_args,
    derive,
    jobs,
    ratios,
    run_bench,
    summarize,
)
from coursekit.recipes.bench.suite_report import format_markdown
from coursekit.tiny import tiny_qwen2_config


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("engines", ("coursekit", "jax"), "BenchConfig.engines must be distinct values of"),
        ("engines", ("hf", "hf"), "BenchConfig.engines must be distinct values of"),
        ("engines", (), "BenchConfig.engines must be a non-empty tuple (got ())"),
        ("engines", ["hf"], "BenchConfig.engines must be ('hf',), not ['hf']"),
        ("steps", None, "BenchConfig needs exactly one of steps and samples"),
        ("samples", 0, "BenchConfig needs exactly one of steps and samples"),
        ("adapters", 0, "BenchConfig.adapters must be >= 1 (got 0)"),
        ("profile_steps", 0, "BenchConfig.profile_steps must be >= 1 (got 0)"),
        ("val_samples", 0, "BenchConfig.val_samples must be >= 1 (got 0)"),
        ("methods", ("lora", "magic"), "BenchConfig.methods must be distinct values of"),
        ("steps", 0, "BenchConfig.steps must be >= 1 (got 0)"),
        ("repeats", -1, "BenchConfig.repeats must be >= 1 (got -1)"),
        ("threads", 0, "BenchConfig.threads must be >= 1 (got 0)"),
        ("lr", 0.0, "BenchConfig.lr must be > 0 (got 0.0)"),
        ("peak_seconds", float("nan"), "BenchConfig.peak_seconds must be > 0 (got nan)"),
    ],
)
def test_config_errors_name_the_field_and_the_value(field, value, message):
    with pytest.raises(ValueError) as error:
        BenchConfig(**{field: value})
    assert str(error.value).startswith(message) and "\n" not in str(error.value)


def test_jobs_rotate_the_engines_and_skip_methods_peers_do_not_run():
    config = BenchConfig(engines=("coursekit", "hf", "trl"), methods=("lora", "qlora"), repeats=3)
    planned, skipped = jobs(config)
    assert skipped == [("qlora", "hf"), ("qlora", "trl")]
    lora = [[e for r, m, e in planned if r == k and m == "lora"] for k in range(3)]
    assert lora == [["coursekit", "hf", "trl"], ["hf", "trl", "coursekit"],
                    ["trl", "coursekit", "hf"]]  # fmt: skip
    assert [(r, e) for r, m, e in planned if m == "qlora"] == [(0, "coursekit"), (1, "coursekit"),
                                                               (2, "coursekit")]  # fmt: skip


@given(st.lists(st.floats(-1e6, 1e6, allow_nan=False), min_size=1, max_size=9), st.randoms())
def test_summary_is_the_median_and_range_in_any_order(values, random):
    summary = summarize(values)
    shuffled = list(values)
    random.shuffle(shuffled)
    assert summarize(shuffled) == summary
    assert summary["min"] <= summary["median"] <= summary["max"]
    assert summary == {"median": statistics.median(values), "min": min(values),
                       "max": max(values), "n": len(values)}  # fmt: skip


def test_summary_of_nothing_is_an_error():
    with pytest.raises(ValueError, match="at least one value"):
        summarize([])


speeds = st.lists(st.floats(0.1, 1e4), min_size=1, max_size=5)


@given(speeds, speeds, speeds)
def test_ratios_are_against_the_fastest_peer_and_their_range_holds_the_median(ours, hf, trl):
    result = ratios({"coursekit": ours, "hf": hf, "trl": trl})
    fastest = "hf" if statistics.median(hf) >= statistics.median(trl) else "trl"
    assert {r["peer"] for r in result.values()} == {fastest}
    assert result[fastest]["median"] == pytest.approx(1.0)
    for ratio in result.values():
        assert ratio["min"] <= ratio["median"] * (1 + 1e-9)
        assert ratio["median"] <= ratio["max"] * (1 + 1e-9)


def test_no_peer_means_no_ratio():
    assert ratios({"coursekit": [1.0, 2.0]}) == {}


def test_derived_numbers():
    run = {"train_seconds": 2.0, "model_flops": 8e9, "tokens_per_s": 5.0, "steps": 4}
    result = derive(run, peak_flops=1e10)
    assert result["step_seconds"] == 0.5 and result["achieved_flops"] == 4e9
    assert result["flop_fraction"] == pytest.approx(0.4)
    assert result["tokens_per_s_per_adapter"] == 5.0


def test_a_samples_budget_replaces_the_steps_and_reaches_every_engine():
    config = BenchConfig(steps=None, samples=160, val_samples=64, methods=("lora", "multi"))
    assert config.settings("lora")["samples"] == 160 and config.settings("lora")["steps"] is None
    planned, skipped = jobs(config)
    assert ("multi", "hf") in skipped and ("multi", "trl") in skipped
    assert {e for _, m, e in planned if m == "multi"} == {"coursekit"}


def qwen2(layers, heads, kv_divisor, head_dim, ff, vocab):
    """A small untied Qwen2 config of the given sizes."""
    return Qwen2Config(
        num_hidden_layers=layers, num_attention_heads=heads,
        num_key_value_heads=max(1, heads // kv_divisor), hidden_size=heads * head_dim,
        intermediate_size=ff, vocab_size=vocab, tie_word_embeddings=False,
    )  # fmt: skip


sizes = st.tuples(
    st.integers(1, 4), st.sampled_from([1, 2, 4]), st.sampled_from([1, 2]),
    st.sampled_from([4, 8]), st.integers(4, 48), st.integers(8, 300),
)  # fmt: skip
configs = sizes.map(lambda size: qwen2(*size))


@settings(max_examples=25, deadline=None)
@given(configs)
def test_matmul_part_counts_every_linear_weight_of_the_model(config):
    model = meta_model(config)
    linear = sum(m.weight.numel() for m in model.modules() if isinstance(m, torch.nn.Linear))
    assert matmul_parameters(config) == linear
    assert train_flops_per_token(config, 1) - 6 * linear == 12 * config.num_hidden_layers * (
        config.hidden_size
    )


@given(sizes, st.integers(1, 4), st.integers(1, 4096))
def test_flops_are_linear_in_layers_and_in_sequence_length(size, more, seq_len):
    def with_layers(n):
        return train_flops_per_token(qwen2(n, *size[1:]), seq_len)

    L = size[0]
    assert with_layers(L + more) - with_layers(L) == more * (with_layers(L + 1) - with_layers(L))
    config = qwen2(*size)
    at = {s: train_flops_per_token(config, s) for s in (seq_len, seq_len + 1, seq_len + 2)}
    assert at[seq_len + 2] - at[seq_len + 1] == at[seq_len + 1] - at[seq_len] > 0


def test_flops_refuse_an_empty_sequence():
    with pytest.raises(ValueError, match="seq_len must be >= 1"):
        train_flops_per_token(tiny_qwen2_config(), 0)


def test_the_matmul_peak_probes_every_shape_once():
    config = tiny_qwen2_config()
    peak = matmul_peak(config, 4, min_seconds=0.001, max_repeats=2)
    assert [s[1:3] for s in peak["shapes"]] == [[k, n] for k, n, _ in matmul_shapes(config)]
    assert peak["peak_flops"] == max(s[3] for s in peak["shapes"]) > 0


def test_the_counter_sees_training_forwards_only(tiny_dir):
    from coursekit.loading import load_model

    model = load_model(tiny_dir)
    counter = count_model_flops(model, seq_len=6)
    ids = torch.ones(2, 8, dtype=torch.long)
    with torch.no_grad():
        model.train()(input_ids=ids)
        model.eval()(input_ids=ids)
    assert counter == {"positions": 16, "model_flops": 16 * train_flops_per_token(model.config, 6)}


def fake_runner(job):
    """A run's result without training: numbers from the engine's name and the settings."""
    if "profile_steps" in job:
        groups = {g: {"seconds": 0.01, "fraction": 1 / len(GROUPS)} for g in GROUPS}
        return {"steps": job["profile_steps"], "step_seconds": 0.08, "groups": groups}
    speed = {"coursekit": 300.0, "hf": 100.0, "trl": 150.0}[job["engine"]]
    adapters = job["adapters"] if job["method"] == "multi" else 1
    steps = job["steps"] or job["samples"]
    return {"target_tokens": 30 * steps, "train_seconds": 30 * steps / speed, "steps": steps,
            "tokens_per_s": speed, "val_loss": 2.5, "peak_rss_bytes": 2**30, "positions": 64,
            "model_flops": 1e9, "wall_seconds": 1.0, "adapters": adapters,
            "samples": 5 * adapters, "distinct_samples": 5,
            "samples_digest": "d1" if job["engine"] != "trl" else "d2"}  # fmt: skip


def test_report_files_hold_every_run_the_medians_and_the_ratios(tmp_path, tiny_dir):
    config = BenchConfig(methods=("lora", "qlora"), repeats=2, steps=1, batch_size=1, seq_len=8,
                         peak_seconds=0.001)  # fmt: skip
    lines = []
    report = run_bench(config, tmp_path / "out", runner=fake_runner, log=lines.append)
    assert len(lines) == 2 * 3 + 2
    saved = json.loads((tmp_path / "out" / "bench.json").read_text())
    assert saved["methods"]["lora"]["ratios"]["coursekit"]["median"] == pytest.approx(2.0)
    assert saved["methods"]["lora"]["ratios"]["coursekit"]["peer"] == "trl"
    assert len(saved["methods"]["lora"]["runs"]["hf"]) == 2
    assert list(saved["methods"]["qlora"]["summary"]) == ["coursekit"]
    assert saved["machine"]["cpu_model"] and len(saved["machine"]["load_after"]) == 3
    markdown = (tmp_path / "out" / "bench.md").read_text()
    assert markdown == format_markdown({k: v for k, v in report.items() if k != "files"})
    assert "| coursekit | 300.0 (300.0–300.0) | 1 (1–1) | 5 (5–5) |" in markdown
    assert "2.00 (2.00–2.00)×" in markdown and "Skipped" in markdown
    assert "1 optimizer steps per engine" in markdown
    assert "Samples fed differ between engines or repeats (under the steps" in markdown  # trl: d2
    assert saved["methods"]["qlora"]["fed"]["same_set"] is True


def test_samples_budget_multi_adapter_and_profile_reach_the_report(tmp_path):
    config = BenchConfig(engines=("coursekit", "hf"), methods=("lora", "multi"), steps=None,
                         samples=4, val_samples=2, adapters=3, repeats=1, batch_size=1,
                         seq_len=8, peak_seconds=0.001, profile=True, profile_steps=2)  # fmt: skip
    lines = []
    report = run_bench(config, tmp_path, runner=fake_runner, log=lines.append)
    assert sum("profiled" in line for line in lines) == 2
    multi = report["methods"]["multi"]
    assert multi["summary"]["coursekit"]["tokens_per_s_per_adapter"]["median"] == 100.0
    assert multi["profile"]["steps"] == 2 and set(multi["profile"]["groups"]) == set(GROUPS)
    markdown = (tmp_path / "bench.md").read_text()
    assert "one pass over the same 4 training samples per engine, validated on 2" in markdown
    assert "per adapter 100.0 (100.0–100.0)" in markdown
    assert "Samples fed: the same 5 distinct samples for every engine and repeat" in markdown
    assert "| optimizer step + gradient clipping | 0.0100 | 12.5 |" in markdown
    assert "Equal samples:" in markdown


def test_a_missing_peer_package_stops_the_run_before_it_starts(tmp_path, monkeypatch):
    monkeypatch.setattr("coursekit.recipes.bench.suite.find_spec", lambda name: None)
    with pytest.raises(
        CoursekitError, match=r"the trl engine needs its package: pip install trl=="
    ):
        run_bench(BenchConfig(), tmp_path, runner=fake_runner)
    assert not list(tmp_path.iterdir())


def test_cli_flags_build_the_config_and_bad_values_exit_2(tmp_path, capsys):
    flags = ["--engines", "coursekit,hf", "--steps", "2", "--methods", "lora,dora"]
    args = build_parser().parse_args(["bench", "--output", str(tmp_path), *flags])
    config = config_from_args(args)
    assert config.engines == ("coursekit", "hf") and config.methods == ("lora", "dora")
    assert config.steps == 2 and config.repeats == BenchConfig().repeats
    assert not config.profile
    flags = ["--samples", "160", "--val-samples", "64", "--profile", "--adapters", "2"]
    config = config_from_args(build_parser().parse_args(["bench", "--output", "x", *flags]))
    assert (config.steps, config.samples, config.val_samples) == (None, 160, 64)
    assert config.profile and config.adapters == 2
    assert main(["bench", "--output", str(tmp_path), "--steps", "3", "--samples", "4"]) == 2
    assert "exactly one of steps and samples" in capsys.readouterr().err
    assert main(["bench", "--output", str(tmp_path), "--repeats", "0"]) == 2
    assert "coursekit bench: error: BenchConfig.repeats must be >= 1" in capsys.readouterr().err


@pytest.mark.slow
@pytest.mark.heavy
def test_every_engine_runs_once_in_its_own_process(tmp_path, tiny_dir):
    config = BenchConfig(data=str(seed_dir()), steps=None, samples=1, val_samples=2, repeats=1,
                         batch_size=1, seq_len=256, rank=2, threads=1, peak_seconds=0.01,
                         profile=True, profile_steps=1)  # fmt: skip
    report = run_bench(config, tmp_path, log=lambda line: None)
    lora = report["methods"]["lora"]
    assert set(lora["summary"]) == {"coursekit", "hf", "trl"}
    for engine, (run,) in lora["runs"].items():
        assert run["target_tokens"] > 0 and run["positions"] >= run["target_tokens"], engine
        assert 0 < run["val_loss"] < 20 and run["peak_rss_bytes"] > 0
        assert run["model_flops"] >= run["positions"] * train_flops_per_token(
            tiny_qwen2_config(), 1
        )
        assert run["flop_fraction"] > 0 and run["samples"] == 1
    assert lora["fed"]["same_set"] and set(lora["profile"]["groups"]) == set(GROUPS)
    assert set(report["files"]) == {"bench.json", "bench.md"}
