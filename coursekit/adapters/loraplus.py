"""LoRA+ (arXiv 2402.12354): the same LoRA update, with B trained at a higher learning rate.

Hayou, Ghosh and Yu (2024) show by scaling arguments that one learning rate η for A and B
makes feature learning inefficient in wide models, and set η_B = λ·η_A with λ > 1. The best λ
depends on model and task (the authors' repository: λ ≥ 1, larger for harder tasks); 2⁴ = 16
is the usual starting value and coursekit's default. Nothing changes in the layer or on disk:
a LoRA+ adapter is a plain LoRA adapter (``LoRALinear``), and only the optimizer's parameter
groups differ. This module is the variant's optimizer hook; ``coursekit.adapters.variants``
registers it as ``"loraplus"``.

peft's ``peft.optimizers.create_loraplus_optimizer`` is the oracle: it puts every ``lora_B``
weight and every 1-D adapter parameter at ``lr · loraplus_lr_ratio``
(tests/adapters/test_variants.py checks the groups and one AdamW step against it).

Guide: docs/adapters.md ("How to add an adapter variant").
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from coursekit.adapters.config import AdapterConfig

FAST_PARAMETERS = ("lora_b", "magnitude")
"""Layer attributes trained at λ·η: B, and (as in peft) any 1-D adapter vector."""


def loraplus_lr_scale(parameter: str, config: AdapterConfig) -> float:
    """Return λ = ``config.loraplus_lr_ratio`` for B (η_B = λ·η_A), else 1.

    Example:
        >>> from coursekit.adapters.config import AdapterConfig
        >>> config = AdapterConfig(method="loraplus", loraplus_lr_ratio=16.0)
        >>> loraplus_lr_scale("lora_b", config), loraplus_lr_scale("lora_a", config)
        (16.0, 1.0)
    """
    return config.loraplus_lr_ratio if parameter in FAST_PARAMETERS else 1.0
