"""Phase 3 recipes (coursekit.recipes.phase3_core / phase3_advanced) on the tiny model."""

from __future__ import annotations

import pytest
import torch

from coursekit.adapters.variants import VARIANTS
from coursekit.data.corpus import seed_dir
from coursekit.exercises import solutions
from coursekit.recipes import phase3_advanced as advanced
from coursekit.recipes import phase3_core as core


def test_output_folder_is_fresh_or_the_given_one(tmp_path):
    assert core.output_folder(tmp_path / "x") == tmp_path / "x" and (tmp_path / "x").is_dir()
    assert core.output_folder() != core.output_folder()


def test_small_corpus_writes_fitting_disjoint_splits(tmp_path):
    from coursekit.data.corpus import load_splits

    folder = core.small_corpus(
        tmp_path, model="tiny", train=4, val=2, seq_len=256, source=seed_dir()
    )
    splits = load_splits(folder)  # raises on an id shared by two splits
    assert (len(splits["train"]), len(splits["val"]), len(splits["test"])) == (4, 1, 1)


def test_phase3_spec_is_the_baseline_validated_at_start_and_end():
    spec = core.phase3_spec(data="d", steps=5, rank=4, targets="mlp")
    assert (spec.train.max_steps, spec.train.eval_every, spec.adapter.rank) == (5, 5, 4)
    assert spec.adapter.targets == "mlp" and spec.train.seq_len == 256


def test_accumulation_errors_separate_token_normalisation_from_mean_of_means():
    examples = [_example(i, answer) for i, answer in enumerate((1, 12, 2, 9))]
    errors = core.accumulation_errors(solutions.step_loss, examples, pad_id=0, model="tiny")
    assert errors.token_counts == (1, 12, 2, 9)
    # float32 rounding only (measured ~3e-7) against a weighting error of tens of percent
    assert errors.yours < 1e-5 and errors.mean_of_means > 0.05
    wrong = core.accumulation_errors(
        lambda sums, counts: torch.stack(list(sums)).sum() / 4, examples, pad_id=0, model="tiny"
    )
    assert wrong.yours > 0.05


def test_coursekit_trainer_accumulates_like_one_batch():
    examples = [_example(i, answer) for i, answer in enumerate((1, 12, 2, 9))]
    assert core.trainer_accumulation_error(examples, pad_id=0, model="tiny") < 1e-5


@pytest.fixture(autouse=True)
def _restore_variants():
    """Variants a test registers are removed again: the registry is process-wide."""
    from coursekit.adapters import variants

    before = dict(variants._VARIANTS)
    yield
    variants._VARIANTS.clear()
    variants._VARIANTS.update(before)


def test_use_dora_forward_registers_a_variant_that_equals_dora():
    from coursekit.adapters.dora import DoRALinear

    name = advanced.use_dora_forward(solutions.dora_forward, "test_dora")
    assert advanced.use_dora_forward(solutions.dora_forward, "test_dora") == name  # re-run
    torch.manual_seed(0)
    base = torch.nn.Linear(8, 6)
    reference = DoRALinear(base, rank=2, alpha=4.0)
    with torch.no_grad():
        reference.lora_b.normal_()
    mine = VARIANTS[name].layer(base, rank=2, alpha=4.0)
    mine.load_state_dict(reference.state_dict())
    x = torch.randn(3, 8)
    torch.testing.assert_close(mine(x), reference(x))
    with pytest.raises(ValueError, match="coursekit's own"):
        advanced.use_dora_forward(solutions.dora_forward, "dora")


def test_use_dora_forward_runs_the_learners_function():
    def doubled(x, W0, b, A, B, m, scale):
        return 2 * solutions.dora_forward(x, W0, b, A, B, m, scale)

    name = advanced.use_dora_forward(doubled, "test_doubled_dora")
    layer = VARIANTS[name].layer(torch.nn.Linear(4, 3), rank=1, alpha=1.0)
    x = torch.randn(2, 4)
    expected = 2 * solutions.dora_forward(
        x, layer.weight, layer.bias, layer.lora_a, layer.lora_b, layer.magnitude, layer.scale
    )
    torch.testing.assert_close(layer(x), expected)


def test_qat_with_the_learners_quantizer_equals_coursekits_and_deploys_losslessly():
    mine = advanced.qat_experiment("qat", solutions.fake_quant_ste, steps=5)
    reference = advanced.qat_experiment("qat", steps=5)
    lora = advanced.qat_experiment("lora", steps=5)
    assert mine == pytest.approx(reference, abs=1e-6)
    assert mine["after_int4"] == pytest.approx(mine["trained"], abs=1e-5)
    assert lora["after_int4"] != pytest.approx(lora["trained"], abs=1e-3)


def test_qat_with_a_quantizer_without_ste_does_not_train():
    def no_gradient(weight):  # value right, gradient cut: A and B never move
        return solutions.fake_quant_ste(weight).detach()

    with pytest.raises(RuntimeError):  # nothing requires grad: backward refuses
        advanced.qat_experiment("qat", no_gradient, steps=1)


def test_multi_adapter_joint_training_equals_training_alone():
    result = advanced.multi_adapter_experiment(steps=5)
    assert advanced.largest_gap(result["joint"], result["alone"]) < 1e-4


@pytest.mark.slow
def test_curriculum_run_with_a_function_equals_the_named_pacing(tmp_path):
    data = core.small_corpus(tmp_path, model="tiny", train=8, val=2, seq_len=256, source=seed_dir())
    kwargs = {"data": data, "model": "tiny", "steps": 2, "batch_size": 2}
    mine = advanced.curriculum_run(solutions.pacing, **kwargs)
    assert mine == advanced.curriculum_run("linear", **kwargs)
    # step 0 draws from the 2 easiest of 8 and step 1 from the 5 easiest; scores are z-scores
    assert mine["mean_difficulty_seen"] < 0


def _example(i: int, answer: int):
    from coursekit.data.prompts import EncodedExample

    ids = tuple((7 * i + t) % 60 + 1 for t in range(3 + answer))
    return EncodedExample(sample_id=f"e{i}", input_ids=ids, labels=(-100,) * 3 + ids[3:])
