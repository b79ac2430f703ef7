"""Every exercise's checks: the reference answer passes, plausible wrong answers fail with
a message naming what differs (run in-process through ``run_checks``, the code path the
checking subprocess runs)."""

from __future__ import annotations

import pytest

from coursekit.data.curriculum import PACINGS
from coursekit.exercises import EXERCISES, run_checks, solutions
from coursekit.train.lr_finder import steepest
from tests.exercises import wrong_answers as wrong

REFERENCES = {
    "C.lr_suggester": [solutions.suggest_lr],
    "D.token_normalised_accumulation": [solutions.step_loss],
    "E.dora_forward": [solutions.dora_forward],
    "F.fake_quant_ste": [solutions.fake_quant_ste],
    "H.pacing": [solutions.pacing],
    "I.metrics_callback": [solutions.MetricsRecorder],
    "J.resume_state": [solutions.save_state, solutions.restore_state],
}


def test_every_exercise_has_a_reference() -> None:
    assert set(REFERENCES) == set(EXERCISES)
    for exercise_id, parts in REFERENCES.items():
        assert len(parts) == len(EXERCISES[exercise_id].parts)


@pytest.mark.parametrize("exercise_id", sorted(REFERENCES))
def test_reference_passes(exercise_id: str) -> None:
    result = run_checks(exercise_id, REFERENCES[exercise_id])
    assert result.passed, result.message
    assert result.checks_passed == result.checks == len(EXERCISES[exercise_id].checks()) >= 4
    assert str(result) == f"✓ {exercise_id}: {result.checks} checks passed"


@pytest.mark.parametrize("pacing", ["root", "step"])  # linear is the reference
def test_library_pacings_pass(pacing: str) -> None:
    assert run_checks("H.pacing", [PACINGS[pacing]]).passed


def test_library_steepest_passes() -> None:
    assert run_checks("C.lr_suggester", [steepest]).passed


WRONG = [
    ("C.lr_suggester", [wrong.lr_minimum], "worked example",
     "returns 0.1, expected 0.01 (loss falls fastest per ln lr) for lrs=[0.001, 0.01, 0.1, 1.0]"),
    ("C.lr_suggester", [wrong.lr_plain_difference], "an uneven grid",
     "returns 0.0001, expected 0.001 (loss falls fastest per ln lr) for lrs=[0.0001, 0.001, "),
    ("C.lr_suggester", [wrong.lr_shifts_in_place], "inputs left unchanged",
     "changes the lists it is given"),
    ("D.token_normalised_accumulation", [wrong.mean_of_means], "worked example",
     "returns 1.5 for loss sums (2.0, 3.0) over 1 and 3 target tokens, expected 5/4 = 1.25 "
     "(that is the mean of per-micro-batch means)"),
    ("D.token_normalised_accumulation", [wrong.detached_total], "returns a scalar tensor",
     "returns float, expected a 0-dimensional torch.Tensor"),
    ("E.dora_forward", [wrong.dora_scales_bias], "bias untouched",
     "output with b + 1 differs at index (0, 0, 0): yours "),
    ("E.dora_forward", [wrong.dora_unscaled_norm], "parity with DoRALinear at d_in=",
     "s multiplies B·A inside the norm too"),
    ("E.dora_forward", [wrong.dora_no_magnitude], "parity with DoRALinear at d_in=1, d_out=1",
     "m rescales each output row of the direction (W₀ + s·B·A)x / ‖W₀ + s·B·A‖"),
    ("F.fake_quant_ste", [wrong.fq_zero_gradient], "straight-through gradient is the identity",
     "gradient differs at index (0, 0): yours 0.0, expected "),
    ("F.fake_quant_ste", [wrong.fq_detached], "straight-through gradient is the identity",
     "the output carries no gradient to the weight"),
    ("F.fake_quant_ste", [wrong.fq_per_row], "value equals int4 fake-quant, blocks of 64",
     "output differs at index (0, "),
    ("H.pacing", [wrong.pacing_overshoots], "stays in [start_fraction, 1]",
     "returns 1.198 > 1 at step=1, total_steps=1, start_fraction=0.01"),
    ("H.pacing", [wrong.pacing_never_complete], "reaches 1 at the last step",
     "c(1) = 0.505 at total_steps=1, start_fraction=0.01, expected 1.0"),
    ("H.pacing", [wrong.pacing_wave], "never decreases", "c(2) = 0.01 < c(1) = 1.0"),
    ("H.pacing", [wrong.pacing_from_zero], "starts at start_fraction",
     "c(0) = 0.0 at total_steps=1, start_fraction=0.01, expected 0.01"),
    ("I.metrics_callback", [wrong.StepsOnly], "records rows by metric name",
     "history has no ['val_loss'] (it has ['loss', 'lr']); record on_eval rows too"),
    ("I.metrics_callback", [wrong.NoEnd], "a Callback built with no arguments",
     "NoEnd has no on_end"),
    ("I.metrics_callback", [wrong.CountsItsOwnSteps], "records a real training run",
     "history['val_loss'][0] is (1, "),
    ("I.metrics_callback", [wrong.ForgetsSummary], "keeps the run's summary", "summary is None"),
    ("J.resume_state", [wrong.save_without_optimizer, wrong.restore_without_optimizer],
     "optimizer state restored", "the optimizer holds state for 0 parameters after restore"),
    ("J.resume_state", [wrong.save_without_global_rng, wrong.restore_without_global_rng],
     "global RNG restored", "torch's global RNG state differs from the saved one"),
    ("J.resume_state", [wrong.save_without_data_rng, wrong.restore_without_data_rng],
     "data RNG restored", "the data generator's state differs"),
    ("J.resume_state", [wrong.save_unpicklable, solutions.restore_state],
     "save_state returns what torch.save can write", "torch.save cannot write"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("exercise_id", "parts", "check", "says"),
    WRONG,
    ids=[f"{e}-{p[0].__name__}" for e, p, _, _ in WRONG],
)
def test_wrong_answer_fails_naming_what_differs(
    exercise_id: str, parts: list, check: str, says: str
) -> None:
    result = run_checks(exercise_id, parts)
    assert not result.passed
    assert says in result.message
    assert f"(check: {check}" in result.message
    assert str(result).startswith(f"✗ {exercise_id}: ")
    assert "def " not in result.message and "return " not in result.message  # no source
    names = [name for name, _ in EXERCISES[exercise_id].checks()]
    failed_at = next(i for i, name in enumerate(names) if check.startswith(name[:20]))
    assert result.checks_passed == failed_at


def test_every_exercise_has_two_wrong_answers() -> None:
    for exercise_id in EXERCISES:
        assert sum(e == exercise_id for e, *_ in WRONG) >= 2, exercise_id


def test_exception_in_learner_code_is_reported_with_type_and_message() -> None:
    def boom(step, total_steps, start_fraction):
        raise ZeroDivisionError("my bad")

    result = run_checks("H.pacing", [boom])
    assert result.message == "your code raised ZeroDivisionError: my bad (check: returns a number)"
    assert result.checks_passed == 0 and result.checks == 5


def test_a_name_error_explains_the_fresh_process() -> None:
    def uses_missing(step, total_steps, start_fraction):
        return missing_global  # type: ignore[name-defined]  # noqa: F821

    message = run_checks("H.pacing", [uses_missing]).message
    assert message.startswith("your code raised NameError: name 'missing_global' is not defined")
    assert "fresh process" in message
