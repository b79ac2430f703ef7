"""The training objective: next-token cross-entropy summed over target tokens.

For a batch from ``coursekit.data.batching.collate``,

    loss_sum = Σ_{(i, t): targets[i, t] ≠ -100} −log softmax(W_lm h[i, t])[targets[i, t]]

with h = the decoder's last hidden states (b, s, d) and W_lm the LM head (d → V). The head
runs only on the n target positions, (n, d) → (n, V): on a small model with Qwen2.5's
V = 151,936 the prompt's logits would cost most of the step and are thrown away.

The loop divides the sum by the target tokens of the whole optimizer step (all micro-batches
and processes), never by per-micro-batch counts: a mean of means weights a short micro-batch's
tokens more (the 2024 gradient-accumulation bug of HF Trainer, LLaMA-Factory and axolotl).

Guide: docs/training.md.
"""

from __future__ import annotations

import torch
from torch import nn

from coursekit.data.prompts import IGNORE_INDEX


def causal_lm_of(model: nn.Module) -> nn.Module:
    """Return the ``…ForCausalLM`` inside a peft ``PeftModel`` (or ``model`` itself)."""
    return model.get_base_model() if hasattr(model, "get_base_model") else model


class TargetLoss(nn.Module):
    """Wrap a causal LM so that ``forward(batch)`` returns the summed target loss (a scalar).

    Wrapping the loss in the module that ``accelerate`` prepares keeps DDP's gradient hooks
    on the path the loop calls (DDP syncs only what runs through its own ``forward``).
    """

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(
        self, input_ids: torch.Tensor, position_ids: torch.Tensor, targets: torch.Tensor
    ) -> torch.Tensor:
        """Return loss_sum for (b, s) ``input_ids``, ``position_ids`` and ``targets``."""
        causal_lm = causal_lm_of(self.model)
        hidden = causal_lm.model(
            input_ids=input_ids, position_ids=position_ids, use_cache=False
        ).last_hidden_state  # (b, s, d); no cache, so restarts in position_ids mask packing
        keep = targets != IGNORE_INDEX  # (b, s)
        logits = causal_lm.lm_head(hidden[keep])  # (n, V)
        return nn.functional.cross_entropy(logits.float(), targets[keep], reduction="sum")
