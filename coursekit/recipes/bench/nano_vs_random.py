"""Does pretraining help? The same LoRA fine-tune from nano and from a random nano.

Both runs are the Phase 1 baseline (:func:`coursekit.recipes.phase1_baseline.run_baseline`)
with the same settings, data subset, tokenizer, seed and budget; only the base weights
differ: the bundled pretrained ones, or a fresh initialisation of the same ``Qwen2Config``
(seeded). The claim under test is that the pretrained base ends with a clearly lower
validation loss.

Used by ``benchmarks/nano_vs_random.py`` and the falsification test
(``tests/nano/test_bundled.py``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from coursekit.recipes.phase1_baseline import resolve_device, run_baseline
from coursekit.train.spec import RunSpec


def pretrained_vs_random(
    spec: RunSpec,
    output_dir: str | Path,
    *,
    max_train_examples: int = 256,
    max_val_examples: int = 64,
    device: str = "auto",
) -> dict[str, Any]:
    """Run the fine-tune from ``spec.model`` and from a random model of its config.

    Args:
        spec: the baseline's training settings (``baseline_spec``); no generations are made.
        output_dir: runs go to ``<output_dir>/pretrained`` and ``<output_dir>/random``.
        max_train_examples: at most this many training samples (``run_baseline``).
        max_val_examples: at most this many validation samples.
        device: ``auto``, ``cpu`` or ``cuda[:n]``.

    Returns:
        ``{"pretrained": metrics, "random": metrics}`` with each run's metrics table
        (``val_loss_start``, ``val_loss_end``, ``train_seconds``...).
    """
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    from coursekit.loading import load_model, load_tokenizer, resolve_model

    options = {"max_train_examples": max_train_examples, "max_val_examples": max_val_examples,
               "generate": 0, "device": device}  # fmt: skip
    tokenizer = load_tokenizer(spec.model)
    out = Path(output_dir)
    torch_device = resolve_device(device)
    pretrained = run_baseline(
        spec, out / "pretrained", model=load_model(spec.model, device=torch_device),
        tokenizer=tokenizer, **options,
    )  # fmt: skip
    torch.manual_seed(spec.train.seed)
    random_model = AutoModelForCausalLM.from_config(
        AutoConfig.from_pretrained(resolve_model(spec.model))
    )
    random = run_baseline(
        spec, out / "random", model=random_model.to(torch_device).eval(), tokenizer=tokenizer,
        **options,
    )  # fmt: skip
    return {"pretrained": pretrained.metrics, "random": random.metrics}


def format_table(result: dict[str, dict[str, Any]]) -> str:
    """Return the two runs' validation losses and training seconds, and the loss gap.

    The gap is val_loss_end(random) − val_loss_end(pretrained), in nats per target token.
    """
    lines = [f"{'base':<12}{'val loss start':>16}{'val loss end':>14}{'train s':>10}"]
    for name, metrics in result.items():
        start, end = metrics["val_loss_start"], metrics["val_loss_end"]
        lines.append(f"{name:<12}{start:>16.3f}{end:>14.3f}{metrics['train_seconds']:>10.1f}")
    gap = result["random"]["val_loss_end"] - result["pretrained"]["val_loss_end"]
    lines.append(f"random − pretrained, final validation loss: {gap:.3f} nats")
    return "\n".join(lines)
