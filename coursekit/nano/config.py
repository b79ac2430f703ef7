"""``NanoConfig``: the size of Qwen2.5-Coder-nano and how it is pretrained, validated.

The architecture is Qwen2.5-Coder's, scaled down: grouped-query attention with 2 key/value
heads, q/k/v bias, tied embeddings, RMSNorm, SwiGLU and RoPE with θ = 1e6. With the
defaults (nano v2: d = 384, 2 layers, 6 query heads of h_d = 64, d_ff = 1,152, V = 8,192,
the shape the sweep of docs/nano.md chose) it has

    N = V·d + L·(2·d·n_h·h_d + n_h·h_d + 2·(d·n_kv·h_d + n_kv·h_d) + 3·d·d_ff + 2·d) + d
      = 3,145,728 + 2·1,721,728 + 384 = 6,589,568 parameters (26.4 MB in fp32)

(embeddings; per layer q, o, q bias, k and v with bias, SwiGLU, two RMSNorms; final norm),
and pretraining runs ``steps`` × ``micro_batch_size`` × ``seq_len`` = 2,824 × 8 × 512 =
11.6 M tokens, in bf16 autocast, in about an hour on 2 CPU cores.

Guide: docs/nano.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from coursekit import codec
from coursekit.train.config import TrainConfig


@dataclass(frozen=True, kw_only=True)
class NanoConfig:
    """Architecture, tokenizer and pretraining settings of the nano model."""

    vocab_size: int = 8192
    """Tokenizer and embedding size, Qwen's 22 added tokens included."""
    hidden_size: int = 384
    """Model width d."""
    num_hidden_layers: int = 2
    """Decoder layers L."""
    num_attention_heads: int = 6
    """Query heads n_h (head_dim = d / n_h)."""
    num_key_value_heads: int = 2
    """Key/value heads n_kv (grouped-query attention, as Qwen2.5-Coder 0.5B–3B)."""
    intermediate_size: int = 1152
    """SwiGLU width d_ff."""
    rope_theta: float = 1e6
    """RoPE base, as Qwen2.5."""
    max_position_embeddings: int = 2048
    """Longest position the config allows (pretraining sees ``seq_len``)."""
    seq_len: int = 512
    """Tokens per pretraining row (documents are concatenated, then cut)."""
    micro_batch_size: int = 8
    """Rows per optimizer step."""
    steps: int = 2824
    """Optimizer steps."""
    learning_rate: float = 2e-3
    """Peak learning rate (cosine decay after warm-up)."""
    warmup_steps: int = 100
    """Linear warm-up steps."""
    weight_decay: float = 0.1
    """AdamW decoupled weight decay."""
    eval_every: int = 250
    """Validation (held-out validation crates) every this many steps."""
    eval_rows: int = 32
    """Rows of validation-crate text the loss curve's validation points use."""
    heldout_rows: int = 256
    """Rows of held-out text (seeded sample) the reported perplexity is measured on."""
    precision: str = "bf16"
    """Compute precision of the pretraining: fp32, or bf16 autocast (weights stay fp32)."""
    pairs: bool = True
    """Also pretrain on the training split's function → test pairs (as documents)."""
    seed: int = 0
    """Seed of the initialisation, the data order and the held-out sample."""

    def __post_init__(self) -> None:
        """Validate; raise ``ValueError`` naming the field, the value and the rule."""
        codec.check_types(self)
        positive = (
            "vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads",
            "num_key_value_heads", "intermediate_size", "seq_len", "micro_batch_size", "steps",
            "eval_rows", "heldout_rows",
        )  # fmt: skip
        for name in positive:
            if getattr(self, name) < 1:
                raise ValueError(f"NanoConfig.{name} must be >= 1 (got {getattr(self, name)!r})")
        rules = [
            ("vocab_size", self.vocab_size >= 279, "must be >= 279 (256 bytes + 22 added + 1)"),
            ("hidden_size", self.hidden_size % self.num_attention_heads == 0,
             f"must be a multiple of num_attention_heads={self.num_attention_heads}"),
            ("num_attention_heads", self.num_attention_heads % self.num_key_value_heads == 0,
             f"must be a multiple of num_key_value_heads={self.num_key_value_heads}"),
            ("max_position_embeddings", self.max_position_embeddings >= self.seq_len,
             f"must be >= seq_len={self.seq_len}"),
            ("learning_rate", self.learning_rate > 0, "must be > 0"),
            ("rope_theta", self.rope_theta > 0, "must be > 0"),
            ("warmup_steps", 0 <= self.warmup_steps < self.steps,
             f"must be in [0, steps={self.steps})"),
            ("weight_decay", self.weight_decay >= 0, "must be >= 0"),
            ("precision", self.precision in ("fp32", "bf16"), "must be 'fp32' or 'bf16'"),
            ("eval_every", self.eval_every >= 0, "must be >= 0"),
        ]  # fmt: skip
        codec.check_rules(self, rules)

    def parameter_count(self) -> int:
        """Return N of the module docstring's equation (tied embeddings counted once).

        Example:
            >>> NanoConfig().parameter_count()
            6589568
        """
        d, heads, kv = self.hidden_size, self.num_attention_heads, self.num_key_value_heads
        head_dim = d // heads
        layer = (
            2 * d * heads * head_dim + heads * head_dim  # q (with bias) and o
            + 2 * (d * kv * head_dim + kv * head_dim)  # k and v, with bias
            + 3 * d * self.intermediate_size  # SwiGLU: gate, up, down
            + 2 * d  # two RMSNorms
        )  # fmt: skip
        return self.vocab_size * d + self.num_hidden_layers * layer + d

    def qwen2_config(self, special_ids: dict[str, int]) -> Any:
        """Return the ``Qwen2Config`` (bos = eos = ``<|endoftext|>``, as Qwen2.5-Coder base)."""
        from transformers import Qwen2Config

        end = special_ids["<|endoftext|>"]
        return Qwen2Config(
            vocab_size=self.vocab_size,
            hidden_size=self.hidden_size,
            num_hidden_layers=self.num_hidden_layers,
            num_attention_heads=self.num_attention_heads,
            num_key_value_heads=self.num_key_value_heads,
            intermediate_size=self.intermediate_size,
            max_position_embeddings=self.max_position_embeddings,
            rope_parameters={"rope_type": "default", "rope_theta": self.rope_theta},
            tie_word_embeddings=True,
            hidden_act="silu",
            rms_norm_eps=1e-6,
            use_sliding_window=False,
            bos_token_id=end,
            eos_token_id=end,
        )

    def train_config(self) -> TrainConfig:
        """Return the loop settings of the pretraining (full fine-tune, every weight trained)."""
        return TrainConfig(
            max_steps=self.steps,
            micro_batch_size=self.micro_batch_size,
            learning_rate=self.learning_rate,
            schedule="cosine",
            warmup_steps=self.warmup_steps,
            weight_decay=self.weight_decay,
            seq_len=self.seq_len,
            packing=False,
            precision=self.precision,
            seed=self.seed,
            eval_every=self.eval_every,
            save_every=max(1, self.steps // 8),
        )

    def to_dict(self) -> dict[str, Any]:
        """Return the fields as a plain dict (for build.json and the model card)."""
        return codec.to_dict(self)
