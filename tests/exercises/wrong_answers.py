"""Plausible wrong answers to the exercises (helpers of tests/exercises, not a test module).

Each is a mistake a learner makes; the tests check that it fails with the right message.
"""

from __future__ import annotations

import math
import random

import torch

from coursekit.adapters.qat import fake_quantize_int4
from coursekit.exercises import solutions
from coursekit.train.callbacks import BaseCallback
from coursekit.train.lr_finder import minimum_over_10


def lr_minimum(lrs, losses):
    """C: fastai's 'minimum' instead of the steepest point."""
    return minimum_over_10(lrs, losses)


def lr_plain_difference(lrs, losses):
    """C: the steepest loss difference, not per ln lr (right only on geometric grids)."""
    if len(lrs) == 1:
        return lrs[0]
    drops = [losses[i + 1] - losses[i] for i in range(len(lrs) - 1)]
    return lrs[drops.index(min(drops))]


def lr_shifts_in_place(lrs, losses):
    """C: subtracts the minimum loss from the caller's list (same answer, list changed)."""
    lowest = min(losses)
    for i in range(len(losses)):
        losses[i] -= lowest
    return solutions.suggest_lr(lrs, losses)


def mean_of_means(loss_sums, token_counts):
    """D: nanoGPT's accumulation, each micro-batch's mean averaged."""
    return torch.stack([s / n for s, n in zip(loss_sums, token_counts, strict=True)]).mean()


def detached_total(loss_sums, token_counts):
    """D: the right number, but as a float: no gradient."""
    return sum(float(s) for s in loss_sums) / sum(token_counts)


def dora_scales_bias(x, W0, b, A, B, m, scale):
    """E: torchtune's DoRA, which rescales the bias too."""
    weight = W0 + scale * B @ A
    y = x @ weight.T + (0 if b is None else b)
    return y * (m / weight.norm(dim=1))


def dora_unscaled_norm(x, W0, b, A, B, m, scale):
    """E: the norm of W₀ + B·A, the scale forgotten inside it."""
    weight = W0 + scale * B @ A
    y = x @ weight.T * (m / (W0 + B @ A).norm(dim=1))
    return y if b is None else y + b


def dora_no_magnitude(x, W0, b, A, B, m, scale):
    """E: LoRA's output, the magnitude and the norm forgotten."""
    y = x @ (W0 + scale * B @ A).T
    return y if b is None else y + b


def fq_zero_gradient(weight):
    """F: the quantized value, but round()'s gradient (zero) instead of the identity."""
    flat = weight.reshape(-1)
    blocks = torch.nn.functional.pad(flat, (0, -flat.numel() % 64)).reshape(-1, 64)
    step = blocks.abs().amax(dim=1, keepdim=True).clamp(min=1e-38) / 7
    out = (blocks / step).round().clamp(-7, 7) * step
    return out.reshape(-1)[: flat.numel()].reshape(weight.shape)


def fq_detached(weight):
    """F: the value only, cut from the graph."""
    return fake_quantize_int4(weight.detach(), 64)


def fq_per_row(weight):
    """F: one scale per row instead of per block of 64."""
    step = weight.abs().amax(dim=1, keepdim=True).clamp(min=1e-38) / 7
    return weight + ((weight / step).round().clamp(-7, 7) * step - weight).detach()


def pacing_overshoots(step, total_steps, start_fraction):
    """H: linear pacing without the min(1, ·)."""
    return start_fraction + 1.2 * step * (1 - start_fraction) / total_steps


def pacing_never_complete(step, total_steps, start_fraction):
    """H: divides by T + 1, so the last step sees only part of the data."""
    return start_fraction + step * (1 - start_fraction) / (total_steps + 1)


def pacing_wave(step, total_steps, start_fraction):
    """H: a cyclic schedule whose pool shrinks again."""
    return start_fraction + (1 - start_fraction) * abs(math.sin(1.5 * math.pi * step / total_steps))


def pacing_from_zero(step, total_steps, start_fraction):
    """H: ignores start_fraction at the start."""
    return min(1.0, step / total_steps)


class StepsOnly(BaseCallback):
    """I: records training steps but not evaluations."""

    def __init__(self):
        self.history, self.summary = {}, None

    def on_step(self, row):
        for name, value in row.items():
            if name != "step":
                self.history.setdefault(name, []).append((row["step"], value))

    def on_end(self, summary):
        self.summary = summary


class NoEnd:
    """I: not a Callback (no on_end)."""

    def __init__(self):
        self.history = {}

    def on_step(self, row):
        pass

    def on_eval(self, row):
        pass


class CountsItsOwnSteps(solutions.MetricsRecorder):
    """I: numbers entries 1, 2, 3 … instead of reading the row's step."""

    def _record(self, row):
        for name, value in row.items():
            if name != "step":
                entries = self.history.setdefault(name, [])
                entries.append((len(entries) + 1, value))


class ForgetsSummary(solutions.MetricsRecorder):
    """I: never keeps the summary."""

    def on_end(self, summary):
        pass


def save_without_optimizer(model, optimizer, scheduler, step, rng):
    """J: the weights, scheduler and RNGs, but not AdamW's moments."""
    state = solutions.save_state(model, optimizer, scheduler, step, rng)
    del state["optimizer"]
    return state


def restore_without_optimizer(state, model, optimizer, scheduler, rng):
    return solutions.restore_state({**state, "optimizer": optimizer.state_dict()}, model,
                                   optimizer, scheduler, rng)  # fmt: skip


def save_without_global_rng(model, optimizer, scheduler, step, rng):
    """J: forgets torch's global RNG, which LoRA dropout draws from."""
    state = solutions.save_state(model, optimizer, scheduler, step, rng)
    del state["torch_rng"]
    return state


def restore_without_global_rng(state, model, optimizer, scheduler, rng):
    return solutions.restore_state({**state, "torch_rng": torch.get_rng_state()}, model,
                                   optimizer, scheduler, rng)  # fmt: skip


def save_without_data_rng(model, optimizer, scheduler, step, rng):
    """J: forgets the data generator."""
    state = solutions.save_state(model, optimizer, scheduler, step, rng)
    del state["data_rng"]
    return state


def restore_without_data_rng(state, model, optimizer, scheduler, rng):
    return solutions.restore_state({**state, "data_rng": rng.get_state()}, model, optimizer,
                                   scheduler, rng)  # fmt: skip


def save_unpicklable(model, optimizer, scheduler, step, rng):
    """J: puts a generator object (not serialisable) in the state."""
    return {**solutions.save_state(model, optimizer, scheduler, step, rng), "rng": rng,
            "draw": (random.random() for _ in range(1))}  # fmt: skip
