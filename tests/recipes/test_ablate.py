"""The ablation recipe on tiny settings: the grid config, a grid run, its resume and outputs."""

from __future__ import annotations

import csv
import dataclasses
import json
import statistics

import pytest

from coursekit import codec
from coursekit.cli import main
from coursekit.data.corpus import seed_dir
from coursekit.errors import CoursekitError
from coursekit.recipes import ablate
from coursekit.recipes import finetune as finetune_module
from coursekit.recipes.ablate import AblationConfig, load_ablation, run_ablation
from coursekit.train import BaseCallback, RunSpec, TrainConfig
from coursekit.train.checkpoint import ConfigMismatchError
from coursekit.train.failures import RunFailedError, TrainingInterrupted
from tests.badinput import expect_cli_error, tree_digest

TRAIN = TrainConfig(max_steps=2, micro_batch_size=1, seq_len=256, eval_every=0)
BASE = RunSpec(model="tiny", data=str(seed_dir()), train=TRAIN)
UNPACKED = RunSpec(model="tiny", train=dataclasses.replace(TRAIN, packing=False))
GRID = AblationConfig(base=BASE, axes={"adapter.rank": (2, 4)}, seeds=(0, 1))


@pytest.fixture(scope="module")
def grid_run(tmp_path_factory):
    """GRID (2 ranks × 2 seeds) trained once in this process: (folder, result, log lines)."""
    out = tmp_path_factory.mktemp("ablation")
    lines: list[str] = []
    return out, run_ablation(GRID, out, isolate=False, log=lines.append), lines


@pytest.fixture
def no_training(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("trained a cell that should have been kept")

    monkeypatch.setattr(finetune_module, "finetune", refuse)


def read_csv(path):
    with path.open(encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


# --- the grid config -----------------------------------------------------------------------


def test_the_default_is_tier_a():
    config = AblationConfig()
    assert dict(config.axes) == {"adapter.rank": (4, 8, 16, 32, 64)}
    assert config.seeds == (0, 1, 2) and config.eval_limit == 0
    assert config.base.model == "nano" and config.base.method == "lora"
    assert config.base.train.max_steps == 40 and config.base.train.eval_every == 40
    cells = config.cells()
    assert len(cells) == 15 and cells[0].name == "rank=4,seed=0"
    assert {config.spec(c).adapter.rank for c in cells} == {4, 8, 16, 32, 64}
    assert [config.spec(c).train.seed for c in cells[::5]] == [0, 1, 2]


def test_axis_values_are_stored_as_the_run_sees_them():
    config = AblationConfig(base=BASE, axes={"train.learning_rate": ["1e-3", 2e-3],
                                             "adapter.targets": ["qv", ["q_proj"]]})  # fmt: skip
    assert dict(config.axes) == {"train.learning_rate": (0.001, 0.002),
                                 "adapter.targets": ("qv", ("q_proj",))}  # fmt: skip
    assert config.cells()[-1].name == "learning_rate=0.002,targets=q_proj,seed=2"


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"axes": {"adapter.rnak": (4,)}},
         r"axes.adapter.rnak is not a field path of RunSpec; known: \(.*'adapter.rank'"),
        ({"axes": {"adapter.rank": (4, 0)}},
         r"AblationConfig.axes.adapter.rank value 0 is refused: AdapterConfig.rank must be >= 1"),
        ({"axes": {"adapter.rank": (4, "x")}},
         r"AblationConfig.axes.adapter.rank value 'x' is refused: .*must be a whole number"),
        ({"axes": {"adapter.method": ("dora",)}},
         "AblationConfig.axes.adapter.method is set from method; put the axis on method"),
        ({"axes": {"train.seed": (1, 2)}}, "AblationConfig.axes.train.seed is set by seeds"),
        ({"axes": {"adapter.rank": ()}}, "adapter.rank must be a non-empty list of values"),
        ({"axes": {"adapter.rank": 8}}, r"adapter.rank must be a non-empty list of values \(got 8"),
        ({"axes": {"adapter.rank": (8, 8.0)}}, "^AblationConfig: the axis adapter.rank list 8 "),
        ({"axes": {"train.curriculum": ("linear",)}},
         r"axes.train.curriculum value 'linear' is refused: .*needs packing=False"),
        ({"base": UNPACKED, "axes": {"train.curriculum": ("linear",),
                                     "train.packing": (False, True)}},
         r"^AblationConfig: cell curriculum=linear,packing=true,seed=0 is refused: .*=False"),
        ({"axes": ["adapter.rank"]}, "AblationConfig.axes must map field paths to lists"),
        ({"seeds": ()}, r"AblationConfig.seeds must list at least one seed \(got \(\)\)"),
        ({"seeds": (0, 0)}, "AblationConfig.seeds must list each seed once"),
        ({"seeds": (-1,)}, "AblationConfig.seeds must be >= 0"),
        ({"eval_limit": -1}, "AblationConfig.eval_limit must be >= 0"),
        ({"eval_split": "train"}, r"AblationConfig.eval_split must be one of \['val', 'test'\]"),
        ({"confidence": 1.0}, r"AblationConfig.confidence must be in \(0, 1\)"),
        ({"seeds": (0.5,)}, "AblationConfig.seeds"),
    ],
)  # fmt: skip
def test_a_bad_grid_is_refused_in_one_line_naming_the_field(changes, message):
    with pytest.raises(ValueError, match=message) as caught:
        AblationConfig(**{"base": BASE, **changes})
    assert "\n" not in str(caught.value)


def test_a_yaml_grid_is_read_through_the_codec_with_file_and_line(tmp_path):
    good = tmp_path / "grid.yaml"
    good.write_text("base:\n  model: tiny\naxes:\n  adapter.rank: [4, 8]\nseeds: [0]\n")
    config = load_ablation(good)
    assert config.base == RunSpec(model="tiny") and dict(config.axes) == {"adapter.rank": (4, 8)}
    saved = tmp_path / "saved.yaml"
    saved.write_text(codec.to_yaml(GRID))
    assert load_ablation(saved) == GRID
    bad = tmp_path / "bad.yaml"
    bad.write_text("seeds: [0]\naxes:\n  adapter.alpha: [8]\n  adapter.rank: [4, 0]\n")
    with pytest.raises(CoursekitError, match=rf"^{bad}:4: AblationConfig.axes.adapter.rank value"):
        load_ablation(bad)
    bad.write_text("seeds: [0]\naxes:\n  adapter.rnak: [4]\n")
    with pytest.raises(CoursekitError, match=rf"^{bad}:3: .*adapter.rnak is not a field path"):
        load_ablation(bad)


# --- a grid run ----------------------------------------------------------------------------


def test_each_cell_is_an_ordinary_run_folder(grid_run):
    out, result, lines = grid_run
    names = ["rank=2,seed=0", "rank=4,seed=0", "rank=2,seed=1", "rank=4,seed=1"]
    assert [record["name"] for record in result.cells] == names
    for record in result.cells:
        folder = out / record["name"]
        spec = codec.from_yaml(RunSpec, folder / "config.yaml")
        assert spec == GRID.spec(next(c for c in GRID.cells() if c.name == record["name"]))
        summary = json.loads((folder / "summary.json").read_text())
        assert summary["steps"] == 2 and (folder / "adapter" / "adapter_config.json").is_file()
        assert json.loads((folder / "result.json").read_text())["metrics"] == record["metrics"]
        assert record["metrics"]["val_loss"] == summary["val_loss"]
        assert record["process"] == "shared"
    assert len(lines) == 4 and lines[0].startswith("ablate [1/4] rank=2,seed=0: trained in")


def test_the_metrics_of_each_cell_are_collected(grid_run):
    _, result, _ = grid_run
    for record in result.cells:
        metrics = record["metrics"]
        assert set(metrics) == {"val_loss", "tokens_per_s", "peak_memory_bytes",
                                "trainable_parameters", "train_seconds"}  # fmt: skip
        assert metrics["val_loss"] > 0 and metrics["tokens_per_s"] > 0
        assert metrics["peak_memory_bytes"] > 0
    trainable = {r["setting"]["adapter.rank"]: r["metrics"]["trainable_parameters"]
                 for r in result.cells}  # fmt: skip
    assert trainable[4] == 2 * trainable[2]  # LoRA's r·(d_in + d_out) per target


def test_the_aggregation_over_seeds_matches_the_cells(grid_run):
    out, result, _ = grid_run
    table = read_csv(out / "table.csv")
    assert [row["adapter.rank"] for row in table] == ["2", "4"]
    for group, row in zip(result.groups, table, strict=True):
        rank = dict(group.setting)["adapter.rank"]
        losses = [r["metrics"]["val_loss"] for r in result.cells
                  if r["setting"]["adapter.rank"] == rank]  # fmt: skip
        summary = group.metrics["val_loss"]
        assert summary.n == 2 and summary.mean == pytest.approx(statistics.fmean(losses))
        assert summary.std == pytest.approx(statistics.stdev(losses))
        assert summary.low <= summary.mean <= summary.high
        assert float(row["val_loss_mean"]) == pytest.approx(summary.mean)
        assert float(row["val_loss_high"]) == pytest.approx(summary.high)
        assert row["seeds"] == "2" and row["trainable_parameters_std"] == "0.0"
    cells = read_csv(out / "cells.csv")
    assert [row["cell"] for row in cells] == [r["name"] for r in result.cells]
    assert {row["process"] for row in cells} == {"shared"}


def test_the_report_and_figures(grid_run):
    out, result, _ = grid_run
    report = (out / "report.md").read_text()
    assert report.startswith("# Ablation: adapter.rank ∈ {2, 4} × seeds [0, 1]")
    assert "| rank=2 | 2 |" in report and "95% Student t" in report
    assert "4 of 4 runs trained in one shared process" in report
    assert "![val_loss_vs_rank.png](val_loss_vs_rank.png)" in report
    assert "## A higher rank does not decrease quality" in report
    for name in ("val_loss_vs_rank.png", "memory_vs_val_loss.png"):
        assert (out / name).read_bytes()[1:4] == b"PNG" and result.files[name] == out / name
    assert load_ablation(out / "ablation.yaml") == GRID


def test_a_finished_grid_is_kept_as_it_is(grid_run, no_training):
    out, result, _ = grid_run
    before = tree_digest(out / "rank=2,seed=0")
    lines: list[str] = []
    again = run_ablation(GRID, out, isolate=False, log=lines.append)
    assert all("finished before, kept" in line for line in lines)
    assert [r["metrics"] for r in again.cells] == [r["metrics"] for r in result.cells]
    after = tree_digest(out / "rank=2,seed=0")
    assert {k: v for k, v in after.items() if k != "result.json"} == {
        k: v for k, v in before.items() if k != "result.json"
    }


def test_growing_the_grid_trains_only_the_new_cells(grid_run, tmp_path, monkeypatch):
    out, _, _ = grid_run
    trained = []
    real = finetune_module.finetune

    def counting(spec, folder, **kwargs):
        trained.append(folder.name)
        return real(spec, folder, **kwargs)

    monkeypatch.setattr(finetune_module, "finetune", counting)
    wider = dataclasses.replace(GRID, seeds=(0, 1, 2))
    assert len(run_ablation(wider, out, isolate=False, log=lambda _: None).cells) == 6
    assert trained == ["rank=2,seed=2", "rank=4,seed=2"]


class StopAtStep(BaseCallback):
    """Raise KeyboardInterrupt (what SIGINT becomes) at the n-th step reported."""

    def __init__(self, n: int) -> None:
        self.n, self.seen = n, 0

    def on_step(self, row):
        self.seen += 1
        if self.seen == self.n:
            raise KeyboardInterrupt


def test_an_interrupted_grid_continues_where_it_stopped(tmp_path):
    base = dataclasses.replace(BASE, train=dataclasses.replace(TRAIN, save_every=1))
    config = AblationConfig(base=base, axes={"adapter.rank": (2, 4)}, seeds=(0,))
    # the first cell runs steps 1-2; the 4th step is the second cell's step 2, after its
    # checkpoint of step 1
    with pytest.raises(TrainingInterrupted, match="run the same coursekit ablate command again"):
        run_ablation(config, tmp_path, isolate=False, callbacks=[StopAtStep(4)])
    first, second = tmp_path / "rank=2,seed=0", tmp_path / "rank=4,seed=0"
    assert (first / "summary.json").is_file() and not (second / "summary.json").exists()
    assert (second / "checkpoints" / "step-1").is_dir()
    lines: list[str] = []
    result = run_ablation(config, tmp_path, isolate=False, log=lines.append)
    assert "finished before, kept" in lines[0] and "trained in" in lines[1]
    assert json.loads((second / "summary.json").read_text())["resumed_from"] == "step-1"
    assert [r["metrics"]["val_loss"] is not None for r in result.cells] == [True, True]
    assert (tmp_path / "table.csv").is_file()


def test_a_cell_holding_other_settings_stops_the_grid_before_it_trains(tmp_path, no_training):
    run = tmp_path / "rank=2,seed=0"
    other = dataclasses.replace(BASE, train=dataclasses.replace(TRAIN, max_steps=3))
    from coursekit.train.run import prepare_output

    prepare_output(run, other, resume=False)
    before = tree_digest(run)
    with pytest.raises(ConfigMismatchError, match=r"train.max_steps: 3 → 2"):
        run_ablation(GRID, tmp_path, isolate=False)
    assert tree_digest(run) == before


def test_missing_data_is_refused_before_anything_is_written(tmp_path):
    config = dataclasses.replace(GRID, base=dataclasses.replace(BASE, data=str(tmp_path / "no")))
    with pytest.raises(CoursekitError, match="is not a directory"):
        run_ablation(config, tmp_path / "grid", isolate=False)
    assert not (tmp_path / "grid").exists()


def test_callbacks_need_this_process(tmp_path):
    with pytest.raises(ValueError, match="pass isolate=False"):
        run_ablation(GRID, tmp_path, callbacks=[BaseCallback()])


def test_a_cell_in_its_own_process_measures_its_own_peak(tmp_path):
    config = AblationConfig(base=BASE, axes={"adapter.rank": (2,)}, seeds=(0,))
    result = run_ablation(config, tmp_path, log=lambda _: None)
    [record] = result.cells
    assert record["process"] == "own" and record["metrics"]["peak_memory_bytes"] > 0
    log = (tmp_path / "rank=2,seed=0" / "train.log").read_text()  # the child's own output
    assert f"peak_memory_bytes: {record['metrics']['peak_memory_bytes']}" in log
    assert "runs trained in one shared process" not in (tmp_path / "report.md").read_text()


@pytest.mark.parametrize(
    ("status", "error", "text"),
    [(130, TrainingInterrupted, "no model.*run the same coursekit ablate command again"),
     (2, CoursekitError, r"rank=2,seed=0: coursekit train: error: no model"),
     (1, RunFailedError, r"failed: coursekit train exited with 1 .*train.log\): .*no model")],
)  # fmt: skip
def test_the_exit_status_of_a_cells_process_becomes_its_error(
    status, error, text, tmp_path, monkeypatch
):
    class Child:
        def __init__(self, command, *, stdout, **kwargs):
            assert command[-4:] == [
                "train",
                "--output",
                str(tmp_path / "rank=2,seed=0"),
                "--resume",
            ]
            stdout.write("coursekit train: error: no model\n")

        def poll(self):
            return status

        def wait(self):
            return status

    monkeypatch.setattr(ablate.subprocess, "Popen", Child)
    config = AblationConfig(base=BASE, axes={"adapter.rank": (2,)}, seeds=(0,))
    with pytest.raises(error, match=text):
        run_ablation(config, tmp_path, log=lambda _: None)


def test_the_funnel_of_each_cell_is_collected_when_asked(grid_run, no_training, monkeypatch):
    from coursekit.evaluate.funnel import STAGES
    from coursekit.recipes import evaluate

    out, _, _ = grid_run
    specs = []

    def fake_run_eval(spec, where):
        specs.append((spec, where))
        stage = {"rate": 0.5, "low": 0.1, "high": 0.9}
        summary = {"funnel": dict.fromkeys(STAGES, stage), "summary_score": 0.25}
        where.mkdir(parents=True)
        (where / "summary.json").write_text(json.dumps(summary))
        return summary

    monkeypatch.setattr(evaluate, "run_eval", fake_run_eval)
    config = dataclasses.replace(GRID, eval_limit=2)
    result = run_ablation(config, out, isolate=False, log=lambda _: None)
    assert len(specs) == 4
    spec, where = specs[0]
    assert (spec.model, spec.split, spec.limit) == ("tiny", "val", 2)
    assert spec.adapter == str(out / "rank=2,seed=0" / "adapter")
    assert where == out / "rank=2,seed=0" / "eval-val-2"
    assert result.cells[0]["metrics"]["eval_passes"] == 0.5
    assert result.groups[0].metrics["eval_summary_score"].mean == 0.25
    assert "| summary score |" in (out / "report.md").read_text()
    assert (out / "eval_summary_score_vs_rank.png").is_file()
    run_ablation(config, out, isolate=False, log=lambda _: None)
    assert len(specs) == 4  # a finished evaluation is kept too


# --- the command ---------------------------------------------------------------------------


def test_the_command_runs_the_grid_of_its_flags(grid_run, tmp_path, capsys, no_training):
    out, _, _ = grid_run
    base = tmp_path / "base.yaml"
    base.write_text(codec.to_yaml(BASE))
    argv = ["ablate", "--base", str(base), "--axis", "adapter.rank=2,4", "--seeds", "0,1",
            "--in-process", "--output", str(out)]  # fmt: skip
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert f"report.md: {out / 'report.md'}" in printed
    assert "finished before, kept" in printed


def test_the_command_builds_its_config_from_tier_a_and_flags(tmp_path, monkeypatch):
    seen = []
    monkeypatch.setattr(ablate, "run_ablation", lambda config, output, isolate: seen.append(
        (config, isolate)) or ablate.AblationResult(cells=(), groups=(), files={}))  # fmt: skip
    argv = ["ablate", "--model", "tiny", "--max-steps", "3", "--axis",
            "train.learning_rate=1e-3", "--axis", "adapter.alpha=8,16", "--eval-limit", "1",
            "--output", str(tmp_path)]  # fmt: skip
    assert main(argv) == 0
    [(config, isolate)] = seen
    assert isolate and config.base.model == "tiny" and config.base.train.max_steps == 3
    assert dict(config.axes) == {"train.learning_rate": (0.001,), "adapter.alpha": (8.0, 16.0)}
    assert config.seeds == (0, 1, 2) and config.eval_limit == 1
    assert config.base.adapter.rank == AblationConfig().base.adapter.rank


@pytest.mark.parametrize(
    ("argv", "names"),
    [
        (["--axis", "adapter.rnak=4"], ["coursekit ablate: error:", "adapter.rnak"]),
        (["--axis", "adapter.rank"], ["--axis needs PATH=V1,V2"]),
        (["--axis", "adapter.rank=0"], ["adapter.rank value 0 is refused"]),
        (["--seeds", "0,0"], ["must list each seed once"]),
    ],
)
def test_bad_flags_are_one_line_and_change_nothing(argv, names, tmp_path, capsys):
    expect_cli_error(["ablate", *argv, "--output", str(tmp_path / "grid")], capsys, *names)
    assert not (tmp_path / "grid").exists()


def test_a_bad_grid_file_is_named_with_its_line(tmp_path, capsys):
    grid = tmp_path / "grid.yaml"
    grid.write_text("axes:\n  adapter.rank: [4, -1]\n")
    expect_cli_error(["ablate", "--config", str(grid), "--output", str(tmp_path / "g")], capsys,
                     f"{grid}:2:", "adapter.rank value -1")  # fmt: skip
