"""Does pretraining help? The same LoRA fine-tune from nano and from a random nano.

Both runs are the Phase 1 baseline (:func:`coursekit.baseline.run_baseline`) with the same
settings, data subset, tokenizer, seed and budget; only the base weights differ: the bundled
pretrained ones, or a fresh initialisation of the same ``Qwen2Config`` (seeded). The claim
under test is that the pretrained base ends with a clearly lower validation loss.

Used by ``benchmarks/nano_vs_random.py`` and the falsification test.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from coursekit.baseline import BaselineConfig, run_baseline


def pretrained_vs_random(config: BaselineConfig, output_dir: str | Path) -> dict[str, Any]:
    """Run the fine-tune from ``config.model`` and from a random model of its config.

    Args:
        config: the baseline settings (``generate`` is forced to 0: losses only).
        output_dir: runs go to ``<output_dir>/pretrained`` and ``<output_dir>/random``.

    Returns:
        ``{"pretrained": metrics, "random": metrics}`` with each run's metrics table
        (``val_loss_start``, ``val_loss_end``, ``train_seconds``...).
    """
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    from coursekit.models import load_model, load_tokenizer, resolve_model

    config = dataclasses.replace(config, generate=0)
    tokenizer = load_tokenizer(config.model)
    out = Path(output_dir)
    device = config.torch_device()
    pretrained = run_baseline(
        config, out / "pretrained", model=load_model(config.model, device=device),
        tokenizer=tokenizer,
    )  # fmt: skip
    torch.manual_seed(config.seed)
    random_model = AutoModelForCausalLM.from_config(
        AutoConfig.from_pretrained(resolve_model(config.model))
    )
    random = run_baseline(
        config, out / "random", model=random_model.to(device).eval(), tokenizer=tokenizer
    )
    return {"pretrained": pretrained.metrics, "random": random.metrics}
